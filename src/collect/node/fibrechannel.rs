//! `fibrechannel` collector: `node_fibrechannel_info` and `node_fibrechannel_*_total{fc_host}`
//! from `/sys/class/fc_host/<host>/` (drivers/scsi/scsi_transport_fc.c: one attribute per
//! file; the `statistics/` counters are printed as `0x<hex>`, and all ones means the HBA does
//! not implement that counter).
//!
//! The host list and the attributes that only change with the HBA (port name, symbolic name,
//! supported classes and speeds) are read on a 60 s rescan; link-dependent attributes (speed,
//! port state/type/id, fabric name, dev_loss_tmo) and the counters are read on every scrape.
//! As in node_exporter 1.5: a host missing one of its attributes or its `statistics`
//! directory makes the collector write nothing; the `0x` prefix is removed from port id, port
//! name and fabric name; unimplemented counters are left out; a missing counter file is 0.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use super::sysfs::{read_attribute, read_listed};
use super::tapestats::parse_counter;
use crate::collect::registry::{CollectorModule, Switch};
use crate::collect::{CollectError, Collector, MetricType, Sink};
use crate::host::{HostRoot, list_dir, read_into};

/// How long the host list and static attributes are reused.
const RESCAN: Duration = Duration::from_secs(60);

/// Registry entry.
pub struct Module;

impl CollectorModule for Module {
    type Config = Switch;
    fn build(_: &Switch, host: &HostRoot) -> Box<dyn Collector> {
        Box::new(Fibrechannel {
            class_dir: host.sys("class/fc_host"),
            hosts: Vec::new(),
            complete: true,
            scanned: None,
            buf: String::with_capacity(64),
        })
    }
}

/// (family, statistics file, help), in node_exporter's order.
const COUNTERS: [(&str, &str, &str); 14] = [
    (
        "node_fibrechannel_dumped_frames_total",
        "dumped_frames",
        "Number of dumped frames",
    ),
    (
        "node_fibrechannel_error_frames_total",
        "error_frames",
        "Number of errors in frames",
    ),
    (
        "node_fibrechannel_invalid_crc_total",
        "invalid_crc_count",
        "Invalid Cyclic Redundancy Check count",
    ),
    (
        "node_fibrechannel_rx_frames_total",
        "rx_frames",
        "Number of frames received",
    ),
    (
        "node_fibrechannel_rx_words_total",
        "rx_words",
        "Number of words received by host port",
    ),
    (
        "node_fibrechannel_tx_frames_total",
        "tx_frames",
        "Number of frames transmitted by host port",
    ),
    (
        "node_fibrechannel_tx_words_total",
        "tx_words",
        "Number of words transmitted by host port",
    ),
    (
        "node_fibrechannel_seconds_since_last_reset_total",
        "seconds_since_last_reset",
        "Number of seconds since last host port reset",
    ),
    (
        "node_fibrechannel_invalid_tx_words_total",
        "invalid_tx_word_count",
        "Number of invalid words transmitted by host port",
    ),
    (
        "node_fibrechannel_link_failure_total",
        "link_failure_count",
        "Number of times the host port link has failed",
    ),
    (
        "node_fibrechannel_loss_of_sync_total",
        "loss_of_sync_count",
        "Number of failures on either bit or transmission word boundaries",
    ),
    (
        "node_fibrechannel_loss_of_signal_total",
        "loss_of_signal_count",
        "Number of times signal has been lost",
    ),
    (
        "node_fibrechannel_nos_total",
        "nos_count",
        "Number Not_Operational Primitive Sequence received by host port",
    ),
    (
        "node_fibrechannel_fcp_packet_aborts_total",
        "fcp_packet_aborts",
        "Number of aborted packets",
    ),
];

/// A counter the HBA firmware does not implement (the kernel prints `0xffffffffffffffff`).
const UNIMPLEMENTED: u64 = u64::MAX;

/// Attributes read on every scrape, in [`Host::dynamic`] order.
const DYNAMIC: [&str; 6] = [
    "speed",
    "port_state",
    "port_type",
    "port_id",
    "fabric_name",
    "dev_loss_tmo",
];
const SPEED: usize = 0;
const PORT_STATE: usize = 1;
const PORT_TYPE: usize = 2;
const PORT_ID: usize = 3;
const FABRIC_NAME: usize = 4;
const DEV_LOSS_TMO: usize = 5;

