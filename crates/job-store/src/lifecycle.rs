//! The worker's side of a job's life in Postgres: claim under a lease, keep
//! the lease alive, record how an attempt ended, and rescue jobs whose
//! worker died. Each is one round trip (or one transaction) per job, not
//! one per stage.

use std::time::Duration;

use job_model::{JobMetadata, JobStatus, OutboxMessage};
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

use crate::error::{StoreError, StoreResult};
use crate::outbox;
use crate::row::{self, query_jobs};

mod outcomes;
pub use outcomes::{AttemptRecord, Recorded, record_attempt, record_attempts};

/// What a claim found.
#[derive(Debug, Clone, PartialEq)]
pub enum ClaimOutcome {
    /// This worker now holds the job's lease.
    Claimed(Box<Claimed>),
    /// No such job: the message is poison.
    NotFound,
    /// The job is finished (or parked); a duplicate delivery to drop.
    AlreadyFinished(JobStatus),
    /// Another worker holds a live lease; a duplicate delivery to drop.
    HeldElsewhere,
    /// The job waits out a retry backoff and this message is not its retry
    /// (an older copy, redelivered or published twice): claiming it would
    /// end the backoff early. A stale delivery to drop.
    Stale { job_attempt: i32 },
}

#[derive(Debug, Clone, PartialEq)]
pub struct Claimed {
    pub job: JobMetadata,
    /// The previous holder died with the lease (a crash, not an error).
    pub recovered_from_crash: bool,
}

/// Claims a job for one attempt: QUEUED or RETRYING jobs, and PROCESSING
/// jobs whose lease has expired or was released. The conditional UPDATE is
/// the only way into PROCESSING, so two deliveries of one job can never
/// both run it. `message_attempt` is the attempt the message was sent for
/// (its `x-attempt` header): a RETRYING job is claimed only by the message
/// of its next attempt, so that a stale copy cannot cut its backoff short.
///
/// The claim commits asynchronously (`synchronous_commit = off` for its own
/// transaction only, through `set_config(.., true)`): it does not wait for
/// its WAL flush, which was half of the two flushes a job waited for. A
/// Postgres crash can lose a claim committed in the last moments before it,
/// and only that: the job is then back where it was (QUEUED or RETRYING)
/// while its message is still unacked at the worker. The attempt's outcome
/// commits synchronously under the same lease and attempt check, so it finds
/// the claim gone, writes nothing, and the worker gives the delivery back
/// (requeue, not ack) to be claimed afresh. A recorded outcome can never
/// outlive its claim: the WAL is flushed in order, so the outcome's flush
/// makes the claim before it durable too.
pub async fn claim(
    conn: &mut PgConnection,
    job_id: Uuid,
    worker: &str,
    lease: Duration,
    message_attempt: Option<i32>,
) -> StoreResult<ClaimOutcome> {
    let claimable: Vec<String> = JobStatus::sources_of(JobStatus::Processing)
        .into_iter()
        .filter(|s| *s != JobStatus::Processing)
        .map(|s| s.as_str().to_owned())
        .collect();
    let claimed = query_jobs!(
        crashed = "crashed";
        "WITH prev AS ( \
             SELECT job_id, status, attempt, lease_owner, lease_expires_at FROM jobs WHERE job_id = $1 FOR UPDATE \
         ), async_commit AS MATERIALIZED ( \
             SELECT set_config('synchronous_commit', 'off', true) \
         ), claimed AS ( \
             UPDATE jobs j SET status = 'PROCESSING', attempt = j.attempt + 1, \
                 crash_count = j.crash_count + CASE WHEN prev.status = 'PROCESSING' AND prev.lease_owner IS NOT NULL THEN 1 ELSE 0 END, \
                 lease_owner = $2, lease_expires_at = now() + make_interval(secs => $3), \
                 started_at = COALESCE(j.started_at, now()), updated_at = now() \
             FROM prev, async_commit \
             WHERE j.job_id = prev.job_id \
               AND ((prev.status = ANY($4) \
                     AND NOT (prev.status = 'RETRYING' AND $5::int IS NOT NULL AND $5::int <> prev.attempt + 1)) \
                    OR (prev.status = 'PROCESSING' AND (prev.lease_expires_at IS NULL OR prev.lease_expires_at < now()))) \
             RETURNING j.*, prev.status AS from_status, \
                       (prev.status = 'PROCESSING' AND prev.lease_owner IS NOT NULL) AS crashed \
         ), event AS ( \
             INSERT INTO job_events (job_id, from_status, to_status, actor, detail) \
             SELECT job_id, from_status, 'PROCESSING', $2, \
                    jsonb_build_object('attempt', attempt, 'recovered_from_crash', crashed) \
             FROM claimed \
         ) \
         SELECT ",
        " FROM claimed",
        job_id,
        worker,
        lease.as_secs_f64(),
        &claimable,
        message_attempt,
    )
    .fetch_optional(&mut *conn)
    .await?;
    if let Some(claimed) = claimed {
        let recovered_from_crash = claimed.crashed == Some(true);
        return Ok(ClaimOutcome::Claimed(Box::new(Claimed { job: row::job(claimed)?, recovered_from_crash })));
    }
    let Some(now) =
        sqlx::query!("SELECT status, attempt FROM jobs WHERE job_id = $1", job_id).fetch_optional(&mut *conn).await?
    else {
        return Ok(ClaimOutcome::NotFound);
    };
    let status: JobStatus = now.status.parse().map_err(|e| StoreError::invariant(format!("job {job_id}: {e}")))?;
    Ok(match status {
        JobStatus::Processing => ClaimOutcome::HeldElsewhere,
        JobStatus::Retrying => ClaimOutcome::Stale { job_attempt: now.attempt },
        status => ClaimOutcome::AlreadyFinished(status),
    })
}

