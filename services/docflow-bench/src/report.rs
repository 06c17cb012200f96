//! The report: JSON (everything) and a table (the headline figures), and,
//! given the Celery baseline's JSON, the ratios to it.

use std::fmt::Write as _;

use serde::Serialize;
use serde_json::Value;

use crate::phases::PhaseResult;

#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub started_unix: u64,
    pub finished_unix: u64,
    pub settings: Value,
    pub machine: Value,
    pub phases: Vec<PhaseResult>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub baseline: Option<Value>,
}

fn opt(x: Option<f64>) -> String {
    x.map(|v| format!("{v:.1}")).unwrap_or_else(|| "-".into())
}

/// One line per phase.
pub fn table(report: &Report) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{:<11} {:>3} {:>6} {:>6} {:>8} {:>8} {:>8} {:>8} {:>8} {:>8} {:>8} {:>7} {:>7}",
        "phase",
        "wp",
        "jobs",
        "done",
        "202/s",
        "202 p50",
        "202 p99",
        "jobs/s",
        "e2e p50",
        "e2e p95",
        "e2e p99",
        "cpu ms",
        "xact"
    );
    for p in &report.phases {
        let a = p.accept_latency_ms.as_ref();
        let e = p.e2e_ms.as_ref();
        let _ = writeln!(
            out,
            "{:<11} {:>3} {:>6} {:>6} {:>8} {:>8} {:>8} {:>8} {:>8} {:>8} {:>8} {:>7.2} {:>7.2}",
            p.name,
            p.worker_processes,
            p.jobs_submitted,
            p.jobs_completed,
            opt(p.accepted_per_s),
            opt(a.map(|d| d.p50)),
            opt(a.map(|d| d.p99)),
            opt(p.jobs_per_s),
            opt(e.map(|d| d.p50)),
            opt(e.map(|d| d.p95)),
            opt(e.map(|d| d.p99)),
            p.cpu_ms_per_job.get("total").copied().unwrap_or(0.0),
            p.pg_per_job.transactions,
        );
    }
    let _ = writeln!(
        out,
        "\n(wp: worker processes; 202 and e2e in ms; e2e = completed_at - created_at; cpu ms and xact per job)"
    );
    for p in &report.phases {
        if let (Some(w), Some(b)) = (&p.high_wait_ms, p.low_backlog_at_high_submit) {
            let _ = writeln!(
                out,
                "priority: {} HIGH behind {b} queued LOW: wait p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
                w.n, w.p50, w.p99, w.max
            );
        }
    }
    for p in report.phases.iter().filter(|p| p.headline_runs.len() > 1) {
        let runs: Vec<String> = p.headline_runs.iter().map(|v| format!("{v:.1}")).collect();
        let _ = writeln!(out, "runs of {}: {} = [{}] (the median run is shown)", p.name, p.headline, runs.join(", "));
    }
    let _ = writeln!(out, "\nCPU ms per job by process group:");
    for p in &report.phases {
        let groups: Vec<String> = p.cpu_ms_per_job.iter().map(|(k, v)| format!("{k} {v:.2}")).collect();
        let _ = writeln!(
            out,
            "  {:<11} {}  (ours {:.0}% of the machine, other load {:.1} s)",
            p.name,
            groups.join(", "),
            p.cpu.ours_pct_of_machine,
            p.cpu.other_s
        );
    }
    for p in &report.phases {
        let Some(counts) = &p.counts_per_job else { continue };
        let _ = writeln!(out, "\nPer job, per process ({}, counted by the protocol proxies):", p.name);
        let _ = writeln!(
            out,
            "  {:<16} {:>7} {:>7} {:>7} {:>7} {:>7} {:>8} {:>7} {:>8} {:>8}",
            "process", "pg stmt", "pg rtt", "pg xact", "pings", "parses", "publish", "acks", "deliver", "confirms"
        );
        let total = p.counts_total_per_job.clone().unwrap_or_default();
        for (name, c) in counts.iter().map(|(n, c)| (n.as_str(), c)).chain([("total", &total)]) {
            let _ = writeln!(
                out,
                "  {:<16} {:>7.2} {:>7.2} {:>7.2} {:>7.2} {:>7.2} {:>8.2} {:>7.2} {:>8.2} {:>8.2}",
                name,
                c.pg_statements,
                c.pg_round_trips,
                c.pg_transactions,
                c.pg_pings,
                c.pg_parses,
                c.amqp_publishes,
                c.amqp_ack_frames,
                c.amqp_deliveries,
                c.amqp_confirm_frames
            );
        }
        let pg = &p.pg_per_job;
        let _ = writeln!(
            out,
            "  pg_stat_database per job: {:.2} transactions, rows {:.2} inserted / {:.2} updated / {:.2} deleted; \
             cluster WAL {:.2} records, {:.2} KiB, {:.2} fsyncs",
            pg.transactions,
            pg.rows_inserted,
            pg.rows_updated,
            pg.rows_deleted,
            pg.wal_records_cluster,
            pg.wal_kib_cluster,
            pg.wal_fsyncs_cluster
        );
    }
    out
}

