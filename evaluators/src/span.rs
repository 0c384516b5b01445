//! What an evaluator reads of a span: the `spans` columns (docs/schema.md) that checks need,
//! borrowed so that scanning many spans copies no text.

use std::collections::BTreeMap;

#[derive(Debug, Clone, Default)]
pub struct SpanView<'a> {
    pub trace_id: &'a str,
    pub span_id: &'a str,
    pub route: Option<&'a str>,
    pub gen_ai_operation_name: Option<&'a str>,
    pub gen_ai_output_type: Option<&'a str>,
    pub gen_ai_response_finish_reasons: Vec<&'a str>,
    pub output_text: Option<&'a str>,
    pub status_code: &'a str,
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
}
