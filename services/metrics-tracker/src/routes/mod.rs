//! HTTP routes. Handlers parse the request, call the library, render JSON.

pub mod alerts;
pub mod executions;
pub mod health;
pub mod queues;
pub mod reports;

use actix_web::HttpRequest;
use actix_web::web;
use serde::de::DeserializeOwned;
use service_common::{ApiError, ErrorCode};

/// Parses the query string, refusing unknown parameters and wrong types (400).
pub(crate) fn query<T: DeserializeOwned>(req: &HttpRequest) -> Result<T, ApiError> {
    web::Query::<T>::from_query(req.query_string())
        .map(web::Query::into_inner)
        .map_err(|e| ApiError::new(ErrorCode::InvalidQuery, e.to_string()))
}

/// `hours`: 1 up to the rollup retention; 24 by default.
pub(crate) fn hours(value: Option<u32>, max: u32) -> Result<u32, ApiError> {
    let hours = value.unwrap_or(24);
    if !(1..=max).contains(&hours) {
        return Err(ApiError::field(ErrorCode::InvalidQuery, "hours", format!("hours must be between 1 and {max}")));
    }
    Ok(hours)
}
