//! What a message on `jobs.dlq` is, and what importing it does.
//!
//! Postgres is the DLQ's source of truth; dlq-admin consumes every message
//! from `jobs.dlq` and acks it only once this module has recorded it:
//!
//! - a job's own dead letter (header `x-job-id`, or a body that decodes to a
//!   [`JobEnvelope`]) whose row is DLQ is noted as seen (`dlq_job_messages`);
//!   the row already is the DLQ item;
//! - the same for a job whose row has moved on (already retried or deleted by
//!   an admin) is stale and dropped, unless the broker dead-lettered it by
//!   itself (`x-death`, e.g. the quorum delivery limit) or an outbox relay
//!   parked it as unroutable: that job has lost its message, which is kept
//!   as a poison item an admin can see (and a job still waiting for it is
//!   parked in the DLQ, where an admin can retry it);
//! - anything else (reasons such as `not_json`, `unsupported_schema_version`,
//!   `unknown_job`, bodies no job comes of) becomes a poison item
//!   (`dlq_poison`) with its reason, headers and raw payload.

use broker::lapin::message::Delivery;
use broker::lapin::types::{AMQPValue, FieldTable};
use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};
use sqlx::PgPool;
use uuid::Uuid;

use job_model::message::headers;
use job_model::{JobEnvelope, JobMessage, JobStatus};
use job_store::StoreResult;
use job_store::dlq::import::{self as store, NewPoison};

/// Reasons a worker gives for a message no job can come of: the message is
/// poison whatever else it carries.
const POISON_REASONS: [&str; 5] =
    ["not_json", "no_schema_version", "unsupported_schema_version", "malformed", "unknown_job"];

/// Headers the broker changes on each redelivery; left out of what is
/// stored and hashed, so that a redelivered message is recognised.
const VOLATILE_HEADERS: [&str; 1] = ["x-delivery-count"];

/// A message taken from `jobs.dlq`.
#[derive(Debug, Clone, PartialEq)]
pub struct DeadLetter {
    pub payload: Vec<u8>,
    pub headers: Map<String, Value>,
    pub content_type: Option<String>,
    pub redelivered: bool,
}

/// What an import did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ImportOutcome {
    /// A DLQ job's own message: noted.
    Seen,
    /// Stored as a new poison item.
    Poison(Uuid),
    /// A redelivery of a poison message stored before.
    Duplicate(Uuid),
    /// A job message whose job has left the DLQ already.
    Stale,
    /// The broker dead-lettered the message of a job still waiting for it:
    /// the job itself is now in the DLQ, retryable.
    Parked,
}

impl ImportOutcome {
    pub fn label(self) -> &'static str {
        match self {
            ImportOutcome::Seen => "seen",
            ImportOutcome::Poison(_) => "poison",
            ImportOutcome::Duplicate(_) => "duplicate",
            ImportOutcome::Stale => "stale",
            ImportOutcome::Parked => "parked",
        }
    }
}

impl DeadLetter {
    pub fn from_delivery(delivery: &Delivery) -> DeadLetter {
        let mut map = Map::new();
        if let Some(table) = delivery.properties.headers().as_ref() {
            map = table_to_json(table);
        }
        for h in VOLATILE_HEADERS {
            map.remove(h);
        }
        DeadLetter {
            payload: delivery.data.clone(),
            headers: map,
            content_type: delivery.properties.content_type().as_ref().map(|c| c.as_str().to_owned()),
            redelivered: delivery.redelivered,
        }
    }

    /// The job id the message's headers name, if any (for its span).
    pub fn job_id_header(&self) -> Option<&str> {
        self.header(headers::JOB_ID)
    }

    fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(Value::as_str).map(str::trim).filter(|s| !s.is_empty())
    }

    /// SHA-256 over the body and the (stable) headers.
    pub fn content_hash(&self) -> Vec<u8> {
        let mut h = Sha256::new();
        h.update((self.payload.len() as u64).to_be_bytes());
        h.update(&self.payload);
        h.update(Value::Object(self.headers.clone()).to_string().as_bytes());
        h.finalize().to_vec()
    }

    /// Why and from where the broker dead-lettered this message, when it did
    /// (the `x-death` header RabbitMQ adds, see "Dead Letter Exchanges").
    pub fn broker_death(&self) -> Option<(String, Option<String>)> {
        let first = self.headers.get("x-death").and_then(Value::as_array).and_then(|a| a.first());
        let reason = self
            .header("x-first-death-reason")
            .map(str::to_owned)
            .or_else(|| first.and_then(|d| d.get("reason")).and_then(Value::as_str).map(str::to_owned))?;
        let queue = self
            .header("x-first-death-queue")
            .map(str::to_owned)
            .or_else(|| first.and_then(|d| d.get("queue")).and_then(Value::as_str).map(str::to_owned));
        Some((reason, queue))
    }

    /// Why and from where a message was lost on its way to a consumer, when
    /// it was: dead-lettered by the broker itself, or parked by an outbox
    /// relay after every publish of it came back unroutable. A worker's own
    /// dead letter (`x-dlq-reason` of its choosing) is not lost: the worker
    /// recorded the job's move with it.
    pub fn lost_in_transit(&self) -> Option<(String, Option<String>)> {
        match self.header(headers::DLQ_REASON) {
            Some(reason) if reason == broker::relay::parked::REASON => {
                let to = self.header(broker::relay::parked::ORIGINAL_EXCHANGE).map(str::to_owned);
                Some((reason.to_owned(), to))
            }
            Some(_) => None,
            None => self.broker_death(),
        }
    }

    fn poison(
        &self,
        reason: &str,
        error: Option<String>,
        job_id: Option<Uuid>,
        document_id: Option<String>,
    ) -> NewPoison {
        let source_queue = self
            .broker_death()
            .and_then(|(_, q)| q)
            .or_else(|| self.header("x-original-routing-key").map(str::to_owned));
        // Postgres text and jsonb refuse NUL characters, which a poison
        // message may well carry; the payload itself is stored as bytes.
        NewPoison {
            reason: pg_text(reason),
            error_message: error.or_else(|| self.header(headers::ERROR).map(str::to_owned)).map(|e| pg_text(&e)),
            job_id,
            document_id: document_id.map(|d| pg_text(&d)),
            source_queue: source_queue.map(|q| pg_text(&q)),
            payload: self.payload.clone(),
            headers: pg_json(Value::Object(self.headers.clone())),
            content_type: self.content_type.as_deref().map(pg_text),
            content_hash: self.content_hash(),
        }
    }
}

/// What a message is, before Postgres is asked about its job.
#[derive(Debug, Clone, PartialEq)]
pub enum Plan {
    /// It names a job; what happens depends on the job's row.
    Job { job_id: Uuid, attempt: Option<i32>, document_id: Option<String>, dlq_reason: Option<String> },
    /// Poison whatever Postgres holds.
    Poison(NewPoison),
}

pub fn plan(letter: &DeadLetter) -> Plan {
    let dlq_reason = letter.header(headers::DLQ_REASON).map(str::to_owned);
    let decoded = JobEnvelope::decode(&letter.payload);
    let body_job = decoded.as_ref().ok().map(|e| match &e.body {
        JobMessage::ProcessDocument(p) => (p.job_id, p.document.document_id.clone()),
    });
    let header_job = letter.header(headers::JOB_ID).and_then(|s| Uuid::parse_str(s).ok());
    let job_id = header_job.or(body_job.as_ref().map(|(id, _)| *id));
    let document_id = body_job.map(|(_, d)| d);

    if let Some(reason) = dlq_reason.as_deref().filter(|r| POISON_REASONS.contains(r)) {
        return Plan::Poison(letter.poison(reason, None, job_id, document_id));
    }
    match (job_id, &decoded) {
        (Some(job_id), _) => Plan::Job {
            job_id,
            attempt: letter.header(headers::ATTEMPT).and_then(|a| a.parse().ok()),
            document_id,
            dlq_reason,
        },
        (None, Err(why)) => {
            let reason = letter.broker_death().map(|(r, _)| r).or(dlq_reason).unwrap_or_else(|| why.code().to_owned());
            Plan::Poison(letter.poison(&reason, Some(why.to_string()), None, None))
        }
        (None, Ok(_)) => unreachable!("a decoded envelope names its job"),
    }
}

