//! OTLP attribute values as Plumb keeps them: every value rendered to text (so one map type
//! holds them all), plus typed readers for the promoted columns that accept the spellings real
//! exporters send (an integer as a string, a boolean as "true").

use std::borrow::Cow;

use opentelemetry_proto::tonic::common::v1::{any_value::Value, AnyValue, KeyValue};
use plumb_store::records::Attributes;

/// Renders a value: strings as they are, numbers in decimal, arrays and maps as JSON,
/// bytes as lowercase hex.
pub fn value_text(v: &AnyValue) -> String {
    match &v.value {
        Some(Value::StringValue(s)) => s.clone(),
        Some(Value::BoolValue(b)) => b.to_string(),
        Some(Value::IntValue(i)) => i.to_string(),
        Some(Value::DoubleValue(d)) => d.to_string(),
        Some(Value::BytesValue(b)) => hex::encode(b),
        Some(Value::ArrayValue(_)) | Some(Value::KvlistValue(_)) => value_json(v).to_string(),
        // String-table indexes exist only in the profiles signal, which Plumb does not receive.
        Some(Value::StringValueStrindex(_)) | None => String::new(),
    }
}

/// The value as JSON (arrays and maps keep their structure).
pub fn value_json(v: &AnyValue) -> serde_json::Value {
    use serde_json::Value as J;
    match &v.value {
        Some(Value::StringValue(s)) => J::String(s.clone()),
        Some(Value::BoolValue(b)) => J::Bool(*b),
        Some(Value::IntValue(i)) => J::from(*i),
        Some(Value::DoubleValue(d)) => serde_json::Number::from_f64(*d).map_or(J::Null, J::Number),
        Some(Value::BytesValue(b)) => J::String(hex::encode(b)),
        Some(Value::ArrayValue(a)) => J::Array(a.values.iter().map(value_json).collect()),
        Some(Value::KvlistValue(kv)) => J::Object(
            kv.values
                .iter()
                .map(|e| (e.key.clone(), e.value.as_ref().map_or(J::Null, value_json)))
                .collect(),
        ),
        Some(Value::StringValueStrindex(_)) | None => J::Null,
    }
}

pub fn to_attributes(kvs: &[KeyValue]) -> Attributes {
    kvs.iter()
        .map(|kv| {
            (
                kv.key.clone(),
                kv.value.as_ref().map(value_text).unwrap_or_default(),
            )
        })
        .collect()
}

/// Like [`to_attributes`], but moves string values out instead of copying them: prompts and
/// outputs are the bulk of a GenAI span, and the request is not needed afterwards.
pub fn into_attributes(kvs: Vec<KeyValue>) -> Attributes {
    kvs.into_iter()
        .map(|kv| {
            let value = match kv.value {
                Some(AnyValue {
                    value: Some(Value::StringValue(s)),
                }) => s,
                Some(v) => value_text(&v),
                None => String::new(),
            };
            (kv.key, value)
        })
        .collect()
}

/// Typed look-ups over one span's attributes.
pub struct AttrView<'a> {
    kvs: &'a [KeyValue],
}

impl<'a> AttrView<'a> {
    pub fn new(kvs: &'a [KeyValue]) -> Self {
        AttrView { kvs }
    }

    pub fn get(&self, key: &str) -> Option<&'a AnyValue> {
        // Last one wins, as in the SDKs when a key is set twice.
        self.kvs
            .iter()
            .rev()
            .find(|kv| kv.key == key)
            .and_then(|kv| kv.value.as_ref())
    }

    /// Position in the span's list and value of a key (the last one, as in [`Self::get`]).
    pub fn find(&self, key: &str) -> Option<(usize, &'a AnyValue)> {
        self.kvs
            .iter()
            .enumerate()
            .rev()
            .find(|(_, kv)| kv.key == key)
            .and_then(|(i, kv)| kv.value.as_ref().map(|v| (i, v)))
    }

    /// A value as text with its position: borrowed when it is a string (prompts are large), and
    /// absent when empty.
    pub fn text(&self, key: &str) -> Option<(usize, Cow<'a, str>)> {
        let (i, v) = self.find(key)?;
        match &v.value {
            Some(Value::StringValue(s)) if s.is_empty() => None,
            Some(Value::StringValue(s)) => Some((i, Cow::Borrowed(s.as_str()))),
            None => None,
            _ => Some((i, Cow::Owned(value_text(v)))),
        }
    }

    /// Every attribute with its position in the span's list.
    pub fn positions(&self) -> impl Iterator<Item = (usize, &'a str, &'a AnyValue)> + 'a {
        self.kvs
            .iter()
            .enumerate()
            .filter_map(|(i, kv)| kv.value.as_ref().map(|v| (i, kv.key.as_str(), v)))
    }

    pub fn iter(&self) -> impl Iterator<Item = (&'a str, &'a AnyValue)> + 'a {
        self.kvs
            .iter()
            .filter_map(|kv| kv.value.as_ref().map(|v| (kv.key.as_str(), v)))
    }

    pub fn string(&self, key: &str) -> Option<String> {
        let v = self.get(key)?;
        match &v.value {
            Some(Value::StringValue(s)) if s.is_empty() => None,
            None => None,
            _ => Some(value_text(v)),
        }
    }

    pub fn int(&self, key: &str) -> Option<i64> {
        as_int(self.get(key)?)
    }

    pub fn float(&self, key: &str) -> Option<f64> {
        as_float(self.get(key)?)
    }

    pub fn bool(&self, key: &str) -> Option<bool> {
        as_bool(self.get(key)?)
    }

    /// A string array; a single string, or a JSON array in a string, count too.
    pub fn strings(&self, key: &str) -> Option<Vec<String>> {
        let v = self.get(key)?;
        match &v.value {
            Some(Value::ArrayValue(a)) => Some(a.values.iter().map(value_text).collect()),
            Some(Value::StringValue(s)) => match serde_json::from_str::<Vec<String>>(s) {
                Ok(list) => Some(list),
                Err(_) if !s.is_empty() => Some(vec![s.clone()]),
                Err(_) => None,
            },
            _ => None,
        }
    }
}

