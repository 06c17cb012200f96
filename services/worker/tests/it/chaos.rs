//! Chaos: jobs are submitted at a steady rate while, round after round, a
//! worker is killed with SIGKILL, every service's broker and database
//! connections are cut and restored (TCP proxies in front of the shared
//! servers), and a worker is stopped with SIGTERM mid-job. At the end every
//! job is COMPLETED exactly once: one COMPLETED event, one result row, one
//! completed execution in metrics-tracker, nothing left in a non-final
//! status, and the outbox empty.
//!
//! The suite runs a few hundred jobs. `make chaos N=10000` runs the same
//! test with `CHAOS_JOBS` (and `CHAOS_RATE`, jobs submitted per second) and
//! prints the report: submitted, completed, lost, duplicated, and the time
//! to recover after each fault.

use std::collections::HashMap;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use test_support::{TcpProxy, eventually};

use crate::platform::{API_KEY, Platform, Setup, text_invoice};

const WORKERS: usize = 2;

fn setting(name: &str, default: usize) -> usize {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

/// What a worker (re)starts with: a short lease so a killed worker's jobs
/// are rescued in seconds, and a shutdown grace well inside the test's wait.
fn worker_env() -> Vec<(&'static str, String)> {
    vec![
        ("WORKER_LEASE_SECONDS", "3".to_owned()),
        ("WORKER_SHUTDOWN_GRACE_SECONDS", "15".to_owned()),
        ("DATABASE_ACQUIRE_TIMEOUT_MS", "1000".to_owned()),
    ]
}

#[derive(Debug, Clone, Copy)]
enum Fault {
    Kill9,
    BrokerCut,
    DatabaseCut,
    SigtermMidJob,
}

const ROUND: [Fault; 4] = [Fault::Kill9, Fault::BrokerCut, Fault::DatabaseCut, Fault::SigtermMidJob];

/// Submits `total` documents at `rate` per second over HTTP, each with its
/// document id as the idempotency key, retrying until it is accepted: a
/// client that got a 503 or a reset connection while the database or the
/// broker was away tries again, and the key makes a retry of a request that
/// did land return the same job.
struct Submitter {
    task: tokio::task::JoinHandle<Vec<String>>,
}

impl Submitter {
    fn start(api: String, blob_dir: PathBuf, total: usize, rate: usize) -> Submitter {
        let task = tokio::spawn(async move {
            let http = reqwest::Client::builder()
                .timeout(Duration::from_secs(10))
                .pool_idle_timeout(Duration::from_secs(2))
                .build()
                .unwrap();
            let mut jobs = Vec::with_capacity(total);
            let mut tick = tokio::time::interval(Duration::from_secs_f64(1.0 / rate.max(1) as f64));
            for i in 0..total {
                tick.tick().await;
                let document_id = format!("chaos-{i}");
                let path = format!("in/{document_id}/invoice.txt");
                let bytes = text_invoice(&document_id);
                let full = blob_dir.join(&path);
                std::fs::create_dir_all(full.parent().unwrap()).unwrap();
                std::fs::write(full, &bytes).unwrap();
                let priority = ["HIGH", "NORMAL", "LOW"][i % 3];
                let body = json!({
                    "document_id": document_id,
                    "filename": "invoice.txt",
                    "blob_path": path,
                    "file_size": bytes.len(),
                    "priority": priority,
                });
                jobs.push(submit_until_accepted(&http, &api, &document_id, &body).await);
            }
            jobs
        });
        Submitter { task }
    }

    fn finished(&self) -> bool {
        self.task.is_finished()
    }
}

async fn submit_until_accepted(http: &reqwest::Client, api: &str, key: &str, body: &Value) -> String {
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let sent = http.post(api).bearer_auth(API_KEY).header("Idempotency-Key", key).json(body).send().await;
        match sent {
            Ok(response) if response.status() == 202 => {
                let accepted: Value = response.json().await.unwrap();
                return accepted["job_id"].as_str().unwrap().to_owned();
            }
            Ok(response) if response.status().is_client_error() => {
                panic!("{key} refused: {} {}", response.status(), response.text().await.unwrap_or_default())
            }
            // 5xx (the database or broker away) or no answer at all: try again.
            _ => {}
        }
        assert!(Instant::now() < deadline, "{key} was never accepted");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

struct Recovery {
    fault: Fault,
    /// From the fault until it ended: the connection restored, the worker
    /// restarted and ready.
    outage: Duration,
    /// From the fault until every job created before it is final.
    recovered_in: Duration,
}

/// The database's clock, as seconds since the epoch (jobs.created_at is
/// set by it).
async fn database_now(platform: &Platform) -> f64 {
    sqlx::query_scalar("SELECT extract(epoch FROM clock_timestamp())::float8")
        .fetch_one(&platform.db.pool)
        .await
        .unwrap()
}

async fn unfinished_created_before(platform: &Platform, before: f64) -> i64 {
    sqlx::query_scalar(
        "SELECT count(*) FROM jobs WHERE created_at <= to_timestamp($1) \
         AND status NOT IN ('COMPLETED', 'FAILED', 'DLQ')",
    )
    .bind(before)
    .fetch_one(&platform.db.pool)
    .await
    .unwrap()
}

async fn processing(platform: &Platform) -> i64 {
    platform.count("SELECT count(*) FROM jobs WHERE status = 'PROCESSING'").await
}

/// Waits (a little) for a job to be in flight, so the fault hits one.
async fn some_job_in_flight(platform: &Platform) {
    let deadline = Instant::now() + Duration::from_secs(5);
    while processing(platform).await == 0 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Inflicts `fault` and ends it (restores the connection, restarts the
/// worker); returns when the fault began and how long it lasted.
async fn inflict(
    platform: &mut Platform,
    fault: Fault,
    round: usize,
    amqp: &TcpProxy,
    pg: &TcpProxy,
) -> (Instant, Duration) {
    let env = worker_env();
    some_job_in_flight(platform).await;
    let began = Instant::now();
    match fault {
        Fault::Kill9 => {
            let index = round % WORKERS;
            platform.workers[index].kill9();
            tokio::time::sleep(Duration::from_millis(500)).await;
            platform.restart_worker(index, &env).await;
        }
        Fault::BrokerCut => {
            amqp.cut();
            tokio::time::sleep(Duration::from_secs(2)).await;
            amqp.restore();
        }
        Fault::DatabaseCut => {
            pg.cut();
            tokio::time::sleep(Duration::from_secs(2)).await;
            pg.restore();
        }
        Fault::SigtermMidJob => {
            let index = (round + 1) % WORKERS;
            let status = platform.workers[index].terminate(Duration::from_secs(60)).await;
            assert!(status.success(), "worker-{index} exits 0 on SIGTERM, got {status}");
            platform.restart_worker(index, &env).await;
        }
    }
    (began, began.elapsed())
}

async fn all_final(platform: &Platform, total: usize, timeout: Duration) {
    eventually(timeout, &format!("all {total} jobs final (logs in {})", platform.log_dir.display()), || async {
        let done = platform.count("SELECT count(*) FROM jobs WHERE status IN ('COMPLETED', 'FAILED', 'DLQ')").await;
        (done == total as i64).then_some(())
    })
    .await;
}

/// How many lines of every worker log so far (restarted ones included)
/// contain `needle`.
fn count_in_worker_logs(platform: &Platform, needle: &str) -> usize {
    std::fs::read_dir(&platform.log_dir)
        .unwrap()
        .filter_map(Result::ok)
        .filter(|e| e.file_name().to_string_lossy().starts_with("worker-"))
        .map(|e| std::fs::read_to_string(e.path()).unwrap_or_default().matches(needle).count())
        .sum()
}

#[tokio::test]
async fn chaos_every_job_completes_exactly_once() {
    let total = setting("CHAOS_JOBS", 300);
    let rate = setting("CHAOS_RATE", 12);
    let amqp = TcpProxy::start("127.0.0.1:5672".parse().unwrap()).await;
    let pg = TcpProxy::start("127.0.0.1:5432".parse().unwrap()).await;
    let mut platform = Platform::start(Setup {
        workers: 0,
        // Retries are part of the run (a cut can fail a stage): keep them short.
        max_retries: 5,
        amqp_url: Some(format!("amqp://guest:guest@{}/%2f", amqp.addr())),
        database_via: Some(pg.addr()),
        extra_env: vec![("RATE_LIMIT_PER_SECOND", "100000".to_owned())],
        ..Setup::default()
    })
    .await;
    platform.start_metrics_tracker().await;
    for _ in 0..WORKERS {
        platform.start_worker(&worker_env()).await;
    }

    let started = Instant::now();
    let submitter = Submitter::start(platform.api("/api/process-async"), platform.blob_dir.clone(), total, rate);
    let mut recoveries = Vec::new();
    let mut round = 0;
    // Faults keep coming while jobs are submitted, and at least one whole round.
    while !submitter.finished() || round == 0 {
        for fault in ROUND {
            let before = database_now(&platform).await;
            let (began, outage) = inflict(&mut platform, fault, round, &amqp, &pg).await;
            eventually(Duration::from_secs(120), &format!("recovery after {fault:?}"), || async {
                (unfinished_created_before(&platform, before).await == 0).then_some(())
            })
            .await;
            recoveries.push(Recovery { fault, outage, recovered_in: began.elapsed() });
        }
        round += 1;
    }
    let jobs = submitter.task.await.unwrap();
    assert_eq!(jobs.len(), total);
    all_final(&platform, total, Duration::from_secs(300)).await;
    let tracker = platform.metrics_tracker.as_ref().map(|t| t.log.display().to_string());
    eventually(Duration::from_secs(60), &format!("metrics-tracker to record every job ({tracker:?})"), || async {
        let recorded =
            platform.count("SELECT count(DISTINCT job_id) FROM metric_executions WHERE outcome = 'completed'").await;
        (recorded >= total as i64).then_some(())
    })
    .await;
    eventually(Duration::from_secs(30), "the outbox to drain", || async {
        (platform.count("SELECT count(*) FROM outbox").await == 0).then_some(())
    })
    .await;

    let distinct_jobs: std::collections::HashSet<&String> = jobs.iter().collect();
    let report = Report {
        submitted: total,
        jobs: platform.count("SELECT count(*) FROM jobs").await,
        completed: platform.count("SELECT count(*) FROM jobs WHERE status = 'COMPLETED'").await,
        not_completed: platform.count("SELECT count(*) FROM jobs WHERE status <> 'COMPLETED'").await,
        duplicate_jobs: platform.count(
            "SELECT count(*) FROM (SELECT document_id FROM jobs GROUP BY document_id HAVING count(*) > 1) d",
        )
        .await,
        completed_events_not_one: platform.jobs_not_completed_exactly_once().await,
        results_not_one: platform.count(
            "SELECT count(*) FROM jobs j WHERE (SELECT count(*) FROM document_results r WHERE r.job_id = j.job_id) <> 1",
        )
        .await,
        executions_not_one: platform.count(
            "SELECT count(*) FROM jobs j WHERE (SELECT count(*) FROM metric_executions m \
             WHERE m.job_id = j.job_id AND m.outcome = 'completed') <> 1",
        )
        .await,
        outbox: platform.count("SELECT count(*) FROM outbox").await,
        crash_recoveries: platform
            .count("SELECT count(*) FROM job_events WHERE (detail->>'recovered_from_crash')::boolean")
            .await,
        retries: platform.count("SELECT count(*) FROM job_events WHERE to_status = 'RETRYING'").await,
        stuck_at_shutdown: count_in_worker_logs(&platform, "exiting without it"),
        slow_settles: count_in_worker_logs(&platform, "settling deliveries took over"),
        rounds: round,
        elapsed: started.elapsed(),
        recoveries,
    };
    report.print();
    assert_eq!(distinct_jobs.len(), total, "one job id per document");
    assert_eq!(report.jobs, total as i64, "one job row per submitted document");
    assert_eq!(report.duplicate_jobs, 0, "no document made two jobs");
    assert_eq!(report.completed, total as i64, "every job COMPLETED (lost: {})", report.not_completed);
    assert_eq!(report.completed_events_not_one, 0, "each job has exactly one COMPLETED event");
    assert_eq!(report.results_not_one, 0, "each job has exactly one result row");
    assert_eq!(report.executions_not_one, 0, "metrics-tracker recorded exactly one completed execution per job");
    assert_eq!(report.outbox, 0, "the outbox is empty");
}

struct Report {
    submitted: usize,
    jobs: i64,
    completed: i64,
    not_completed: i64,
    duplicate_jobs: i64,
    completed_events_not_one: i64,
    results_not_one: i64,
    executions_not_one: i64,
    outbox: i64,
    crash_recoveries: i64,
    retries: i64,
    /// Shutdowns that left work behind (bounded, but a sign of a stuck peer).
    stuck_at_shutdown: usize,
    slow_settles: usize,
    rounds: usize,
    elapsed: Duration,
    recoveries: Vec<Recovery>,
}

impl Report {
    fn print(&self) {
        let duplicated = self.duplicate_jobs + self.completed_events_not_one.max(self.results_not_one);
        println!("chaos: {} rounds of {:?} in {:.0?}", self.rounds, ROUND, self.elapsed);
        println!(
            "submitted {}  jobs {}  completed {}  lost {}  duplicated {}  (crash recoveries {}, retries {}, outbox left {})",
            self.submitted,
            self.jobs,
            self.completed,
            self.not_completed,
            duplicated,
            self.crash_recoveries,
            self.retries,
            self.outbox
        );
        println!(
            "shutdowns that left stuck work behind: {}; settles that timed out: {}",
            self.stuck_at_shutdown, self.slow_settles
        );
        let mut by_fault: HashMap<String, (Vec<Duration>, Vec<Duration>)> = HashMap::new();
        for r in &self.recoveries {
            let (outages, recoveries) = by_fault.entry(format!("{:?}", r.fault)).or_default();
            outages.push(r.outage);
            recoveries.push(r.recovered_in);
        }
        let mut faults: Vec<_> = by_fault.into_iter().collect();
        faults.sort_by(|a, b| a.0.cmp(&b.0));
        println!(
            "  fault          count  outage median  recovered median / max (from the fault until every earlier job is final)"
        );
        for (fault, (mut outages, mut times)) in faults {
            outages.sort();
            times.sort();
            println!(
                "  {fault:<14} {:>5}  {:>11.1} s  {:>8.1} s / {:.1} s",
                times.len(),
                outages[outages.len() / 2].as_secs_f64(),
                times[times.len() / 2].as_secs_f64(),
                times.last().copied().unwrap_or_default().as_secs_f64()
            );
        }
    }
}
