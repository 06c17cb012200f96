//! docflow ingest-api: accepts documents over HTTP and commits each job with
//! its outbox message in one transaction, so a 202 is a promise kept even
//! while RabbitMQ is down.

mod auth;
pub mod config;
pub mod domain;
mod metrics;
mod openapi;
mod routes;
pub mod startup;
mod state;
mod uploads;

pub use config::Config;
pub use startup::{Application, openapi};
