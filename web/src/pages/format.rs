//! How numbers and times read on the pages: short, with units, and a dash for "no data".

use crate::time_range::rfc3339;

pub const NONE: &str = "–";

pub fn count(n: u64) -> String {
    let s = n.to_string();
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

pub fn pct(v: Option<f64>) -> String {
    match v {
        Some(v) if v.is_finite() => {
            let p = v * 100.0;
            if p != 0.0 && p.abs() < 0.1 {
                format!("{p:.2}%")
            } else {
                format!("{p:.1}%")
            }
        }
        _ => NONE.into(),
    }
}

/// Seconds, shown in ms below one second.
pub fn secs(v: Option<f64>) -> String {
    match v {
        Some(v) if v.is_finite() => ms(Some(v * 1000.0)),
        _ => NONE.into(),
    }
}

pub fn ms(v: Option<f64>) -> String {
    match v {
        Some(v) if v.is_finite() => {
            if v.abs() >= 1000.0 {
                format!("{:.2} s", v / 1000.0)
            } else if v.abs() >= 10.0 {
                format!("{v:.0} ms")
            } else {
                format!("{v:.1} ms")
            }
        }
        _ => NONE.into(),
    }
}

pub fn usd(v: Option<f64>) -> String {
    match v {
        Some(v) if v.is_finite() => {
            if v.abs() >= 100.0 {
                format!("${v:.0}")
            } else if v.abs() >= 1.0 {
                format!("${v:.2}")
            } else {
                format!("${v:.4}")
            }
        }
        _ => NONE.into(),
    }
}

pub fn num(v: Option<f64>) -> String {
    match v {
        Some(v) if v.is_finite() => {
            if v.abs() >= 1000.0 || v == v.trunc() {
                format!("{v:.0}")
            } else if v.abs() >= 1.0 {
                format!("{v:.2}")
            } else {
                format!("{v:.3}")
            }
        }
        _ => NONE.into(),
    }
}

pub fn rate(per_sec: f64) -> String {
    if per_sec >= 1.0 {
        format!("{per_sec:.1}/s")
    } else {
        format!("{:.1}/min", per_sec * 60.0)
    }
}

/// `2026-12-01 10:00:05` (UTC).
pub fn time(unix_nanos: i64) -> String {
    rfc3339(unix_nanos)
        .replace('T', " ")
        .trim_end_matches('Z')
        .to_string()
}

/// Cuts text to `max` characters (on a character boundary) and says how much was left out.
pub fn clip(s: &str, max: usize) -> (String, Option<usize>) {
    match s.char_indices().nth(max) {
        None => (s.to_string(), None),
        Some((at, _)) => (s[..at].to_string(), Some(s[at..].chars().count())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_read_well() {
        assert_eq!(count(1234567), "1,234,567");
        assert_eq!(pct(Some(0.1234)), "12.3%");
        assert_eq!(pct(None), NONE);
        assert_eq!(secs(Some(0.25)), "250 ms");
        assert_eq!(secs(Some(2.5)), "2.50 s");
        assert_eq!(usd(Some(0.01234)), "$0.0123");
        let (c, more) = clip("héllo wörld", 5);
        assert_eq!((c.as_str(), more), ("héllo", Some(6)));
    }
}
