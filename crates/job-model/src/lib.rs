//! The docflow job model: what a job is, how its status may change, and what
//! travels on the broker. Types only, no I/O: the `job-store` crate reads
//! and writes them in Postgres, the `broker` crate moves them over AMQP.
//! Shared by every service so that none of them redefines a status, a queue
//! name or a message shape.

mod dlq;
mod document;
mod job;
pub mod message;
pub mod outbox;
pub mod outputs;
mod priority;
mod stages;
mod stats;
pub mod status;
pub mod topology;

pub use dlq::ItemKind;
pub use document::DocumentRef;
pub use job::{JobMetadata, NewJob, StageRecord};
pub use message::{
    AttemptOutcome, ExecutionEvent, JobEnvelope, JobMessage, PoisonReason, ProcessDocument, StageTiming,
};
pub use outbox::{JobRoute, OutboxMessage};
pub use outputs::{AttemptOutputs, ResultRecord, TicketDraft};
pub use priority::{JobPriority, UnknownPriority};
pub use stages::STAGES;
pub use stats::QueueStats;
pub use status::{InvalidTransition, JobStatus};
pub use topology::{RetryPolicy, Topology};
