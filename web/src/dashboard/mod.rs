//! What the dashboard shows, computed from the store: each module answers one page's question
//! with aggregating SQL (never raw rows of a large range) and returns plain serializable
//! structs. The pages draw them; the JSON API returns them as they are.

pub mod alerts;
pub mod evals;
pub mod overview;
pub mod timeline;
pub mod trace;
pub mod traces;

use plumb_store::query::{to_json_rows, JsonRows};
use plumb_store::Store;
use serde_json::Value;

use crate::error::WebError;

/// Runs a query for the project and returns its rows as JSON values.
pub(crate) async fn rows(store: &Store, project: &str, sql: &str) -> Result<JsonRows, WebError> {
    let out = store.sql(project, sql).await?;
    Ok(to_json_rows(&out)?)
}

pub(crate) fn f64_at(row: &[Value], i: usize) -> Option<f64> {
    row.get(i).and_then(Value::as_f64).filter(|v| v.is_finite())
}

pub(crate) fn u64_at(row: &[Value], i: usize) -> u64 {
    row.get(i).and_then(Value::as_u64).unwrap_or(0)
}

pub(crate) fn i64_at(row: &[Value], i: usize) -> Option<i64> {
    row.get(i).and_then(Value::as_i64)
}

pub(crate) fn str_at(row: &[Value], i: usize) -> Option<String> {
    row.get(i).and_then(Value::as_str).map(str::to_string)
}

/// `date_bin` of a timestamp column into buckets of `secs`, as Unix nanoseconds.
pub(crate) fn bucket_expr(column: &str, secs: i64) -> String {
    format!(
        "CAST(date_bin(INTERVAL '{secs} seconds', {column}, TIMESTAMP '1970-01-01T00:00:00Z') AS BIGINT)"
    )
}

/// A Wilson score interval (95 %) for `k` successes in `n`: the band drawn around pass rates,
/// honest at small `n` where the normal approximation is not.
pub fn wilson(k: u64, n: u64) -> Option<(f64, f64)> {
    if n == 0 {
        return None;
    }
    let (k, n, z) = (k as f64, n as f64, 1.959_963_984_540_054_f64);
    let p = k / n;
    let denom = 1.0 + z * z / n;
    let centre = (p + z * z / (2.0 * n)) / denom;
    let half = z * ((p * (1.0 - p) / n) + z * z / (4.0 * n * n)).sqrt() / denom;
    Some(((centre - half).max(0.0), (centre + half).min(1.0)))
}

#[cfg(test)]
mod tests {
    use super::wilson;

    #[test]
    fn wilson_bands_contain_the_rate_and_narrow_with_samples() {
        let (lo, hi) = wilson(9, 10).unwrap();
        assert!(lo < 0.9 && 0.9 < hi && hi <= 1.0);
        let (lo2, hi2) = wilson(900, 1000).unwrap();
        assert!(hi2 - lo2 < hi - lo);
        assert_eq!(wilson(0, 0), None);
        let (lo, _) = wilson(0, 5).unwrap();
        assert_eq!(lo, 0.0);
    }
}
