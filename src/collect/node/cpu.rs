//! `cpu` collector: per-CPU time from `/proc/stat` (`node_cpu_seconds_total`,
//! `node_cpu_guest_seconds_total`), thermal throttle counters from
//! `/sys/devices/system/cpu/cpu*/thermal_throttle` keyed by `topology/` (kernel
//! Documentation/ABI/testing/sysfs-devices-system-cpu, Documentation/admin-guide/cputopology.rst)
//! and isolated CPUs from `/sys/devices/system/cpu/isolated`.
//!
//! node_exporter 1.5 behaviours kept on purpose, because dashboards and the end-to-end
//! comparison depend on them:
//! - `/proc/stat` times are in USER_HZ (always 100 on Linux, proc(5)).
//! - CPUs are reported by index from 0 to the highest listed one; an offline CPU below the
//!   highest (absent from `/proc/stat`) is reported with all times 0.
//! - Counters never go backwards: a value lower than the last one reported is replaced by the
//!   last one (iowait is known to decrease on some kernels), except that when idle falls by
//!   3 s or more the CPU is assumed to have been hot-plugged and its state restarts from 0.
//!   A change in the number of CPUs resets every CPU's state.
//! - The isolated list is read once (node_exporter reads it at start-up).

use std::path::PathBuf;
use std::time::{Duration, Instant};

use serde::Deserialize;

use crate::collect::registry::CollectorModule;
use crate::collect::{CollectError, Collector, MetricType, ParseError, Sink};
use crate::host::{HostRoot, list_dir, read_attr, read_into};

/// Registry entry.
pub struct Module;

/// `collectors.cpu`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Whether the collector runs.
    pub enabled: bool,
    /// Report `node_cpu_guest_seconds_total` (node_exporter's `--collector.cpu.guest`).
    pub guest: bool,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            enabled: true,
            guest: true,
        }
    }
}

crate::collector_config!(Config, unchecked);

/// How often the CPU directories and their topology are re-read: topology only changes on
/// hot-plug, so it is not worth a few hundred `open`s per scrape on a large host.
const TOPOLOGY_REFRESH: Duration = Duration::from_secs(60);

impl CollectorModule for Module {
    type Config = Config;
    fn build(cfg: &Config, host: &HostRoot) -> Box<dyn Collector> {
        Box::new(Cpu {
            guest: cfg.guest,
            stat_path: host.proc("stat"),
            cpu_dir: host.sys("devices/system/cpu"),
            buf: String::with_capacity(8192),
            attr: String::with_capacity(32),
            fresh: Vec::new(),
            state: Vec::new(),
            throttle: Vec::new(),
            scanned: None,
            isolated: None,
            core_counts: Vec::new(),
            package_counts: Vec::new(),
        })
    }
}

/// Times of one CPU in seconds, in `/proc/stat` column order: user nice system idle iowait irq
/// softirq steal guest guest_nice.
pub type CpuTimes = [f64; 10];

const IDLE: usize = 3;
const MODES: [&str; 8] = [
    "user", "nice", "system", "idle", "iowait", "irq", "softirq", "steal",
];
const USER_HZ: f64 = 100.0;
/// Idle falling by this many seconds means a hot-plugged CPU, not a kernel glitch.
const JUMP_BACK_SECONDS: f64 = 3.0;

/// A CPU directory with thermal throttle counters and a readable topology.
struct ThrottleCpu {
    core_count: PathBuf,
    package_count: PathBuf,
    package: u64,
    core: u64,
}

struct Cpu {
    guest: bool,
    stat_path: PathBuf,
    cpu_dir: PathBuf,
    buf: String,
    attr: String,
    /// This scrape's parsed times (reused).
    fresh: Vec<CpuTimes>,
    /// The times last reported, per CPU index.
    state: Vec<CpuTimes>,
    throttle: Vec<ThrottleCpu>,
    scanned: Option<Instant>,
    isolated: Option<Result<Vec<u16>, ParseError>>,
    /// ((package, core), count) and (package, count) of this scrape (reused).
    core_counts: Vec<((u64, u64), u64)>,
    package_counts: Vec<(u64, u64)>,
}

