//! docflow worker: consumes job messages by priority, claims each job in
//! Postgres under a lease, runs the pipeline, and records the outcome (with
//! retry, dead-letter and event messages through the outbox) before acking.

pub mod config;
mod earlier;
mod executor;
mod http;
mod messages;
mod metrics;
mod noop;
mod outcomes;
mod reaper;
pub mod startup;

pub use config::Config;
pub use startup::Application;
