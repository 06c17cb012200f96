//! The admin operations: each change commits its job status, its
//! `job_events` row, its outbox message (for a retry) and its `admin_audit`
//! row in one transaction. Bulk operations work in batches of
//! `BULK_BATCH_SIZE`, one transaction (and one audit row) per batch.

use std::collections::BTreeSet;
use std::num::NonZeroU32;

use chrono::{DateTime, Utc};
use job_model::{ItemKind, JobMetadata, JobRoute, JobStatus, OutboxMessage, ProcessDocument, Topology};
use job_store::dlq::DlqFilter;
use job_store::dlq::audit::{self, Action, NewEntry};
use job_store::dlq::bulk_runs;
use job_store::dlq::changes::{self, ChangedJob};
use job_store::jobs as jobs_db;
use job_store::{StoreError, StoreResult, outbox};
use serde_json::json;
use service_common::{ApiError, ErrorCode};
use sqlx::{Postgres, Transaction};
use uuid::Uuid;

use crate::metrics::ModeLabels;
use crate::state::AppState;

/// The actor name the retention sweep writes in audit rows and events.
pub const SWEEP_ACTOR: &str = "retention-sweep";

#[derive(Debug, thiserror::Error)]
pub enum OpError {
    #[error("no DLQ item or job {0}")]
    NotFound(Uuid),
    #[error("{kind} {id} is {status}, not in the DLQ")]
    NotInDlq { id: Uuid, kind: &'static str, status: String },
    #[error("{0} is a poison message: there is no job to requeue (fix its producer, then delete it)")]
    PoisonNotRetryable(Uuid),
    #[error("database: {0}")]
    Store(#[from] StoreError),
}

impl From<sqlx::Error> for OpError {
    fn from(e: sqlx::Error) -> OpError {
        OpError::Store(e.into())
    }
}

impl From<OpError> for ApiError {
    fn from(e: OpError) -> ApiError {
        match e {
            OpError::NotFound(_) => ApiError::new(ErrorCode::JobNotFound, e.to_string()),
            OpError::NotInDlq { .. } | OpError::PoisonNotRetryable(_) => {
                ApiError::new(ErrorCode::Conflict, e.to_string())
            }
            OpError::Store(error) => ApiError::store(error),
        }
    }
}

/// What a single retry or delete did.
#[derive(Debug, Clone)]
pub struct SingleOutcome {
    pub id: Uuid,
    pub kind: ItemKind,
    pub from: &'static str,
    pub to: &'static str,
    pub audit_id: i64,
    pub request_id: Uuid,
    /// For a retry: the attempt number the job's next run gets.
    pub next_attempt: Option<i32>,
}

/// How a change came about, in event details and metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Single,
    Bulk,
    Purge,
    Sweep,
}

impl Mode {
    fn as_str(self) -> &'static str {
        match self {
            Mode::Single => "single",
            Mode::Bulk => "bulk",
            Mode::Purge => "purge",
            Mode::Sweep => "sweep",
        }
    }
}

fn event_actor(actor: &str) -> String {
    format!("dlq-admin:{actor}")
}

/// The job's message for its next attempt, as the worker expects it. The
/// replay continues the job's original trace: a `dlq replay` span, child of
/// the submission's context and linked to the admin request that caused it,
/// is the parent of the retried run.
pub fn job_message(topology: &Topology, job: &JobMetadata) -> OutboxMessage {
    let trace = replay_context_headers(job);
    OutboxMessage::for_job(topology, ProcessDocument::from(job), job.attempt + 1, JobRoute::Queue, trace)
}

