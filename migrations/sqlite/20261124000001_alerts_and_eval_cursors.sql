-- Alert rules: the rule itself is a JSON document (kind, signal, window, threshold, ...) that
-- the evaluators crate parses, so new rule kinds need no migration.
CREATE TABLE alert_rules (
    project     TEXT    NOT NULL,
    name        TEXT    NOT NULL,
    spec        TEXT    NOT NULL,
    enabled     INTEGER NOT NULL DEFAULT 1,
    created_at  INTEGER NOT NULL,
    updated_at  INTEGER NOT NULL,
    PRIMARY KEY (project, name)
);

-- Where each rule stands, so that a restart neither re-fires nor forgets a firing alert.
CREATE TABLE alert_state (
    project         TEXT    NOT NULL,
    name            TEXT    NOT NULL,
    state           TEXT    NOT NULL,
    since           INTEGER NOT NULL,
    fired_at        INTEGER,
    value           REAL,
    evaluated_at    INTEGER NOT NULL,
    PRIMARY KEY (project, name)
);

-- Webhook deliveries, written in the same transaction as the state change they announce. The
-- unique key is the transition, so a transition is sent once however often it is retried.
CREATE TABLE alert_notifications (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    transition_key  TEXT    NOT NULL UNIQUE,
    project         TEXT    NOT NULL,
    rule_name       TEXT    NOT NULL,
    url             TEXT    NOT NULL,
    body            TEXT    NOT NULL,
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at INTEGER NOT NULL,
    delivered_at    INTEGER,
    last_error      TEXT
);
CREATE INDEX alert_notifications_due ON alert_notifications (delivered_at, next_attempt_at);

-- How far a follower of new rows (the online evaluator) has read, by observed_time.
CREATE TABLE cursors (
    name   TEXT    PRIMARY KEY,
    value  INTEGER NOT NULL
);
