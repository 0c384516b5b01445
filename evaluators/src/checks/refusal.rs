//! `refusal`: the model declined to answer. A small, documented list of phrases that open a
//! refusal in English, looked for near the start of the output (a refusal leads; the same
//! words deep inside a long answer are usually quoted or hedged), plus the providers' own
//! `content_filter` finish reason.

use crate::{Evaluator, SpanView, Verdict};

/// Phrases that mark a refusal, lowercase, with straight apostrophes.
pub const REFUSAL_MARKERS: &[&str] = &[
    "i can't help with",
    "i cannot help with",
    "i can't assist with",
    "i cannot assist with",
    "i can't provide",
    "i cannot provide",
    "i'm sorry, but i can't",
    "i'm sorry, but i cannot",
    "i am sorry, but i cannot",
    "i'm unable to help",
    "i am unable to help",
    "i'm not able to help",
    "i won't be able to help",
    "i can't comply",
    "i cannot comply",
    "i must decline",
    "as an ai language model, i cannot",
    "as an ai language model, i can't",
];

/// How far into the output a marker counts.
const LEAD_CHARS: usize = 300;

#[derive(Debug, Default, Clone, Copy)]
pub struct Refusal;

impl Evaluator for Refusal {
    fn name(&self) -> &'static str {
        "refusal"
    }

    fn version(&self) -> u32 {
        1
    }

    fn applies_to(&self, span: &SpanView) -> bool {
        span.is_generation()
    }

    fn evaluate(&self, span: &SpanView) -> Verdict {
        if let Some(r) = span
            .gen_ai_response_finish_reasons
            .iter()
            .find(|r| r.eq_ignore_ascii_case("content_filter"))
        {
            return Verdict::fail(
                "content_filter",
                format!("the provider filtered the output (finish reason `{r}`)"),
            );
        }
        let lead: String = span
            .output_text
            .unwrap_or("")
            .chars()
            .take(LEAD_CHARS)
            .map(|c| if c == '\u{2019}' { '\'' } else { c })
            .collect::<String>()
            .to_lowercase();
        match REFUSAL_MARKERS.iter().find(|m| lead.contains(*m)) {
            Some(m) => Verdict::fail(
                "refusal",
                format!("the output opens with a refusal (\"{m}\")"),
            ),
            None => Verdict::pass("answered", "no refusal marker near the start of the output"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn span(out: &'static str) -> SpanView<'static> {
        SpanView {
            gen_ai_operation_name: Some("chat"),
            output_text: Some(out),
            ..Default::default()
        }
    }

    #[test]
    fn finds_refusals_at_the_start_only() {
        assert_eq!(
            Refusal
                .evaluate(&span("I’m sorry, but I can’t help with that."))
                .label,
            "refusal"
        );
        assert_eq!(
            Refusal
                .evaluate(&span("As an AI language model, I cannot browse."))
                .label,
            "refusal"
        );
        assert_eq!(
            Refusal
                .evaluate(&span("Paris is the capital of France."))
                .label,
            "answered"
        );
        let quoted = format!(
            "{} The bot then said \"I can't help with that\".",
            "Here is the log. ".repeat(30)
        );
        assert_eq!(
            Refusal
                .evaluate(&span(Box::leak(quoted.into_boxed_str())))
                .label,
            "answered"
        );
        let mut filtered = span("");
        filtered.gen_ai_response_finish_reasons = vec!["content_filter"];
        assert_eq!(Refusal.evaluate(&filtered).label, "content_filter");
    }
}
