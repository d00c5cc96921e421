//! `conntrack` collector: `node_nf_conntrack_entries` and `_entries_limit` from
//! `/proc/sys/net/netfilter/nf_conntrack_{count,max}` (Documentation/networking/
//! nf_conntrack-sysctl.rst), and `node_nf_conntrack_stat_*` summed over CPUs from
//! `/proc/net/stat/nf_conntrack` (a header line, then one line of hexadecimal counters per CPU,
//! written by `ct_cpu_seq_show` in net/netfilter/nf_conntrack_standalone.c).
//!
//! As node_exporter 1.5: without `nf_conntrack_count` (module not loaded) nothing is written;
//! the statistics use fixed column positions (16 or 17 columns; `search_restart` is the 17th).

use std::path::PathBuf;

use crate::collect::registry::{CollectorModule, Switch};
use crate::collect::{CollectError, Collector, ParseError, Sink};
use crate::host::{HostRoot, read_attr, read_into};

/// Registry entry.
pub struct Module;

impl CollectorModule for Module {
    type Config = Switch;
    fn build(_: &Switch, host: &HostRoot) -> Box<dyn Collector> {
        Box::new(Conntrack {
            count: host.proc("sys/net/netfilter/nf_conntrack_count"),
            max: host.proc("sys/net/netfilter/nf_conntrack_max"),
            stat: host.proc("net/stat/nf_conntrack"),
            buf: String::with_capacity(1024),
        })
    }
}

/// The reported statistics: (column, metric suffix, help).
const STATS: [(usize, &str, &str); 8] = [
    (
        2,
        "found",
        "Number of searched entries which were successful.",
    ),
    (
        4,
        "invalid",
        "Number of packets seen which can not be tracked.",
    ),
    (
        5,
        "ignore",
        "Number of packets seen which are already connected to a conntrack entry.",
    ),
    (8, "insert", "Number of entries inserted into the list."),
    (
        9,
        "insert_failed",
        "Number of entries for which list insertion was attempted but failed.",
    ),
    (
        10,
        "drop",
        "Number of packets dropped due to conntrack failure.",
    ),
    (
        11,
        "early_drop",
        "Number of dropped conntrack entries to make room for new ones, if maximum table size was reached.",
    ),
    (
        16,
        "search_restart",
        "Number of conntrack table lookups which had to be restarted due to hashtable resizes.",
    ),
];

/// Parses `/proc/net/stat/nf_conntrack` into the [`STATS`] counters summed over CPUs.
pub fn parse_stat(text: &str) -> Result<[u64; 8], ParseError> {
    let mut sums = [0u64; 8];
    let mut cols = [0u64; 17];
    for (i, line) in text.lines().enumerate().skip(1) {
        let lineno = i + 1;
        if line.trim().is_empty() {
            continue;
        }
        let mut n = 0;
        for f in line.split_ascii_whitespace() {
            if n == cols.len() {
                n += 1;
                break;
            }
            cols[n] = u64::from_str_radix(f, 16)
                .map_err(|_| ParseError::new(lineno, format!("invalid hex column {f:?}")))?;
            n += 1;
        }
        if !(16..=17).contains(&n) {
            return Err(ParseError::new(
                lineno,
                format!("{n} columns, expected 16 or 17"),
            ));
        }
        if n == 16 {
            cols[16] = 0;
        }
        for (sum, (col, _, _)) in sums.iter_mut().zip(STATS) {
            *sum = sum.wrapping_add(cols[col]);
        }
    }
    Ok(sums)
}

struct Conntrack {
    count: PathBuf,
    max: PathBuf,
    stat: PathBuf,
    buf: String,
}

impl Conntrack {
    fn read_uint(&mut self, which: bool) -> Result<Option<u64>, CollectError> {
        let path = if which { &self.count } else { &self.max };
        if read_attr(path, &mut self.buf)?.is_none() {
            return Ok(None);
        }
        let v = self.buf.trim().parse().map_err(|_| {
            CollectError::parse(
                path,
                ParseError::new(1, format!("invalid value {:?}", self.buf)),
            )
        })?;
        Ok(Some(v))
    }
}

impl Collector for Conntrack {
    fn name(&self) -> &'static str {
        "conntrack"
    }

    fn collect(&mut self, sink: &mut Sink) -> Result<(), CollectError> {
        let Some(count) = self.read_uint(true)? else {
            return Ok(());
        };
        sink.gauge(
            "node_nf_conntrack_entries",
            "Number of currently allocated flow entries for connection tracking.",
            count as f64,
        );
        let Some(max) = self.read_uint(false)? else {
            return Ok(());
        };
        sink.gauge(
            "node_nf_conntrack_entries_limit",
            "Maximum size of connection tracking table.",
            max as f64,
        );
        if !read_into(&self.stat, &mut self.buf)? {
            return Ok(());
        }
        let sums = parse_stat(&self.buf).map_err(|e| CollectError::parse(&self.stat, e))?;
        for ((_, name, help), v) in STATS.iter().zip(sums) {
            sink.family_parts(
                &["node_nf_conntrack_stat_", name],
                &[help],
                crate::collect::MetricType::Gauge,
            )
            .sample(&[], v as f64);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::collect::node::testutil::{self, collect_once, first_values, fixture_host};

    #[test]
    fn recorded_files_from_two_kernels() {
        assert_eq!(
            parse_stat(include_str!(
                "../../../tests/fixtures/hosts/modern/proc/net/stat/nf_conntrack"
            )),
            Ok([0; 8])
        );
        // found, invalid, ignore, insert, insert_failed, drop, early_drop, search_restart
        assert_eq!(
            parse_stat(include_str!(
                "../../../tests/fixtures/hosts/legacy/proc/net/stat/nf_conntrack"
            )),
            Ok([4006, 98, 100000, 26, 6, 12, 0, 14])
        );
    }

    #[test]
    fn old_kernels_without_search_restart_and_garbage() {
        let head = "entries searched\n";
        let line16 = "1 0 2 0 0 0 0 0 0 0 0 0 0 0 0 0\n";
        assert_eq!(
            parse_stat(&format!("{head}{line16}{line16}")),
            Ok([4, 0, 0, 0, 0, 0, 0, 0])
        );
        assert_eq!(
            parse_stat(&format!("{head}1 2 3\n")),
            Err(ParseError::new(2, "3 columns, expected 16 or 17"))
        );
        assert_eq!(
            parse_stat(&format!("{head}1 2 g\n")),
            Err(ParseError::new(2, "invalid hex column \"g\""))
        );
    }

    #[test]
    fn collector_output() {
        let host = fixture_host("legacy");
        let sink = collect_once::<Module>(&Switch::default(), &host);
        let got = first_values(&sink);
        assert_eq!(got.len(), 10);
        assert_eq!(got[0], ("node_nf_conntrack_entries".to_string(), 500.0));
        assert_eq!(
            got[1],
            ("node_nf_conntrack_entries_limit".to_string(), 262144.0)
        );
        assert_eq!(
            got[4],
            ("node_nf_conntrack_stat_ignore".to_string(), 100000.0)
        );
        assert_eq!(
            got[9],
            ("node_nf_conntrack_stat_search_restart".to_string(), 14.0)
        );
    }

    #[test]
    fn missing_files_write_nothing() {
        testutil::assert_empty_host_writes_nothing::<Module>();
    }
}
