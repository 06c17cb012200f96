//! One trace per job across processes, exported over OTLP to a receiver
//! inside the test.

use std::collections::HashMap;
use std::time::Duration;

use test_support::{OtlpReceiver, ReceivedSpan, eventually};

use crate::platform::{Platform, Setup, text_invoice};

const STAGES: [&str; 8] = [
    "upload",
    "validation",
    "classification",
    "extraction",
    "analysis",
    "criteria_detection",
    "ticket_generation",
    "storage",
];
const PRODUCER: i32 = 4;
const CONSUMER: i32 = 5;
const SERVER: i32 = 2;

fn traced(receiver: &OtlpReceiver) -> Setup {
    Setup {
        extra_env: vec![
            ("OTEL_EXPORTER_OTLP_ENDPOINT", receiver.endpoint()),
            ("OTEL_BSP_SCHEDULE_DELAY", "100".to_owned()),
        ],
        ..Setup::default()
    }
}

/// A relay's PRODUCER span for a message to `exchange` (any namespace).
fn is_publish(span: &ReceivedSpan, exchange: &str) -> bool {
    span.kind == PRODUCER && span.name.starts_with("publish ") && span.name.ends_with(exchange)
}

fn by_id(spans: &[ReceivedSpan]) -> HashMap<&str, &ReceivedSpan> {
    spans.iter().map(|s| (s.span_id.as_str(), s)).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_is_one_trace_from_request_to_stages_and_event() {
    let receiver = OtlpReceiver::start().await;
    let mut platform = Platform::start(traced(&receiver)).await;
    platform.start_metrics_tracker().await;
    let job = platform.submit_document("traced-1", "invoice.txt", &text_invoice("INV-T1"), "HIGH").await;
    let status = platform.wait_final(&job, Duration::from_secs(60)).await;
    assert_eq!(status["job_status"], "COMPLETED");
    let trace_id = status["trace_id"].as_str().expect("the status API returns the trace id").to_owned();

    // Wait for the last spans of the chain; on a timeout, say what did arrive.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    let spans = loop {
        let spans: Vec<ReceivedSpan> = receiver.spans().into_iter().filter(|s| s.trace_id == trace_id).collect();
        let stages = spans.iter().filter(|s| STAGES.contains(&s.name.as_str())).count();
        let events = spans.iter().filter(|s| is_publish(s, "docflow.events")).count();
        let tracked = spans.iter().filter(|s| s.kind == CONSUMER && s.service == "metrics-tracker").count();
        let server = spans.iter().filter(|s| s.kind == SERVER).count();
        if stages >= 8 && events >= 1 && tracked >= 1 && server >= 1 {
            break spans;
        }
        if tokio::time::Instant::now() > deadline {
            let seen: Vec<String> = spans.iter().map(|s| format!("{}:{}", s.service, s.name)).collect();
            let others = receiver.spans().len() - spans.len();
            panic!("spans of trace {trace_id} still missing after 60 s; have {seen:?} (+{others} in other traces)");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let index = by_id(&spans);
    let parent_of = |s: &ReceivedSpan| index.get(s.parent_span_id.as_str()).copied();

    let server = spans.iter().find(|s| s.kind == SERVER && s.service == "ingest-api").expect("an HTTP server span");
    assert_eq!(server.name, "POST /api/process-async");
    assert_eq!(server.attributes.get("http.response.status_code").map(String::as_str), Some("202"));

    let publish = spans.iter().find(|s| is_publish(s, "docflow.jobs")).expect("the relay's publish span");
    assert_eq!(
        parent_of(publish).map(|p| p.span_id.as_str()),
        Some(server.span_id.as_str()),
        "publish is a child of the request"
    );
    assert_eq!(publish.attributes.get("messaging.system").map(String::as_str), Some("rabbitmq"));
    assert_eq!(publish.attributes.get("messaging.message.id").map(String::as_str), Some(job.as_str()));

    let consume =
        spans.iter().find(|s| s.kind == CONSUMER && s.service == "worker").expect("the worker's consumer span");
    assert_eq!(
        parent_of(consume).map(|p| p.span_id.as_str()),
        Some(publish.span_id.as_str()),
        "consume follows publish"
    );
    assert_eq!(consume.attributes.get("messaging.operation.type").map(String::as_str), Some("process"));
    assert_eq!(consume.attributes.get("docflow.outcome").map(String::as_str), Some("completed"));

    let wait = spans.iter().find(|s| s.name.starts_with("queue wait")).expect("a queue-wait span");
    assert_eq!(wait.parent_span_id, publish.span_id);
    assert!(wait.end_unix_nano >= wait.start_unix_nano);

    let mut stages: Vec<&ReceivedSpan> = spans.iter().filter(|s| STAGES.contains(&s.name.as_str())).collect();
    stages.sort_by_key(|s| s.start_unix_nano);
    assert_eq!(stages.iter().map(|s| s.name.as_str()).collect::<Vec<_>>(), STAGES, "eight stage spans, in order");
    for stage in &stages {
        assert_eq!(stage.parent_span_id, consume.span_id, "{} is a child of the attempt", stage.name);
        assert!(stage.attributes.contains_key("docflow.items_processed"), "{stage:?}");
        assert!(stage.attributes.contains_key("docflow.bytes_processed"), "{stage:?}");
        assert_ne!(stage.status_code, 2, "{} succeeded", stage.name);
    }
    for pair in stages.windows(2) {
        assert!(
            pair[0].end_unix_nano <= pair[1].start_unix_nano,
            "{} ends before {} starts",
            pair[0].name,
            pair[1].name
        );
    }

    // The worker's JSON log lines for this attempt carry the same trace id.
    let logged =
        platform.workers[0].log_text().lines().filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok()).any(
            |l| {
                l["trace_id"] == trace_id.as_str()
                    && l["span_id"].is_string()
                    && l["fields"]["message"] == "attempt recorded"
            },
        );
    assert!(logged, "log lines carry trace and span ids");

    // Whichever relay took the row from the shared outbox published it (the
    // worker's or ingest-api's); it is the attempt's child either way.
    let event = spans.iter().find(|s| is_publish(s, "docflow.events")).unwrap();
    assert_eq!(
        parent_of(event).map(|p| p.span_id.as_str()),
        Some(consume.span_id.as_str()),
        "the event publish is part of the attempt"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_retried_twice_shows_three_attempts_in_one_trace() {
    let receiver = OtlpReceiver::start().await;
    let mut setup = traced(&receiver);
    setup.retry_base_ms = 1000;
    setup.retry_max_ms = 4000;
    let platform = Platform::start(setup).await;
    let path = "in/flaky-traced/invoice.txt";
    let full = platform.blob_dir.join(path);
    std::fs::create_dir_all(full.parent().unwrap()).unwrap();
    std::os::unix::fs::symlink(&full, &full).unwrap();
    let bytes = text_invoice("INV-T2");
    let job = platform.submit("flaky-traced", path, bytes.len(), "NORMAL").await;
    eventually(Duration::from_secs(60), "the second retry", || async {
        let s = platform.status(&job).await;
        (s["retry_count"] == 2 && s["job_status"] == "RETRYING").then_some(())
    })
    .await;
    std::fs::remove_file(&full).unwrap();
    platform.put_blob(path, &bytes);
    let status = platform.wait_final(&job, Duration::from_secs(60)).await;
    assert_eq!(status["job_status"], "COMPLETED");
    let trace_id = status["trace_id"].as_str().unwrap().to_owned();

    let attempts = eventually(Duration::from_secs(60), "three attempt spans", || async {
        let attempts: Vec<ReceivedSpan> =
            receiver.spans().into_iter().filter(|s| s.trace_id == trace_id && s.kind == CONSUMER).collect();
        (attempts.len() >= 3).then_some(attempts)
    })
    .await;
    let mut numbers: Vec<String> = attempts.iter().map(|s| s.attributes["docflow.attempt"].clone()).collect();
    numbers.sort();
    assert_eq!(numbers, ["1", "2", "3"]);
    let failed = attempts.iter().filter(|s| s.status_code == 2).count();
    assert_eq!(failed, 2, "the two failed attempts are marked as errors");
    let waits =
        receiver.spans().into_iter().filter(|s| s.trace_id == trace_id && s.name.starts_with("queue wait")).count();
    assert_eq!(waits, 3, "each wait (queue, then two retry tiers) is its own span");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jobs_complete_when_the_collector_is_unreachable() {
    let closed = crate::platform::free_port();
    let setup = Setup {
        extra_env: vec![
            ("OTEL_EXPORTER_OTLP_ENDPOINT", format!("http://127.0.0.1:{closed}")),
            ("OTEL_BSP_SCHEDULE_DELAY", "50".to_owned()),
        ],
        ..Setup::default()
    };
    let platform = Platform::start(setup).await;
    let mut jobs = Vec::new();
    for i in 0..5 {
        jobs.push(
            platform
                .submit_document(&format!("no-collector-{i}"), "invoice.txt", &text_invoice(&format!("N{i}")), "NORMAL")
                .await,
        );
    }
    for job in &jobs {
        assert_eq!(platform.wait_final(job, Duration::from_secs(60)).await["job_status"], "COMPLETED");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spans_also_export_over_http_protobuf() {
    let receiver = OtlpReceiver::start_http().await;
    let mut setup = traced(&receiver);
    setup.extra_env.push(("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf".to_owned()));
    let platform = Platform::start(setup).await;
    let job = platform.submit_document("traced-http", "invoice.txt", &text_invoice("INV-H"), "NORMAL").await;
    let status = platform.wait_final(&job, Duration::from_secs(60)).await;
    let trace_id = status["trace_id"].as_str().unwrap().to_owned();
    let services = eventually(Duration::from_secs(60), "spans over HTTP from both services", || async {
        let services: std::collections::BTreeSet<String> =
            receiver.spans().into_iter().filter(|s| s.trace_id == trace_id).map(|s| s.service).collect();
        (services.len() == 2).then_some(services)
    })
    .await;
    assert_eq!(services, ["ingest-api".to_owned(), "worker".to_owned()].into_iter().collect());
}

/// Attribute keys a span may carry: the OpenTelemetry conventions'
/// namespaces, what the tracing bridge adds, and docflow's own under
/// `docflow.*`.
fn conventional_key(key: &str) -> bool {
    const PREFIXES: [&str; 11] = [
        "docflow.",
        "messaging.",
        "http.",
        "url.",
        "server.",
        "client.",
        "network.",
        "user_agent.",
        "error.",
        "code.",
        "thread.",
    ];
    // tracing-opentelemetry's own: a span's busy and idle time, and the tracing target and level.
    const BRIDGE: [&str; 4] = ["busy_ns", "idle_ns", "target", "level"];
    PREFIXES.iter().any(|p| key.starts_with(p)) || BRIDGE.contains(&key)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spans_follow_the_conventions_and_probes_make_none() {
    let receiver = OtlpReceiver::start().await;
    let mut setup = traced(&receiver);
    // What an operator sets: it must reach the resource unchanged.
    setup.extra_env.push((
        "OTEL_RESOURCE_ATTRIBUTES",
        "deployment.environment.name=staging,service.namespace=docflow-e2e".to_owned(),
    ));
    let mut platform = Platform::start(setup).await;
    platform.start_dlq_admin().await;

    // Probes and scrapes on every service, before and around a job.
    let ports = [platform.ingest.port, platform.workers[0].port, platform.dlq_admin.as_ref().unwrap().port];
    for round in 0..3 {
        for port in ports {
            for path in ["/healthz", "/readyz", "/metrics"] {
                let r = platform.http.get(format!("http://127.0.0.1:{port}{path}")).send().await.unwrap();
                assert!(r.status().is_success(), "{path} on {port}: {}", r.status());
            }
        }
        if round == 0 {
            let job = platform.submit_document("conv-1", "invoice.txt", &text_invoice("INV-C1"), "HIGH").await;
            assert_eq!(platform.wait_final(&job, Duration::from_secs(60)).await["job_status"], "COMPLETED");
        }
    }
    // A job that dead-letters: dlq-admin's importer continues its trace.
    let path = "in/conv-dlq/invoice.txt";
    let full = platform.blob_dir.join(path);
    std::fs::create_dir_all(full.parent().unwrap()).unwrap();
    std::os::unix::fs::symlink(&full, &full).unwrap();
    let dead = platform.submit("conv-dlq", path, 100, "LOW").await;
    let status = platform.wait_final(&dead, Duration::from_secs(60)).await;
    assert_eq!(status["job_status"], "DLQ", "{status}");
    let dead_trace = status["trace_id"].as_str().unwrap().to_owned();

    let import = eventually(Duration::from_secs(60), "dlq-admin's import span", || async {
        receiver
            .spans()
            .into_iter()
            .find(|s| s.trace_id == dead_trace && s.service == "dlq-admin" && s.kind == CONSUMER)
    })
    .await;
    // Each process exports in its own batches: the publish may land later.
    let dlq_publish = eventually(Duration::from_secs(30), "the import's parent span to be exported", || async {
        receiver.spans().into_iter().find(|s| s.span_id == import.parent_span_id)
    })
    .await;
    let dlq_publish = &dlq_publish;
    assert!(is_publish(dlq_publish, "docflow.dlq"), "the import follows the dead letter's publish: {dlq_publish:?}");
    assert!(import.name.starts_with("process ") && import.name.ends_with("docflow.dlq"), "{}", import.name);
    assert_eq!(import.attributes.get("messaging.operation.name").map(String::as_str), Some("process"));
    assert!(import.attributes["messaging.destination.name"].ends_with("docflow.dlq"), "{import:?}");
    assert!(import.attributes["messaging.destination.subscription.name"].ends_with("jobs.dlq"), "{import:?}");
    assert_eq!(import.attributes.get("docflow.job_id"), Some(&dead));
    assert_eq!(import.attributes.get("docflow.outcome").map(String::as_str), Some("seen"));

    // Give the batch processors a moment for the probes' (would-be) spans.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let spans = receiver.spans();
    let probes: Vec<String> = spans
        .iter()
        .filter(|s| s.kind == SERVER)
        .filter_map(|s| s.attributes.get("http.route").or(s.attributes.get("url.path")))
        .filter(|r| r.starts_with("/health") || r.starts_with("/ready") || r.starts_with("/metrics"))
        .cloned()
        .collect();
    assert!(probes.is_empty(), "probe and scrape spans were exported: {probes:?}");
    assert!(spans.iter().any(|s| s.kind == SERVER && s.name == "POST /api/process-async"), "other requests still are");

    for s in &spans {
        let r = &s.resource;
        assert_eq!(r.get("deployment.environment.name").map(String::as_str), Some("staging"), "{}: {r:?}", s.service);
        assert_eq!(r.get("service.namespace").map(String::as_str), Some("docflow-e2e"), "{}: {r:?}", s.service);
        assert!(!r.contains_key("deployment.environment"), "the deprecated key: {r:?}");
        assert!(r.contains_key("service.version"), "{r:?}");
        let odd: Vec<&String> = s.attributes.keys().filter(|k| !conventional_key(k)).collect();
        assert!(
            odd.is_empty(),
            "{} {:?}: attributes outside the conventions and docflow.*: {odd:?}",
            s.service,
            s.name
        );
    }
    for s in spans.iter().filter(|s| s.kind == PRODUCER || s.kind == CONSUMER) {
        let a = &s.attributes;
        assert_eq!(a.get("messaging.system").map(String::as_str), Some("rabbitmq"), "{s:?}");
        let op = a.get("messaging.operation.name").unwrap_or_else(|| panic!("no messaging.operation.name: {s:?}"));
        let destination = a.get("messaging.destination.name").unwrap_or_else(|| panic!("no destination: {s:?}"));
        // RabbitMQ's destination is the exchange, and the span is named after it.
        assert!(
            ["docflow.jobs", "docflow.events", "docflow.dlq"].iter().any(|x| destination.ends_with(x))
                || destination.contains("docflow.retry."),
            "{destination} is not one of docflow's exchanges: {s:?}"
        );
        assert_eq!(s.name, format!("{op} {destination}"), "{s:?}");
        if s.kind == CONSUMER {
            assert!(a.contains_key("messaging.destination.subscription.name"), "the queue: {s:?}");
        }
    }
    let consume = spans.iter().find(|s| s.kind == CONSUMER && s.service == "worker").unwrap();
    assert!(consume.attributes["messaging.destination.subscription.name"].ends_with("jobs.high"), "{consume:?}");
    assert_eq!(consume.attributes.get("docflow.priority").map(String::as_str), Some("HIGH"));
}
