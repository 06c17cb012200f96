//! A TLS-terminating proxy: TLS with a test certificate on the outside,
//! plain TCP to a listener the test already runs (an in-process service,
//! the OTLP receiver) on the inside. Clients see a real TLS server, with
//! the handshake, certificate and host-name checks they would do in
//! production.

use std::net::SocketAddr;

use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;
use tokio_rustls::TlsAcceptor;

use crate::pki::ServerCert;

pub struct TlsProxy {
    addr: SocketAddr,
    task: JoinHandle<()>,
}

impl TlsProxy {
    /// Listens on 127.0.0.1 (a free port) and forwards each connection,
    /// once its handshake succeeds, to `upstream`. `alpn` is what the
    /// server offers (`h2` for gRPC, `http/1.1` for HTTP/1 clients).
    pub async fn start(upstream: SocketAddr, cert: &ServerCert, alpn: &[&[u8]]) -> TlsProxy {
        let acceptor = TlsAcceptor::from(cert.server_config(alpn));
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let task = tokio::spawn(async move {
            loop {
                let Ok((client, _)) = listener.accept().await else { return };
                let acceptor = acceptor.clone();
                tokio::spawn(async move {
                    // A client that rejects the certificate ends the
                    // handshake; nothing is forwarded then.
                    let Ok(mut tls) = acceptor.accept(client).await else { return };
                    let Ok(mut server) = TcpStream::connect(upstream).await else { return };
                    let _ = tokio::io::copy_bidirectional(&mut tls, &mut server).await;
                });
            }
        });
        TlsProxy { addr, task }
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn port(&self) -> u16 {
        self.addr.port()
    }
}

impl Drop for TlsProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}
