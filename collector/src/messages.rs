//! Prompts, responses and retrieved documents: the conventions' message formats
//! (`gen_ai.input/output.messages` JSON, OpenInference's flattened `llm.*_messages.N.*`, the
//! deprecated `gen_ai.prompt`/`gen_ai.completion`, `input.value`/`output.value`,
//! `retrieval.documents.N.document.*`) rendered into `input_text`, `output_text` and
//! `retrieval_documents`.
//!
//! Content is stored once. Prompts are most of a GenAI span's bytes, and keeping them both in
//! the text column and in `span_attributes` doubled what every flush compresses and what lies
//! on disk. So when a column says everything an attribute said (plain text messages: a role and
//! text, nothing else), the attribute's position goes into [`StoredOnce`] and the span's map
//! leaves it out. Messages with anything more (tool calls, media, unknown fields) stay in the
//! map as they were sent: nothing is lost either way.

use std::borrow::Cow;
use std::collections::BTreeMap;

use opentelemetry_proto::tonic::trace::v1::span::Event;
use plumb_store::records::RetrievalDocument;
use serde::Deserialize;
use serde_json::Value as Json;

use crate::attributes::{value_text, AttrView};

/// Positions, in the span's attribute list, of attributes whose whole content is in a column.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct StoredOnce(Vec<usize>);

impl StoredOnce {
    pub fn contains(&self, position: usize) -> bool {
        self.0.contains(&position)
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    fn add(&mut self, positions: impl IntoIterator<Item = usize>) {
        self.0.extend(positions);
        self.0.sort_unstable();
    }
}

/// What the text columns get from one span.
#[derive(Debug, Default)]
pub struct Extracted {
    pub input_text: Option<String>,
    pub output_text: Option<String>,
    pub retrieval_documents: Option<Vec<RetrievalDocument>>,
    pub stored_once: StoredOnce,
}

/// Reads the three text columns. `finish_reasons` is the span's finish-reasons column: output
/// messages carry their finish reason, which fills the column when no attribute did.
pub fn extract(
    a: &AttrView<'_>,
    events: &[Event],
    finish_reasons: &mut Option<Vec<String>>,
) -> Extracted {
    let mut once = StoredOnce::default();
    Extracted {
        input_text: input_text(a, events, &mut once),
        output_text: output_text(a, events, finish_reasons, &mut once),
        retrieval_documents: retrieval_documents(a, &mut once),
        stored_once: once,
    }
}

/// Which side of the exchange a message list is on; each has a role that goes without saying.
#[derive(Clone, Copy, PartialEq)]
enum Side {
    Input,
    Output,
}

impl Side {
    fn implied_role(self) -> &'static str {
        match self {
            Side::Input => "user",
            Side::Output => "assistant",
        }
    }
}

/// A message as (role, text).
type Message = (Option<String>, String);

/// Messages read from one source, and whether the rendered text says all that they said.
struct Messages {
    list: Vec<Message>,
    complete: bool,
    finish_reasons: Vec<String>,
}

/// Input: one message is its text, several are `role: text` lines. Output: the text only
/// (several messages joined by newlines), so that a structured output is exactly its JSON.
fn render(side: Side, messages: Vec<Message>) -> Option<String> {
    match messages.len() {
        0 => None,
        1 => messages.into_iter().next().map(|(_, t)| t),
        _ => Some(
            messages
                .into_iter()
                .map(|(role, text)| match (side, role) {
                    (Side::Input, Some(r)) => format!("{r}: {text}"),
                    _ => text,
                })
                .collect::<Vec<_>>()
                .join("\n"),
        ),
    }
}

/// Whether [`render`] keeps everything of plain messages: the role of a lone message must be the
/// one implied, several input messages need their roles, and output drops roles and boundaries.
fn renders_completely(side: Side, list: &[Message]) -> bool {
    match list {
        [] => false,
        [(role, _)] => role.as_deref().is_none_or(|r| r == side.implied_role()),
        many => side == Side::Input && many.iter().all(|(r, _)| r.is_some()),
    }
}

/// A message with only role and text, in the semantic conventions' `parts` form or the older
/// `content` string form. Anything else fails to parse and takes the general path.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PlainMessage<'a> {
    role: Option<String>,
    #[serde(borrow)]
    parts: Option<Vec<PlainPart<'a>>>,
    content: Option<String>,
    finish_reason: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PlainPart<'a> {
    #[serde(rename = "type", borrow)]
    kind: Cow<'a, str>,
    #[serde(borrow)]
    content: Cow<'a, str>,
}

