//! `empty_output`: a generation that succeeded but said nothing. A stop for a tool call has no
//! text by design and passes.

use super::is_tool_call_finish;
use crate::{Evaluator, SpanView, Verdict};

#[derive(Debug, Default, Clone, Copy)]
pub struct EmptyOutput;

impl Evaluator for EmptyOutput {
    fn name(&self) -> &'static str {
        "empty_output"
    }

    fn version(&self) -> u32 {
        1
    }

    fn applies_to(&self, span: &SpanView) -> bool {
        // A failed call is the error rate's business, not an empty answer.
        span.is_generation() && span.status_code != "ERROR"
    }

    fn evaluate(&self, span: &SpanView) -> Verdict {
        let text = span.output_text.unwrap_or("");
        if !text.trim().is_empty() {
            return Verdict::pass(
                "non_empty",
                format!("{} characters of output", text.chars().count()),
            );
        }
        if let Some(r) = span
            .gen_ai_response_finish_reasons
            .iter()
            .find(|r| is_tool_call_finish(r))
        {
            return Verdict::pass(
                "tool_call",
                format!("no text, because the model called a tool (finish reason `{r}`)"),
            );
        }
        Verdict::fail("empty", "the model returned no text")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_unless_a_tool_was_called() {
        let span = |out: Option<&'static str>, reasons: Vec<&'static str>| SpanView {
            gen_ai_operation_name: Some("chat"),
            status_code: "OK",
            output_text: out,
            gen_ai_response_finish_reasons: reasons,
            ..Default::default()
        };
        assert_eq!(
            EmptyOutput.evaluate(&span(Some("hi"), vec![])).label,
            "non_empty"
        );
        assert_eq!(
            EmptyOutput.evaluate(&span(Some(" \n"), vec!["stop"])).label,
            "empty"
        );
        assert_eq!(EmptyOutput.evaluate(&span(None, vec![])).label, "empty");
        assert_eq!(
            EmptyOutput.evaluate(&span(None, vec!["tool_calls"])).label,
            "tool_call"
        );
        let mut failed = span(None, vec![]);
        failed.status_code = "ERROR";
        assert!(!EmptyOutput.applies_to(&failed));
    }
}
