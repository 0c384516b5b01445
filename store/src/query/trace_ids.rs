//! Reads the trace ids a query asks for out of its filters (`trace_id = '…'`,
//! `trace_id IN (…)`), so that files whose trace-id filter rules them out are never opened.

use datafusion::common::ScalarValue;
use datafusion::logical_expr::expr::InList;
use datafusion::logical_expr::{BinaryExpr, Expr, Operator};

use crate::schema::TRACE_ID;

/// The trace ids every matching row must have one of, if the filters pin them down.
pub fn wanted_trace_ids(filters: &[Expr]) -> Option<Vec<String>> {
    // Conjuncts each narrow the set; the first one that names ids is enough to prune by.
    filters.iter().find_map(ids_of)
}

fn ids_of(expr: &Expr) -> Option<Vec<String>> {
    match expr {
        Expr::BinaryExpr(BinaryExpr { left, op, right }) => match op {
            Operator::And => ids_of(left).or_else(|| ids_of(right)),
            // Short IN lists reach the scan rewritten as ORs of equalities.
            Operator::Or => {
                let mut ids = ids_of(left)?;
                ids.extend(ids_of(right)?);
                Some(ids)
            }
            Operator::Eq => match (is_trace_id(left), is_trace_id(right)) {
                (true, false) => text(right).map(|s| vec![s]),
                (false, true) => text(left).map(|s| vec![s]),
                _ => None,
            },
            _ => None,
        },
        Expr::InList(InList {
            expr,
            list,
            negated: false,
        }) if is_trace_id(expr) => list.iter().map(text).collect(),
        _ => None,
    }
}

fn is_trace_id(expr: &Expr) -> bool {
    match expr {
        Expr::Column(c) => c.name == TRACE_ID,
        // Planning may cast the column to the literal's string type; the bytes are the same.
        Expr::Cast(c) => is_trace_id(&c.expr),
        _ => false,
    }
}

fn text(expr: &Expr) -> Option<String> {
    match expr {
        Expr::Literal(
            ScalarValue::Utf8(Some(s))
            | ScalarValue::Utf8View(Some(s))
            | ScalarValue::LargeUtf8(Some(s)),
            _,
        ) => Some(s.clone()),
        Expr::Cast(c) => text(&c.expr),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::prelude::{col, lit};

    #[test]
    fn finds_ids_in_equality_and_in_lists() {
        let a = "0af7651916cd43dd8448eb211c80319c";
        assert_eq!(
            wanted_trace_ids(&[col("trace_id").eq(lit(a))]),
            Some(vec![a.to_string()])
        );
        assert_eq!(
            wanted_trace_ids(&[lit(a).eq(col("trace_id")).and(col("x").gt(lit(1)))]),
            Some(vec![a.to_string()])
        );
        let ab = Some(vec!["a".to_string(), "b".to_string()]);
        assert_eq!(
            wanted_trace_ids(&[col("trace_id").in_list(vec![lit("a"), lit("b")], false)]),
            ab
        );
        assert_eq!(
            wanted_trace_ids(&[col("trace_id")
                .eq(lit("a"))
                .or(col("trace_id").eq(lit("b")))]),
            ab
        );
    }

    #[test]
    fn anything_looser_prunes_nothing() {
        for f in [
            col("trace_id").not_eq(lit("a")),
            col("trace_id").in_list(vec![lit("a")], true),
            col("trace_id").eq(lit("a")).or(col("x").eq(lit(1))),
            col("trace_id").in_list(vec![lit("a"), col("span_id")], false),
            col("span_id").eq(lit("a")),
        ] {
            assert_eq!(wanted_trace_ids(std::slice::from_ref(&f)), None, "{f}");
        }
    }
}
