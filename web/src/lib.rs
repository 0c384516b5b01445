//! `plumb-web`: the HTTP app on the UI/API address: the JSON API under `/api/v1` and the
//! server-rendered dashboard pages, both drawing from the same `dashboard` queries.
//!
//! - [`time_range`]: the `from`/`to` every page and endpoint takes;
//! - [`dashboard`]: what each page shows, aggregated in SQL;
//! - [`pages`]: the HTML (leptos, server-side) and SVG charts;
//! - [`api`], [`evals_api`]: the JSON endpoints.

pub mod api;
pub mod dashboard;
pub mod error;
pub mod evals_api;
pub mod pages;
pub mod time_range;

pub use api::{router, ApiState};