fn replay_context_headers(job: &JobMetadata) -> std::collections::BTreeMap<String, String> {
    use opentelemetry::trace::{Link, Span as _, SpanKind, TraceContextExt, Tracer as _};
    let admin_request = telemetry::current_context();
    let Some(traceparent) = &job.traceparent else {
        return telemetry::headers_for(&admin_request);
    };
    let original = telemetry::context_from_map(&std::collections::BTreeMap::from([(
        job_model::message::headers::TRACEPARENT.to_owned(),
        traceparent.clone(),
    )]));
    let tracer = opentelemetry::global::tracer("docflow");
    let mut builder = tracer
        .span_builder("dlq replay")
        .with_kind(SpanKind::Internal)
        .with_attributes([opentelemetry::KeyValue::new("docflow.job_id", job.job_id.to_string())]);
    let request_span = admin_request.span().span_context().clone();
    if request_span.is_valid() {
        builder = builder.with_links(vec![Link::with_context(request_span)]);
    }
    let mut span = builder.start_with_context(&tracer, &original);
    let cx = opentelemetry::Context::new().with_remote_span_context(span.span_context().clone());
    let headers = telemetry::headers_for(&cx);
    span.end();
    headers
}

/// Events and outbox messages for jobs a batch requeued.
async fn requeued(
    tx: &mut Transaction<'_, Postgres>,
    topology: &Topology,
    changed: &[ChangedJob],
    actor: &str,
    reason: &str,
    request_id: Uuid,
    mode: Mode,
) -> StoreResult<()> {
    for c in changed {
        let from = c.transition(JobStatus::Queued)?;
        let detail = json!({
            "reason": reason,
            "request_id": request_id,
            "mode": mode.as_str(),
            "next_attempt": c.job.attempt + 1,
            "previous": {
                "retry_count": c.previous_retry_count,
                "error_message": c.previous_error_message,
                "error_stage": c.previous_error_stage,
                "dlq_at": c.previous_dlq_at,
            },
        });
        jobs_db::record_event(tx, c.job.job_id, Some(from), JobStatus::Queued, &event_actor(actor), detail).await?;
        outbox::enqueue(tx, &job_message(topology, &c.job)).await?;
    }
    Ok(())
}

/// Events for jobs a batch deleted.
async fn deleted(
    tx: &mut Transaction<'_, Postgres>,
    changed: &[ChangedJob],
    actor: &str,
    reason: &str,
    request_id: Uuid,
    mode: Mode,
) -> StoreResult<()> {
    for c in changed {
        let from = c.transition(JobStatus::Deleted)?;
        let detail = json!({"reason": reason, "request_id": request_id, "mode": mode.as_str()});
        jobs_db::record_event(tx, c.job.job_id, Some(from), JobStatus::Deleted, &event_actor(actor), detail).await?;
    }
    Ok(())
}

/// `POST /api/dlq/{id}/retry`: DLQ → QUEUED with a fresh retry budget.
pub async fn retry_one(state: &AppState, actor: &str, reason: &str, id: Uuid) -> Result<SingleOutcome, OpError> {
    let request_id = Uuid::now_v7();
    let mut tx = state.pool.begin().await?;
    let status = match changes::lock_job(&mut tx, id).await? {
        Some(status) => status,
        None => {
            let poison = changes::lock_poison(&mut tx, id).await?;
            tx.rollback().await?;
            return Err(if poison.is_some() { OpError::PoisonNotRetryable(id) } else { OpError::NotFound(id) });
        }
    };
    if status.transition(JobStatus::Queued).is_err() {
        tx.rollback().await?;
        return Err(OpError::NotInDlq { id, kind: "job", status: status.to_string() });
    }
    let changed = changes::move_jobs(&mut tx, JobStatus::Queued, &DlqFilter::default(), Some(&[id]), 1).await?;
    let Some(job) = changed.first() else {
        // Locked above, so the row cannot have moved; refuse rather than guess.
        tx.rollback().await?;
        return Err(OpError::Store(StoreError::invariant(format!("job {id} was locked as {status} but not requeued"))));
    };
    requeued(&mut tx, &state.topology, &changed, actor, reason, request_id, Mode::Single).await?;
    let audit_id = audit::record(
        &mut tx,
        &NewEntry {
            actor,
            action: Action::Retry,
            reason,
            request_id,
            target: Some(id.to_string()),
            filter: None,
            matched: 1,
            affected: 1,
            status_before: Some(status.as_str()),
            status_after: Some(JobStatus::Queued.as_str()),
            job_ids: vec![id],
        },
    )
    .await?;
    let next_attempt = job.job.attempt + 1;
    tx.commit().await?;
    state.relay.wake();
    state.metrics.retries.get_or_create(&ModeLabels { mode: "single" }).inc();
    Ok(SingleOutcome {
        id,
        kind: ItemKind::Job,
        from: status.as_str(),
        to: JobStatus::Queued.as_str(),
        audit_id,
        request_id,
        next_attempt: Some(next_attempt),
    })
}

