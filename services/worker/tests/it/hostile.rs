//! Hostile documents through the real worker binary (issue #10, items 5
//! and 6): each ends FAILED as `document_too_complex` on its first attempt,
//! the jobs beside them complete, and the worker's memory stays small.

use std::time::Duration;

use serde_json::Value;
use test_support::hostile;

use crate::platform::{Platform, Setup, text_invoice};

/// What the worker may reach while it reads hostile documents: lopdf's own
/// cap of 256 MiB must never be what stops one.
const MAX_PEAK_RSS_KB: u64 = 256 * 1024;

/// A `/proc/<pid>/status` field in kB (`VmHWM`: peak resident set size).
fn status_kb(pid: u32, field: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("the worker is running");
    let line = status.lines().find(|l| l.starts_with(field)).unwrap_or_else(|| panic!("no {field} in {status}"));
    line.split_whitespace().nth(1).and_then(|n| n.parse().ok()).expect("a number of kB")
}

/// Resets the peak RSS to the current RSS (proc(5), `clear_refs`, value 5),
/// so that the next reading is the peak of what comes after.
fn reset_peak(pid: u32) {
    std::fs::write(format!("/proc/{pid}/clear_refs"), "5").expect("clear_refs is writable for our own child");
}

fn assert_failed_too_complex(name: &str, status: &Value) {
    assert_eq!(status["job_status"], "FAILED", "{name}: {status}");
    assert_eq!(status["attempt"], 1, "{name}: no second attempt");
    assert_eq!(status["retry_count"], 0, "{name}: {status}");
    let message = status["error_message"].as_str().unwrap_or_default();
    assert!(message.contains("document_too_complex"), "{name}: {message}");
}

#[tokio::test]
async fn hostile_documents_fail_at_once_and_the_worker_keeps_its_memory() {
    let documents = hostile::all();
    let platform = Platform::start(Setup::default()).await;
    let pid = platform.workers[0].pid().expect("worker running");

    // One at a time, with the peak reset before each: its own peak.
    let mut peaks = Vec::new();
    for (name, bytes) in &documents {
        reset_peak(pid);
        let job = platform.submit_document(&format!("alone-{name}"), name, bytes, "NORMAL").await;
        let status = platform.wait_final(&job, Duration::from_secs(120)).await;
        assert_failed_too_complex(name, &status);
        let peak = status_kb(pid, "VmHWM:");
        println!("{name} ({} bytes): {}, worker peak RSS {} MiB", bytes.len(), status["error_message"], peak / 1024);
        peaks.push((*name, peak));
    }

    // All at once (four job slots), beside documents that are fine.
    reset_peak(pid);
    let mut hostile_jobs = Vec::new();
    for (name, bytes) in &documents {
        hostile_jobs.push((name, platform.submit_document(&format!("together-{name}"), name, bytes, "NORMAL").await));
    }
    let good = [
        platform.submit_document("good-text", "invoice.txt", &text_invoice("OK-1"), "NORMAL").await,
        platform.submit_document("good-pdf", "plain.pdf", &hostile::plain(), "NORMAL").await,
    ];
    for (name, job) in &hostile_jobs {
        assert_failed_too_complex(name, &platform.wait_final(job, Duration::from_secs(120)).await);
    }
    for job in &good {
        let status = platform.wait_final(job, Duration::from_secs(120)).await;
        assert_eq!(status["job_status"], "COMPLETED", "{status}");
        assert_eq!(status["attempt"], 1, "{status}");
    }
    let together = status_kb(pid, "VmHWM:");
    println!("all together: worker peak RSS {} MiB", together / 1024);
    peaks.push(("all together", together));

    for (name, peak) in peaks {
        assert!(peak < MAX_PEAK_RSS_KB, "{name}: the worker's peak RSS reached {} MiB", peak / 1024);
    }
    let crashes = platform.count("SELECT coalesce(sum(crash_count), 0)::bigint FROM jobs").await;
    assert_eq!(crashes, 0, "no job was charged a crash");
    assert_eq!(platform.workers[0].pid(), Some(pid), "the same worker did it all");
}

#[tokio::test]
async fn a_document_that_outlasts_its_cpu_budget_fails_once_and_is_not_retried() {
    // A stage limit well above the budget: the budget, in CPU time, is what
    // must stop the document, not a wall-clock timeout that is retried.
    let platform = Platform::start(Setup {
        worker_env: vec![
            ("WORKER_DOCUMENT_CPU_SECONDS", "0.3".to_owned()),
            ("WORKER_STAGE_TIMEOUT_SECONDS", "5".to_owned()),
        ],
        ..Setup::default()
    })
    .await;
    let costly = platform.submit_document("costly", "costly.pdf", &hostile::costly(8), "NORMAL").await;
    let good = platform.submit_document("beside", "invoice.txt", &text_invoice("OK-2"), "NORMAL").await;

    let status = platform.wait_final(&costly, Duration::from_secs(180)).await;
    assert_failed_too_complex("costly.pdf", &status);
    assert!(status["error_message"].as_str().unwrap().contains("of CPU"), "{status}");
    let runs: i64 =
        sqlx::query_scalar("SELECT count(*) FROM job_events WHERE job_id = $1::uuid AND to_status = 'PROCESSING'")
            .bind(&costly)
            .fetch_one(&platform.db.pool)
            .await
            .unwrap();
    assert_eq!(runs, 1, "parsed once, not once per retry");
    let beside = platform.wait_final(&good, Duration::from_secs(60)).await;
    assert_eq!(beside["job_status"], "COMPLETED", "{beside}");
}
