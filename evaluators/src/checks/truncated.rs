//! `truncated`: did the model stop because it ran out of output tokens? Each provider spells it
//! differently: `length` (OpenAI), `max_tokens` (Anthropic), `MAX_TOKENS` (Gemini).

use crate::{Evaluator, SpanView, Verdict};

#[derive(Debug, Default, Clone, Copy)]
pub struct Truncated;

fn is_length_stop(reason: &str) -> bool {
    matches!(
        reason.to_ascii_lowercase().as_str(),
        "length" | "max_tokens" | "max_output_tokens" | "max_completion_tokens"
    )
}

impl Evaluator for Truncated {
    fn name(&self) -> &'static str {
        "truncated"
    }

    fn version(&self) -> u32 {
        1
    }

    fn applies_to(&self, span: &SpanView) -> bool {
        span.is_generation() && !span.gen_ai_response_finish_reasons.is_empty()
    }

    fn evaluate(&self, span: &SpanView) -> Verdict {
        match span
            .gen_ai_response_finish_reasons
            .iter()
            .find(|r| is_length_stop(r))
        {
            Some(r) => Verdict::fail(
                "truncated",
                format!("the model stopped at its output token limit (finish reason `{r}`)"),
            ),
            None => Verdict::pass(
                "complete",
                format!(
                    "finish reasons: {}",
                    span.gen_ai_response_finish_reasons.join(", ")
                ),
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_provider_spelling_of_a_length_stop() {
        for (reasons, label) in [
            (vec!["stop"], "complete"),
            (vec!["length"], "truncated"),
            (vec!["max_tokens"], "truncated"),
            (vec!["MAX_TOKENS"], "truncated"),
            (vec!["stop", "length"], "truncated"),
            (vec!["tool_calls"], "complete"),
        ] {
            let s = SpanView {
                gen_ai_operation_name: Some("chat"),
                gen_ai_response_finish_reasons: reasons.clone(),
                ..Default::default()
            };
            assert_eq!(Truncated.evaluate(&s).label, label, "{reasons:?}");
        }
        assert!(!Truncated.applies_to(&SpanView {
            gen_ai_operation_name: Some("embeddings"),
            gen_ai_response_finish_reasons: vec!["length"],
            ..Default::default()
        }));
    }
}