/// Parses the per-CPU lines of `/proc/stat` into `out` (cleared first), indexed by CPU number;
/// CPUs missing below the highest listed one are left at 0. Older kernels with fewer columns
/// leave the missing ones at 0.
pub fn parse(text: &str, out: &mut Vec<CpuTimes>) -> Result<(), ParseError> {
    out.clear();
    for (idx, line) in text.lines().enumerate() {
        // The cpu lines come first; stop before the long `intr` line.
        let Some(rest) = line.strip_prefix("cpu") else {
            break;
        };
        let lineno = idx + 1;
        let mut fields = rest.split_ascii_whitespace();
        if rest.starts_with([' ', '\t']) {
            continue; // the aggregate `cpu` line
        }
        let id = fields.next().unwrap_or_default();
        let id: usize = id
            .parse()
            .map_err(|_| ParseError::new(lineno, format!("invalid CPU number {id:?}")))?;
        if id > u16::MAX as usize {
            return Err(ParseError::new(
                lineno,
                format!("CPU number {id} too large"),
            ));
        }
        if out.len() <= id {
            out.resize(id + 1, [0.0; 10]);
        }
        let slot = &mut out[id];
        *slot = [0.0; 10];
        let mut n = 0;
        for (v, field) in slot.iter_mut().zip(&mut fields) {
            let jiffies: u64 = field.parse().map_err(|_| {
                ParseError::new(lineno, format!("invalid time {field:?} of cpu{id}"))
            })?;
            *v = jiffies as f64 / USER_HZ;
            n += 1;
        }
        if n == 0 {
            return Err(ParseError::new(lineno, format!("no times for cpu{id}")));
        }
    }
    Ok(())
}

/// Folds this scrape's times into the reported state, never letting a counter go backwards
/// (see the module documentation).
pub fn update(state: &mut Vec<CpuTimes>, fresh: &[CpuTimes]) {
    if state.len() != fresh.len() {
        state.clear();
        state.resize(fresh.len(), [0.0; 10]);
    }
    for (old, new) in state.iter_mut().zip(fresh) {
        if old[IDLE] - new[IDLE] >= JUMP_BACK_SECONDS {
            *old = [0.0; 10];
        }
        for (o, n) in old.iter_mut().zip(new) {
            if *n >= *o {
                *o = *n;
            }
        }
    }
}

/// Parses a CPU list such as `1-3,8` (Documentation/admin-guide/cputopology.rst); empty is
/// no CPU.
pub fn parse_cpu_list(text: &str) -> Result<Vec<u16>, ParseError> {
    let mut out = Vec::new();
    for part in text.trim().split(',').filter(|p| !p.is_empty()) {
        let bad = || ParseError::new(1, format!("invalid CPU range {part:?}"));
        match part.split_once('-') {
            Some((a, b)) => {
                let a: u16 = a.parse().map_err(|_| bad())?;
                let b: u16 = b.parse().map_err(|_| bad())?;
                if a > b {
                    return Err(bad());
                }
                out.extend(a..=b);
            }
            None => out.push(part.parse().map_err(|_| bad())?),
        }
    }
    Ok(out)
}

fn read_u64(path: &std::path::Path, buf: &mut String) -> Option<u64> {
    match read_attr(path, buf) {
        Ok(Some(())) => buf.trim().parse().ok(),
        _ => None,
    }
}

