//! The real ingest-api and worker binaries, end to end, against the real
//! Postgres and RabbitMQ.

mod platform;

mod blob_stores;
mod broker_restart;
mod chaos;
mod connections;
mod conventions;
mod faults;
mod group_commit;
mod hostile;
mod metrics_report;
mod priority;
mod processing;
mod results;
mod retries;
mod shutdown;
mod tracing;
