//! dlq-admin against the real Postgres and RabbitMQ: one test binary, one
//! fresh database and queue namespace per test.

mod browser;
mod helpers;

mod actions;
mod auth;
mod bulk;
mod console;
mod console_http;
mod listing;
mod metrics;
mod openapi;
mod platform;
mod poison;
mod retention;
