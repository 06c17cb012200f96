//! The measured phases. Each starts its own platform (fresh database and
//! namespace, fresh processes), warms it up, measures, stops the services
//! (which flushes their database statistics) and drops everything.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::Context;
use serde::Serialize;

use crate::config::{Config, PhaseKind};
use crate::cpu::{self, CpuUsage};
use crate::load::{self, Dist, LoadResult, Submit};
use crate::platform::{Binaries, Platform, Setup};
use crate::proxy::ProcessCounts;
use crate::stats::{self, PgPerJob};

/// The outcome of one phase.
#[derive(Debug, Clone, Serialize, Default)]
pub struct PhaseResult {
    pub name: String,
    pub worker_processes: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub clients: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rate_per_s: Option<u32>,
    pub jobs_submitted: usize,
    pub jobs_accepted: usize,
    pub jobs_completed: usize,
    /// FAILED or DLQ (none expected: every document is a valid invoice).
    pub jobs_failed: usize,
    /// Answers other than 202, by status code.
    pub http_errors: BTreeMap<String, usize>,
    /// 202s per second over the submission (first request to last answer).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub accepted_per_s: Option<f64>,
    /// Request to 202, milliseconds.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub accept_latency_ms: Option<Dist>,
    /// Completed jobs per second, first created to last completed (the
    /// drain: first started to last completed).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub jobs_per_s: Option<f64>,
    /// completed_at - created_at, milliseconds.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub e2e_ms: Option<Dist>,
    /// started_at - created_at, milliseconds.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub queue_wait_ms: Option<Dist>,
    /// Priority phase: HIGH jobs' started_at - created_at.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub high_wait_ms: Option<Dist>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub high_e2e_ms: Option<Dist>,
    /// Priority phase: LOW jobs still QUEUED when the first HIGH was sent.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub low_backlog_at_high_submit: Option<i64>,
    pub cpu: CpuUsage,
    /// CPU milliseconds per completed job, by group, and "total".
    pub cpu_ms_per_job: BTreeMap<String, f64>,
    pub pg_per_job: PgPerJob,
    /// Counting phase: per process, per job.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub counts_per_job: Option<BTreeMap<String, ProcessCounts>>,
    /// Counting phase: all processes together, per job.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub counts_total_per_job: Option<ProcessCounts>,
    /// The headline figure's name and its value in every run of this phase
    /// (this report is the run with the median one).
    pub headline: String,
    pub headline_runs: Vec<f64>,
}

impl PhaseResult {
    /// The figure a repeated phase is ranked by.
    pub fn headline_value(&self) -> (&'static str, f64) {
        let name = self.name.as_str();
        if name == "ingest" {
            ("accepted_per_s", self.accepted_per_s.unwrap_or(0.0))
        } else if name == "priority" {
            ("high_wait_ms.p50", self.high_wait_ms.map(|d| d.p50).unwrap_or(0.0))
        } else if name.starts_with("paced") {
            ("e2e_ms.p50", self.e2e_ms.map(|d| d.p50).unwrap_or(0.0))
        } else {
            ("jobs_per_s", self.jobs_per_s.unwrap_or(0.0))
        }
    }
}

/// Of several runs of the same phase, the one with the median headline
/// figure, carrying every run's figure.
pub fn median_run(mut runs: Vec<PhaseResult>) -> Option<PhaseResult> {
    let values: Vec<f64> = runs.iter().map(|r| r.headline_value().1).collect();
    runs.sort_by(|a, b| a.headline_value().1.total_cmp(&b.headline_value().1));
    let mut chosen = runs.swap_remove(runs.len().checked_sub(1)? / 2);
    chosen.headline = chosen.headline_value().0.to_owned();
    chosen.headline_runs = values;
    Some(chosen)
}

pub struct Runner {
    pub config: Config,
    pub bins: Binaries,
    pub work_dir: PathBuf,
    pub blob_dir: PathBuf,
    pub documents: Vec<(String, usize)>,
}

/// How a phase loads the platform.
enum Load {
    Closed { jobs: usize, clients: usize },
    Paced { jobs: usize, rate: u32 },
}