/// Plain messages, parsed without building a JSON tree (this runs for every span), and whether
/// each had at most one text part (several are joined by newlines, which hides where they split).
fn plain_messages(text: &str) -> Option<(Vec<Message>, Vec<String>, bool)> {
    let parsed: Vec<PlainMessage<'_>> = serde_json::from_str(text).ok()?;
    let mut finish = Vec::new();
    let mut list = Vec::with_capacity(parsed.len());
    let mut one_part_each = true;
    for m in parsed {
        one_part_each &= m.parts.as_ref().is_none_or(|p| p.len() == 1);
        let text = match (m.parts, m.content) {
            (Some(parts), None) if !parts.is_empty() && parts.iter().all(|p| p.kind == "text") => {
                parts
                    .into_iter()
                    .map(|p| p.content)
                    .collect::<Vec<_>>()
                    .join("\n")
            }
            (None, Some(content)) => content,
            _ => return None,
        };
        finish.extend(m.finish_reason);
        list.push((m.role, text));
    }
    Some((list, finish, one_part_each))
}

/// Messages from a JSON document (an array of `{role, content | parts}`), or a text that is
/// not such a document, taken as it is.
fn json_messages(side: Side, text: &str) -> Messages {
    if let Some((list, finish_reasons, one_part_each)) = plain_messages(text) {
        return Messages {
            complete: one_part_each && renders_completely(side, &list),
            list,
            finish_reasons,
        };
    }
    match serde_json::from_str::<Json>(text) {
        Ok(Json::Array(items)) => Messages {
            list: items.iter().filter_map(general_message).collect(),
            complete: false,
            finish_reasons: vec![],
        },
        _ => Messages {
            list: vec![(None, text.to_string())],
            complete: true,
            finish_reasons: vec![],
        },
    }
}

/// The text of any message shape: parts or content, each a string or parts with
/// `content` / `text`; other parts (tool calls, media) have no text.
fn general_message(m: &Json) -> Option<Message> {
    match m {
        Json::Object(o) => {
            let text = o
                .get("parts")
                .and_then(content_text)
                .or_else(|| o.get("content").and_then(content_text))?;
            Some((
                o.get("role").and_then(|r| r.as_str()).map(str::to_string),
                text,
            ))
        }
        Json::String(s) => Some((None, s.clone())),
        _ => None,
    }
}

fn content_text(v: &Json) -> Option<String> {
    match v {
        Json::String(s) => Some(s.clone()),
        Json::Array(parts) => {
            let texts: Vec<String> = parts
                .iter()
                .filter_map(|p| match p {
                    Json::String(s) => Some(s.clone()),
                    Json::Object(o) => o
                        .get("content")
                        .or_else(|| o.get("text"))
                        .and_then(|c| c.as_str().map(str::to_string)),
                    _ => None,
                })
                .collect();
            (!texts.is_empty()).then(|| texts.join("\n"))
        }
        Json::Null => None,
        other => Some(other.to_string()),
    }
}

/// Fields of one indexed item: `field -> (position, value)`.
type Fields<'a> = BTreeMap<&'a str, (usize, String)>;

/// Groups `prefix.N.field` attributes by N, in index order.
fn indexed<'a>(attrs: &AttrView<'a>, prefix: &str) -> BTreeMap<usize, Fields<'a>> {
    let mut out: BTreeMap<usize, Fields<'a>> = BTreeMap::new();
    for (pos, key, value) in attrs.positions() {
        let Some((idx, field)) = key
            .strip_prefix(prefix)
            .and_then(|rest| rest.split_once('.'))
        else {
            continue;
        };
        let Ok(idx) = idx.parse::<usize>() else {
            continue;
        };
        out.entry(idx)
            .or_default()
            .insert(field, (pos, value_text(value)));
    }
    out
}

fn positions<'a>(items: impl IntoIterator<Item = &'a Fields<'a>>) -> Vec<usize> {
    items
        .into_iter()
        .flat_map(|f| f.values().map(|(pos, _)| *pos))
        .collect()
}

