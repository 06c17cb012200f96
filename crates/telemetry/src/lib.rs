//! Logging, tracing and trace-context propagation shared by every docflow
//! service: one call at the top of `main` ([`init`]), one guard to flush on
//! exit ([`Telemetry::shutdown`]), and helpers that carry W3C trace context
//! through AMQP headers so one trace follows a job across processes.

mod json;
mod propagation;
mod resource;
mod sampler;

use std::io::IsTerminal;
use std::path::PathBuf;

use clap::{Args, ValueEnum};
use opentelemetry::trace::TracerProvider as _;
use opentelemetry_otlp::{WithExportConfig, WithHttpConfig, WithTonicConfig};
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::SdkTracerProvider;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer};

pub use propagation::{
    context_from_amqp, context_from_map, current_context, current_context_headers, headers_for, set_parent, trace_id,
};

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    Json,
    Pretty,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum OtlpProtocol {
    #[value(name = "grpc")]
    Grpc,
    #[value(name = "http/protobuf")]
    HttpProtobuf,
}

/// Logging and tracing settings (the standard OpenTelemetry variables where
/// one exists; `OTEL_TRACES_SAMPLER`/`_ARG` are read by the SDK itself).
#[derive(Debug, Clone, Args)]
pub struct LogArgs {
    /// Log format; by default `pretty` on a terminal and `json` otherwise.
    #[arg(long, env = "LOG_FORMAT", value_enum)]
    pub log_format: Option<LogFormat>,

    /// Log filter in `tracing` directive syntax (e.g. `info,sqlx=warn`).
    #[arg(long, env = "RUST_LOG", default_value = "info,sqlx=warn,lapin=warn,actix_server=warn")]
    pub log_filter: String,

    /// OTLP collector (e.g. Jaeger) base URL. Unset: no spans are exported.
    #[arg(long, env = "OTEL_EXPORTER_OTLP_ENDPOINT")]
    pub otlp_endpoint: Option<String>,

    /// Full URL for traces only; wins over the base endpoint.
    #[arg(long, env = "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")]
    pub otlp_traces_endpoint: Option<String>,

    /// OTLP transport.
    #[arg(long, env = "OTEL_EXPORTER_OTLP_PROTOCOL", value_enum, default_value = "grpc")]
    pub otlp_protocol: OtlpProtocol,

    /// PEM file of CA certificates to trust for an `https://` collector,
    /// besides the platform's store.
    #[arg(long, env = "OTEL_EXPORTER_OTLP_CERTIFICATE")]
    pub otlp_certificate: Option<PathBuf>,

    /// Overrides the service name in exported spans (else `service.name`
    /// from OTEL_RESOURCE_ATTRIBUTES, else the binary's name).
    #[arg(long, env = "OTEL_SERVICE_NAME")]
    pub otel_service_name: Option<String>,

    /// `deployment.environment.name` resource attribute (e.g. production).
    /// Unset: whatever OTEL_RESOURCE_ATTRIBUTES says, else none.
    #[arg(long, env = "DEPLOYMENT_ENVIRONMENT")]
    pub deployment_environment: Option<String>,
}

/// Holds the tracer provider; call [`Telemetry::shutdown`] before exit so
/// pending spans are flushed.
#[derive(Debug)]
pub struct Telemetry {
    provider: Option<SdkTracerProvider>,
}

impl Telemetry {
    /// Flushes and stops the exporter. The SDK blocks the thread while it
    /// does, so this runs on the blocking pool.
    pub async fn shutdown(self) {
        if let Some(provider) = self.provider {
            let _ = tokio::task::spawn_blocking(move || {
                if let Err(error) = provider.shutdown() {
                    eprintln!("telemetry: flushing spans on shutdown failed: {error}");
                }
            })
            .await;
        }
    }
}

