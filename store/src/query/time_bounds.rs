//! Reads the time range a query asks for out of its filters, so that whole files outside it are
//! never opened (the catalog knows each file's min and max time).

use datafusion::common::ScalarValue;
use datafusion::logical_expr::{Between, BinaryExpr, Expr, Operator};

/// An inclusive range of nanoseconds since the epoch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimeBounds {
    pub min: i64,
    pub max: i64,
}

impl Default for TimeBounds {
    fn default() -> Self {
        TimeBounds {
            min: i64::MIN,
            max: i64::MAX,
        }
    }
}

impl TimeBounds {
    /// Intersects the bounds implied by every top-level conjunct on `column`.
    pub fn from_filters(column: &str, filters: &[Expr]) -> TimeBounds {
        let mut b = TimeBounds::default();
        for f in filters {
            b.apply(column, f);
        }
        b
    }

    pub fn overlaps(&self, min: i64, max: i64) -> bool {
        min <= self.max && max >= self.min
    }

    fn apply(&mut self, column: &str, expr: &Expr) {
        match expr {
            Expr::BinaryExpr(BinaryExpr { left, op, right }) => {
                if *op == Operator::And {
                    self.apply(column, left);
                    self.apply(column, right);
                    return;
                }
                let (op, value) = match (is_column(left, column), is_column(right, column)) {
                    (true, false) => (*op, nanos(right)),
                    (false, true) => match op.swap() {
                        Some(op) => (op, nanos(left)),
                        None => return,
                    },
                    _ => return,
                };
                let Some(v) = value else { return };
                match op {
                    Operator::Eq => {
                        self.min = self.min.max(v);
                        self.max = self.max.min(v);
                    }
                    Operator::Gt | Operator::GtEq => self.min = self.min.max(v),
                    Operator::Lt | Operator::LtEq => self.max = self.max.min(v),
                    _ => {}
                }
            }
            Expr::Between(Between {
                expr,
                negated: false,
                low,
                high,
            }) if is_column(expr, column) => {
                if let Some(v) = nanos(low) {
                    self.min = self.min.max(v);
                }
                if let Some(v) = nanos(high) {
                    self.max = self.max.min(v);
                }
            }
            _ => {}
        }
    }
}

fn is_column(e: &Expr, column: &str) -> bool {
    match e {
        Expr::Column(c) => c.name == column,
        Expr::Cast(c) => is_column(&c.expr, column),
        _ => false,
    }
}

fn nanos(e: &Expr) -> Option<i64> {
    let Expr::Literal(v, _) = e else { return None };
    match v {
        ScalarValue::TimestampNanosecond(Some(v), _) => Some(*v),
        ScalarValue::TimestampMicrosecond(Some(v), _) => v.checked_mul(1_000),
        ScalarValue::TimestampMillisecond(Some(v), _) => v.checked_mul(1_000_000),
        ScalarValue::TimestampSecond(Some(v), _) => v.checked_mul(1_000_000_000),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::logical_expr::{col, lit};

    fn ts(v: i64) -> Expr {
        lit(ScalarValue::TimestampNanosecond(
            Some(v),
            Some("UTC".into()),
        ))
    }

    #[test]
    fn conjunctions_and_between_narrow_the_range() {
        let f = [
            col("time").gt_eq(ts(10)).and(col("time").lt(ts(20))),
            ts(5).lt(col("time")),
        ];
        let b = TimeBounds::from_filters("time", &f);
        assert_eq!(b, TimeBounds { min: 10, max: 20 });
        assert!(b.overlaps(0, 10) && !b.overlaps(21, 30));
        let b = TimeBounds::from_filters("time", &[col("time").between(ts(1), ts(2))]);
        assert_eq!(b, TimeBounds { min: 1, max: 2 });
    }

    #[test]
    fn other_columns_and_disjunctions_do_not_prune() {
        let f = [
            col("other").gt(ts(10)),
            col("time").gt(ts(1)).or(col("time").lt(ts(0))),
        ];
        assert_eq!(TimeBounds::from_filters("time", &f), TimeBounds::default());
    }
}
