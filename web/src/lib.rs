//! `plumb-web`: the HTTP app on the UI/API address. For now the JSON API: SQL, traces, evals
//! and alerts; the server-rendered dashboard pages join it here.

pub mod api;
pub mod evals_api;

pub use api::{router, ApiState};
