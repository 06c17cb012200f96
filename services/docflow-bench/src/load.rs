//! The documents and the HTTP load: closed-loop clients (each sends its next
//! request when the last is answered) and an open-loop pacer (requests leave
//! on a schedule, whether or not earlier ones were answered).

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::platform::{API_KEY, Platform};

/// A small English text invoice, different for every `i` (its number,
/// quantities and amounts), ~700 bytes: the shape of the Celery baseline's
/// "small text invoices".
pub fn invoice(i: usize) -> String {
    let qty = 1 + i % 17;
    let hours = 1 + i % 9;
    let net = qty * 45 + hours * 100;
    let vat = net / 5;
    let total = net + vat;
    let day = 1 + i % 28;
    format!(
        "ACME Widgets Ltd\n12 Market Street, London EC1A 1BB, United Kingdom\nVAT Reg No: GB 123 4567 82\n\n\
         INVOICE\n\nInvoice Number: INV-B{i:07}\nInvoice Date: {day} March 2026\nDelivery date: {day} February 2026\n\n\
         Bill To:\nGlobex Corporation\n1 Main Road, Springfield\n\n\
         Description                 Qty    Unit Price      Amount\n\
         Widget A                     {qty:>2}         45.00   {:>9}.00\n\
         Consulting (hours)           {hours:>2}        100.00   {:>9}.00\n\n\
         Subtotal:                              GBP {net}.00\nVAT (20%):                             GBP {vat}.00\n\
         Total Due:                             GBP {total}.00\n\nPayment terms: Net 30\nIBAN: GB82 WEST 1234 5698 7654 32\n",
        qty * 45,
        hours * 100,
    )
}

/// Writes documents `0..n` into the blob store (skipping those already
/// there); returns each one's blob path and size.
pub fn ensure_documents(blob_dir: &Path, n: usize) -> std::io::Result<Vec<(String, usize)>> {
    let dir = blob_dir.join("in/bench");
    std::fs::create_dir_all(&dir)?;
    (0..n)
        .map(|i| {
            let text = invoice(i);
            let path = dir.join(format!("invoice-{i:07}.txt"));
            if !path.exists() {
                std::fs::write(&path, &text)?;
            }
            Ok((format!("in/bench/invoice-{i:07}.txt"), text.len()))
        })
        .collect()
}

/// One submission.
#[derive(Debug, Clone)]
pub struct Submit {
    pub document_id: String,
    pub blob_path: String,
    pub file_size: usize,
    pub priority: &'static str,
}

/// Submissions `tag-0…` over the documents (cycling if there are fewer).
pub fn submissions(
    tag: &str,
    n: usize,
    docs: &[(String, usize)],
    offset: usize,
    priority: &'static str,
) -> Vec<Submit> {
    (0..n)
        .map(|i| {
            let (path, size) = &docs[(offset + i) % docs.len()];
            Submit { document_id: format!("{tag}-{i}"), blob_path: path.clone(), file_size: *size, priority }
        })
        .collect()
}

/// What the HTTP side saw.
#[derive(Debug, Clone, Default)]
pub struct LoadResult {
    /// Latency of each 202, in milliseconds.
    pub latencies_ms: Vec<f64>,
    /// Responses other than 202 (and transport errors), by code.
    pub errors: std::collections::BTreeMap<String, usize>,
    pub wall: Duration,
}

impl LoadResult {
    pub fn accepted(&self) -> usize {
        self.latencies_ms.len()
    }
}

/// Where and how to submit (cheap to clone into tasks).
#[derive(Clone)]
struct Target {
    http: reqwest::Client,
    url: String,
}

impl Target {
    fn of(platform: &Platform) -> Target {
        Target { http: platform.http.clone(), url: platform.api("/api/process-async") }
    }
}

