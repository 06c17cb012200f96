//! Group commit of attempt outcomes. Job tasks hand their finished attempts
//! to one writer task, which records every attempt waiting at that moment
//! in one statement (`lifecycle::record_attempts`): one round trip and one
//! WAL flush per group instead of a seven-statement transaction per job.
//! Nothing waits to fill a group: an attempt that finds a write slot free
//! is written at once, alone; the attempts that finish while every slot is
//! busy form the next group. So groups grow with load and add little
//! latency when there is none. Each job task still acks its own delivery
//! only after its attempt's group has committed.
//!
//! Writes run [`WRITES_IN_FLIGHT`] at a time, not one: a commit waits for
//! its WAL flush (about 2.5 ms on the benchmark machine, most of a write's
//! time), and with a single write in flight an attempt finishing just after
//! a write began waited for that flush and then its own, which cost more
//! throughput than the grouping saved (BENCHMARKS.md, lever 2).

use std::sync::Arc;
use std::time::Duration;

use job_store::lifecycle::{self, AttemptRecord};
use job_store::{ConnectionCache, StoreError};
use prometheus_client::metrics::histogram::Histogram;
use tokio::sync::{Semaphore, mpsc, oneshot};

/// Group writes at once, at most: each runs on a connection of its own.
pub const WRITES_IN_FLIGHT: usize = 2;

/// Why an outcome was not recorded.
#[derive(Debug, Clone, thiserror::Error)]
pub enum RecordError {
    /// Postgres is away or shedding load: try again later.
    #[error("database unavailable: {0}")]
    Unavailable(String),
    /// Trying again will not help (a bug): the delivery goes back.
    #[error("{0}")]
    Failed(String),
}

impl RecordError {
    pub fn is_unavailable(&self) -> bool {
        matches!(self, RecordError::Unavailable(_))
    }

    fn of(error: &StoreError) -> Self {
        if error.is_unavailable() {
            RecordError::Unavailable(error.to_string())
        } else {
            RecordError::Failed(error.to_string())
        }
    }
}

/// Whether this worker recorded the attempt, with the ids of the outbox rows
/// it wrote, claimed for the relay's handover (`None`: it no longer held the
/// job's lease for that attempt, and nothing was written).
pub type RecordReply = Result<Option<lifecycle::Recorded>, RecordError>;

struct Pending {
    record: Arc<AttemptRecord>,
    reply: oneshot::Sender<RecordReply>,
}

/// The job tasks' handle on the writer task; the task ends when the last
/// handle is dropped.
#[derive(Clone)]
pub struct OutcomeWriter {
    queue: mpsc::Sender<Pending>,
}

impl OutcomeWriter {
    /// Starts the writer. `max_group` bounds a group (the worker's job
    /// slots: no more attempts than that can be waiting at once); `claim`
    /// is how long relays keep off the outbox rows written, which the job
    /// tasks hand over to their relay.
    pub fn start(
        connections: ConnectionCache,
        worker_id: String,
        max_group: usize,
        claim: Duration,
        group_sizes: Histogram,
    ) -> Self {
        let max_group = max_group.max(1);
        let (queue, waiting) = mpsc::channel(max_group);
        let writer = Writer { connections, worker_id, claim };
        tokio::spawn(write_groups(writer, waiting, max_group, group_sizes));
        OutcomeWriter { queue }
    }

    /// Records `record` with whatever other attempts are waiting, and
    /// returns once that group has committed (or failed).
    pub async fn record(&self, record: Arc<AttemptRecord>) -> RecordReply {
        let (reply, answer) = oneshot::channel();
        let stopped = || RecordError::Failed("the outcome writer has stopped".to_owned());
        self.queue.send(Pending { record, reply }).await.map_err(|_| stopped())?;
        answer.await.map_err(|_| stopped())?
    }
}

/// What every write needs.
#[derive(Clone)]
struct Writer {
    connections: ConnectionCache,
    worker_id: String,
    claim: Duration,
}

async fn write_groups(writer: Writer, mut waiting: mpsc::Receiver<Pending>, max_group: usize, group_sizes: Histogram) {
    let writes = Arc::new(Semaphore::new(WRITES_IN_FLIGHT));
    while let Some(first) = waiting.recv().await {
        // Attempts that finish while this one waits for a write slot join it.
        let write = writes.clone().acquire_owned().await.expect("the semaphore is never closed");
        let mut group = vec![first];
        while group.len() < max_group {
            match waiting.try_recv() {
                Ok(next) => group.push(next),
                Err(_) => break,
            }
        }
        group_sizes.observe(group.len() as f64);
        let writer = writer.clone();
        tokio::spawn(async move {
            writer.write_group(group).await;
            drop(write);
        });
    }
}

impl Writer {
    async fn write_group(&self, group: Vec<Pending>) {
        let records: Vec<&AttemptRecord> = group.iter().map(|p| p.record.as_ref()).collect();
        match self.record(&records).await {
            Ok(recorded) => {
                for (pending, recorded) in group.into_iter().zip(recorded) {
                    let _ = pending.reply.send(Ok(recorded));
                }
            }
            // An outage fails the whole group alike; each job task waits it out.
            Err(error) if error.is_unavailable() || group.len() == 1 => {
                let error = RecordError::of(&error);
                for pending in group {
                    let _ = pending.reply.send(Err(error.clone()));
                }
            }
            // A statement that failed for good may fail for one attempt only
            // (a row a constraint refuses): write each alone, so the others
            // are recorded and only the bad one goes back.
            Err(error) => {
                tracing::warn!(%error, attempts = group.len(), "recording a group of outcomes failed; recording each alone");
                for pending in group {
                    let alone = self.record(&[pending.record.as_ref()]).await;
                    let _ = pending
                        .reply
                        .send(alone.map(|mut recorded| recorded.swap_remove(0)).map_err(|e| RecordError::of(&e)));
                }
            }
        }
    }

    async fn record(&self, records: &[&AttemptRecord]) -> Result<Vec<Option<lifecycle::Recorded>>, StoreError> {
        let mut connection = self.connections.acquire().await?;
        let recorded = lifecycle::record_attempts(&mut *connection, &self.worker_id, records, Some(self.claim)).await;
        connection.keep_if_ok(recorded)
    }
}
