//! The request body, counted as it is read: the limit holds on the bytes
//! that actually arrive, chunked or not, whatever Content-Length said; and a
//! client that stops sending does not keep its upload slot forever.

use std::cell::Cell;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll};
use std::time::Duration;

use actix_web::error::PayloadError;
use actix_web::web::{self, Bytes};
use futures::{FutureExt, Stream, StreamExt};
use service_common::request::too_large;
use service_common::{ApiError, ErrorCode};
use tokio::time::{Instant, Sleep};

/// The payload, ending in an error as soon as more than `limit` bytes have
/// been read, or when nothing arrived for `idle` while it was waited for.
/// actix-multipart reports that error as its own (`MultipartError::Payload`);
/// [`BodyStop`] tells them apart.
pub struct CountedBody {
    inner: web::Payload,
    read: usize,
    limit: usize,
    idle: Duration,
    /// Armed while the body is waited for, not while the handler is busy
    /// elsewhere (writing to the store): only the client's silence counts.
    idle_timer: Option<Pin<Box<Sleep>>>,
    stopped: Rc<Cell<Option<Stop>>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stop {
    TooLarge,
    Idle,
}

/// Why a [`CountedBody`] stopped, if it did.
#[derive(Clone)]
pub struct BodyStop {
    limit: usize,
    idle: Duration,
    stopped: Rc<Cell<Option<Stop>>>,
}

impl CountedBody {
    pub fn new(inner: web::Payload, limit: usize, idle: Duration) -> (CountedBody, BodyStop) {
        let stopped = Rc::new(Cell::new(None));
        let body = CountedBody { inner, read: 0, limit, idle, idle_timer: None, stopped: stopped.clone() };
        (body, BodyStop { limit, idle, stopped })
    }

    fn stop(&self, why: Stop) -> Poll<Option<Result<Bytes, PayloadError>>> {
        self.stopped.set(Some(why));
        Poll::Ready(Some(Err(match why {
            Stop::TooLarge => PayloadError::Overflow,
            Stop::Idle => PayloadError::Io(std::io::ErrorKind::TimedOut.into()),
        })))
    }
}

impl Stream for CountedBody {
    type Item = Result<Bytes, PayloadError>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        if let Some(why) = this.stopped.get() {
            // Nothing more is read once stopped.
            return this.stop(why);
        }
        match this.inner.poll_next_unpin(cx) {
            Poll::Ready(Some(Ok(chunk))) => {
                this.idle_timer = None;
                this.read = this.read.saturating_add(chunk.len());
                if this.read > this.limit { this.stop(Stop::TooLarge) } else { Poll::Ready(Some(Ok(chunk))) }
            }
            Poll::Pending => {
                let idle = this.idle;
                let timer =
                    this.idle_timer.get_or_insert_with(|| Box::pin(tokio::time::sleep_until(Instant::now() + idle)));
                match timer.poll_unpin(cx) {
                    Poll::Ready(()) => this.stop(Stop::Idle),
                    Poll::Pending => Poll::Pending,
                }
            }
            end_or_error => {
                this.idle_timer = None;
                end_or_error
            }
        }
    }
}

impl BodyStop {
    /// The answer to a failed read: 413 past the limit, 408 after a silent
    /// client, else `otherwise`.
    pub fn error_or(&self, otherwise: ApiError) -> ApiError {
        match self.stopped.get() {
            Some(Stop::TooLarge) => too_large(self.limit),
            Some(Stop::Idle) => ApiError::new(
                ErrorCode::RequestTimeout,
                format!("nothing of the body arrived for {} ms; send it again", self.idle.as_millis()),
            ),
            None => otherwise,
        }
    }
}
