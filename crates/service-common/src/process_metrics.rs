//! The standard `process_*` metrics (the names every Prometheus client
//! library's process collector uses), read from `/proc/self` at scrape
//! time. prometheus-client has no process collector of its own.
//!
//! On a system without `/proc` (not Linux) nothing is exported; a file that
//! cannot be read leaves out only the metrics it would have given.

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;

/// Clock ticks per second in `/proc/<pid>/stat` times. That is the kernel's
/// USER_HZ, which is 100 on every architecture docflow is built for (x86-64,
/// arm64); reading `sysconf(_SC_CLK_TCK)` would need unsafe code for the
/// same number.
const USER_HZ: f64 = 100.0;

#[derive(Debug, Default)]
pub struct ProcessCollector;

impl ProcessCollector {
    pub fn new() -> Self {
        ProcessCollector
    }
}

/// What one read of `/proc/self` found.
#[derive(Debug, Default, PartialEq)]
pub struct ProcessSample {
    pub cpu_seconds: Option<f64>,
    pub resident_bytes: Option<f64>,
    pub virtual_bytes: Option<f64>,
    pub start_time_seconds: Option<f64>,
    pub open_fds: Option<f64>,
    pub max_fds: Option<f64>,
}

impl ProcessSample {
    pub fn read() -> ProcessSample {
        let stat = std::fs::read_to_string("/proc/self/stat").ok();
        let fields = stat.as_deref().and_then(stat_fields);
        let field = |i: usize| fields.as_ref().and_then(|f| f.get(i)).and_then(|v| v.parse::<f64>().ok());
        // Field numbers as proc(5) counts them, from 1; `fields` starts at 3 (state).
        let (utime, stime, starttime, vsize) = (field(14 - 3), field(15 - 3), field(22 - 3), field(23 - 3));
        let boot = std::fs::read_to_string("/proc/stat")
            .ok()
            .and_then(|s| s.lines().find_map(|l| l.strip_prefix("btime ")).and_then(|v| v.trim().parse::<f64>().ok()));
        let status = std::fs::read_to_string("/proc/self/status").ok();
        let resident = status.as_deref().and_then(|s| kib_line(s, "VmRSS:")).map(|kib| kib * 1024.0);
        let open_fds = std::fs::read_dir("/proc/self/fd").ok().map(|d| d.count() as f64);
        let max_fds = std::fs::read_to_string("/proc/self/limits").ok().and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Max open files"))
                .and_then(|l| l.split_whitespace().nth(3))
                .and_then(|v| v.parse::<f64>().ok())
        });
        ProcessSample {
            cpu_seconds: utime.zip(stime).map(|(u, s)| (u + s) / USER_HZ),
            resident_bytes: resident,
            virtual_bytes: vsize,
            start_time_seconds: boot.zip(starttime).map(|(b, t)| b + t / USER_HZ),
            open_fds,
            max_fds,
        }
    }
}

/// The fields of `/proc/<pid>/stat` after the command name, which is in
/// parentheses and may itself hold spaces and parentheses.
fn stat_fields(stat: &str) -> Option<Vec<String>> {
    let rest = &stat[stat.rfind(')')? + 1..];
    Some(rest.split_whitespace().map(str::to_owned).collect())
}

/// `Name:   1234 kB` from `/proc/<pid>/status`.
fn kib_line(status: &str, name: &str) -> Option<f64> {
    status.lines().find_map(|l| l.strip_prefix(name)).and_then(|v| v.split_whitespace().next()?.parse().ok())
}

impl Collector for ProcessCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let s = ProcessSample::read();
        if let Some(v) = s.cpu_seconds {
            let m = ConstCounter::new(v);
            m.encode(encoder.encode_descriptor(
                "process_cpu_seconds",
                "User and system CPU time spent, in seconds",
                None,
                m.metric_type(),
            )?)?;
        }
        let gauges = [
            ("process_resident_memory_bytes", "Resident memory size in bytes", s.resident_bytes),
            ("process_virtual_memory_bytes", "Virtual memory size in bytes", s.virtual_bytes),
            (
                "process_start_time_seconds",
                "Start time of the process since the Unix epoch, in seconds",
                s.start_time_seconds,
            ),
            ("process_open_fds", "Open file descriptors", s.open_fds),
            ("process_max_fds", "The limit on open file descriptors", s.max_fds),
        ];
        for (name, help, value) in gauges {
            if let Some(v) = value {
                let m = ConstGauge::new(v);
                m.encode(encoder.encode_descriptor(name, help, None, m.metric_type())?)?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_command_name_with_spaces_and_parentheses_does_not_shift_the_fields() {
        let stat = "42 (my (odd) cmd) S 1 42 42 0 -1 4194560 100 0 0 0 250 50 0 0 20 0 4 0 1234 10485760 300";
        let f = stat_fields(stat).unwrap();
        assert_eq!(f[0], "S");
        assert_eq!(f[14 - 3], "250");
        assert_eq!(f[15 - 3], "50");
        assert_eq!(f[22 - 3], "1234");
        assert_eq!(f[23 - 3], "10485760");
    }

    #[test]
    fn this_process_is_read_from_proc() {
        let s = ProcessSample::read();
        assert!(s.cpu_seconds.is_some_and(|v| v >= 0.0), "{s:?}");
        assert!(s.resident_bytes.is_some_and(|v| v > 1e5), "{s:?}");
        assert!(s.open_fds.is_some_and(|v| v >= 3.0), "{s:?}");
        assert!(s.max_fds.is_some_and(|v| v >= s.open_fds.unwrap()), "{s:?}");
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs_f64();
        // Started before now, and not before this test binary could have been built.
        assert!(s.start_time_seconds.is_some_and(|t| t <= now + 1.0 && t > now - 86_400.0), "{s:?}");
    }
}