impl Cpu {
    /// Finds the CPU directories (`cpu` followed by a digit, in name order, as node_exporter's
    /// glob) that have thermal throttle counters and a readable topology.
    fn scan(&mut self) -> Result<(), CollectError> {
        self.throttle.clear();
        for name in list_dir(&self.cpu_dir)? {
            if !name
                .strip_prefix("cpu")
                .is_some_and(|n| n.starts_with(|c: char| c.is_ascii_digit()))
            {
                continue;
            }
            let dir = self.cpu_dir.join(&name);
            let Some(package) = read_u64(&dir.join("topology/physical_package_id"), &mut self.attr)
            else {
                continue;
            };
            let Some(core) = read_u64(&dir.join("topology/core_id"), &mut self.attr) else {
                continue;
            };
            let tt = dir.join("thermal_throttle");
            if !tt.is_dir() {
                continue;
            }
            self.throttle.push(ThrottleCpu {
                core_count: tt.join("core_throttle_count"),
                package_count: tt.join("package_throttle_count"),
                package,
                core,
            });
        }
        Ok(())
    }

    fn collect_throttles(&mut self, sink: &mut Sink) -> Result<(), CollectError> {
        let now = Instant::now();
        if self
            .scanned
            .is_none_or(|t| now.duration_since(t) >= TOPOLOGY_REFRESH)
        {
            self.scan()?;
            self.scanned = Some(now);
        }
        self.core_counts.clear();
        self.package_counts.clear();
        // Siblings share a core and cores share a package: the first CPU (in name order) whose
        // counter can be read speaks for them all.
        for t in &self.throttle {
            let key = (t.package, t.core);
            if !self.core_counts.iter().any(|(k, _)| *k == key)
                && let Some(v) = read_u64(&t.core_count, &mut self.attr)
            {
                self.core_counts.push((key, v));
            }
            if !self.package_counts.iter().any(|(p, _)| *p == t.package)
                && let Some(v) = read_u64(&t.package_count, &mut self.attr)
            {
                self.package_counts.push((t.package, v));
            }
        }
        let mut pkg = itoa::Buffer::new();
        let mut core = itoa::Buffer::new();
        if !self.core_counts.is_empty() {
            let mut fam = sink.family(
                "node_cpu_core_throttles_total",
                "Number of times this CPU core has been throttled.",
                MetricType::Counter,
            );
            for &((p, c), v) in &self.core_counts {
                fam.sample(
                    &[("core", core.format(c)), ("package", pkg.format(p))],
                    v as f64,
                );
            }
        }
        if !self.package_counts.is_empty() {
            let mut fam = sink.family(
                "node_cpu_package_throttles_total",
                "Number of times this CPU package has been throttled.",
                MetricType::Counter,
            );
            for &(p, v) in &self.package_counts {
                fam.sample(&[("package", pkg.format(p))], v as f64);
            }
        }
        Ok(())
    }

    fn collect_isolated(&mut self, sink: &mut Sink) -> Result<(), CollectError> {
        let path = self.cpu_dir.join("isolated");
        if self.isolated.is_none() {
            // Missing file: nothing to report, as for an empty list.
            let parsed = if read_into(&path, &mut self.attr)? {
                parse_cpu_list(&self.attr)
            } else {
                Ok(Vec::new())
            };
            self.isolated = Some(parsed);
        }
        match &self.isolated {
            Some(Ok(cpus)) if !cpus.is_empty() => {
                let mut id = itoa::Buffer::new();
                let mut fam = sink.family(
                    "node_cpu_isolated",
                    "Whether each core is isolated, information from /sys/devices/system/cpu/isolated.",
                    MetricType::Gauge,
                );
                for &cpu in cpus {
                    fam.sample(&[("cpu", id.format(cpu))], 1.0);
                }
                Ok(())
            }
            Some(Err(e)) => Err(CollectError::parse(&path, e.clone())),
            _ => Ok(()),
        }
    }

