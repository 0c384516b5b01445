//! GenAI normalization: the many spellings of the same fact (OpenTelemetry gen_ai.* current and
//! deprecated, OpenInference, OpenLIT, OpenLLMetry, vLLM, Plumb's own `plumb.*`) fill one set of
//! promoted columns.
//!
//! Scalar columns are driven by [`MAPPINGS`]: one row per (attribute, column), and the first
//! row in table order whose attribute is present wins, so current spellings are listed before
//! deprecated ones. Time to first token needs more than one attribute and has a function below;
//! prompts, responses and documents are read by [`crate::messages`], which also says which
//! attributes the text columns hold in full (see [`StoredOnce`]).

use std::collections::HashMap;
use std::sync::OnceLock;

use opentelemetry_proto::tonic::trace::v1::span::Event;
use plumb_store::records::GenAiFields;

use crate::attributes::AttrView;
use crate::messages::{self, StoredOnce};

/// A promoted column filled from attributes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Column {
    OperationName,
    ProviderName,
    RequestModel,
    ResponseModel,
    InputTokens,
    OutputTokens,
    CacheReadInputTokens,
    CacheCreationInputTokens,
    ReasoningOutputTokens,
    TimeToFirstChunk,
    TimePerOutputToken,
    FinishReasons,
    OutputType,
    ConversationId,
    AgentName,
    ToolName,
    Route,
    CostUsd,
    QueueTime,
    Engine,
    GpuPool,
    CacheHit,
    RetryCount,
    Fallback,
    ErrorType,
}

/// Who spells an attribute this way; documentation only.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// OpenTelemetry GenAI semantic conventions, current spelling.
    GenAi,
    /// OpenTelemetry GenAI semantic conventions, an older spelling still sent by instrumentations.
    GenAiDeprecated,
    OpenInference,
    /// OpenLIT's span attributes.
    OpenLit,
    /// vLLM's request spans.
    Vllm,
    /// Plumb's own attributes (gateways and serving layers set these).
    Plumb,
    /// General OpenTelemetry semantic conventions (HTTP, errors).
    Otel,
}

#[derive(Debug, Clone, Copy)]
pub struct Mapping {
    pub attribute: &'static str,
    pub column: Column,
    pub source: Source,
}

const fn m(attribute: &'static str, column: Column, source: Source) -> Mapping {
    Mapping {
        attribute,
        column,
        source,
    }
}

use Column as C;
use Source as S;

