//! The request body, counted as it is read: the limit holds on the bytes
//! that actually arrive, chunked or not, whatever Content-Length said.

use std::cell::Cell;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll};

use actix_web::error::PayloadError;
use actix_web::web::{self, Bytes};
use futures::{Stream, StreamExt};
use service_common::ApiError;
use service_common::request::too_large;

/// The payload, ending in an error as soon as more than `limit` bytes have
/// been read. actix-multipart reports that error as its own
/// (`MultipartError::Payload`); [`BodyLimit`] tells the two apart.
pub struct CountedBody {
    inner: web::Payload,
    read: usize,
    limit: usize,
    crossed: Rc<Cell<bool>>,
}

/// Whether a [`CountedBody`] stopped because its limit was crossed.
#[derive(Clone)]
pub struct BodyLimit {
    limit: usize,
    crossed: Rc<Cell<bool>>,
}

impl CountedBody {
    pub fn new(inner: web::Payload, limit: usize) -> (CountedBody, BodyLimit) {
        let crossed = Rc::new(Cell::new(false));
        (CountedBody { inner, read: 0, limit, crossed: crossed.clone() }, BodyLimit { limit, crossed })
    }
}

impl Stream for CountedBody {
    type Item = Result<Bytes, PayloadError>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        if this.crossed.get() {
            // Nothing more is read once the limit is crossed.
            return Poll::Ready(Some(Err(PayloadError::Overflow)));
        }
        match this.inner.poll_next_unpin(cx) {
            Poll::Ready(Some(Ok(chunk))) => {
                this.read = this.read.saturating_add(chunk.len());
                if this.read > this.limit {
                    this.crossed.set(true);
                    Poll::Ready(Some(Err(PayloadError::Overflow)))
                } else {
                    Poll::Ready(Some(Ok(chunk)))
                }
            }
            other => other,
        }
    }
}

impl BodyLimit {
    /// The answer to a failed read: 413 if the limit was crossed, else `otherwise`.
    pub fn or(&self, otherwise: ApiError) -> ApiError {
        if self.crossed.get() { too_large(self.limit) } else { otherwise }
    }
}
