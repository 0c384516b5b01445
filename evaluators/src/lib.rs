//! `plumb-evaluators`: everything that judges stored spans.
//!
//! This crate will own the per-span evaluators (JSON parse and schema checks, tool-call
//! validity, groundedness and context relevance through a `Judge`), the online runner that
//! tails new spans, offline runs, and alert rules over windows. Results go to the `evals` and
//! `alert_events` tables of `plumb-store`. It depends on `plumb-store` only; judge models are
//! plugged in by the binary, so it never depends on `plumb-serving`.
