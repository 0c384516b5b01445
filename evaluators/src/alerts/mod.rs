//! Alert rules: what they watch ([`rule`]), how their signals are measured over sliding
//! windows ([`signals`]), the state machine that turns measurements into `alert_events` rows and
//! notifications ([`engine`]), and webhook delivery ([`webhook`]).

pub mod engine;
pub mod rule;
pub mod signals;
pub mod webhook;

pub use engine::{evaluate_rule, AlertEngine, AlertEngineConfig, Evaluation};
pub use rule::{AlertRule, Baseline, Comparison, RuleKind, Signal};
