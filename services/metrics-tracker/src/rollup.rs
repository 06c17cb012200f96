//! Writing execution events: the raw rows (`metric_executions`, each with
//! its attempt's stage timings as an array) and the per-minute rollups, for
//! a batch of events in one transaction.
//!
//! Idempotency: the raw insert is `ON CONFLICT (job_id, attempt) DO NOTHING
//! RETURNING`, and only the events it actually inserted are added to the
//! rollups, in the same transaction. A redelivered event therefore changes
//! nothing, whether it comes in a later batch or twice in the same one.
//!
//! Rollup rows are read-modify-written (a sketch cannot be merged in SQL):
//! missing rows are created empty, then every row the batch touches is locked
//! `FOR UPDATE` in key order, merged in Rust and written back. Key order is
//! the same in every transaction, so two replicas cannot deadlock.

use std::collections::{BTreeMap, HashSet};

use chrono::{DateTime, DurationRound, TimeDelta, Utc};
use job_model::ExecutionEvent;
use sqlx::{PgPool, Postgres, Transaction};
use uuid::Uuid;

use crate::sketch::Sketch;

/// What a batch did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RecordOutcome {
    /// Indices (into the batch) of the events recorded for the first time.
    pub inserted: Vec<usize>,
    /// Events already recorded (redeliveries), including repeats within the batch.
    pub duplicates: usize,
}

/// The minute an event is counted in: the minute its attempt finished.
pub fn bucket_of(at: DateTime<Utc>) -> DateTime<Utc> {
    at.duration_trunc(TimeDelta::minutes(1)).unwrap_or(at)
}

/// One rollup row's increments.
#[derive(Debug, Default)]
struct StageDelta {
    count: i64,
    failures: i64,
    sum_ms: f64,
    min_ms: Option<f64>,
    max_ms: Option<f64>,
    sum_share_pct: f64,
    sketch: Sketch,
}

#[derive(Debug, Default)]
struct ExecutionDelta {
    count: i64,
    sum_total_ms: f64,
    min_total_ms: Option<f64>,
    max_total_ms: Option<f64>,
    total_sketch: Sketch,
    wait_count: i64,
    sum_wait_ms: f64,
    max_wait_ms: Option<f64>,
    wait_sketch: Sketch,
}

fn min_opt(a: Option<f64>, b: f64) -> Option<f64> {
    Some(a.map_or(b, |a| a.min(b)))
}

fn max_opt(a: Option<f64>, b: f64) -> Option<f64> {
    Some(a.map_or(b, |a| a.max(b)))
}

/// Records a batch of (already validated) events in one transaction.
pub async fn record_batch(pool: &PgPool, events: &[ExecutionEvent]) -> Result<RecordOutcome, sqlx::Error> {
    if events.is_empty() {
        return Ok(RecordOutcome::default());
    }
    // Repeats inside the batch: keep the first, count the others.
    let mut seen = HashSet::new();
    let unique: Vec<usize> =
        (0..events.len()).filter(|&i| seen.insert((events[i].job_id, events[i].attempt))).collect();

    let mut tx = pool.begin().await?;
    let inserted_keys = insert_executions(&mut tx, events, &unique).await?;
    let inserted: Vec<usize> =
        unique.into_iter().filter(|&i| inserted_keys.contains(&(events[i].job_id, events[i].attempt))).collect();
    if !inserted.is_empty() {
        let fresh: Vec<&ExecutionEvent> = inserted.iter().map(|&i| &events[i]).collect();
        update_stage_rollups(&mut tx, &fresh).await?;
        update_execution_rollups(&mut tx, &fresh).await?;
    }
    tx.commit().await?;
    let duplicates = events.len() - inserted.len();
    Ok(RecordOutcome { inserted, duplicates })
}

