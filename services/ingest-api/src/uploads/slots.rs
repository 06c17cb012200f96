//! How many uploads are received at once.
//!
//! Past `MAX_CONCURRENT_UPLOADS`, an upload waits up to
//! `UPLOAD_QUEUE_TIMEOUT_MS` for a slot, then gets 503 `server_busy` with
//! `Retry-After`. That is the backpressure a Celery or Sidekiq user expects
//! from a queue's front door: a short burst is absorbed rather than bounced,
//! and a sustained overload is pushed back to the client (whose retry with
//! backoff is the right place to wait) rather than held as open connections
//! and buffers in the server. The wait happens before the body is read, so
//! a waiting upload costs a connection, not memory. JSON submits take no
//! slot: their bodies are small and bounded by `MAX_JSON_BODY_BYTES`.

use std::sync::Arc;
use std::time::Duration;

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::gauge::Gauge;
use service_common::{ApiError, ErrorCode};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// How soon a turned-away client should try again.
const RETRY_AFTER: Duration = Duration::from_secs(2);

/// The slots, and the metrics that show how full they are.
#[derive(Clone)]
pub struct UploadSlots {
    semaphore: Arc<Semaphore>,
    queue_timeout: Duration,
    pub in_flight: Gauge,
    pub waiting: Gauge,
    pub refused: Counter,
}

/// One upload's slot; freed when dropped.
pub struct UploadSlot {
    _permit: OwnedSemaphorePermit,
    in_flight: Gauge,
}

impl UploadSlots {
    pub fn new(max_concurrent: usize, queue_timeout: Duration) -> UploadSlots {
        UploadSlots {
            semaphore: Arc::new(Semaphore::new(max_concurrent)),
            queue_timeout,
            in_flight: Gauge::default(),
            waiting: Gauge::default(),
            refused: Counter::default(),
        }
    }

    /// A slot, after waiting at most the queue timeout; 503 `server_busy` otherwise.
    pub async fn acquire(&self) -> Result<UploadSlot, ApiError> {
        let permit = match self.semaphore.clone().try_acquire_owned() {
            Ok(permit) => Some(permit),
            Err(_) if self.queue_timeout.is_zero() => None,
            Err(_) => {
                let _waiting = GaugeGuard::inc(&self.waiting);
                tokio::time::timeout(self.queue_timeout, self.semaphore.clone().acquire_owned())
                    .await
                    .ok()
                    .and_then(Result::ok)
            }
        };
        let Some(permit) = permit else {
            self.refused.inc();
            return Err(ApiError::new(
                ErrorCode::ServerBusy,
                "too many uploads are being received right now; retry after the Retry-After delay",
            )
            .retry_after(RETRY_AFTER));
        };
        self.in_flight.inc();
        Ok(UploadSlot { _permit: permit, in_flight: self.in_flight.clone() })
    }
}

impl Drop for UploadSlot {
    fn drop(&mut self) {
        self.in_flight.dec();
    }
}

/// Counts a waiting upload for as long as it waits, even if its client
/// gives up (the future is dropped) meanwhile.
struct GaugeGuard(Gauge);

impl GaugeGuard {
    fn inc(gauge: &Gauge) -> GaugeGuard {
        gauge.inc();
        GaugeGuard(gauge.clone())
    }
}

impl Drop for GaugeGuard {
    fn drop(&mut self) {
        self.0.dec();
    }
}
