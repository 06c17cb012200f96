//! Local servers that speak the cloud blob-store protocols, for tests that
//! run the services against S3 and Azure Blob for real: moto's S3 server and
//! Azurite's blob service, each started by the test on a free port with its
//! own data directory, its bucket or container created, and stopped on drop.
//!
//! `scripts/ensure-blob-servers.sh` (run by `make test`) installs both into
//! `$DOCFLOW_BLOB_SERVERS_DIR` (default `~/.cache/docflow/blob-servers`).
//! A test that cannot find them fails with that hint; it never skips.
//!
//! Outages: Azurite keeps its blobs on disk, so an outage is the process
//! stopped and started again on the same port and directory. moto keeps
//! everything in memory (a restart would lose the documents), so its outage
//! is a cut at a TCP proxy in front of it: the services see connections
//! dropped and refused, the objects survive.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use hmac::{Hmac, Mac};
use object_store::aws::AmazonS3Builder;
use object_store::azure::MicrosoftAzureBuilder;
use object_store::{Certificate, ClientOptions, ObjectStore};
use sha2::Sha256;

use crate::process::free_port;
use crate::{TcpProxy, eventually, unique_suffix};

/// Where the install script puts the servers.
pub fn servers_dir() -> PathBuf {
    if let Ok(dir) = std::env::var("DOCFLOW_BLOB_SERVERS_DIR") {
        return PathBuf::from(dir);
    }
    let home = std::env::var("HOME").unwrap_or_else(|_| "/root".into());
    Path::new(&home).join(".cache/docflow/blob-servers")
}

fn installed(relative: &str) -> PathBuf {
    let path = servers_dir().join(relative);
    assert!(path.exists(), "{} is missing: run scripts/ensure-blob-servers.sh (make test does)", path.display());
    path
}

