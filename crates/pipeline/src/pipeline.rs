//! The `Stage` trait and the `Pipeline` that runs stages in order, timing
//! each, bounding each by a time limit, and containing panics.

use std::any::Any;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use futures::FutureExt;
use object_store::ObjectStore;
use serde::Serialize;
use tracing::Instrument;

use crate::budget::Meter;
use crate::config::PipelineConfig;
use crate::context::{Document, StageContext};
use crate::error::{ConfigError, StageError, kind};
use crate::lookup::EarlierResults;
use crate::rules::RuleSet;
use crate::stages;

/// One step of document processing.
///
/// A stage reads what earlier stages left in the context, does its work and
/// stores its own output there. It must be safe to run again for the same
/// job (a retried or redelivered job runs every stage again): database and
/// blob writes are idempotent per job.
#[async_trait]
pub trait Stage: Send + Sync {
    /// Stable name, used in reports, metrics, time limits and for replacing
    /// the stage in a pipeline.
    fn name(&self) -> &'static str;

    async fn run(&self, ctx: &mut StageContext) -> Result<StageReport, StageError>;
}

/// What a stage reports about the work it did.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct StageReport {
    pub items_processed: u64,
    pub bytes_processed: u64,
    /// Set once the document type is known (by classification), so that
    /// stage events can be broken down by type.
    pub document_type: Option<String>,
}

impl StageReport {
    pub fn new(items_processed: u64, bytes_processed: u64) -> Self {
        StageReport { items_processed, bytes_processed, document_type: None }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum StageStatus {
    Succeeded,
    Failed,
    /// Not run because an earlier stage failed.
    Skipped,
}

impl StageStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            StageStatus::Succeeded => "SUCCEEDED",
            StageStatus::Failed => "FAILED",
            StageStatus::Skipped => "SKIPPED",
        }
    }
}

/// The record of one stage in one run.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StageOutcome {
    /// Position in the pipeline, from 0.
    pub seq: usize,
    pub stage: &'static str,
    pub started_at: DateTime<Utc>,
    /// Measured with a monotonic clock; sub-millisecond precision.
    pub duration: Duration,
    pub status: StageStatus,
    pub items_processed: u64,
    pub bytes_processed: u64,
    pub document_type: Option<String>,
    pub error: Option<StageError>,
}

impl StageOutcome {
    /// Duration in milliseconds, fractional (for `job_stages.duration_ms`).
    pub fn duration_ms(&self) -> f64 {
        self.duration.as_secs_f64() * 1000.0
    }
}

/// The result of running the pipeline over one document.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PipelineRun {
    /// One entry per stage, in order; stages after a failure are `Skipped`.
    pub outcomes: Vec<StageOutcome>,
    /// `Err((index of the failed stage, its error))` on failure.
    pub result: Result<(), (usize, StageError)>,
}

impl PipelineRun {
    pub fn succeeded(&self) -> bool {
        self.result.is_ok()
    }

    /// The failed stage's outcome and error, if any.
    pub fn failure(&self) -> Option<(&StageOutcome, &StageError)> {
        let (index, error) = self.result.as_ref().err()?;
        Some((self.outcomes.get(*index)?, error))
    }

    /// Total time spent in stages.
    pub fn total_duration(&self) -> Duration {
        self.outcomes.iter().map(|o| o.duration).sum()
    }
}

/// An ordered list of stages with a shared configuration.
#[derive(Clone)]
pub struct Pipeline {
    stages: Vec<Arc<dyn Stage>>,
    config: Arc<PipelineConfig>,
}

impl std::fmt::Debug for Pipeline {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pipeline").field("stages", &self.stage_names()).field("config", &self.config).finish()
    }
}

impl Pipeline {
    /// A pipeline with no stages (add them with [`Pipeline::push`]).
    pub fn empty(config: PipelineConfig) -> Pipeline {
        Pipeline { stages: Vec::new(), config: Arc::new(config) }
    }

    /// The eight stages of DESIGN.md, in order. Fails only if the criteria
    /// rules file cannot be read or parsed.
    pub fn standard(config: PipelineConfig) -> Result<Pipeline, ConfigError> {
        let rules = match &config.rules_path {
            Some(path) => RuleSet::from_path(path)?,
            None => RuleSet::embedded_default()?,
        };
        let mut pipeline = Pipeline::empty(config);
        pipeline.push(stages::upload::Upload);
        pipeline.push(stages::validation::Validation);
        pipeline.push(stages::classification::Classification);
        pipeline.push(stages::extraction::Extraction);
        pipeline.push(stages::analysis::Analysis);
        pipeline.push(stages::criteria_detection::CriteriaDetection::new(rules));
        pipeline.push(stages::ticket_generation::TicketGeneration);
        pipeline.push(stages::storage::Storage);
        Ok(pipeline)
    }

    pub fn config(&self) -> &Arc<PipelineConfig> {
        &self.config
    }

