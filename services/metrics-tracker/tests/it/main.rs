//! metrics-tracker against the real Postgres and RabbitMQ: one test binary,
//! one fresh database and queue namespace per test. Events go through the
//! real `docflow.events` exchange of the test's namespace and the service's
//! real consumer.

mod helpers;

mod alerts;
mod api;
mod consumer;
mod executions;
mod idempotency;
mod queues;
mod report;
mod retention;
