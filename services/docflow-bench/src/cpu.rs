//! CPU seconds per process group, read from /proc.
//!
//! A snapshot reads utime+stime of every process (all its threads; USER_HZ
//! ticks, 10 ms). Groups: each service process the bench started (by pid),
//! the generator itself, Postgres (the backends serving the bench's
//! database, plus the cluster's shared processes: postmaster, walwriter,
//! checkpointer, autovacuum; backends of other databases are reported apart
//! as "other"), RabbitMQ (every process of the `rabbitmq` user: beam.smp
//! serves every tenant, so its share is only clean on a quiet broker), and
//! everything else ("other": other tenants' builds), which says how much a
//! phase was disturbed.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::os::unix::fs::MetadataExt;

use serde::Serialize;

/// /proc reports CPU time in USER_HZ, which Linux fixes at 100 for user
/// space on every architecture it exports /proc to.
const USER_HZ: f64 = 100.0;

#[derive(Debug, Clone)]
struct Proc {
    uid: u32,
    ppid: u32,
    /// utime + stime, ticks.
    own: u64,
    /// cutime + cstime, ticks: reaped children (short-lived processes).
    children: u64,
}

/// What the bench knows about the processes at a moment.
#[derive(Debug, Clone)]
pub struct Snapshot {
    procs: HashMap<u32, Proc>,
    /// Postgres backend pid → its database (None for background processes).
    pg_backends: HashMap<u32, Option<String>>,
    /// /proc/stat totals: (all ticks, idle + iowait ticks).
    machine: (u64, u64),
    at: std::time::Instant,
}

/// Processes that belong to the run, by group name.
#[derive(Debug, Clone, Default)]
pub struct Groups {
    /// Service group name ("ingest-api", "worker", …) → its pids.
    pub services: BTreeMap<String, Vec<u32>>,
    /// The database the run's services use.
    pub database: String,
}

#[derive(Debug, Clone, Serialize, Default)]
pub struct CpuUsage {
    pub wall_s: f64,
    /// CPU seconds per group (services by name, "postgres", "rabbitmq",
    /// "generator").
    pub seconds: BTreeMap<String, f64>,
    /// The sum over the groups above.
    pub total_s: f64,
    /// Postgres backends of other databases and other users' processes:
    /// load that was not ours (other tenants on the machine).
    pub other_s: f64,
    /// Share of both cores that the groups above used.
    pub ours_pct_of_machine: f64,
    /// Busy share of the machine from /proc/stat (everything, approximate).
    pub machine_busy_pct: f64,
}

impl CpuUsage {
    /// CPU milliseconds per job, per group, plus "total".
    pub fn per_job_ms(&self, jobs: usize) -> BTreeMap<String, f64> {
        let n = jobs.max(1) as f64;
        let mut out: BTreeMap<String, f64> =
            self.seconds.iter().map(|(k, v)| (k.clone(), round3(v * 1000.0 / n))).collect();
        out.insert("total".into(), round3(self.total_s * 1000.0 / n));
        out
    }
}

pub fn round3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

fn uid_of(user: &str) -> Option<u32> {
    let passwd = std::fs::read_to_string("/etc/passwd").ok()?;
    passwd.lines().find_map(|line| {
        let mut f = line.split(':');
        (f.next()? == user).then_some(())?;
        f.nth(1)?.parse().ok()
    })
}

fn read_procs() -> HashMap<u32, Proc> {
    let mut out = HashMap::new();
    let Ok(dir) = std::fs::read_dir("/proc") else { return out };
    for entry in dir.flatten() {
        let Some(pid) = entry.file_name().to_str().and_then(|s| s.parse::<u32>().ok()) else { continue };
        let Ok(meta) = entry.metadata() else { continue };
        let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else { continue };
        // The command name may hold spaces and parentheses: fields start
        // after the last ')'.
        let Some(rest) = stat.rfind(')').map(|i| &stat[i + 2..]) else { continue };
        let f: Vec<&str> = rest.split_whitespace().collect();
        if f.len() < 15 {
            continue;
        }
        let n = |i: usize| f[i].parse::<u64>().unwrap_or(0);
        out.insert(pid, Proc { uid: meta.uid(), ppid: n(1) as u32, own: n(11) + n(12), children: n(13) + n(14) });
    }
    out
}