    pub fn stage_names(&self) -> Vec<&'static str> {
        self.stages.iter().map(|s| s.name()).collect()
    }

    /// Appends a stage.
    pub fn push(&mut self, stage: impl Stage + 'static) -> &mut Self {
        self.stages.push(Arc::new(stage));
        self
    }

    fn position(&self, name: &str) -> Result<usize, ConfigError> {
        self.stages.iter().position(|s| s.name() == name).ok_or_else(|| ConfigError::UnknownStage(name.to_owned()))
    }

    /// Replaces the stage called `name`.
    pub fn replace(&mut self, name: &str, stage: impl Stage + 'static) -> Result<&mut Self, ConfigError> {
        let i = self.position(name)?;
        self.stages[i] = Arc::new(stage);
        Ok(self)
    }

    /// Inserts a stage right before the stage called `name`.
    pub fn insert_before(&mut self, name: &str, stage: impl Stage + 'static) -> Result<&mut Self, ConfigError> {
        let i = self.position(name)?;
        self.stages.insert(i, Arc::new(stage));
        Ok(self)
    }

    /// Inserts a stage right after the stage called `name`.
    pub fn insert_after(&mut self, name: &str, stage: impl Stage + 'static) -> Result<&mut Self, ConfigError> {
        let i = self.position(name)?;
        self.stages.insert(i + 1, Arc::new(stage));
        Ok(self)
    }

    /// Removes the stage called `name`.
    pub fn remove(&mut self, name: &str) -> Result<&mut Self, ConfigError> {
        let i = self.position(name)?;
        self.stages.remove(i);
        Ok(self)
    }

    /// A fresh context for one run over `document`, sharing this pipeline's
    /// configuration.
    pub fn context(
        &self,
        document: Document,
        earlier: Arc<dyn EarlierResults>,
        blobs: Arc<dyn ObjectStore>,
    ) -> StageContext {
        StageContext::new(document, earlier, blobs, self.config.clone())
    }

    /// Runs the stages in order and stops at the first failure.
    ///
    /// Never panics and never returns early: a stage that panics fails with
    /// `panic` (permanent: the same document would panic again), a stage
    /// that exceeds its time limit fails as [`Pipeline::timed_out`] says,
    /// and in both cases the run is reported like any other failure. If
    /// the returned future is dropped mid-stage (the attempt abandoned),
    /// the stage's document work is cancelled too.
    pub async fn run(&self, ctx: &mut StageContext) -> PipelineRun {
        let cancel_if_dropped = CancelOnDrop(Some(ctx.work.clone()));
        let mut outcomes = Vec::with_capacity(self.stages.len());
        let mut failure: Option<(usize, StageError)> = None;
        for (seq, stage) in self.stages.iter().enumerate() {
            let name = stage.name();
            if failure.is_some() {
                outcomes.push(StageOutcome {
                    seq,
                    stage: name,
                    started_at: Utc::now(),
                    duration: Duration::ZERO,
                    status: StageStatus::Skipped,
                    items_processed: 0,
                    bytes_processed: 0,
                    document_type: None,
                    error: None,
                });
                continue;
            }
            let limit = self.config.timeout_for(name);
            // Named after the stage (OpenTelemetry span name), so a trace
            // reads upload → validation → … with each stage's own numbers.
            let span = tracing::info_span!(
                "stage",
                otel.name = name,
                otel.status_code = tracing::field::Empty,
                otel.status_description = tracing::field::Empty,
                docflow.stage = name,
                docflow.stage_seq = seq,
                docflow.job_id = %ctx.document.job_id,
                docflow.items_processed = tracing::field::Empty,
                docflow.bytes_processed = tracing::field::Empty,
                docflow.document_type = tracing::field::Empty,
                error.type = tracing::field::Empty,
            );
            let started_at = Utc::now();
            let clock = Instant::now();
            let work = ctx.work.clone();
            let cpu_before = work.cpu_used();
            let guarded = AssertUnwindSafe(stage.run(ctx)).catch_unwind();
            let result = match tokio::time::timeout(limit, guarded).instrument(span.clone()).await {
                Ok(Ok(result)) => result,
                Ok(Err(payload)) => Err(StageError::permanent(
                    kind::PANIC,
                    format!("stage {name} panicked: {}", panic_message(payload.as_ref())),
                )),
                Err(_) => Err(Self::timed_out(name, limit, &work, cpu_before).instrument(span.clone()).await),
            };
            let duration = clock.elapsed();
            let outcome = match result {
                Ok(report) => {
                    span.record("otel.status_code", "OK");
                    span.record("docflow.items_processed", report.items_processed);
                    span.record("docflow.bytes_processed", report.bytes_processed);
                    if let Some(document_type) = &report.document_type {
                        span.record("docflow.document_type", document_type.as_str());
                    }
                    span.in_scope(|| tracing::debug!(duration_ms = duration.as_secs_f64() * 1000.0, "stage succeeded"));
                    StageOutcome {
                        seq,
                        stage: name,
                        started_at,
                        duration,
                        status: StageStatus::Succeeded,
                        items_processed: report.items_processed,
                        bytes_processed: report.bytes_processed,
                        document_type: report.document_type,
                        error: None,
                    }
                }
                Err(error) => {
                    span.record("otel.status_code", "ERROR");
                    span.record("otel.status_description", error.to_string());
                    span.record("error.type", error.kind());
                    span.record("docflow.items_processed", 0u64);
                    span.record("docflow.bytes_processed", 0u64);
                    span.in_scope(|| {
                        tracing::warn!(error.kind = error.kind(), retryable = error.is_retryable(), %error, "stage failed")
                    });
                    failure = Some((seq, error.clone()));
                    StageOutcome {
                        seq,
                        stage: name,
                        started_at,
                        duration,
                        status: StageStatus::Failed,
                        items_processed: 0,
                        bytes_processed: 0,
                        document_type: None,
                        error: Some(error),
                    }
                }
            };
            outcomes.push(outcome);
        }
        drop(cancel_if_dropped.disarm());
        PipelineRun { outcomes, result: failure.map_or(Ok(()), Err) }
    }

    /// A stage over its time limit. Its document work is cancelled and
    /// waited for: the work looks at its [`crate::budget::Meter`] every few
    /// thousand steps, so nothing of it runs on once the stage has failed,
    /// and a retry does not start a second copy beside the first.
    ///
    /// What used the time decides the kind. If the stage's own work kept a
    /// core busy for at least half the limit (or would not stop), the
    /// document's cost ran the clock out: the same document would again,
    /// so the failure is permanent, `document_too_complex`. Otherwise the
    /// stage was waiting: on the blob store or the database, or for a core
    /// on a starved machine. That can pass, so it stays a retryable
    /// `timeout`.
    async fn timed_out(
        name: &str,
        limit: Duration,
        work: &crate::budget::WorkBudget,
        cpu_before: Duration,
    ) -> StageError {
        work.cancel();
        let stopped = tokio::time::timeout(STOP_WAIT, work.finished()).await.is_ok();
        let cpu = work.cpu_used().saturating_sub(cpu_before);
        if !stopped {
            tracing::error!(stage = name, running = work.running(), "the stage's work did not stop when cancelled");
        }
        if !stopped || cpu * 2 >= limit {
            return StageError::permanent(
                kind::DOCUMENT_TOO_COMPLEX,
                format!(
                    "stage {name} exceeded its time limit of {} reading the document ({:.2} s of CPU)",
                    humanize(limit),
                    cpu.as_secs_f64()
                ),
            );
        }
        StageError::retryable(kind::TIMEOUT, format!("stage {name} exceeded its time limit of {}", humanize(limit)))
    }
}

