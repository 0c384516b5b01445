//! What SQL may do: read. Statements are parsed before planning and anything but a query,
//! `EXPLAIN` or `SHOW` is refused with an error that says so, before DataFusion sees it.

use datafusion::sql::parser::{DFParser, Statement as DfStatement};
use datafusion::sql::sqlparser::ast::Statement;

use super::QueryError;

/// Checks that `sql` is exactly one read-only statement.
pub fn check_read_only(sql: &str) -> Result<(), QueryError> {
    let statements = DFParser::parse_sql(sql).map_err(|e| QueryError::Invalid(e.to_string()))?;
    if statements.len() != 1 {
        return Err(QueryError::Invalid(format!(
            "expected exactly one SQL statement, found {}",
            statements.len()
        )));
    }
    let allowed = match &statements[0] {
        DfStatement::Statement(s) => matches!(
            s.as_ref(),
            Statement::Query(_) | Statement::ShowTables { .. } | Statement::ShowColumns { .. }
        ),
        DfStatement::Explain(e) => matches!(
            e.statement.as_ref(),
            DfStatement::Statement(s) if matches!(s.as_ref(), Statement::Query(_))
        ),
        _ => false,
    };
    if allowed {
        Ok(())
    } else {
        Err(QueryError::ReadOnly(first_words(sql)))
    }
}

fn first_words(sql: &str) -> String {
    sql.split_whitespace()
        .take(2)
        .collect::<Vec<_>>()
        .join(" ")
        .to_uppercase()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queries_pass_and_writes_are_refused() {
        for ok in [
            "SELECT 1",
            "WITH a AS (SELECT 1) SELECT * FROM a",
            "EXPLAIN SELECT * FROM spans",
            "SHOW TABLES",
        ] {
            check_read_only(ok).unwrap_or_else(|e| panic!("{ok}: {e}"));
        }
        for bad in [
            "CREATE EXTERNAL TABLE x STORED AS PARQUET LOCATION '/etc'",
            "CREATE TABLE t AS SELECT 1",
            "INSERT INTO spans VALUES (1)",
            "COPY (SELECT 1) TO '/tmp/x.csv'",
            "DROP TABLE spans",
            "SET datafusion.execution.batch_size = 1",
            "SELECT 1; SELECT 2",
        ] {
            assert!(check_read_only(bad).is_err(), "{bad} must be refused");
        }
        let msg = check_read_only("DELETE FROM spans")
            .unwrap_err()
            .to_string();
        assert!(msg.contains("read-only"), "{msg}");
    }
}
