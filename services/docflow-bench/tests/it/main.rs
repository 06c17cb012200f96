//! The generator end to end at a tiny size: a change that breaks the bench
//! (or the services' settings it relies on) fails here, not at the next
//! `make bench`. Figures are not judged: only that they are there and sane.

use std::process::Command;

use serde_json::Value;

#[test]
fn a_tiny_run_reports_every_job_and_its_costs() {
    let out = std::env::temp_dir().join(format!("docflow-bench-it-{}.json", std::process::id()));
    let run = Command::new(env!("CARGO_BIN_EXE_docflow-bench"))
        .args(["--phases", "counts,counts-paced", "--count-jobs", "30"])
        // 30 jobs paced too: 30 a second for a second.
        .args(["--paced-rates", "30", "--paced-seconds", "1"])
        .args(["--warmup-jobs", "5", "--clients", "4", "--phase-timeout-seconds", "60"])
        .arg("--out")
        .arg(&out)
        .output()
        .expect("running docflow-bench");
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert!(run.status.success(), "docflow-bench failed:\n{stderr}");
    let stdout = String::from_utf8_lossy(&run.stdout);
    assert!(stdout.contains("counts-w1") && stdout.contains("counts-paced-30"), "table:\n{stdout}");

    let report: Value = serde_json::from_slice(&std::fs::read(&out).unwrap()).unwrap();
    let _ = std::fs::remove_file(&out);
    let phases = report["phases"].as_array().unwrap();
    assert_eq!(phases.len(), 2, "{report:#}");
    for phase in phases {
        let name = phase["name"].as_str().unwrap();
        assert_eq!(phase["jobs_submitted"], 30, "{name}");
        assert_eq!(phase["jobs_accepted"], 30, "{name}");
        assert_eq!(phase["jobs_completed"], 30, "{name}: {phase:#}");
        assert_eq!(phase["jobs_failed"], 0, "{name}");
        assert!(phase["jobs_per_s"].as_f64().unwrap() > 0.0, "{name}");
        let e2e = &phase["e2e_ms"];
        assert_eq!(e2e["n"], 30, "{name}");
        let (p50, p99) = (e2e["p50"].as_f64().unwrap(), e2e["p99"].as_f64().unwrap());
        assert!(p50 > 0.0 && p50 <= p99, "{name}: {e2e}");
        assert!(phase["cpu_ms_per_job"]["total"].as_f64().unwrap() > 0.0, "{name}");
        for group in ["ingest-api", "worker", "metrics-tracker", "postgres", "generator"] {
            assert!(phase["cpu"]["seconds"].get(group).is_some(), "{name}: no CPU for {group}: {}", phase["cpu"]);
        }
        // A job is at least a submit transaction and a recorded outcome.
        assert!(phase["pg_per_job"]["transactions"].as_f64().unwrap() >= 2.0, "{name}: {}", phase["pg_per_job"]);
    }
    for phase in phases {
        let counts = &phase["counts_per_job"];
        for process in ["ingest-api", "worker-0", "metrics-tracker"] {
            assert!(counts[process]["pg_statements"].as_f64().unwrap() > 0.0, "{process}: {counts:#}");
        }
        // Each job: its message (published by ingest's relay, or by any
        // relay's poll), a delivery and an ack at the worker.
        let total = &phase["counts_total_per_job"];
        assert!(total["amqp_publishes"].as_f64().unwrap() >= 1.0, "{total:#}");
        assert!(counts["worker-0"]["amqp_deliveries"].as_f64().unwrap() >= 1.0, "{counts:#}");
        assert!(counts["worker-0"]["amqp_ack_frames"].as_f64().unwrap() > 0.0, "{counts:#}");
    }
}