async fn insert_executions(
    tx: &mut Transaction<'_, Postgres>,
    events: &[ExecutionEvent],
    rows: &[usize],
) -> Result<HashSet<(Uuid, i32)>, sqlx::Error> {
    let job_ids: Vec<Uuid> = rows.iter().map(|&i| events[i].job_id).collect();
    let attempts: Vec<i32> = rows.iter().map(|&i| events[i].attempt).collect();
    let document_ids: Vec<String> = rows.iter().map(|&i| events[i].document_id.clone()).collect();
    let priorities: Vec<i16> = rows.iter().map(|&i| events[i].priority.value()).collect();
    let outcomes: Vec<String> = rows.iter().map(|&i| events[i].outcome.as_str().to_owned()).collect();
    let error_messages: Vec<Option<String>> = rows.iter().map(|&i| events[i].error_message.clone()).collect();
    let error_stages: Vec<Option<String>> = rows.iter().map(|&i| events[i].error_stage.clone()).collect();
    let worker_ids: Vec<String> = rows.iter().map(|&i| events[i].worker_id.clone()).collect();
    let trace_ids: Vec<Option<String>> = rows.iter().map(|&i| events[i].trace_id.clone()).collect();
    let submitted: Vec<DateTime<Utc>> = rows.iter().map(|&i| events[i].submitted_at).collect();
    let started: Vec<DateTime<Utc>> = rows.iter().map(|&i| events[i].started_at).collect();
    let finished: Vec<DateTime<Utc>> = rows.iter().map(|&i| events[i].finished_at).collect();
    let waits: Vec<f64> = rows.iter().map(|&i| events[i].queue_wait_ms).collect();
    let totals: Vec<f64> = rows.iter().map(|&i| events[i].total_duration_ms).collect();

    let stages = StageColumns::of(events, rows);

    // Each attempt's stages go into its row as one array, in pipeline order
    // (the migration of lever 7), keyed here by the row's position.
    let inserted: Vec<(Uuid, i32)> = sqlx::query_as(
        "WITH stages AS ( \
             SELECT s.n, array_agg(ROW(s.seq, s.stage, s.status, s.started_at, s.offset_ms, s.duration_ms, \
                                       s.items_processed, s.bytes_processed, s.error)::stage_timing \
                                   ORDER BY s.seq) AS stages \
             FROM UNNEST($15::int8[], $16::int2[], $17::text[], $18::text[], $19::timestamptz[], $20::float8[], \
                         $21::float8[], $22::int8[], $23::int8[], $24::text[]) \
                 AS s(n, seq, stage, status, started_at, offset_ms, duration_ms, items_processed, bytes_processed, \
                      error) \
             GROUP BY s.n \
         ) \
         INSERT INTO metric_executions (job_id, attempt, document_id, priority, outcome, error_message, error_stage, \
                                        worker_id, submitted_at, started_at, finished_at, queue_wait_ms, \
                                        total_duration_ms, trace_id, stages) \
         SELECT e.job_id, e.attempt, e.document_id, e.priority, e.outcome, e.error_message, e.error_stage, \
                e.worker_id, e.submitted_at, e.started_at, e.finished_at, e.queue_wait_ms, e.total_duration_ms, \
                e.trace_id, COALESCE(stages.stages, '{}') \
         FROM UNNEST($1::uuid[], $2::int4[], $3::text[], $4::int2[], $5::text[], $6::text[], $7::text[], \
                     $8::text[], $9::timestamptz[], $10::timestamptz[], $11::timestamptz[], $12::float8[], \
                     $13::float8[], $14::text[]) WITH ORDINALITY \
             AS e(job_id, attempt, document_id, priority, outcome, error_message, error_stage, worker_id, \
                  submitted_at, started_at, finished_at, queue_wait_ms, total_duration_ms, trace_id, n) \
         LEFT JOIN stages ON stages.n = e.n \
         ON CONFLICT (job_id, attempt) DO NOTHING \
         RETURNING job_id, attempt",
    )
    .bind(job_ids)
    .bind(attempts)
    .bind(document_ids)
    .bind(priorities)
    .bind(outcomes)
    .bind(error_messages)
    .bind(error_stages)
    .bind(worker_ids)
    .bind(submitted)
    .bind(started)
    .bind(finished)
    .bind(waits)
    .bind(totals)
    .bind(trace_ids)
    .bind(stages.rows)
    .bind(stages.seqs)
    .bind(stages.names)
    .bind(stages.statuses)
    .bind(stages.started)
    .bind(stages.offsets)
    .bind(stages.durations)
    .bind(stages.items)
    .bind(stages.bytes)
    .bind(stages.errors)
    .fetch_all(&mut **tx)
    .await?;
    Ok(inserted.into_iter().collect())
}