/// `DELETE /api/dlq/{id}`: DLQ → DELETED, for a job or a poison item.
pub async fn delete_one(state: &AppState, actor: &str, reason: &str, id: Uuid) -> Result<SingleOutcome, OpError> {
    let request_id = Uuid::now_v7();
    let mut tx = state.pool.begin().await?;
    let entry = |kind: ItemKind, before: &'static str| NewEntry {
        actor,
        action: Action::Delete,
        reason,
        request_id,
        target: Some(id.to_string()),
        filter: Some(json!({"kind": kind.as_str()})),
        matched: 1,
        affected: 1,
        status_before: Some(before),
        status_after: Some(JobStatus::Deleted.as_str()),
        job_ids: if kind == ItemKind::Job { vec![id] } else { Vec::new() },
    };
    let (kind, from) = match changes::lock_job(&mut tx, id).await? {
        Some(status) => {
            if status.transition(JobStatus::Deleted).is_err() {
                tx.rollback().await?;
                return Err(OpError::NotInDlq { id, kind: "job", status: status.to_string() });
            }
            let changed =
                changes::move_jobs(&mut tx, JobStatus::Deleted, &DlqFilter::default(), Some(&[id]), 1).await?;
            if changed.len() != 1 {
                tx.rollback().await?;
                return Err(OpError::Store(StoreError::invariant(format!(
                    "job {id} was locked as {status} but not deleted"
                ))));
            }
            deleted(&mut tx, &changed, actor, reason, request_id, Mode::Single).await?;
            (ItemKind::Job, status.as_str())
        }
        None => match changes::lock_poison(&mut tx, id).await?.as_deref() {
            None => {
                tx.rollback().await?;
                return Err(OpError::NotFound(id));
            }
            Some("DLQ") => {
                changes::delete_poison(&mut tx, Some(&[id]), None, 1).await?;
                (ItemKind::Poison, "DLQ")
            }
            Some(other) => {
                let status = other.to_owned();
                tx.rollback().await?;
                return Err(OpError::NotInDlq { id, kind: "poison message", status });
            }
        },
    };
    let audit_id = audit::record(&mut tx, &entry(kind, from)).await?;
    tx.commit().await?;
    state.metrics.deleted.get_or_create(&ModeLabels { mode: "single" }).inc();
    Ok(SingleOutcome { id, kind, from, to: JobStatus::Deleted.as_str(), audit_id, request_id, next_attempt: None })
}

/// Which jobs a bulk retry covers.
#[derive(Debug, Clone)]
pub enum Selection {
    Ids(Vec<Uuid>),
    Filter(DlqFilter),
}

impl Selection {
    fn parts(&self) -> (DlqFilter, Option<&[Uuid]>) {
        match self {
            Selection::Ids(ids) => (DlqFilter::default(), Some(ids.as_slice())),
            Selection::Filter(f) => (f.clone(), None),
        }
    }

    pub fn audit_filter(&self) -> serde_json::Value {
        match self {
            Selection::Ids(ids) => json!({"job_ids": ids.len()}),
            Selection::Filter(f) => json!(f),
        }
    }

    /// The audit row's filter for the batches of one kind of item.
    fn audit_filter_for(&self, kind: ItemKind) -> serde_json::Value {
        match self {
            Selection::Filter(f) => json!(DlqFilter { kind: Some(kind), ..f.clone() }),
            ids => ids.audit_filter(),
        }
    }

