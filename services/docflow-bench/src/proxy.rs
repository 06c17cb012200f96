//! Protocol-aware counting proxies: one per service process in front of
//! Postgres and one in front of RabbitMQ, so the counts are per process.
//! Bytes are forwarded untouched; a parser walks the message boundaries
//! alongside and counts what each process asked for.
//!
//! Postgres (frontend messages, protocol 3.0): Execute ('E') and simple
//! Query ('Q') are statements, Sync ('S') and Query end a round trip, BEGIN
//! opens an explicit transaction, and a Sync outside one ends an implicit
//! transaction.
//! AMQP 0-9-1 (frames: type, channel, size, payload, 0xCE): basic.publish,
//! basic.ack / nack / reject from the client (consumer settlements; with
//! `multiple` one frame settles many), and from the server basic.deliver
//! and basic.ack / nack (publisher confirms).

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use serde::Serialize;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpStream};

#[derive(Debug, Default)]
pub struct PgCounts {
    pub connections: AtomicU64,
    pub statements: AtomicU64,
    pub round_trips: AtomicU64,
    pub explicit_transactions: AtomicU64,
    pub implicit_transactions: AtomicU64,
    pub parses: AtomicU64,
    /// A Sync with nothing before it: sqlx's connection check on every pool
    /// acquire (`test_before_acquire`), a round trip of its own.
    pub pings: AtomicU64,
    pub bytes_sent: AtomicU64,
}

#[derive(Debug, Default)]
pub struct AmqpCounts {
    pub connections: AtomicU64,
    pub publishes: AtomicU64,
    /// basic.ack frames from the client (consumer acks).
    pub ack_frames: AtomicU64,
    /// Of those, acks with the `multiple` bit set.
    pub multiple_acks: AtomicU64,
    pub nacks_rejects: AtomicU64,
    pub deliveries: AtomicU64,
    /// basic.ack frames from the server (publisher confirms).
    pub confirm_frames: AtomicU64,
    pub frames_sent: AtomicU64,
    pub frames_received: AtomicU64,
}

/// The counts of one process, per job.
#[derive(Debug, Clone, Serialize, Default)]
pub struct ProcessCounts {
    pub pg_connections: u64,
    pub pg_statements: f64,
    pub pg_round_trips: f64,
    pub pg_transactions: f64,
    pub pg_explicit_transactions: f64,
    pub pg_parses: f64,
    pub pg_pings: f64,
    pub amqp_connections: u64,
    pub amqp_publishes: f64,
    pub amqp_ack_frames: f64,
    pub amqp_multiple_acks: f64,
    pub amqp_deliveries: f64,
    pub amqp_confirm_frames: f64,
    pub amqp_frames_out: f64,
    pub amqp_frames_in: f64,
}