/// The stages of the events at `rows`, one array per column (the shape
/// `UNNEST` takes), each stage tagged with its event's 1-based position.
struct StageColumns {
    rows: Vec<i64>,
    seqs: Vec<i16>,
    names: Vec<String>,
    statuses: Vec<String>,
    started: Vec<DateTime<Utc>>,
    offsets: Vec<f64>,
    durations: Vec<f64>,
    items: Vec<i64>,
    bytes: Vec<i64>,
    errors: Vec<Option<String>>,
}

impl StageColumns {
    fn of(events: &[ExecutionEvent], rows: &[usize]) -> StageColumns {
        let stages: Vec<(i64, &job_model::StageTiming)> = rows
            .iter()
            .enumerate()
            .flat_map(|(position, &i)| events[i].stages.iter().map(move |s| (position as i64 + 1, s)))
            .collect();
        StageColumns {
            rows: stages.iter().map(|(n, _)| *n).collect(),
            seqs: stages.iter().map(|(_, s)| s.seq).collect(),
            names: stages.iter().map(|(_, s)| s.stage.clone()).collect(),
            statuses: stages.iter().map(|(_, s)| s.status.clone()).collect(),
            started: stages.iter().map(|(_, s)| s.started_at).collect(),
            offsets: stages.iter().map(|(_, s)| s.offset_ms).collect(),
            durations: stages.iter().map(|(_, s)| s.duration_ms).collect(),
            items: stages.iter().map(|(_, s)| s.items_processed).collect(),
            bytes: stages.iter().map(|(_, s)| s.bytes_processed).collect(),
            errors: stages.iter().map(|(_, s)| s.error.clone()).collect(),
        }
    }
}

/// A stage's share of its attempt, in percent. Attempts that report no total
/// (a quarantined job) fall back to the sum of their stages.
fn share_pct(event: &ExecutionEvent, duration_ms: f64) -> f64 {
    let denominator = if event.total_duration_ms > 0.0 {
        event.total_duration_ms
    } else {
        event.stages.iter().map(|s| s.duration_ms).sum()
    };
    if denominator > 0.0 { duration_ms / denominator * 100.0 } else { 0.0 }
}

