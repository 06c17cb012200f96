//! Metrics by convention, checked on a live scrape of every service: the
//! names the alert rules, the Grafana dashboard and the worker's KEDA
//! ScaledObject use are exported (read from those files, not from a list
//! kept here), each fact has one name
//! and one owner, label values are lower case, the worker and
//! metrics-tracker time the same things on the same buckets, and every
//! service exports `docflow_build_info` and the `process_*` metrics.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use serde_json::Value;
use test_support::eventually;

use crate::platform::{Platform, Setup, text_invoice};

/// The repository's root (this crate is services/worker).
fn repo_file(path: &str) -> String {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    std::fs::read_to_string(root.join(path)).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// One sample line of the text exposition format.
#[derive(Debug)]
struct Sample {
    name: String,
    labels: BTreeMap<String, String>,
}

/// Parses `name{k="v",...} value` lines; comments and blank lines skipped.
fn samples(body: &str) -> Vec<Sample> {
    let mut out = Vec::new();
    for line in body.lines().filter(|l| !l.starts_with('#') && !l.trim().is_empty()) {
        let end = line.find(['{', ' ']).unwrap_or(line.len());
        let name = line[..end].to_owned();
        let mut labels = BTreeMap::new();
        if line[end..].starts_with('{') {
            let mut rest = &line[end + 1..];
            while let Some(eq) = rest.find("=\"") {
                let key = rest[..eq].trim_start_matches(',').to_owned();
                let mut value = String::new();
                let mut chars = rest[eq + 2..].char_indices();
                let mut close = 0;
                while let Some((i, c)) = chars.next() {
                    match c {
                        '\\' => value.extend(chars.next().map(|(_, c)| c)),
                        '"' => {
                            close = eq + 2 + i;
                            break;
                        }
                        c => value.push(c),
                    }
                }
                labels.insert(key, value);
                rest = &rest[close + 1..];
                if rest.starts_with('}') {
                    break;
                }
            }
        }
        out.push(Sample { name, labels });
    }
    out
}

/// Metric names in a PromQL expression (or any text): `docflow_*` and
/// `process_*` tokens.
fn metric_names(text: &str) -> BTreeSet<String> {
    text.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == ':'))
        .filter(|t| t.starts_with("docflow_") || t.starts_with("process_"))
        .map(str::to_owned)
        .collect()
}

/// Every metric name a YAML file uses (alert rules, the ScaledObject's
/// trigger queries), comments left out.
fn yaml_names(path: &str) -> BTreeSet<String> {
    let text = repo_file(path);
    let text: String = text.lines().filter(|l| !l.trim_start().starts_with('#')).collect::<Vec<_>>().join("\n");
    metric_names(&text)
}

/// Every metric name the dashboard's panels and variables query.
fn dashboard_names() -> BTreeSet<String> {
    let dash: Value = serde_json::from_str(&repo_file("deploy/grafana/docflow-dashboard.json")).unwrap();
    let mut exprs = Vec::new();
    fn walk(panels: &Value, exprs: &mut Vec<String>) {
        for p in panels.as_array().into_iter().flatten() {
            for t in p["targets"].as_array().into_iter().flatten() {
                exprs.extend(t["expr"].as_str().map(str::to_owned));
            }
            walk(&p["panels"], exprs);
        }
    }
    walk(&dash["panels"], &mut exprs);
    for v in dash["templating"]["list"].as_array().into_iter().flatten() {
        exprs.extend(v["definition"].as_str().map(str::to_owned));
        exprs.extend(v["query"]["query"].as_str().or(v["query"].as_str()).map(str::to_owned));
    }
    assert!(exprs.len() >= 10, "the dashboard's expressions were not found: {exprs:?}");
    exprs.iter().flat_map(|e| metric_names(e)).collect()
}

/// The metric family a sample belongs to (histogram and counter suffixes off).
fn family(name: &str) -> &str {
    for suffix in ["_bucket", "_count", "_sum", "_total", "_created", "_info"] {
        if let Some(base) = name.strip_suffix(suffix) {
            return base;
        }
    }
    name
}

/// Families more than one service exports, each about itself.
fn shared_by_design(family: &str) -> bool {
    family.starts_with("process_")
        || family == "docflow_build"
        || family == "docflow_http_request_duration_seconds"
        // Every process that runs an outbox relay reports on its own relay.
        || ["published", "handed_over", "handovers_dropped", "publish_failures", "unroutable", "parked", "broker_connected"]
            .iter()
            .any(|s| family == format!("docflow_outbox_{s}"))
}