/// Messages from flattened, indexed attributes (OpenInference `llm.input_messages.N.message.*`,
/// OpenLLMetry `gen_ai.prompt.N.*`), with the positions they came from.
fn indexed_messages(
    side: Side,
    attrs: &AttrView<'_>,
    prefix: &str,
    role_key: &str,
    content_key: &str,
) -> (Messages, Vec<usize>) {
    let items = indexed(attrs, prefix);
    let plain = items.values().all(|f| {
        f.contains_key(content_key) && f.keys().all(|k| *k == role_key || *k == content_key)
    });
    let list: Vec<Message> = items
        .values()
        .filter_map(|fields| {
            let text = fields
                .get(content_key)
                .map(|(_, v)| v.clone())
                .or_else(|| {
                    // OpenInference multi-part content: message.contents.M.message_content.text
                    let parts: Vec<&str> = fields
                        .iter()
                        .filter(|(k, _)| {
                            k.starts_with("message.contents.")
                                && k.ends_with(".message_content.text")
                        })
                        .map(|(_, (_, v))| v.as_str())
                        .collect();
                    (!parts.is_empty()).then(|| parts.join("\n"))
                })?;
            Some((fields.get(role_key).map(|(_, v)| v.clone()), text))
        })
        .collect();
    let complete = plain && renders_completely(side, &list);
    (
        Messages {
            list,
            complete,
            finish_reasons: vec![],
        },
        positions(items.values()),
    )
}

fn event_attr(events: &[Event], event: &str, attr: &str) -> Option<String> {
    events
        .iter()
        .find(|e| e.name == event)
        .and_then(|e| AttrView::new(&e.attributes).string(attr))
}

/// Renders messages and records their source as stored once when nothing was left out.
fn take(
    side: Side,
    m: Messages,
    sources: impl IntoIterator<Item = usize>,
    once: &mut StoredOnce,
) -> Option<String> {
    if m.complete {
        once.add(sources);
    }
    render(side, m.list)
}

