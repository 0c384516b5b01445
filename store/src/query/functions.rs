//! SQL functions Plumb adds to DataFusion's (and to datafusion-functions-json's).
//!
//! `json_valid(text)`: whether a text is one well-formed JSON document, as in DuckDB, SQLite
//! and MySQL. Structured-output parse failures are the question it answers
//! (`WHERE gen_ai_output_type = 'json' AND NOT json_valid(output_text)`); it checks syntax
//! without building values, so it costs a fraction of extracting anything.

use std::sync::Arc;

use datafusion::arrow::array::{Array, ArrayRef, AsArray, BooleanArray};
use datafusion::arrow::datatypes::DataType;
use datafusion::common::{exec_err, Result, ScalarValue};
use datafusion::logical_expr::{
    ColumnarValue, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, Volatility,
};

#[derive(Debug, PartialEq, Eq, Hash)]
struct JsonValid {
    signature: Signature,
}

pub fn json_valid() -> ScalarUDF {
    ScalarUDF::new_from_impl(JsonValid {
        signature: Signature::uniform(
            1,
            vec![DataType::Utf8View, DataType::Utf8, DataType::LargeUtf8],
            Volatility::Immutable,
        ),
    })
}

fn is_valid(text: &str) -> bool {
    serde_json::from_str::<serde::de::IgnoredAny>(text).is_ok()
}

fn valid_of(texts: impl Iterator<Item = Option<bool>>) -> ArrayRef {
    Arc::new(texts.collect::<BooleanArray>())
}

impl ScalarUDFImpl for JsonValid {
    fn name(&self) -> &str {
        "json_valid"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _arg_types: &[DataType]) -> Result<DataType> {
        Ok(DataType::Boolean)
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let [arg] = args.args.as_slice() else {
            return exec_err!("json_valid takes one argument");
        };
        match arg {
            ColumnarValue::Scalar(s) => {
                let text = match s {
                    ScalarValue::Utf8(v) | ScalarValue::Utf8View(v) | ScalarValue::LargeUtf8(v) => {
                        v.as_deref()
                    }
                    other => return exec_err!("json_valid takes text, not {}", other.data_type()),
                };
                Ok(ColumnarValue::Scalar(ScalarValue::Boolean(
                    text.map(is_valid),
                )))
            }
            ColumnarValue::Array(a) => {
                let out = match a.data_type() {
                    DataType::Utf8View => {
                        valid_of(a.as_string_view().iter().map(|t| t.map(is_valid)))
                    }
                    DataType::Utf8 => {
                        valid_of(a.as_string::<i32>().iter().map(|t| t.map(is_valid)))
                    }
                    DataType::LargeUtf8 => {
                        valid_of(a.as_string::<i64>().iter().map(|t| t.map(is_valid)))
                    }
                    other => return exec_err!("json_valid takes text, not {other}"),
                };
                debug_assert_eq!(out.len(), a.len());
                Ok(ColumnarValue::Array(out))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recognizes_well_formed_documents() {
        for ok in ["{\"a\": [1, 2.5, null]}", "  \"text\" ", "3", "[]"] {
            assert!(is_valid(ok), "{ok}");
        }
        for bad in [
            "{\"label\": \"refund\", \"confidence\": 0.",
            "",
            "{} {}",
            "[1,]",
        ] {
            assert!(!is_valid(bad), "{bad}");
        }
    }
}
