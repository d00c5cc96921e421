//! `softnet` collector: `node_softnet_{processed,dropped,times_squeezed}_total{cpu}` from
//! `/proc/net/softnet_stat` (one line of hexadecimal columns per online CPU, written by
//! `softnet_seq_show` in net/core/net-procfs.c; kernels before 5.10 print 11 columns, later
//! ones add the CPU id and backlog length).
//!
//! As node_exporter 1.5, the `cpu` label is the line's index (not the CPU id column, which
//! older kernels lack), and a line with fewer than 9 columns is an error.

use std::path::PathBuf;

use crate::collect::registry::{CollectorModule, Switch};
use crate::collect::{CollectError, Collector, MetricType, ParseError, Sink};
use crate::host::{HostRoot, read_into};

/// Registry entry.
pub struct Module;

impl CollectorModule for Module {
    type Config = Switch;
    fn build(_: &Switch, host: &HostRoot) -> Box<dyn Collector> {
        Box::new(Softnet {
            path: host.proc("net/softnet_stat"),
            buf: String::with_capacity(1024),
            rows: Vec::new(),
            cpu: itoa::Buffer::new(),
        })
    }
}

/// Columns node_exporter 1.5 requires per line.
const MIN_COLUMNS: usize = 9;

/// Per-CPU `[processed, dropped, time_squeeze]` counters.
pub type Row = [u32; 3];

/// Parses `/proc/net/softnet_stat` into `out` (cleared first), one row per line.
pub fn parse_into(text: &str, out: &mut Vec<Row>) -> Result<(), ParseError> {
    out.clear();
    for (i, line) in text.lines().enumerate() {
        let lineno = i + 1;
        if line.trim().is_empty() {
            continue;
        }
        let n = line.split_ascii_whitespace().count();
        if n < MIN_COLUMNS {
            return Err(ParseError::new(
                lineno,
                format!("{n} columns, expected at least {MIN_COLUMNS}"),
            ));
        }
        let mut row = [0u32; 3];
        for (slot, f) in row.iter_mut().zip(line.split_ascii_whitespace()) {
            *slot = u32::from_str_radix(f, 16)
                .map_err(|_| ParseError::new(lineno, format!("invalid hex column {f:?}")))?;
        }
        out.push(row);
    }
    Ok(())
}

/// Parses `/proc/net/softnet_stat`.
pub fn parse(text: &str) -> Result<Vec<Row>, ParseError> {
    let mut v = Vec::new();
    parse_into(text, &mut v)?;
    Ok(v)
}

struct Softnet {
    path: PathBuf,
    buf: String,
    rows: Vec<Row>,
    cpu: itoa::Buffer,
}

const FAMILIES: [(&str, &str); 3] = [
    (
        "node_softnet_processed_total",
        "Number of processed packets",
    ),
    ("node_softnet_dropped_total", "Number of dropped packets"),
    (
        "node_softnet_times_squeezed_total",
        "Number of times processing packets ran out of quota",
    ),
];

impl Collector for Softnet {
    fn name(&self) -> &'static str {
        "softnet"
    }

    fn collect(&mut self, sink: &mut Sink) -> Result<(), CollectError> {
        if !read_into(&self.path, &mut self.buf)? {
            return Ok(());
        }
        parse_into(&self.buf, &mut self.rows).map_err(|e| CollectError::parse(&self.path, e))?;
        if self.rows.is_empty() {
            return Ok(());
        }
        for (k, (name, help)) in FAMILIES.iter().enumerate() {
            let mut fam = sink.family(name, help, MetricType::Counter);
            for (cpu, row) in self.rows.iter().enumerate() {
                fam.sample(&[("cpu", self.cpu.format(cpu))], f64::from(row[k]));
            }
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
            parse(include_str!(
                "../../../tests/fixtures/hosts/modern/proc/net/softnet_stat"
            )),
            Ok(vec![[0x16, 0, 0], [0xbdf, 0, 0]])
        );
        assert_eq!(
            parse(include_str!(
                "../../../tests/fixtures/hosts/legacy/proc/net/softnet_stat"
            )),
            Ok(vec![
                [0x1a2b3c4d, 0, 0x1f],
                [0x0badcafe, 2, 3],
                [0x00123456, 0, 0],
                [0x7fffffff, 0x10, 0x12c]
            ])
        );
    }

    #[test]
    fn collector_labels_cpus_by_line() {
        let host = fixture_host("legacy");
        let sink = collect_once::<Module>(&Switch::default(), &host);
        let fams: Vec<_> = sink.families().collect();
        assert_eq!(fams.len(), 3);
        assert_eq!(fams[2].name(), "node_softnet_times_squeezed_total");
        let s: Vec<_> = fams[2].samples().map(|s| (s.labels, s.value)).collect();
        assert_eq!(
            s,
            [
                ("cpu=\"0\"", 31.0),
                ("cpu=\"1\"", 3.0),
                ("cpu=\"2\"", 0.0),
                ("cpu=\"3\"", 300.0)
            ]
        );
    }

    #[test]
    fn short_or_garbled_lines_are_errors() {
        assert_eq!(
            parse("1 2 3\n"),
            Err(ParseError::new(1, "3 columns, expected at least 9"))
        );
        assert_eq!(
            parse("0 0 0 0 0 0 0 0 0\nzz 0 0 0 0 0 0 0 0\n"),
            Err(ParseError::new(2, "invalid hex column \"zz\""))
        );
    }

    #[test]
    fn missing_file_writes_nothing() {
        testutil::assert_empty_host_writes_nothing::<Module>();
    }
}