/// Attributes read on a rescan, in [`Host::fixed`] order. `node_name` is not exported but,
/// as for node_exporter, must exist.
const STATIC: [&str; 5] = [
    "port_name",
    "symbolic_name",
    "supported_classes",
    "supported_speeds",
    "node_name",
];
const PORT_NAME: usize = 0;
const SYMBOLIC_NAME: usize = 1;
const SUPPORTED_CLASSES: usize = 2;
const SUPPORTED_SPEEDS: usize = 3;

struct Host {
    name: String,
    stats_dir: PathBuf,
    dynamic_paths: [PathBuf; 6],
    counter_paths: [PathBuf; 14],
    fixed: [String; 5],
    dynamic: [String; 6],
    counters: [u64; 14],
}

struct Fibrechannel {
    class_dir: PathBuf,
    hosts: Vec<Host>,
    /// False when a host lacked a static attribute at the last rescan.
    complete: bool,
    scanned: Option<Instant>,
    buf: String,
}

/// A WWN or port id without its `0x` prefix (node_exporter drops the first two characters of
/// any value longer than two).
pub fn without_prefix(value: &str) -> &str {
    if value.len() > 2 {
        value.get(2..).unwrap_or(value)
    } else {
        value
    }
}

impl Fibrechannel {
    fn rescan(&mut self) -> Result<(), CollectError> {
        self.hosts.clear();
        self.complete = true;
        self.scanned = Some(Instant::now());
        for name in list_dir(&self.class_dir)? {
            let dir = self.class_dir.join(&name);
            let stats_dir = dir.join("statistics");
            let mut host = Host {
                dynamic_paths: DYNAMIC.map(|f| dir.join(f)),
                counter_paths: COUNTERS.map(|(_, f, _)| stats_dir.join(f)),
                stats_dir,
                name,
                fixed: Default::default(),
                dynamic: Default::default(),
                counters: [0; 14],
            };
            for (file, out) in STATIC.iter().zip(host.fixed.iter_mut()) {
                if !read_attribute(&dir.join(file), &mut self.buf, out)? {
                    self.complete = false;
                }
            }
            self.hosts.push(host);
        }
        Ok(())
    }

    /// Reads every host's link attributes and counters; false when something required is
    /// missing.
    fn read_hosts(&mut self) -> Result<bool, CollectError> {
        for host in &mut self.hosts {
            for (path, out) in host.dynamic_paths.iter().zip(host.dynamic.iter_mut()) {
                if !read_attribute(path, &mut self.buf, out)? {
                    return Ok(false);
                }
            }
            let mut any = false;
            for (path, slot) in host.counter_paths.iter().zip(host.counters.iter_mut()) {
                *slot = if read_into(path, &mut self.buf)? {
                    any = true;
                    parse_counter(&self.buf).map_err(|e| CollectError::parse(path, e))?
                } else {
                    0
                };
            }
            if !any && !host.stats_dir.is_dir() {
                return Ok(false);
            }
        }
        Ok(true)
    }
}