/// Records one message; the caller acks it once this returns Ok.
///
/// Postgres being unreachable is an error for the caller to wait out. Any
/// other failure means this message cannot be stored as it is; it is then
/// stored as a bare poison item (reason `unimportable`, its bytes and the
/// error), so one odd message never blocks the queue behind it.
pub async fn import(pool: &PgPool, letter: &DeadLetter) -> StoreResult<ImportOutcome> {
    match import_as_is(pool, letter).await {
        Err(error) if !error.is_unavailable() => {
            tracing::error!(%error, "a dead letter could not be imported as it is; storing its bytes only");
            let bare = NewPoison {
                reason: "unimportable".to_owned(),
                error_message: Some(pg_text(&format!("dlq-admin could not import this message: {error}"))),
                job_id: None,
                document_id: None,
                source_queue: None,
                payload: letter.payload.clone(),
                headers: Value::Object(Map::new()),
                content_type: None,
                content_hash: letter.content_hash(),
            };
            let (id, new) = store::store_poison(pool, &bare, letter.redelivered).await?;
            Ok(if new { ImportOutcome::Poison(id) } else { ImportOutcome::Duplicate(id) })
        }
        other => other,
    }
}

async fn import_as_is(pool: &PgPool, letter: &DeadLetter) -> StoreResult<ImportOutcome> {
    let poison = match plan(letter) {
        Plan::Poison(poison) => poison,
        Plan::Job { job_id, attempt, document_id, dlq_reason } => {
            match store::job_status(pool, job_id).await? {
                Some(status) if status == JobStatus::Dlq.as_str() => {
                    store::mark_seen(pool, job_id, attempt, dlq_reason.as_deref().map(pg_text).as_deref()).await?;
                    return Ok(ImportOutcome::Seen);
                }
                None => letter.poison(
                    "unknown_job",
                    Some(format!("no job {job_id} in the database")),
                    Some(job_id),
                    document_id,
                ),
                Some(status) => match letter.lost_in_transit() {
                    Some((reason, queue))
                        if [JobStatus::Queued.as_str(), JobStatus::Retrying.as_str()].contains(&status.as_str()) =>
                    {
                        let from = queue.as_deref().map(|q| format!(" from {q}")).unwrap_or_default();
                        let error = format!(
                            "the broker dead-lettered this job's message ({reason}){from} while the job was {status}; \
                             no message was left to deliver it"
                        );
                        let detail = json!({"reason": reason, "error_kind": "broker_dead_letter", "queue": queue});
                        if store::park_lost_job(pool, job_id, attempt, &reason, &error, detail).await? {
                            tracing::warn!(%job_id, %status, %reason, "the broker dead-lettered a waiting job's message; job parked in the DLQ");
                            return Ok(ImportOutcome::Parked);
                        }
                        // It moved on meanwhile (claimed through another copy).
                        return Ok(ImportOutcome::Stale);
                    }
                    Some((reason, queue)) => {
                        let from = queue.map(|q| format!(" from {q}")).unwrap_or_default();
                        letter.poison(
                        &reason,
                        Some(format!("the broker dead-lettered this job's message ({reason}){from} while the job was {status}")),
                        Some(job_id),
                        document_id,
                    )
                    }
                    _ => {
                        tracing::info!(%job_id, %status, "dead letter of a job that has left the DLQ; dropping it");
                        return Ok(ImportOutcome::Stale);
                    }
                },
            }
        }
    };
    let (id, new) = store::store_poison(pool, &poison, letter.redelivered).await?;
    if new {
        tracing::warn!(item_id = %id, reason = %poison.reason, "poison message imported into the DLQ");
        Ok(ImportOutcome::Poison(id))
    } else {
        Ok(ImportOutcome::Duplicate(id))
    }
}

/// Text Postgres accepts: NUL shown as `\u{0}`, as payloads show it.
fn pg_text(s: &str) -> String {
    if s.contains('\0') { s.replace('\0', "\\u{0}") } else { s.to_owned() }
}

/// JSON Postgres's jsonb accepts (no NUL in any string or key).
fn pg_json(v: Value) -> Value {
    match v {
        Value::String(s) => Value::String(pg_text(&s)),
        Value::Array(a) => Value::Array(a.into_iter().map(pg_json).collect()),
        Value::Object(o) => Value::Object(o.into_iter().map(|(k, v)| (pg_text(&k), pg_json(v))).collect()),
        other => other,
    }
}

/// AMQP headers as JSON: strings stay strings when they are UTF-8 (else
/// they are escaped), arrays and tables nest, timestamps are seconds.
pub fn table_to_json(table: &FieldTable) -> Map<String, Value> {
    table.inner().iter().map(|(k, v)| (k.as_str().to_owned(), value_to_json(v))).collect()
}

