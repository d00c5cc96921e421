//! `tapestats` collector: SCSI tape drive statistics (`node_tape_*{device}`) from
//! `/sys/class/scsi_tape/st<N>/stats/*` (Documentation/scsi/st.rst, "Sysfs and statistics for
//! tape devices": one decimal counter per file; times in nanoseconds).
//!
//! Only the `st<N>` entries are read (the `nst<N>` and mode variants `st<N>[alm]` share their
//! counters). The tape list is rescanned every 60 s; the counters are read on every scrape.
//! As in node_exporter 1.5, an absent counter file exports 0, and a tape without a `stats`
//! directory makes the collector write nothing.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use serde::Deserialize;

use super::sysfs::read_listed;
use crate::collect::registry::CollectorModule;
use crate::collect::{CollectError, Collector, MetricType, ParseError, Sink};
use crate::config::Pattern;
use crate::host::{HostRoot, list_dir, read_into};

/// How long the list of tapes is reused.
const RESCAN: Duration = Duration::from_secs(60);

/// Registry entry.
pub struct Module;

/// `collectors.tapestats` (node_exporter's `--collector.tapestats.ignored-devices`).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Whether the collector runs.
    pub enabled: bool,
    /// Tapes whose name (`st0`) matches are not reported (node_exporter's default `^$`
    /// matches none).
    pub ignored_devices: Option<Pattern>,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            enabled: true,
            ignored_devices: None,
        }
    }
}

crate::collector_config!(Config, unchecked);

impl CollectorModule for Module {
    type Config = Config;
    fn build(cfg: &Config, host: &HostRoot) -> Box<dyn Collector> {
        Box::new(Tapestats {
            class_dir: host.sys("class/scsi_tape"),
            ignored: cfg.ignored_devices.clone(),
            tapes: Vec::new(),
            scanned: None,
            buf: String::with_capacity(32),
        })
    }
}

/// Counter files in the order of [`Tape::counters`].
const FILES: [&str; 10] = [
    "in_flight",
    "io_ns",
    "other_cnt",
    "read_byte_cnt",
    "read_cnt",
    "read_ns",
    "resid_cnt",
    "write_byte_cnt",
    "write_cnt",
    "write_ns",
];
const IN_FLIGHT: usize = 0;
const IO_NS: usize = 1;
const OTHER_CNT: usize = 2;
const READ_BYTE_CNT: usize = 3;
const READ_CNT: usize = 4;
const READ_NS: usize = 5;
const RESID_CNT: usize = 6;
const WRITE_BYTE_CNT: usize = 7;
const WRITE_CNT: usize = 8;
const WRITE_NS: usize = 9;

/// (family, help, type, counter index, nanoseconds → seconds).
const FAMILIES: [(&str, &str, MetricType, usize, bool); 10] = [
    (
        "node_tape_io_now",
        "The number of I/Os currently outstanding to this device.",
        MetricType::Gauge,
        IN_FLIGHT,
        false,
    ),
    (
        "node_tape_io_time_seconds_total",
        "The amount of time spent waiting for all I/O to complete (including read and write). This includes tape movement commands such as seeking between file or set marks and implicit tape movement such as when rewind on close tape devices are used.",
        MetricType::Counter,
        IO_NS,
        true,
    ),
    (
        "node_tape_io_others_total",
        "The number of I/Os issued to the tape drive other than read or write commands. The time taken to complete these commands uses the following calculation io_time_seconds_total-read_time_seconds_total-write_time_seconds_total",
        MetricType::Counter,
        OTHER_CNT,
        false,
    ),
    (
        "node_tape_read_bytes_total",
        "The number of bytes read from the tape drive.",
        MetricType::Counter,
        READ_BYTE_CNT,
        false,
    ),
    (
        "node_tape_reads_completed_total",
        "The number of read requests issued to the tape drive.",
        MetricType::Counter,
        READ_CNT,
        false,
    ),
    (
        "node_tape_read_time_seconds_total",
        "The amount of time spent waiting for read requests to complete.",
        MetricType::Counter,
        READ_NS,
        true,
    ),
    (
        "node_tape_residual_total",
        "The number of times during a read or write we found the residual amount to be non-zero. This should mean that a program is issuing a read larger thean the block size on tape. For write not all data made it to tape.",
        MetricType::Counter,
        RESID_CNT,
        false,
    ),
    (
        "node_tape_written_bytes_total",
        "The number of bytes written to the tape drive.",
        MetricType::Counter,
        WRITE_BYTE_CNT,
        false,
    ),
    (
        "node_tape_writes_completed_total",
        "The number of write requests issued to the tape drive.",
        MetricType::Counter,
        WRITE_CNT,
        false,
    ),
    (
        "node_tape_write_time_seconds_total",
        "The amount of time spent waiting for write requests to complete.",
        MetricType::Counter,
        WRITE_NS,
        true,
    ),
];

struct Tape {
    name: String,
    stats_dir: PathBuf,
    /// Paths of the counter files, in [`FILES`] order.
    paths: [PathBuf; 10],
    counters: [u64; 10],
}

struct Tapestats {
    class_dir: PathBuf,
    ignored: Option<Pattern>,
    tapes: Vec<Tape>,
    scanned: Option<Instant>,
    buf: String,
}

/// True for the `st<N>` names whose counters are exported.
pub fn is_tape(name: &str) -> bool {
    name.strip_prefix("st")
        .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
}

