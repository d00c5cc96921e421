//! `sockstat` collector: `node_sockstat_*` gauges from `/proc/net/sockstat` and
//! `/proc/net/sockstat6` (`PROTO: key value ...` lines, written by `sockstat_seq_show` in
//! net/ipv4/proc.c and `sockstat6_seq_show` in net/ipv6/proc.c).
//!
//! As node_exporter 1.5: `sockets: used N` becomes `node_sockstat_sockets_used`; every other
//! line gives `node_sockstat_<PROTO>_<key>` for the keys `inuse`, `orphan`, `tw`, `alloc`,
//! `mem` and `memory`; `mem` (in pages) also gives `<PROTO>_mem_bytes`.

use std::path::PathBuf;

use crate::collect::registry::{CollectorModule, Switch};
use crate::collect::{CollectError, Collector, MetricType, ParseError, Sink};
use crate::host::{HostRoot, read_into};

/// Registry entry.
pub struct Module;

impl CollectorModule for Module {
    type Config = Switch;
    fn build(_: &Switch, host: &HostRoot) -> Box<dyn Collector> {
        Box::new(Sockstat {
            paths: [host.proc("net/sockstat"), host.proc("net/sockstat6")],
            page_size: rustix::param::page_size() as f64,
            buf: String::with_capacity(512),
        })
    }
}

struct Sockstat {
    paths: [PathBuf; 2],
    page_size: f64,
    buf: String,
}

/// Keys node_exporter reports; others are ignored.
const KEYS: [&str; 6] = ["inuse", "orphan", "tw", "alloc", "mem", "memory"];

/// Calls `f(protocol, key, value)` for each key/value pair, in file order (`sockets` is a
/// protocol like the others here).
pub fn visit<'a>(
    text: &'a str,
    mut f: impl FnMut(&'a str, &'a str, i64),
) -> Result<(), ParseError> {
    for (i, line) in text.lines().enumerate() {
        let lineno = i + 1;
        if line.trim().is_empty() {
            continue;
        }
        let mut fields = line.split_ascii_whitespace();
        let proto = fields.next().unwrap_or_default();
        let proto = proto.strip_suffix(':').unwrap_or(proto);
        let mut any = false;
        while let Some(key) = fields.next() {
            let v = fields
                .next()
                .ok_or_else(|| ParseError::new(lineno, format!("{key} without a value")))?;
            let v = v
                .parse()
                .map_err(|_| ParseError::new(lineno, format!("invalid {key} {v:?}")))?;
            f(proto, key, v);
            any = true;
        }
        if !any {
            return Err(ParseError::new(lineno, "no key/value pairs"));
        }
    }
    Ok(())
}

fn emit(sink: &mut Sink, proto: &str, key: &str, v: f64) {
    sink.family_parts(
        &["node_sockstat_", proto, "_", key],
        &["Number of ", proto, " sockets in state ", key, "."],
        MetricType::Gauge,
    )
    .sample(&[], v);
}

impl Collector for Sockstat {
    fn name(&self) -> &'static str {
        "sockstat"
    }

    fn collect(&mut self, sink: &mut Sink) -> Result<(), CollectError> {
        let page_size = self.page_size;
        for path in &self.paths {
            if !read_into(path, &mut self.buf)? {
                continue;
            }
            visit(&self.buf, |proto, key, v| {
                let v = v as f64;
                if proto == "sockets" {
                    if key == "used" {
                        sink.gauge(
                            "node_sockstat_sockets_used",
                            "Number of IPv4 sockets in use.",
                            v,
                        );
                    }
                } else if KEYS.contains(&key) {
                    emit(sink, proto, key, v);
                    if key == "mem" {
                        emit(sink, proto, "mem_bytes", v * page_size);
                    }
                }
            })
            .map_err(|e| CollectError::parse(path, e))?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::collect::node::testutil::{self, collect_once, first_values, fixture_host};

    fn pairs(text: &str) -> Vec<(String, i64)> {
        let mut v = Vec::new();
        visit(text, |p, k, x| v.push((format!("{p}_{k}"), x))).expect("parse");
        v
    }

    #[test]
    fn recorded_files_from_two_kernels() {
        let m = pairs(include_str!(
            "../../../tests/fixtures/hosts/modern/proc/net/sockstat"
        ));
        assert_eq!(m[0], ("sockets_used".to_string(), 18));
        assert_eq!(m[5], ("TCP_mem".to_string(), 364));
        assert_eq!(m[6], ("UDP_inuse".to_string(), 2));
        let l = pairs(include_str!(
            "../../../tests/fixtures/hosts/legacy/proc/net/sockstat6"
        ));
        assert_eq!(
            l,
            vec![
                ("TCP6_inuse".to_string(), 11),
                ("UDP6_inuse".to_string(), 4),
                ("UDPLITE6_inuse".to_string(), 0),
                ("RAW6_inuse".to_string(), 1),
                ("FRAG6_inuse".to_string(), 0),
                ("FRAG6_memory".to_string(), 0),
            ]
        );
    }

    #[test]
    fn collector_output() {
        let host = fixture_host("legacy");
        let sink = collect_once::<Module>(&Switch::default(), &host);
        let got = first_values(&sink);
        let page = rustix::param::page_size() as f64;
        assert_eq!(got.len(), 20);
        assert_eq!(got[0], ("node_sockstat_sockets_used".to_string(), 1123.0));
        assert_eq!(got[5], ("node_sockstat_TCP_mem".to_string(), 12.0));
        assert_eq!(
            got[6],
            ("node_sockstat_TCP_mem_bytes".to_string(), 12.0 * page)
        );
        assert_eq!(
            got[9],
            ("node_sockstat_UDP_mem_bytes".to_string(), 7.0 * page)
        );
        assert_eq!(got[14], ("node_sockstat_TCP6_inuse".to_string(), 11.0));
        let help: Vec<_> = sink
            .families()
            .map(|f| f.help().to_string())
            .take(2)
            .collect();
        assert_eq!(
            help,
            [
                "Number of IPv4 sockets in use.",
                "Number of TCP sockets in state inuse."
            ]
        );
    }

    #[test]
    fn garbled_lines_are_errors() {
        assert_eq!(
            visit("TCP: inuse\n", |_, _, _| ()),
            Err(ParseError::new(1, "inuse without a value"))
        );
        assert_eq!(
            visit("TCP:\n", |_, _, _| ()),
            Err(ParseError::new(1, "no key/value pairs"))
        );
        assert_eq!(
            visit("x\nTCP: inuse x\n", |_, _, _| ()),
            Err(ParseError::new(1, "no key/value pairs"))
        );
    }

    #[test]
    fn missing_files_write_nothing() {
        testutil::assert_empty_host_writes_nothing::<Module>();
    }
}
