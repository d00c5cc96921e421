//! `netstat` collector: untyped `node_netstat_<Proto>_<Field>` from `/proc/net/netstat`,
//! `/proc/net/snmp` (pairs of `Proto: names...` / `Proto: values...` lines) and
//! `/proc/net/snmp6` (`Ip6InReceives value` lines), filtered by the `fields` pattern
//! (node_exporter 1.5's `--collector.netstat.fields` and its default).
//!
//! Formats: net/ipv4/proc.c (`snmp_seq_show`, `netstat_seq_show`) and net/ipv6/proc.c
//! (`snmp6_seq_show`); RFC 1213 / RFC 4293 name the fields.
//!
//! The field lists only change with the kernel, so the pattern is evaluated once per layout:
//! each file keeps the text of its key names from the previous scrape and the indices of the
//! selected values; a scrape with the same keys compares strings and parses only those values.

use std::path::PathBuf;

use serde::Deserialize;

use crate::collect::registry::CollectorModule;
use crate::collect::{CollectError, Collector, MetricType, ParseError, Sink};
use crate::config::Pattern;
use crate::host::{HostRoot, read_into};

/// Registry entry.
pub struct Module;

/// node_exporter 1.5's default `--collector.netstat.fields`.
pub const DEFAULT_FIELDS: &str = "^(.*_(InErrors|InErrs)|Ip_Forwarding|Ip(6|Ext)_(InOctets|OutOctets)|Icmp6?_(InMsgs|OutMsgs)|TcpExt_(Listen.*|Syncookies.*|TCPSynRetrans|TCPTimeouts)|Tcp_(ActiveOpens|InSegs|OutSegs|OutRsts|PassiveOpens|RetransSegs|CurrEstab)|Udp6?_(InDatagrams|OutDatagrams|NoPorts|RcvbufErrors|SndbufErrors))$";

/// `collectors.netstat`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Whether the collector runs.
    pub enabled: bool,
    /// Fields (`<Proto>_<Field>`) to report.
    pub fields: Pattern,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            enabled: true,
            fields: default_fields(),
        }
    }
}

fn default_fields() -> Pattern {
    // The constant is a valid pattern (tested below); fall back to matching nothing.
    Pattern::new(DEFAULT_FIELDS)
        .or_else(|_| Pattern::new("^$"))
        .unwrap_or_else(|_| unreachable!("\"^$\" is a valid regex"))
}

crate::collector_config!(Config, unchecked);

impl CollectorModule for Module {
    type Config = Config;
    fn build(cfg: &Config, host: &HostRoot) -> Box<dyn Collector> {
        let file = |rel: &str, layout| StatFile {
            path: host.proc(rel),
            layout,
            keys: String::new(),
            selected: Vec::new(),
        };
        Box::new(Netstat {
            fields: cfg.fields.clone(),
            files: [
                file("net/netstat", Layout::Pairs),
                file("net/snmp", Layout::Pairs),
                file("net/snmp6", Layout::Lines),
            ],
            buf: String::with_capacity(8192),
            scratch: String::with_capacity(4096),
        })
    }
}

/// How a file lays out its statistics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Layout {
    /// `/proc/net/{netstat,snmp}`: a header line of names and a line of values per protocol.
    Pairs,
    /// `/proc/net/snmp6`: one `<Proto6><Field> <value>` per line (lines without a `6` in the
    /// key are ignored).
    Lines,
}

/// Calls `f(protocol, field, value)` for every statistic in file order.
pub fn visit<'a>(
    text: &'a str,
    layout: Layout,
    mut f: impl FnMut(&'a str, &'a str, &'a str),
) -> Result<(), ParseError> {
    match layout {
        Layout::Lines => {
            for line in text.lines() {
                let mut it = line.split_ascii_whitespace();
                let (Some(key), Some(value)) = (it.next(), it.next()) else {
                    continue;
                };
                if let Some(six) = key.find('6') {
                    f(&key[..=six], &key[six + 1..], value);
                }
            }
        }
        Layout::Pairs => {
            let mut lines = text.lines().enumerate();
            while let Some((i, header)) = lines.next() {
                if header.trim().is_empty() {
                    continue;
                }
                let (_, values) = lines
                    .next()
                    .ok_or_else(|| ParseError::new(i + 1, "header line without values"))?;
                let mut names = header.split(' ');
                let mut vals = values.split(' ');
                let proto = names.next().unwrap_or_default();
                let proto = proto.strip_suffix(':').unwrap_or(proto);
                vals.next();
                loop {
                    match (names.next(), vals.next()) {
                        (Some(n), Some(v)) => f(proto, n, v),
                        (None, None) => break,
                        _ => {
                            return Err(ParseError::new(
                                i + 2,
                                format!("{proto}: number of names and values differ"),
                            ));
                        }
                    }
                }
            }
        }
    }
    Ok(())
}