impl Runner {
    pub async fn run(&self, kind: PhaseKind) -> anyhow::Result<Vec<PhaseResult>> {
        let c = &self.config;
        let closed = Load::Closed { jobs: c.jobs, clients: c.clients };
        let plain = |workers| Setup { workers, tracker: true, worker_env: Vec::new(), count: false };
        Ok(match kind {
            PhaseKind::Ingest => self.ingest_and_drain().await?,
            PhaseKind::E2e => {
                let mut out = Vec::new();
                for &w in &c.workers {
                    let load = Load::Closed { jobs: c.jobs, clients: c.clients };
                    out.push(self.end_to_end(&format!("e2e-w{w}"), plain(w), load).await?);
                }
                out
            }
            PhaseKind::Paced => {
                let mut out = Vec::new();
                for &rate in &c.paced_rates {
                    let jobs = (rate as f64 * c.paced_seconds).round() as usize;
                    out.push(self.end_to_end(&format!("paced-{rate}"), plain(1), Load::Paced { jobs, rate }).await?);
                }
                out
            }
            PhaseKind::Priority => vec![self.priority().await?],
            PhaseKind::Noop => {
                let setup = Setup {
                    workers: 1,
                    tracker: true,
                    worker_env: vec![("PIPELINE_NOOP".into(), "true".into())],
                    count: false,
                };
                vec![self.end_to_end("noop-w1", setup, closed).await?]
            }
            PhaseKind::Counts => {
                let setup = Setup { workers: 1, tracker: true, worker_env: Vec::new(), count: true };
                let load = Load::Closed { jobs: c.count_jobs, clients: c.clients };
                vec![self.end_to_end("counts-w1", setup, load).await?]
            }
            PhaseKind::CountsPaced => {
                let setup = Setup { workers: 1, tracker: true, worker_env: Vec::new(), count: true };
                let rate = c.paced_rates.first().copied().unwrap_or(100);
                let jobs = (rate as f64 * c.paced_seconds).round() as usize;
                vec![self.end_to_end(&format!("counts-paced-{rate}"), setup, Load::Paced { jobs, rate }).await?]
            }
        })
    }

    async fn platform(&self, setup: &Setup) -> anyhow::Result<Platform> {
        Platform::start(&self.bins, &self.work_dir, &self.blob_dir, &self.config, setup).await
    }

    fn submissions(&self, tag: &str, n: usize, offset: usize, priority: &'static str) -> Vec<Submit> {
        load::submissions(tag, n, &self.documents, offset, priority)
    }

    /// Submits warm-up jobs and waits until they and their events are done.
    async fn warm_up(&self, p: &Platform) -> anyhow::Result<()> {
        let n = self.config.warmup_jobs;
        if n == 0 {
            return Ok(());
        }
        // Documents from the end of the set, so measured jobs are not
        // duplicates of warm-up invoices.
        let jobs = self.submissions("warm-", n, self.documents.len() - n.min(self.documents.len()), "NORMAL");
        let r = load::closed_loop(p, &jobs, self.config.clients).await;
        self.wait_final(p, "warm-", r.accepted()).await?;
        self.wait_trailing(p, r.accepted() as i64).await?;
        Ok(())
    }

