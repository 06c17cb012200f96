//! Recording how attempts ended: many attempts' outcomes in one statement,
//! so that a worker finishing jobs faster than Postgres commits them pays
//! one round trip and one commit (one WAL flush) per group, not a
//! transaction of seven statements per job (BENCHMARKS.md, lever 2).

use std::time::Duration;

use chrono::{DateTime, NaiveDate, Utc};
use job_model::{AttemptOutcome, AttemptOutputs, JobStatus, OutboxMessage, StageTiming};
use sqlx::PgExecutor;
use uuid::Uuid;

use crate::error::{StoreError, StoreResult};

/// How an attempt ended, with everything to record about it.
#[derive(Debug, Clone)]
pub struct AttemptRecord {
    pub job_id: Uuid,
    pub attempt: i32,
    pub outcome: AttemptOutcome,
    pub error_message: Option<String>,
    pub error_stage: Option<String>,
    pub stages: Vec<StageTiming>,
    /// Retry, dead-letter and execution-event messages, published through
    /// the outbox so that they exist if and only if this record commits.
    pub messages: Vec<OutboxMessage>,
    /// The result row and tickets the stages produced.
    pub outputs: AttemptOutputs,
    pub detail: serde_json::Value,
}

/// An attempt recorded: the ids of the outbox rows it wrote, in the order
/// of its `messages`, for a writer that publishes them itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recorded {
    pub outbox_ids: Vec<i64>,
}

/// Records one attempt's end, its messages left to the relays' polls;
/// whether this worker still held the attempt. See [`record_attempts`].
pub async fn record_attempt(db: impl PgExecutor<'_>, worker: &str, record: &AttemptRecord) -> StoreResult<bool> {
    Ok(record_attempts(db, worker, &[record], None).await?[0].is_some())
}