/// One selected statistic: its position among the file's values and its metric name/help.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Selected {
    index: usize,
    name: String,
    help: String,
}

struct StatFile {
    path: PathBuf,
    layout: Layout,
    /// Key names seen in the previous scrape, one per line; the cache key for `selected`.
    keys: String,
    selected: Vec<Selected>,
}

impl StatFile {
    fn collect(
        &mut self,
        fields: &Pattern,
        buf: &mut String,
        scratch: &mut String,
        sink: &mut Sink,
    ) -> Result<(), CollectError> {
        if !read_into(&self.path, buf)? {
            return Ok(());
        }
        let text = buf.as_str();
        let perr = |e| CollectError::parse(&self.path, e);
        scratch.clear();
        visit(text, self.layout, |p, n, _| {
            scratch.push_str(p);
            scratch.push('_');
            scratch.push_str(n);
            scratch.push('\n');
        })
        .map_err(perr)?;
        if *scratch != self.keys {
            self.selected.clear();
            for (index, key) in scratch.lines().enumerate() {
                if fields.is_match(key) {
                    let (p, n) = key.split_once('_').unwrap_or((key, ""));
                    self.selected.push(Selected {
                        index,
                        name: format!("node_netstat_{key}"),
                        help: format!("Statistic {p}{n}."),
                    });
                }
            }
            std::mem::swap(scratch, &mut self.keys);
        }
        let mut next = self.selected.iter().peekable();
        let mut index = 0;
        let mut bad: Option<&str> = None;
        visit(text, self.layout, |_, _, v| {
            if let Some(sel) = next.next_if(|s| s.index == index) {
                match v.parse::<f64>() {
                    Ok(x) => sink.single(&sel.name, &sel.help, MetricType::Untyped, x),
                    Err(_) => bad = bad.or(Some(v)),
                }
            }
            index += 1;
        })
        .map_err(perr)?;
        if let Some(v) = bad {
            return Err(perr(ParseError::new(0, format!("invalid value {v:?}"))));
        }
        Ok(())
    }
}

struct Netstat {
    fields: Pattern,
    files: [StatFile; 3],
    buf: String,
    scratch: String,
}

