//! Multipart bodies written by hand, for the uploads reqwest's `Form` cannot
//! send: chunked bodies that never end, bodies fed piece by piece while the
//! test watches the server, and malformed ones.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use bytes::Bytes;
use futures::{Stream, StreamExt};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::helpers::{API_KEY, TestApp};

pub const BOUNDARY: &str = "docflow-test-boundary-7MA4YWxkTrZu0gW";

pub fn content_type() -> String {
    format!("multipart/form-data; boundary={BOUNDARY}")
}

/// One complete text part.
pub fn text_part(name: &str, value: &str) -> Vec<u8> {
    format!("--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"{name}\"\r\n\r\n{value}\r\n").into_bytes()
}

/// The head of a file part; its bytes follow.
pub fn file_head(filename: &str) -> Vec<u8> {
    format!(
        "--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{filename}\"\r\n\
         Content-Type: application/octet-stream\r\n\r\n"
    )
    .into_bytes()
}

/// What ends the file part and the form.
pub fn closing() -> Vec<u8> {
    format!("\r\n--{BOUNDARY}--\r\n").into_bytes()
}

/// Bytes that look like a document and never repeat in a way that could
/// hide a misplaced chunk (a counter through a simple mixing function).
pub fn document_bytes(len: usize) -> Vec<u8> {
    (0..len as u64)
        .map(|i| {
            let x = i.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ (i >> 7);
            (x >> 32) as u8
        })
        .collect()
}

/// What the test can see of an endless body: how much the client pulled,
/// and whether the client has given up on sending it (the stream dropped,
/// which happens once the server closes the connection).
#[derive(Clone, Default)]
pub struct Sent {
    pub pulled: Arc<AtomicU64>,
    pub dropped: Arc<AtomicBool>,
}

struct SetOnDrop(Arc<AtomicBool>);

impl Drop for SetOnDrop {
    fn drop(&mut self) {
        self.0.store(true, Ordering::SeqCst);
    }
}

/// `head`, then `chunk` forever. A server that reads a request to its end
/// before answering never answers this one.
pub fn endless(head: Vec<u8>, chunk: Vec<u8>) -> (impl Stream<Item = Result<Bytes, std::io::Error>>, Sent) {
    let sent = Sent::default();
    let guard = SetOnDrop(sent.dropped.clone());
    let pulled = sent.pulled.clone();
    let chunk = Bytes::from(chunk);
    let stream =
        futures::stream::once(async move { Ok(Bytes::from(head)) }).chain(futures::stream::repeat_with(move || {
            let _keep = &guard;
            pulled.fetch_add(chunk.len() as u64, Ordering::Relaxed);
            Ok(chunk.clone())
        }));
    (stream, sent)
}

/// `POST /api/documents` with a chunked (streamed) body.
pub fn streamed<S>(app: &TestApp, body: S) -> reqwest::RequestBuilder
where
    S: Stream<Item = Result<Bytes, std::io::Error>> + Send + 'static,
{
    app.http
        .post(app.url("/api/documents"))
        .bearer_auth(API_KEY)
        .header("content-type", content_type())
        .body(reqwest::Body::wrap_stream(body))
}

/// A response read off a raw socket.
pub struct RawResponse {
    pub status: u16,
    pub head: String,
    pub body: serde_json::Value,
}

/// Writes `head` (a request head without its final blank line is not
/// accepted: pass it whole) and `body_prefix` on a fresh connection, sends
/// nothing more, and reads the answer. A server that waits for the body
/// Content-Length announces never answers.
pub async fn raw_request(app: &TestApp, head: &str, body_prefix: &[u8]) -> RawResponse {
    let addr = app.base.trim_start_matches("http://").to_owned();
    let mut socket = tokio::net::TcpStream::connect(&addr).await.unwrap();
    socket.write_all(head.as_bytes()).await.unwrap();
    socket.write_all(body_prefix).await.unwrap();
    let mut received = Vec::new();
    let mut buf = [0u8; 8192];
    let head_end = loop {
        let n = tokio::time::timeout(std::time::Duration::from_secs(20), socket.read(&mut buf))
            .await
            .expect("the server answered before the body was sent")
            .unwrap();
        assert!(n > 0, "the server closed the connection without answering: {:?}", String::from_utf8_lossy(&received));
        received.extend_from_slice(&buf[..n]);
        if let Some(at) = received.windows(4).position(|w| w == b"\r\n\r\n") {
            break at + 4;
        }
    };
    let head = String::from_utf8_lossy(&received[..head_end]).into_owned();
    let status = head.split(' ').nth(1).and_then(|s| s.parse().ok()).expect("a status line");
    let length: usize = head
        .lines()
        .find_map(|l| l.to_ascii_lowercase().strip_prefix("content-length:").map(|v| v.trim().parse().unwrap()))
        .expect("error answers carry a Content-Length");
    while received.len() < head_end + length {
        let n = socket.read(&mut buf).await.unwrap();
        assert!(n > 0, "the answer was cut short");
        received.extend_from_slice(&buf[..n]);
    }
    let body = serde_json::from_slice(&received[head_end..head_end + length]).expect("a JSON body");
    RawResponse { status, head, body }
}
