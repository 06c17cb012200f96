//! Bulk retries started from the console run in the background, batch by
//! batch (`ops::bulk_retry_reporting`), and their progress page reloads
//! itself until they finish. The progress lives in this process's memory:
//! behind several replicas without sticky sessions the page may land on
//! one that does not know the run (the audit log has every batch anyway).

use std::collections::HashMap;
use std::sync::Mutex;

use chrono::{DateTime, Utc};
use uuid::Uuid;

/// Runs kept for their pages; the oldest finished ones go first.
const KEPT: usize = 200;

#[derive(Debug, Clone)]
pub struct Run {
    pub actor: String,
    pub reason: String,
    pub started_at: DateTime<Utc>,
    /// What the dry-run count found when it started.
    pub matched: i64,
    pub retried: u64,
    pub batches: u32,
    /// The request id of its audit rows, once the first batch committed.
    pub request_id: Option<Uuid>,
    /// None while running; the error's text if it stopped on one.
    pub finished: Option<Result<bool, String>>,
}

#[derive(Debug, Default)]
pub struct BulkRuns {
    runs: Mutex<HashMap<Uuid, Run>>,
}

impl BulkRuns {
    pub fn start(&self, id: Uuid, actor: &str, reason: &str, matched: i64) {
        let mut runs = self.runs.lock().expect("not poisoned");
        if runs.len() >= KEPT {
            let oldest = runs.iter().filter(|(_, r)| r.finished.is_some()).min_by_key(|(_, r)| r.started_at);
            if let Some(old) = oldest.map(|(id, _)| *id) {
                runs.remove(&old);
            }
        }
        runs.insert(
            id,
            Run {
                actor: actor.to_owned(),
                reason: reason.to_owned(),
                started_at: Utc::now(),
                matched,
                retried: 0,
                batches: 0,
                request_id: None,
                finished: None,
            },
        );
    }

    pub fn progress(&self, id: Uuid, retried: u64, batches: u32, request_id: Uuid) {
        if let Some(run) = self.runs.lock().expect("not poisoned").get_mut(&id) {
            (run.retried, run.batches, run.request_id) = (retried, batches, Some(request_id));
        }
    }

    /// `limit_reached`: more may match than one request retries.
    pub fn finish(&self, id: Uuid, result: Result<bool, String>) {
        if let Some(run) = self.runs.lock().expect("not poisoned").get_mut(&id) {
            run.finished = Some(result);
        }
    }

    pub fn get(&self, id: Uuid) -> Option<Run> {
        self.runs.lock().expect("not poisoned").get(&id).cloned()
    }
}
