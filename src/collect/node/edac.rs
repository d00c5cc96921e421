//! `edac` collector: memory error counters of the EDAC memory controllers under
//! `/sys/devices/system/edac/mc` (Documentation/admin-guide/ras.rst, "EDAC sysfs"):
//! `node_edac_{correctable,uncorrectable}_errors_total{controller}` from `mc<N>/{ce,ue}_count`,
//! and `node_edac_csrow_{correctable,uncorrectable}_errors_total{controller,csrow}` from
//! `mc<N>/csrow<M>/{ce,ue}_count` plus `csrow="unknown"` from `mc<N>/{ce,ue}_noinfo_count`
//! (errors the driver could not attribute to a row).
//!
//! Controllers and csrows are fixed at driver load, so their list is cached for 60 s; the
//! counters are read on every scrape. As in node_exporter, a controller or csrow missing one of
//! its counter files is an error.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use super::sysfs::rescan_if_due;
use crate::collect::registry::{CollectorModule, Switch};
use crate::collect::{CollectError, Collector, MetricType, ParseError, Sink};
use crate::host::{HostError, HostRoot, list_dir, read_into};

/// How long the controller/csrow list is reused.
const REFRESH: Duration = Duration::from_secs(60);

/// Registry entry.
pub struct Module;

impl CollectorModule for Module {
    type Config = Switch;
    fn build(_: &Switch, host: &HostRoot) -> Box<dyn Collector> {
        Box::new(Edac {
            dir: host.sys("devices/system/edac/mc"),
            controllers: Vec::new(),
            scanned: None,
            buf: String::with_capacity(32),
            counts: Vec::new(),
        })
    }
}

/// A memory controller and its csrows, as cached between refreshes.
struct Controller {
    number: String,
    dir: PathBuf,
    /// `(csrow number, directory)`.
    csrows: Vec<(String, PathBuf)>,
}

/// Counters of one controller read in one scrape.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
struct Counts {
    ce: f64,
    ue: f64,
    ce_noinfo: f64,
    ue_noinfo: f64,
}

struct Edac {
    dir: PathBuf,
    controllers: Vec<Controller>,
    scanned: Option<Instant>,
    buf: String,
    /// Per controller, then `(ce, ue)` per csrow, in the cached order (reused).
    counts: Vec<(Counts, Vec<(f64, f64)>)>,
}

/// The number in an EDAC directory name (`mc3` → `3`, `csrow12` → `12`) when `name` is
/// `prefix` followed by a digit; the digits up to the first non-digit.
pub fn number_after<'a>(name: &'a str, prefix: &str) -> Option<&'a str> {
    let rest = name.strip_prefix(prefix)?;
    let end = rest
        .bytes()
        .position(|b| !b.is_ascii_digit())
        .unwrap_or(rest.len());
    (end > 0).then(|| &rest[..end])
}

/// Parses an unsigned decimal counter file.
pub fn parse_count(text: &str) -> Result<u64, ParseError> {
    let t = text.trim();
    t.parse()
        .map_err(|_| ParseError::new(1, format!("invalid counter {t:?}")))
}

/// Reads `dir/file` as a counter; a missing file is an error here (the kernel always has it).
fn read_count(dir: &Path, file: &str, buf: &mut String) -> Result<f64, CollectError> {
    let path = dir.join(file);
    if !read_into(&path, buf)? {
        return Err(HostError {
            path,
            source: std::io::Error::from(std::io::ErrorKind::NotFound),
        }
        .into());
    }
    let v = parse_count(buf).map_err(|e| CollectError::parse(&path, e))?;
    Ok(v as f64)
}

impl Edac {
    fn rescan(&mut self) -> Result<(), CollectError> {
        self.controllers.clear();
        for name in list_dir(&self.dir)? {
            let Some(number) = number_after(&name, "mc") else {
                continue;
            };
            let dir = self.dir.join(&name);
            let mut csrows = Vec::new();
            for row in list_dir(&dir)? {
                if let Some(n) = number_after(&row, "csrow") {
                    csrows.push((n.to_string(), dir.join(&row)));
                }
            }
            self.controllers.push(Controller {
                number: number.to_string(),
                dir,
                csrows,
            });
        }
        Ok(())
    }