impl Collector for Netstat {
    fn name(&self) -> &'static str {
        "netstat"
    }

    fn collect(&mut self, sink: &mut Sink) -> Result<(), CollectError> {
        for f in &mut self.files {
            f.collect(&self.fields, &mut self.buf, &mut self.scratch, sink)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::collect::node::testutil::{self, dir_host, fixture_host, scrape};

    fn all(text: &str, layout: Layout) -> Vec<(String, String)> {
        let mut v = Vec::new();
        visit(text, layout, |p, n, x| {
            v.push((format!("{p}_{n}"), x.to_string()))
        })
        .expect("parse");
        v
    }

    fn get<'a>(v: &'a [(String, String)], k: &str) -> Option<&'a str> {
        v.iter().find(|(n, _)| n == k).map(|(_, x)| x.as_str())
    }

    #[test]
    fn default_pattern_compiles() {
        assert_eq!(Config::default().fields.as_str(), DEFAULT_FIELDS);
    }

    #[test]
    fn recorded_files_from_two_kernels() {
        let snmp = all(
            include_str!("../../../tests/fixtures/hosts/modern/proc/net/snmp"),
            Layout::Pairs,
        );
        assert_eq!(get(&snmp, "Ip_Forwarding"), Some("2"));
        assert_eq!(get(&snmp, "Tcp_InSegs"), Some("3031"));
        let snmp6 = all(
            include_str!("../../../tests/fixtures/hosts/modern/proc/net/snmp6"),
            Layout::Lines,
        );
        assert_eq!(get(&snmp6, "Ip6_OutOctets"), Some("880"));
        assert_eq!(get(&snmp6, "UdpLite6_InErrors"), Some("0"));
        let ext = all(
            include_str!("../../../tests/fixtures/hosts/modern/proc/net/netstat"),
            Layout::Pairs,
        );
        assert_eq!(get(&ext, "IpExt_InOctets"), Some("83776346"));
        assert_eq!(get(&ext, "TcpExt_TCPTimeouts"), Some("2"));

        let legacy = all(
            include_str!("../../../tests/fixtures/hosts/legacy/proc/net/snmp"),
            Layout::Pairs,
        );
        assert_eq!(get(&legacy, "Tcp_MaxConn"), Some("-1"));
        assert_eq!(get(&legacy, "Udp_InDatagrams"), Some("7654321"));
        let ext = all(
            include_str!("../../../tests/fixtures/hosts/legacy/proc/net/netstat"),
            Layout::Pairs,
        );
        assert_eq!(get(&ext, "TcpExt_ListenDrops"), Some("19"));
        assert_eq!(get(&ext, "IpExt_OutOctets"), Some("223456789012"));
        assert_eq!(get(&ext, "TcpExt_TCPSynRetrans"), Some("321"));
    }

    #[test]
    fn collector_filters_and_caches_the_selection() {
        let host = fixture_host("legacy");
        let mut c = Module::build(&Config::default(), &host);
        for _ in 0..2 {
            let sink = scrape(c.as_mut());
            let got: Vec<(String, String, f64)> = sink
                .families()
                .map(|f| {
                    assert_eq!(f.kind(), MetricType::Untyped);
                    let s = f.samples().next().expect("sample");
                    (f.name().to_string(), f.help().to_string(), s.value)
                })
                .collect();
            assert_eq!(got.len(), 40);
            assert!(got.contains(&(
                "node_netstat_TcpExt_ListenOverflows".into(),
                "Statistic TcpExtListenOverflows.".into(),
                17.0
            )));
            assert!(got.contains(&(
                "node_netstat_Tcp_CurrEstab".into(),
                "Statistic TcpCurrEstab.".into(),
                42.0
            )));
            assert!(got.contains(&(
                "node_netstat_Ip6_InOctets".into(),
                "Statistic Ip6InOctets.".into(),
                8123456.0
            )));
            assert!(!got.iter().any(|g| g.0 == "node_netstat_Tcp_MaxConn"));
        }
    }

    #[test]
    fn layout_change_reselects() {
        let dir = tempfile::tempdir().expect("tempdir");
        let host = dir_host(dir.path());
        std::fs::create_dir_all(dir.path().join("net")).expect("mkdir");
        let snmp = dir.path().join("net/snmp");
        let cfg = Config {
            fields: Pattern::new("^Tcp_(InSegs|OutSegs)$").expect("re"),
            ..Config::default()
        };
        let mut c = Module::build(&cfg, &host);
        let run = |c: &mut Box<dyn Collector>| {
            let sink = scrape(c.as_mut());
            sink.families()
                .map(|f| (f.name().to_string(), f.samples().next().map(|s| s.value)))
                .collect::<Vec<_>>()
        };
        std::fs::write(&snmp, "Tcp: InSegs X\nTcp: 5 6\n").expect("write");
        assert_eq!(
            run(&mut c),
            vec![("node_netstat_Tcp_InSegs".into(), Some(5.0))]
        );
        std::fs::write(&snmp, "Tcp: InSegs X\nTcp: 7 6\n").expect("write");
        assert_eq!(
            run(&mut c),
            vec![("node_netstat_Tcp_InSegs".into(), Some(7.0))]
        );
        std::fs::write(&snmp, "Tcp: X OutSegs InSegs\nTcp: 1 2 3\n").expect("write");
        assert_eq!(
            run(&mut c),
            vec![
                ("node_netstat_Tcp_OutSegs".into(), Some(2.0)),
                ("node_netstat_Tcp_InSegs".into(), Some(3.0))
            ]
        );
    }

    #[test]
    fn garbled_files_are_errors() {
        let mut n = 0;
        assert_eq!(
            visit("Tcp: A B\n", Layout::Pairs, |_, _, _| n += 1),
            Err(ParseError::new(1, "header line without values"))
        );
        assert_eq!(
            visit("Tcp: A B\nTcp: 1\n", Layout::Pairs, |_, _, _| n += 1),
            Err(ParseError::new(2, "Tcp: number of names and values differ"))
        );
    }

    #[test]
    fn missing_files_write_nothing() {
        testutil::assert_empty_host_writes_nothing::<Module>();
    }
}