    fn target(&self) -> Option<String> {
        match self {
            Selection::Filter(DlqFilter { fingerprint: Some(fp), .. }) => Some(fp.clone()),
            _ => None,
        }
    }
}

/// What a bulk run does to each item of its selection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BulkAction {
    /// DLQ -> QUEUED, jobs only (a poison message has no job to requeue).
    Retry,
    /// DLQ -> DELETED, jobs and (for a filter) poison items.
    Delete,
}

impl BulkAction {
    pub fn audit_action(self) -> Action {
        match self {
            BulkAction::Retry => Action::BulkRetry,
            BulkAction::Delete => Action::BulkDelete,
        }
    }

    fn target_status(self) -> JobStatus {
        match self {
            BulkAction::Retry => JobStatus::Queued,
            BulkAction::Delete => JobStatus::Deleted,
        }
    }

    /// The verb on a button ("Retry", "Delete").
    pub fn verb(self) -> &'static str {
        match self {
            BulkAction::Retry => "Retry",
            BulkAction::Delete => "Delete",
        }
    }

    /// The verb a person reads ("retried", "deleted").
    pub fn past_tense(self) -> &'static str {
        match self {
            BulkAction::Retry => "retried",
            BulkAction::Delete => "deleted",
        }
    }
}

#[derive(Debug, Clone)]
pub struct BulkRetryOutcome {
    pub request_id: Uuid,
    /// Jobs moved.
    pub retried: u64,
    /// Poison items deleted (a bulk delete by filter).
    pub poison: u64,
    pub batches: u32,
    /// Stopped at the request's (or the service's) maximum; more may match.
    pub limit_reached: bool,
    /// For a list of ids: those not requeued, with their status (None: no such job).
    pub not_retried: Vec<(Uuid, Option<String>)>,
}

/// `POST /api/dlq/retry`: requeues the selection in batches, paced by the
/// replay limiter. Safe to run from several processes at once: each batch
/// takes only rows no one else holds, so every job is requeued once.
pub async fn bulk_retry(
    state: &AppState,
    actor: &str,
    reason: &str,
    selection: &Selection,
    max_jobs: u32,
) -> StoreResult<BulkRetryOutcome> {
    bulk_apply(state, BulkAction::Retry, actor, reason, selection, max_jobs, None).await
}