/// Records the end of each attempt in `records`, all in one statement (so
/// one transaction): for each, its job's status, an event, its stage
/// timings, the stages' outputs (result row, tickets) and its outbox
/// messages. An attempt whose job this worker no longer holds for that
/// attempt (its lease was lost, the job rescued and claimed again) writes
/// nothing and gets `None`; the others are recorded all the same. The
/// answer is in the order of `records`. With a `claim`, the outbox rows are
/// handed over: relays keep off them that long, while the caller publishes
/// them (`outbox::settle_handed`).
pub async fn record_attempts(
    db: impl PgExecutor<'_>,
    worker: &str,
    records: &[&AttemptRecord],
    claim: Option<Duration>,
) -> StoreResult<Vec<Option<Recorded>>> {
    if records.is_empty() {
        return Ok(Vec::new());
    }
    let c = Columns::of(records)?;
    // Every write after the lease-guarded UPDATE keeps only the rows of the
    // attempts it recorded, matched by (job, attempt): a stale attempt of a
    // job that is also in the group under its next attempt writes nothing.
    let recorded = sqlx::query!(
        r#"WITH attempt AS (
               SELECT * FROM UNNEST($2::uuid[], $3::int4[], $4::text[], $5::text[], $6::text[], $7::jsonb[])
                   AS a(job_id, attempt, to_status, error_message, error_stage, detail)
           ), recorded AS (
               UPDATE jobs j SET status = a.to_status, error_message = a.error_message, error_stage = a.error_stage,
                   retry_count = j.retry_count + CASE WHEN a.to_status = 'RETRYING' THEN 1 ELSE 0 END,
                   lease_owner = NULL, lease_expires_at = NULL, updated_at = now(),
                   completed_at = CASE WHEN a.to_status IN ('COMPLETED', 'FAILED') THEN now() ELSE j.completed_at END,
                   dlq_at = CASE WHEN a.to_status = 'DLQ' THEN now() ELSE j.dlq_at END
               FROM attempt a
               WHERE j.job_id = a.job_id AND j.lease_owner = $1 AND j.status = 'PROCESSING' AND j.attempt = a.attempt
               RETURNING j.job_id, j.attempt, a.to_status, a.detail
           ), event AS (
               INSERT INTO job_events (job_id, from_status, to_status, actor, detail)
               SELECT job_id, 'PROCESSING', to_status, $1, detail FROM recorded
           ), stage AS (
               -- One row per attempt, its stages an array in pipeline order.
               INSERT INTO job_attempts (job_id, attempt, stages)
               SELECT s.job_id, s.attempt,
                   array_agg(ROW(s.seq, s.stage, s.status, s.started_at, s.offset_ms, s.duration_ms,
                                 s.items_processed, s.bytes_processed, s.error)::stage_timing ORDER BY s.seq)
               FROM UNNEST($8::uuid[], $9::int4[], $10::int2[], $11::text[], $12::text[],
                       $13::timestamptz[], $14::float8[], $15::float8[], $16::int8[], $17::int8[], $18::text[])
                   AS s(job_id, attempt, seq, stage, status, started_at, offset_ms, duration_ms, items_processed,
                        bytes_processed, error)
               WHERE (s.job_id, s.attempt) IN (SELECT job_id, attempt FROM recorded)
               GROUP BY s.job_id, s.attempt
               ON CONFLICT (job_id, attempt) DO NOTHING
           ), result AS (
               -- The result replaces an earlier attempt's, never a later one's.
               INSERT INTO document_results (job_id, attempt, document_id, document_type,
                   classification_confidence, mime_type, sha256, text_sha256, page_count, needs_ocr, supplier,
                   supplier_key, invoice_number, invoice_key, issue_date, due_date, total_cents, currency, findings,
                   result_path, result)
               SELECT r.* FROM UNNEST($19::uuid[], $20::int4[], $21::text[], $22::text[], $23::float8[],
                       $24::text[], $25::text[], $26::text[], $27::int4[], $28::bool[], $29::text[], $30::text[],
                       $31::text[], $32::text[], $33::date[], $34::date[], $35::int8[], $36::text[], $37::int4[],
                       $38::text[], $39::jsonb[])
                   AS r(job_id, attempt, document_id, document_type, classification_confidence, mime_type, sha256,
                        text_sha256, page_count, needs_ocr, supplier, supplier_key, invoice_number, invoice_key,
                        issue_date, due_date, total_cents, currency, findings, result_path, result)
               WHERE (r.job_id, r.attempt) IN (SELECT job_id, attempt FROM recorded)
               ON CONFLICT (job_id) DO UPDATE SET
                   document_id = EXCLUDED.document_id, attempt = EXCLUDED.attempt,
                   document_type = EXCLUDED.document_type,
                   classification_confidence = EXCLUDED.classification_confidence,
                   mime_type = EXCLUDED.mime_type, sha256 = EXCLUDED.sha256, text_sha256 = EXCLUDED.text_sha256,
                   page_count = EXCLUDED.page_count, needs_ocr = EXCLUDED.needs_ocr, supplier = EXCLUDED.supplier,
                   supplier_key = EXCLUDED.supplier_key, invoice_number = EXCLUDED.invoice_number,
                   invoice_key = EXCLUDED.invoice_key, issue_date = EXCLUDED.issue_date,
                   due_date = EXCLUDED.due_date, total_cents = EXCLUDED.total_cents, currency = EXCLUDED.currency,
                   findings = EXCLUDED.findings, result_path = EXCLUDED.result_path, result = EXCLUDED.result,
                   updated_at = now()
               WHERE document_results.attempt <= EXCLUDED.attempt
           ), ticket AS (
               -- Once per (job, rule): a retried job finds its tickets in place.
               INSERT INTO tickets (job_id, attempt, rule, severity, message)
               SELECT t.* FROM UNNEST($40::uuid[], $41::int4[], $42::text[], $43::text[], $44::text[])
                   AS t(job_id, attempt, rule, severity, message)
               WHERE (t.job_id, t.attempt) IN (SELECT job_id, attempt FROM recorded)
               ON CONFLICT (job_id, rule) DO NOTHING
           ), message AS (
               -- Ids follow the order of the rows inserted, which is the
               -- group's order of messages: the caller maps them back.
               INSERT INTO outbox (exchange, routing_key, payload, headers, expiration_ms, not_before)
               SELECT m.exchange, m.routing_key, m.payload, m.headers, m.expiration_ms,
                   now() + make_interval(secs => $52::float8)
               FROM UNNEST($45::uuid[], $46::int4[], $47::text[], $48::text[], $49::bytea[], $50::jsonb[],
                       $51::int8[]) WITH ORDINALITY
                   AS m(job_id, attempt, exchange, routing_key, payload, headers, expiration_ms, n)
               WHERE (m.job_id, m.attempt) IN (SELECT job_id, attempt FROM recorded)
               ORDER BY m.n
               RETURNING id
           )
           SELECT job_id AS "job_id!", attempt AS "attempt!",
               ARRAY(SELECT id FROM message ORDER BY id) AS "outbox_ids!"
           FROM recorded"#,
        worker,
        &c.job_ids,
        &c.attempts,
        &c.to_statuses,
        &c.error_messages as _,
        &c.error_stages as _,
        &c.details,
        &c.stages.job_ids,
        &c.stages.attempts,
        &c.stages.seqs,
        &c.stages.names,
        &c.stages.statuses,
        &c.stages.started_at,
        &c.stages.offsets_ms,
        &c.stages.durations_ms,
        &c.stages.items,
        &c.stages.bytes,
        &c.stages.errors as _,
        &c.results.job_ids,
        &c.results.attempts,
        &c.results.document_ids,
        &c.results.document_types,
        &c.results.confidences,
        &c.results.mime_types,
        &c.results.sha256s,
        &c.results.text_sha256s,
        &c.results.page_counts,
        &c.results.needs_ocr,
        &c.results.suppliers as _,
        &c.results.supplier_keys as _,
        &c.results.invoice_numbers as _,
        &c.results.invoice_keys as _,
        &c.results.issue_dates as _,
        &c.results.due_dates as _,
        &c.results.total_cents as _,
        &c.results.currencies as _,
        &c.results.findings,
        &c.results.result_paths,
        &c.results.documents,
        &c.tickets.job_ids,
        &c.tickets.attempts,
        &c.tickets.rules,
        &c.tickets.severities,
        &c.tickets.messages,
        &c.messages.job_ids,
        &c.messages.attempts,
        &c.messages.exchanges,
        &c.messages.routing_keys,
        &c.messages.payloads,
        &c.messages.headers,
        &c.messages.expirations_ms as _,
        claim.map(|c| c.as_secs_f64()),
    )
    .fetch_all(db)
    .await?;
    let mismatch = || StoreError::invariant("the outbox ids returned do not match the messages recorded");
    let mut ids = recorded.first().map(|row| row.outbox_ids.clone()).unwrap_or_default().into_iter();
    let mut answer = Vec::with_capacity(records.len());
    for r in records {
        if !recorded.iter().any(|row| row.job_id == r.job_id && row.attempt == r.attempt) {
            answer.push(None);
            continue;
        }
        let outbox_ids: Vec<i64> = ids.by_ref().take(r.messages.len()).collect();
        if outbox_ids.len() != r.messages.len() {
            return Err(mismatch());
        }
        answer.push(Some(Recorded { outbox_ids }));
    }
    if ids.next().is_some() {
        return Err(mismatch());
    }
    Ok(answer)
}

