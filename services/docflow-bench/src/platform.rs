//! The platform under test: the real service binaries on a fresh database
//! and queue namespace (test-support's guards drop both afterwards), with
//! the documents in a local blob store.

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use anyhow::Context;
use job_model::RetryPolicy;
use test_support::process::ServiceProcess;
use test_support::{TestBroker, TestDb};

use crate::config::Config;
use crate::cpu::Groups;
use crate::proxy::ProcessProxies;

pub const API_KEY: &str = "bench-key";
const ADMIN_TOKEN: &str = "bench-admin";

/// The service binaries.
#[derive(Debug, Clone)]
pub struct Binaries {
    pub ingest: PathBuf,
    pub worker: PathBuf,
    pub tracker: PathBuf,
}

impl Binaries {
    /// The binaries in `dir` (default: next to this one).
    pub fn locate(dir: Option<&Path>) -> anyhow::Result<Binaries> {
        let dir = match dir {
            Some(d) => d.to_path_buf(),
            None => std::env::current_exe()?.parent().context("binary has no directory")?.to_path_buf(),
        };
        let find = |name: &str| {
            let p = dir.join(name);
            anyhow::ensure!(p.exists(), "{} is missing: build it (`cargo build --release --workspace`)", p.display());
            Ok(p)
        };
        Ok(Binaries { ingest: find("ingest-api")?, worker: find("worker")?, tracker: find("metrics-tracker")? })
    }
}

/// What a phase starts.
#[derive(Debug, Clone)]
pub struct Setup {
    pub workers: usize,
    pub tracker: bool,
    /// Extra environment for the workers (e.g. PIPELINE_NOOP).
    pub worker_env: Vec<(String, String)>,
    /// Put counting proxies in front of Postgres and RabbitMQ, per process.
    pub count: bool,
}

pub struct Platform {
    pub db: TestDb,
    pub broker: TestBroker,
    pub log_dir: PathBuf,
    pub blob_dir: PathBuf,
    spawner: Spawner,
    bins: Binaries,
    pub ingest: ServiceProcess,
    pub workers: Vec<ServiceProcess>,
    pub tracker: Option<ServiceProcess>,
    /// Process name → its counting proxies (counting runs only).
    pub proxies: BTreeMap<String, ProcessProxies>,
    pub http: reqwest::Client,
    /// Queries the generator itself ran on the database during a measured
    /// window (subtracted from the transaction counts).
    pub own_queries: AtomicU64,
    /// `--worker-env`: settings every worker process gets.
    worker_env: Vec<(String, String)>,
}

fn socket_of(url: &str, default_port: u16) -> anyhow::Result<SocketAddr> {
    let parsed = url::Url::parse(url).with_context(|| format!("parsing {url}"))?;
    let host = parsed.host_str().unwrap_or("127.0.0.1");
    let port = parsed.port().unwrap_or(default_port);
    use std::net::ToSocketAddrs;
    format!("{host}:{port}").to_socket_addrs()?.next().context("no address")
}

fn replace_host(url: &str, addr: SocketAddr) -> anyhow::Result<String> {
    let mut parsed = url::Url::parse(url)?;
    parsed.set_ip_host(addr.ip()).map_err(|_| anyhow::anyhow!("cannot set host of {url}"))?;
    parsed.set_port(Some(addr.port())).map_err(|_| anyhow::anyhow!("cannot set port of {url}"))?;
    Ok(parsed.to_string())
}

/// Starts service processes with the run's environment.
struct Spawner {
    env: HashMap<String, String>,
    log_dir: PathBuf,
    count: bool,
    db_url: String,
    amqp_url: String,
}

impl Spawner {
    async fn spawn(
        &self,
        name: &str,
        bin: &Path,
        extra: &[(String, String)],
        http: &reqwest::Client,
        proxies: &mut BTreeMap<String, ProcessProxies>,
    ) -> anyhow::Result<ServiceProcess> {
        let mut env = self.env.clone();
        for (k, v) in extra {
            env.insert(k.clone(), v.clone());
        }
        if self.count {
            let pg = socket_of(&self.db_url, 5432)?;
            let amqp = socket_of(&self.amqp_url, 5672)?;
            let p = ProcessProxies::start(pg, amqp).await?;
            // No TLS through the counting proxy: it reads the protocol.
            let db_url = replace_host(&self.db_url, p.pg_addr)?;
            let sep = if db_url.contains('?') { '&' } else { '?' };
            env.insert("DATABASE_URL".into(), format!("{db_url}{sep}sslmode=disable"));
            env.insert("AMQP_URL".into(), replace_host(&self.amqp_url, p.amqp_addr)?);
            proxies.insert(name.to_owned(), p);
        }
        let process = ServiceProcess::spawn(name, bin, &env, &self.log_dir);
        process.ready(http).await;
        Ok(process)
    }
}

