//! Logging set-up shared by every docflow service.
//!
//! OpenTelemetry export (OTLP, trace-context propagation over AMQP) arrives
//! with the tracing issue; this crate is where it will be wired so that
//! services keep calling one function.

use std::io::IsTerminal;

use clap::{Args, ValueEnum};
use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::format::FmtSpan;

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    Json,
    Pretty,
}

#[derive(Debug, Clone, Args)]
pub struct LogArgs {
    /// Log format; by default `pretty` on a terminal and `json` otherwise.
    #[arg(long, env = "LOG_FORMAT", value_enum)]
    pub log_format: Option<LogFormat>,

    /// Log filter in `tracing` directive syntax (e.g. `info,sqlx=warn`).
    #[arg(long, env = "RUST_LOG", default_value = "info,sqlx=warn,lapin=warn,actix_server=warn")]
    pub log_filter: String,
}

/// Installs the global subscriber. Call once, at the top of `main`.
pub fn init(service_name: &'static str, args: &LogArgs) {
    let format =
        args.log_format.unwrap_or(if std::io::stderr().is_terminal() { LogFormat::Pretty } else { LogFormat::Json });
    let filter = EnvFilter::try_new(&args.log_filter).unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    let result = match format {
        LogFormat::Json => builder.json().with_current_span(true).with_span_events(FmtSpan::NONE).try_init(),
        LogFormat::Pretty => builder.try_init(),
    };
    if result.is_ok() {
        tracing::info!(service = service_name, version = env!("CARGO_PKG_VERSION"), "logging initialised");
    }
}