/// Applies `action` to the selection in batches of BULK_BATCH_SIZE, each
/// its own transaction with its events, outbox messages and audit row.
/// With `run` (a row of `dlq_bulk_runs` already started), each batch also
/// advances that row in the same transaction, and the run's id is the
/// audit rows' request id. Retries are paced by the replay limiter; deletes
/// publish nothing and are not.
pub async fn bulk_apply(
    state: &AppState,
    action: BulkAction,
    actor: &str,
    reason: &str,
    selection: &Selection,
    max_jobs: u32,
    run: Option<Uuid>,
) -> StoreResult<BulkRetryOutcome> {
    let request_id = run.unwrap_or_else(Uuid::now_v7);
    let (filter, ids) = selection.parts();
    let to = action.target_status();
    let mut remaining = i64::from(max_jobs);
    let mut outcome = BulkRetryOutcome {
        request_id,
        retried: 0,
        poison: 0,
        batches: 0,
        limit_reached: false,
        not_retried: Vec::new(),
    };
    let mut moved_ids = BTreeSet::new();
    let entry = |n: usize, kind: ItemKind, job_ids: Vec<Uuid>| NewEntry {
        actor,
        action: action.audit_action(),
        reason,
        request_id,
        target: selection.target(),
        filter: Some(selection.audit_filter_for(kind)),
        matched: n as i32,
        affected: n as i32,
        status_before: Some(JobStatus::Dlq.as_str()),
        status_after: Some(to.as_str()),
        job_ids,
    };
    // Jobs first, then (deleting by filter) the poison items it matches.
    let mut poison_phase = false;
    loop {
        if remaining <= 0 {
            outcome.limit_reached = true;
            break;
        }
        let n = remaining.min(i64::from(state.bulk.batch_size));
        if poison_phase {
            let mut tx = state.pool.begin().await?;
            let removed = changes::delete_poison_matching(&mut tx, &filter, n).await?;
            if removed.is_empty() {
                tx.rollback().await?;
                break;
            }
            audit::record(&mut tx, &entry(removed.len(), ItemKind::Poison, Vec::new())).await?;
            if let Some(run) = run {
                bulk_runs::advance(&mut tx, run, removed.len() as i64).await?;
            }
            tx.commit().await?;
            remaining -= removed.len() as i64;
            outcome.poison += removed.len() as u64;
            outcome.batches += 1;
            continue;
        }
        if action == BulkAction::Retry
            && let Some(limiter) = &state.replay_limiter
        {
            // n never exceeds the burst (the batch size), so this only waits.
            let _ = limiter.until_n_ready(NonZeroU32::new(n as u32).expect("n >= 1")).await;
        }
        let mut tx = state.pool.begin().await?;
        let changed = changes::move_jobs(&mut tx, to, &filter, ids, n).await?;
        if changed.is_empty() {
            tx.rollback().await?;
            let poison_may_match = action == BulkAction::Delete && ids.is_none() && filter.kind != Some(ItemKind::Job);
            if poison_may_match {
                poison_phase = true;
                continue;
            }
            break;
        }
        match action {
            BulkAction::Retry => {
                requeued(&mut tx, &state.topology, &changed, actor, reason, request_id, Mode::Bulk).await?
            }
            BulkAction::Delete => deleted(&mut tx, &changed, actor, reason, request_id, Mode::Bulk).await?,
        }
        let job_ids: Vec<Uuid> = changed.iter().map(|c| c.job.job_id).collect();
        audit::record(&mut tx, &entry(changed.len(), ItemKind::Job, job_ids.clone())).await?;
        if let Some(run) = run {
            bulk_runs::advance(&mut tx, run, changed.len() as i64).await?;
        }
        tx.commit().await?;
        let mode = ModeLabels { mode: "bulk" };
        match action {
            BulkAction::Retry => {
                state.relay.wake();
                state.metrics.retries.get_or_create(&mode).inc_by(changed.len() as u64);
            }
            BulkAction::Delete => {
                state.metrics.deleted.get_or_create(&mode).inc_by(changed.len() as u64);
            }
        }
        remaining -= changed.len() as i64;
        outcome.retried += changed.len() as u64;
        outcome.batches += 1;
        moved_ids.extend(job_ids);
    }
    if outcome.batches == 0 {
        // Nothing matched: the request is still on record.
        let mut tx = state.pool.begin().await?;
        audit::record(&mut tx, &entry(0, ItemKind::Job, Vec::new())).await?;
        tx.commit().await?;
    }
    if outcome.poison > 0 {
        state.metrics.deleted.get_or_create(&ModeLabels { mode: "bulk" }).inc_by(outcome.poison);
    }
    if let Selection::Ids(ids) = selection {
        let missing: Vec<Uuid> = ids.iter().filter(|id| !moved_ids.contains(*id)).copied().collect();
        if !missing.is_empty() {
            let statuses = jobs_db::statuses(&state.pool, &missing).await?;
            outcome.not_retried = missing
                .into_iter()
                .map(|id| (id, statuses.iter().find(|(j, _)| *j == id).map(|(_, s)| s.clone())))
                .collect();
        }
    }
    Ok(outcome)
}

/// What a bulk delete would take now: jobs and poison items.
pub async fn bulk_delete_preview(state: &AppState, selection: &Selection, max_jobs: u32) -> StoreResult<(i64, i64)> {
    let (filter, ids) = selection.parts();
    let (jobs, _) = changes::count_jobs(&state.pool, JobStatus::Dlq, &filter, ids, i64::from(max_jobs)).await?;
    let poison = if ids.is_none() && filter.kind != Some(ItemKind::Job) {
        changes::count_poison_matching(&state.pool, &filter).await?
    } else {
        0
    };
    Ok((jobs, poison))
}