impl Platform {
    pub async fn start(
        bins: &Binaries,
        work_dir: &Path,
        blob_dir: &Path,
        config: &Config,
        setup: &Setup,
    ) -> anyhow::Result<Platform> {
        let db = TestDb::new().await;
        let mut broker = TestBroker::new();
        // The workers declare their retry tiers; the guard deletes them too.
        broker.retry_policy =
            Some(RetryPolicy { base: Duration::from_millis(1000), cap: Duration::from_millis(300_000) });
        let log_dir = work_dir.join(format!("logs-{}", broker.namespace));
        std::fs::create_dir_all(&log_dir)?;
        let env: HashMap<String, String> = [
            ("DATABASE_URL", format!("{}?sslmode={}", db.url, config.database_sslmode)),
            ("AMQP_URL", broker.amqp_url.clone()),
            ("DOCFLOW_NAMESPACE", broker.namespace.clone()),
            ("BLOB_STORE_URL", format!("file://{}", blob_dir.display())),
            ("INGEST_API_KEYS", API_KEY.to_owned()),
            ("ADMIN_TOKENS", format!("{ADMIN_TOKEN}:read")),
            ("RATE_LIMIT_PER_SECOND", config.rate_limit.to_string()),
            ("RETRY_BASE_DELAY_MS", "1000".to_owned()),
            ("RETRY_MAX_DELAY_MS", "300000".to_owned()),
            ("WORKER_COUNT", config.worker_concurrency.to_string()),
            ("WORKER_PREFETCH_COUNT", config.worker_prefetch.to_string()),
            // Migrations ran once, on the fresh database.
            ("SKIP_MIGRATIONS", "true".to_owned()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect();
        // actix-web closes an idle keep-alive connection after 5 s; drop
        // pooled ones before, or a reused one fails mid-request.
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .pool_idle_timeout(Duration::from_secs(2))
            .pool_max_idle_per_host(256)
            .build()?;
        let spawner = Spawner {
            env,
            log_dir: log_dir.clone(),
            count: setup.count,
            db_url: db.url.clone(),
            amqp_url: broker.amqp_url.clone(),
        };
        let mut proxies = BTreeMap::new();
        let ingest = spawner.spawn("ingest-api", &bins.ingest, &[], &http, &mut proxies).await?;
        let tracker = match setup.tracker {
            true => Some(spawner.spawn("metrics-tracker", &bins.tracker, &[], &http, &mut proxies).await?),
            false => None,
        };
        let mut platform = Platform {
            db,
            broker,
            log_dir,
            blob_dir: blob_dir.to_path_buf(),
            spawner,
            bins: bins.clone(),
            ingest,
            workers: Vec::new(),
            tracker,
            proxies,
            http,
            own_queries: AtomicU64::new(0),
            worker_env: config.worker_env.clone(),
        };
        for _ in 0..setup.workers {
            platform.add_worker(&setup.worker_env).await?;
        }
        Ok(platform)
    }

    pub async fn add_worker(&mut self, extra: &[(String, String)]) -> anyhow::Result<()> {
        let name = format!("worker-{}", self.workers.len());
        let settings: Vec<(String, String)> = extra.iter().chain(&self.worker_env).cloned().collect();
        let worker = self.spawner.spawn(&name, &self.bins.worker, &settings, &self.http, &mut self.proxies).await?;
        self.workers.push(worker);
        Ok(())
    }

    pub fn api(&self, path: &str) -> String {
        self.ingest.url(path)
    }

    /// The processes by group, for CPU accounting.
    pub fn groups(&self) -> Groups {
        let mut services: BTreeMap<String, Vec<u32>> = BTreeMap::new();
        services.entry("ingest-api".into()).or_default().extend(self.ingest.pid());
        for w in &self.workers {
            services.entry("worker".into()).or_default().extend(w.pid());
        }
        if let Some(t) = &self.tracker {
            services.entry("metrics-tracker".into()).or_default().extend(t.pid());
        }
        Groups { services, database: self.db.name.clone() }
    }

    pub fn count_query(&self) {
        self.own_queries.fetch_add(1, Ordering::Relaxed);
    }

    /// SIGTERM to every service (workers first): their database sessions
    /// end, which flushes their statistics to pg_stat_database.
    pub async fn stop(&mut self) {
        for w in &mut self.workers {
            w.terminate(Duration::from_secs(60)).await;
        }
        if let Some(t) = &mut self.tracker {
            t.terminate(Duration::from_secs(30)).await;
        }
        self.ingest.terminate(Duration::from_secs(30)).await;
    }
}
