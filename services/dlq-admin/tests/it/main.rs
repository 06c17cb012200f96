//! dlq-admin against the real Postgres and RabbitMQ: one test binary, one
//! fresh database and queue namespace per test.

mod helpers;

mod actions;
mod auth;
mod bulk;
mod listing;
mod openapi;
mod platform;
mod poison;
mod retention;
