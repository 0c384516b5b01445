"""Exports a fixed set of GenAI spans to Plumb with a real OpenTelemetry Python exporter.

Used by the end-to-end tests in tests/*.rs. The spans are created with the SDK (so ids, encoding
and transport are the SDK's own), collected in memory, then handed to the chosen exporter in one
export call whose result is checked. Prints a JSON summary with the ids the test should find.

    python export_spans.py --protocol grpc|http-proto|http-json --endpoint URL --run RUN_ID
"""

import argparse
import json
import sys

from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExportResult
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, Status, StatusCode, set_span_in_context

# Fixed times make durations and time-to-first-token exact: 2025-11-23T12:00:00Z.
T0 = 1_763_899_200_000_000_000
MS = 1_000_000


def exporter(protocol, endpoint):
    if protocol == "grpc":
        from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter

        return OTLPSpanExporter(endpoint=endpoint, insecure=True)
    if protocol == "http-proto":
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        return OTLPSpanExporter(endpoint=endpoint + "/v1/traces")
    if protocol == "http-json":
        from opentelemetry.exporter.otlp.json.http.trace_exporter import OTLPSpanExporter

        return OTLPSpanExporter(endpoint=endpoint + "/v1/traces")
    raise SystemExit(f"unknown protocol {protocol}")


def genai_spans(tracer, run):
    """OpenTelemetry GenAI conventions: current names on one span, deprecated on another."""
    root = tracer.start_span(f"POST /chat {run}", kind=SpanKind.SERVER, start_time=T0,
                             attributes={"http.route": "/chat", "run": run})
    ctx = set_span_in_context(root)
    chat = tracer.start_span(f"chat gpt-4o-mini {run}", context=ctx, kind=SpanKind.CLIENT,
                             start_time=T0 + 10 * MS, attributes={
        "run": run,
        "gen_ai.operation.name": "chat",
        "gen_ai.provider.name": "openai",
        "gen_ai.request.model": "gpt-4o-mini",
        "gen_ai.response.model": "gpt-4o-mini-2024-07-18",
        "gen_ai.usage.input_tokens": 1200,
        "gen_ai.usage.output_tokens": 81,
        "gen_ai.usage.cache_read.input_tokens": 200,
        "gen_ai.response.finish_reasons": ["stop"],
        "gen_ai.output.type": "json",
        "gen_ai.conversation.id": "conv-" + run,
        "gen_ai.input.messages": json.dumps([
            {"role": "user", "parts": [{"type": "text", "content": "Return the order status as JSON."}]}]),
        "gen_ai.output.messages": json.dumps([
            {"role": "assistant", "parts": [{"type": "text", "content": "{\"status\": \"shipped\"}"}],
             "finish_reason": "stop"}]),
        "plumb.route": "support-bot",
        "plumb.engine": "vllm",
        "plumb.gpu_pool": "h100-a",
        "plumb.queue_time": 0.012,
        "plumb.cache_hit": False,
        "plumb.retry_count": 1,
        "plumb.fallback": True,
    })
    chat.add_event("gen_ai.content.completion.chunk", timestamp=T0 + 260 * MS)
    chat.add_event("gen_ai.content.completion.chunk", timestamp=T0 + 300 * MS)
    chat.end(end_time=T0 + 1010 * MS)
    legacy = tracer.start_span(f"legacy completion {run}", context=ctx, kind=SpanKind.CLIENT,
                               start_time=T0 + 1100 * MS, attributes={
        "run": run,
        "gen_ai.system": "anthropic",
        "gen_ai.request.model": "claude-3-5-haiku",
        "gen_ai.usage.prompt_tokens": 50,
        "gen_ai.usage.completion_tokens": 20,
        "gen_ai.usage.cache_creation_input_tokens": 7,
        "gen_ai.prompt.0.role": "user",
        "gen_ai.prompt.0.content": "Hi",
        "gen_ai.completion.0.role": "assistant",
        "gen_ai.completion.0.content": "Hello!",
        "gen_ai.server.time_to_first_token": 0.05,
    })
    legacy.set_status(Status(StatusCode.ERROR, "rate limited"))
    legacy.set_attribute("error.type", "RateLimitError")
    legacy.end(end_time=T0 + 1300 * MS)
    root.end(end_time=T0 + 1400 * MS)


def openinference_spans(tracer, run):
    """OpenInference conventions (Arize Phoenix's instrumentations)."""
    root = tracer.start_span(f"rag {run}", kind=SpanKind.INTERNAL, start_time=T0,
                             attributes={"openinference.span.kind": "CHAIN", "run": run,
                                         "session.id": "sess-" + run})
    ctx = set_span_in_context(root)
    retr = tracer.start_span(f"retrieve {run}", context=ctx, start_time=T0 + 5 * MS, attributes={
        "run": run,
        "openinference.span.kind": "RETRIEVER",
        "input.value": "What is the capital of France?",
        "retrieval.documents.0.document.id": "doc-1",
        "retrieval.documents.0.document.score": 0.92,
        "retrieval.documents.0.document.content": "Paris is the capital of France.",
        "retrieval.documents.1.document.id": "doc-2",
        "retrieval.documents.1.document.score": 0.31,
        "retrieval.documents.1.document.content": "Berlin is the capital of Germany.",
    })
    retr.end(end_time=T0 + 50 * MS)
    llm = tracer.start_span(f"ChatCompletion {run}", context=ctx, start_time=T0 + 60 * MS, attributes={
        "run": run,
        "openinference.span.kind": "LLM",
        "llm.model_name": "gpt-4o",
        "llm.provider": "openai",
        "llm.token_count.prompt": 300,
        "llm.token_count.completion": 11,
        "llm.input_messages.0.message.role": "system",
        "llm.input_messages.0.message.content": "Answer from the context.",
        "llm.input_messages.1.message.role": "user",
        "llm.input_messages.1.message.content": "What is the capital of France?",
        "llm.output_messages.0.message.role": "assistant",
        "llm.output_messages.0.message.content": "Paris.",
    })
    llm.add_event("First Token Stream Event", timestamp=T0 + 160 * MS)
    llm.end(end_time=T0 + 260 * MS)
    root.end(end_time=T0 + 300 * MS)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--protocol", required=True)
    ap.add_argument("--endpoint", required=True)
    ap.add_argument("--run", required=True)
    ap.add_argument("--convention", default="genai", choices=["genai", "openinference"])
    ap.add_argument("--service", default="py-chat")
    args = ap.parse_args()

    memory = InMemorySpanExporter()
    provider = TracerProvider(resource=Resource.create({"service.name": args.service, "run": args.run}))
    provider.add_span_processor(SimpleSpanProcessor(memory))
    tracer = provider.get_tracer("plumb-e2e", "1.0")
    (genai_spans if args.convention == "genai" else openinference_spans)(tracer, args.run)
    spans = memory.get_finished_spans()

    result = exporter(args.protocol, args.endpoint).export(spans)
    summary = {
        "result": result.name,
        "spans": [{"name": s.name, "trace_id": format(s.context.trace_id, "032x"),
                   "span_id": format(s.context.span_id, "016x")} for s in spans],
    }
    print(json.dumps(summary))
    sys.exit(0 if result == SpanExportResult.SUCCESS else 1)


if __name__ == "__main__":
    main()