    fn collect_stat(&mut self, sink: &mut Sink) -> Result<(), CollectError> {
        if !read_into(&self.stat_path, &mut self.buf)? {
            return Ok(());
        }
        parse(&self.buf, &mut self.fresh).map_err(|e| CollectError::parse(&self.stat_path, e))?;
        update(&mut self.state, &self.fresh);
        if self.state.is_empty() {
            return Ok(());
        }
        let mut id = itoa::Buffer::new();
        let mut fam = sink.family(
            "node_cpu_seconds_total",
            "Seconds the CPUs spent in each mode.",
            MetricType::Counter,
        );
        for (n, times) in self.state.iter().enumerate() {
            let cpu = id.format(n);
            for (mode, v) in MODES.iter().zip(times) {
                fam.sample(&[("cpu", cpu), ("mode", mode)], *v);
            }
        }
        if self.guest {
            let mut fam = sink.family(
                "node_cpu_guest_seconds_total",
                "Seconds the CPUs spent in guests (VMs) for each mode.",
                MetricType::Counter,
            );
            for (n, times) in self.state.iter().enumerate() {
                let cpu = id.format(n);
                fam.sample(&[("cpu", cpu), ("mode", "user")], times[8]);
                fam.sample(&[("cpu", cpu), ("mode", "nice")], times[9]);
            }
        }
        Ok(())
    }
}

