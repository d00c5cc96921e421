//! `stat` collector: boot time, context switches, forks, interrupts and runnable/blocked
//! process counts from `/proc/stat` (proc(5), Documentation/filesystems/proc.rst "stat").
//!
//! The per-CPU lines belong to the `cpu` collector. As in node_exporter 1.5 (whose
//! `--collector.stat.softirq` is off by default), the `softirq` line is not reported.

use std::path::PathBuf;

use crate::collect::registry::{CollectorModule, Switch};
use crate::collect::{CollectError, Collector, ParseError, Sink};
use crate::host::{HostRoot, read_into};

/// Registry entry.
pub struct Module;

impl CollectorModule for Module {
    type Config = Switch;
    fn build(_: &Switch, host: &HostRoot) -> Box<dyn Collector> {
        Box::new(StatCollector {
            path: host.proc("stat"),
            buf: String::with_capacity(8192),
        })
    }
}

struct StatCollector {
    path: PathBuf,
    buf: String,
}

/// The system-wide counters of `/proc/stat`; absent lines stay 0 (as node_exporter reports them).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Stat {
    /// `btime`: boot time, seconds since the epoch.
    pub boot_time: u64,
    /// `ctxt`: context switches since boot.
    pub context_switches: u64,
    /// `processes`: forks since boot.
    pub forks: u64,
    /// First number of `intr`: interrupts serviced since boot.
    pub interrupts: u64,
    /// `procs_running`.
    pub procs_running: u64,
    /// `procs_blocked`.
    pub procs_blocked: u64,
}

fn number(lineno: usize, key: &str, field: Option<&str>) -> Result<u64, ParseError> {
    let field = field.ok_or_else(|| ParseError::new(lineno, format!("missing value of {key}")))?;
    field
        .parse()
        .map_err(|_| ParseError::new(lineno, format!("invalid value of {key}: {field:?}")))
}

/// Parses the system-wide lines of `/proc/stat`.
pub fn parse(text: &str) -> Result<Stat, ParseError> {
    let mut st = Stat::default();
    for (idx, line) in text.lines().enumerate() {
        // The `cpu` lines are most of the file but none of our business; `intr` and `softirq`
        // are long, but only their first number (or nothing) is read.
        if line.starts_with("cpu") || line.starts_with("softirq") {
            continue;
        }
        let mut fields = line.split_ascii_whitespace();
        let Some(key) = fields.next() else { continue };
        let slot = match key {
            "btime" => &mut st.boot_time,
            "ctxt" => &mut st.context_switches,
            "processes" => &mut st.forks,
            "intr" => &mut st.interrupts,
            "procs_running" => &mut st.procs_running,
            "procs_blocked" => &mut st.procs_blocked,
            _ => continue,
        };
        *slot = number(idx + 1, key, fields.next())?;
    }
    Ok(st)
}

impl Collector for StatCollector {
    fn name(&self) -> &'static str {
        "stat"
    }

    fn collect(&mut self, sink: &mut Sink) -> Result<(), CollectError> {
        if !read_into(&self.path, &mut self.buf)? {
            return Ok(());
        }
        let st = parse(&self.buf).map_err(|e| CollectError::parse(&self.path, e))?;
        sink.gauge(
            "node_boot_time_seconds",
            "Node boot time, in unixtime.",
            st.boot_time as f64,
        );
        sink.counter(
            "node_context_switches_total",
            "Total number of context switches.",
            st.context_switches as f64,
        );
        sink.counter(
            "node_forks_total",
            "Total number of forks.",
            st.forks as f64,
        );
        sink.counter(
            "node_intr_total",
            "Total number of interrupts serviced.",
            st.interrupts as f64,
        );
        sink.gauge(
            "node_procs_blocked",
            "Number of processes blocked waiting for I/O to complete.",
            st.procs_blocked as f64,
        );
        sink.gauge(
            "node_procs_running",
            "Number of processes in runnable state.",
            st.procs_running as f64,
        );
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::collect::MetricType;
    use crate::collect::node::testutil::{self, collect_file};

    #[test]
    fn recorded_files_from_two_kernels() {
        assert_eq!(
            parse(include_str!(
                "../../../tests/fixtures/hosts/legacy/proc/stat"
            )),
            Ok(Stat {
                boot_time: 1_699_990_000,
                context_switches: 9_876_543_210,
                forks: 3_456_789,
                interrupts: 23_456_789,
                procs_running: 3,
                procs_blocked: 1,
            })
        );
        assert_eq!(
            parse(include_str!(
                "../../../tests/fixtures/hosts/modern/proc/stat"
            )),
            Ok(Stat {
                boot_time: 1_795_427_721,
                context_switches: 399_626,
                forks: 8_839,
                interrupts: 242_985,
                procs_running: 2,
                procs_blocked: 0,
            })
        );
    }

    #[test]
    fn garbled_values_are_errors() {
        assert_eq!(
            parse("cpu 1 2\nctxt 12\nbtime x\n"),
            Err(ParseError::new(3, "invalid value of btime: \"x\""))
        );
        assert_eq!(
            parse("procs_running\n"),
            Err(ParseError::new(1, "missing value of procs_running"))
        );
    }

    #[test]
    fn families_types_and_help() {
        let sink = collect_file::<Module>(
            "stat",
            "cpu  1 2 3 4\ncpu0 1 2 3 4\nintr 99 1 2\nctxt 7\nbtime 1600000000\nprocesses 5\nprocs_running 2\nprocs_blocked 4\nsoftirq 8 1 1\n",
        );
        let got: Vec<_> = sink
            .families()
            .map(|f| {
                let v = f.samples().next().map(|s| s.value);
                (f.name(), f.kind(), v)
            })
            .collect();
        assert_eq!(
            got,
            vec![
                ("node_boot_time_seconds", MetricType::Gauge, Some(1.6e9)),
                (
                    "node_context_switches_total",
                    MetricType::Counter,
                    Some(7.0)
                ),
                ("node_forks_total", MetricType::Counter, Some(5.0)),
                ("node_intr_total", MetricType::Counter, Some(99.0)),
                ("node_procs_blocked", MetricType::Gauge, Some(4.0)),
                ("node_procs_running", MetricType::Gauge, Some(2.0)),
            ]
        );
    }

    #[test]
    fn missing_file_writes_nothing() {
        testutil::assert_empty_host_writes_nothing::<Module>();
    }
}