fn scratch_dir(kind: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("docflow-{kind}-{}", unique_suffix()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// A running child process, its output in a log file, killed on drop.
struct Server {
    child: Option<Child>,
    log: PathBuf,
}

impl Server {
    fn spawn(command: &mut Command, log: PathBuf) -> Server {
        let out = std::fs::OpenOptions::new().create(true).append(true).open(&log).unwrap();
        let child = command
            .stdin(Stdio::null())
            .stdout(out.try_clone().unwrap())
            .stderr(out)
            .spawn()
            .unwrap_or_else(|e| panic!("starting {command:?}: {e}"));
        Server { child: Some(child), log }
    }

    /// SIGTERM, so the server saves what it holds, then waits for the exit.
    fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = Command::new("kill").args(["-TERM", &child.id().to_string()]).status();
            for _ in 0..200 {
                if child.try_wait().ok().flatten().is_some() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Waits until something answers HTTP on `port`.
async fn answering(port: u16, what: &str, log: &Path) {
    let http = reqwest::Client::builder().timeout(Duration::from_secs(2)).build().unwrap();
    let url = format!("http://127.0.0.1:{port}/");
    let what = format!("{what} on port {port} (log: {})", log.display());
    eventually(Duration::from_secs(60), &what, || async { http.get(&url).send().await.ok().map(|_| ()) }).await;
}

/// moto's S3 server behind a proxy that can cut it off.
pub struct S3Server {
    server: Server,
    port: u16,
    proxy: TcpProxy,
    pub bucket: String,
    pub dir: PathBuf,
    ca: Option<PathBuf>,
}

impl S3Server {
    /// Starts moto on a free port and creates `bucket`.
    pub async fn start(bucket: &str) -> S3Server {
        Self::start_with(bucket, false).await
    }

    /// Starts moto over https, with a certificate for 127.0.0.1 signed by a
    /// CA made for the test ([`S3Server::ca_file`]), and creates `bucket`.
    pub async fn start_tls(bucket: &str) -> S3Server {
        Self::start_with(bucket, true).await
    }

    async fn start_with(bucket: &str, tls: bool) -> S3Server {
        let bin = installed("venv/bin/moto_server");
        let dir = scratch_dir("moto");
        let port = free_port();
        let mut command = Command::new(bin);
        command.args(["-H", "127.0.0.1", "-p", &port.to_string()]).current_dir(&dir);
        let ca = if tls {
            let (ca, cert, key) = make_certificates(&dir);
            command.arg("--ssl-cert").arg(cert).arg("--ssl-key").arg(key);
            Some(ca)
        } else {
            None
        };
        let server = Server::spawn(&mut command, dir.join("moto.log"));
        let scheme = if tls { "https" } else { "http" };
        let mut http = reqwest::Client::builder().timeout(Duration::from_secs(2));
        if let Some(ca) = &ca {
            let pem = std::fs::read(ca).unwrap();
            http = http.add_root_certificate(reqwest::Certificate::from_pem(&pem).unwrap());
        }
        let http = http.build().unwrap();
        let root = format!("{scheme}://127.0.0.1:{port}/");
        let what = format!("moto_server on port {port} (log: {})", server.log.display());
        eventually(Duration::from_secs(60), &what, || async { http.get(&root).send().await.ok().map(|_| ()) }).await;
        // moto does not check signatures: a plain path-style PUT creates it.
        let response = http.put(format!("{root}{bucket}")).send().await.expect("creating the test bucket");
        assert!(response.status().is_success(), "creating bucket {bucket}: {}", response.status());
        let proxy = TcpProxy::start(SocketAddr::from(([127, 0, 0, 1], port))).await;
        S3Server { server, port, proxy, bucket: bucket.to_owned(), dir, ca }
    }

    /// The CA that signed the server's certificate (PEM), when it speaks https.
    pub fn ca_file(&self) -> Option<&Path> {
        self.ca.as_deref()
    }

    fn scheme(&self) -> &'static str {
        if self.ca.is_some() { "https" } else { "http" }
    }

    /// `s3://BUCKET/PREFIX`.
    pub fn url(&self, prefix: &str) -> String {
        format!("s3://{}/{prefix}", self.bucket)
    }

    /// What a service needs to reach it, through the proxy: the variables
    /// an operator sets for an S3-compatible server (over https, a process
    /// must also trust [`S3Server::ca_file`], e.g. by `SSL_CERT_FILE`).
    pub fn service_env(&self) -> Vec<(&'static str, String)> {
        let mut env = vec![
            ("AWS_ENDPOINT", format!("{}://{}", self.scheme(), self.proxy.addr())),
            ("AWS_ACCESS_KEY_ID", "docflow-test".into()),
            ("AWS_SECRET_ACCESS_KEY", "docflow-test-secret".into()),
            ("AWS_REGION", "us-east-1".into()),
        ];
        if self.ca.is_none() {
            env.push(("AWS_ALLOW_HTTP", "true".into()));
        }
        env
    }

    /// The whole bucket, straight to the server (not through the proxy), for
    /// the test to look at what the services stored.
    pub fn store(&self) -> Arc<dyn ObjectStore> {
        let mut client = ClientOptions::new().with_allow_http(true);
        if let Some(ca) = &self.ca {
            client = client.with_root_certificate(Certificate::from_pem(&std::fs::read(ca).unwrap()).unwrap());
        }
        let store = AmazonS3Builder::new()
            .with_bucket_name(&self.bucket)
            .with_endpoint(format!("{}://127.0.0.1:{}", self.scheme(), self.port))
            .with_client_options(client)
            .with_access_key_id("docflow-test")
            .with_secret_access_key("docflow-test-secret")
            .with_region("us-east-1")
            .build()
            .unwrap();
        Arc::new(store)
    }

    /// The services lose the server: live connections drop, new ones fail.
    pub fn go_down(&mut self) {
        self.proxy.cut();
    }

    pub async fn come_back(&mut self) {
        self.proxy.restore();
    }

    pub fn log_text(&self) -> String {
        self.server.log_text()
    }
}

/// A CA and a server certificate for 127.0.0.1 it signed, made with the
/// openssl command line in `dir`: (CA certificate, server certificate, key).
fn make_certificates(dir: &Path) -> (PathBuf, PathBuf, PathBuf) {
    let run = |args: &[&str]| {
        let out = Command::new("openssl")
            .args(args)
            .current_dir(dir)
            .output()
            .unwrap_or_else(|e| panic!("openssl is needed for the TLS blob-store test: {e}"));
        assert!(out.status.success(), "openssl {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    };
    run(&[
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-days",
        "2",
        "-keyout",
        "ca.key",
        "-out",
        "ca.pem",
        "-subj",
        "/CN=docflow test CA",
        "-addext",
        "basicConstraints=critical,CA:TRUE",
        "-addext",
        "keyUsage=critical,keyCertSign,cRLSign",
    ]);
    run(&[
        "req",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        "server.key",
        "-out",
        "server.csr",
        "-subj",
        "/CN=127.0.0.1",
    ]);
    std::fs::write(
        dir.join("server.ext"),
        "subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\n\
         keyUsage=critical,digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\n",
    )
    .unwrap();
    run(&[
        "x509",
        "-req",
        "-in",
        "server.csr",
        "-CA",
        "ca.pem",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-days",
        "2",
        "-out",
        "server.pem",
        "-extfile",
        "server.ext",
    ]);
    (dir.join("ca.pem"), dir.join("server.pem"), dir.join("server.key"))
}

impl Drop for S3Server {
    fn drop(&mut self) {
        self.server.stop();
        remove_unless_panicking(&self.dir);
    }
}

/// Azurite's well-known development account (public, in Microsoft's docs).
pub const AZURITE_ACCOUNT: &str = "devstoreaccount1";
pub const AZURITE_KEY: &str =
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==";

/// Azurite's blob service with its data in its own directory.
pub struct AzuriteServer {
    server: Server,
    pub port: u16,
    pub container: String,
    pub dir: PathBuf,
}

impl AzuriteServer {
    /// Starts Azurite on a free port and creates `container`.
    pub async fn start(container: &str) -> AzuriteServer {
        let dir = scratch_dir("azurite");
        let port = free_port();
        let server = Self::spawn(port, &dir);
        answering(port, "azurite-blob", &server.log).await;
        let azurite = AzuriteServer { server, port, container: container.to_owned(), dir };
        azurite.create_container().await;
        azurite
    }

    fn spawn(port: u16, dir: &Path) -> Server {
        let bin = installed("node/node_modules/.bin/azurite-blob");
        let location = dir.join("data");
        std::fs::create_dir_all(&location).unwrap();
        Server::spawn(
            Command::new(bin)
                .args(["--blobHost", "127.0.0.1", "--blobPort", &port.to_string()])
                .arg("--location")
                .arg(&location)
                // Without it Azurite posts usage data to a Microsoft endpoint.
                .args(["--skipApiVersionCheck", "--loose", "--disableTelemetry"])
                .current_dir(dir),
            dir.join("azurite.log"),
        )
    }

    /// Create Container, signed with the account key (Azurite checks
    /// signatures; object_store has no call for it).
    async fn create_container(&self) {
        let date = chrono::Utc::now().format("%a, %d %b %Y %H:%M:%S GMT").to_string();
        let version = "2021-08-06";
        // https://learn.microsoft.com/rest/api/storageservices/authorize-with-shared-key
        // (version 2015-02-21 and later: an empty Content-Length for 0).
        let string_to_sign = format!(
            "PUT\n\n\n\n\n\n\n\n\n\n\n\nx-ms-date:{date}\nx-ms-version:{version}\n/{AZURITE_ACCOUNT}/{AZURITE_ACCOUNT}/{}\nrestype:container",
            self.container
        );
        let mut mac = Hmac::<Sha256>::new_from_slice(&BASE64.decode(AZURITE_KEY).unwrap()).unwrap();
        mac.update(string_to_sign.as_bytes());
        let signature = BASE64.encode(mac.finalize().into_bytes());
        let response = reqwest::Client::new()
            .put(format!("http://127.0.0.1:{}/{AZURITE_ACCOUNT}/{}?restype=container", self.port, self.container))
            .header("x-ms-date", date)
            .header("x-ms-version", version)
            .header("content-length", "0")
            .header("authorization", format!("SharedKey {AZURITE_ACCOUNT}:{signature}"))
            .send()
            .await
            .expect("creating the test container");
        let status = response.status();
        assert!(
            status.is_success(),
            "creating container {}: {status} {}",
            self.container,
            response.text().await.unwrap_or_default()
        );
    }

    /// `az://CONTAINER/PREFIX`.
    pub fn url(&self, prefix: &str) -> String {
        format!("az://{}/{prefix}", self.container)
    }

    fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}/{AZURITE_ACCOUNT}", self.port)
    }

    /// What a service needs to reach it: account, key and endpoint, as an
    /// operator would set them for any Azure-compatible endpoint.
    pub fn service_env(&self) -> Vec<(&'static str, String)> {
        vec![
            ("AZURE_STORAGE_ACCOUNT_NAME", AZURITE_ACCOUNT.into()),
            ("AZURE_STORAGE_ACCOUNT_KEY", AZURITE_KEY.into()),
            ("AZURE_STORAGE_ENDPOINT", self.endpoint()),
            ("AZURE_ALLOW_HTTP", "true".into()),
        ]
    }

    /// The whole container, for the test to look at what the services stored.
    pub fn store(&self) -> Arc<dyn ObjectStore> {
        let store = MicrosoftAzureBuilder::new()
            .with_account(AZURITE_ACCOUNT)
            .with_access_key(AZURITE_KEY)
            .with_container_name(&self.container)
            .with_endpoint(self.endpoint())
            .with_allow_http(true)
            .build()
            .unwrap();
        Arc::new(store)
    }

    /// Stops the server (SIGTERM: Azurite saves its metadata on the way out).
    pub fn go_down(&mut self) {
        self.server.stop();
    }

    /// Starts it again on the same port with the same data directory.
    pub async fn come_back(&mut self) {
        self.server = Self::spawn(self.port, &self.dir);
        answering(self.port, "azurite-blob (restarted)", &self.server.log).await;
    }

    pub fn log_text(&self) -> String {
        self.server.log_text()
    }
}

impl Drop for AzuriteServer {
    fn drop(&mut self) {
        self.server.stop();
        remove_unless_panicking(&self.dir);
    }
}

/// A failed test keeps the server's directory (its log) to look at.
fn remove_unless_panicking(dir: &Path) {
    if !std::thread::panicking() {
        let _ = std::fs::remove_dir_all(dir);
    }
}

/// Either server, for tests that run the same scenario on both.
pub enum BlobServer {
    S3(S3Server),
    Azure(AzuriteServer),
}

impl BlobServer {
    pub fn url(&self, prefix: &str) -> String {
        match self {
            BlobServer::S3(s) => s.url(prefix),
            BlobServer::Azure(s) => s.url(prefix),
        }
    }

    pub fn service_env(&self) -> Vec<(&'static str, String)> {
        match self {
            BlobServer::S3(s) => s.service_env(),
            BlobServer::Azure(s) => s.service_env(),
        }
    }

    pub fn store(&self) -> Arc<dyn ObjectStore> {
        match self {
            BlobServer::S3(s) => s.store(),
            BlobServer::Azure(s) => s.store(),
        }
    }

    pub fn go_down(&mut self) {
        match self {
            BlobServer::S3(s) => s.go_down(),
            BlobServer::Azure(s) => s.go_down(),
        }
    }

    pub async fn come_back(&mut self) {
        match self {
            BlobServer::S3(s) => s.come_back().await,
            BlobServer::Azure(s) => s.come_back().await,
        }
    }

    pub fn log_text(&self) -> String {
        match self {
            BlobServer::S3(s) => s.log_text(),
            BlobServer::Azure(s) => s.log_text(),
        }
    }
}
