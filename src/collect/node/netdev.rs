//! `netdev` collector: `node_network_{receive,transmit}_<field>_total{device}` counters from
//! `/proc/net/dev` (format: Documentation/filesystems/proc.rst, "1.3 Networking info in
//! /proc/net"; the columns are written by `dev_seq_printf_stats` in net/core/net-procfs.c).
//!
//! node_exporter 1.5 reads the same counters over rtnetlink by default; the values are the
//! same `rtnl_link_stats64` the kernel prints here, and `/proc/net/dev` honours `--path.procfs`.
//! The one counter rtnetlink has and `/proc/net/dev` lacks, `rx_nohandler`
//! (`node_network_receive_nohandler_total`), is read from sysfs
//! `class/net/<device>/statistics/rx_nohandler` (kernel >= 4.6), for devices that have it.
//! Upstream 1.5 excludes no device by default (the Debian package's binary defaults
//! `device-exclude` to `^lo$`; sonde follows upstream).

use std::ops::Range;
use std::path::PathBuf;

use serde::Deserialize;

use crate::collect::registry::CollectorModule;
use crate::collect::{CollectError, Collector, MetricType, ParseError, Sink};
use crate::config::Issue;
use crate::config::Pattern;
use crate::host::{HostRoot, read_attr, read_into};

/// Registry entry.
pub struct Module;

/// `collectors.netdev` (node_exporter's `--collector.netdev.device-{include,exclude}`).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Whether the collector runs.
    pub enabled: bool,
    /// Only devices whose name matches are reported (exclusive with `device_exclude`).
    pub device_include: Option<Pattern>,
    /// Devices whose name matches are not reported (exclusive with `device_include`).
    pub device_exclude: Option<Pattern>,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            enabled: true,
            device_include: None,
            device_exclude: None,
        }
    }
}

impl Config {
    fn check(&self, key: &str, issues: &mut Vec<Issue>) {
        Pattern::check_device_filters(
            key,
            self.device_include.as_ref(),
            self.device_exclude.as_ref(),
            issues,
        );
    }
}

crate::collector_config!(Config);

impl CollectorModule for Module {
    type Config = Config;
    fn build(cfg: &Config, host: &HostRoot) -> Box<dyn Collector> {
        Box::new(NetDev {
            path: host.proc("net/dev"),
            include: cfg.device_include.clone(),
            exclude: cfg.device_exclude.clone(),
            class_net: host.sys("class/net"),
            attr: String::with_capacity(32),
            path_buf: PathBuf::new(),
            nohandler: Vec::new(),
            buf: String::with_capacity(4096),
            rows: Vec::new(),
        })
    }
}

/// Number of counters per device line.
pub const FIELDS: usize = 16;

/// Metric names, in the column order of `/proc/net/dev`.
const NAMES: [&str; FIELDS] = [
    "receive_bytes",
    "receive_packets",
    "receive_errs",
    "receive_drop",
    "receive_fifo",
    "receive_frame",
    "receive_compressed",
    "receive_multicast",
    "transmit_bytes",
    "transmit_packets",
    "transmit_errs",
    "transmit_drop",
    "transmit_fifo",
    "transmit_colls",
    "transmit_carrier",
    "transmit_compressed",
];

/// One device line: the name's byte range in the parsed text and its counters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Row {
    /// Byte range of the device name in the text.
    pub name: Range<usize>,
    /// The counters, in column order (see [`FIELDS`]).
    pub values: [u64; FIELDS],
}

/// Parses `/proc/net/dev` into `out` (cleared first), reusing its allocation.
pub fn parse_into(text: &str, out: &mut Vec<Row>) -> Result<(), ParseError> {
    out.clear();
    let base = text.as_ptr() as usize;
    for (i, line) in text.lines().enumerate().skip(2) {
        let lineno = i + 1;
        if line.trim().is_empty() {
            continue;
        }
        // Names cannot contain ':' but the kernel pads them, so split at the last colon.
        let colon = line
            .rfind(':')
            .ok_or_else(|| ParseError::new(lineno, "missing ':' after the device name"))?;
        let name = line[..colon].trim();
        let start = name.as_ptr() as usize - base;
        let mut values = [0u64; FIELDS];
        let mut fields = line[colon + 1..].split_ascii_whitespace();
        for (slot, what) in values.iter_mut().zip(NAMES) {
            let f = fields
                .next()
                .ok_or_else(|| ParseError::new(lineno, format!("missing {what}")))?;
            *slot = f
                .parse()
                .map_err(|_| ParseError::new(lineno, format!("invalid {what} {f:?}")))?;
        }
        out.push(Row {
            name: start..start + name.len(),
            values,
        });
    }
    Ok(())
}

