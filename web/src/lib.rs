//! `plumb-web`: the HTTP app on the UI/API address. For now the JSON API: SQL and traces;
//! the server-rendered dashboard pages join it here.

pub mod api;

pub use api::{router, ApiState};