pub fn as_int(v: &AnyValue) -> Option<i64> {
    match &v.value {
        Some(Value::IntValue(i)) => Some(*i),
        Some(Value::DoubleValue(d)) if d.fract() == 0.0 => Some(*d as i64),
        Some(Value::StringValue(s)) => s.trim().parse().ok(),
        _ => None,
    }
}

pub fn as_float(v: &AnyValue) -> Option<f64> {
    match &v.value {
        Some(Value::DoubleValue(d)) => Some(*d),
        Some(Value::IntValue(i)) => Some(*i as f64),
        Some(Value::StringValue(s)) => s.trim().parse().ok(),
        _ => None,
    }
}

pub fn as_bool(v: &AnyValue) -> Option<bool> {
    match &v.value {
        Some(Value::BoolValue(b)) => Some(*b),
        Some(Value::IntValue(i)) => Some(*i != 0),
        Some(Value::StringValue(s)) => match s.trim().to_ascii_lowercase().as_str() {
            "true" | "1" | "yes" => Some(true),
            "false" | "0" | "no" => Some(false),
            _ => None,
        },
        _ => None,
    }
}

#[cfg(test)]
pub(crate) mod test_support {
    use super::*;

    pub fn kv(key: &str, value: Value) -> KeyValue {
        KeyValue {
            key: key.into(),
            value: Some(AnyValue { value: Some(value) }),
            ..Default::default()
        }
    }
    pub fn s(key: &str, v: &str) -> KeyValue {
        kv(key, Value::StringValue(v.into()))
    }
    pub fn i(key: &str, v: i64) -> KeyValue {
        kv(key, Value::IntValue(v))
    }
    pub fn f(key: &str, v: f64) -> KeyValue {
        kv(key, Value::DoubleValue(v))
    }
    pub fn b(key: &str, v: bool) -> KeyValue {
        kv(key, Value::BoolValue(v))
    }
}

#[cfg(test)]
mod tests {
    use super::test_support::*;
    use super::*;
    use opentelemetry_proto::tonic::common::v1::ArrayValue;

    #[test]
    fn values_render_as_text() {
        let arr = kv(
            "a",
            Value::ArrayValue(ArrayValue {
                values: vec![AnyValue {
                    value: Some(Value::StringValue("stop".into())),
                }],
            }),
        );
        let attrs = to_attributes(&[s("s", "x"), i("i", 3), f("f", 0.5), b("b", true), arr]);
        let text: Vec<&str> = attrs.iter().map(|(_, v)| v.as_str()).collect();
        assert_eq!(text, vec!["x", "3", "0.5", "true", "[\"stop\"]"]);
    }

    #[test]
    fn typed_reads_accept_string_spellings() {
        let kvs = [
            s("n", "42"),
            s("b", "True"),
            s("l", "[\"a\",\"b\"]"),
            s("one", "stop"),
        ];
        let v = AttrView::new(&kvs);
        assert_eq!(v.int("n"), Some(42));
        assert_eq!(v.float("n"), Some(42.0));
        assert_eq!(v.bool("b"), Some(true));
        assert_eq!(v.strings("l"), Some(vec!["a".into(), "b".into()]));
        assert_eq!(v.strings("one"), Some(vec!["stop".into()]));
        assert_eq!(v.string("missing"), None);
    }
}
