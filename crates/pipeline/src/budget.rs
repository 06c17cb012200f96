//! The CPU time one job's document work may use, and the switch that stops
//! that work when its stage runs out of time.
//!
//! Document work (parsing, laying out text, reading fields) runs on
//! `spawn_blocking` threads. A timed-out `spawn_blocking` task is not
//! stopped by dropping its handle: it runs on, and a retry would start the
//! same work again beside it. So the work itself looks at a [`Meter`] in its
//! loops: it stops when the stage is cancelled, and fails with
//! [`Stopped::TooComplex`] once the job's document work has used its CPU
//! budget.
//!
//! The budget is CPU time of the working thread, not wall-clock time: on a
//! busy machine (several jobs on two cores) a document waits for a core
//! without being charged for it, so the same document gets the same verdict
//! however loaded the worker is.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use crate::limits::TooComplex;

/// Why document work stopped before it was done.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Stopped {
    /// The document goes over a limit: reading it again would too.
    #[error(transparent)]
    TooComplex(#[from] TooComplex),
    /// The stage was cancelled (its time limit, or the attempt was
    /// abandoned): says nothing about the document.
    #[error("cancelled: the stage ran out of time or the attempt was abandoned")]
    Cancelled,
}

/// CPU time of the calling thread.
fn thread_cpu_time() -> Duration {
    let t = rustix::time::clock_gettime(rustix::time::ClockId::ThreadCPUTime);
    Duration::new(u64::try_from(t.tv_sec).unwrap_or(0), u32::try_from(t.tv_nsec).unwrap_or(0))
}

struct Inner {
    cpu_budget: Duration,
    /// CPU used by work that has finished, in nanoseconds.
    cpu_used_ns: AtomicU64,
    cancelled: AtomicBool,
    /// Blocking tasks started and not yet finished.
    running: AtomicUsize,
    /// PDF pages whose content was interpreted, over all stages.
    pages_laid_out: AtomicU64,
    finished: tokio::sync::Notify,
}

/// One job's budget for document work: shared by its stages (through the
/// [`crate::StageContext`]) and by the blocking tasks they start.
#[derive(Clone)]
pub struct WorkBudget(Arc<Inner>);

impl std::fmt::Debug for WorkBudget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WorkBudget")
            .field("cpu_budget", &self.0.cpu_budget)
            .field("cpu_used", &self.cpu_used())
            .field("cancelled", &self.is_cancelled())
            .finish()
    }
}

impl WorkBudget {
    pub fn new(cpu_budget: Duration) -> Self {
        WorkBudget(Arc::new(Inner {
            cpu_budget,
            cpu_used_ns: AtomicU64::new(0),
            cancelled: AtomicBool::new(false),
            running: AtomicUsize::new(0),
            pages_laid_out: AtomicU64::new(0),
            finished: tokio::sync::Notify::new(),
        }))
    }

    pub fn cpu_budget(&self) -> Duration {
        self.0.cpu_budget
    }

    /// CPU time used by document work that has finished.
    pub fn cpu_used(&self) -> Duration {
        Duration::from_nanos(self.0.cpu_used_ns.load(Ordering::Acquire))
    }

    /// Asks all work under this budget to stop at its next check.
    pub fn cancel(&self) {
        self.0.cancelled.store(true, Ordering::Release);
    }

    pub fn is_cancelled(&self) -> bool {
        self.0.cancelled.load(Ordering::Acquire)
    }

    /// PDF pages whose content this job's work interpreted: each page once
    /// when the stages share their layout (`StageContext::pdf_pages`).
    pub fn pages_laid_out(&self) -> u64 {
        self.0.pages_laid_out.load(Ordering::Acquire)
    }

    /// Work under this budget still running on some thread.
    pub fn running(&self) -> usize {
        self.0.running.load(Ordering::Acquire)
    }

    /// Registers a piece of work about to be handed to a thread: from now
    /// on [`WorkBudget::finished`] waits for it.
    pub(crate) fn register(&self) -> Registered {
        self.0.running.fetch_add(1, Ordering::AcqRel);
        Registered(Some(self.clone()))
    }

    /// Waits until no work under this budget runs any more.
    pub async fn finished(&self) {
        loop {
            let notified = self.0.finished.notified();
            if self.running() == 0 {
                return;
            }
            notified.await;
        }
    }

    /// A meter for work run on the calling thread outside a stage (the
    /// evaluation harness, tests).
    pub fn meter(&self) -> Meter {
        self.register().start()
    }
}

/// Work registered with a budget and not started yet.
pub(crate) struct Registered(Option<WorkBudget>);

impl Registered {
    /// Starts metering on the calling thread (the one doing the work).
    pub(crate) fn start(mut self) -> Meter {
        let budget = self.0.take().expect("started once");
        Meter { budget, started: thread_cpu_time() }
    }
}

impl Drop for Registered {
    fn drop(&mut self) {
        // Never started (the runtime dropped the task): no longer running.
        if let Some(budget) = self.0.take() {
            budget.0.running.fetch_sub(1, Ordering::AcqRel);
            budget.0.finished.notify_waiters();
        }
    }
}

/// The work's view of its budget, on the thread that does it.
pub struct Meter {
    budget: WorkBudget,
    started: Duration,
}

impl Meter {
    fn used_here(&self) -> Duration {
        thread_cpu_time().saturating_sub(self.started)
    }

    /// CPU time of the job's document work so far, this piece's included.
    pub fn cpu_used(&self) -> Duration {
        self.budget.cpu_used() + self.used_here()
    }

    /// Counts a page laid out (see [`WorkBudget::pages_laid_out`]).
    pub fn page_laid_out(&self) {
        self.budget.0.pages_laid_out.fetch_add(1, Ordering::AcqRel);
    }

    /// Stops the work if its stage was cancelled or its job's document work
    /// went over its CPU budget. Costs a clock read: call it every few
    /// thousand steps of a loop, not on each.
    pub fn check(&self) -> Result<(), Stopped> {
        if self.budget.is_cancelled() {
            return Err(Stopped::Cancelled);
        }
        let used = self.cpu_used();
        let budget = self.budget.cpu_budget();
        if used > budget {
            return Err(TooComplex::cpu(used, budget).into());
        }
        Ok(())
    }
}

impl Drop for Meter {
    fn drop(&mut self) {
        let used = u64::try_from(self.used_here().as_nanos()).unwrap_or(u64::MAX);
        let inner = &self.budget.0;
        inner.cpu_used_ns.fetch_add(used, Ordering::AcqRel);
        inner.running.fetch_sub(1, Ordering::AcqRel);
        inner.finished.notify_waiters();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_meter_stops_on_cancel_and_over_budget() {
        let budget = WorkBudget::new(Duration::from_secs(3600));
        let meter = budget.meter();
        assert_eq!(budget.running(), 1);
        assert_eq!(meter.check(), Ok(()));
        budget.cancel();
        assert_eq!(meter.check(), Err(Stopped::Cancelled));
        drop(meter);
        assert_eq!(budget.running(), 0);

        let tiny = WorkBudget::new(Duration::from_nanos(1));
        let meter = tiny.meter();
        // Burn a little CPU: the thread clock moves by more than 1 ns.
        let mut x = 0u64;
        for i in 0..1_000_000u64 {
            x = x.wrapping_mul(31).wrapping_add(i);
        }
        std::hint::black_box(x);
        assert!(matches!(meter.check(), Err(Stopped::TooComplex(_))));
        drop(meter);
        assert!(tiny.cpu_used() > Duration::ZERO);
    }
}