/// Extends the lease while an attempt runs. False means the lease was lost
/// (rescued by the reaper and claimed elsewhere): stop and commit nothing.
pub async fn renew_lease(pool: &PgPool, job_id: Uuid, worker: &str, lease: Duration) -> StoreResult<bool> {
    let updated = sqlx::query!(
        "UPDATE jobs SET lease_expires_at = now() + make_interval(secs => $3) \
         WHERE job_id = $1 AND lease_owner = $2 AND status = 'PROCESSING'",
        job_id,
        worker,
        lease.as_secs_f64(),
    )
    .execute(pool)
    .await?;
    Ok(updated.rows_affected() == 1)
}

/// Gives a job back without counting a crash (graceful shutdown past its
/// grace period): the redelivered message can claim it at once. The lease
/// is left expired, not cleared, so that if no message comes back (the nack
/// was lost, the broker is away, the redelivery was dropped as a duplicate)
/// the reaper finds the job and queues it again: no job is left PROCESSING
/// with nobody to rescue it.
pub async fn release_lease(pool: &PgPool, job_id: Uuid, worker: &str) -> StoreResult<bool> {
    let updated = sqlx::query!(
        "UPDATE jobs SET lease_owner = NULL, lease_expires_at = now(), updated_at = now() \
         WHERE job_id = $1 AND lease_owner = $2 AND status = 'PROCESSING'",
        job_id,
        worker,
    )
    .execute(pool)
    .await?;
    Ok(updated.rows_affected() == 1)
}

/// Finds running jobs whose lease expired (their worker died or hung) and
/// queues a fresh message for each through the outbox, so another worker
/// claims them within a lease period rather than waiting for the broker's
/// consumer timeout. Safe with many reapers: rows are locked SKIP LOCKED,
/// and clearing `lease_expires_at` keeps a job from being rescued twice.
/// `message_for` builds the message for a job.
pub async fn rescue_expired(
    pool: &PgPool,
    limit: i64,
    message_for: impl Fn(&JobMetadata) -> OutboxMessage,
) -> StoreResult<Vec<Uuid>> {
    let mut tx = pool.begin().await?;
    let rows = query_jobs!(
        "UPDATE jobs SET lease_expires_at = NULL, updated_at = now() \
         WHERE job_id IN ( \
             SELECT job_id FROM jobs WHERE status = 'PROCESSING' AND lease_expires_at < now() \
             ORDER BY lease_expires_at LIMIT $1 FOR UPDATE SKIP LOCKED) \
         RETURNING ",
        "",
        limit,
    )
    .fetch_all(&mut *tx)
    .await?;
    let jobs = row::jobs(rows)?;
    let messages: Vec<OutboxMessage> = jobs.iter().map(message_for).collect();
    outbox::enqueue_all(&mut tx, &messages).await?;
    tx.commit().await?;
    Ok(jobs.iter().map(|j| j.job_id).collect())
}
