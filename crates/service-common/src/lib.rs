//! What every docflow HTTP service shares: connection settings, the API
//! error shape, health and metrics endpoints, and shutdown on signals.

pub mod admin_auth;
pub mod blobs;
pub mod config;
pub mod error;
pub mod health;
pub mod http;
pub mod metrics;
pub mod openapi;
pub mod process_metrics;
pub mod request;
pub mod schema_wait;
pub mod shutdown;
pub mod tokens;
pub mod unread_body;
pub mod views;

pub use error::{ApiError, ErrorCode};
