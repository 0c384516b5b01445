//! Deterministic evaluators: cheap enough to run on every span, no model needed.

mod empty_output;
mod json_output;
mod refusal;
mod tool_call_args;
mod truncated;

pub use empty_output::EmptyOutput;
pub use json_output::JsonParse;
pub use refusal::{Refusal, REFUSAL_MARKERS};
pub use tool_call_args::{tool_calls, tool_definitions, ToolCall, ToolCallArgs};
pub use truncated::Truncated;

/// Finish reasons that mean the model stopped for a tool call, so no text is expected.
pub(crate) fn is_tool_call_finish(reason: &str) -> bool {
    matches!(
        reason.to_ascii_lowercase().as_str(),
        "tool_calls" | "tool_call" | "tool_use" | "function_call"
    )
}
