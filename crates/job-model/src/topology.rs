//! RabbitMQ names (DESIGN.md, "RabbitMQ topology"); the `broker` crate
//! declares them. Every name can carry a namespace prefix (`DOCFLOW_NAMESPACE`), which is how
//! tests share one broker without seeing each other's messages.

use std::time::Duration;

use crate::JobPriority;

/// How many times the broker redelivers one message before dead-lettering it
/// by itself. Workers retry through the retry tiers, not through redelivery,
/// so this only trips on messages that crash every consumer that touches them
/// (the quorum-queue poison backstop of DESIGN.md).
pub const DELIVERY_LIMIT: i64 = 10;

/// Exponential backoff with jitter, rendered as retry-tier queues.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Delay before the first retry.
    pub base: Duration,
    /// No retry waits longer than this.
    pub cap: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy { base: Duration::from_secs(1), cap: Duration::from_secs(300) }
    }
}

impl RetryPolicy {
    /// Tier delays: base, 2·base, 4·base, … up to and including the cap.
    pub fn tiers(&self) -> Vec<Duration> {
        let mut tiers = Vec::new();
        let mut delay = self.base.max(Duration::from_millis(1));
        while delay < self.cap {
            tiers.push(delay);
            delay *= 2;
        }
        tiers.push(self.cap.max(self.base));
        tiers
    }

    /// The tier for retry number `retry` (1-based): exponential, capped.
    pub fn tier_for(&self, retry: u32) -> Duration {
        let tiers = self.tiers();
        let index = (retry.saturating_sub(1) as usize).min(tiers.len() - 1);
        tiers[index]
    }
}

/// The names every service agrees on, under one namespace.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Topology {
    namespace: String,
}

impl Topology {
    pub fn new(namespace: impl Into<String>) -> Self {
        Topology { namespace: namespace.into() }
    }

    pub fn namespace(&self) -> &str {
        &self.namespace
    }

    fn name(&self, base: &str) -> String {
        if self.namespace.is_empty() { base.to_owned() } else { format!("{}.{}", self.namespace, base) }
    }

    /// Direct exchange that routes jobs to their priority queue.
    pub fn jobs_exchange(&self) -> String {
        self.name("docflow.jobs")
    }

    pub fn job_queue(&self, priority: JobPriority) -> String {
        self.name(&format!("jobs.{}", priority.routing_key()))
    }

    pub fn dlq_exchange(&self) -> String {
        self.name("docflow.dlq")
    }

    pub fn dlq_queue(&self) -> String {
        self.name("jobs.dlq")
    }

    pub fn events_exchange(&self) -> String {
        self.name("docflow.events")
    }

    pub fn metrics_events_queue(&self) -> String {
        self.name("metrics.events")
    }

    /// A fanout exchange per tier: a message published to it keeps its
    /// original routing key, which is what the tier's dead-letter hop needs to
    /// land it back on the right priority queue.
    pub fn retry_exchange(&self, delay: Duration) -> String {
        self.name(&format!("docflow.retry.{}ms", delay.as_millis()))
    }

    pub fn retry_queue(&self, delay: Duration) -> String {
        self.name(&format!("jobs.retry.{}ms", delay.as_millis()))
    }

    /// The tier delay of one of this topology's retry exchanges, so that a
    /// process without the retry policy can still re-declare a tier it
    /// publishes to.
    pub fn retry_delay_of(&self, exchange: &str) -> Option<Duration> {
        let base = if self.namespace.is_empty() {
            exchange
        } else {
            exchange.strip_prefix(self.namespace.as_str())?.strip_prefix('.')?
        };
        let ms = base.strip_prefix("docflow.retry.")?.strip_suffix("ms")?;
        ms.parse().ok().map(Duration::from_millis)
    }

    pub fn exchange_names(&self, retry: Option<&RetryPolicy>) -> Vec<String> {
        let mut names = vec![self.jobs_exchange(), self.dlq_exchange(), self.events_exchange()];
        if let Some(policy) = retry {
            names.extend(policy.tiers().into_iter().map(|d| self.retry_exchange(d)));
        }
        names
    }

    pub fn queue_names(&self, retry: Option<&RetryPolicy>) -> Vec<String> {
        let mut names: Vec<String> = JobPriority::ALL.into_iter().map(|p| self.job_queue(p)).collect();
        names.push(self.dlq_queue());
        names.push(self.metrics_events_queue());
        if let Some(policy) = retry {
            names.extend(policy.tiers().into_iter().map(|d| self.retry_queue(d)));
        }
        names
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_exchanges_name_their_delay() {
        for namespace in ["", "t-1"] {
            let t = Topology::new(namespace);
            let exchange = t.retry_exchange(Duration::from_millis(1500));
            assert_eq!(t.retry_delay_of(&exchange), Some(Duration::from_millis(1500)));
            assert_eq!(t.retry_delay_of(&t.jobs_exchange()), None);
        }
        assert_eq!(Topology::new("a").retry_delay_of("b.docflow.retry.5ms"), None);
    }

    #[test]
    fn names_carry_the_namespace() {
        let t = Topology::new("t42");
        assert_eq!(t.job_queue(JobPriority::High), "t42.jobs.high");
        assert_eq!(t.jobs_exchange(), "t42.docflow.jobs");
        assert_eq!(Topology::new("").dlq_queue(), "jobs.dlq");
    }

    #[test]
    fn tiers_double_up_to_the_cap() {
        let policy = RetryPolicy { base: Duration::from_secs(1), cap: Duration::from_secs(10) };
        let secs: Vec<u64> = policy.tiers().iter().map(|d| d.as_secs()).collect();
        assert_eq!(secs, vec![1, 2, 4, 8, 10]);
        assert_eq!(policy.tier_for(1), Duration::from_secs(1));
        assert_eq!(policy.tier_for(3), Duration::from_secs(4));
        assert_eq!(policy.tier_for(50), Duration::from_secs(10));
    }
}
