//! `tool_call_args`: does every tool call in a model's output name a tool it was offered, with
//! arguments that parse and match that tool's declared parameters?
//!
//! Calls and definitions are read from the attributes the collector keeps as sent: the GenAI
//! conventions' `gen_ai.output.messages` (parts of type `tool_call`) and `gen_ai.tool.definitions`,
//! OpenAI-shaped `tool_calls` inside messages, and OpenInference's flattened
//! `llm.output_messages.N.message.tool_calls.M.tool_call.function.*` and `llm.tools.N.tool.json_schema`.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

use jsonschema::Validator;
use serde_json::Value;

use crate::{Evaluator, SpanView, Verdict};

/// One tool call as the model made it.
#[derive(Debug, Clone, PartialEq)]
pub struct ToolCall {
    pub name: String,
    /// The arguments as sent: a JSON object, or a string that should hold one.
    pub arguments: Value,
}

/// Compiled parameter schemas kept at most.
const MAX_CACHED_SCHEMAS: usize = 1024;

#[derive(Debug, Default)]
pub struct ToolCallArgs {
    compiled: Mutex<HashMap<String, Result<Arc<Validator>, String>>>,
}

impl ToolCallArgs {
    fn validator(&self, schema: &Value) -> Result<Arc<Validator>, String> {
        let key = schema.to_string();
        let mut cache = self.compiled.lock().expect("schema cache lock");
        if let Some(v) = cache.get(&key) {
            return v.clone();
        }
        let v = jsonschema::validator_for(schema)
            .map(Arc::new)
            .map_err(|e| format!("its parameters are not a valid JSON Schema: {e}"));
        if cache.len() >= MAX_CACHED_SCHEMAS {
            cache.clear();
        }
        cache.insert(key, v.clone());
        v
    }

    /// Why this call is wrong, or `None` when it is right.
    fn problem(&self, call: &ToolCall, tools: Option<&BTreeMap<String, Value>>) -> Option<String> {
        let args = match &call.arguments {
            Value::String(text) if text.trim().is_empty() => Value::Object(Default::default()),
            Value::String(text) => match serde_json::from_str::<Value>(text) {
                Ok(v) => v,
                Err(e) => return Some(format!("`{}`: arguments are not JSON ({e})", call.name)),
            },
            Value::Null => Value::Object(Default::default()),
            other => other.clone(),
        };
        if !args.is_object() {
            return Some(format!("`{}`: arguments are not a JSON object", call.name));
        }
        let tools = tools?;
        let Some(parameters) = tools.get(&call.name) else {
            let offered: Vec<&str> = tools.keys().map(String::as_str).collect();
            return Some(format!(
                "`{}` is not a tool the model was offered ({})",
                call.name,
                offered.join(", ")
            ));
        };
        if parameters.is_null() {
            return None;
        }
        match self.validator(parameters) {
            Err(e) => Some(format!("`{}`: {e}", call.name)),
            Ok(v) => {
                // A few errors, not only the first: a missing field and a wrong type are often
                // one mistake seen twice, and the pair says which.
                let errors: Vec<String> = v
                    .iter_errors(&args)
                    .take(3)
                    .map(|e| {
                        let at = e.instance_path().to_string();
                        format!("arguments{at}: {e}")
                    })
                    .collect();
                (!errors.is_empty()).then(|| format!("`{}`: {}", call.name, errors.join(", ")))
            }
        }
    }
}

impl Evaluator for ToolCallArgs {
    fn name(&self) -> &'static str {
        "tool_call_args"
    }

    fn version(&self) -> u32 {
        1
    }

    fn applies_to(&self, span: &SpanView) -> bool {
        !tool_calls(span).is_empty()
    }

    fn evaluate(&self, span: &SpanView) -> Verdict {
        let calls = tool_calls(span);
        let tools = tool_definitions(span);
        let problems: Vec<String> = calls
            .iter()
            .filter_map(|c| self.problem(c, tools.as_ref()))
            .collect();
        let good = calls.len() - problems.len();
        let score = Some(good as f64 / calls.len().max(1) as f64);
        let unchecked = match tools {
            Some(_) => "",
            None => "; no tool definitions on the span, so names and parameters were not checked",
        };
        if problems.is_empty() {
            Verdict {
                score,
                label: "valid".into(),
                passed: true,
                explanation: format!("{} tool call(s), all valid{unchecked}", calls.len()),
            }
        } else {
            let label = if problems.iter().any(|p| p.contains("not a tool")) {
                "unknown_tool"
            } else if problems
                .iter()
                .any(|p| p.contains("not JSON") || p.contains("not a JSON object"))
            {
                "invalid_json"
            } else {
                "schema_mismatch"
            };
            Verdict {
                score,
                label: label.into(),
                passed: false,
                explanation: format!(
                    "{} of {} tool call(s) invalid: {}{unchecked}",
                    problems.len(),
                    calls.len(),
                    problems.join("; ")
                ),
            }
        }
    }
}