/// A process's pair of proxies.
pub struct ProcessProxies {
    pub pg_addr: SocketAddr,
    pub amqp_addr: SocketAddr,
    pub pg: Arc<PgCounts>,
    pub amqp: Arc<AmqpCounts>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Drop for ProcessProxies {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

impl ProcessProxies {
    pub async fn start(pg_upstream: SocketAddr, amqp_upstream: SocketAddr) -> std::io::Result<ProcessProxies> {
        let pg = Arc::new(PgCounts::default());
        let amqp = Arc::new(AmqpCounts::default());
        let (pg_addr, t1) = listen(pg_upstream, {
            let pg = pg.clone();
            move |c, s| {
                let pg = pg.clone();
                pg.connections.fetch_add(1, Ordering::Relaxed);
                let (cr, cw) = c.into_split();
                let (sr, sw) = s.into_split();
                tokio::spawn(pump(cr, sw, PgFrontend::new(pg)));
                tokio::spawn(pump(sr, cw, Ignore));
            }
        })
        .await?;
        let (amqp_addr, t2) = listen(amqp_upstream, {
            let amqp = amqp.clone();
            move |c, s| {
                amqp.connections.fetch_add(1, Ordering::Relaxed);
                let (cr, cw) = c.into_split();
                let (sr, sw) = s.into_split();
                tokio::spawn(pump(cr, sw, AmqpFrames::new(amqp.clone(), true)));
                tokio::spawn(pump(sr, cw, AmqpFrames::new(amqp.clone(), false)));
            }
        })
        .await?;
        Ok(ProcessProxies { pg_addr, amqp_addr, pg, amqp, tasks: vec![t1, t2] })
    }

    /// Snapshot of the counters, divided by `jobs`.
    pub fn per_job(&self, jobs: usize) -> ProcessCounts {
        let n = jobs.max(1) as f64;
        let g = |a: &AtomicU64| a.load(Ordering::Relaxed);
        let r = |a: &AtomicU64| (g(a) as f64 / n * 100.0).round() / 100.0;
        let explicit = g(&self.pg.explicit_transactions);
        let implicit = g(&self.pg.implicit_transactions);
        ProcessCounts {
            pg_connections: g(&self.pg.connections),
            pg_statements: r(&self.pg.statements),
            pg_round_trips: r(&self.pg.round_trips),
            pg_transactions: ((explicit + implicit) as f64 / n * 100.0).round() / 100.0,
            pg_explicit_transactions: r(&self.pg.explicit_transactions),
            pg_parses: r(&self.pg.parses),
            pg_pings: r(&self.pg.pings),
            amqp_connections: g(&self.amqp.connections),
            amqp_publishes: r(&self.amqp.publishes),
            amqp_ack_frames: r(&self.amqp.ack_frames),
            amqp_multiple_acks: r(&self.amqp.multiple_acks),
            amqp_deliveries: r(&self.amqp.deliveries),
            amqp_confirm_frames: r(&self.amqp.confirm_frames),
            amqp_frames_out: r(&self.amqp.frames_sent),
            amqp_frames_in: r(&self.amqp.frames_received),
        }
    }

    /// Resets every counter (after a warm-up).
    pub fn reset(&self) {
        for a in [
            &self.pg.statements,
            &self.pg.round_trips,
            &self.pg.explicit_transactions,
            &self.pg.implicit_transactions,
            &self.pg.parses,
            &self.pg.pings,
            &self.pg.bytes_sent,
            &self.amqp.publishes,
            &self.amqp.ack_frames,
            &self.amqp.multiple_acks,
            &self.amqp.nacks_rejects,
            &self.amqp.deliveries,
            &self.amqp.confirm_frames,
            &self.amqp.frames_sent,
            &self.amqp.frames_received,
        ] {
            a.store(0, Ordering::Relaxed);
        }
    }
}

async fn listen<F>(upstream: SocketAddr, on_pair: F) -> std::io::Result<(SocketAddr, tokio::task::JoinHandle<()>)>
where
    F: Fn(TcpStream, TcpStream) + Send + 'static,
{
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let task = tokio::spawn(async move {
        loop {
            let Ok((client, _)) = listener.accept().await else { continue };
            let Ok(server) = TcpStream::connect(upstream).await else { continue };
            let _ = client.set_nodelay(true);
            let _ = server.set_nodelay(true);
            on_pair(client, server);
        }
    });
    Ok((addr, task))
}

/// Sees the bytes flowing one way.
trait Observer: Send + 'static {
    fn feed(&mut self, bytes: &[u8]);
}

struct Ignore;
impl Observer for Ignore {
    fn feed(&mut self, _: &[u8]) {}
}

async fn pump(mut from: OwnedReadHalf, mut to: OwnedWriteHalf, mut observer: impl Observer) {
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = match from.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        if to.write_all(&buf[..n]).await.is_err() {
            break;
        }
        observer.feed(&buf[..n]);
    }
    let _ = to.shutdown().await;
}

/// Collects bytes until whole messages are there; `header` is how many bytes
/// tell a message's length, `length` reads it.
struct Framer {
    pending: Vec<u8>,
}

impl Framer {
    /// Appends `bytes` and hands every complete message to `each`;
    /// `size(pending)` returns the full length of the first message once its
    /// header is in.
    fn feed(&mut self, bytes: &[u8], size: impl Fn(&[u8]) -> Option<usize>, mut each: impl FnMut(&[u8])) {
        self.pending.extend_from_slice(bytes);
        let mut at = 0;
        while let Some(len) = size(&self.pending[at..]) {
            if self.pending.len() - at < len || len == 0 {
                break;
            }
            each(&self.pending[at..at + len]);
            at += len;
        }
        self.pending.drain(..at);
    }
}

fn be32(b: &[u8]) -> usize {
    u32::from_be_bytes([b[0], b[1], b[2], b[3]]) as usize
}

struct PgFrontend {
    counts: Arc<PgCounts>,
    framer: Framer,
    /// Before the startup message, messages carry no type byte.
    started: bool,
    in_transaction: bool,
    /// Parse, Bind, Describe or Execute since the last Sync: the Sync ends
    /// a transaction of its own unless one is open (Postgres runs even a
    /// lone Parse in an implicit transaction, and counts it).
    work_since_sync: bool,
}

impl PgFrontend {
    fn new(counts: Arc<PgCounts>) -> PgFrontend {
        PgFrontend {
            counts,
            framer: Framer { pending: Vec::new() },
            started: false,
            in_transaction: false,
            work_since_sync: false,
        }
    }

