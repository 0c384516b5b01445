//! The catalog's alerting tables: rules (as JSON documents the evaluators crate interprets),
//! each rule's current state, and the webhook outbox. A state change and the notification that
//! announces it commit together, so a crash can neither send an unrecorded change nor lose one.

use serde::{Deserialize, Serialize};
use sqlx::Row;

use super::Catalog;
use crate::error::Result;

/// A stored alert rule.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StoredRule {
    pub project: String,
    pub name: String,
    /// The rule as JSON; its shape belongs to `plumb-evaluators`.
    pub spec: String,
    pub enabled: bool,
    pub created_at: i64,
    pub updated_at: i64,
}

/// Where a rule stands now.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RuleState {
    pub project: String,
    pub name: String,
    /// `ok`, `pending` or `firing` (a resolved alert is `ok` again).
    pub state: String,
    /// When the rule entered `state` (Unix nanoseconds).
    pub since: i64,
    pub fired_at: Option<i64>,
    pub value: Option<f64>,
    pub evaluated_at: i64,
}

/// A webhook delivery waiting to be (re)tried.
#[derive(Debug, Clone, PartialEq)]
pub struct Notification {
    pub id: i64,
    pub transition_key: String,
    pub project: String,
    pub rule_name: String,
    pub url: String,
    pub body: String,
    pub attempts: i64,
}

/// A webhook delivery to enqueue with a state change.
#[derive(Debug, Clone, PartialEq)]
pub struct NewNotification {
    /// Identifies the transition (rule, state, time); a second enqueue of it is ignored.
    pub transition_key: String,
    pub url: String,
    pub body: String,
}

impl Catalog {
    /// Creates or replaces the rule `name` of `project`.
    pub async fn put_alert_rule(
        &self,
        project: &str,
        name: &str,
        spec: &str,
        enabled: bool,
    ) -> Result<()> {
        let now = now_nanos();
        sqlx::query(&self.q(
            "INSERT INTO alert_rules (project, name, spec, enabled, created_at, updated_at) \
             VALUES (?, ?, ?, ?, ?, ?) \
             ON CONFLICT (project, name) DO UPDATE SET spec = excluded.spec, \
             enabled = excluded.enabled, updated_at = excluded.updated_at",
        ))
        .bind(project)
        .bind(name)
        .bind(spec)
        .bind(enabled as i64)
        .bind(now)
        .bind(now)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Deletes a rule and its state; returns whether it existed.
    pub async fn delete_alert_rule(&self, project: &str, name: &str) -> Result<bool> {
        let mut tx = self.pool.begin().await?;
        let n = sqlx::query(&self.q("DELETE FROM alert_rules WHERE project = ? AND name = ?"))
            .bind(project)
            .bind(name)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        sqlx::query(&self.q("DELETE FROM alert_state WHERE project = ? AND name = ?"))
            .bind(project)
            .bind(name)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(n > 0)
    }

    /// The rules of one project, or of all projects (the scheduler) with `None`.
    pub async fn alert_rules(&self, project: Option<&str>) -> Result<Vec<StoredRule>> {
        const COLUMNS: &str =
            "SELECT project, name, spec, enabled, created_at, updated_at FROM alert_rules";
        let rows: Vec<sqlx::any::AnyRow> = match project {
            Some(p) => {
                let q = format!("{COLUMNS} WHERE project = ? ORDER BY name");
                sqlx::query(&self.q(&q))
                    .bind(p)
                    .fetch_all(&self.pool)
                    .await?
            }
            None => {
                let q = format!("{COLUMNS} ORDER BY project, name");
                sqlx::query(&q).fetch_all(&self.pool).await?
            }
        };
        Ok(rows
            .into_iter()
            .map(|r| StoredRule {
                project: r.get(0),
                name: r.get(1),
                spec: r.get(2),
                enabled: r.get::<i64, _>(3) != 0,
                created_at: r.get(4),
                updated_at: r.get(5),
            })
            .collect())
    }

    pub async fn alert_state(&self, project: &str, name: &str) -> Result<Option<RuleState>> {
        let row = sqlx::query(&self.q(
            "SELECT project, name, state, since, fired_at, value, evaluated_at FROM alert_state \
             WHERE project = ? AND name = ?",
        ))
        .bind(project)
        .bind(name)
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.map(|r| RuleState {
            project: r.get(0),
            name: r.get(1),
            state: r.get(2),
            since: r.get(3),
            fired_at: r.get(4),
            value: r.get(5),
            evaluated_at: r.get(6),
        }))
    }

