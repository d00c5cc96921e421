//! `udp_queues` collector: `node_udp_queues{ip="v4"|"v6",queue="rx"|"tx"}`, the bytes queued
//! on all UDP sockets, summed from the `tx_queue:rx_queue` column (hexadecimal) of
//! `/proc/net/udp` and `/proc/net/udp6` (format: `udp4_format_sock` in net/ipv4/udp.c,
//! `__ip6_dgram_sock_seq_show` in net/ipv6/datagram.c). A missing file (IPv6 disabled) only
//! drops its two series.

use std::path::PathBuf;

use crate::collect::registry::{CollectorModule, Switch};
use crate::collect::{CollectError, Collector, MetricType, ParseError, Sink};
use crate::host::{HostRoot, read_into};

/// Registry entry.
pub struct Module;

impl CollectorModule for Module {
    type Config = Switch;
    fn build(_: &Switch, host: &HostRoot) -> Box<dyn Collector> {
        Box::new(UdpQueues {
            paths: [host.proc("net/udp"), host.proc("net/udp6")],
            buf: String::with_capacity(16 * 1024),
        })
    }
}

/// Sums the queue column of a `/proc/net/udp{,6}` table: `(tx bytes, rx bytes)`.
pub fn parse(text: &str) -> Result<(u64, u64), ParseError> {
    let (mut tx, mut rx) = (0u64, 0u64);
    for (i, line) in text.lines().enumerate().skip(1) {
        let lineno = i + 1;
        if line.trim().is_empty() {
            continue;
        }
        let mut fields = line.split_ascii_whitespace();
        let queues = fields
            .nth(4)
            .ok_or_else(|| ParseError::new(lineno, "too few columns"))?;
        if fields.count() < 5 {
            return Err(ParseError::new(lineno, "too few columns"));
        }
        let (t, r) = queues
            .split_once(':')
            .ok_or_else(|| ParseError::new(lineno, format!("invalid queues {queues:?}")))?;
        let hex = |s: &str| {
            u64::from_str_radix(s, 16)
                .map_err(|_| ParseError::new(lineno, format!("invalid queues {queues:?}")))
        };
        tx = tx.wrapping_add(hex(t)?);
        rx = rx.wrapping_add(hex(r)?);
    }
    Ok((tx, rx))
}

struct UdpQueues {
    paths: [PathBuf; 2],
    buf: String,
}

impl Collector for UdpQueues {
    fn name(&self) -> &'static str {
        "udp_queues"
    }

    fn collect(&mut self, sink: &mut Sink) -> Result<(), CollectError> {
        let mut sums = [None; 2];
        for (path, slot) in self.paths.iter().zip(sums.iter_mut()) {
            if read_into(path, &mut self.buf)? {
                *slot = Some(parse(&self.buf).map_err(|e| CollectError::parse(path, e))?);
            }
        }
        if sums.iter().all(Option::is_none) {
            return Ok(());
        }
        let mut fam = sink.family(
            "node_udp_queues",
            "Number of allocated memory in the kernel for UDP datagrams in bytes.",
            MetricType::Gauge,
        );
        for (ip, sum) in ["v4", "v6"].into_iter().zip(sums) {
            if let Some((tx, rx)) = sum {
                fam.sample(&[("ip", ip), ("queue", "tx")], tx as f64);
                fam.sample(&[("ip", ip), ("queue", "rx")], rx as f64);
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::collect::node::testutil::{self, collect_once};

    #[test]
    fn recorded_files_from_two_kernels() {
        assert_eq!(
            parse(include_str!(
                "../../../tests/fixtures/hosts/modern/proc/net/udp"
            )),
            Ok((0, 0x9c0))
        );
        assert_eq!(
            parse(include_str!(
                "../../../tests/fixtures/hosts/modern/proc/net/udp6"
            )),
            Ok((0, 0x340))
        );
        assert_eq!(
            parse(include_str!(
                "../../../tests/fixtures/hosts/legacy/proc/net/udp"
            )),
            Ok((0xa00, 0x340))
        );
        assert_eq!(
            parse(include_str!(
                "../../../tests/fixtures/hosts/legacy/proc/net/udp6"
            )),
            Ok((0x100, 0x1200))
        );
    }

    #[test]
    fn garbled_lines_are_errors() {
        let head = "  sl  local_address rem_address   st tx_queue rx_queue\n";
        assert_eq!(
            parse(&format!("{head}1: a b 07\n")),
            Err(ParseError::new(2, "too few columns"))
        );
        assert_eq!(
            parse(&format!("{head}1: a b 07 00000000-0 0 0 0 0 0\n")),
            Err(ParseError::new(2, "invalid queues \"00000000-0\""))
        );
        assert_eq!(parse(head), Ok((0, 0)));
    }

    fn run(root: &std::path::Path) -> Vec<(String, f64)> {
        let host = HostRoot::new(root.join("proc"), root.join("sys"), root.join("root"));
        let sink = collect_once::<Module>(&Switch::default(), &host);
        sink.families()
            .flat_map(|f| {
                f.samples()
                    .map(|s| (s.labels.to_string(), s.value))
                    .collect::<Vec<_>>()
            })
            .collect()
    }

    #[test]
    fn collector_output_and_missing_udp6() {
        let root =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/hosts/legacy");
        assert_eq!(
            run(&root),
            [
                ("ip=\"v4\",queue=\"tx\"".to_string(), 2560.0),
                ("ip=\"v4\",queue=\"rx\"".to_string(), 832.0),
                ("ip=\"v6\",queue=\"tx\"".to_string(), 256.0),
                ("ip=\"v6\",queue=\"rx\"".to_string(), 4608.0),
            ]
        );
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::create_dir_all(dir.path().join("proc/net")).expect("mkdir");
        std::fs::copy(root.join("proc/net/udp"), dir.path().join("proc/net/udp")).expect("copy");
        assert_eq!(
            run(dir.path()),
            [
                ("ip=\"v4\",queue=\"tx\"".to_string(), 2560.0),
                ("ip=\"v4\",queue=\"rx\"".to_string(), 832.0),
            ]
        );
    }

    #[test]
    fn missing_files_write_nothing() {
        testutil::assert_empty_host_writes_nothing::<Module>();
    }
}
