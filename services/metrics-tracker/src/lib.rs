//! docflow metrics-tracker: consumes the execution events workers publish on
//! `docflow.events`, stores every attempt's stage timings and per-minute
//! rollups (counts, failures, mergeable latency sketches), and serves
//! reports, bottlenecks, execution traces, queue state, alerts and
//! Prometheus metrics over HTTP. See README.md beside this crate.

pub mod alerts;
pub mod config;
pub mod consumer;
pub mod executions;
mod metrics;
mod openapi;
pub mod queues;
pub mod report;
pub mod retention;
pub mod rollup;
mod routes;
pub use metrics_core::sketch;
pub mod startup;
mod state;

pub use config::Config;
pub use startup::{Application, openapi};
