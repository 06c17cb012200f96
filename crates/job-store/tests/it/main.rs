//! The job store against a real, freshly migrated Postgres per test.

mod lifecycle;
mod outputs;
mod search;
mod tls;