/// A Celery phase by name prefix (a re-run one carries a `_tryN` suffix).
fn celery_phase<'a>(baseline: &'a Value, prefix: &str) -> Option<&'a Value> {
    baseline["phases"].as_array()?.iter().find(|p| p["phase"].as_str().is_some_and(|n| n.starts_with(prefix)))
}

fn celery_cpu_ms_per_job(phase: &Value) -> Option<f64> {
    let cpu = &phase["cpu"];
    let s: f64 = ["worker_cpu_s", "rabbitmq_cpu_s", "postgres_cpu_s", "driver_cpu_s"]
        .iter()
        .filter_map(|k| cpu[*k].as_f64())
        .sum();
    let n = phase["completed"].as_f64().or(phase["n"].as_f64())?;
    Some(s * 1000.0 / n)
}

/// docflow beside Celery, figure by figure, with docflow / Celery.
pub fn ratios(report: &Report, baseline: &Value) -> String {
    let find = |name: &str| report.phases.iter().find(|p| p.name == name);
    let mut rows: Vec<(String, Option<f64>, Option<f64>)> = Vec::new();
    let b = |prefix: &str, key: &str| celery_phase(baseline, prefix).and_then(|p| p[key].as_f64());
    let bl = |prefix: &str, key: &str, q: &str| celery_phase(baseline, prefix).and_then(|p| p[key][q].as_f64());
    rows.push((
        "end to end, 1 worker process (jobs/s)".into(),
        find("e2e-w1").and_then(|p| p.jobs_per_s),
        b("B_e2e", "throughput_jobs_per_s"),
    ));
    rows.push((
        "drain of a queued backlog, 1 worker process (jobs/s)".into(),
        find("drain").and_then(|p| p.jobs_per_s),
        b("A3_drain", "drain_jobs_per_s"),
    ));
    rows.push((
        "durable enqueue/s (docflow: 202/s, 16 clients; Celery: 1 producer, confirms)".into(),
        find("ingest").and_then(|p| p.accepted_per_s),
        b("A2_enqueue_confirm", "enqueue_jobs_per_s"),
    ));
    rows.push((
        "CPU per job, end to end, all processes (ms)".into(),
        find("e2e-w1").and_then(|p| p.cpu_ms_per_job.get("total").copied()),
        celery_phase(baseline, "B_e2e").and_then(celery_cpu_ms_per_job),
    ));
    for (name, prefix) in [("paced-100", "D_paced_100"), ("paced-250", "D_paced_250")] {
        for q in ["p50", "p99"] {
            rows.push((
                format!("{name}: completed - created {q} (ms)"),
                find(name).and_then(|p| p.e2e_ms.map(|d| if q == "p50" { d.p50 } else { d.p99 })),
                bl(prefix, "latency_ms(completed-created)", q),
            ));
        }
    }
    for q in ["p50", "max"] {
        rows.push((
            format!("HIGH wait behind a LOW backlog {q} (ms)"),
            find("priority").and_then(|p| p.high_wait_ms.map(|d| if q == "p50" { d.p50 } else { d.max })),
            bl("P1_lanes", "high_wait_ms(started-created)", q),
        ));
    }
    let mut out = String::new();
    let _ = writeln!(out, "{:<78} {:>9} {:>9} {:>8}", "figure", "docflow", "Celery", "ratio");
    for (label, d, c) in rows {
        let ratio = match (d, c) {
            (Some(d), Some(c)) if c != 0.0 => format!("{:.2}", d / c),
            _ => "-".into(),
        };
        let _ = writeln!(out, "{label:<78} {:>9} {:>9} {ratio:>8}", opt(d), opt(c));
    }
    out
}