/// How long a timed-out stage's work is given to notice its cancellation.
/// It checks every few milliseconds of work; only lopdf's parse of a file
/// cannot be interrupted, and `crate::cost` bounds that first.
const STOP_WAIT: Duration = Duration::from_secs(10);

/// Cancels the job's document work if `Pipeline::run` is dropped before
/// it finishes (the worker abandoned the attempt: shutdown, lost lease).
struct CancelOnDrop(Option<crate::budget::WorkBudget>);

impl CancelOnDrop {
    fn disarm(mut self) -> Self {
        self.0 = None;
        self
    }
}

impl Drop for CancelOnDrop {
    fn drop(&mut self) {
        if let Some(work) = &self.0 {
            work.cancel();
        }
    }
}

fn humanize(d: Duration) -> String {
    if d < Duration::from_secs(1) { format!("{} ms", d.as_millis()) } else { format!("{:.1} s", d.as_secs_f64()) }
}

/// The message of a panic payload (`panic!` with a literal or a format).
pub(crate) fn panic_message(payload: &(dyn Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_owned()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "non-string panic payload".to_owned()
    }
}

/// Runs CPU-heavy work (PDF parsing, text extraction) off the async
/// workers, so one large document does not stall other jobs on the same
/// runtime. The work gets a [`Meter`] of the job's budget: its CPU time is
/// charged to the job, and it is expected to stop when the meter says so.
/// A panic inside is re-raised here, where the pipeline's `catch_unwind`
/// turns it into a failure of this job.
pub async fn blocking<T, F>(budget: &crate::budget::WorkBudget, work: F) -> Result<T, StageError>
where
    T: Send + 'static,
    F: FnOnce(&Meter) -> T + Send + 'static,
{
    // Registered before it is spawned, so a timeout that comes before the
    // thread starts still waits for it.
    let registered = budget.register();
    let task = move || {
        let meter = registered.start();
        work(&meter)
    };
    match tokio::task::spawn_blocking(task).await {
        Ok(value) => Ok(value),
        Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
        Err(e) => Err(StageError::retryable(kind::CANCELLED, format!("blocking task cancelled: {e}"))),
    }
}

/// Compile-time check: workers spawn the run on a multi-threaded runtime,
/// so the future (with everything a stage holds across an await) must be
/// `Send`.
#[cfg(test)]
#[allow(dead_code)]
fn run_future_is_send(pipeline: &Pipeline, ctx: &mut StageContext) {
    fn send<T: Send>(_: &T) {}
    let run = pipeline.run(ctx);
    send(&run);
}
