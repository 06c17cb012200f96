//! HTTP routes. Handlers parse the request, call the library, render JSON.

pub mod alerts;
pub mod executions;
pub mod health;
pub mod queues;
pub mod reports;

use service_common::{ApiError, ErrorCode};

pub(crate) use service_common::request::query;

/// `hours`: 1 up to the rollup retention; 24 by default.
pub(crate) fn hours(value: Option<u32>, max: u32) -> Result<u32, ApiError> {
    let hours = value.unwrap_or(24);
    if !(1..=max).contains(&hours) {
        return Err(ApiError::field(ErrorCode::InvalidQuery, "hours", format!("hours must be between 1 and {max}")));
    }
    Ok(hours)
}
