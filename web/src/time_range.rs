//! The time range every page and API endpoint takes as `from`/`to`, and the bucket width its
//! charts use. One parser so that a URL copied from the browser means the same thing to the API.
//!
//! Accepted forms: RFC 3339 (`2026-12-01T10:00:00Z`), `now`, `now-<duration>` (`now-15m`,
//! `now-24h`, `now-7d`, humantime syntax) and integer Unix nanoseconds.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::error::WebError;

const NANOS_PER_SEC: i64 = 1_000_000_000;

/// The presets of the range picker, as `(label, from)` with `to = now`.
pub const PRESETS: &[(&str, &str)] = &[
    ("15m", "now-15m"),
    ("1h", "now-1h"),
    ("6h", "now-6h"),
    ("24h", "now-24h"),
    ("7d", "now-7d"),
    ("30d", "now-30d"),
];

/// `from`/`to` as they arrive in a query string.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct RangeParams {
    pub from: Option<String>,
    pub to: Option<String>,
}

/// A resolved `[from, to)` in Unix nanoseconds, with the spellings it came from (kept so that
/// links keep a relative range relative).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TimeRange {
    pub from: i64,
    pub to: i64,
    #[serde(skip)]
    pub from_param: String,
    #[serde(skip)]
    pub to_param: String,
}

impl TimeRange {
    /// Resolves the parameters against `now` (Unix nanoseconds); the default is the last hour.
    pub fn resolve(p: &RangeParams, now: i64) -> Result<TimeRange, WebError> {
        let from_param = non_empty(&p.from).unwrap_or("now-1h").to_string();
        let to_param = non_empty(&p.to).unwrap_or("now").to_string();
        let from = parse_instant(&from_param, now)?;
        let to = parse_instant(&to_param, now)?;
        if from >= to {
            return Err(WebError::BadRequest(format!(
                "`from` ({from_param}) must be before `to` ({to_param})"
            )));
        }
        Ok(TimeRange {
            from,
            to,
            from_param,
            to_param,
        })
    }

    pub fn from_now(params: &RangeParams) -> Result<TimeRange, WebError> {
        Self::resolve(params, now_nanos())
    }

    pub fn span(&self) -> i64 {
        self.to - self.from
    }

    /// The query-string part `from=…&to=…` that reproduces this range.
    pub fn query(&self) -> String {
        format!(
            "from={}&to={}",
            url_encode(&self.from_param),
            url_encode(&self.to_param)
        )
    }

    /// A bucket width from a list of round sizes giving at most `max_buckets` buckets.
    pub fn bucket_secs(&self, max_buckets: i64) -> i64 {
        const SIZES: &[i64] = &[
            1, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 10800, 21600, 43200, 86400,
        ];
        let span_secs = (self.span() / NANOS_PER_SEC).max(1);
        SIZES
            .iter()
            .copied()
            .find(|s| span_secs / s <= max_buckets)
            .unwrap_or(86400)
    }

    /// The start of the first bucket (aligned to the epoch, as `date_bin` aligns) and the count.
    pub fn buckets(&self, bucket_secs: i64) -> (i64, usize) {
        let w = bucket_secs * NANOS_PER_SEC;
        let first = self.from.div_euclid(w) * w;
        let n = ((self.to - first) + w - 1) / w;
        (first, n.max(1) as usize)
    }

    /// The SQL predicate `column ∈ [from, to)`.
    pub fn sql_filter(&self, column: &str) -> String {
        format!(
            "{column} >= {} AND {column} < {}",
            timestamp_literal(self.from),
            timestamp_literal(self.to)
        )
    }
}

fn non_empty(s: &Option<String>) -> Option<&str> {
    s.as_deref().map(str::trim).filter(|s| !s.is_empty())
}

pub fn now_nanos() -> i64 {
    chrono::Utc::now().timestamp_nanos_opt().unwrap_or(i64::MAX)
}

