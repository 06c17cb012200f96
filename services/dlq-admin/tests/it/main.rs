//! dlq-admin against the real Postgres and RabbitMQ: one test binary, one
//! fresh database and queue namespace per test.

mod helpers;

mod actions;
mod auth;
mod bulk;
mod listing;
mod metrics;
mod openapi;
mod platform;
mod poison;
mod retention;
