//! `schedstat` collector: `node_schedstat_{running,waiting}_seconds_total` and
//! `node_schedstat_timeslices_total` per CPU from `/proc/schedstat`.
//!
//! Format: Documentation/scheduler/sched-stats.rst (versions 15-17 share the `cpu<N>` line
//! layout). The last three of the nine numbers after `cpu<N>` are the time spent running
//! tasks (ns), the time tasks waited on the run queue (ns), and the number of timeslices run.
//! Kernels built without `CONFIG_SCHEDSTATS` have no file: the collector writes nothing.

use std::path::PathBuf;

use crate::collect::registry::{CollectorModule, Switch};
use crate::collect::{CollectError, Collector, MetricType, ParseError, Sink};
use crate::host::{HostRoot, read_into};

/// Registry entry.
pub struct Module;

impl CollectorModule for Module {
    type Config = Switch;
    fn build(_: &Switch, host: &HostRoot) -> Box<dyn Collector> {
        Box::new(Schedstat {
            path: host.proc("schedstat"),
            buf: String::with_capacity(4096),
        })
    }
}

struct Schedstat {
    path: PathBuf,
    buf: String,
}

/// One `cpu<N>` line of `/proc/schedstat`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CpuSched<'a> {
    /// The CPU number as written after `cpu`.
    pub cpu: &'a str,
    /// Time spent running tasks, nanoseconds.
    pub running_ns: u64,
    /// Time tasks spent waiting to run, nanoseconds.
    pub waiting_ns: u64,
    /// Timeslices run on this CPU.
    pub timeslices: u64,
}

/// Parses the `cpu<N>` lines of `/proc/schedstat` (domain and header lines are skipped).
pub fn parse(text: &str) -> Result<Vec<CpuSched<'_>>, ParseError> {
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let mut fields = line.split_ascii_whitespace();
        let Some(cpu) = fields.next().and_then(|f| f.strip_prefix("cpu")) else {
            continue;
        };
        if cpu.is_empty() || !cpu.bytes().all(|b| b.is_ascii_digit()) {
            continue;
        }
        let mut nums = [0u64; 9];
        for (n, slot) in nums.iter_mut().enumerate() {
            let field = fields.next().ok_or_else(|| {
                ParseError::new(i + 1, format!("cpu{cpu}: {n} of 9 fields present"))
            })?;
            *slot = field.parse().map_err(|_| {
                ParseError::new(i + 1, format!("cpu{cpu}: invalid field {field:?}"))
            })?;
        }
        out.push(CpuSched {
            cpu,
            running_ns: nums[6],
            waiting_ns: nums[7],
            timeslices: nums[8],
        });
    }
    Ok(out)
}

impl Collector for Schedstat {
    fn name(&self) -> &'static str {
        "schedstat"
    }

    fn collect(&mut self, sink: &mut Sink) -> Result<(), CollectError> {
        if !read_into(&self.path, &mut self.buf)? {
            return Ok(());
        }
        let cpus = parse(&self.buf).map_err(|e| CollectError::parse(&self.path, e))?;
        let mut f = sink.family(
            "node_schedstat_running_seconds_total",
            "Number of seconds CPU spent running a process.",
            MetricType::Counter,
        );
        for c in &cpus {
            f.sample(&[("cpu", c.cpu)], c.running_ns as f64 / 1e9);
        }
        let mut f = sink.family(
            "node_schedstat_timeslices_total",
            "Number of timeslices executed by CPU.",
            MetricType::Counter,
        );
        for c in &cpus {
            f.sample(&[("cpu", c.cpu)], c.timeslices as f64);
        }
        let mut f = sink.family(
            "node_schedstat_waiting_seconds_total",
            "Number of seconds spent by processing waiting for this CPU.",
            MetricType::Counter,
        );
        for c in &cpus {
            f.sample(&[("cpu", c.cpu)], c.waiting_ns as f64 / 1e9);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::collect::node::testutil::{self, collect_file};

    const LEGACY: &str = include_str!("../../../tests/fixtures/hosts/legacy/proc/schedstat");

    #[test]
    fn recorded_file_from_kernel_4_18() {
        let cpus = parse(LEGACY).expect("legacy");
        assert_eq!(
            cpus,
            vec![
                CpuSched {
                    cpu: "0",
                    running_ns: 2_395_118_839_163,
                    waiting_ns: 334_519_185_232,
                    timeslices: 122_643_577,
                },
                CpuSched {
                    cpu: "1",
                    running_ns: 2_331_467_218_650,
                    waiting_ns: 327_104_992_183,
                    timeslices: 119_871_440,
                },
                CpuSched {
                    cpu: "3",
                    running_ns: 2_450_931_784_410,
                    waiting_ns: 341_276_044_897,
                    timeslices: 126_402_283,
                },
            ]
        );
    }

    #[test]
    fn collector_writes_seconds() {
        let sink = collect_file::<Module>("schedstat", LEGACY);
        let fams: Vec<_> = sink.families().collect();
        assert_eq!(fams.len(), 3);
        assert_eq!(fams[0].name(), "node_schedstat_running_seconds_total");
        let s: Vec<_> = fams[0].samples().map(|s| (s.labels, s.value)).collect();
        assert_eq!(s[2], ("cpu=\"3\"", 2450.93178441));
        let s: Vec<_> = fams[2].samples().map(|s| (s.labels, s.value)).collect();
        assert_eq!(s[0], ("cpu=\"0\"", 334.519185232));
    }

    #[test]
    fn truncated_cpu_line_is_an_error() {
        assert_eq!(
            parse("version 15\ncpu0 0 0 1 2\n"),
            Err(ParseError::new(2, "cpu0: 4 of 9 fields present"))
        );
        assert_eq!(
            parse("cpu0 0 0 1 2 3 4 x 6 7\n"),
            Err(ParseError::new(1, "cpu0: invalid field \"x\""))
        );
    }

    #[test]
    fn missing_file_writes_nothing() {
        testutil::assert_empty_host_writes_nothing::<Module>();
    }
}
