//! Span export to an `https://` collector: the test's OTLP receiver behind a
//! TLS proxy with a certificate from the test's CA, over gRPC and over
//! HTTP/protobuf, with and without `OTEL_EXPORTER_OTLP_CERTIFICATE`.

use clap::Parser;
use opentelemetry::trace::{Tracer, TracerProvider as _};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::trace::SdkTracerProvider;
use telemetry::LogArgs;
use test_support::{OtlpReceiver, TestCa, TlsProxy};

#[derive(Parser)]
struct Cli {
    #[command(flatten)]
    log: LogArgs,
}

/// Exports one span named `name` with the exporter the settings build, and
/// flushes it (the SDK blocks while flushing, hence the blocking pool).
async fn export_one(args: &[&str], name: &'static str) {
    let cli = Cli::parse_from(std::iter::once("t").chain(args.iter().copied()));
    let exporter = telemetry::span_exporter(&cli.log).expect("the exporter builds").expect("an endpoint is set");
    let provider = SdkTracerProvider::builder()
        .with_resource(Resource::builder().with_service_name("otlp-tls-test").build())
        .with_batch_exporter(exporter)
        .build();
    provider.tracer("t").in_span(name, |_| {});
    tokio::task::spawn_blocking(move || {
        let _ = provider.force_flush();
        let _ = provider.shutdown();
    })
    .await
    .unwrap();
}

/// force_flush returns once the export is answered, and the receiver
/// stores spans before it answers: what has not arrived now never will.
fn received(receiver: &OtlpReceiver, name: &str) -> bool {
    receiver.spans().iter().any(|s| s.name == name)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spans_reach_an_https_collector_that_the_ca_file_vouches_for() {
    let ca = TestCa::new("docflow test CA");
    let cert = ca.server_cert(&["localhost"]);
    let ca_file = ca.ca_file();
    let ca_file = ca_file.to_str().unwrap();

    // gRPC: tonic insists on ALPN h2.
    let grpc = OtlpReceiver::start().await;
    let proxy = TlsProxy::start(grpc.addr(), &cert, &[b"h2"]).await;
    let endpoint = format!("https://localhost:{}", proxy.port());
    export_one(&["--otlp-endpoint", &endpoint, "--otlp-certificate", ca_file], "grpc-trusted").await;
    assert!(received(&grpc, "grpc-trusted"), "the span went over TLS with the CA file");
    export_one(&["--otlp-endpoint", &endpoint], "grpc-untrusted").await;
    assert!(!received(&grpc, "grpc-untrusted"), "without the CA the collector must not be trusted");

    // HTTP/protobuf.
    let http = OtlpReceiver::start_http().await;
    let proxy = TlsProxy::start(http.addr(), &cert, &[b"http/1.1"]).await;
    let endpoint = format!("https://localhost:{}", proxy.port());
    let base = ["--otlp-protocol", "http/protobuf", "--otlp-endpoint", &endpoint];
    export_one(&[&base[..], &["--otlp-certificate", ca_file]].concat(), "http-trusted").await;
    assert!(received(&http, "http-trusted"), "the span went over TLS with the CA file");
    export_one(&base, "http-untrusted").await;
    assert!(!received(&http, "http-untrusted"), "without the CA the collector must not be trusted");
}

#[test]
fn an_unreadable_certificate_file_is_named() {
    let cli =
        Cli::parse_from(["t", "--otlp-endpoint", "https://localhost:4317", "--otlp-certificate", "/nonexistent.pem"]);
    let error = telemetry::span_exporter(&cli.log).unwrap_err();
    assert!(error.contains("OTEL_EXPORTER_OTLP_CERTIFICATE") && error.contains("/nonexistent.pem"), "{error}");
}