/// What a dry-run bulk retry would take now: how many, and the first few.
pub async fn bulk_retry_preview(
    state: &AppState,
    selection: &Selection,
    max_jobs: u32,
) -> StoreResult<(i64, Vec<Uuid>)> {
    let (filter, ids) = selection.parts();
    changes::count_jobs(&state.pool, JobStatus::Dlq, &filter, ids, i64::from(max_jobs)).await
}

#[derive(Debug, Clone)]
pub struct PurgeOutcome {
    pub request_id: Uuid,
    pub cutoff: DateTime<Utc>,
    pub jobs: u64,
    pub poison: u64,
}

/// Deletes every DLQ item that entered the DLQ before `now - older_than_days`
/// (Postgres's clock), in batches; jobs become DELETED (row and history
/// stay), poison items likewise. `dry_run` only counts.
pub async fn purge(
    state: &AppState,
    actor: &str,
    reason: &str,
    older_than_days: u32,
    mode: Mode,
    dry_run: bool,
) -> StoreResult<PurgeOutcome> {
    let cutoff = job_store::dlq::db_now_minus_days(&state.pool, older_than_days).await?;
    let request_id = Uuid::now_v7();
    let filter = DlqFilter { until: Some(cutoff), ..DlqFilter::default() };
    let mut outcome = PurgeOutcome { request_id, cutoff, jobs: 0, poison: 0 };
    if dry_run {
        outcome.jobs = changes::count_jobs(&state.pool, JobStatus::Dlq, &filter, None, i64::MAX).await?.0 as u64;
        outcome.poison = changes::count_poison_before(&state.pool, cutoff).await? as u64;
        return Ok(outcome);
    }
    let batch = i64::from(state.bulk.batch_size);
    let audit_filter = json!({"older_than_days": older_than_days, "cutoff": cutoff});
    let entry = |kind: ItemKind, n: usize, job_ids: Vec<Uuid>| NewEntry {
        actor,
        action: Action::Purge,
        reason,
        request_id,
        target: None,
        filter: Some(json!({"kind": kind.as_str(), "older_than_days": older_than_days, "cutoff": cutoff})),
        matched: n as i32,
        affected: n as i32,
        status_before: Some(JobStatus::Dlq.as_str()),
        status_after: Some(JobStatus::Deleted.as_str()),
        job_ids,
    };
    loop {
        let mut tx = state.pool.begin().await?;
        let changed = changes::move_jobs(&mut tx, JobStatus::Deleted, &filter, None, batch).await?;
        if changed.is_empty() {
            tx.rollback().await?;
            break;
        }
        deleted(&mut tx, &changed, actor, reason, request_id, mode).await?;
        audit::record(&mut tx, &entry(ItemKind::Job, changed.len(), changed.iter().map(|c| c.job.job_id).collect()))
            .await?;
        tx.commit().await?;
        outcome.jobs += changed.len() as u64;
    }
    loop {
        let mut tx = state.pool.begin().await?;
        let removed = changes::delete_poison(&mut tx, None, Some(cutoff), batch).await?;
        if removed.is_empty() {
            tx.rollback().await?;
            break;
        }
        let mut e = entry(ItemKind::Poison, removed.len(), Vec::new());
        e.target = (removed.len() == 1).then(|| removed[0].to_string());
        audit::record(&mut tx, &e).await?;
        tx.commit().await?;
        outcome.poison += removed.len() as u64;
    }
    let total = outcome.jobs + outcome.poison;
    if total == 0 && mode != Mode::Sweep {
        // An admin's purge is on record even when it found nothing; an
        // idle sweep is not (it would write a row every interval).
        let mut tx = state.pool.begin().await?;
        let mut e = entry(ItemKind::Job, 0, Vec::new());
        e.filter = Some(audit_filter);
        audit::record(&mut tx, &e).await?;
        tx.commit().await?;
    }
    state.metrics.deleted.get_or_create(&ModeLabels { mode: mode.as_str() }).inc_by(total);
    Ok(outcome)
}
