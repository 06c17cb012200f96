//! Queue statistics, as reported by metrics-tracker and read by autoscalers.

use serde::{Deserialize, Serialize};

use crate::JobPriority;

/// One priority queue's state, combining Postgres (job statuses) and the
/// broker (messages ready, consumers).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct QueueStats {
    pub queue: String,
    pub priority: Option<JobPriority>,
    pub queued: i64,
    pub processing: i64,
    pub completed: i64,
    pub failed: i64,
    pub retrying: i64,
    pub dlq: i64,
    /// Messages ready on the broker queue.
    pub messages_ready: Option<u32>,
    pub consumer_count: Option<u32>,
    /// Age of the oldest QUEUED job, in seconds.
    pub oldest_message_age_seconds: Option<f64>,
}
