"""Seeds a running Plumb with an hour of realistic GenAI traffic over OTLP/HTTP JSON, for the
dashboard's tests, screenshots and demos.

Route `chat` (service chat-api): one LLM call every 15 s for the last hour; halfway through,
the gateway moves it from gpt-4o-mini on an h100-a pool to llama-3.1-70b on vLLM (h100-b), and
a `plumb.deploy` log event records the rollout. TTFT rises after the move; in the last ten
minutes a third of the calls fail, and some JSON outputs stop parsing. GPU utilization and
queue depth of chat-api arrive as gauges. Route `search/embed` gets a little steady traffic. One
`chat` call carries the prompt `<script>alert(1)</script>` (escaping check) and one a very long
prompt.

Prints one JSON line: {"routes": [...], "xss_trace_id": ..., "long_trace_id": ..., "spans": N}.
"""

import argparse
import json
import os
import random
import time
import urllib.request

SECOND = 1_000_000_000


def attr(key, value):
    if isinstance(value, bool):
        v = {"boolValue": value}
    elif isinstance(value, int):
        v = {"intValue": str(value)}
    elif isinstance(value, float):
        v = {"doubleValue": value}
    else:
        v = {"stringValue": str(value)}
    return {"key": key, "value": v}


def post(base, path, body):
    req = urllib.request.Request(
        base.rstrip("/") + path,
        data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(req, timeout=30) as resp:
        if resp.status != 200:
            raise SystemExit(f"{path}: HTTP {resp.status}")


def resource(service):
    return {"attributes": [attr("service.name", service)]}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--otlp-http", required=True, help="base URL of Plumb's OTLP/HTTP listener")
    ap.add_argument("--now", type=float, default=None, help="Unix seconds to end the hour at")
    ap.add_argument("--seed", type=int, default=7)
    args = ap.parse_args()
    rng = random.Random(args.seed)
    now = int((args.now or time.time()) * SECOND)
    start = now - 3600 * SECOND
    switch = now - 1800 * SECOND

    chat_spans, search_spans = [], []
    xss_trace = long_trace = None
    t = start + 5 * SECOND
    i = 0
    while t < now - 5 * SECOND:
        after = t >= switch
        trace_id = os.urandom(16).hex()
        span_id = os.urandom(8).hex()
        late = t >= now - 600 * SECOND
        error = late and rng.random() < 0.34
        ttft = (0.9 if after else 0.35) * (0.8 + 0.4 * rng.random())
        out_tokens = rng.randint(40, 220)
        duration = ttft + out_tokens * (0.012 if after else 0.008)
        prompt = f"Summarise ticket #{i} as JSON with fields title and priority."
        output = json.dumps({"title": f"Ticket {i}", "priority": rng.choice(["low", "high"])})
        if after and rng.random() < (0.3 if late else 0.05):
            output = output[: len(output) // 2]  # a truncated, unparseable structured output
        if i == 7:
            prompt = "<script>alert(1)</script>"
            xss_trace = trace_id
        if i == 12:
            prompt = "Please read all of this. " * 4000
            long_trace = trace_id
        attrs = [
            attr("plumb.route", "chat"),
            attr("gen_ai.operation.name", "chat"),
            attr("gen_ai.provider.name", "vllm" if after else "openai"),
            attr("gen_ai.request.model", "llama-3.1-70b" if after else "gpt-4o-mini"),
            attr("gen_ai.response.model", "llama-3.1-70b" if after else "gpt-4o-mini"),
            attr("gen_ai.usage.input_tokens", rng.randint(200, 900)),
            attr("gen_ai.usage.output_tokens", out_tokens),
            attr("gen_ai.response.time_to_first_chunk", ttft),
            attr("gen_ai.output.type", "json"),
            attr("plumb.engine", "vllm" if after else "openai-api"),
            attr("plumb.gpu_pool", "h100-b" if after else "h100-a"),
            attr("plumb.retry_count", 1 if error else 0),
            attr("plumb.cache_hit", rng.random() < 0.1),
            attr("plumb.queue_time", (0.4 if late else 0.08 if after else 0.02) * rng.random()),
            attr("input.value", prompt),
            attr("output.value", "" if error else output),
        ]
        end = t + int(duration * SECOND)
        chat_spans.append({
            "traceId": trace_id,
            "spanId": span_id,
            "name": "chat llama-3.1-70b" if after else "chat gpt-4o-mini",
            "kind": 3,
            "startTimeUnixNano": str(t),
            "endTimeUnixNano": str(end),
            "attributes": attrs,
            "status": {"code": 2, "message": "upstream timeout"} if error else {"code": 1},
        })
        # A retrieval child on some calls, so traces have a tree.
        if i % 4 == 0:
            chat_spans.append({
                "traceId": trace_id,
                "spanId": os.urandom(8).hex(),
                "parentSpanId": span_id,
                "name": "retrieve tickets",
                "kind": 1,
                "startTimeUnixNano": str(t + SECOND // 50),
                "endTimeUnixNano": str(t + SECOND // 10),
                "attributes": [
                    attr("plumb.route", "chat"),
                    attr("gen_ai.operation.name", "retrieval"),
                    attr("retrieval.documents.0.document.id", "kb-1"),
                    attr("retrieval.documents.0.document.content", f"Ticket {i} is about billing."),
                    attr("retrieval.documents.0.document.score", 0.82),
                ],
                "status": {"code": 1},
            })
        if i % 3 == 0:
            st = t + 2 * SECOND
            search_spans.append({
                "traceId": os.urandom(16).hex(),
                "spanId": os.urandom(8).hex(),
                "name": "embeddings",
                "kind": 3,
                "startTimeUnixNano": str(st),
                "endTimeUnixNano": str(st + SECOND // 20),
                "attributes": [
                    attr("plumb.route", "search/embed"),
                    attr("gen_ai.operation.name", "embeddings"),
                    attr("gen_ai.provider.name", "openai"),
                    attr("gen_ai.request.model", "text-embedding-3-small"),
                    attr("gen_ai.usage.input_tokens", rng.randint(10, 60)),
                ],
                "status": {"code": 1},
            })
        t += 15 * SECOND
        i += 1

    def traces_body(service, spans):
        return {"resourceSpans": [{"resource": resource(service), "scopeSpans": [{"scope": {"name": "seed"}, "spans": spans}]}]}

    for k in range(0, len(chat_spans), 200):
        post(args.otlp_http, "/v1/traces", traces_body("chat-api", chat_spans[k:k + 200]))
    post(args.otlp_http, "/v1/traces", traces_body("search-api", search_spans))

    # Infra gauges of chat-api, one point a minute.
    util, queue = [], []
    t = start
    while t < now:
        after = t >= switch
        late = t >= now - 600 * SECOND
        util.append({"timeUnixNano": str(t), "asDouble": (88.0 if after else 55.0) + rng.uniform(-6, 6), "attributes": [attr("gpu", "0")]})
        queue.append({"timeUnixNano": str(t), "asInt": str((14 if late else 4 if after else 1) + rng.randint(0, 3))})
        t += 60 * SECOND
    post(args.otlp_http, "/v1/metrics", {"resourceMetrics": [{
        "resource": resource("chat-api"),
        "scopeMetrics": [{"scope": {"name": "seed"}, "metrics": [
            {"name": "DCGM_FI_DEV_GPU_UTIL", "unit": "%", "gauge": {"dataPoints": util}},
            {"name": "vllm:num_requests_waiting", "unit": "1", "gauge": {"dataPoints": queue}},
        ]}],
    }]})

    # The rollout, as a log event.
    post(args.otlp_http, "/v1/logs", {"resourceLogs": [{
        "resource": resource("deployer"),
        "scopeLogs": [{"scope": {"name": "seed"}, "logRecords": [{
            "timeUnixNano": str(switch - 20 * SECOND),
            "eventName": "plumb.deploy",
            "body": {"stringValue": "chat: route to llama-3.1-70b on vLLM"},
            "attributes": [attr("plumb.route", "chat")],
        }]}],
    }]})

    print(json.dumps({
        "routes": ["chat", "search/embed"],
        "xss_trace_id": xss_trace,
        "long_trace_id": long_trace,
        "spans": len(chat_spans) + len(search_spans),
    }))


if __name__ == "__main__":
    main()