/// Attribute → column; for each column the first attribute present (in this order) wins.
pub const MAPPINGS: &[Mapping] = &[
    m("gen_ai.operation.name", C::OperationName, S::GenAi),
    m("gen_ai.provider.name", C::ProviderName, S::GenAi),
    m("gen_ai.system", C::ProviderName, S::GenAiDeprecated),
    m("llm.provider", C::ProviderName, S::OpenInference),
    m("llm.system", C::ProviderName, S::OpenInference),
    m("gen_ai.request.model", C::RequestModel, S::GenAi),
    m("llm.model_name", C::RequestModel, S::OpenInference),
    m("gen_ai.response.model", C::ResponseModel, S::GenAi),
    m("llm.model_name", C::ResponseModel, S::OpenInference),
    m("gen_ai.usage.input_tokens", C::InputTokens, S::GenAi),
    m(
        "gen_ai.usage.prompt_tokens",
        C::InputTokens,
        S::GenAiDeprecated,
    ),
    m("llm.token_count.prompt", C::InputTokens, S::OpenInference),
    m("gen_ai.usage.output_tokens", C::OutputTokens, S::GenAi),
    m(
        "gen_ai.usage.completion_tokens",
        C::OutputTokens,
        S::GenAiDeprecated,
    ),
    m(
        "llm.token_count.completion",
        C::OutputTokens,
        S::OpenInference,
    ),
    m(
        "gen_ai.usage.cache_read.input_tokens",
        C::CacheReadInputTokens,
        S::GenAi,
    ),
    m(
        "gen_ai.usage.cache_read_input_tokens",
        C::CacheReadInputTokens,
        S::GenAiDeprecated,
    ),
    m(
        "gen_ai.usage.input_tokens.cached",
        C::CacheReadInputTokens,
        S::GenAiDeprecated,
    ),
    m(
        "llm.token_count.prompt_details.cache_read",
        C::CacheReadInputTokens,
        S::OpenInference,
    ),
    m(
        "gen_ai.usage.cache_creation.input_tokens",
        C::CacheCreationInputTokens,
        S::GenAi,
    ),
    m(
        "gen_ai.usage.cache_creation_input_tokens",
        C::CacheCreationInputTokens,
        S::GenAiDeprecated,
    ),
    m(
        "gen_ai.usage.input_tokens.cache_write",
        C::CacheCreationInputTokens,
        S::GenAiDeprecated,
    ),
    m(
        "llm.token_count.prompt_details.cache_write",
        C::CacheCreationInputTokens,
        S::OpenInference,
    ),
    m(
        "gen_ai.usage.reasoning.output_tokens",
        C::ReasoningOutputTokens,
        S::GenAi,
    ),
    m(
        "gen_ai.usage.output_tokens.reasoning",
        C::ReasoningOutputTokens,
        S::GenAiDeprecated,
    ),
    m(
        "gen_ai.usage.reasoning_tokens",
        C::ReasoningOutputTokens,
        S::GenAiDeprecated,
    ),
    m(
        "llm.token_count.completion_details.reasoning",
        C::ReasoningOutputTokens,
        S::OpenInference,
    ),
    m(
        "gen_ai.response.time_to_first_chunk",
        C::TimeToFirstChunk,
        S::GenAi,
    ),
    m(
        "gen_ai.server.time_to_first_token",
        C::TimeToFirstChunk,
        S::OpenLit,
    ),
    m(
        "gen_ai.latency.time_to_first_token",
        C::TimeToFirstChunk,
        S::Vllm,
    ),
    m("plumb.time_to_first_token", C::TimeToFirstChunk, S::Plumb),
    m(
        "gen_ai.server.time_per_output_token",
        C::TimePerOutputToken,
        S::OpenLit,
    ),
    m(
        "plumb.time_per_output_token",
        C::TimePerOutputToken,
        S::Plumb,
    ),
    m("gen_ai.response.finish_reasons", C::FinishReasons, S::GenAi),
    m("gen_ai.output.type", C::OutputType, S::GenAi),
    m("gen_ai.conversation.id", C::ConversationId, S::GenAi),
    m("session.id", C::ConversationId, S::OpenInference),
    m("gen_ai.agent.name", C::AgentName, S::GenAi),
    m("agent.name", C::AgentName, S::OpenInference),
    m("gen_ai.tool.name", C::ToolName, S::GenAi),
    m("tool.name", C::ToolName, S::OpenInference),
    m("plumb.route", C::Route, S::Plumb),
    m("http.route", C::Route, S::Otel),
    m("plumb.cost_usd", C::CostUsd, S::Plumb),
    m("gen_ai.usage.cost", C::CostUsd, S::OpenLit),
    m("llm.cost.total", C::CostUsd, S::OpenInference),
    m("plumb.queue_time", C::QueueTime, S::Plumb),
    m("gen_ai.latency.time_in_queue", C::QueueTime, S::Vllm),
    m("plumb.engine", C::Engine, S::Plumb),
    m("plumb.route.engine", C::Engine, S::Plumb),
    m("plumb.gpu_pool", C::GpuPool, S::Plumb),
    m("plumb.route.pool", C::GpuPool, S::Plumb),
    m("plumb.cache_hit", C::CacheHit, S::Plumb),
    m("plumb.route.cache_hit", C::CacheHit, S::Plumb),
    m("plumb.retry_count", C::RetryCount, S::Plumb),
    m("plumb.route.retry_count", C::RetryCount, S::Plumb),
    m("plumb.fallback", C::Fallback, S::Plumb),
    m("plumb.route.fallback", C::Fallback, S::Plumb),
    m("error.type", C::ErrorType, S::Otel),
];

/// Event names that mark the first streamed chunk of a response.
pub const FIRST_TOKEN_EVENTS: &[&str] = &[
    // OpenInference's OpenAI instrumentation
    "First Token Stream Event",
    // OpenLLMetry, one per chunk: the first one counts
    "gen_ai.content.completion.chunk",
    "gen_ai.first_token",
];

/// OpenInference span kinds as GenAI operation names, used when no operation name is set.
const OPENINFERENCE_KINDS: &[(&str, &str)] = &[
    ("LLM", "chat"),
    ("EMBEDDING", "embeddings"),
    ("TOOL", "execute_tool"),
    ("AGENT", "invoke_agent"),
    ("RETRIEVER", "retrieval"),
    ("RERANKER", "rerank"),
    ("CHAIN", "chain"),
];

