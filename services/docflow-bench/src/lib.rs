//! docflow-bench: the load generator of issue #11. It starts the real
//! service binaries (ingest-api, worker × N, metrics-tracker) on a fresh
//! database and queue namespace, drives ingest-api over HTTP and reports
//! durable 202/s, end-to-end throughput and latency, open-loop latency, the
//! HIGH-behind-LOW wait, the no-op platform cost, CPU per process group and
//! per-job database and broker counts, as a table and as JSON.
//! BENCHMARKS.md (repo root) has the method and the figures.

pub mod config;
pub mod cpu;
pub mod load;
pub mod phases;
pub mod platform;
pub mod proxy;
pub mod report;
pub mod stats;

use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::Context;

pub use config::{Config, PhaseKind};

fn now_unix() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
}

/// Runs every configured phase; writes the JSON report to `config.out`.
pub async fn run(config: Config) -> anyhow::Result<report::Report> {
    let started_unix = now_unix();
    let bins = platform::Binaries::locate(config.bin_dir.as_deref())?;
    let (work_dir, temporary) = match &config.work_dir {
        Some(d) => (d.clone(), false),
        None => (std::env::temp_dir().join(format!("docflow-bench-{}", test_support::unique_suffix())), true),
    };
    let blob_dir = work_dir.join("blobs");
    let needed = config.jobs.max(config.count_jobs).max(config.low_backlog + config.high_jobs)
        + config.warmup_jobs
        + config.paced_rates.iter().map(|r| (*r as f64 * config.paced_seconds) as usize).max().unwrap_or(0);
    let documents = load::ensure_documents(&blob_dir, needed).context("writing the documents")?;
    let settings = serde_json::json!({
        "phases": config.phases.iter().map(|p| format!("{p:?}").to_lowercase()).collect::<Vec<_>>(),
        "jobs": config.jobs,
        "clients": config.clients,
        "workers": config.workers,
        "worker_concurrency (WORKER_COUNT)": config.worker_concurrency,
        "worker_prefetch (WORKER_PREFETCH_COUNT)": config.worker_prefetch,
        "worker_env": config.worker_env.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>(),
        "paced_rates": config.paced_rates,
        "paced_seconds": config.paced_seconds,
        "low_backlog": config.low_backlog,
        "high_jobs": config.high_jobs,
        "count_jobs": config.count_jobs,
        "repeat": config.repeat,
        "warmup_jobs": config.warmup_jobs,
        "RATE_LIMIT_PER_SECOND": config.rate_limit,
        "DATABASE_URL sslmode": config.database_sslmode,
        "binaries": bins.worker.parent().map(|p| p.display().to_string()),
        "document": format!("text invoice, ~{} bytes", documents.first().map(|d| d.1).unwrap_or(0)),
    });
    let runner = phases::Runner { config: config.clone(), bins, work_dir: work_dir.clone(), blob_dir, documents };
    let mut results = Vec::new();
    for kind in &config.phases {
        // name → its runs, in the order the phase reports them.
        let mut runs: Vec<(String, Vec<phases::PhaseResult>)> = Vec::new();
        for round in 1..=config.repeat {
            eprintln!("phase {kind:?} (run {round} of {})…", config.repeat);
            let phase = runner.run(*kind).await.with_context(|| format!("phase {kind:?}"))?;
            for p in phase {
                eprintln!(
                    "  {}: {} of {} completed, {:?} jobs/s, {:?} 202/s, cpu {:?} ms/job (other load {:.1} s)",
                    p.name,
                    p.jobs_completed,
                    p.jobs_submitted,
                    p.jobs_per_s,
                    p.accepted_per_s,
                    p.cpu_ms_per_job.get("total"),
                    p.cpu.other_s
                );
                match runs.iter_mut().find(|(n, _)| *n == p.name) {
                    Some((_, list)) => list.push(p),
                    None => runs.push((p.name.clone(), vec![p])),
                }
            }
        }
        results.extend(runs.into_iter().filter_map(|(_, list)| phases::median_run(list)));
    }
    let machine = machine_facts().await;
    let baseline = match &config.baseline {
        Some(path) => {
            Some(serde_json::from_slice(&std::fs::read(path).with_context(|| format!("reading {}", path.display()))?)?)
        }
        None => None,
    };
    let report =
        report::Report { started_unix, finished_unix: now_unix(), settings, machine, phases: results, baseline };
    if let Some(dir) = config.out.parent() {
        std::fs::create_dir_all(dir)?;
    }
    std::fs::write(&config.out, serde_json::to_vec_pretty(&report)?)
        .with_context(|| format!("writing {}", config.out.display()))?;
    if temporary {
        let _ = std::fs::remove_dir_all(&work_dir);
    }
    Ok(report)
}

async fn machine_facts() -> serde_json::Value {
    let cpus = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0);
    let model = std::fs::read_to_string("/proc/cpuinfo").ok().and_then(|s| {
        s.lines().find(|l| l.starts_with("model name")).map(|l| l.split(':').nth(1).unwrap_or("").trim().to_owned())
    });
    let postgres = match sqlx::PgPool::connect(&test_support::admin_database_url()).await {
        Ok(pool) => {
            let settings = stats::server_settings(&pool).await;
            pool.close().await;
            settings
        }
        Err(e) => serde_json::json!({ "error": e.to_string() }),
    };
    serde_json::json!({ "cpus": cpus, "cpu_model": model, "postgres": postgres })
}
