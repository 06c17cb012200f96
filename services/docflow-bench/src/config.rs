//! Every setting of the load generator, as a flag with an environment variable.

use std::path::PathBuf;

use clap::{Parser, ValueEnum};

/// One measured phase. Each runs on its own fresh database and queue
/// namespace, with its own service processes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum PhaseKind {
    /// Durable 202/s: CLIENTS closed-loop clients against ingest-api alone
    /// (no worker), then one worker drains the backlog they left.
    Ingest,
    /// End to end with 1, 2, 4… worker processes (see --workers).
    E2e,
    /// Open-loop submission at fixed rates (see --paced-rates).
    Paced,
    /// HIGH jobs submitted behind a LOW backlog: their queue wait.
    Priority,
    /// End to end with the worker's stages replaced by no-ops
    /// (PIPELINE_NOOP=true): the platform's own cost per job.
    Noop,
    /// Per-process round trips, statements, transactions, publishes and acks
    /// per job, counted by protocol-aware proxies in front of Postgres and
    /// RabbitMQ (a separate run: the proxies add a hop).
    Counts,
    /// The same counts with jobs arriving one by one, open loop at the
    /// first of --paced-rates for --paced-seconds: what batching is left
    /// when there is nothing to batch.
    CountsPaced,
}

#[derive(Debug, Clone, Parser)]
#[command(
    name = "docflow-bench",
    version,
    about = "docflow load generator: starts the release service binaries on a fresh database and namespace and measures them"
)]
pub struct Config {
    /// Phases to run, in order.
    #[arg(
        long,
        env = "BENCH_PHASES",
        value_enum,
        value_delimiter = ',',
        default_value = "ingest,e2e,paced,priority,noop,counts"
    )]
    pub phases: Vec<PhaseKind>,

    /// Runs of each phase; the report shows the run with the median headline
    /// figure (and every run's figure beside it).
    #[arg(long, env = "BENCH_REPEAT", default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..))]
    pub repeat: u32,

    /// Jobs per end-to-end, no-op and ingest phase.
    #[arg(long, env = "BENCH_JOBS", default_value_t = 3000)]
    pub jobs: usize,

    /// Concurrent HTTP clients in closed-loop phases (each sends its next
    /// request when the previous one is answered).
    #[arg(long, env = "BENCH_CLIENTS", default_value_t = 16)]
    pub clients: usize,

    /// Worker process counts for the end-to-end phase, one run each.
    #[arg(long, env = "BENCH_WORKERS", value_delimiter = ',', default_value = "1,2,4")]
    pub workers: Vec<usize>,

    /// Open-loop submission rates (jobs/s) for the paced phase, one run each.
    #[arg(long, env = "BENCH_PACED_RATES", value_delimiter = ',', default_value = "100,250")]
    pub paced_rates: Vec<u32>,

    /// How long each paced run submits, in seconds.
    #[arg(long, env = "BENCH_PACED_SECONDS", default_value_t = 20.0)]
    pub paced_seconds: f64,

    /// LOW jobs submitted (as fast as CLIENTS can) before the HIGH ones.
    #[arg(long, env = "BENCH_LOW_BACKLOG", default_value_t = 2000)]
    pub low_backlog: usize,

    /// HIGH jobs submitted, one after another, once the LOW ones are in.
    #[arg(long, env = "BENCH_HIGH_JOBS", default_value_t = 20)]
    pub high_jobs: usize,

    /// Jobs in the counting run (through the counting proxies).
    #[arg(long, env = "BENCH_COUNT_JOBS", default_value_t = 500)]
    pub count_jobs: usize,

    /// Jobs run before each measured end-to-end phase and not counted
    /// (connections opened, statements prepared, caches warm).
    #[arg(long, env = "BENCH_WARMUP_JOBS", default_value_t = 100)]
    pub warmup_jobs: usize,

    /// WORKER_COUNT of each worker process (jobs it runs at once).
    #[arg(long, env = "BENCH_WORKER_CONCURRENCY", default_value_t = 4)]
    pub worker_concurrency: usize,

    /// WORKER_PREFETCH_COUNT of each worker process: unacked deliveries per
    /// queue. At most this many jobs of one priority run at once, however
    /// large WORKER_COUNT is.
    #[arg(long, env = "BENCH_WORKER_PREFETCH", default_value_t = 4)]
    pub worker_prefetch: u16,

    /// More settings for every worker process, as KEY=VALUE (repeat the
    /// flag, or separate by commas in the env var), e.g.
    /// `--worker-env DATABASE_MAX_CONNECTIONS=32`. They win over the
    /// generator's own.
    #[arg(long = "worker-env", env = "BENCH_WORKER_ENV", value_delimiter = ',', value_parser = parse_setting)]
    pub worker_env: Vec<(String, String)>,

    /// RATE_LIMIT_PER_SECOND given to ingest-api; 0 turns the per-key limit
    /// off (the default 500/s would cap a single-key benchmark).
    #[arg(long, env = "BENCH_RATE_LIMIT", default_value_t = 0)]
    pub rate_limit: u32,

    /// Postgres TLS for the services under test: the `sslmode` of their
    /// DATABASE_URL. `prefer` is what a URL without one gets, TLS whenever
    /// the server offers it (Debian's Postgres does, `ssl = on`); `disable`
    /// measures the platform without it. The counts phase always runs
    /// without TLS (its proxies read the protocol).
    #[arg(long, env = "BENCH_DATABASE_SSLMODE", default_value = "prefer",
          value_parser = ["disable", "prefer", "require"])]
    pub database_sslmode: String,

    /// Give up on a phase whose jobs are not all final after this many seconds.
    #[arg(long, env = "BENCH_PHASE_TIMEOUT_SECONDS", default_value_t = 300.0)]
    pub phase_timeout_seconds: f64,

    /// Directory holding ingest-api, worker and metrics-tracker (default:
    /// this binary's own directory, e.g. target/release).
    #[arg(long, env = "BENCH_BIN_DIR")]
    pub bin_dir: Option<PathBuf>,

    /// Where the JSON report is written.
    #[arg(long, env = "BENCH_OUT", default_value = "target/bench/docflow-bench.json")]
    pub out: PathBuf,

    /// Celery baseline JSON (`/tmp/celery-baseline/run-*.json` from
    /// `../shared/baseline-celery/run.sh`): when given, ratios are printed.
    #[arg(long, env = "BENCH_BASELINE")]
    pub baseline: Option<PathBuf>,

    /// Keep the services' logs and blobs here (default: a temporary
    /// directory, removed at the end).
    #[arg(long, env = "BENCH_WORK_DIR")]
    pub work_dir: Option<PathBuf>,
}

impl Config {
    pub fn phase_timeout(&self) -> std::time::Duration {
        std::time::Duration::from_secs_f64(self.phase_timeout_seconds)
    }
}

/// `KEY=VALUE`, the key an environment variable name.
fn parse_setting(text: &str) -> Result<(String, String), String> {
    let (key, value) = text.split_once('=').ok_or_else(|| format!("{text:?} is not KEY=VALUE"))?;
    if key.is_empty() || !key.chars().all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_') {
        return Err(format!("{key:?} is not an environment variable name (A-Z, 0-9, _)"));
    }
    Ok((key.to_owned(), value.to_owned()))
}
