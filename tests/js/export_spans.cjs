// Exports GenAI spans to Plumb with a real OpenTelemetry JS exporter (used by tests/*.rs).
//
//   node export_spans.cjs <http-json|http-proto|grpc> <endpoint> <run-id>
//
// Spans are made by the JS SDK, collected in memory, then exported in one call whose result is
// checked. Prints {"result": ..., "spans": [{name, trace_id, span_id}]}.
const { TracerProvider, SimpleSpanProcessor, InMemorySpanExporter } = require('@opentelemetry/sdk-trace');
const { resourceFromAttributes } = require('@opentelemetry/resources');
const { trace, context, SpanKind, SpanStatusCode } = require('@opentelemetry/api');

const [protocol, endpoint, run] = process.argv.slice(2);
if (!protocol || !endpoint || !run) {
  console.error('usage: node export_spans.cjs <http-json|http-proto|grpc> <endpoint> <run-id>');
  process.exit(2);
}

function exporterFor(p) {
  if (p === 'http-json') {
    const { OTLPTraceExporter } = require('@opentelemetry/exporter-trace-otlp-http');
    return new OTLPTraceExporter({ url: `${endpoint}/v1/traces` });
  }
  if (p === 'http-proto') {
    const { OTLPTraceExporter } = require('@opentelemetry/exporter-trace-otlp-proto');
    return new OTLPTraceExporter({ url: `${endpoint}/v1/traces` });
  }
  if (p === 'grpc') {
    const { OTLPTraceExporter } = require('@opentelemetry/exporter-trace-otlp-grpc');
    return new OTLPTraceExporter({ url: endpoint });
  }
  throw new Error(`unknown protocol ${p}`);
}

// 2025-11-23T12:00:00Z, as [seconds, nanoseconds].
const T0 = 1763899200;
const at = (ms) => [T0 + Math.floor(ms / 1000), (ms % 1000) * 1e6];

const memory = new InMemorySpanExporter();
const provider = new TracerProvider({
  resource: resourceFromAttributes({ 'service.name': 'js-agent', run }),
  spanProcessors: [new SimpleSpanProcessor({ exporter: memory })],
});
const tracer = provider.getTracer('plumb-e2e-js', '1.0');

const root = tracer.startSpan(`invoke_agent planner ${run}`, {
  kind: SpanKind.INTERNAL,
  startTime: at(0),
  attributes: { run, 'gen_ai.operation.name': 'invoke_agent', 'gen_ai.agent.name': 'planner' },
});
const ctx = trace.setSpan(context.active(), root);
const llm = tracer.startSpan(`chat claude ${run}`, {
  kind: SpanKind.CLIENT,
  startTime: at(10),
  attributes: {
    run,
    'gen_ai.operation.name': 'chat',
    'gen_ai.provider.name': 'anthropic',
    'gen_ai.request.model': 'claude-sonnet-4',
    'gen_ai.usage.input_tokens': 900,
    'gen_ai.usage.output_tokens': 21,
    'gen_ai.response.time_to_first_chunk': 0.4,
    'gen_ai.response.finish_reasons': ['length'],
    'plumb.route': 'agent-planner',
  },
}, ctx);
llm.end(at(1010));
const tool = tracer.startSpan(`execute_tool search ${run}`, {
  kind: SpanKind.INTERNAL,
  startTime: at(1020),
  attributes: { run, 'gen_ai.operation.name': 'execute_tool', 'gen_ai.tool.name': 'search' },
}, ctx);
tool.setStatus({ code: SpanStatusCode.ERROR, message: 'timeout' });
tool.end(at(1500));
root.end(at(1600));

// SimpleSpanProcessor hands spans over asynchronously: wait for them before reading.
provider.forceFlush().catch((e) => { console.error(e); process.exit(3); }).then(() => {
  const spans = memory.getFinishedSpans();
  exporterFor(protocol).export(spans, (result) => {
  const summary = {
    result: result.code === 0 ? 'SUCCESS' : `FAILURE: ${result.error}`,
    spans: spans.map((s) => ({ name: s.name, trace_id: s.spanContext().traceId, span_id: s.spanContext().spanId })),
  };
  console.log(JSON.stringify(summary));
  process.exit(result.code === 0 && spans.length === 3 ? 0 : 1);
  });
});