/// Attribute name -> positions in [`MAPPINGS`] (an attribute may fill more than one column).
/// Hashed with foldhash: SipHash's resistance to flooding buys nothing for a fixed key set, and
/// this lookup runs for every attribute of every span.
type MappingIndex = HashMap<&'static str, Vec<usize>, foldhash::fast::FixedState>;

fn mappings_by_attribute() -> &'static MappingIndex {
    static INDEX: OnceLock<MappingIndex> = OnceLock::new();
    INDEX.get_or_init(|| {
        let mut index = MappingIndex::default();
        for (i, m) in MAPPINGS.iter().enumerate() {
            index.entry(m.attribute).or_default().push(i);
        }
        index
    })
}

/// The span facts normalization needs besides attributes.
pub struct SpanFacts<'a> {
    pub service_name: &'a str,
    pub span_name: &'a str,
    pub start_time_unix_nano: i64,
    pub end_time_unix_nano: i64,
    pub is_error: bool,
    pub events: &'a [Event],
}

/// Fills the promoted columns of one span (cost is added later from the price table), and
/// names the attributes that the text columns hold in full.
pub fn normalize(attrs: &AttrView<'_>, span: &SpanFacts<'_>) -> (GenAiFields, StoredOnce) {
    let mut g = GenAiFields::default();
    let mut route = None;
    // Only the mappings whose attribute the span has, still in table order so that precedence
    // holds: looking each of ~80 keys up in every span's list was a visible share of ingest.
    let by_key = mappings_by_attribute();
    let mut present: Vec<usize> = attrs
        .iter()
        .filter_map(|(key, _)| by_key.get(key))
        .flatten()
        .copied()
        .collect();
    present.sort_unstable();
    present.dedup();
    for i in present {
        apply(&mut g, &mut route, attrs, &MAPPINGS[i]);
    }
    if g.operation_name.is_none() {
        g.operation_name = attrs.string("openinference.span.kind").and_then(|k| {
            OPENINFERENCE_KINDS
                .iter()
                .find(|(kind, _)| k.eq_ignore_ascii_case(kind))
                .map(|(_, op)| op.to_string())
        });
    }
    if g.response_time_to_first_chunk.is_none() {
        g.response_time_to_first_chunk = ttft_from_events(span);
    }
    if g.time_per_output_token.is_none() {
        g.time_per_output_token = time_per_output_token(span, &g);
    }
    if g.error_type.is_none() && span.is_error {
        g.error_type = exception_type(span.events);
    }
    let text = messages::extract(attrs, span.events, &mut g.response_finish_reasons);
    g.input_text = text.input_text;
    g.output_text = text.output_text;
    g.retrieval_documents = text.retrieval_documents;
    g.route = route.unwrap_or_else(|| {
        format!(
            "{}/{}",
            span.service_name,
            g.operation_name.as_deref().unwrap_or(span.span_name)
        )
    });
    (g, text.stored_once)
}

fn apply(g: &mut GenAiFields, route: &mut Option<String>, a: &AttrView<'_>, m: &Mapping) {
    fn set<T>(slot: &mut Option<T>, v: impl FnOnce() -> Option<T>) {
        if slot.is_none() {
            *slot = v();
        }
    }
    let k = m.attribute;
    match m.column {
        C::OperationName => set(&mut g.operation_name, || a.string(k)),
        C::ProviderName => set(&mut g.provider_name, || a.string(k)),
        C::RequestModel => set(&mut g.request_model, || a.string(k)),
        C::ResponseModel => set(&mut g.response_model, || a.string(k)),
        C::InputTokens => set(&mut g.usage_input_tokens, || a.int(k)),
        C::OutputTokens => set(&mut g.usage_output_tokens, || a.int(k)),
        C::CacheReadInputTokens => set(&mut g.usage_cache_read_input_tokens, || a.int(k)),
        C::CacheCreationInputTokens => set(&mut g.usage_cache_creation_input_tokens, || a.int(k)),
        C::ReasoningOutputTokens => set(&mut g.usage_reasoning_output_tokens, || a.int(k)),
        C::TimeToFirstChunk => set(&mut g.response_time_to_first_chunk, || a.float(k)),
        C::TimePerOutputToken => set(&mut g.time_per_output_token, || a.float(k)),
        C::FinishReasons => set(&mut g.response_finish_reasons, || a.strings(k)),
        C::OutputType => set(&mut g.output_type, || a.string(k)),
        C::ConversationId => set(&mut g.conversation_id, || a.string(k)),
        C::AgentName => set(&mut g.agent_name, || a.string(k)),
        C::ToolName => set(&mut g.tool_name, || a.string(k)),
        C::Route => set(route, || a.string(k)),
        C::CostUsd => set(&mut g.cost_usd, || a.float(k)),
        C::QueueTime => set(&mut g.queue_time, || a.float(k)),
        C::Engine => set(&mut g.engine, || a.string(k)),
        C::GpuPool => set(&mut g.gpu_pool, || a.string(k)),
        C::CacheHit => set(&mut g.cache_hit, || a.bool(k)),
        C::RetryCount => set(&mut g.retry_count, || a.int(k)),
        C::Fallback => set(&mut g.fallback, || a.bool(k)),
        C::ErrorType => set(&mut g.error_type, || a.string(k)),
    }
}

