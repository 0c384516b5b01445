//! What an evaluator reads of a span: the `spans` columns (docs/schema.md) that evaluators need.
//! [`SpanView`] borrows them, so that scanning many spans copies no text; [`SpanRow`] owns them,
//! as read back from the store by the runners, and lends out a view.

use std::collections::BTreeMap;

use serde::Deserialize;

#[derive(Debug, Clone, Default)]
pub struct SpanView<'a> {
    pub trace_id: &'a str,
    pub span_id: &'a str,
    pub parent_span_id: Option<&'a str>,
    pub span_name: &'a str,
    pub span_kind: &'a str,
    pub route: Option<&'a str>,
    pub gen_ai_operation_name: Option<&'a str>,
    pub gen_ai_request_model: Option<&'a str>,
    pub gen_ai_agent_name: Option<&'a str>,
    pub gen_ai_output_type: Option<&'a str>,
    pub gen_ai_response_finish_reasons: Vec<&'a str>,
    pub input_text: Option<&'a str>,
    pub output_text: Option<&'a str>,
    /// Contents of the documents retrieved for (or by) this span.
    pub retrieval_documents: Vec<&'a str>,
    pub status_code: &'a str,
    pub status_message: Option<&'a str>,
    pub retry_count: Option<i64>,
    /// `span_attributes`, for settings a span carries itself (e.g. its output schema).
    pub attributes: BTreeMap<&'a str, &'a str>,
}

impl SpanView<'_> {
    /// Whether the span is a model call that produces text (not an embedding, tool or agent span).
    pub fn is_generation(&self) -> bool {
        matches!(
            self.gen_ai_operation_name,
            Some("chat" | "text_completion" | "generate_content")
        )
    }

    /// Whether the span is the run of an agent (the unit `task_completion` judges).
    pub fn is_agent_run(&self) -> bool {
        self.gen_ai_operation_name == Some("invoke_agent")
            || self.span_kind == "AGENT"
            || self.attributes.get("openinference.span.kind") == Some(&"AGENT")
    }

    pub fn is_retrieval(&self) -> bool {
        self.gen_ai_operation_name == Some("retrieval")
            || self.attributes.get("openinference.span.kind") == Some(&"RETRIEVER")
    }
}

/// One retrieved document as the `retrieval_documents` column holds it.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
pub struct Document {
    pub id: Option<String>,
    pub score: Option<f64>,
    pub content: Option<String>,
}

/// A span as the runners read it back from the store: the columns of [`SpanView`] plus what
/// an `evals` row repeats for joins (start time, route, model). Field names are column names.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct SpanRow {
    pub trace_id: String,
    pub span_id: String,
    pub parent_span_id: Option<String>,
    pub span_name: String,
    pub span_kind: String,
    /// Unix nanoseconds (selected as `CAST(start_time AS BIGINT) AS start_ns`).
    pub start_ns: i64,
    pub route: String,
    pub gen_ai_operation_name: Option<String>,
    pub gen_ai_request_model: Option<String>,
    pub gen_ai_agent_name: Option<String>,
    pub gen_ai_output_type: Option<String>,
    pub gen_ai_response_finish_reasons: Option<Vec<String>>,
    pub input_text: Option<String>,
    pub output_text: Option<String>,
    pub retrieval_documents: Option<Vec<Document>>,
    pub status_code: String,
    pub status_message: Option<String>,
    pub retry_count: Option<i64>,
    pub span_attributes: BTreeMap<String, String>,
}

impl SpanRow {
    /// The columns a [`SpanRow`] is read from, for a `SELECT` over `spans`.
    pub const COLUMNS: &'static str = "trace_id, span_id, parent_span_id, span_name, span_kind, \
        CAST(start_time AS BIGINT) AS start_ns, route, gen_ai_operation_name, gen_ai_request_model, \
        gen_ai_agent_name, gen_ai_output_type, gen_ai_response_finish_reasons, input_text, \
        output_text, retrieval_documents, status_code, status_message, retry_count, span_attributes";

    pub fn view(&self) -> SpanView<'_> {
        SpanView {
            trace_id: &self.trace_id,
            span_id: &self.span_id,
            parent_span_id: self.parent_span_id.as_deref(),
            span_name: &self.span_name,
            span_kind: &self.span_kind,
            route: Some(&self.route),
            gen_ai_operation_name: self.gen_ai_operation_name.as_deref(),
            gen_ai_request_model: self.gen_ai_request_model.as_deref(),
            gen_ai_agent_name: self.gen_ai_agent_name.as_deref(),
            gen_ai_output_type: self.gen_ai_output_type.as_deref(),
            gen_ai_response_finish_reasons: self
                .gen_ai_response_finish_reasons
                .iter()
                .flatten()
                .map(String::as_str)
                .collect(),
            input_text: self.input_text.as_deref(),
            output_text: self.output_text.as_deref(),
            retrieval_documents: self
                .retrieval_documents
                .iter()
                .flatten()
                .filter_map(|d| d.content.as_deref())
                .collect(),
            status_code: &self.status_code,
            status_message: self.status_message.as_deref(),
            retry_count: self.retry_count,
            attributes: self
                .span_attributes
                .iter()
                .map(|(k, v)| (k.as_str(), v.as_str()))
                .collect(),
        }
    }
}
