//! docflow dlq-admin: the admin's view of the dead-letter queue.
//!
//! # What the DLQ is
//!
//! Postgres is the DLQ's source of truth. A DLQ item is either a job row in
//! status `DLQ` (the worker put it there, in the transaction that recorded
//! the failed attempt), or a *poison item*: a message that reached
//! `jobs.dlq` with no job behind it (unparseable, an unknown job, or
//! dead-lettered by the broker's quorum delivery limit), stored in
//! `dlq_poison` with its reason, headers and raw payload.
//!
//! dlq-admin consumes **every** message from `jobs.dlq` ([`consumer`]) and
//! acks it only once it is recorded ([`import`]): a job's own dead letter is
//! noted as seen (the row already is the item), a poison message becomes a
//! poison item. So `jobs.dlq` is a transit queue that stays empty while
//! dlq-admin runs, the queue and the table never disagree for longer than
//! the importer's lag, and "its message leaves jobs.dlq" holds for every
//! item once imported. Deleting or retrying acts on Postgres only.
//!
//! # Decisions
//!
//! - **Retrying twice.** A retry moves DLQ → QUEUED (checked by
//!   [`job_model::JobStatus::transition`]). Retrying a job that is not in
//!   the DLQ, including one retried a moment ago, is a **409 `conflict`**
//!   whose message names the job's current status: the second call changes
//!   nothing and says why. Poison items cannot be retried (409): there is
//!   no job to requeue; they can be deleted.
//! - **Fresh budget, continuous attempts.** A retry resets `retry_count` to
//!   0; `attempt` keeps counting, so the first run after a retry of a job
//!   that failed twice is attempt 3. The job's history stays; the retry's
//!   `job_events` row records the previous error, stage and retry count.
//! - **Through the outbox.** The retried job's message is inserted into
//!   `outbox` in the retry's transaction and published by an
//!   [`broker::OutboxRelay`] running in dlq-admin (publisher
//!   confirms), so a retry survives a broker outage.
//! - **Fingerprints.** An item's fingerprint is the first 16 hex digits of
//!   an MD5 over its error kind (the worker's code, e.g.
//!   `blob_store_unavailable`; `poison` for poison items), its stage (the
//!   dead-letter reason for poison items) and its error message with
//!   paths/URLs, UUIDs, double-quoted values, hex strings of 8+ digits and
//!   numbers replaced by `<path>`, `<id>`, `<str>`, `<hex>`, `<n>`
//!   (SQL function `dlq_error_template`, migration 0004), so "412 jobs:
//!   blob_store_unavailable at upload" is one group, retryable by its
//!   fingerprint.
//! - **Bulk operations** run in batches (`BULK_BATCH_SIZE`), each batch a
//!   transaction that selects with `FOR UPDATE SKIP LOCKED` and writes its
//!   own audit row (rows of one request share a `request_id`); requeues are
//!   paced at `BULK_RETRY_RATE_PER_SECOND` per process. Two processes
//!   retrying the same selection requeue each job exactly once. A client
//!   that disconnects mid-request stops the remaining batches; committed
//!   ones stay (and are audited).
//! - **Audit.** Every retry, delete, bulk retry batch and purge batch is an
//!   `admin_audit` row written in the change's transaction; a request that
//!   changed nothing is still recorded (with zero counts), except idle
//!   retention sweeps. Dry runs change nothing and are not audited. Every
//!   change needs a `reason` (422 without one).
//! - **Retention.** `POST /api/dlq/purge` and the periodic sweep mark items
//!   older than the cut-off DELETED (rows and history stay). Replicas take
//!   turns sweeping through a Postgres advisory lock.

pub mod config;
pub mod console;
pub mod consumer;
pub mod domain;
pub mod import;
mod metrics;
mod openapi;
pub mod ops;
mod routes;
pub mod startup;
mod state;
pub mod sweep;

pub use config::Config;
pub use startup::{Application, openapi};
