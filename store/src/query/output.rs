//! Query results as the API and CLI print them: JSON rows (`{"columns", "rows"}`) and CSV.

use datafusion::arrow::json::ArrayWriter;
use datafusion::arrow::record_batch::RecordBatch;
use serde::{Deserialize, Serialize};

use super::{QueryError, QueryOutput};

/// `{"columns": [...], "rows": [[...], ...]}`: the shape of `POST /api/v1/sql`.
/// Timestamps are RFC 3339 strings; maps, lists and structs are JSON objects and arrays.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct JsonRows {
    pub columns: Vec<String>,
    pub rows: Vec<Vec<serde_json::Value>>,
}

pub fn to_json_rows(out: &QueryOutput) -> Result<JsonRows, QueryError> {
    let columns: Vec<String> = out
        .schema
        .fields()
        .iter()
        .map(|f| f.name().clone())
        .collect();
    let mut rows = Vec::with_capacity(out.num_rows());
    for batch in &out.batches {
        for mut obj in batch_objects(batch)? {
            rows.push(
                columns
                    .iter()
                    .map(|c| obj.remove(c).unwrap_or(serde_json::Value::Null))
                    .collect(),
            );
        }
    }
    Ok(JsonRows { columns, rows })
}

fn batch_objects(
    batch: &RecordBatch,
) -> Result<Vec<serde_json::Map<String, serde_json::Value>>, QueryError> {
    if batch.num_rows() == 0 {
        return Ok(vec![]);
    }
    let fail = |e: &dyn std::fmt::Display| QueryError::Execution(format!("encoding results: {e}"));
    let mut buf = Vec::new();
    let mut w = ArrayWriter::new(&mut buf);
    w.write(batch).map_err(|e| fail(&e))?;
    w.finish().map_err(|e| fail(&e))?;
    drop(w);
    serde_json::from_slice(&buf).map_err(|e| fail(&e))
}

/// Renders a JSON value as one CSV or table cell: strings as they are, nulls empty, the rest
/// as compact JSON.
pub fn cell_text(v: &serde_json::Value) -> String {
    match v {
        serde_json::Value::Null => String::new(),
        serde_json::Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

pub fn to_csv(rows: &JsonRows) -> Result<String, QueryError> {
    let mut w = csv::Writer::from_writer(Vec::new());
    let fail = |e: csv::Error| QueryError::Execution(format!("writing CSV: {e}"));
    w.write_record(&rows.columns).map_err(fail)?;
    for r in &rows.rows {
        w.write_record(r.iter().map(cell_text)).map_err(fail)?;
    }
    let bytes = w
        .into_inner()
        .map_err(|e| QueryError::Execution(e.to_string()))?;
    String::from_utf8(bytes).map_err(|e| QueryError::Execution(e.to_string()))
}
