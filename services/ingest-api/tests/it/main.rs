//! ingest-api against the real Postgres and RabbitMQ: one test binary, one
//! fresh database and queue namespace per test.

mod helpers;

mod auth;
mod handover;
mod idempotency;
mod listing;
mod openapi;
mod outages;
mod raw_multipart;
mod submit;
mod unroutable;
mod upload;
mod validation;
