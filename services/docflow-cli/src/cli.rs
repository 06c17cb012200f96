//! The command line: every flag, its environment variable and its help.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(
    name = "docflow",
    version,
    about = "docflow command-line client: submit documents, follow jobs, and manage the dead-letter queue",
    after_help = crate::exit::AFTER_HELP
)]
pub struct Cli {
    /// ingest-api base URL (`http://` or `https://`).
    #[arg(long, env = "DOCFLOW_API_URL", default_value = "http://127.0.0.1:8080", global = true)]
    pub api_url: String,

    /// dlq-admin base URL (`http://` or `https://`).
    #[arg(long, env = "DOCFLOW_ADMIN_URL", default_value = "http://127.0.0.1:8081", global = true)]
    pub admin_url: String,

    /// ingest-api key (sent as a Bearer token) for `submit`, `status`,
    /// `result`, `jobs` and `tickets`; an INGEST_API_KEYS entry.
    #[arg(long, env = "DOCFLOW_API_KEY", hide_env_values = true, global = true)]
    pub api_key: Option<String>,

    /// metrics-tracker base URL (`http://` or `https://`).
    #[arg(long, env = "DOCFLOW_METRICS_URL", default_value = "http://127.0.0.1:8082", global = true)]
    pub metrics_url: String,

    /// Admin token (sent as a Bearer token) for `dlq` commands (dlq-admin)
    /// and `metrics` commands (metrics-tracker); an ADMIN_TOKENS entry.
    #[arg(long, env = "DOCFLOW_ADMIN_TOKEN", hide_env_values = true, global = true)]
    pub admin_token: Option<String>,

    /// PEM file of CA certificates to trust for `https://` URLs, besides
    /// the platform's store (for services behind a private CA).
    #[arg(long, env = "DOCFLOW_CA_FILE", global = true)]
    pub ca_file: Option<PathBuf>,

    /// Print the API's JSON answer instead of a table.
    #[arg(long, global = true)]
    pub json: bool,

    /// Give up on a request after this many seconds (a bulk retry paced by
    /// the server's replay rate limit can take a while).
    #[arg(long, env = "DOCFLOW_TIMEOUT_SECONDS", default_value_t = 300, global = true)]
    pub timeout_seconds: u64,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Upload a document to ingest-api and queue it for processing.
    Submit(SubmitArgs),
    /// List jobs, newest first, filtered as `GET /api/jobs` filters them.
    Jobs(JobsArgs),
    /// Show a job's status and stage timings.
    Status {
        /// The job id `submit` printed.
        job_id: String,
    },
    /// Show what was found in a completed job's document: fields, findings, tickets.
    Result {
        /// The job id `submit` printed.
        job_id: String,
    },
    /// List and close the findings that need a person (ingest-api).
    #[command(subcommand)]
    Tickets(TicketsCommand),
    /// Inspect and manage the dead-letter queue (dlq-admin).
    #[command(subcommand)]
    Dlq(DlqCommand),
    /// Processing figures from metrics-tracker.
    #[command(subcommand)]
    Metrics(MetricsCommand),
    /// Print a shell completion script, e.g.
    /// `docflow completions bash > ~/.local/share/bash-completion/completions/docflow`.
    Completions {
        /// bash, zsh, fish, elvish or powershell.
        shell: clap_complete::Shell,
    },
}

#[derive(Debug, Args)]
pub struct JobsArgs {
    /// QUEUED, PROCESSING, COMPLETED, FAILED, RETRYING, DLQ or DELETED.
    #[arg(long)]
    pub status: Option<String>,
    /// HIGH, NORMAL or LOW.
    #[arg(long)]
    pub priority: Option<String>,
    /// Only the jobs of this document id.
    #[arg(long)]
    pub document_id: Option<String>,
    /// Jobs per page (1 to 500).
    #[arg(long, default_value_t = 50)]
    pub limit: u32,
    /// Continue after this cursor (printed under a full page).
    #[arg(long)]
    pub cursor: Option<String>,
    /// Follow every page.
    #[arg(long, conflicts_with = "cursor")]
    pub all: bool,
}

#[derive(Debug, Subcommand)]
pub enum MetricsCommand {
    /// The processing report: counts, success rate, durations, stages, SLA
    /// and queue wait over the last hours (`GET /api/metrics/report`).
    Report {
        /// The window in hours (1 up to the tracker's retention).
        #[arg(long, default_value_t = 24)]
        hours: u32,
    },
}

#[derive(Debug, Subcommand)]
pub enum TicketsCommand {
    /// Tickets oldest first (OPEN ones by default).
    List {
        /// OPEN, IN_PROGRESS, RESOLVED or DISMISSED.
        #[arg(long, default_value = "OPEN")]
        status: String,
        /// Only tickets of this rule, e.g. possible_duplicate.
        #[arg(long)]
        rule: Option<String>,
        #[arg(long, default_value_t = 50)]
        limit: u32,
        /// `next_cursor` of the previous page.
        #[arg(long)]
        cursor: Option<String>,
    },
    /// Close a ticket, saying why.
    Resolve {
        ticket_id: i64,
        #[arg(long)]
        reason: String,
    },
}