/// One end of a range.
pub fn parse_instant(s: &str, now: i64) -> Result<i64, WebError> {
    let s = s.trim();
    if s == "now" {
        return Ok(now);
    }
    if let Some(ago) = s.strip_prefix("now-") {
        let d: Duration = humantime::parse_duration(ago.trim()).map_err(|e| {
            WebError::BadRequest(format!(
                "bad relative time `{s}`: {e} (try now-15m, now-24h)"
            ))
        })?;
        return Ok(now - d.as_nanos().min(i64::MAX as u128) as i64);
    }
    if let Ok(n) = s.parse::<i64>() {
        return Ok(n);
    }
    parse_timestamp(s).ok_or_else(|| {
        WebError::BadRequest(format!(
            "bad time `{s}`: use RFC 3339 (2026-12-01T10:00:00Z), now, now-1h, or Unix nanoseconds"
        ))
    })
}

/// A written instant as Unix nanoseconds: RFC 3339, or without a zone (read as UTC) as a
/// browser's `datetime-local` input or a SQL result spells it, or a bare date.
pub fn parse_timestamp(s: &str) -> Option<i64> {
    if let Ok(t) = chrono::DateTime::parse_from_rfc3339(s) {
        return t.timestamp_nanos_opt();
    }
    [
        "%Y-%m-%dT%H:%M:%S%.f",
        "%Y-%m-%d %H:%M:%S%.f",
        "%Y-%m-%dT%H:%M",
    ]
    .iter()
    .find_map(|f| chrono::NaiveDateTime::parse_from_str(s, f).ok())
    .or_else(|| {
        chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d")
            .ok()
            .and_then(|d| d.and_hms_opt(0, 0, 0))
    })
    .and_then(|t| t.and_utc().timestamp_nanos_opt())
}

/// A SQL timestamp literal for Unix nanoseconds.
pub fn timestamp_literal(unix_nanos: i64) -> String {
    plumb_evaluators::source::timestamp_literal(unix_nanos)
}

/// Unix nanoseconds as RFC 3339 (seconds precision), for links and labels.
pub fn rfc3339(unix_nanos: i64) -> String {
    chrono::DateTime::from_timestamp_nanos(unix_nanos)
        .to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

/// Percent-encodes a query-string value.
pub fn url_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(b as char)
            }
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_764_000_000 * NANOS_PER_SEC;

    fn range(from: &str, to: &str) -> Result<TimeRange, WebError> {
        TimeRange::resolve(
            &RangeParams {
                from: Some(from.into()),
                to: Some(to.into()),
            },
            NOW,
        )
    }

    #[test]
    fn relative_absolute_and_nanosecond_forms_resolve() {
        let r = range("now-15m", "now").unwrap();
        assert_eq!(r.span(), 15 * 60 * NANOS_PER_SEC);
        let r = range("2025-11-24T16:00:00Z", "2025-11-24T17:00:00Z").unwrap();
        assert_eq!(r.span(), 3600 * NANOS_PER_SEC);
        let r = range("2025-11-24T15:00", &NOW.to_string()).unwrap();
        assert_eq!(r.to, NOW);
        let defaults = TimeRange::resolve(&RangeParams::default(), NOW).unwrap();
        assert_eq!(defaults.span(), 3600 * NANOS_PER_SEC);
    }

    #[test]
    fn bad_ranges_say_what_is_wrong() {
        let e = range("yesterday", "now").unwrap_err().to_string();
        assert!(e.contains("yesterday"), "{e}");
        let e = range("now", "now-1h").unwrap_err().to_string();
        assert!(e.contains("before"), "{e}");
    }

    #[test]
    fn buckets_are_round_and_bounded() {
        let day = range("now-24h", "now").unwrap();
        let w = day.bucket_secs(120);
        assert_eq!(w, 900);
        let (first, n) = day.buckets(w);
        assert!(first <= day.from && n as i64 * w * NANOS_PER_SEC >= day.to - first);
        assert!(n <= 121);
        assert_eq!(range("now-15m", "now").unwrap().bucket_secs(120), 10);
    }

    #[test]
    fn query_strings_are_encoded() {
        assert_eq!(url_encode("a b/c&d<"), "a%20b%2Fc%26d%3C");
    }
}
