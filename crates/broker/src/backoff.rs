//! Waiting between attempts: capped exponential backoff with jitter
//! (backon's), used by every reconnect loop and every "retry the database
//! until it answers" loop, always racing a cancellation token.

use std::future::Future;
use std::time::Duration;

use backon::{BackoffBuilder, ExponentialBackoff, ExponentialBuilder};
use tokio_util::sync::CancellationToken;

/// Delays that double from `min` up to `max`, each with up to its own
/// length again added at random, so that many processes that lost the same
/// broker do not all come back in the same instant.
#[derive(Debug)]
pub struct Backoff {
    builder: ExponentialBuilder,
    delays: ExponentialBackoff,
}

impl Backoff {
    pub fn new(min: Duration, max: Duration) -> Self {
        let builder =
            ExponentialBuilder::new().with_min_delay(min).with_max_delay(max).with_jitter().without_max_times();
        Backoff { delays: builder.build(), builder }
    }

    /// For reconnecting to the broker.
    pub fn reconnect() -> Self {
        Backoff::new(Duration::from_millis(200), Duration::from_secs(10))
    }

    /// For retrying a database step while Postgres is away.
    pub fn database() -> Self {
        Backoff::new(Duration::from_millis(100), Duration::from_secs(5))
    }

    pub fn next_delay(&mut self) -> Duration {
        // Unbounded (`without_max_times`): the iterator never ends.
        self.delays.next().unwrap_or(Duration::from_secs(1))
    }

    /// Back to the shortest delay, after a success.
    pub fn reset(&mut self) {
        self.delays = self.builder.build();
    }

    /// Sleeps the next delay. False if `cancel` fired first.
    pub async fn wait(&mut self, cancel: &CancellationToken) -> bool {
        let delay = self.next_delay();
        tokio::select! {
            _ = tokio::time::sleep(delay) => true,
            _ = cancel.cancelled() => false,
        }
    }
}

/// Runs `step` until it succeeds or fails in a way `transient` says will not
/// pass, waiting with [`Backoff::database`] in between. `None` when `cancel`
/// fired while waiting.
pub async fn retry_transient<T, E, F, Fut>(
    cancel: &CancellationToken,
    what: &str,
    transient: impl Fn(&E) -> bool,
    mut step: F,
) -> Option<Result<T, E>>
where
    E: std::fmt::Display,
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, E>>,
{
    let mut backoff = Backoff::database();
    loop {
        match step().await {
            Err(error) if transient(&error) => {
                tracing::warn!(%error, "{what} failed; retrying");
                if !backoff.wait(cancel).await {
                    return None;
                }
            }
            other => return Some(other),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_grow_to_the_cap_with_jitter_and_reset() {
        let mut b = Backoff::new(Duration::from_millis(100), Duration::from_secs(1));
        let first = b.next_delay();
        assert!(first >= Duration::from_millis(100) && first <= Duration::from_millis(200), "{first:?}");
        let late: Vec<Duration> = (0..20).map(|_| b.next_delay()).collect();
        assert!(late.iter().all(|d| *d <= Duration::from_secs(2)), "capped (plus jitter): {late:?}");
        assert!(late.iter().any(|d| *d >= Duration::from_secs(1)), "reaches the cap: {late:?}");
        b.reset();
        assert!(b.next_delay() <= Duration::from_millis(200));
    }

    #[tokio::test]
    async fn retry_stops_on_success_on_a_lasting_error_and_on_cancel() {
        let cancel = CancellationToken::new();
        let mut calls = 0;
        let ok = retry_transient(
            &cancel,
            "step",
            |_: &String| true,
            || {
                calls += 1;
                let result = if calls < 3 { Err("down".to_owned()) } else { Ok(calls) };
                async move { result }
            },
        )
        .await;
        assert_eq!(ok, Some(Ok(3)));

        let lasting =
            retry_transient(&cancel, "step", |e: &String| e == "down", || async { Err::<(), _>("bug".to_owned()) })
                .await;
        assert_eq!(lasting, Some(Err("bug".to_owned())));

        cancel.cancel();
        let cancelled =
            retry_transient(&cancel, "step", |_: &String| true, || async { Err::<(), _>("down".to_owned()) }).await;
        assert_eq!(cancelled, None);
    }
}