fn read_machine() -> (u64, u64) {
    let stat = std::fs::read_to_string("/proc/stat").unwrap_or_default();
    let cpu: Vec<u64> =
        stat.lines().next().unwrap_or("").split_whitespace().skip(1).filter_map(|v| v.parse().ok()).collect();
    let total = cpu.iter().take(8).sum();
    let idle = cpu.get(3).copied().unwrap_or(0) + cpu.get(4).copied().unwrap_or(0);
    (total, idle)
}

/// Takes a snapshot; `pg_backends` comes from pg_stat_activity (see
/// [`crate::stats::pg_backends`]).
pub fn snapshot(pg_backends: HashMap<u32, Option<String>>) -> Snapshot {
    Snapshot { procs: read_procs(), pg_backends, machine: read_machine(), at: std::time::Instant::now() }
}

/// CPU used between two snapshots, by group.
pub fn usage(before: &Snapshot, after: &Snapshot, groups: &Groups) -> CpuUsage {
    let postgres_uid = uid_of("postgres");
    let rabbit_uid = uid_of("rabbitmq");
    let me = std::process::id();
    let service_pids: HashMap<u32, &str> =
        groups.services.iter().flat_map(|(name, pids)| pids.iter().map(move |p| (*p, name.as_str()))).collect();
    let backends: HashMap<u32, Option<String>> =
        before.pg_backends.iter().chain(after.pg_backends.iter()).map(|(k, v)| (*k, v.clone())).collect();

    let mut ticks: BTreeMap<String, u64> = BTreeMap::new();
    let mut other: u64 = 0;
    let mut seen = HashSet::new();
    for (pid, now) in &after.procs {
        seen.insert(*pid);
        let then = before.procs.get(pid);
        let own = now.own.saturating_sub(then.map(|p| p.own).unwrap_or(0));
        // Reaped children's time counts only for other tenants (a cargo
        // whose rustc exited): the postmaster's would hold every exited
        // backend of every database, and our services fork nothing.
        let with_children = (now.own + now.children).saturating_sub(then.map(|p| p.own + p.children).unwrap_or(0));
        let delta = own;
        if with_children == 0 {
            continue;
        }
        let group: Option<String> = if *pid == me {
            Some("generator".into())
        } else if let Some(name) = service_pids.get(pid) {
            Some((*name).to_owned())
        } else if *pid == 2 || now.ppid == 2 {
            // Kernel threads (I/O completion for everyone's fsyncs): neither
            // ours nor another tenant's.
            None
        } else if Some(now.uid) == postgres_uid {
            match backends.get(pid) {
                Some(Some(db)) if *db != groups.database => {
                    other += own;
                    None
                }
                _ => Some("postgres".into()),
            }
        } else if Some(now.uid) == rabbit_uid {
            Some("rabbitmq".into())
        } else {
            other += with_children;
            None
        };
        if let Some(g) = group.filter(|_| delta > 0) {
            *ticks.entry(g).or_default() += delta;
        }
    }
    let wall_s = after.at.duration_since(before.at).as_secs_f64();
    let seconds: BTreeMap<String, f64> = ticks.into_iter().map(|(k, v)| (k, round3(v as f64 / USER_HZ))).collect();
    let total_s = round3(seconds.values().sum());
    let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1) as f64;
    let (t0, i0) = before.machine;
    let (t1, i1) = after.machine;
    let busy = if t1 > t0 { 100.0 * ((t1 - t0) - (i1 - i0)) as f64 / (t1 - t0) as f64 } else { 0.0 };
    CpuUsage {
        wall_s: round3(wall_s),
        ours_pct_of_machine: if wall_s > 0.0 { (1000.0 * total_s / (wall_s * cores)).round() / 10.0 } else { 0.0 },
        seconds,
        total_s,
        other_s: round3(other as f64 / USER_HZ),
        machine_busy_pct: (busy * 10.0).round() / 10.0,
    }
}