fn ttft_from_events(span: &SpanFacts<'_>) -> Option<f64> {
    span.events
        .iter()
        .filter(|e| FIRST_TOKEN_EVENTS.contains(&e.name.as_str()))
        .map(|e| e.time_unix_nano as i64)
        .min()
        .filter(|t| *t >= span.start_time_unix_nano)
        .map(|t| (t - span.start_time_unix_nano) as f64 / 1e9)
}

/// Decode time per output token: the time after the first token over the tokens after it.
fn time_per_output_token(span: &SpanFacts<'_>, g: &GenAiFields) -> Option<f64> {
    let ttft = g.response_time_to_first_chunk?;
    let tokens = g.usage_output_tokens.filter(|t| *t > 1)?;
    let total = (span.end_time_unix_nano - span.start_time_unix_nano) as f64 / 1e9;
    let decode = total - ttft;
    (decode >= 0.0).then(|| decode / (tokens - 1) as f64)
}

fn exception_type(events: &[Event]) -> Option<String> {
    events
        .iter()
        .find(|e| e.name == "exception")
        .and_then(|e| AttrView::new(&e.attributes).string("exception.type"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::attributes::test_support::*;
    use opentelemetry_proto::tonic::common::v1::{any_value::Value, KeyValue};

    fn facts<'a>(events: &'a [Event]) -> SpanFacts<'a> {
        SpanFacts {
            service_name: "svc",
            span_name: "span",
            start_time_unix_nano: 1_000_000_000,
            end_time_unix_nano: 3_000_000_000,
            is_error: false,
            events,
        }
    }

    fn norm(kvs: &[KeyValue]) -> GenAiFields {
        normalize(&AttrView::new(kvs), &facts(&[])).0
    }

    /// The value a mapping's column holds, as text, for the table-driven test.
    fn column_text(g: &GenAiFields, route: &str, c: Column) -> Option<String> {
        let s = |v: &Option<String>| v.clone();
        let n = |v: &Option<i64>| v.map(|x| x.to_string());
        let f = |v: &Option<f64>| v.map(|x| x.to_string());
        let b = |v: &Option<bool>| v.map(|x| x.to_string());
        match c {
            C::OperationName => s(&g.operation_name),
            C::ProviderName => s(&g.provider_name),
            C::RequestModel => s(&g.request_model),
            C::ResponseModel => s(&g.response_model),
            C::InputTokens => n(&g.usage_input_tokens),
            C::OutputTokens => n(&g.usage_output_tokens),
            C::CacheReadInputTokens => n(&g.usage_cache_read_input_tokens),
            C::CacheCreationInputTokens => n(&g.usage_cache_creation_input_tokens),
            C::ReasoningOutputTokens => n(&g.usage_reasoning_output_tokens),
            C::TimeToFirstChunk => f(&g.response_time_to_first_chunk),
            C::TimePerOutputToken => f(&g.time_per_output_token),
            C::FinishReasons => g.response_finish_reasons.as_ref().map(|v| v.join(",")),
            C::OutputType => s(&g.output_type),
            C::ConversationId => s(&g.conversation_id),
            C::AgentName => s(&g.agent_name),
            C::ToolName => s(&g.tool_name),
            C::Route => Some(route.to_string()),
            C::CostUsd => f(&g.cost_usd),
            C::QueueTime => f(&g.queue_time),
            C::Engine => s(&g.engine),
            C::GpuPool => s(&g.gpu_pool),
            C::CacheHit => b(&g.cache_hit),
            C::RetryCount => n(&g.retry_count),
            C::Fallback => b(&g.fallback),
            C::ErrorType => s(&g.error_type),
        }
    }

    /// A value of the column's type, as an attribute, and its expected text.
    fn sample(m: &Mapping) -> (KeyValue, String) {
        match m.column {
            C::InputTokens
            | C::OutputTokens
            | C::CacheReadInputTokens
            | C::CacheCreationInputTokens
            | C::ReasoningOutputTokens
            | C::RetryCount => (i(m.attribute, 17), "17".into()),
            C::TimeToFirstChunk | C::TimePerOutputToken | C::CostUsd | C::QueueTime => {
                (f(m.attribute, 0.25), "0.25".into())
            }
            C::CacheHit | C::Fallback => (b(m.attribute, true), "true".into()),
            _ => (s(m.attribute, "v-1"), "v-1".into()),
        }
    }

    /// A value of the column's type that differs from `sample`'s.
    fn other_sample(m: &Mapping) -> KeyValue {
        match sample(m).0.value.and_then(|v| v.value) {
            Some(Value::IntValue(_)) => i(m.attribute, 99),
            Some(Value::DoubleValue(_)) => f(m.attribute, 9.5),
            Some(Value::BoolValue(_)) => b(m.attribute, false),
            _ => s(m.attribute, "later"),
        }
    }

    /// One check per row of MAPPINGS: the attribute alone fills its column.
    #[test]
    fn every_mapping_fills_its_column() {
        for mapping in MAPPINGS {
            let (kv, expected) = sample(mapping);
            let g = norm(std::slice::from_ref(&kv));
            assert_eq!(
                column_text(&g, &g.route, mapping.column).as_deref(),
                Some(expected.as_str()),
                "{} ({:?}) should fill {:?}",
                mapping.attribute,
                mapping.source,
                mapping.column
            );
        }
    }

    /// For each column, the first listed spelling wins over later ones.
    #[test]
    fn earlier_spellings_win() {
        let mut seen = Vec::new();
        for (idx, mapping) in MAPPINGS.iter().enumerate() {
            if seen.contains(&mapping.column) {
                continue;
            }
            seen.push(mapping.column);
            let later: Vec<&Mapping> = MAPPINGS[idx + 1..]
                .iter()
                .filter(|o| o.column == mapping.column && o.attribute != mapping.attribute)
                .collect();
            if later.is_empty() {
                continue;
            }
            let (first, expected) = sample(mapping);
            let mut kvs: Vec<KeyValue> = later.iter().map(|o| other_sample(o)).collect();
            kvs.push(first);
            let g = norm(&kvs);
            assert_eq!(
                column_text(&g, &g.route, mapping.column).as_deref(),
                Some(expected.as_str()),
                "{} must win for {:?}",
                mapping.attribute,
                mapping.column
            );
        }
    }

    #[test]
    fn route_falls_back_to_service_and_operation() {
        assert_eq!(
            norm(&[s("gen_ai.operation.name", "chat")]).route,
            "svc/chat"
        );
        assert_eq!(norm(&[]).route, "svc/span");
        assert_eq!(
            norm(&[s("http.route", "/v1/chat"), s("plumb.route", "support-bot")]).route,
            "support-bot"
        );
    }

    #[test]
    fn openinference_span_kind_gives_an_operation() {
        assert_eq!(
            norm(&[s("openinference.span.kind", "LLM")])
                .operation_name
                .as_deref(),
            Some("chat")
        );
    }

    #[test]
    fn ttft_and_tpot_from_stream_events() {
        for name in FIRST_TOKEN_EVENTS {
            let events = [
                Event {
                    name: name.to_string(),
                    time_unix_nano: 1_500_000_000,
                    ..Default::default()
                },
                Event {
                    name: name.to_string(),
                    time_unix_nano: 1_700_000_000,
                    ..Default::default()
                },
            ];
            let (g, _) = normalize(
                &AttrView::new(&[i("gen_ai.usage.output_tokens", 11)]),
                &facts(&events),
            );
            assert_eq!(g.response_time_to_first_chunk, Some(0.5), "{name}");
            // 2 s total, 0.5 s to the first token, 10 tokens after it.
            assert_eq!(g.time_per_output_token, Some(0.15), "{name}");
        }
    }

    #[test]
    fn error_type_from_exception_event() {
        let events = [Event {
            name: "exception".into(),
            attributes: vec![s("exception.type", "RateLimitError")],
            ..Default::default()
        }];
        let mut f = facts(&events);
        f.is_error = true;
        let (g, _) = normalize(&AttrView::new(&[]), &f);
        assert_eq!(g.error_type.as_deref(), Some("RateLimitError"));
    }
}
