"""Exports GenAI traffic for the evaluation and alert tests with the real OpenTelemetry Python
SDK and exporter: chat spans with JSON outputs (every K-th one broken), optionally a span with
tool calls and an agent run whose tool failed for good. Prints a JSON summary.

    python export_eval_traffic.py --endpoint URL --run RUN --count N --bad-every K
        [--route R] [--start-ns NS] [--step-ns NS] [--protocol http-proto|grpc] [--extras]
"""

import argparse
import json

from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExportResult
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, Status, StatusCode, set_span_in_context

TOOLS = json.dumps([{"type": "function", "name": "get_order", "parameters": {
    "type": "object", "properties": {"order_id": {"type": "string"}},
    "required": ["order_id"], "additionalProperties": False}}])


def exporter(protocol, endpoint):
    if protocol == "grpc":
        from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
        return OTLPSpanExporter(endpoint=endpoint, insecure=True)
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    return OTLPSpanExporter(endpoint=endpoint + "/v1/traces")


def chat(tracer, run, route, model, start, i, bad):
    output = '{"status": "shipped", "id": %d' % i if bad else json.dumps({"status": "shipped", "id": i})
    s = tracer.start_span(f"chat {model}", kind=SpanKind.CLIENT, start_time=start, attributes={
        "run": run, "plumb.route": route,
        "gen_ai.operation.name": "chat", "gen_ai.request.model": model,
        "gen_ai.output.type": "json", "gen_ai.response.finish_reasons": ["stop"],
        "gen_ai.output.messages": json.dumps([{"role": "assistant", "parts": [
            {"type": "text", "content": output}], "finish_reason": "stop"}]),
    })
    s.end(end_time=start + 5_000_000)


def extras(tracer, run, start):
    # A model call whose tool call misses a required argument.
    s = tracer.start_span("chat tools", kind=SpanKind.CLIENT, start_time=start, attributes={
        "run": run, "plumb.route": "agent/plan", "gen_ai.operation.name": "chat",
        "gen_ai.request.model": "gpt-4o", "gen_ai.tool.definitions": TOOLS,
        "gen_ai.response.finish_reasons": ["tool_calls"],
        "gen_ai.output.messages": json.dumps([{"role": "assistant", "parts": [
            {"type": "tool_call", "id": "c1", "name": "get_order", "arguments": {"id": "42"}}]}]),
    })
    s.end(end_time=start + 1_000_000)
    # An agent run whose tool failed and was never retried.
    root = tracer.start_span("invoke_agent support", kind=SpanKind.INTERNAL, start_time=start, attributes={
        "run": run, "plumb.route": "agent/support", "gen_ai.operation.name": "invoke_agent",
        "gen_ai.agent.name": "support", "input.value": "Where is order 42?",
        "output.value": "Sorry, I could not look that up.",
    })
    ctx = set_span_in_context(root)
    tool = tracer.start_span("execute_tool get_order", context=ctx, start_time=start + 1_000_000, attributes={
        "run": run, "gen_ai.operation.name": "execute_tool", "gen_ai.tool.name": "get_order"})
    tool.set_status(Status(StatusCode.ERROR, "timeout"))
    tool.end(end_time=start + 2_000_000)
    root.end(end_time=start + 3_000_000)
    return format(root.get_span_context().trace_id, "032x")


RAG_DOCS = [
    "The Eiffel Tower is a wrought-iron lattice tower in Paris, France. It was completed in 1889 "
    "for the World's Fair and is 330 metres tall.",
    "Paris is the capital of France and its largest city.",
]


def rag(tracer, run, start, answer, tag):
    """A retrieval span with documents, then a chat span answering from them."""
    root = tracer.start_span(f"rag {tag}", start_time=start, attributes={"run": run, "plumb.route": "support/answer"})
    ctx = set_span_in_context(root)
    attrs = {"run": run, "openinference.span.kind": "RETRIEVER",
             "input.value": "When was the Eiffel Tower completed and how tall is it?"}
    for i, d in enumerate(RAG_DOCS):
        attrs[f"retrieval.documents.{i}.document.content"] = d
    r = tracer.start_span("retrieve", context=ctx, start_time=start + 1_000_000, attributes=attrs)
    r.end(end_time=start + 2_000_000)
    c = tracer.start_span("chat rag", context=ctx, start_time=start + 3_000_000, attributes={
        "run": run, "plumb.route": "support/answer", "gen_ai.operation.name": "chat",
        "gen_ai.request.model": "gpt-4o-mini", "gen_ai.response.finish_reasons": ["stop"],
        "gen_ai.output.messages": json.dumps([{"role": "assistant", "parts": [
            {"type": "text", "content": answer}], "finish_reason": "stop"}]),
    })
    # The application's own verdict on the answer, as a GenAI evaluation event.
    c.add_event("gen_ai.evaluation.result", attributes={
        "gen_ai.evaluation.name": "user_feedback", "gen_ai.evaluation.score.value": 1.0,
        "gen_ai.evaluation.score.label": "pass", "gen_ai.evaluation.explanation": "thumbs up"},
        timestamp=start + 4_000_000)
    c.end(end_time=start + 5_000_000)
    root.end(end_time=start + 6_000_000)
    return format(c.get_span_context().span_id, "016x")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--endpoint", required=True)
    ap.add_argument("--protocol", default="http-proto")
    ap.add_argument("--run", required=True)
    ap.add_argument("--count", type=int, required=True)
    ap.add_argument("--bad-every", type=int, default=0)
    ap.add_argument("--route", default="shop/extract")
    ap.add_argument("--model", default="gpt-4o-mini")
    ap.add_argument("--start-ns", type=int, default=0)
    ap.add_argument("--step-ns", type=int, default=1_000_000)
    ap.add_argument("--extras", action="store_true")
    ap.add_argument("--rag", action="store_true")
    a = ap.parse_args()

    memory = InMemorySpanExporter()
    provider = TracerProvider(resource=Resource.create({"service.name": "eval-traffic"}))
    provider.add_span_processor(SimpleSpanProcessor(memory))
    tracer = provider.get_tracer("plumb-tests")
    import time
    start = a.start_ns or time.time_ns()
    bad = 0
    for i in range(a.count):
        is_bad = a.bad_every > 0 and i % a.bad_every == 0
        bad += is_bad
        chat(tracer, a.run, a.route, a.model, start + i * a.step_ns, i, is_bad)
    agent_trace = extras(tracer, a.run, start) if a.extras else None
    rag_spans = {}
    if a.rag:
        rag_spans["grounded"] = rag(tracer, a.run, start, "The Eiffel Tower was completed in 1889. It is 330 metres tall.", "grounded")
        rag_spans["ungrounded"] = rag(tracer, a.run, start + 10_000_000, "The Eiffel Tower was completed in 1920 in Rome. It is made of gold.", "ungrounded")
    spans = memory.get_finished_spans()
    exp = exporter(a.protocol, a.endpoint)
    results = [exp.export(spans[i:i + 500]) for i in range(0, len(spans), 500)]
    exp.shutdown()
    ok = all(r == SpanExportResult.SUCCESS for r in results)
    print(json.dumps({"result": "SUCCESS" if ok else "FAILURE", "spans": len(spans), "bad_json": bad, "agent_trace": agent_trace, "rag": rag_spans}))
    raise SystemExit(0 if ok else 1)


if __name__ == "__main__":
    main()