/// The group as one array per column, the shape `UNNEST` takes: one bind
/// per column however many attempts, stages, tickets and messages.
#[derive(Default)]
struct Columns {
    job_ids: Vec<Uuid>,
    attempts: Vec<i32>,
    to_statuses: Vec<String>,
    error_messages: Vec<Option<String>>,
    error_stages: Vec<Option<String>>,
    details: Vec<serde_json::Value>,
    stages: StageColumns,
    results: ResultColumns,
    tickets: TicketColumns,
    messages: MessageColumns,
}

#[derive(Default)]
struct StageColumns {
    job_ids: Vec<Uuid>,
    attempts: Vec<i32>,
    seqs: Vec<i16>,
    names: Vec<String>,
    statuses: Vec<String>,
    started_at: Vec<DateTime<Utc>>,
    offsets_ms: Vec<f64>,
    durations_ms: Vec<f64>,
    items: Vec<i64>,
    bytes: Vec<i64>,
    errors: Vec<Option<String>>,
}

#[derive(Default)]
struct ResultColumns {
    job_ids: Vec<Uuid>,
    attempts: Vec<i32>,
    document_ids: Vec<String>,
    document_types: Vec<String>,
    confidences: Vec<f64>,
    mime_types: Vec<String>,
    sha256s: Vec<String>,
    text_sha256s: Vec<String>,
    page_counts: Vec<i32>,
    needs_ocr: Vec<bool>,
    suppliers: Vec<Option<String>>,
    supplier_keys: Vec<Option<String>>,
    invoice_numbers: Vec<Option<String>>,
    invoice_keys: Vec<Option<String>>,
    issue_dates: Vec<Option<NaiveDate>>,
    due_dates: Vec<Option<NaiveDate>>,
    total_cents: Vec<Option<i64>>,
    currencies: Vec<Option<String>>,
    findings: Vec<i32>,
    result_paths: Vec<String>,
    documents: Vec<serde_json::Value>,
}