fn buckets(samples: &[Sample], name: &str) -> BTreeSet<String> {
    samples.iter().filter(|s| s.name == name).filter_map(|s| s.labels.get("le").cloned()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_service_exports_what_the_alerts_and_the_dashboard_use() {
    let mut platform = Platform::start(Setup::default()).await;
    platform.start_metrics_tracker().await;
    platform.start_dlq_admin().await;
    // One job through, so the event-driven series have samples.
    let job = platform.submit_document("conventions-1", "invoice.txt", &text_invoice("INV-CV1"), "HIGH").await;
    assert_eq!(platform.wait_final(&job, Duration::from_secs(60)).await["job_status"], "COMPLETED");

    let tracker = platform.metrics_tracker.as_ref().unwrap().port;
    let services = [
        ("ingest-api", platform.ingest.port),
        ("worker", platform.workers[0].port),
        ("metrics-tracker", tracker),
        ("dlq-admin", platform.dlq_admin.as_ref().unwrap().port),
    ];
    let http = platform.http.clone();
    let scrape = |port: u16| {
        let http = http.clone();
        async move {
            let r = http.get(format!("http://127.0.0.1:{port}/metrics")).send().await.unwrap();
            assert!(r.status().is_success());
            r.text().await.unwrap()
        }
    };
    // metrics-tracker records the job's event asynchronously.
    eventually(Duration::from_secs(30), "metrics-tracker to record the attempt", || async {
        scrape(tracker)
            .await
            .contains("docflow_job_attempts_total{outcome=\"completed\",priority=\"high\"} 1")
            .then_some(())
    })
    .await;

    let mut by_service: BTreeMap<&str, Vec<Sample>> = BTreeMap::new();
    for (service, port) in services {
        by_service.insert(service, samples(&scrape(port).await));
    }
    let exported: BTreeSet<String> = by_service.values().flatten().map(|s| s.name.clone()).collect();

    // 1. Every name the rules, the dashboard and the autoscaler use is exported.
    let rules = yaml_names("deploy/prometheus/alerts.yml");
    let dashboard = dashboard_names();
    let scaler = yaml_names("deploy/k8s/keda/worker-scaledobject.yaml");
    assert!(
        rules.contains("docflow_build_info") && dashboard.contains("docflow_queue_jobs"),
        "{rules:?} {dashboard:?}"
    );
    assert!(scaler.contains("docflow_queue_oldest_job_age_seconds"), "{scaler:?}");
    let used: BTreeSet<&String> = rules.iter().chain(&dashboard).chain(&scaler).collect();
    let missing: Vec<&&String> = used.iter().filter(|n| !exported.contains(**n)).collect();
    assert!(
        missing.is_empty(),
        "used by alerts.yml, the dashboard or the worker ScaledObject but exported by no service: {missing:?}"
    );

    // 2. Build info and process metrics on every service.
    for (service, samples) in &by_service {
        let info = samples.iter().find(|s| s.name == "docflow_build_info").unwrap_or_else(|| panic!("{service}"));
        assert_eq!(info.labels.get("service").map(String::as_str), Some(*service));
        assert!(info.labels.get("version").is_some_and(|v| !v.is_empty()), "{info:?}");
        for name in [
            "process_cpu_seconds_total",
            "process_resident_memory_bytes",
            "process_virtual_memory_bytes",
            "process_start_time_seconds",
            "process_open_fds",
            "process_max_fds",
        ] {
            assert!(samples.iter().any(|s| s.name == name), "{service} does not export {name}");
        }
    }

    // 3. One name per fact: no family from two services, but those about
    //    the exporting process itself.
    let mut owners: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
    for (service, samples) in &by_service {
        for s in samples {
            owners.entry(family(&s.name)).or_default().insert(service);
        }
    }
    let twice: Vec<_> = owners.iter().filter(|(f, o)| o.len() > 1 && !shared_by_design(f)).collect();
    assert!(twice.is_empty(), "exported by more than one service: {twice:?}");

    // 4. Label values in lower case (HTTP methods are spelled as HTTP spells them).
    for (service, samples) in &by_service {
        for s in samples {
            for (k, v) in &s.labels {
                if k != "method" && k != "le" && *v != v.to_lowercase() {
                    panic!("{service}: {}{{{k}=\"{v}\"}} is not lower case", s.name);
                }
            }
        }
    }

    // 5. The same buckets for the same things in the worker and metrics-tracker.
    let worker = &by_service["worker"];
    let tracker = &by_service["metrics-tracker"];
    for (mine, fleet) in [
        ("docflow_worker_job_duration_seconds_bucket", "docflow_job_duration_seconds_bucket"),
        ("docflow_worker_stage_duration_seconds_bucket", "docflow_stage_duration_seconds_bucket"),
    ] {
        let (a, b) = (buckets(worker, mine), buckets(tracker, fleet));
        assert!(a.len() > 5, "{mine}: {a:?}");
        assert_eq!(a, b, "{mine} and {fleet} have different buckets");
    }
    // A whole attempt and its stages are two names: the attempt histogram has no stage label.
    assert!(
        tracker
            .iter()
            .filter(|s| s.name.starts_with("docflow_job_duration_seconds"))
            .all(|s| !s.labels.contains_key("stage"))
    );
}

#[test]
fn the_exposition_parser_reads_labels_with_escapes() {
    let s = samples("# HELP x y\nx_total{a=\"1\",b=\"q\\\"uo,te\"} 3\nplain 1\n");
    assert_eq!(s.len(), 2);
    assert_eq!(s[0].name, "x_total");
    assert_eq!(s[0].labels["b"], "q\"uo,te");
    assert_eq!(s[1].name, "plain");
    assert_eq!(
        metric_names("sum(rate(docflow_a_total{x=\"y\"}[5m])) / process_open_fds"),
        ["docflow_a_total".to_owned(), "process_open_fds".to_owned()].into_iter().collect()
    );
}