#[derive(Debug, Args)]
pub struct SubmitArgs {
    /// The file to upload.
    pub file: PathBuf,
    /// Your id for the document (default: the file name without extension).
    #[arg(long)]
    pub document_id: Option<String>,
    /// HIGH, NORMAL or LOW.
    #[arg(long, default_value = "NORMAL")]
    pub priority: String,
    /// A tag as key=value; repeat for more.
    #[arg(long = "tag", value_name = "KEY=VALUE")]
    pub tags: Vec<String>,
    /// Makes a repeated submission return the same job.
    #[arg(long)]
    pub idempotency_key: Option<String>,
    /// Follow the job until it is COMPLETED, FAILED or DLQ, printing its
    /// stage progress on stderr; the exit status says how it ended.
    #[arg(long)]
    pub wait: bool,
    /// With --wait: give up (exit 7) after this many seconds; the job goes on.
    #[arg(long, env = "DOCFLOW_WAIT_TIMEOUT_SECONDS", default_value_t = 600)]
    pub wait_timeout_seconds: u64,
    /// With --wait: time between two status requests, in milliseconds.
    #[arg(long, env = "DOCFLOW_POLL_INTERVAL_MS", default_value_t = 500)]
    pub poll_interval_ms: u64,
}

/// The DLQ filters, as `GET /api/dlq` takes them.
#[derive(Debug, Clone, Default, Args)]
pub struct FilterArgs {
    /// job or poison.
    #[arg(long)]
    pub kind: Option<String>,
    /// The failing stage, e.g. upload.
    #[arg(long)]
    pub stage: Option<String>,
    /// HIGH, NORMAL or LOW.
    #[arg(long)]
    pub priority: Option<String>,
    /// Case-insensitive substring of the error message.
    #[arg(long)]
    pub error_contains: Option<String>,
    #[arg(long)]
    pub document_id: Option<String>,
    /// Dead-lettered at or after (RFC 3339 or a date).
    #[arg(long)]
    pub since: Option<String>,
    /// Dead-lettered before (RFC 3339 or a date).
    #[arg(long)]
    pub until: Option<String>,
    /// An error fingerprint (see `docflow dlq groups`).
    #[arg(long)]
    pub fingerprint: Option<String>,
    /// The dead-letter reason, e.g. retries_exhausted, not_json.
    #[arg(long)]
    pub dlq_reason: Option<String>,
}

impl FilterArgs {
    /// The filters as query or body fields.
    pub fn pairs(&self) -> Vec<(&'static str, String)> {
        [
            ("kind", &self.kind),
            ("stage", &self.stage),
            ("priority", &self.priority),
            ("error_contains", &self.error_contains),
            ("document_id", &self.document_id),
            ("since", &self.since),
            ("until", &self.until),
            ("fingerprint", &self.fingerprint),
            ("reason", &self.dlq_reason),
        ]
        .into_iter()
        .filter_map(|(k, v)| v.clone().map(|v| (k, v)))
        .collect()
    }
}

#[derive(Debug, Subcommand)]
pub enum DlqCommand {
    /// List DLQ items, newest first.
    List {
        #[command(flatten)]
        filter: FilterArgs,
        /// Items per page (1 to 500).
        #[arg(long, default_value_t = 50)]
        limit: u32,
        /// Continue after this cursor (printed under a full page).
        #[arg(long)]
        cursor: Option<String>,
        /// Follow every page.
        #[arg(long, conflicts_with = "cursor")]
        all: bool,
    },
    /// DLQ items grouped by error fingerprint, largest group first.
    Groups {
        #[command(flatten)]
        filter: FilterArgs,
        #[arg(long, default_value_t = 100)]
        limit: u32,
    },
    /// One item with its history and stage timings.
    Show {
        /// A job id, or a poison item's id.
        id: String,
    },
    /// Requeue one job (by id), several (ids), a group (--fingerprint) or
    /// everything matching filters (--filter KEY=VALUE, or --all).
    Retry(RetryArgs),
    /// Mark one item DELETED (its row and history stay).
    Delete {
        id: String,
        /// Why (required; audited).
        #[arg(long)]
        reason: String,
    },
    /// Delete items older than a number of days.
    Purge {
        /// Default: the server's RABBITMQ_DLQ_RETENTION_DAYS.
        #[arg(long)]
        older_than_days: Option<u32>,
        /// Why (required; audited).
        #[arg(long)]
        reason: String,
        /// Count, change nothing.
        #[arg(long)]
        dry_run: bool,
    },
    /// The admin audit trail, newest first.
    Audit {
        /// retry, delete, bulk_retry or purge.
        #[arg(long)]
        action: Option<String>,
        #[arg(long)]
        actor: Option<String>,
        /// A job id, item id or fingerprint.
        #[arg(long)]
        target: Option<String>,
        #[arg(long, default_value_t = 50)]
        limit: u32,
        #[arg(long)]
        cursor: Option<String>,
    },
}

#[derive(Debug, Args)]
pub struct RetryArgs {
    /// Job ids: one is a single retry, several a bulk retry of exactly those.
    #[arg(conflicts_with_all = ["filter", "fingerprint", "all"])]
    pub ids: Vec<String>,
    /// A filter as KEY=VALUE (keys: kind, stage, priority, error_contains,
    /// document_id, since, until, fingerprint, reason); repeat to narrow.
    #[arg(long, value_name = "KEY=VALUE")]
    pub filter: Vec<String>,
    /// Every DLQ job of this error group.
    #[arg(long)]
    pub fingerprint: Option<String>,
    /// Every DLQ job (bounded by --limit and the server's maximum).
    #[arg(long, conflicts_with_all = ["filter", "fingerprint"])]
    pub all: bool,
    /// Why (required; audited and kept in each job's history).
    #[arg(long)]
    pub reason: String,
    /// Report what would be retried, change nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Most jobs to requeue.
    #[arg(long)]
    pub limit: Option<u32>,
}
