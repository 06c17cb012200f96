//! The job store against a real, freshly migrated Postgres per test.

mod connections;
mod group_commit;
mod handover;
mod lifecycle;
mod outputs;
mod search;
mod stage_timings;
mod submission;
mod tls;