fn value_to_json(value: &AMQPValue) -> Value {
    match value {
        AMQPValue::Boolean(b) => json!(b),
        AMQPValue::ShortShortInt(n) => json!(n),
        AMQPValue::ShortShortUInt(n) => json!(n),
        AMQPValue::ShortInt(n) => json!(n),
        AMQPValue::ShortUInt(n) => json!(n),
        AMQPValue::LongInt(n) => json!(n),
        AMQPValue::LongUInt(n) => json!(n),
        AMQPValue::LongLongInt(n) => json!(n),
        AMQPValue::Float(f) => json!(f),
        AMQPValue::Double(f) => json!(f),
        AMQPValue::DecimalValue(d) => json!(f64::from(d.value) / 10f64.powi(i32::from(d.scale))),
        AMQPValue::ShortString(s) => json!(s.as_str()),
        AMQPValue::LongString(s) => bytes_to_json(s.as_bytes()),
        AMQPValue::ByteArray(b) => bytes_to_json(b.as_slice()),
        AMQPValue::FieldArray(a) => Value::Array(a.as_slice().iter().map(value_to_json).collect()),
        AMQPValue::Timestamp(t) => json!(t),
        AMQPValue::FieldTable(t) => Value::Object(table_to_json(t)),
        AMQPValue::Void => Value::Null,
    }
}

fn bytes_to_json(bytes: &[u8]) -> Value {
    match std::str::from_utf8(bytes) {
        Ok(s) => json!(s),
        Err(_) => json!(crate::domain::escape_payload(bytes, usize::MAX).0),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn letter(payload: &[u8], headers: Value) -> DeadLetter {
        DeadLetter {
            payload: payload.to_vec(),
            headers: headers.as_object().unwrap().clone(),
            content_type: None,
            redelivered: false,
        }
    }

    #[test]
    fn worker_poison_reasons_are_poison() {
        let l = letter(
            b"{nope",
            json!({"x-dlq-reason": "not_json", "x-error": "body is not valid JSON: key must be a string"}),
        );
        let Plan::Poison(p) = plan(&l) else { panic!("poison") };
        assert_eq!(p.reason, "not_json");
        assert_eq!(p.error_message.as_deref(), Some("body is not valid JSON: key must be a string"));
        assert_eq!(p.job_id, None);
    }

    #[test]
    fn job_messages_name_their_job() {
        let id = Uuid::now_v7();
        let l = letter(
            b"whatever",
            json!({"x-job-id": id.to_string(), "x-attempt": "2", "x-dlq-reason": "retries_exhausted"}),
        );
        assert_eq!(
            plan(&l),
            Plan::Job { job_id: id, attempt: Some(2), document_id: None, dlq_reason: Some("retries_exhausted".into()) }
        );
    }

    #[test]
    fn broker_dead_letters_carry_the_death_reason() {
        let l = letter(
            b"\xff\xfe",
            json!({"x-death": [{"reason": "delivery_limit", "queue": "jobs.low", "count": 1}], "x-first-death-reason": "delivery_limit"}),
        );
        let Plan::Poison(p) = plan(&l) else { panic!("poison") };
        assert_eq!(p.reason, "delivery_limit");
        assert_eq!(p.source_queue.as_deref(), Some("jobs.low"));
        assert!(p.error_message.unwrap().contains("not valid JSON"));
    }

    #[test]
    fn garbage_without_headers_is_poison_by_its_decode_error() {
        let Plan::Poison(p) = plan(&letter(b"{\"schema_version\": 7}", json!({}))) else { panic!("poison") };
        assert_eq!(p.reason, "unsupported_schema_version");
    }

    #[test]
    fn nul_characters_are_made_storable() {
        let l = letter(b"\0", json!({"x-dlq-reason": "not_json", "x-error": "bad\0byte", "x-\0": ["a\0"]}));
        let Plan::Poison(p) = plan(&l) else { panic!("poison") };
        assert_eq!(p.error_message.as_deref(), Some("bad\\u{0}byte"));
        assert_eq!(p.headers["x-\\u{0}"][0], "a\\u{0}");
        assert_eq!(p.payload, b"\0");
    }

    #[test]
    fn the_hash_ignores_the_delivery_count_only() {
        let a = letter(b"x", json!({"x-dlq-reason": "not_json"}));
        let b = letter(b"y", json!({"x-dlq-reason": "not_json"}));
        assert_ne!(a.content_hash(), b.content_hash());
        assert_eq!(a.content_hash(), a.clone().content_hash());
    }
}
