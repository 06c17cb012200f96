//! What docflow's reports compute from metrics-tracker's per-minute
//! rollups: mergeable latency sketches ([`sketch`]), the report, stage
//! statistics and bottlenecks ([`report`]), SLA targets and alert
//! thresholds as settings ([`config`]) and the alerts they raise
//! ([`alerts`]). metrics-tracker serves these over its API; dlq-admin's
//! console draws them on its overview. No I/O here: `job_store::rollups`
//! reads the rows, [`report::WindowData`] merges them.

pub mod alerts;
pub mod config;
pub mod report;
pub mod sketch;
