//! A TCP proxy a test can cut and restore, to take Postgres or RabbitMQ away
//! from one service without stopping the broker every other test shares.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use tokio::io::copy_bidirectional;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

#[derive(Debug)]
pub struct TcpProxy {
    addr: SocketAddr,
    open: Arc<AtomicBool>,
    /// Bumped on every cut, so live connections drop.
    generation: watch::Sender<u64>,
    task: tokio::task::JoinHandle<()>,
}

impl TcpProxy {
    /// Starts forwarding from an ephemeral port on 127.0.0.1 to `upstream`.
    pub async fn start(upstream: SocketAddr) -> TcpProxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let open = Arc::new(AtomicBool::new(true));
        let (generation, _) = watch::channel(0u64);
        let task = {
            let open = open.clone();
            let generation = generation.clone();
            tokio::spawn(async move {
                loop {
                    let Ok((mut client, _)) = listener.accept().await else { continue };
                    if !open.load(Ordering::SeqCst) {
                        // Accept and drop: the client sees the connection reset,
                        // like a peer that is down.
                        drop(client);
                        continue;
                    }
                    let mut cut = generation.subscribe();
                    tokio::spawn(async move {
                        let Ok(mut server) = TcpStream::connect(upstream).await else { return };
                        tokio::select! {
                            _ = copy_bidirectional(&mut client, &mut server) => {}
                            _ = cut.changed() => {}
                        }
                    });
                }
            })
        };
        TcpProxy { addr, open, generation, task }
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Drops every live connection and refuses new ones.
    pub fn cut(&self) {
        self.open.store(false, Ordering::SeqCst);
        self.generation.send_modify(|g| *g += 1);
    }

    pub fn restore(&self) {
        self.open.store(true, Ordering::SeqCst);
    }
}

impl Drop for TcpProxy {
    fn drop(&mut self) {
        self.generation.send_modify(|g| *g += 1);
        self.task.abort();
    }
}