impl Collector for Fibrechannel {
    fn name(&self) -> &'static str {
        "fibrechannel"
    }

    fn collect(&mut self, sink: &mut Sink) -> Result<(), CollectError> {
        let due = self.scanned.is_none_or(|t| t.elapsed() >= RESCAN);
        // A device that went away (or was replaced) since the last rescan is looked for again.
        if !read_listed(self, due, Self::rescan, Self::read_hosts)? {
            return Ok(());
        }
        if !self.complete || self.hosts.is_empty() {
            return Ok(());
        }
        let mut f = sink.family(
            "node_fibrechannel_info",
            "Non-numeric data from /sys/class/fc_host/<host>, value is always 1.",
            MetricType::Gauge,
        );
        for h in &self.hosts {
            f.sample(
                &[
                    ("dev_loss_tmo", &h.dynamic[DEV_LOSS_TMO]),
                    ("fabric_name", without_prefix(&h.dynamic[FABRIC_NAME])),
                    ("fc_host", &h.name),
                    ("port_id", without_prefix(&h.dynamic[PORT_ID])),
                    ("port_name", without_prefix(&h.fixed[PORT_NAME])),
                    ("port_state", &h.dynamic[PORT_STATE]),
                    ("port_type", &h.dynamic[PORT_TYPE]),
                    ("speed", &h.dynamic[SPEED]),
                    ("supported_classes", &h.fixed[SUPPORTED_CLASSES]),
                    ("supported_speeds", &h.fixed[SUPPORTED_SPEEDS]),
                    ("symbolic_name", &h.fixed[SYMBOLIC_NAME]),
                ],
                1.0,
            );
        }
        for (i, (name, _, help)) in COUNTERS.iter().enumerate() {
            if self.hosts.iter().all(|h| h.counters[i] == UNIMPLEMENTED) {
                continue;
            }
            let mut f = sink.family(name, help, MetricType::Counter);
            for h in self.hosts.iter().filter(|h| h.counters[i] != UNIMPLEMENTED) {
                f.sample(&[("fc_host", &h.name)], h.counters[i] as f64);
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::collect::node::sysfs::attribute;
    use crate::collect::node::testutil::{
        self, collect_once, dir_host, fixture_host, samples, scrape,
    };

    #[test]
    fn prefixes_and_trimming() {
        assert_eq!(without_prefix("0x21000024ff8a1b2c"), "21000024ff8a1b2c");
        assert_eq!(without_prefix("0x0"), "0");
        assert_eq!(without_prefix("0x"), "0x");
        assert_eq!(attribute("16 Gbit\n"), "16 Gbit");
    }

    #[test]
    fn recorded_rhel8_qlogic_hbas() {
        let sink = collect_once::<Module>(&Switch::default(), &fixture_host("legacy"));
        assert_eq!(
            samples(&sink, "node_fibrechannel_info"),
            [
                (
                    r#"dev_loss_tmo="30",fabric_name="100000051e9a7b01",fc_host="host1",port_id="010200",port_name="21000024ff8a1b2c",port_state="Online",port_type="NPort (fabric via point-to-point)",speed="16 Gbit",supported_classes="Class 3",supported_speeds="4 Gbit, 8 Gbit, 16 Gbit",symbolic_name="QLE2692 FW:v8.08.231 DVR:v10.01.00.25.08.0-k""#
                        .to_string(),
                    1.0
                ),
                (
                    r#"dev_loss_tmo="30",fabric_name="0",fc_host="host2",port_id="000000",port_name="21000024ff8a1b2d",port_state="Linkdown",port_type="Unknown",speed="unknown",supported_classes="Class 3",supported_speeds="4 Gbit, 8 Gbit, 16 Gbit",symbolic_name="QLE2692 FW:v8.08.231 DVR:v10.01.00.25.08.0-k""#
                        .to_string(),
                    1.0
                ),
            ]
        );
        assert_eq!(
            samples(&sink, "node_fibrechannel_rx_words_total"),
            [
                ("fc_host=\"host1\"".to_string(), 258996072304.0),
                ("fc_host=\"host2\"".to_string(), 0.0),
            ]
        );
        assert_eq!(
            samples(&sink, "node_fibrechannel_link_failure_total"),
            [
                ("fc_host=\"host1\"".to_string(), 1.0),
                ("fc_host=\"host2\"".to_string(), 7.0),
            ]
        );
        // All ones on both HBAs: not implemented, so the families are absent.
        assert!(samples(&sink, "node_fibrechannel_dumped_frames_total").is_empty());
        assert!(samples(&sink, "node_fibrechannel_nos_total").is_empty());
        assert_eq!(sink.families().len(), 13);
    }

    #[test]
    fn missing_attribute_hides_everything() {
        let dir = tempfile::tempdir().expect("tempdir");
        let host_dir = dir.path().join("class/fc_host/host0");
        std::fs::create_dir_all(host_dir.join("statistics")).expect("mkdir");
        for f in DYNAMIC.iter().chain(STATIC.iter()) {
            std::fs::write(host_dir.join(f), "0x1\n").expect("write");
        }
        std::fs::write(host_dir.join("statistics/tx_frames"), "017\n").expect("write");
        let host = dir_host(dir.path());
        let mut c = Module::build(&Switch::default(), &host);
        let sink = scrape(c.as_mut());
        // Base-prefixed like node_exporter: a leading 0 is octal.
        assert_eq!(
            samples(&sink, "node_fibrechannel_tx_frames_total"),
            [("fc_host=\"host0\"".to_string(), 15.0)]
        );

        std::fs::remove_file(host_dir.join("port_state")).expect("rm");
        let mut sink = Sink::new();
        c.collect(&mut sink).expect("missing is not an error");
        assert!(sink.is_empty());
    }

    #[test]
    fn missing_class_writes_nothing() {
        testutil::assert_empty_host_writes_nothing::<Module>();
    }
}