    /// Saves a rule's state and, in the same transaction, the notifications announcing it.
    pub async fn save_alert_state(
        &self,
        state: &RuleState,
        notify: &[NewNotification],
    ) -> Result<()> {
        let mut tx = self.pool.begin().await?;
        sqlx::query(&self.q(
            "INSERT INTO alert_state (project, name, state, since, fired_at, value, evaluated_at) \
             VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (project, name) DO UPDATE SET \
             state = excluded.state, since = excluded.since, fired_at = excluded.fired_at, \
             value = excluded.value, evaluated_at = excluded.evaluated_at",
        ))
        .bind(&state.project)
        .bind(&state.name)
        .bind(&state.state)
        .bind(state.since)
        .bind(state.fired_at)
        .bind(state.value)
        .bind(state.evaluated_at)
        .execute(&mut *tx)
        .await?;
        for n in notify {
            sqlx::query(&self.q("INSERT INTO alert_notifications \
                 (transition_key, project, rule_name, url, body, next_attempt_at) VALUES (?, ?, ?, ?, ?, ?) \
                 ON CONFLICT (transition_key) DO NOTHING"))
            .bind(&n.transition_key)
            .bind(&state.project)
            .bind(&state.name)
            .bind(&n.url)
            .bind(&n.body)
            .bind(state.evaluated_at)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Undelivered notifications whose next attempt is due at `now`.
    pub async fn due_notifications(
        &self,
        now: i64,
        max_attempts: i64,
    ) -> Result<Vec<Notification>> {
        let rows = sqlx::query(&self.q("SELECT id, transition_key, project, rule_name, url, body, attempts FROM alert_notifications \
             WHERE delivered_at IS NULL AND next_attempt_at <= ? AND attempts < ? ORDER BY id LIMIT 100"))
        .bind(now)
        .bind(max_attempts)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .into_iter()
            .map(|r| Notification {
                id: r.get(0),
                transition_key: r.get(1),
                project: r.get(2),
                rule_name: r.get(3),
                url: r.get(4),
                body: r.get(5),
                attempts: r.get(6),
            })
            .collect())
    }

    pub async fn notification_delivered(&self, id: i64) -> Result<()> {
        sqlx::query(&self.q(
            "UPDATE alert_notifications SET delivered_at = ?, attempts = attempts + 1 WHERE id = ?",
        ))
        .bind(now_nanos())
        .bind(id)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    pub async fn notification_failed(
        &self,
        id: i64,
        next_attempt_at: i64,
        error: &str,
    ) -> Result<()> {
        sqlx::query(&self.q("UPDATE alert_notifications SET attempts = attempts + 1, next_attempt_at = ?, last_error = ? \
             WHERE id = ?"))
        .bind(next_attempt_at)
        .bind(error)
        .bind(id)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// A follower's saved position, if it has one.
    pub async fn cursor(&self, name: &str) -> Result<Option<i64>> {
        Ok(
            sqlx::query_scalar(&self.q("SELECT value FROM cursors WHERE name = ?"))
                .bind(name)
                .fetch_optional(&self.pool)
                .await?,
        )
    }

    pub async fn set_cursor(&self, name: &str, value: i64) -> Result<()> {
        sqlx::query(&self.q("INSERT INTO cursors (name, value) VALUES (?, ?) ON CONFLICT (name) DO UPDATE SET value = excluded.value"))
            .bind(name)
            .bind(value)
            .execute(&self.pool)
            .await?;
        Ok(())
    }
}

pub(crate) fn now_nanos() -> i64 {
    chrono::Utc::now().timestamp_nanos_opt().unwrap_or_default()
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// Rules, state, the outbox (a transition enqueued once) and cursors, on the catalog at
    /// `url` (run for SQLite and PostgreSQL by the catalog's tests).
    pub(crate) async fn alert_tables_work(url: &str) {
        let c = Catalog::open_url(url).await.unwrap();
        c.put_alert_rule("p", "r", "{}", false).await.unwrap();
        c.put_alert_rule("p", "r", "{\"v\": 2}", true)
            .await
            .unwrap();
        let rules = c.alert_rules(Some("p")).await.unwrap();
        assert_eq!(
            (rules.len(), rules[0].enabled, rules[0].spec.as_str()),
            (1, true, "{\"v\": 2}")
        );
        assert!(c.alert_rules(Some("other")).await.unwrap().is_empty());
        let state = RuleState {
            project: "p".into(),
            name: "r".into(),
            state: "firing".into(),
            since: 5,
            fired_at: Some(5),
            value: Some(0.1),
            evaluated_at: 5,
        };
        let n = NewNotification {
            transition_key: "p/r/firing/5".into(),
            url: "http://127.0.0.1:1/hook".into(),
            body: "{}".into(),
        };
        c.save_alert_state(&state, std::slice::from_ref(&n))
            .await
            .unwrap();
        c.save_alert_state(&state, std::slice::from_ref(&n))
            .await
            .unwrap();
        let due = c.due_notifications(10, 5).await.unwrap();
        assert_eq!(due.len(), 1);
        c.notification_delivered(due[0].id).await.unwrap();
        assert!(c.due_notifications(10, 5).await.unwrap().is_empty());
        assert_eq!(c.alert_state("p", "r").await.unwrap(), Some(state));
        assert!(c.delete_alert_rule("p", "r").await.unwrap());
        assert!(c.alert_rules(None).await.unwrap().is_empty());
        assert_eq!(c.cursor("x").await.unwrap(), None);
        c.set_cursor("x", 7).await.unwrap();
        c.set_cursor("x", 9).await.unwrap();
        assert_eq!(c.cursor("x").await.unwrap(), Some(9));
    }
}
