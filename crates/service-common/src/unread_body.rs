//! Refusing a request before its body is read to the end, without then
//! reading the rest anyway.
//!
//! actix-http (3.20, `h1::dispatcher`) decides what to do with the unread
//! rest of a body when it writes the response, by whether the handler still
//! holds the body: a dropped *chunked* body is drained to its end, however
//! long that is, to keep the connection alive; a body still held makes it
//! answer `Connection: close` and close after a short linger
//! (`client_disconnect_timeout`), which is what it always does for an
//! unread Content-Length body. So a refusal carries the unread body inside
//! its response, alive until the response is written: a refused upload
//! costs what was read before the refusal, not what the client still wants
//! to send.

use std::any::Any;
use std::pin::Pin;
use std::task::{Context, Poll};

use actix_web::HttpResponse;
use actix_web::body::{BodySize, BoxBody, MessageBody};
use actix_web::web::Bytes;

use crate::ApiError;

/// `error` as a response that holds `unread` (the request's payload, or
/// whatever owns it) until the response has been written.
pub fn refuse_unread(error: ApiError, unread: impl Any) -> HttpResponse {
    let unread: Box<dyn Any> = Box::new(unread);
    HttpResponse::from_error(error).map_body(|_, body| BoxBody::new(HoldingBody { body, _unread: unread }))
}

/// A response body that keeps something alive until the body is dropped.
struct HoldingBody {
    body: BoxBody,
    _unread: Box<dyn Any>,
}

impl MessageBody for HoldingBody {
    type Error = Box<dyn std::error::Error>;

    fn size(&self) -> BodySize {
        self.body.size()
    }

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Bytes, Self::Error>>> {
        Pin::new(&mut self.get_mut().body).poll_next(cx)
    }
}
