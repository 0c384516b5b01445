//! `json_parse`: does a structured output parse as JSON, and match its JSON Schema when one is
//! declared? Works with no configuration for spans with `gen_ai_output_type = 'json'`.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Arc, Mutex};

use jsonschema::Validator;
use serde_json::Value;

use crate::{Evaluator, SpanView, Verdict};

/// Span attribute that carries the output's JSON Schema (as JSON text).
pub const SCHEMA_ATTRIBUTE: &str = "plumb.output.schema";

/// Compiled schemas kept at most; spans of one route share a handful.
const MAX_CACHED_SCHEMAS: usize = 1024;

#[derive(Debug, Default)]
pub struct JsonParse {
    /// Routes whose outputs are JSON even when spans do not say so.
    pub json_routes: BTreeSet<String>,
    /// JSON Schemas by route; a span's own `plumb.output.schema` attribute wins.
    pub schemas: BTreeMap<String, Value>,
    /// Compiled validators by schema source: compiling costs far more than validating.
    compiled: Mutex<HashMap<String, Result<Arc<Validator>, String>>>,
}

impl JsonParse {
    pub fn new(json_routes: BTreeSet<String>, schemas: BTreeMap<String, Value>) -> JsonParse {
        JsonParse {
            json_routes,
            schemas,
            compiled: Mutex::default(),
        }
    }

    fn has_schema(&self, span: &SpanView) -> bool {
        span.attributes.contains_key(SCHEMA_ATTRIBUTE)
            || span.route.is_some_and(|r| self.schemas.contains_key(r))
    }

    /// The span's validator, or why its schema cannot be used.
    fn validator(&self, span: &SpanView) -> Option<Result<Arc<Validator>, String>> {
        let (key, schema) = match (span.attributes.get(SCHEMA_ATTRIBUTE), span.route) {
            (Some(text), _) => (format!("span:{text}"), None),
            (None, Some(r)) => (format!("route:{r}"), Some(self.schemas.get(r)?)),
            (None, None) => return None,
        };
        let mut cache = self.compiled.lock().expect("schema cache lock");
        if let Some(v) = cache.get(&key) {
            return Some(v.clone());
        }
        let compiled = match schema {
            Some(s) => Ok(s.clone()),
            None => serde_json::from_str::<Value>(&key["span:".len()..])
                .map_err(|e| format!("is not JSON: {e}")),
        }
        .and_then(|s| {
            jsonschema::validator_for(&s)
                .map(Arc::new)
                .map_err(|e| format!("is not a valid JSON Schema: {e}"))
        });
        if cache.len() >= MAX_CACHED_SCHEMAS {
            cache.clear();
        }
        cache.insert(key, compiled.clone());
        Some(compiled)
    }
}

impl Evaluator for JsonParse {
    fn name(&self) -> &'static str {
        "json_parse"
    }

    fn version(&self) -> u32 {
        1
    }

    fn applies_to(&self, span: &SpanView) -> bool {
        span.gen_ai_output_type == Some("json")
            || span.route.is_some_and(|r| self.json_routes.contains(r))
            || self.has_schema(span)
    }

    fn evaluate(&self, span: &SpanView) -> Verdict {
        let text = span.output_text.unwrap_or("").trim();
        if text.is_empty() {
            return Verdict::fail("empty", "the output is empty, but JSON was expected");
        }
        let value: Value = match serde_json::from_str(text) {
            Ok(v) => v,
            Err(e) => {
                let fenced = if text.starts_with("```") {
                    " The JSON is wrapped in a Markdown code fence."
                } else {
                    ""
                };
                return Verdict::fail(
                    "invalid_json",
                    format!("the output does not parse as JSON: {e}.{fenced}"),
                );
            }
        };
        let validator = match self.validator(span) {
            None => return Verdict::pass("valid", "the output parses as JSON"),
            Some(Err(why)) => return schema_error(why),
            Some(Ok(v)) => v,
        };
        let errors: Vec<String> = validator
            .iter_errors(&value)
            .take(3)
            .map(|e| {
                let at = e.instance_path().to_string();
                let at = if at.is_empty() { "/".to_string() } else { at };
                format!("at {at}: {e}")
            })
            .collect();
        if errors.is_empty() {
            Verdict::pass("valid", "the output parses as JSON and matches its schema")
        } else {
            Verdict::fail(
                "schema_mismatch",
                format!(
                    "the output parses as JSON but does not match its schema: {}",
                    errors.join("; ")
                ),
            )
        }
    }
}

/// A broken schema is the configuration's fault, not the model's: the span is not failed.
fn schema_error(why: String) -> Verdict {
    Verdict {
        score: None,
        label: "schema_error".into(),
        passed: true,
        explanation: format!(
            "the output parses as JSON; its declared schema {why}, so it was not checked"
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn span<'a>(output: &'a str, schema: Option<&'a str>) -> SpanView<'a> {
        let mut s = SpanView {
            gen_ai_output_type: Some("json"),
            output_text: Some(output),
            route: Some("extract"),
            ..Default::default()
        };
        if let Some(schema) = schema {
            s.attributes.insert(SCHEMA_ATTRIBUTE, schema);
        }
        s
    }

    #[test]
    fn parses_with_no_configuration() {
        let e = JsonParse::default();
        assert!(e.applies_to(&span("{}", None)));
        assert!(!e.applies_to(&SpanView {
            output_text: Some("{}"),
            ..Default::default()
        }));
        assert_eq!(e.evaluate(&span(r#" {"a": [1, 2]} "#, None)).label, "valid");
        let bad = e.evaluate(&span(r#"{"a": [1, 2}"#, None));
        assert_eq!((bad.label.as_str(), bad.passed), ("invalid_json", false));
        assert!(
            bad.explanation.contains("line 1 column 12"),
            "{}",
            bad.explanation
        );
        let fenced = e.evaluate(&span("```json\n{}\n```", None));
        assert!(
            fenced.explanation.contains("code fence"),
            "{}",
            fenced.explanation
        );
        assert_eq!(e.evaluate(&span("  ", None)).label, "empty");
    }

    #[test]
    fn checks_the_schema_of_the_span_or_its_route() {
        let schema = r#"{"type": "object", "required": ["name", "age"],
                         "properties": {"age": {"type": "integer"}}}"#;
        let e = JsonParse::default();
        assert_eq!(
            e.evaluate(&span(r#"{"name": "a", "age": 3}"#, Some(schema)))
                .label,
            "valid"
        );
        let v = e.evaluate(&span(r#"{"name": "a", "age": "3"}"#, Some(schema)));
        assert_eq!(v.label, "schema_mismatch");
        assert!(v.explanation.contains("at /age"), "{}", v.explanation);
        let v = e.evaluate(&span(r#"{"age": 3}"#, Some(schema)));
        assert!(v.explanation.contains("name"), "{}", v.explanation);

        let by_route = JsonParse::new(
            Default::default(),
            [("extract".to_string(), json!({"type": "array"}))].into(),
        );
        let mut untyped = span("{}", None);
        untyped.gen_ai_output_type = None;
        assert!(by_route.applies_to(&untyped));
        assert_eq!(by_route.evaluate(&untyped).label, "schema_mismatch");

        let broken = e.evaluate(&span("{}", Some(r#"{"type": 12}"#)));
        assert_eq!(
            (broken.label.as_str(), broken.passed),
            ("schema_error", true)
        );
    }
}