    /// Polls until `n` jobs of `tag` are final.
    async fn wait_final(&self, p: &Platform, tag: &str, n: usize) -> anyhow::Result<()> {
        let deadline = Instant::now() + self.config.phase_timeout();
        loop {
            p.count_query();
            let done = stats::final_count(&p.db.pool, tag).await? as usize;
            if done >= n {
                return Ok(());
            }
            anyhow::ensure!(
                Instant::now() < deadline,
                "{done} of {n} jobs of {tag:?} final after {:?} (logs in {})",
                self.config.phase_timeout(),
                p.log_dir.display()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Waits until metrics-tracker has recorded `executions` executions and
    /// the outbox is empty, so the CPU window holds each job's whole cost.
    async fn wait_trailing(&self, p: &Platform, executions: i64) -> anyhow::Result<()> {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            p.count_query();
            let (recorded, outbox) = stats::trailing_work(&p.db.pool).await?;
            let tracker_done = p.tracker.is_none() || recorded >= executions;
            if tracker_done && outbox == 0 {
                return Ok(());
            }
            anyhow::ensure!(
                Instant::now() < deadline,
                "metrics-tracker recorded {recorded} of {executions} executions, {outbox} outbox rows left (logs in {})",
                p.log_dir.display()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Starts the measured window: statistics, process CPU.
    async fn window_start(&self, p: &Platform) -> anyhow::Result<Window> {
        // Backends flush their statistics about once a second when idle.
        tokio::time::sleep(Duration::from_millis(1500)).await;
        p.own_queries.store(0, std::sync::atomic::Ordering::Relaxed);
        for proxies in p.proxies.values() {
            proxies.reset();
        }
        let pg = stats::pg_counters(&p.db.pool).await.context("reading pg_stat_database")?;
        let cpu = cpu::snapshot(stats::pg_backends(&p.db.pool).await);
        p.count_query();
        p.count_query();
        Ok(Window { pg, cpu })
    }

    /// Ends the window: CPU first (the services still run), then the
    /// services stop, so their sessions end and flush their statistics.
    async fn window_end(
        &self,
        p: &mut Platform,
        w: Window,
        jobs: usize,
        result: &mut PhaseResult,
    ) -> anyhow::Result<()> {
        let backends = stats::pg_backends(&p.db.pool).await;
        let after = cpu::snapshot(backends);
        let usage = cpu::usage(&w.cpu, &after, &p.groups());
        if !p.proxies.is_empty() {
            let per: BTreeMap<String, ProcessCounts> =
                p.proxies.iter().map(|(name, px)| (name.clone(), px.per_job(jobs))).collect();
            result.counts_total_per_job = Some(sum_counts(per.values()));
            result.counts_per_job = Some(per);
        }
        p.stop().await;
        tokio::time::sleep(Duration::from_millis(1500)).await;
        let pg = stats::pg_counters(&p.db.pool).await?;
        // The backlog query, the backends query and this one.
        p.count_query();
        p.count_query();
        p.count_query();
        let own = p.own_queries.load(std::sync::atomic::Ordering::Relaxed);
        result.pg_per_job = stats::per_job(&w.pg, &pg, jobs, own);
        result.cpu_ms_per_job = usage.per_job_ms(jobs);
        result.cpu = usage;
        Ok(())
    }

    /// ingest-api alone takes CLIENTS closed-loop clients (durable 202/s);
    /// then one worker drains what they queued.
    async fn ingest_and_drain(&self) -> anyhow::Result<Vec<PhaseResult>> {
        let c = &self.config;
        let mut p = self.platform(&Setup { workers: 0, tracker: false, worker_env: Vec::new(), count: false }).await?;
        // Warm-up: connections and prepared statements (these jobs are
        // drained below with the rest).
        let warm = self.submissions(
            "warm-",
            c.warmup_jobs,
            self.documents.len() - c.warmup_jobs.min(self.documents.len()),
            "NORMAL",
        );
        let warm_load = load::closed_loop(&p, &warm, c.clients).await;
        let w = self.window_start(&p).await?;
        let jobs = self.submissions("ingest-", c.jobs, 0, "NORMAL");
        let r = load::closed_loop(&p, &jobs, c.clients).await;
        // The relay publishes what was accepted: part of each 202's cost.
        self.wait_trailing(&p, 0).await?;
        let mut ingest = PhaseResult { name: "ingest".into(), clients: Some(c.clients), ..Default::default() };
        fill_http(&mut ingest, &r, jobs.len());
        // The CPU window ends here for the ingest figure; the database
        // statistics are read at the very end (services stopped) and
        // belong to ingest + drain together.
        let after = cpu::snapshot(stats::pg_backends(&p.db.pool).await);
        let usage = cpu::usage(&w.cpu, &after, &p.groups());
        ingest.cpu_ms_per_job = usage.per_job_ms(r.accepted());
        ingest.cpu = usage;

        // The drain: one fresh worker on the backlog (no metrics-tracker, as
        // in the baseline's drain; its events wait on their queue).
        let total = warm_load.accepted() + r.accepted();
        let drain_cpu = cpu::snapshot(stats::pg_backends(&p.db.pool).await);
        let spawned = Instant::now();
        p.add_worker(&[]).await?;
        self.wait_final(&p, "", total).await?;
        let drained = Instant::now();
        let times = stats::job_times(&p.db.pool, "").await?;
        let mut drain = PhaseResult { name: "drain".into(), worker_processes: 1, ..Default::default() };
        drain.jobs_submitted = total;
        drain.jobs_accepted = total;
        fill_times(&mut drain, &times);
        let first_start = times.iter().filter_map(|t| t.started).fold(f64::INFINITY, f64::min);
        let last_done = times.iter().filter_map(|t| t.completed).fold(0.0, f64::max);
        drain.jobs_per_s = Some(round1(drain.jobs_completed as f64 / (last_done - first_start).max(1e-3)));
        tracing_note(&format!(
            "drain: worker spawned to last completed {:.1}s",
            drained.duration_since(spawned).as_secs_f64()
        ));
        let after = cpu::snapshot(stats::pg_backends(&p.db.pool).await);
        let usage = cpu::usage(&drain_cpu, &after, &p.groups());
        drain.cpu_ms_per_job = usage.per_job_ms(total);
        drain.cpu = usage;
        p.stop().await;
        tokio::time::sleep(Duration::from_millis(1500)).await;
        let pg = stats::pg_counters(&p.db.pool).await?;
        let own = p.own_queries.load(std::sync::atomic::Ordering::Relaxed) + 6;
        // Ingest + drain together: the statements of a whole job, no events.
        ingest.pg_per_job = stats::per_job(&w.pg, &pg, r.accepted(), own);
        drain.pg_per_job = ingest.pg_per_job.clone();
        Ok(vec![ingest, drain])
    }

    /// Warm-up, then `load`; waits for every job and its events.
    async fn end_to_end(&self, name: &str, setup: Setup, load: Load) -> anyhow::Result<PhaseResult> {
        let mut p = self.platform(&setup).await?;
        self.warm_up(&p).await?;
        let warm = self.config.warmup_jobs;
        let w = self.window_start(&p).await?;
        let tag = format!("{name}-");
        let mut result = PhaseResult { name: name.to_owned(), worker_processes: setup.workers, ..Default::default() };
        let r = match load {
            Load::Closed { jobs, clients } => {
                result.clients = Some(clients);
                load::closed_loop(&p, &self.submissions(&tag, jobs, 0, "NORMAL"), clients).await
            }
            Load::Paced { jobs, rate } => {
                result.rate_per_s = Some(rate);
                load::paced(&p, &self.submissions(&tag, jobs, 0, "NORMAL"), rate as f64).await
            }
        };
        fill_http(&mut result, &r, r.accepted() + r.errors.values().sum::<usize>());
        self.wait_final(&p, &tag, r.accepted()).await?;
        self.wait_trailing(&p, (warm + r.accepted()) as i64).await?;
        let times = stats::job_times(&p.db.pool, &tag).await?;
        p.count_query();
        fill_times(&mut result, &times);
        let first_created = times.iter().map(|t| t.created).fold(f64::INFINITY, f64::min);
        let last_done = times.iter().filter_map(|t| t.completed).fold(0.0, f64::max);
        result.jobs_per_s = Some(round1(result.jobs_completed as f64 / (last_done - first_created).max(1e-3)));
        self.window_end(&mut p, w, result.jobs_completed, &mut result).await?;
        Ok(result)
    }

    /// LOW_BACKLOG LOW jobs as fast as CLIENTS can send them, then HIGH_JOBS
    /// HIGH jobs one after another: how long HIGH waits behind LOW.
    async fn priority(&self) -> anyhow::Result<PhaseResult> {
        let c = &self.config;
        let mut p = self.platform(&Setup { workers: 1, tracker: true, worker_env: Vec::new(), count: false }).await?;
        self.warm_up(&p).await?;
        let w = self.window_start(&p).await?;
        let low = self.submissions("prio-low-", c.low_backlog, 0, "LOW");
        let high = self.submissions("prio-high-", c.high_jobs, c.low_backlog, "HIGH");
        let rl = load::closed_loop(&p, &low, c.clients).await;
        p.count_query();
        let backlog = stats::queued_count(&p.db.pool, "prio-low-").await?;
        let rh = load::closed_loop(&p, &high, 1).await;
        self.wait_final(&p, "prio-", rl.accepted() + rh.accepted()).await?;
        self.wait_trailing(&p, (c.warmup_jobs + rl.accepted() + rh.accepted()) as i64).await?;
        let times = stats::job_times(&p.db.pool, "prio-").await?;
        p.count_query();
        let mut result = PhaseResult {
            name: "priority".into(),
            worker_processes: 1,
            clients: Some(c.clients),
            low_backlog_at_high_submit: Some(backlog),
            ..Default::default()
        };
        let mut both = rl.clone();
        both.latencies_ms.extend(rh.latencies_ms.iter());
        fill_http(&mut result, &both, low.len() + high.len());
        result.accepted_per_s = None;
        fill_times(&mut result, &times);
        let high = job_model::JobPriority::High.value();
        let highs: Vec<&stats::JobTimes> = times.iter().filter(|t| t.priority == high).collect();
        result.high_wait_ms =
            Some(Dist::of(&highs.iter().filter_map(|t| Some((t.started? - t.created) * 1000.0)).collect::<Vec<_>>()));
        result.high_e2e_ms =
            Some(Dist::of(&highs.iter().filter_map(|t| Some((t.completed? - t.created) * 1000.0)).collect::<Vec<_>>()));
        self.window_end(&mut p, w, result.jobs_completed, &mut result).await?;
        Ok(result)
    }
}

struct Window {
    pg: stats::PgCounters,
    cpu: cpu::Snapshot,
}

fn round1(x: f64) -> f64 {
    (x * 10.0).round() / 10.0
}

fn tracing_note(msg: &str) {
    eprintln!("  {msg}");
}

fn fill_http(result: &mut PhaseResult, r: &LoadResult, submitted: usize) {
    result.jobs_submitted = submitted;
    result.jobs_accepted = r.accepted();
    result.http_errors = r.errors.clone();
    result.accepted_per_s = Some(round1(r.accepted() as f64 / r.wall.as_secs_f64().max(1e-3)));
    result.accept_latency_ms = Some(Dist::of(&r.latencies_ms));
}

fn fill_times(result: &mut PhaseResult, times: &[stats::JobTimes]) {
    let done: Vec<&stats::JobTimes> = times.iter().filter(|t| t.status == "COMPLETED").collect();
    result.jobs_completed = done.len();
    result.jobs_failed = times.iter().filter(|t| matches!(t.status.as_str(), "FAILED" | "DLQ")).count();
    result.e2e_ms =
        Some(Dist::of(&done.iter().filter_map(|t| Some((t.completed? - t.created) * 1000.0)).collect::<Vec<_>>()));
    result.queue_wait_ms =
        Some(Dist::of(&done.iter().filter_map(|t| Some((t.started? - t.created) * 1000.0)).collect::<Vec<_>>()));
}

fn sum_counts<'a>(all: impl Iterator<Item = &'a ProcessCounts>) -> ProcessCounts {
    let mut t = ProcessCounts::default();
    for c in all {
        t.pg_connections += c.pg_connections;
        t.pg_statements += c.pg_statements;
        t.pg_round_trips += c.pg_round_trips;
        t.pg_transactions += c.pg_transactions;
        t.pg_explicit_transactions += c.pg_explicit_transactions;
        t.pg_parses += c.pg_parses;
        t.pg_pings += c.pg_pings;
        t.amqp_connections += c.amqp_connections;
        t.amqp_publishes += c.amqp_publishes;
        t.amqp_ack_frames += c.amqp_ack_frames;
        t.amqp_multiple_acks += c.amqp_multiple_acks;
        t.amqp_deliveries += c.amqp_deliveries;
        t.amqp_confirm_frames += c.amqp_confirm_frames;
        t.amqp_frames_out += c.amqp_frames_out;
        t.amqp_frames_in += c.amqp_frames_in;
    }
    let r = |x: f64| (x * 100.0).round() / 100.0;
    t.pg_statements = r(t.pg_statements);
    t.pg_round_trips = r(t.pg_round_trips);
    t.pg_transactions = r(t.pg_transactions);
    t.pg_explicit_transactions = r(t.pg_explicit_transactions);
    t.pg_parses = r(t.pg_parses);
    t.pg_pings = r(t.pg_pings);
    t.amqp_publishes = r(t.amqp_publishes);
    t.amqp_ack_frames = r(t.amqp_ack_frames);
    t.amqp_multiple_acks = r(t.amqp_multiple_acks);
    t.amqp_deliveries = r(t.amqp_deliveries);
    t.amqp_confirm_frames = r(t.amqp_confirm_frames);
    t.amqp_frames_out = r(t.amqp_frames_out);
    t.amqp_frames_in = r(t.amqp_frames_in);
    t
}