    fn on_sql(&mut self, sql: &[u8]) {
        let head: String = String::from_utf8_lossy(&sql[..sql.len().min(16)]).trim_start().to_ascii_uppercase();
        if head.starts_with("BEGIN") || head.starts_with("START TRANSACTION") {
            self.in_transaction = true;
            self.counts.explicit_transactions.fetch_add(1, Ordering::Relaxed);
        } else if head.starts_with("COMMIT") || head.starts_with("ROLLBACK") || head.starts_with("END") {
            self.in_transaction = false;
        }
    }
}

impl Observer for PgFrontend {
    fn feed(&mut self, bytes: &[u8]) {
        self.counts.bytes_sent.fetch_add(bytes.len() as u64, Ordering::Relaxed);
        let mut messages: Vec<Vec<u8>> = Vec::new();
        if !self.started {
            let mut untyped = Vec::new();
            self.framer.feed(bytes, |p| (p.len() >= 4).then(|| be32(p)), |m| untyped.push(m.to_vec()));
            for m in untyped {
                // SSLRequest / GSSENCRequest / CancelRequest come before (or
                // instead of) the startup message, which ends this mode.
                let code = if m.len() >= 8 { be32(&m[4..8]) } else { 0 };
                // 80877102 cancel, 80877103 SSL, 80877104 GSS encryption.
                if !(80877102..=80877104).contains(&code) {
                    self.started = true;
                }
            }
            return;
        }
        self.framer.feed(bytes, |p| (p.len() >= 5).then(|| 1 + be32(&p[1..5])), |m| messages.push(m.to_vec()));
        for m in messages {
            let body = &m[5..];
            match m[0] {
                b'Q' => {
                    self.counts.statements.fetch_add(1, Ordering::Relaxed);
                    self.counts.round_trips.fetch_add(1, Ordering::Relaxed);
                    let was_in = self.in_transaction;
                    self.on_sql(body);
                    if !was_in && !self.in_transaction {
                        // A lone simple query is its own transaction.
                        let head = String::from_utf8_lossy(&body[..body.len().min(8)]).to_ascii_uppercase();
                        if !head.starts_with("COMMIT") && !head.starts_with("ROLLBACK") {
                            self.counts.implicit_transactions.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                }
                b'P' => {
                    self.work_since_sync = true;
                    self.counts.parses.fetch_add(1, Ordering::Relaxed);
                    // Parse: statement name (C string), then the SQL.
                    if let Some(nul) = body.iter().position(|b| *b == 0) {
                        let sql = &body[nul + 1..];
                        self.on_sql(sql);
                    }
                }
                b'E' => {
                    self.counts.statements.fetch_add(1, Ordering::Relaxed);
                    self.work_since_sync = true;
                }
                b'B' | b'D' => self.work_since_sync = true,
                b'S' => {
                    self.counts.round_trips.fetch_add(1, Ordering::Relaxed);
                    if !self.work_since_sync {
                        self.counts.pings.fetch_add(1, Ordering::Relaxed);
                    } else if !self.in_transaction {
                        self.counts.implicit_transactions.fetch_add(1, Ordering::Relaxed);
                    }
                    self.work_since_sync = false;
                }
                _ => {}
            }
        }
    }
}

struct AmqpFrames {
    counts: Arc<AmqpCounts>,
    framer: Framer,
    from_client: bool,
    /// The client opens with the 8-byte protocol header.
    header_left: usize,
}

impl AmqpFrames {
    fn new(counts: Arc<AmqpCounts>, from_client: bool) -> AmqpFrames {
        AmqpFrames {
            counts,
            framer: Framer { pending: Vec::new() },
            from_client,
            header_left: if from_client { 8 } else { 0 },
        }
    }
}

const BASIC: u16 = 60;

impl Observer for AmqpFrames {
    fn feed(&mut self, mut bytes: &[u8]) {
        if self.header_left > 0 {
            let skip = self.header_left.min(bytes.len());
            self.header_left -= skip;
            bytes = &bytes[skip..];
        }
        let mut frames: Vec<(u8, u16, u16, u8)> = Vec::new();
        // type(1) channel(2) size(4) payload(size) frame-end(1)
        self.framer.feed(
            bytes,
            |p| (p.len() >= 7).then(|| 8 + be32(&p[3..7])),
            |f| {
                let kind = f[0];
                let (class, method) = if kind == 1 && f.len() >= 11 {
                    (u16::from_be_bytes([f[7], f[8]]), u16::from_be_bytes([f[9], f[10]]))
                } else {
                    (0, 0)
                };
                // basic.ack: delivery-tag (8 bytes) then bits; bit 0 is `multiple`.
                let bits = if f.len() >= 20 { f[19] } else { 0 };
                frames.push((kind, class, method, bits));
            },
        );
        let c = &self.counts;
        for (kind, class, method, bits) in frames {
            if self.from_client {
                c.frames_sent.fetch_add(1, Ordering::Relaxed);
            } else {
                c.frames_received.fetch_add(1, Ordering::Relaxed);
            }
            if kind != 1 || class != BASIC {
                continue;
            }
            match (self.from_client, method) {
                (true, 40) => c.publishes.fetch_add(1, Ordering::Relaxed),
                (true, 80) => {
                    if bits & 1 == 1 {
                        c.multiple_acks.fetch_add(1, Ordering::Relaxed);
                    }
                    c.ack_frames.fetch_add(1, Ordering::Relaxed)
                }
                (true, 90 | 120) => c.nacks_rejects.fetch_add(1, Ordering::Relaxed),
                (false, 60) => c.deliveries.fetch_add(1, Ordering::Relaxed),
                (false, 80 | 120) => c.confirm_frames.fetch_add(1, Ordering::Relaxed),
                _ => 0,
            };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pg_msg(kind: u8, body: &[u8]) -> Vec<u8> {
        let mut m = vec![kind];
        m.extend_from_slice(&((body.len() + 4) as u32).to_be_bytes());
        m.extend_from_slice(body);
        m
    }

    #[test]
    fn counts_postgres_statements_and_transactions_across_split_reads() {
        let counts = Arc::new(PgCounts::default());
        let mut fe = PgFrontend::new(counts.clone());
        let mut stream = Vec::new();
        // startup message: length, protocol 3.0, "user\0postgres\0\0"
        let startup_body = b"\x00\x03\x00\x00user\x00postgres\x00\x00";
        stream.extend_from_slice(&((startup_body.len() + 4) as u32).to_be_bytes());
        stream.extend_from_slice(startup_body);
        stream.extend(pg_msg(b'Q', b"BEGIN\0"));
        stream.extend(pg_msg(b'P', b"\0UPDATE jobs SET x = 1\0\0\0"));
        stream.extend(pg_msg(b'B', b"\0\0\0\0\0\0\0\0"));
        stream.extend(pg_msg(b'E', b"\0\0\0\0\0"));
        stream.extend(pg_msg(b'S', b""));
        stream.extend(pg_msg(b'Q', b"COMMIT\0"));
        stream.extend(pg_msg(b'E', b"\0\0\0\0\0"));
        stream.extend(pg_msg(b'S', b""));
        stream.extend(pg_msg(b'S', b""));
        for chunk in stream.chunks(3) {
            fe.feed(chunk);
        }
        let g = |a: &AtomicU64| a.load(Ordering::Relaxed);
        assert_eq!(g(&counts.statements), 4);
        assert_eq!(g(&counts.round_trips), 5);
        assert_eq!(g(&counts.pings), 1);
        assert_eq!(g(&counts.explicit_transactions), 1);
        assert_eq!(g(&counts.implicit_transactions), 1);
        assert_eq!(g(&counts.parses), 1);
    }

    #[test]
    fn counts_amqp_publishes_and_multiple_acks() {
        let counts = Arc::new(AmqpCounts::default());
        let mut client = AmqpFrames::new(counts.clone(), true);
        let method = |class: u16, method: u16, args: &[u8]| {
            let mut payload = Vec::new();
            payload.extend_from_slice(&class.to_be_bytes());
            payload.extend_from_slice(&method.to_be_bytes());
            payload.extend_from_slice(args);
            let mut f = vec![1u8, 0, 1];
            f.extend_from_slice(&(payload.len() as u32).to_be_bytes());
            f.extend(payload);
            f.push(0xCE);
            f
        };
        let mut stream = b"AMQP\x00\x00\x09\x01".to_vec();
        stream.extend(method(60, 40, b"\0\0\x04jobs\x01k\0"));
        stream.extend(method(60, 80, &[0, 0, 0, 0, 0, 0, 0, 7, 1]));
        stream.extend(method(60, 80, &[0, 0, 0, 0, 0, 0, 0, 8, 0]));
        for chunk in stream.chunks(5) {
            client.feed(chunk);
        }
        let g = |a: &AtomicU64| a.load(Ordering::Relaxed);
        assert_eq!(g(&counts.publishes), 1);
        assert_eq!(g(&counts.ack_frames), 2);
        assert_eq!(g(&counts.multiple_acks), 1);
        assert_eq!(g(&counts.frames_sent), 3);
    }
}