/// Every tool call in the span's output, in the order made.
pub fn tool_calls(span: &SpanView) -> Vec<ToolCall> {
    let mut calls = Vec::new();
    for key in ["gen_ai.output.messages", "gen_ai.completion"] {
        if let Some(text) = span.attributes.get(key) {
            if let Ok(Value::Array(messages)) = serde_json::from_str::<Value>(text) {
                for m in &messages {
                    calls_in_message(m, &mut calls);
                }
            }
        }
    }
    // OpenInference: llm.output_messages.N.message.tool_calls.M.tool_call.function.{name,arguments}
    // (message, call) -> (name, arguments)
    type NameAndArgs<'a> = (Option<&'a str>, Option<&'a str>);
    let mut flat: BTreeMap<(usize, usize), NameAndArgs> = BTreeMap::new();
    for (k, v) in span.attributes.range("llm.output_messages."..) {
        let Some(rest) = k.strip_prefix("llm.output_messages.") else {
            break;
        };
        let mut parts = rest.splitn(2, ".message.tool_calls.");
        let (Some(n), Some(tail)) = (parts.next(), parts.next()) else {
            continue;
        };
        let Some((m, field)) = tail.split_once(".tool_call.function.") else {
            continue;
        };
        let (Ok(n), Ok(m)) = (n.parse::<usize>(), m.parse::<usize>()) else {
            continue;
        };
        let e = flat.entry((n, m)).or_default();
        match field {
            "name" => e.0 = Some(v),
            "arguments" => e.1 = Some(v),
            _ => {}
        }
    }
    for (name, arguments) in flat.into_values() {
        if let Some(name) = name {
            calls.push(ToolCall {
                name: name.to_string(),
                arguments: Value::String(arguments.unwrap_or("").to_string()),
            });
        }
    }
    calls
}

fn calls_in_message(m: &Value, calls: &mut Vec<ToolCall>) {
    // GenAI conventions: {"role": "assistant", "parts": [{"type": "tool_call", "name", "arguments"}]}
    if let Some(parts) = m.get("parts").and_then(Value::as_array) {
        for p in parts {
            if p.get("type").and_then(Value::as_str) == Some("tool_call") {
                if let Some(name) = p.get("name").and_then(Value::as_str) {
                    calls.push(ToolCall {
                        name: name.into(),
                        arguments: p.get("arguments").cloned().unwrap_or(Value::Null),
                    });
                }
            }
        }
    }
    // OpenAI shape: {"tool_calls": [{"function": {"name", "arguments": "<json text>"}}]}, also
    // nested under "message" in older completion events.
    let m = m.get("message").unwrap_or(m);
    if let Some(list) = m.get("tool_calls").and_then(Value::as_array) {
        for c in list {
            let f = c.get("function").unwrap_or(c);
            if let Some(name) = f.get("name").and_then(Value::as_str) {
                calls.push(ToolCall {
                    name: name.into(),
                    arguments: f.get("arguments").cloned().unwrap_or(Value::Null),
                });
            }
        }
    }
}

/// The tools offered to the model, by name, with their parameter schemas (`null` when a tool
/// declares none). `None` when the span does not say which tools were offered.
pub fn tool_definitions(span: &SpanView) -> Option<BTreeMap<String, Value>> {
    let mut tools = BTreeMap::new();
    let mut found = false;
    if let Some(text) = span.attributes.get("gen_ai.tool.definitions") {
        if let Ok(Value::Array(defs)) = serde_json::from_str::<Value>(text) {
            found = true;
            for d in &defs {
                add_definition(d, &mut tools);
            }
        }
    }
    for (k, v) in span.attributes.range("llm.tools."..) {
        if !k.starts_with("llm.tools.") {
            break;
        }
        if k.ends_with(".tool.json_schema") {
            if let Ok(d) = serde_json::from_str::<Value>(v) {
                found = true;
                add_definition(&d, &mut tools);
            }
        }
    }
    found.then_some(tools)
}

