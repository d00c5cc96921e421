//! `arp` collector: `node_arp_entries{device}` — the number of `/proc/net/arp` entries per
//! interface (format: `arp_seq_show` in net/ipv4/arp.c: a header line, then
//! `IP HWtype Flags HWaddress Mask Device` per neighbour). As node_exporter 1.5, every entry
//! counts, incomplete ones (flags `0x0`) included.

use std::ops::Range;
use std::path::PathBuf;

use serde::Deserialize;

use crate::collect::registry::CollectorModule;
use crate::collect::{CollectError, Collector, MetricType, ParseError, Sink};
use crate::config::{Issue, Pattern};
use crate::host::{HostRoot, read_into};

/// Registry entry.
pub struct Module;

/// `collectors.arp` (node_exporter's `--collector.arp.device-{include,exclude}`).
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
        Box::new(Arp {
            path: host.proc("net/arp"),
            include: cfg.device_include.clone(),
            exclude: cfg.device_exclude.clone(),
            buf: String::with_capacity(1024),
            counts: Vec::new(),
        })
    }
}

/// Counts entries per device into `out` (cleared first): (byte range of the device name in
/// `text`, count), in order of first appearance.
pub fn count_into(text: &str, out: &mut Vec<(Range<usize>, u32)>) -> Result<(), ParseError> {
    out.clear();
    let base = text.as_ptr() as usize;
    for (i, line) in text.lines().enumerate() {
        let mut n = 0;
        let mut first = "";
        let mut last = "";
        for f in line.split_ascii_whitespace() {
            if n == 0 {
                first = f;
            }
            last = f;
            n += 1;
        }
        if n == 0 || (i == 0 && first == "IP") {
            continue;
        }
        if n < 6 {
            return Err(ParseError::new(i + 1, format!("{n} columns, expected 6")));
        }
        let start = last.as_ptr() as usize - base;
        match out.iter_mut().find(|(r, _)| &text[r.clone()] == last) {
            Some((_, c)) => *c += 1,
            None => out.push((start..start + last.len(), 1)),
        }
    }
    Ok(())
}

/// Counts entries per device.
pub fn count(text: &str) -> Result<Vec<(&str, u32)>, ParseError> {
    let mut v = Vec::new();
    count_into(text, &mut v)?;
    Ok(v.into_iter().map(|(r, c)| (&text[r], c)).collect())
}

struct Arp {
    path: PathBuf,
    include: Option<Pattern>,
    exclude: Option<Pattern>,
    buf: String,
    counts: Vec<(Range<usize>, u32)>,
}

impl Collector for Arp {
    fn name(&self) -> &'static str {
        "arp"
    }

    fn collect(&mut self, sink: &mut Sink) -> Result<(), CollectError> {
        if !read_into(&self.path, &mut self.buf)? {
            return Ok(());
        }
        count_into(&self.buf, &mut self.counts).map_err(|e| CollectError::parse(&self.path, e))?;
        let buf = &self.buf;
        let (include, exclude) = (&self.include, &self.exclude);
        self.counts.retain(|(r, _)| {
            let name = &buf[r.clone()];
            Pattern::admits(include.as_ref(), exclude.as_ref(), name)
        });
        if self.counts.is_empty() {
            return Ok(());
        }
        let mut fam = sink.family(
            "node_arp_entries",
            "ARP entries by device",
            MetricType::Gauge,
        );
        for (r, c) in &self.counts {
            fam.sample(&[("device", &buf[r.clone()])], f64::from(*c));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::collect::node::testutil::{self, collect_once, fixture_host};

    #[test]
    fn recorded_files_from_two_kernels() {
        assert_eq!(
            count(include_str!(
                "../../../tests/fixtures/hosts/modern/proc/net/arp"
            )),
            Ok(vec![("eth0", 1)])
        );
        assert_eq!(
            count(include_str!(
                "../../../tests/fixtures/hosts/legacy/proc/net/arp"
            )),
            Ok(vec![("eno1", 3), ("docker0", 1)])
        );
    }

    #[test]
    fn collector_filters_devices() {
        let host = fixture_host("legacy");
        let run = |cfg: &Config| {
            let sink = collect_once::<Module>(cfg, &host);
            sink.families()
                .flat_map(|f| {
                    f.samples()
                        .map(|s| (s.labels.to_string(), s.value))
                        .collect::<Vec<_>>()
                })
                .collect::<Vec<_>>()
        };
        assert_eq!(
            run(&Config::default()),
            [
                ("device=\"eno1\"".to_string(), 3.0),
                ("device=\"docker0\"".to_string(), 1.0)
            ]
        );
        let cfg = Config {
            device_exclude: Some(Pattern::new("^docker").expect("re")),
            ..Config::default()
        };
        assert_eq!(run(&cfg), [("device=\"eno1\"".to_string(), 3.0)]);
        let cfg = Config {
            device_include: Some(Pattern::new("^docker").expect("re")),
            ..Config::default()
        };
        assert_eq!(run(&cfg), [("device=\"docker0\"".to_string(), 1.0)]);
    }

    #[test]
    fn short_lines_are_errors() {
        assert_eq!(
            count("IP address HW type Flags HW address Mask Device\n10.0.0.1 0x1 0x2\n"),
            Err(ParseError::new(2, "3 columns, expected 6"))
        );
    }

    #[test]
    fn missing_file_writes_nothing() {
        testutil::assert_empty_host_writes_nothing::<Module>();
    }
}
