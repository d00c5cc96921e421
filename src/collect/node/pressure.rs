//! `pressure` collector: pressure stall information totals from `/proc/pressure/{cpu,io,memory}`
//! (Documentation/accounting/psi.rst: `some|full avg10=.. avg60=.. avg300=.. total=<µs>`).
//!
//! As in node_exporter 1.5: `some` is reported as "waiting" and `full` as "stalled", except
//! that CPU `full` (added in kernel 5.13) is not reported; the resources are read in the order
//! cpu, io, memory and reading stops at the first missing file (kernels before 4.20 or without
//! `CONFIG_PSI` have no `/proc/pressure`: nothing is reported, and that is not an error).

use std::path::PathBuf;

use crate::collect::registry::{CollectorModule, Switch};
use crate::collect::{CollectError, Collector, ParseError, Sink};
use crate::host::{HostRoot, read_into};

/// Registry entry.
pub struct Module;

impl CollectorModule for Module {
    type Config = Switch;
    fn build(_: &Switch, host: &HostRoot) -> Box<dyn Collector> {
        Box::new(Pressure {
            paths: RESOURCES.map(|r| host.proc(r.file)),
            buf: String::with_capacity(128),
        })
    }
}

/// One resource: its file and the families its `some` and `full` totals go to.
struct Resource {
    file: &'static str,
    some: (&'static str, &'static str),
    full: Option<(&'static str, &'static str)>,
}

const RESOURCES: [Resource; 3] = [
    Resource {
        file: "pressure/cpu",
        some: (
            "node_pressure_cpu_waiting_seconds_total",
            "Total time in seconds that processes have waited for CPU time",
        ),
        full: None,
    },
    Resource {
        file: "pressure/io",
        some: (
            "node_pressure_io_waiting_seconds_total",
            "Total time in seconds that processes have waited due to IO congestion",
        ),
        full: Some((
            "node_pressure_io_stalled_seconds_total",
            "Total time in seconds no process could make progress due to IO congestion",
        )),
    },
    Resource {
        file: "pressure/memory",
        some: (
            "node_pressure_memory_waiting_seconds_total",
            "Total time in seconds that processes have waited for memory",
        ),
        full: Some((
            "node_pressure_memory_stalled_seconds_total",
            "Total time in seconds no process could make progress due to memory congestion",
        )),
    },
];

struct Pressure {
    paths: [PathBuf; 3],
    buf: String,
}

/// The `total=` values (microseconds) of the `some` and `full` lines, when present.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Totals {
    /// Time in which at least one task was stalled.
    pub some: Option<u64>,
    /// Time in which all non-idle tasks were stalled.
    pub full: Option<u64>,
}

/// Parses one `/proc/pressure/<resource>` file.
pub fn parse(text: &str) -> Result<Totals, ParseError> {
    let mut out = Totals::default();
    for (idx, line) in text.lines().enumerate() {
        let mut fields = line.split_ascii_whitespace();
        let slot = match fields.next() {
            Some("some") => &mut out.some,
            Some("full") => &mut out.full,
            _ => continue,
        };
        let total = fields
            .find_map(|f| f.strip_prefix("total="))
            .ok_or_else(|| ParseError::new(idx + 1, "missing total="))?;
        *slot = Some(
            total
                .parse()
                .map_err(|_| ParseError::new(idx + 1, format!("invalid total {total:?}")))?,
        );
    }
    Ok(out)
}

/// Microseconds to seconds, rounding exactly as node_exporter (two divisions by 1000), so that
/// values compare equal.
fn seconds(us: u64) -> f64 {
    us as f64 / 1000.0 / 1000.0
}

impl Collector for Pressure {
    fn name(&self) -> &'static str {
        "pressure"
    }

    fn collect(&mut self, sink: &mut Sink) -> Result<(), CollectError> {
        for (res, path) in RESOURCES.iter().zip(&self.paths) {
            if !read_into(path, &mut self.buf)? {
                return Ok(());
            }
            let t = parse(&self.buf).map_err(|e| CollectError::parse(path, e))?;
            if let Some(some) = t.some {
                sink.counter(res.some.0, res.some.1, seconds(some));
            }
            if let (Some((name, help)), Some(full)) = (res.full, t.full) {
                sink.counter(name, help, seconds(full));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::collect::MetricType;
    use crate::collect::node::testutil::collect_once;

    fn collect(proc: &std::path::Path) -> Vec<(String, f64)> {
        let host = HostRoot::new(proc, proc, proc);
        let sink = collect_once::<Module>(&Switch::default(), &host);
        sink.families()
            .map(|f| {
                assert_eq!(f.kind(), MetricType::Counter);
                let v = f.samples().next().map_or(f64::NAN, |s| s.value);
                (f.name().to_string(), v)
            })
            .collect()
    }

    #[test]
    fn recorded_modern_kernel() {
        assert_eq!(
            parse(include_str!(
                "../../../tests/fixtures/hosts/modern/proc/pressure/io"
            )),
            Ok(Totals {
                some: Some(5_176_940),
                full: Some(4_143_419)
            })
        );
        let base = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/hosts");
        let got = collect(&base.join("modern/proc"));
        let want: Vec<(String, f64)> = [
            ("node_pressure_cpu_waiting_seconds_total", 23.816455),
            ("node_pressure_io_waiting_seconds_total", 5.176939999999999),
            ("node_pressure_io_stalled_seconds_total", 4.143419),
            ("node_pressure_memory_waiting_seconds_total", 0.0),
            ("node_pressure_memory_stalled_seconds_total", 0.0),
        ]
        .iter()
        .map(|(n, v)| (n.to_string(), *v))
        .collect();
        assert_eq!(got, want);
    }

    #[test]
    fn legacy_kernel_without_psi_writes_nothing() {
        let base = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/hosts");
        assert!(collect(&base.join("legacy/proc")).is_empty());
    }

    #[test]
    fn old_cpu_file_without_full_and_garbled_lines() {
        // Before 5.13 the cpu file has only a `some` line.
        assert_eq!(
            parse("some avg10=0.00 avg60=0.00 avg300=0.00 total=42\n"),
            Ok(Totals {
                some: Some(42),
                full: None
            })
        );
        assert_eq!(
            parse("some avg10=0.00\n"),
            Err(ParseError::new(1, "missing total="))
        );
        assert_eq!(
            parse("some total=1\nfull total=-1\n"),
            Err(ParseError::new(2, "invalid total \"-1\""))
        );
    }

    #[test]
    fn reading_stops_at_the_first_missing_resource() {
        let dir = tempfile::tempdir().expect("tempdir");
        let p = dir.path().join("pressure");
        std::fs::create_dir_all(&p).expect("mkdir");
        std::fs::write(
            p.join("cpu"),
            "some avg10=0 avg60=0 avg300=0 total=2000000\n",
        )
        .expect("write");
        std::fs::write(p.join("memory"), "some total=1\nfull total=1\n").expect("write");
        assert_eq!(
            collect(dir.path()),
            vec![("node_pressure_cpu_waiting_seconds_total".to_string(), 2.0)]
        );
    }
}