    fn read_counts(&mut self) -> Result<(), CollectError> {
        self.counts
            .resize_with(self.controllers.len(), Default::default);
        for (c, (counts, rows)) in self.controllers.iter().zip(self.counts.iter_mut()) {
            let b = &mut self.buf;
            *counts = Counts {
                ce: read_count(&c.dir, "ce_count", b)?,
                ce_noinfo: read_count(&c.dir, "ce_noinfo_count", b)?,
                ue: read_count(&c.dir, "ue_count", b)?,
                ue_noinfo: read_count(&c.dir, "ue_noinfo_count", b)?,
            };
            rows.clear();
            for (_, dir) in &c.csrows {
                rows.push((
                    read_count(dir, "ce_count", b)?,
                    read_count(dir, "ue_count", b)?,
                ));
            }
        }
        Ok(())
    }
}

impl Collector for Edac {
    fn name(&self) -> &'static str {
        "edac"
    }

    fn collect(&mut self, sink: &mut Sink) -> Result<(), CollectError> {
        rescan_if_due(self, |s| &mut s.scanned, REFRESH, Self::rescan)?;
        if self.controllers.is_empty() {
            return Ok(());
        }
        self.read_counts()?;
        let all = || self.controllers.iter().zip(&self.counts);
        let mut f = sink.family(
            "node_edac_correctable_errors_total",
            "Total correctable memory errors.",
            MetricType::Counter,
        );
        for (c, (n, _)) in all() {
            f.sample(&[("controller", &c.number)], n.ce);
        }
        let mut f = sink.family(
            "node_edac_uncorrectable_errors_total",
            "Total uncorrectable memory errors.",
            MetricType::Counter,
        );
        for (c, (n, _)) in all() {
            f.sample(&[("controller", &c.number)], n.ue);
        }
        let mut f = sink.family(
            "node_edac_csrow_correctable_errors_total",
            "Total correctable memory errors for this csrow.",
            MetricType::Counter,
        );
        for (c, (n, rows)) in all() {
            f.sample(
                &[("controller", &c.number), ("csrow", "unknown")],
                n.ce_noinfo,
            );
            for ((row, _), (ce, _)) in c.csrows.iter().zip(rows) {
                f.sample(&[("controller", &c.number), ("csrow", row)], *ce);
            }
        }
        let mut f = sink.family(
            "node_edac_csrow_uncorrectable_errors_total",
            "Total uncorrectable memory errors for this csrow.",
            MetricType::Counter,
        );
        for (c, (n, rows)) in all() {
            f.sample(
                &[("controller", &c.number), ("csrow", "unknown")],
                n.ue_noinfo,
            );
            for ((row, _), (_, ue)) in c.csrows.iter().zip(rows) {
                f.sample(&[("controller", &c.number), ("csrow", row)], *ue);
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::collect::node::testutil::{self, collect_once, dir_host, fixture_host, render};

    #[test]
    fn directory_numbers() {
        assert_eq!(number_after("mc12", "mc"), Some("12"));
        assert_eq!(number_after("csrow3", "csrow"), Some("3"));
        assert_eq!(number_after("mc", "mc"), None);
        assert_eq!(number_after("power", "mc"), None);
        assert_eq!(parse_count("17\n"), Ok(17));
        assert_eq!(
            parse_count("-1\n"),
            Err(ParseError::new(1, "invalid counter \"-1\""))
        );
    }

    #[test]
    fn recorded_skylake_imcs() {
        let host = fixture_host("legacy");
        let sink = collect_once::<Module>(&Switch::default(), &host);
        let lines = render(&sink);
        assert_eq!(lines.len(), 4 + 4 + 12 + 12);
        assert_eq!(
            lines[2],
            "node_edac_correctable_errors_total{controller=\"2\"} 17"
        );
        assert_eq!(
            lines[6],
            "node_edac_uncorrectable_errors_total{controller=\"2\"} 1"
        );
        assert_eq!(
            lines[14..17],
            [
                "node_edac_csrow_correctable_errors_total{controller=\"2\",csrow=\"unknown\"} 2",
                "node_edac_csrow_correctable_errors_total{controller=\"2\",csrow=\"0\"} 0",
                "node_edac_csrow_correctable_errors_total{controller=\"2\",csrow=\"1\"} 15",
            ]
        );
        assert_eq!(
            lines[28],
            "node_edac_csrow_uncorrectable_errors_total{controller=\"2\",csrow=\"1\"} 1"
        );
    }

    #[test]
    fn missing_counter_is_an_error() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mc = dir.path().join("devices/system/edac/mc/mc0");
        std::fs::create_dir_all(&mc).expect("mkdir");
        std::fs::write(mc.join("ce_count"), "1\n").expect("write");
        let host = dir_host(dir.path());
        let mut c = Module::build(&Switch::default(), &host);
        let mut sink = Sink::new();
        assert!(c.collect(&mut sink).is_err());
    }

    #[test]
    fn missing_directory_writes_nothing() {
        testutil::assert_empty_host_writes_nothing::<Module>();
    }
}