/// Parses `/proc/net/dev` into `(device, counters)` pairs.
pub fn parse(text: &str) -> Result<Vec<(&str, [u64; FIELDS])>, ParseError> {
    let mut rows = Vec::new();
    parse_into(text, &mut rows)?;
    Ok(rows
        .into_iter()
        .map(|r| (&text[r.name], r.values))
        .collect())
}

struct NetDev {
    path: PathBuf,
    include: Option<Pattern>,
    exclude: Option<Pattern>,
    class_net: PathBuf,
    attr: String,
    path_buf: PathBuf,
    nohandler: Vec<(usize, u64)>,
    buf: String,
    rows: Vec<Row>,
}

impl Collector for NetDev {
    fn name(&self) -> &'static str {
        "netdev"
    }

    fn collect(&mut self, sink: &mut Sink) -> Result<(), CollectError> {
        if !read_into(&self.path, &mut self.buf)? {
            return Ok(());
        }
        parse_into(&self.buf, &mut self.rows).map_err(|e| CollectError::parse(&self.path, e))?;
        let (include, exclude) = (&self.include, &self.exclude);
        let buf = &self.buf;
        self.rows.retain(|r| {
            let name = &buf[r.name.clone()];
            Pattern::admits(include.as_ref(), exclude.as_ref(), name)
        });
        if self.rows.is_empty() {
            return Ok(());
        }
        for (i, what) in NAMES.iter().enumerate() {
            let mut fam = sink.family_parts(
                &["node_network_", what, "_total"],
                &["Network device statistic ", what, "."],
                MetricType::Counter,
            );
            for r in &self.rows {
                fam.sample(&[("device", &buf[r.name.clone()])], r.values[i] as f64);
            }
        }
        self.nohandler.clear();
        for (idx, r) in self.rows.iter().enumerate() {
            let dev = &buf[r.name.clone()];
            self.path_buf.clear();
            self.path_buf.push(&self.class_net);
            self.path_buf.push(dev);
            self.path_buf.push("statistics/rx_nohandler");
            // A device that vanished since /proc/net/dev was read, or a kernel without the
            // counter: nothing to report for it.
            let Ok(Some(())) = read_attr(&self.path_buf, &mut self.attr) else {
                continue;
            };
            let Ok(v) = self.attr.parse::<u64>() else {
                continue;
            };
            self.nohandler.push((idx, v));
        }
        if !self.nohandler.is_empty() {
            let mut fam = sink.family(
                "node_network_receive_nohandler_total",
                "Network device statistic receive_nohandler.",
                MetricType::Counter,
            );
            for &(idx, v) in &self.nohandler {
                fam.sample(&[("device", &buf[self.rows[idx].name.clone()])], v as f64);
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::collect::node::testutil::{self, collect_once, fixture_host};

    fn collect(host: &HostRoot, cfg: &Config) -> Vec<(String, String, f64)> {
        let sink = collect_once::<Module>(cfg, host);
        let mut out = Vec::new();
        for f in sink.families() {
            assert_eq!(f.kind(), MetricType::Counter);
            for s in f.samples() {
                out.push((f.name().to_string(), s.labels.to_string(), s.value));
            }
        }
        out
    }

    #[test]
    fn nohandler_comes_from_sysfs_where_present() {
        let dir = tempfile::tempdir().expect("tempdir");
        let proc_net = dir.path().join("proc/net");
        std::fs::create_dir_all(&proc_net).expect("mkdir");
        std::fs::write(
            proc_net.join("dev"),
            "Inter-|   Receive                                                |  Transmit\n \
             face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop fifo colls carrier compressed\n  \
             eth0: 10 2 0 0 0 0 0 0 20 3 0 0 0 0 0 0\n    \
             lo: 5 1 0 0 0 0 0 0 5 1 0 0 0 0 0 0\n",
        )
        .expect("write");
        let stats = dir.path().join("sys/class/net/eth0/statistics");
        std::fs::create_dir_all(&stats).expect("mkdir");
        std::fs::write(stats.join("rx_nohandler"), "7\n").expect("write");
        let host = HostRoot::new(dir.path().join("proc"), dir.path().join("sys"), dir.path());
        let got: Vec<_> = collect(&host, &Config::default())
            .into_iter()
            .filter(|(n, _, _)| n == "node_network_receive_nohandler_total")
            .collect();
        assert_eq!(
            got,
            vec![(
                "node_network_receive_nohandler_total".to_string(),
                "device=\"eth0\"".to_string(),
                7.0
            )]
        );
    }

    #[test]
    fn recorded_files_from_two_kernels() {
        let modern = parse(include_str!(
            "../../../tests/fixtures/hosts/modern/proc/net/dev"
        ))
        .expect("modern");
        assert_eq!(modern.len(), 4);
        assert_eq!(modern[0].0, "lo");
        assert_eq!(
            modern[3],
            (
                "eth0",
                [
                    83815841, 3032, 0, 0, 0, 0, 0, 0, 150250, 1548, 0, 0, 0, 0, 0, 0
                ]
            )
        );
        let legacy = parse(include_str!(
            "../../../tests/fixtures/hosts/legacy/proc/net/dev"
        ))
        .expect("legacy");
        let names: Vec<_> = legacy.iter().map(|r| r.0).collect();
        assert_eq!(names, ["eno1", "docker0", "lo", "veth1a2b3c4", "bond0"]);
        assert_eq!(
            legacy[0].1,
            [
                987654321012,
                712345678,
                3,
                1205,
                0,
                2,
                0,
                41233,
                123456789012,
                456789012,
                0,
                0,
                0,
                0,
                0,
                0
            ]
        );
    }

    #[test]
    fn filters_and_exposition() {
        let host = fixture_host("modern");
        let all = collect(&host, &Config::default());
        assert_eq!(all.len(), 16 * 4);
        assert_eq!(
            all[0],
            (
                "node_network_receive_bytes_total".to_string(),
                "device=\"lo\"".to_string(),
                3193.0
            )
        );
        assert!(all.contains(&(
            "node_network_transmit_packets_total".to_string(),
            "device=\"eth0\"".to_string(),
            1548.0
        )));
        let cfg = Config {
            device_exclude: Some(Pattern::new("^lo$").expect("re")),
            ..Config::default()
        };
        assert_eq!(collect(&host, &cfg).len(), 16 * 3);
        let cfg = Config {
            device_include: Some(Pattern::new("^eth").expect("re")),
            ..Config::default()
        };
        let only = collect(&host, &cfg);
        assert_eq!(only.len(), 16);
        assert_eq!(only[0].2, 83815841.0);
    }

    #[test]
    fn include_and_exclude_are_exclusive() {
        let cfg = Config {
            device_include: Some(Pattern::new("a").expect("re")),
            device_exclude: Some(Pattern::new("b").expect("re")),
            ..Config::default()
        };
        let mut issues = Vec::new();
        cfg.check("collectors.netdev", &mut issues);
        assert_eq!(issues.len(), 1);
        assert_eq!(issues[0].key, "collectors.netdev.device_include");
    }

    #[test]
    fn garbled_lines_are_errors() {
        let head = "h1\nh2\n";
        assert_eq!(
            parse(&format!("{head}eth0 1 2\n")),
            Err(ParseError::new(3, "missing ':' after the device name"))
        );
        assert_eq!(
            parse(&format!("{head}eth0: 1 2\n")),
            Err(ParseError::new(3, "missing receive_errs"))
        );
        assert_eq!(
            parse(&format!("{head}eth0: x\n")),
            Err(ParseError::new(3, "invalid receive_bytes \"x\""))
        );
    }

    #[test]
    fn missing_file_writes_nothing() {
        testutil::assert_empty_host_writes_nothing::<Module>();
    }
}
