//! The docflow job model: what a job is, how its status may change, what
//! travels on the broker, and how it is stored. Shared by every service so
//! that none of them redefines a status, a queue name or a message shape.

pub mod db;
mod job;
pub mod lifecycle;
pub mod message;
pub mod outbox;
mod priority;
mod stats;
pub mod status;
pub mod topology;

pub use job::{JobMetadata, NewJob, StageRecord};
pub use message::{
    AttemptOutcome, ExecutionEvent, JobEnvelope, JobMessage, PoisonReason, ProcessDocument, StageTiming,
};
pub use priority::{JobPriority, UnknownPriority};
pub use stats::QueueStats;
pub use status::{InvalidTransition, JobStatus};
pub use topology::{RetryPolicy, Topology};