async fn update_stage_rollups(
    tx: &mut Transaction<'_, Postgres>,
    events: &[&ExecutionEvent],
) -> Result<(), sqlx::Error> {
    let mut deltas: BTreeMap<(DateTime<Utc>, String), StageDelta> = BTreeMap::new();
    for event in events {
        let bucket = bucket_of(event.finished_at);
        for stage in &event.stages {
            let d = deltas.entry((bucket, stage.stage.clone())).or_default();
            d.count += 1;
            d.failures += i64::from(stage.status == "failed");
            d.sum_ms += stage.duration_ms;
            d.min_ms = min_opt(d.min_ms, stage.duration_ms);
            d.max_ms = max_opt(d.max_ms, stage.duration_ms);
            d.sum_share_pct += share_pct(event, stage.duration_ms);
            d.sketch.record_ms(stage.duration_ms);
        }
    }
    if deltas.is_empty() {
        return Ok(());
    }
    let buckets: Vec<DateTime<Utc>> = deltas.keys().map(|(b, _)| *b).collect();
    let stages: Vec<String> = deltas.keys().map(|(_, s)| s.clone()).collect();

    sqlx::query(
        "INSERT INTO metric_stage_rollups (bucket, stage) \
         SELECT * FROM UNNEST($1::timestamptz[], $2::text[]) \
         ON CONFLICT (bucket, stage) DO NOTHING",
    )
    .bind(&buckets)
    .bind(&stages)
    .execute(&mut **tx)
    .await?;
    // COLLATE "C": the same byte order as the BTreeMap, so every transaction
    // locks rows in one order.
    let existing: Vec<(DateTime<Utc>, String, Option<Vec<u8>>)> = sqlx::query_as(
        "SELECT bucket, stage, sketch FROM metric_stage_rollups \
         WHERE (bucket, stage) IN (SELECT * FROM UNNEST($1::timestamptz[], $2::text[])) \
         ORDER BY bucket, stage COLLATE \"C\" FOR UPDATE",
    )
    .bind(&buckets)
    .bind(&stages)
    .fetch_all(&mut **tx)
    .await?;
    for (bucket, stage, sketch) in existing {
        if let Some(d) = deltas.get_mut(&(bucket, stage)) {
            d.sketch.merge_encoded(sketch.as_deref());
        }
    }

    let values: Vec<&StageDelta> = deltas.values().collect();
    sqlx::query(
        "UPDATE metric_stage_rollups r SET \
             count = r.count + d.count, failures = r.failures + d.failures, sum_ms = r.sum_ms + d.sum_ms, \
             min_ms = LEAST(r.min_ms, d.min_ms), max_ms = GREATEST(r.max_ms, d.max_ms), \
             sum_share_pct = r.sum_share_pct + d.sum_share_pct, sketch = d.sketch \
         FROM UNNEST($1::timestamptz[], $2::text[], $3::int8[], $4::int8[], $5::float8[], $6::float8[], \
                     $7::float8[], $8::float8[], $9::bytea[]) \
              AS d(bucket, stage, count, failures, sum_ms, min_ms, max_ms, sum_share_pct, sketch) \
         WHERE r.bucket = d.bucket AND r.stage = d.stage",
    )
    .bind(&buckets)
    .bind(&stages)
    .bind(values.iter().map(|d| d.count).collect::<Vec<_>>())
    .bind(values.iter().map(|d| d.failures).collect::<Vec<_>>())
    .bind(values.iter().map(|d| d.sum_ms).collect::<Vec<_>>())
    .bind(values.iter().map(|d| d.min_ms).collect::<Vec<_>>())
    .bind(values.iter().map(|d| d.max_ms).collect::<Vec<_>>())
    .bind(values.iter().map(|d| d.sum_share_pct).collect::<Vec<_>>())
    .bind(values.iter().map(|d| d.sketch.encode()).collect::<Vec<_>>())
    .execute(&mut **tx)
    .await?;
    Ok(())
}