/// Parses one counter file: an unsigned integer with optional surrounding whitespace, decimal
/// or with a `0x`/`0o`/`0b`/leading-`0` base prefix (node_exporter parses with base 0).
pub fn parse_counter(text: &str) -> Result<u64, ParseError> {
    let s = text.trim();
    let bad = || ParseError::new(1, format!("invalid counter {s:?}"));
    let (digits, radix) = match s.as_bytes() {
        [b'0', b'x' | b'X', ..] => (&s[2..], 16),
        [b'0', b'o' | b'O', ..] => (&s[2..], 8),
        [b'0', b'b' | b'B', ..] => (&s[2..], 2),
        [b'0', _, ..] => (&s[1..], 8),
        _ => (s, 10),
    };
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(bad());
    }
    u64::from_str_radix(digits, radix).map_err(|_| bad())
}

impl Tapestats {
    fn rescan(&mut self) -> Result<(), CollectError> {
        self.tapes.clear();
        self.scanned = Some(Instant::now());
        for name in list_dir(&self.class_dir)? {
            if !is_tape(&name) {
                continue;
            }
            let stats_dir = self.class_dir.join(&name).join("stats");
            self.tapes.push(Tape {
                paths: FILES.map(|f| stats_dir.join(f)),
                stats_dir,
                name,
                counters: [0; 10],
            });
        }
        Ok(())
    }

    /// Reads every tape's counters; false when a tape has no `stats` directory.
    fn read_counters(&mut self) -> Result<bool, CollectError> {
        for tape in &mut self.tapes {
            for (slot, path) in tape.counters.iter_mut().zip(&tape.paths) {
                *slot = if read_into(path, &mut self.buf)? {
                    parse_counter(&self.buf).map_err(|e| CollectError::parse(path, e))?
                } else {
                    0
                };
            }
            if tape.counters == [0; 10] && !tape.stats_dir.is_dir() {
                return Ok(false);
            }
        }
        Ok(true)
    }
}

impl Collector for Tapestats {
    fn name(&self) -> &'static str {
        "tapestats"
    }

    fn collect(&mut self, sink: &mut Sink) -> Result<(), CollectError> {
        let due = self.scanned.is_none_or(|t| t.elapsed() >= RESCAN);
        // A device that went away (or was replaced) since the last rescan is looked for again.
        if !read_listed(self, due, Self::rescan, Self::read_counters)? {
            return Ok(());
        }
        let ignored = self.ignored.as_ref();
        let shown = |t: &&Tape| !ignored.is_some_and(|p| p.is_match(&t.name));
        if !self.tapes.iter().any(|t| shown(&t)) {
            return Ok(());
        }
        for (name, help, kind, idx, nanos) in FAMILIES {
            let mut f = sink.family(name, help, kind);
            for t in self.tapes.iter().filter(shown) {
                let raw = t.counters[idx] as f64;
                // The same multiplication as node_exporter, so the seconds are bit-identical.
                let v = if nanos { raw * 0.000000001 } else { raw };
                f.sample(&[("device", &t.name)], v);
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {

    use super::*;
    use crate::collect::node::testutil::{self, collect_once, fixture_host, samples};

    #[test]
    fn tape_names_and_counters() {
        assert!(is_tape("st0"));
        assert!(is_tape("st12"));
        assert!(!is_tape("nst0"));
        assert!(!is_tape("st0a"));
        assert!(!is_tape("st"));
        assert_eq!(parse_counter("9247011087720\n"), Ok(9247011087720));
        assert_eq!(parse_counter("0\n"), Ok(0));
        assert_eq!(parse_counter("0x10"), Ok(16));
        assert_eq!(parse_counter("010"), Ok(8));
        assert_eq!(
            parse_counter("-1\n"),
            Err(ParseError::new(1, "invalid counter \"-1\""))
        );
        assert_eq!(
            parse_counter(""),
            Err(ParseError::new(1, "invalid counter \"\""))
        );
    }

    #[test]
    fn recorded_rhel8_tapes() {
        let sink = collect_once::<Module>(&Config::default(), &fixture_host("legacy"));
        assert_eq!(sink.families().len(), 10);
        assert_eq!(
            samples(&sink, "node_tape_io_time_seconds_total"),
            [
                ("device=\"st0\"".to_string(), 9247.01108772),
                ("device=\"st1\"".to_string(), 1.51234),
            ]
        );
        assert_eq!(
            samples(&sink, "node_tape_written_bytes_total"),
            [
                ("device=\"st0\"".to_string(), 1496246784000.0),
                ("device=\"st1\"".to_string(), 0.0),
            ]
        );
        assert_eq!(
            samples(&sink, "node_tape_io_now"),
            [
                ("device=\"st0\"".to_string(), 1.0),
                ("device=\"st1\"".to_string(), 0.0),
            ]
        );
    }

    #[test]
    fn ignored_devices_are_skipped() {
        let cfg = Config {
            ignored_devices: Some(Pattern::new("^st0$").expect("regex")),
            ..Config::default()
        };
        let sink = collect_once::<Module>(&cfg, &fixture_host("legacy"));
        assert_eq!(
            samples(&sink, "node_tape_io_now"),
            [("device=\"st1\"".to_string(), 0.0)]
        );
        assert_eq!(
            samples(&sink, "node_tape_io_others_total"),
            [("device=\"st1\"".to_string(), 6.0)]
        );
    }

    #[test]
    fn missing_class_writes_nothing() {
        testutil::assert_empty_host_writes_nothing::<Module>();
    }
}