async fn send(target: &Target, s: &Submit) -> Result<f64, String> {
    let body = serde_json::json!({
        "document_id": s.document_id,
        "filename": s.blob_path.rsplit('/').next().unwrap_or("invoice.txt"),
        "blob_path": s.blob_path,
        "file_size": s.file_size,
        "priority": s.priority,
    });
    let started = Instant::now();
    let response = target
        .http
        .post(&target.url)
        .bearer_auth(API_KEY)
        .json(&body)
        .send()
        .await
        .map_err(|e| format!("transport: {}", e.without_url()))?;
    let status = response.status();
    // Read the body: the latency is the whole answer.
    let _ = response.bytes().await;
    if status.as_u16() == 202 { Ok(started.elapsed().as_secs_f64() * 1000.0) } else { Err(status.as_u16().to_string()) }
}

/// `clients` concurrent closed-loop clients over `jobs`.
/// Each client is its own task, so the generator uses both cores.
pub async fn closed_loop(platform: &Platform, jobs: &[Submit], clients: usize) -> LoadResult {
    let next = Arc::new(AtomicUsize::new(0));
    let jobs: Arc<Vec<Submit>> = Arc::new(jobs.to_vec());
    let target = Target::of(platform);
    let started = Instant::now();
    let tasks: Vec<_> = (0..clients.max(1))
        .map(|_| {
            let (next, jobs, target) = (next.clone(), jobs.clone(), target.clone());
            tokio::spawn(async move {
                let mut mine = Vec::new();
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(s) = jobs.get(i) else { break };
                    mine.push(send(&target, s).await);
                }
                mine
            })
        })
        .collect();
    let mut results = Vec::new();
    for t in tasks {
        results.extend(t.await.unwrap_or_default());
    }
    collect(results.into_iter(), started.elapsed())
}

/// Open loop: request `i` leaves at `i / rate` seconds, each on its own task.
pub async fn paced(platform: &Platform, jobs: &[Submit], rate: f64) -> LoadResult {
    let target = Target::of(platform);
    let started = Instant::now();
    let start = tokio::time::Instant::now();
    let mut tasks = Vec::with_capacity(jobs.len());
    for (i, s) in jobs.iter().enumerate() {
        tokio::time::sleep_until(start + Duration::from_secs_f64(i as f64 / rate)).await;
        let (target, s) = (target.clone(), s.clone());
        tasks.push(tokio::spawn(async move { send(&target, &s).await }));
    }
    let mut results = Vec::new();
    for t in tasks {
        results.push(t.await.unwrap_or_else(|e| Err(format!("task: {e}"))));
    }
    collect(results.into_iter(), started.elapsed())
}

fn collect(results: impl Iterator<Item = Result<f64, String>>, wall: Duration) -> LoadResult {
    let mut out = LoadResult { wall, ..Default::default() };
    for r in results {
        match r {
            Ok(ms) => out.latencies_ms.push(ms),
            Err(code) => *out.errors.entry(code).or_default() += 1,
        }
    }
    out
}

/// Percentiles of a sample, in its unit.
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct Dist {
    pub n: usize,
    pub p50: f64,
    pub p95: f64,
    pub p99: f64,
    pub max: f64,
    pub mean: f64,
}

impl Dist {
    pub fn of(xs: &[f64]) -> Dist {
        if xs.is_empty() {
            return Dist::default();
        }
        let mut v = xs.to_vec();
        v.sort_by(f64::total_cmp);
        // Linear interpolation between closest ranks (as the baseline does).
        let p = |q: f64| {
            let k = (v.len() - 1) as f64 * q;
            let (f, c) = (k.floor() as usize, k.ceil() as usize);
            v[f] + (v[c] - v[f]) * (k - f as f64)
        };
        let r = |x: f64| (x * 10.0).round() / 10.0;
        Dist {
            n: v.len(),
            p50: r(p(0.5)),
            p95: r(p(0.95)),
            p99: r(p(0.99)),
            max: r(v[v.len() - 1]),
            mean: r(v.iter().sum::<f64>() / v.len() as f64),
        }
    }
}