/// `{"type": "function", "name", "parameters"}` (GenAI conventions, OpenAI Responses) or
/// `{"type": "function", "function": {"name", "parameters"}}` (OpenAI Chat Completions).
fn add_definition(d: &Value, tools: &mut BTreeMap<String, Value>) {
    let f = d.get("function").unwrap_or(d);
    if let Some(name) = f.get("name").and_then(Value::as_str) {
        let params = f
            .get("parameters")
            .or_else(|| f.get("input_schema"))
            .cloned()
            .unwrap_or(Value::Null);
        tools.insert(name.to_string(), params);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TOOLS: &str = r#"[{"type":"function","name":"get_weather","parameters":{"type":"object","properties":{"city":{"type":"string"},"days":{"type":"integer"}},"required":["city"],"additionalProperties":false}}]"#;

    fn span<'a>(attrs: &[(&'a str, &'a str)]) -> SpanView<'a> {
        SpanView {
            gen_ai_operation_name: Some("chat"),
            attributes: attrs.iter().copied().collect(),
            ..Default::default()
        }
    }

    fn output(parts: &str) -> String {
        format!(r#"[{{"role":"assistant","parts":[{parts}]}}]"#)
    }

    #[test]
    fn valid_calls_pass() {
        let out = output(
            r#"{"type":"tool_call","id":"1","name":"get_weather","arguments":{"city":"Oslo","days":2}}"#,
        );
        let s = span(&[
            ("gen_ai.output.messages", &out),
            ("gen_ai.tool.definitions", TOOLS),
        ]);
        let v = ToolCallArgs::default().evaluate(&s);
        assert!(v.passed, "{v:?}");
        assert_eq!(v.score, Some(1.0));
    }

    #[test]
    fn wrong_arguments_unknown_tools_and_broken_json_fail_with_the_reason() {
        let e = ToolCallArgs::default();
        let out = output(r#"{"type":"tool_call","name":"get_weather","arguments":{"days":"two"}}"#);
        let v = e.evaluate(&span(&[
            ("gen_ai.output.messages", &out),
            ("gen_ai.tool.definitions", TOOLS),
        ]));
        assert_eq!(
            (v.passed, v.label.as_str()),
            (false, "schema_mismatch"),
            "{v:?}"
        );
        assert!(v.explanation.contains("city"), "{}", v.explanation);

        let out = output(r#"{"type":"tool_call","name":"get_stock","arguments":{}}"#);
        let v = e.evaluate(&span(&[
            ("gen_ai.output.messages", &out),
            ("gen_ai.tool.definitions", TOOLS),
        ]));
        assert_eq!(v.label, "unknown_tool");
        assert!(v.explanation.contains("get_weather"), "{}", v.explanation);

        let out = output(
            r#"{"type":"tool_call","name":"get_weather","arguments":"{\"city\": \"Oslo\""}"#,
        );
        let v = e.evaluate(&span(&[
            ("gen_ai.output.messages", &out),
            ("gen_ai.tool.definitions", TOOLS),
        ]));
        assert_eq!(v.label, "invalid_json");
    }

    #[test]
    fn openai_and_openinference_shapes_are_read() {
        let out = r#"[{"role":"assistant","tool_calls":[{"id":"c","type":"function","function":{"name":"get_weather","arguments":"{\"city\":\"Oslo\"}"}}]}]"#;
        let defs = r#"[{"type":"function","function":{"name":"get_weather","parameters":{"type":"object","required":["city"]}}}]"#;
        let v = ToolCallArgs::default().evaluate(&span(&[
            ("gen_ai.output.messages", out),
            ("gen_ai.tool.definitions", defs),
        ]));
        assert!(v.passed, "{v:?}");

        let schema = r#"{"type":"function","function":{"name":"lookup","parameters":{"type":"object","required":["id"]}}}"#;
        let s = span(&[
            (
                "llm.output_messages.0.message.tool_calls.0.tool_call.function.name",
                "lookup",
            ),
            (
                "llm.output_messages.0.message.tool_calls.0.tool_call.function.arguments",
                "{}",
            ),
            ("llm.tools.0.tool.json_schema", schema),
        ]);
        let e = ToolCallArgs::default();
        assert!(e.applies_to(&s));
        let v = e.evaluate(&s);
        assert_eq!(v.label, "schema_mismatch", "{v:?}");
    }

    #[test]
    fn spans_without_tool_calls_are_not_judged() {
        let out = output(r#"{"type":"text","content":"hi"}"#);
        assert!(!ToolCallArgs::default().applies_to(&span(&[("gen_ai.output.messages", &out)])));
    }
}