impl Collector for Cpu {
    fn name(&self) -> &'static str {
        "cpu"
    }

    fn collect(&mut self, sink: &mut Sink) -> Result<(), CollectError> {
        self.collect_stat(sink)?;
        self.collect_isolated(sink)?;
        self.collect_throttles(sink)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::collect::node::testutil::{
        self, collect_once, dir_host, fixture_host, samples, scrape,
    };

    fn value(sink: &Sink, name: &str, labels: &str) -> Option<f64> {
        samples(sink, name)
            .into_iter()
            .find(|(l, _)| l == labels)
            .map(|(_, v)| v)
    }

    fn collect_tree(tree: &str) -> Sink {
        collect_once::<Module>(&Config::default(), &fixture_host(tree))
    }

    #[test]
    fn legacy_kernel_with_an_offline_cpu() {
        let mut v = Vec::new();
        parse(
            include_str!("../../../tests/fixtures/hosts/legacy/proc/stat"),
            &mut v,
        )
        .expect("parse");
        assert_eq!(v.len(), 4);
        assert_eq!(
            v[0],
            [
                12345.67, 23.45, 4567.89, 987654.32, 123.45, 0.0, 234.56, 0.0, 345.67, 0.12
            ]
        );
        assert_eq!(v[2], [0.0; 10], "offline cpu2 is reported as zeros");
        assert_eq!(v[3][IDLE], 986543.21);
        assert_eq!(v[3][9], 0.15);
    }

    #[test]
    fn legacy_tree_full_output() {
        let sink = collect_tree("legacy");
        let secs = samples(&sink, "node_cpu_seconds_total");
        assert_eq!(secs.len(), 32);
        assert_eq!(secs[0], (r#"cpu="0",mode="user""#.into(), 12345.67));
        assert_eq!(
            value(&sink, "node_cpu_seconds_total", r#"cpu="1",mode="system""#),
            Some(4432.1)
        );
        assert_eq!(
            value(&sink, "node_cpu_seconds_total", r#"cpu="2",mode="idle""#),
            Some(0.0)
        );
        assert_eq!(
            samples(&sink, "node_cpu_guest_seconds_total")[6..],
            [
                (r#"cpu="3",mode="user""#.into(), 367.89),
                (r#"cpu="3",mode="nice""#.into(), 0.15)
            ]
        );
        // cpu3 shares core 1 with cpu1, which comes first: its count (3) wins over cpu3's (4).
        assert_eq!(
            samples(&sink, "node_cpu_core_throttles_total"),
            vec![
                (r#"core="0",package="0""#.into(), 12.0),
                (r#"core="1",package="0""#.into(), 3.0)
            ]
        );
        assert_eq!(
            samples(&sink, "node_cpu_package_throttles_total"),
            vec![(r#"package="0""#.into(), 57.0)]
        );
        assert_eq!(
            samples(&sink, "node_cpu_isolated"),
            vec![(r#"cpu="3""#.into(), 1.0)]
        );
    }

    #[test]
    fn modern_tree_has_no_throttle_counters_nor_isolated_cpus() {
        let sink = collect_tree("modern");
        let names: Vec<_> = sink.families().map(|f| f.name()).collect();
        assert_eq!(
            names,
            ["node_cpu_seconds_total", "node_cpu_guest_seconds_total"]
        );
        assert_eq!(
            value(&sink, "node_cpu_seconds_total", r#"cpu="1",mode="idle""#),
            Some(2486.71)
        );
        assert_eq!(
            value(&sink, "node_cpu_seconds_total", r#"cpu="0",mode="user""#),
            Some(72.93)
        );
    }

    #[test]
    fn counters_never_go_backwards() {
        let mut state = Vec::new();
        let t = |user: f64, idle: f64, iowait: f64| {
            [user, 0.0, 0.0, idle, iowait, 0.0, 0.0, 0.0, 0.0, 0.0]
        };
        update(&mut state, &[t(10.0, 100.0, 5.0)]);
        // iowait decreases (a known kernel quirk): the last value is kept.
        update(&mut state, &[t(11.0, 101.0, 4.5)]);
        assert_eq!(state, vec![t(11.0, 101.0, 5.0)]);
        // A small idle decrease is kept at the old value too.
        update(&mut state, &[t(12.0, 99.5, 5.5)]);
        assert_eq!(state, vec![t(12.0, 101.0, 5.5)]);
        // Idle falling by 3 s or more: hot-plug, the CPU starts over from the new values.
        update(&mut state, &[t(1.0, 98.0, 0.1)]);
        assert_eq!(state, vec![t(1.0, 98.0, 0.1)]);
        // A CPU appearing resets everything.
        update(&mut state, &[t(0.5, 98.0, 0.0), t(3.0, 4.0, 0.0)]);
        assert_eq!(state, vec![t(0.5, 98.0, 0.0), t(3.0, 4.0, 0.0)]);
    }

    #[test]
    fn backwards_counters_through_the_collector() {
        let dir = tempfile::tempdir().expect("tempdir");
        let host = dir_host(dir.path());
        let mut c = Module::build(
            &Config {
                enabled: true,
                guest: false,
            },
            &host,
        );
        std::fs::write(
            dir.path().join("stat"),
            "cpu  1 1 1 1 1\ncpu0 100 0 0 5000 300\nintr 1\n",
        )
        .expect("write");
        scrape(c.as_mut());
        std::fs::write(
            dir.path().join("stat"),
            "cpu  1 1 1 1 1\ncpu0 101 0 0 5100 250\nintr 1\n",
        )
        .expect("write");
        let sink = scrape(c.as_mut());
        assert_eq!(
            value(&sink, "node_cpu_seconds_total", r#"cpu="0",mode="iowait""#),
            Some(3.0)
        );
        assert_eq!(
            value(&sink, "node_cpu_seconds_total", r#"cpu="0",mode="user""#),
            Some(1.01)
        );
        assert!(samples(&sink, "node_cpu_guest_seconds_total").is_empty());
    }

    #[test]
    fn garbled_input_is_an_error() {
        let mut v = Vec::new();
        assert_eq!(
            parse("cpu  1 2\ncpux 1 2\n", &mut v),
            Err(ParseError::new(2, "invalid CPU number \"x\""))
        );
        assert_eq!(
            parse("cpu0 1 -2\n", &mut v),
            Err(ParseError::new(1, "invalid time \"-2\" of cpu0"))
        );
        assert_eq!(
            parse("cpu0\n", &mut v),
            Err(ParseError::new(1, "no times for cpu0"))
        );
        assert_eq!(parse_cpu_list("0-2,5\n"), Ok(vec![0, 1, 2, 5]));
        assert_eq!(parse_cpu_list("\n"), Ok(vec![]));
        assert_eq!(
            parse_cpu_list("3-1"),
            Err(ParseError::new(1, "invalid CPU range \"3-1\""))
        );
    }

    #[test]
    fn missing_files_write_nothing() {
        testutil::assert_empty_host_writes_nothing::<Module>();
    }
}
