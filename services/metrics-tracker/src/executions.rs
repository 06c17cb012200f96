//! Execution traces from the raw rows: attempts with every stage's start
//! offset, duration and status. Raw rows are kept for RAW_RETENTION_HOURS.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Utc};
use job_model::{AttemptOutcome, JobPriority};
use serde::Serialize;
use sqlx::PgPool;
use uuid::Uuid;

/// One stage of one attempt.
#[derive(Debug, Clone, Serialize, sqlx::FromRow, utoipa::ToSchema)]
pub struct StageTrace {
    pub seq: i16,
    pub stage: String,
    /// succeeded or failed.
    pub status: String,
    pub started_at: DateTime<Utc>,
    /// Start relative to the attempt's start, in ms.
    pub offset_ms: f64,
    pub duration_ms: f64,
    pub items_processed: i64,
    pub bytes_processed: i64,
    pub error: Option<String>,
}

/// One attempt of a job.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct ExecutionTrace {
    pub job_id: Uuid,
    pub attempt: i32,
    pub document_id: String,
    pub priority: JobPriority,
    pub outcome: AttemptOutcome,
    pub error_message: Option<String>,
    pub error_stage: Option<String>,
    pub worker_id: String,
    pub submitted_at: DateTime<Utc>,
    pub started_at: DateTime<Utc>,
    pub finished_at: DateTime<Utc>,
    pub queue_wait_ms: f64,
    pub total_duration_ms: f64,
    /// The OpenTelemetry trace of the job, to open in Jaeger.
    pub trace_id: Option<String>,
    pub stages: Vec<StageTrace>,
}

#[derive(sqlx::FromRow)]
struct ExecutionRow {
    job_id: Uuid,
    attempt: i32,
    document_id: String,
    priority: i16,
    outcome: String,
    error_message: Option<String>,
    error_stage: Option<String>,
    worker_id: String,
    submitted_at: DateTime<Utc>,
    started_at: DateTime<Utc>,
    finished_at: DateTime<Utc>,
    queue_wait_ms: f64,
    total_duration_ms: f64,
    trace_id: Option<String>,
}

const COLUMNS: &str = "job_id, attempt, document_id, priority, outcome, error_message, error_stage, worker_id, \
                       submitted_at, started_at, finished_at, queue_wait_ms, total_duration_ms, trace_id";

pub fn parse_outcome(s: &str) -> Option<AttemptOutcome> {
    [AttemptOutcome::Completed, AttemptOutcome::Failed, AttemptOutcome::Retrying, AttemptOutcome::Dlq]
        .into_iter()
        .find(|o| o.as_str().eq_ignore_ascii_case(s.trim()))
}

impl ExecutionRow {
    fn into_trace(self, stages: Vec<StageTrace>) -> ExecutionTrace {
        ExecutionTrace {
            job_id: self.job_id,
            attempt: self.attempt,
            document_id: self.document_id,
            // The table's CHECK constraints admit only these values.
            priority: JobPriority::from_value(self.priority).unwrap_or_default(),
            outcome: parse_outcome(&self.outcome).unwrap_or(AttemptOutcome::Failed),
            error_message: self.error_message,
            error_stage: self.error_stage,
            worker_id: self.worker_id,
            submitted_at: self.submitted_at,
            started_at: self.started_at,
            finished_at: self.finished_at,
            queue_wait_ms: self.queue_wait_ms,
            total_duration_ms: self.total_duration_ms,
            trace_id: self.trace_id,
            stages,
        }
    }
}

/// The keyset position of an execution in the newest-first listing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cursor {
    pub finished_at: DateTime<Utc>,
    pub job_id: Uuid,
    pub attempt: i32,
}

impl Cursor {
    pub fn encode(&self) -> String {
        URL_SAFE_NO_PAD.encode(format!("{}|{}|{}", self.finished_at.timestamp_micros(), self.job_id, self.attempt))
    }

    pub fn decode(s: &str) -> Option<Cursor> {
        let raw = String::from_utf8(URL_SAFE_NO_PAD.decode(s).ok()?).ok()?;
        let mut parts = raw.split('|');
        let micros: i64 = parts.next()?.parse().ok()?;
        let job_id = parts.next()?.parse().ok()?;
        let attempt = parts.next()?.parse().ok()?;
        if parts.next().is_some() {
            return None;
        }
        Some(Cursor { finished_at: DateTime::from_timestamp_micros(micros)?, job_id, attempt })
    }
}