/// Installs logging and, when an OTLP endpoint is configured, span export.
/// Must run inside the Tokio runtime (the gRPC exporter needs it) and
/// before any HTTP server starts (server spans need the global provider).
pub fn init(service_name: &'static str, args: &LogArgs) -> Telemetry {
    opentelemetry::global::set_text_map_propagator(TraceContextPropagator::new());
    let format =
        args.log_format.unwrap_or(if std::io::stderr().is_terminal() { LogFormat::Pretty } else { LogFormat::Json });
    let filter = || EnvFilter::try_new(&args.log_filter).unwrap_or_else(|_| EnvFilter::new("info"));
    let fmt = tracing_subscriber::fmt::layer().with_writer(std::io::stderr);
    let fmt = match format {
        LogFormat::Json => fmt.event_format(json::JsonWithTraceIds).boxed(),
        LogFormat::Pretty => fmt.boxed(),
    };

    // Spans are always made (logs carry their ids, job rows their trace id,
    // and incoming trace context is honoured); they leave the process only
    // when an endpoint is configured.
    let (exporter, error) = match span_exporter(args) {
        Ok(exporter) => (exporter, None),
        Err(error) => (None, Some(error)),
    };
    let exporting = exporter.is_some();
    let resource = resource::build(service_name, env!("CARGO_PKG_VERSION"), args);
    let mut builder = SdkTracerProvider::builder()
        .with_resource(resource)
        // The sampler OTEL_TRACES_SAMPLER chose, except for probes and scrapes.
        .with_sampler(sampler::SkipProbes::new(opentelemetry_sdk::trace::Config::default().sampler));
    if let Some(exporter) = exporter {
        // The batch processor exports from its own thread, off the request
        // path: a collector that is down costs failed exports, not latency.
        builder = builder.with_batch_exporter(exporter);
    }
    let provider = builder.build();
    opentelemetry::global::set_tracer_provider(provider.clone());
    let otel = tracing_opentelemetry::layer()
        .with_tracer(provider.tracer(service_name))
        .with_filter(tracing_subscriber::filter::filter_fn(sampler::exported));
    let installed = tracing_subscriber::registry().with(otel).with(fmt.with_filter(filter())).try_init().is_ok();
    if installed {
        tracing::info!(service = service_name, version = env!("CARGO_PKG_VERSION"), exporting, "telemetry initialised");
        if let Some(error) = error {
            tracing::warn!(%error, "span export is off: the OTLP exporter could not be built");
        }
    }
    Telemetry { provider: Some(provider) }
}

/// The OTLP span exporter the settings ask for, or `None` when no endpoint
/// is configured. `https://` endpoints use TLS (rustls) with the platform's
/// roots plus `OTEL_EXPORTER_OTLP_CERTIFICATE`.
pub fn span_exporter(args: &LogArgs) -> Result<Option<opentelemetry_otlp::SpanExporter>, String> {
    let endpoint = match (&args.otlp_traces_endpoint, &args.otlp_endpoint, args.otlp_protocol) {
        (Some(full), _, _) => full.clone(),
        (None, Some(base), OtlpProtocol::Grpc) => base.clone(),
        (None, Some(base), OtlpProtocol::HttpProtobuf) => format!("{}/v1/traces", base.trim_end_matches('/')),
        (None, None, _) => return Ok(None),
    };
    let ca = match &args.otlp_certificate {
        Some(path) => Some(
            std::fs::read(path)
                .map_err(|e| format!("OTEL_EXPORTER_OTLP_CERTIFICATE: cannot read {}: {e}", path.display()))?,
        ),
        None => None,
    };
    let https = endpoint.starts_with("https://");
    let exporter = match args.otlp_protocol {
        OtlpProtocol::Grpc => {
            let builder = opentelemetry_otlp::SpanExporter::builder().with_tonic().with_endpoint(endpoint);
            // Without a TLS config of its own the exporter trusts no root
            // at all, so https always gets one.
            let builder = if https { builder.with_tls_config(grpc_tls(ca.as_deref())) } else { builder };
            builder.build()
        }
        OtlpProtocol::HttpProtobuf => {
            let builder = opentelemetry_otlp::SpanExporter::builder()
                .with_http()
                .with_protocol(opentelemetry_otlp::Protocol::HttpBinary)
                .with_endpoint(endpoint);
            // reqwest trusts the platform's store by itself; a client of our
            // own only to add the CA file.
            let builder = match ca {
                Some(pem) if https => builder.with_http_client(http_client(pem)?),
                _ => builder,
            };
            builder.build()
        }
    }
    .map_err(|e| e.to_string())?;
    Ok(Some(exporter))
}

fn grpc_tls(ca: Option<&[u8]>) -> opentelemetry_otlp::tonic_types::transport::ClientTlsConfig {
    use opentelemetry_otlp::tonic_types::transport::{Certificate, ClientTlsConfig};
    let config = ClientTlsConfig::new().with_native_roots();
    match ca {
        Some(pem) => config.ca_certificate(Certificate::from_pem(pem)),
        None => config,
    }
}

/// A blocking client (the batch exporter runs on its own thread) trusting
/// the CA file too. reqwest's blocking client owns a runtime, which must not
/// be created or dropped inside Tokio's, hence the thread.
fn http_client(pem: Vec<u8>) -> Result<reqwest::blocking::Client, String> {
    std::thread::spawn(move || {
        let certificates = reqwest::Certificate::from_pem_bundle(&pem)
            .map_err(|e| format!("OTEL_EXPORTER_OTLP_CERTIFICATE holds no usable PEM certificate: {e}"))?;
        certificates
            .into_iter()
            .fold(reqwest::blocking::Client::builder().timeout(std::time::Duration::from_secs(10)), |b, c| {
                b.add_root_certificate(c)
            })
            .build()
            .map_err(|e| format!("building the OTLP HTTP client: {e}"))
    })
    .join()
    .map_err(|_| "building the OTLP HTTP client panicked".to_owned())?
}