#[derive(Default)]
struct TicketColumns {
    job_ids: Vec<Uuid>,
    attempts: Vec<i32>,
    rules: Vec<String>,
    severities: Vec<String>,
    messages: Vec<String>,
}

#[derive(Default)]
struct MessageColumns {
    job_ids: Vec<Uuid>,
    attempts: Vec<i32>,
    exchanges: Vec<String>,
    routing_keys: Vec<String>,
    payloads: Vec<Vec<u8>>,
    headers: Vec<serde_json::Value>,
    expirations_ms: Vec<Option<i64>>,
}

impl Columns {
    fn of(records: &[&AttemptRecord]) -> StoreResult<Columns> {
        let mut c = Columns::default();
        for record in records {
            let to = JobStatus::Processing
                .transition(record.outcome.status())
                .map_err(|e| StoreError::invariant(format!("job {}: {e}", record.job_id)))?;
            let (job_id, attempt) = (record.job_id, record.attempt);
            c.job_ids.push(job_id);
            c.attempts.push(attempt);
            c.to_statuses.push(to.as_str().to_owned());
            c.error_messages.push(record.error_message.clone());
            c.error_stages.push(record.error_stage.clone());
            c.details.push(record.detail.clone());
            for t in &record.stages {
                let s = &mut c.stages;
                s.job_ids.push(job_id);
                s.attempts.push(attempt);
                s.seqs.push(t.seq);
                s.names.push(t.stage.clone());
                s.statuses.push(t.status.clone());
                s.started_at.push(t.started_at);
                s.offsets_ms.push(t.offset_ms);
                s.durations_ms.push(t.duration_ms);
                s.items.push(t.items_processed);
                s.bytes.push(t.bytes_processed);
                s.errors.push(t.error.clone());
            }
            if let Some(r) = &record.outputs.result {
                let o = &mut c.results;
                o.job_ids.push(job_id);
                o.attempts.push(attempt);
                o.document_ids.push(r.document_id.clone());
                o.document_types.push(r.document_type.clone());
                o.confidences.push(r.classification_confidence);
                o.mime_types.push(r.mime_type.clone());
                o.sha256s.push(r.sha256.clone());
                o.text_sha256s.push(r.text_sha256.clone());
                o.page_counts.push(r.page_count);
                o.needs_ocr.push(r.needs_ocr);
                o.suppliers.push(r.supplier.clone());
                o.supplier_keys.push(r.supplier_key.clone());
                o.invoice_numbers.push(r.invoice_number.clone());
                o.invoice_keys.push(r.invoice_key.clone());
                o.issue_dates.push(r.issue_date);
                o.due_dates.push(r.due_date);
                o.total_cents.push(r.total_cents);
                o.currencies.push(r.currency.clone());
                o.findings.push(r.findings);
                o.result_paths.push(r.result_path.clone());
                o.documents.push(r.result.clone());
            }
            for t in &record.outputs.tickets {
                let k = &mut c.tickets;
                k.job_ids.push(job_id);
                k.attempts.push(attempt);
                k.rules.push(t.rule.clone());
                k.severities.push(t.severity.clone());
                k.messages.push(t.message.clone());
            }
            for m in &record.messages {
                let o = &mut c.messages;
                o.job_ids.push(job_id);
                o.attempts.push(attempt);
                o.exchanges.push(m.exchange.clone());
                o.routing_keys.push(m.routing_key.clone());
                o.payloads.push(m.payload.clone());
                o.headers.push(serde_json::to_value(&m.headers).expect("a string map serialises"));
                o.expirations_ms.push(m.expiration.map(|d| d.as_millis() as i64));
            }
        }
        Ok(c)
    }
}