#[derive(Debug, Clone, Default)]
pub struct ListFilter {
    pub outcome: Option<AttemptOutcome>,
    pub since: Option<DateTime<Utc>>,
    pub after: Option<Cursor>,
}

async fn stages_of(pool: &PgPool, keys: &[(Uuid, i32)]) -> Result<Vec<(Uuid, i32, StageTrace)>, sqlx::Error> {
    #[derive(sqlx::FromRow)]
    struct Row {
        job_id: Uuid,
        attempt: i32,
        #[sqlx(flatten)]
        stage: StageTrace,
    }
    let job_ids: Vec<Uuid> = keys.iter().map(|k| k.0).collect();
    let attempts: Vec<i32> = keys.iter().map(|k| k.1).collect();
    let rows: Vec<Row> = sqlx::query_as(
        "SELECT job_id, attempt, seq, stage, status, started_at, offset_ms, duration_ms, items_processed, \
                bytes_processed, error \
         FROM metric_stage_timings \
         WHERE (job_id, attempt) IN (SELECT * FROM UNNEST($1::uuid[], $2::int4[])) \
         ORDER BY job_id, attempt, seq",
    )
    .bind(job_ids)
    .bind(attempts)
    .fetch_all(pool)
    .await?;
    Ok(rows.into_iter().map(|r| (r.job_id, r.attempt, r.stage)).collect())
}

async fn with_stages(pool: &PgPool, rows: Vec<ExecutionRow>) -> Result<Vec<ExecutionTrace>, sqlx::Error> {
    let keys: Vec<(Uuid, i32)> = rows.iter().map(|r| (r.job_id, r.attempt)).collect();
    let mut by_attempt: std::collections::HashMap<(Uuid, i32), Vec<StageTrace>> = std::collections::HashMap::new();
    for (job_id, attempt, stage) in stages_of(pool, &keys).await? {
        by_attempt.entry((job_id, attempt)).or_default().push(stage);
    }
    Ok(rows
        .into_iter()
        .map(|row| {
            let stages = by_attempt.remove(&(row.job_id, row.attempt)).unwrap_or_default();
            row.into_trace(stages)
        })
        .collect())
}

/// Newest first (by finished_at), `limit` of them after the cursor.
pub async fn list(pool: &PgPool, filter: &ListFilter, limit: i64) -> Result<Vec<ExecutionTrace>, sqlx::Error> {
    let rows: Vec<ExecutionRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM metric_executions \
         WHERE ($1::text IS NULL OR outcome = $1) \
           AND ($2::timestamptz IS NULL OR finished_at >= $2) \
           AND ($3::timestamptz IS NULL OR (finished_at, job_id, attempt) < ($3, $4, $5)) \
         ORDER BY finished_at DESC, job_id DESC, attempt DESC LIMIT $6"
    )))
    .bind(filter.outcome.map(AttemptOutcome::as_str))
    .bind(filter.since)
    .bind(filter.after.map(|c| c.finished_at))
    .bind(filter.after.map(|c| c.job_id))
    .bind(filter.after.map(|c| c.attempt))
    .bind(limit)
    .fetch_all(pool)
    .await?;
    with_stages(pool, rows).await
}

/// Every recorded attempt of a job, oldest first.
pub async fn of_job(pool: &PgPool, job_id: Uuid) -> Result<Vec<ExecutionTrace>, sqlx::Error> {
    let rows: Vec<ExecutionRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM metric_executions WHERE job_id = $1 ORDER BY attempt"
    )))
    .bind(job_id)
    .fetch_all(pool)
    .await?;
    with_stages(pool, rows).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_garbage_is_refused() {
        let c = Cursor {
            finished_at: DateTime::from_timestamp_micros(1_790_000_000_123_456).unwrap(),
            job_id: Uuid::now_v7(),
            attempt: 3,
        };
        assert_eq!(Cursor::decode(&c.encode()), Some(c));
        assert_eq!(Cursor::decode("not-a-cursor"), None);
        assert_eq!(Cursor::decode(&URL_SAFE_NO_PAD.encode("1|2")), None);
    }

    #[test]
    fn outcomes_parse_in_any_case() {
        assert_eq!(parse_outcome("DLQ"), Some(AttemptOutcome::Dlq));
        assert_eq!(parse_outcome("completed"), Some(AttemptOutcome::Completed));
        assert_eq!(parse_outcome("done"), None);
    }
}
