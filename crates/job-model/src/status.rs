//! The job status machine. Every status change in the system goes through
//! [`JobStatus::transition`], so the allowed moves live in exactly one place.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "UPPERCASE")]
pub enum JobStatus {
    /// Committed and waiting on a queue.
    Queued,
    /// Claimed by a worker, which holds a lease on it.
    Processing,
    /// Every stage succeeded.
    Completed,
    /// A permanent error: the document itself is unusable. Never retried.
    Failed,
    /// A retryable error; waiting in a retry tier for its next attempt.
    Retrying,
    /// Retries exhausted (or poison): parked for an admin.
    Dlq,
    /// Removed by an admin or by retention. The row stays for audit.
    Deleted,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("a job cannot move from {from} to {to}")]
pub struct InvalidTransition {
    pub from: JobStatus,
    pub to: JobStatus,
}

impl JobStatus {
    pub const ALL: [JobStatus; 7] = [
        JobStatus::Queued,
        JobStatus::Processing,
        JobStatus::Completed,
        JobStatus::Failed,
        JobStatus::Retrying,
        JobStatus::Dlq,
        JobStatus::Deleted,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            JobStatus::Queued => "QUEUED",
            JobStatus::Processing => "PROCESSING",
            JobStatus::Completed => "COMPLETED",
            JobStatus::Failed => "FAILED",
            JobStatus::Retrying => "RETRYING",
            JobStatus::Dlq => "DLQ",
            JobStatus::Deleted => "DELETED",
        }
    }

    /// The statuses a job may move to from this one (DESIGN.md, "Job lifecycle").
    pub fn next_allowed(self) -> &'static [JobStatus] {
        use JobStatus::*;
        match self {
            // QUEUED/RETRYING -> DLQ: the broker dead-lettered the job's
            // message (its delivery limit); the job is parked where an admin
            // can retry it, instead of waiting for a message that is gone.
            Queued => &[Processing, Dlq],
            // PROCESSING -> PROCESSING is a re-claim after the holder's lease expired
            // (a crashed worker); it is an attempt of its own.
            Processing => &[Processing, Completed, Failed, Retrying, Dlq],
            Retrying => &[Processing, Dlq],
            // A poison job can be quarantined before it is ever claimed again.
            Dlq => &[Queued, Deleted],
            Completed | Failed | Deleted => &[],
        }
    }

    pub fn can_transition_to(self, to: JobStatus) -> bool {
        self.next_allowed().contains(&to)
    }

    /// Checks a move against the machine; callers persist only what this allows.
    pub fn transition(self, to: JobStatus) -> Result<JobStatus, InvalidTransition> {
        if self.can_transition_to(to) { Ok(to) } else { Err(InvalidTransition { from: self, to }) }
    }

    /// No further processing will happen without an admin.
    pub fn is_terminal(self) -> bool {
        matches!(self, JobStatus::Completed | JobStatus::Failed | JobStatus::Dlq | JobStatus::Deleted)
    }

    /// The statuses from which `to` can be reached: what a conditional UPDATE's
    /// `WHERE status = ANY(...)` must list.
    pub fn sources_of(to: JobStatus) -> Vec<JobStatus> {
        Self::ALL.into_iter().filter(|s| s.can_transition_to(to)).collect()
    }
}

impl fmt::Display for JobStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown job status {0:?}")]
pub struct UnknownStatus(pub String);

impl FromStr for JobStatus {
    type Err = UnknownStatus;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|st| st.as_str().eq_ignore_ascii_case(s.trim()))
            .ok_or_else(|| UnknownStatus(s.to_owned()))
    }
}

#[cfg(test)]
mod tests {
    use super::JobStatus::*;
    use super::*;

    #[test]
    fn happy_path_is_allowed() {
        assert_eq!(Queued.transition(Processing), Ok(Processing));
        assert_eq!(Processing.transition(Completed), Ok(Completed));
    }

    #[test]
    fn retry_loop_and_dead_letter_are_allowed() {
        assert!(Processing.can_transition_to(Retrying));
        assert!(Retrying.can_transition_to(Processing));
        assert!(Processing.can_transition_to(Dlq));
        assert!(Dlq.can_transition_to(Queued));
        assert!(Dlq.can_transition_to(Deleted));
    }

    #[test]
    fn finished_jobs_never_move() {
        for to in JobStatus::ALL {
            assert!(Completed.transition(to).is_err());
            assert!(Failed.transition(to).is_err());
            assert!(Deleted.transition(to).is_err());
        }
    }

    #[test]
    fn shortcuts_are_refused() {
        let err = Queued.transition(Completed).unwrap_err();
        assert_eq!(err, InvalidTransition { from: Queued, to: Completed });
        assert_eq!(err.to_string(), "a job cannot move from QUEUED to COMPLETED");
        assert!(Retrying.transition(Completed).is_err());
        assert!(Dlq.transition(Processing).is_err());
        assert!(Queued.transition(Deleted).is_err());
    }

    #[test]
    fn a_job_whose_message_the_broker_dead_lettered_can_be_parked() {
        assert_eq!(Queued.transition(Dlq), Ok(Dlq));
        assert_eq!(Retrying.transition(Dlq), Ok(Dlq));
    }

    #[test]
    fn sources_match_the_table() {
        assert_eq!(JobStatus::sources_of(Processing), vec![Queued, Processing, Retrying]);
        assert_eq!(JobStatus::sources_of(Queued), vec![Dlq]);
        assert_eq!(JobStatus::sources_of(Deleted), vec![Dlq]);
    }

    #[test]
    fn names_round_trip() {
        for s in JobStatus::ALL {
            assert_eq!(s.as_str().parse(), Ok(s));
            assert_eq!(serde_json::to_value(s).unwrap(), serde_json::json!(s.as_str()));
        }
        assert!("DONE".parse::<JobStatus>().is_err());
    }
}