async fn update_execution_rollups(
    tx: &mut Transaction<'_, Postgres>,
    events: &[&ExecutionEvent],
) -> Result<(), sqlx::Error> {
    let mut deltas: BTreeMap<(DateTime<Utc>, i16, String), ExecutionDelta> = BTreeMap::new();
    for event in events {
        let key = (bucket_of(event.finished_at), event.priority.value(), event.outcome.as_str().to_owned());
        let d = deltas.entry(key).or_default();
        d.count += 1;
        d.sum_total_ms += event.total_duration_ms;
        d.min_total_ms = min_opt(d.min_total_ms, event.total_duration_ms);
        d.max_total_ms = max_opt(d.max_total_ms, event.total_duration_ms);
        d.total_sketch.record_ms(event.total_duration_ms);
        if event.attempt <= 1 {
            d.wait_count += 1;
            d.sum_wait_ms += event.queue_wait_ms;
            d.max_wait_ms = max_opt(d.max_wait_ms, event.queue_wait_ms);
            d.wait_sketch.record_ms(event.queue_wait_ms);
        }
    }
    let buckets: Vec<DateTime<Utc>> = deltas.keys().map(|k| k.0).collect();
    let priorities: Vec<i16> = deltas.keys().map(|k| k.1).collect();
    let outcomes: Vec<String> = deltas.keys().map(|k| k.2.clone()).collect();

    sqlx::query(
        "INSERT INTO metric_execution_rollups (bucket, priority, outcome) \
         SELECT * FROM UNNEST($1::timestamptz[], $2::int2[], $3::text[]) \
         ON CONFLICT (bucket, priority, outcome) DO NOTHING",
    )
    .bind(&buckets)
    .bind(&priorities)
    .bind(&outcomes)
    .execute(&mut **tx)
    .await?;
    type Existing = (DateTime<Utc>, i16, String, Option<Vec<u8>>, Option<Vec<u8>>);
    let existing: Vec<Existing> = sqlx::query_as(
        "SELECT bucket, priority, outcome, total_sketch, wait_sketch FROM metric_execution_rollups \
         WHERE (bucket, priority, outcome) IN (SELECT * FROM UNNEST($1::timestamptz[], $2::int2[], $3::text[])) \
         ORDER BY bucket, priority, outcome COLLATE \"C\" FOR UPDATE",
    )
    .bind(&buckets)
    .bind(&priorities)
    .bind(&outcomes)
    .fetch_all(&mut **tx)
    .await?;
    for (bucket, priority, outcome, total, wait) in existing {
        if let Some(d) = deltas.get_mut(&(bucket, priority, outcome)) {
            d.total_sketch.merge_encoded(total.as_deref());
            d.wait_sketch.merge_encoded(wait.as_deref());
        }
    }

    let values: Vec<&ExecutionDelta> = deltas.values().collect();
    sqlx::query(
        "UPDATE metric_execution_rollups r SET \
             count = r.count + d.count, sum_total_ms = r.sum_total_ms + d.sum_total_ms, \
             min_total_ms = LEAST(r.min_total_ms, d.min_total_ms), max_total_ms = GREATEST(r.max_total_ms, d.max_total_ms), \
             total_sketch = d.total_sketch, wait_count = r.wait_count + d.wait_count, \
             sum_wait_ms = r.sum_wait_ms + d.sum_wait_ms, max_wait_ms = GREATEST(r.max_wait_ms, d.max_wait_ms), \
             wait_sketch = d.wait_sketch \
         FROM UNNEST($1::timestamptz[], $2::int2[], $3::text[], $4::int8[], $5::float8[], $6::float8[], $7::float8[], \
                     $8::bytea[], $9::int8[], $10::float8[], $11::float8[], $12::bytea[]) \
              AS d(bucket, priority, outcome, count, sum_total_ms, min_total_ms, max_total_ms, total_sketch, \
                   wait_count, sum_wait_ms, max_wait_ms, wait_sketch) \
         WHERE r.bucket = d.bucket AND r.priority = d.priority AND r.outcome = d.outcome",
    )
    .bind(&buckets)
    .bind(&priorities)
    .bind(&outcomes)
    .bind(values.iter().map(|d| d.count).collect::<Vec<_>>())
    .bind(values.iter().map(|d| d.sum_total_ms).collect::<Vec<_>>())
    .bind(values.iter().map(|d| d.min_total_ms).collect::<Vec<_>>())
    .bind(values.iter().map(|d| d.max_total_ms).collect::<Vec<_>>())
    .bind(values.iter().map(|d| d.total_sketch.encode()).collect::<Vec<_>>())
    .bind(values.iter().map(|d| d.wait_count).collect::<Vec<_>>())
    .bind(values.iter().map(|d| d.sum_wait_ms).collect::<Vec<_>>())
    .bind(values.iter().map(|d| d.max_wait_ms).collect::<Vec<_>>())
    .bind(values.iter().map(|d| d.wait_sketch.encode()).collect::<Vec<_>>())
    .execute(&mut **tx)
    .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_are_whole_minutes() {
        let at: DateTime<Utc> = "2026-11-29T10:41:59.999Z".parse().unwrap();
        assert_eq!(bucket_of(at), "2026-11-29T10:41:00Z".parse::<DateTime<Utc>>().unwrap());
    }
}