/// Where one side's text comes from, in order of precedence.
struct Sources {
    side: Side,
    /// GenAI: a JSON array of `{role, parts}` messages.
    messages: &'static str,
    /// Flattened, indexed messages: (prefix, role key, content key); OpenInference, OpenLLMetry.
    indexed: [(&'static str, &'static str, &'static str); 2],
    /// Older GenAI: one attribute, or the same attribute on an event of its own.
    single: &'static str,
    event: &'static str,
    /// OpenInference: the value as it was, unparsed.
    value: &'static str,
}

const INPUT: Sources = Sources {
    side: Side::Input,
    messages: "gen_ai.input.messages",
    indexed: [
        ("llm.input_messages.", "message.role", "message.content"),
        ("gen_ai.prompt.", "role", "content"),
    ],
    single: "gen_ai.prompt",
    event: "gen_ai.content.prompt",
    value: "input.value",
};

const OUTPUT: Sources = Sources {
    side: Side::Output,
    messages: "gen_ai.output.messages",
    indexed: [
        ("llm.output_messages.", "message.role", "message.content"),
        ("gen_ai.completion.", "role", "content"),
    ],
    single: "gen_ai.completion",
    event: "gen_ai.content.completion",
    value: "output.value",
};

fn input_text(a: &AttrView<'_>, events: &[Event], once: &mut StoredOnce) -> Option<String> {
    side_text(&INPUT, a, events, &mut None, once)
}

fn output_text(
    a: &AttrView<'_>,
    events: &[Event],
    finish_reasons: &mut Option<Vec<String>>,
    once: &mut StoredOnce,
) -> Option<String> {
    side_text(&OUTPUT, a, events, finish_reasons, once)
}

/// One side's text: the first source present among the conventions' spellings.
fn side_text(
    src: &Sources,
    a: &AttrView<'_>,
    events: &[Event],
    finish_reasons: &mut Option<Vec<String>>,
    once: &mut StoredOnce,
) -> Option<String> {
    let side = src.side;
    if let Some((pos, v)) = a.text(src.messages) {
        let mut m = json_messages(side, &v);
        if !m.finish_reasons.is_empty() {
            // Only output messages finish; the column must hold what the messages said.
            m.complete &= side == Side::Output && {
                let column = finish_reasons.get_or_insert_with(|| m.finish_reasons.clone());
                m.finish_reasons.iter().all(|r| column.contains(r))
            };
        }
        return take(side, m, [pos], once);
    }
    for (prefix, role, content) in src.indexed {
        let (m, sources) = indexed_messages(side, a, prefix, role, content);
        if !m.list.is_empty() {
            return take(side, m, sources, once);
        }
    }
    if let Some((pos, v)) = a.text(src.single) {
        return take(side, json_messages(side, &v), [pos], once);
    }
    if let Some(s) = event_attr(events, src.event, src.single) {
        return render(side, json_messages(side, &s).list);
    }
    let (pos, v) = a.text(src.value)?;
    once.add([pos]);
    Some(v.into_owned())
}

const DOCUMENT_FIELDS: &[&str] = &["document.id", "document.score", "document.content"];

/// OpenInference `retrieval.documents.N.document.{id,score,content}`.
fn retrieval_documents(a: &AttrView<'_>, once: &mut StoredOnce) -> Option<Vec<RetrievalDocument>> {
    let items = indexed(a, "retrieval.documents.");
    if items.is_empty() {
        return None;
    }
    let mut complete = true;
    let docs = items
        .values()
        .map(|f| {
            let text = |k: &str| f.get(k).map(|(_, v)| v.clone());
            let raw_score = text("document.score");
            let score = raw_score.as_deref().and_then(|s| s.parse::<f64>().ok());
            // A score is kept exactly only when the number prints back as it was sent.
            complete &= f.keys().all(|k| DOCUMENT_FIELDS.contains(k))
                && raw_score == score.map(|s| s.to_string());
            RetrievalDocument {
                id: text("document.id"),
                score,
                content: text("document.content"),
            }
        })
        .collect();
    if complete {
        once.add(positions(items.values()));
    }
    Some(docs)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::attributes::test_support::*;
    use opentelemetry_proto::tonic::common::v1::KeyValue;

    fn run(kvs: &[KeyValue]) -> (Extracted, Option<Vec<String>>) {
        let mut finish = None;
        let e = extract(&AttrView::new(kvs), &[], &mut finish);
        (e, finish)
    }

    #[test]
    fn plain_semconv_messages_are_stored_once() {
        let (e, finish) = run(&[
            s("gen_ai.request.model", "m"),
            s(
                "gen_ai.input.messages",
                r#"[{"role":"system","parts":[{"type":"text","content":"Be brief."}]},{"role":"user","parts":[{"type":"text","content":"Capital of France?"}]}]"#,
            ),
            s(
                "gen_ai.output.messages",
                r#"[{"role":"assistant","parts":[{"type":"text","content":"Paris."}],"finish_reason":"stop"}]"#,
            ),
        ]);
        assert_eq!(
            e.input_text.as_deref(),
            Some("system: Be brief.\nuser: Capital of France?")
        );
        assert_eq!(e.output_text.as_deref(), Some("Paris."));
        assert_eq!(finish, Some(vec!["stop".to_string()]));
        assert_eq!(e.stored_once, StoredOnce(vec![1, 2]));
    }

    #[test]
    fn messages_with_more_than_text_stay_in_the_map() {
        let tool_call = r#"[{"role":"assistant","parts":[{"type":"text","content":"Let me look."},{"type":"tool_call","id":"c1","name":"search","arguments":{"q":"x"}}]}]"#;
        let (e, _) = run(&[s("gen_ai.output.messages", tool_call)]);
        assert_eq!(e.output_text.as_deref(), Some("Let me look."));
        assert!(e.stored_once.is_empty());
        // A lone system prompt renders without its role, so the attribute keeps it.
        let (e, _) = run(&[s(
            "gen_ai.input.messages",
            r#"[{"role":"system","content":"Be brief."}]"#,
        )]);
        assert_eq!(e.input_text.as_deref(), Some("Be brief."));
        assert!(e.stored_once.is_empty());
        // Two text parts render as two lines, which one part could also be.
        let (e, _) = run(&[s(
            "gen_ai.input.messages",
            r#"[{"role":"user","parts":[{"type":"text","content":"a"},{"type":"text","content":"b"}]}]"#,
        )]);
        assert_eq!(e.input_text.as_deref(), Some("a\nb"));
        assert!(e.stored_once.is_empty());
    }

    #[test]
    fn a_finish_reason_the_column_does_not_hold_keeps_the_attribute() {
        let mut finish = Some(vec!["length".to_string()]);
        let kvs = [s(
            "gen_ai.output.messages",
            r#"[{"role":"assistant","content":"Hi","finish_reason":"stop"}]"#,
        )];
        let e = extract(&AttrView::new(&kvs), &[], &mut finish);
        assert_eq!(e.output_text.as_deref(), Some("Hi"));
        assert!(e.stored_once.is_empty());
    }

    #[test]
    fn openinference_flattened_messages_and_values() {
        let (e, _) = run(&[
            s("llm.input_messages.0.message.role", "system"),
            s("llm.input_messages.0.message.content", "Be brief."),
            s("llm.input_messages.1.message.role", "user"),
            s("llm.input_messages.1.message.content", "Hi"),
            s("llm.output_messages.0.message.role", "assistant"),
            s("llm.output_messages.0.message.content", "Hello"),
            s("llm.input_messages", "not an indexed key"),
        ]);
        assert_eq!(e.input_text.as_deref(), Some("system: Be brief.\nuser: Hi"));
        assert_eq!(e.output_text.as_deref(), Some("Hello"));
        assert_eq!(e.stored_once, StoredOnce(vec![0, 1, 2, 3, 4, 5]));
        let (e, _) = run(&[
            s("input.value", "question?"),
            s("output.value", "{\"a\":1}"),
        ]);
        assert_eq!(e.input_text.as_deref(), Some("question?"));
        assert_eq!(e.output_text.as_deref(), Some("{\"a\":1}"));
        assert_eq!(e.stored_once, StoredOnce(vec![0, 1]));
    }

    #[test]
    fn deprecated_prompt_and_completion() {
        let (e, _) = run(&[
            s("gen_ai.prompt.0.role", "user"),
            s("gen_ai.prompt.0.content", "Hi"),
            s("gen_ai.completion.0.role", "assistant"),
            s("gen_ai.completion.0.content", "Hello"),
        ]);
        assert_eq!(
            (e.input_text.as_deref(), e.output_text.as_deref()),
            (Some("Hi"), Some("Hello"))
        );
        assert_eq!(e.stored_once, StoredOnce(vec![0, 1, 2, 3]));
        let (e, _) = run(&[
            s("gen_ai.prompt", r#"[{"role":"user","content":"Hi"}]"#),
            s("gen_ai.completion", "plain answer"),
        ]);
        assert_eq!(
            (e.input_text.as_deref(), e.output_text.as_deref()),
            (Some("Hi"), Some("plain answer"))
        );
        assert_eq!(e.stored_once, StoredOnce(vec![0, 1]));
    }

    #[test]
    fn prompt_and_completion_events() {
        let ev = |name: &str, key: &str, v: &str| Event {
            name: name.into(),
            attributes: vec![s(key, v)],
            ..Default::default()
        };
        let events = [
            ev("gen_ai.content.prompt", "gen_ai.prompt", "Hi"),
            ev("gen_ai.content.completion", "gen_ai.completion", "Hello"),
        ];
        let e = extract(&AttrView::new(&[]), &events, &mut None);
        assert_eq!(
            (e.input_text.as_deref(), e.output_text.as_deref()),
            (Some("Hi"), Some("Hello"))
        );
    }

    #[test]
    fn retrieval_documents_are_collected_in_order() {
        let (e, _) = run(&[
            s("retrieval.documents.1.document.id", "b"),
            s("retrieval.documents.0.document.id", "a"),
            f("retrieval.documents.0.document.score", 0.9),
            s(
                "retrieval.documents.0.document.content",
                "Paris is the capital.",
            ),
        ]);
        let docs = e.retrieval_documents.unwrap();
        assert_eq!(docs.len(), 2);
        assert_eq!(docs[0].id.as_deref(), Some("a"));
        assert_eq!(docs[0].score, Some(0.9));
        assert_eq!(docs[0].content.as_deref(), Some("Paris is the capital."));
        assert_eq!(docs[1].id.as_deref(), Some("b"));
        assert_eq!(e.stored_once, StoredOnce(vec![0, 1, 2, 3]));
        // Metadata has no column: the documents stay in the map too.
        let (e, _) = run(&[
            s("retrieval.documents.0.document.content", "x"),
            s("retrieval.documents.0.document.metadata", "{\"page\":3}"),
        ]);
        assert_eq!(e.retrieval_documents.unwrap().len(), 1);
        assert!(e.stored_once.is_empty());
    }
}
