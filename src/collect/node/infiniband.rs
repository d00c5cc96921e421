//! `infiniband` collector: `node_infiniband_*{device,port}` from `<sysfs>/class/infiniband`, as
//! node_exporter 1.5 (kernel ABI: `Documentation/ABI/stable/sysfs-class-infiniband`).
//!
//! Per device `node_infiniband_info` (`fw_ver` is required, `board_id` and `hca_type` may be
//! absent); per port the state and physical state ids (`"<id>: <NAME>"`), the rate
//! (`"<Gb/s> Gb/sec (<width>)"` → bytes/s) and every known counter of `counters/` and the
//! pre-4.5 `counters_ext/`. Like node_exporter: counter files are parsed with Go's base prefixes
//! (`0x`, `0o`, leading `0`, `_` separators), a counter reading `N/A (no PMA)` or unreadable is
//! left out, and the `*_data` counters, which the hardware reports in units of 4 octets, are
//! multiplied by 4. Differences: a missing `class/infiniband` writes nothing (node_exporter
//! reports a failed collection), and a port without a `counters` directory gets no counter
//! series instead of failing the whole collection.
//!
//! The list of devices, ports and counter files and the device attributes are refreshed every
//! 60 s; states, rates and counters are read on every scrape.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::collect::registry::{CollectorModule, Switch};
use crate::collect::{CollectError, Collector, MetricType, ParseError, Sink};
use crate::host::{HostRoot, list_dir, read_attr, read_into};

/// Registry entry.
pub struct Module;

impl CollectorModule for Module {
    type Config = Switch;
    fn build(_: &Switch, host: &HostRoot) -> Box<dyn Collector> {
        Box::new(Infiniband {
            dir: host.sys("class/infiniband"),
            devices: Vec::new(),
            listed: None,
            values: Vec::new(),
            buf: String::with_capacity(64),
        })
    }
}

/// How long the device/port/counter layout and device attributes are reused.
const RELIST: Duration = Duration::from_secs(60);

/// A counter file: (directory, file, metric name after `node_infiniband_`, help, ×4).
type CounterDef = (&'static str, &'static str, &'static str, &'static str, bool);

/// The counters node_exporter 1.5 exports.
const COUNTERS: [CounterDef; 30] = [
    (
        "counters",
        "excessive_buffer_overrun_errors",
        "excessive_buffer_overrun_errors_total",
        "Number of times that OverrunErrors consecutive flow control update periods occurred, each having at least one overrun error.",
        false,
    ),
    (
        "counters",
        "link_downed",
        "link_downed_total",
        "Number of times the link failed to recover from an error state and went down",
        false,
    ),
    (
        "counters",
        "link_error_recovery",
        "link_error_recovery_total",
        "Number of times the link successfully recovered from an error state",
        false,
    ),
    (
        "counters",
        "local_link_integrity_errors",
        "local_link_integrity_errors_total",
        "Number of times that the count of local physical errors exceeded the threshold specified by LocalPhyErrors.",
        false,
    ),
    (
        "counters",
        "multicast_rcv_packets",
        "multicast_packets_received_total",
        "Number of multicast packets received (including errors)",
        false,
    ),
    (
        "counters",
        "multicast_xmit_packets",
        "multicast_packets_transmitted_total",
        "Number of multicast packets transmitted (including errors)",
        false,
    ),
    (
        "counters",
        "port_rcv_constraint_errors",
        "port_constraint_errors_received_total",
        "Number of packets received on the switch physical port that are discarded",
        false,
    ),
    (
        "counters",
        "port_xmit_constraint_errors",
        "port_constraint_errors_transmitted_total",
        "Number of packets not transmitted from the switch physical port",
        false,
    ),
    (
        "counters",
        "port_rcv_data",
        "port_data_received_bytes_total",
        "Number of data octets received on all links",
        true,
    ),
    (
        "counters",
        "port_xmit_data",
        "port_data_transmitted_bytes_total",
        "Number of data octets transmitted on all links",
        true,
    ),
    (
        "counters",
        "port_rcv_discards",
        "port_discards_received_total",
        "Number of inbound packets discarded by the port because the port is down or congested",
        false,
    ),
    (
        "counters",
        "port_xmit_discards",
        "port_discards_transmitted_total",
        "Number of outbound packets discarded by the port because the port is down or congested",
        false,
    ),
    (
        "counters",
        "port_rcv_errors",
        "port_errors_received_total",
        "Number of packets containing an error that were received on this port",
        false,
    ),
    (
        "counters",
        "port_rcv_packets",
        "port_packets_received_total",
        "Number of packets received on all VLs by this port (including errors)",
        false,
    ),
    (
        "counters",
        "port_xmit_packets",
        "port_packets_transmitted_total",
        "Number of packets transmitted on all VLs from this port (including errors)",
        false,
    ),
    (
        "counters",
        "port_rcv_remote_physical_errors",
        "port_receive_remote_physical_errors_total",
        "Number of packets marked with the EBP (End of Bad Packet) delimiter received on the port.",
        false,
    ),
    (
        "counters",
        "port_rcv_switch_relay_errors",
        "port_receive_switch_relay_errors_total",
        "Number of packets that could not be forwarded by the switch.",
        false,
    ),
    (
        "counters",
        "port_xmit_wait",
        "port_transmit_wait_total",
        "Number of ticks during which the port had data to transmit but no data was sent during the entire tick",
        false,
    ),
    (
        "counters",
        "symbol_error",
        "symbol_error_total",
        "Number of minor link errors detected on one or more physical lanes.",
        false,
    ),
    (
        "counters",
        "unicast_rcv_packets",
        "unicast_packets_received_total",
        "Number of unicast packets received (including errors)",
        false,
    ),
    (
        "counters",
        "unicast_xmit_packets",
        "unicast_packets_transmitted_total",
        "Number of unicast packets transmitted (including errors)",
        false,
    ),
    (
        "counters",
        "VL15_dropped",
        "vl15_dropped_total",
        "Number of incoming VL15 packets dropped due to resource limitations.",
        false,
    ),
    (
        "counters_ext",
        "port_multicast_rcv_packets",
        "legacy_multicast_packets_received_total",
        "Number of multicast packets received",
        false,
    ),
    (
        "counters_ext",
        "port_multicast_xmit_packets",
        "legacy_multicast_packets_transmitted_total",
        "Number of multicast packets transmitted",
        false,
    ),
    (
        "counters_ext",
        "port_rcv_data_64",
        "legacy_data_received_bytes_total",
        "Number of data octets received on all links",
        true,
    ),
    (
        "counters_ext",
        "port_rcv_packets_64",
        "legacy_packets_received_total",
        "Number of data packets received on all links",
        false,
    ),
    (
        "counters_ext",
        "port_unicast_rcv_packets",
        "legacy_unicast_packets_received_total",
        "Number of unicast packets received",
        false,
    ),
    (
        "counters_ext",
        "port_unicast_xmit_packets",
        "legacy_unicast_packets_transmitted_total",
        "Number of unicast packets transmitted",
        false,
    ),
    (
        "counters_ext",
        "port_xmit_data_64",
        "legacy_data_transmitted_bytes_total",
        "Number of data octets transmitted on all links",
        true,
    ),
    // node_exporter's help says "received" here too; kept for exact equality.
    (
        "counters_ext",
        "port_xmit_packets_64",
        "legacy_packets_transmitted_total",
        "Number of data packets received on all links",
        false,
    ),
];

fn counter_def(i: usize) -> &'static CounterDef {
    &COUNTERS[i]
}

const N_COUNTERS: usize = COUNTERS.len();

/// Parses `"<id>: <NAME>"` (a `state` or `phys_state` file) into the id.
pub fn parse_state(text: &str) -> Result<u32, ParseError> {
    let mut parts = text.split(':');
    let (Some(id), Some(_name), None) = (parts.next(), parts.next(), parts.next()) else {
        return Err(ParseError::new(
            1,
            format!("expected \"<id>: <name>\", got {text:?}"),
        ));
    };
    id.trim()
        .parse()
        .map_err(|_| ParseError::new(1, format!("invalid state id {:?}", id.trim())))
}

/// Parses a `rate` file (`"56 Gb/sec (4X FDR)"`) into bytes per second. The number is read at
/// single precision, as node_exporter does.
pub fn parse_rate(text: &str) -> Result<u64, ParseError> {
    let Some((gbps, _)) = text.split_once(' ') else {
        return Err(ParseError::new(1, format!("invalid rate {text:?}")));
    };
    let v: f32 = gbps
        .trim()
        .parse()
        .map_err(|_| ParseError::new(1, format!("invalid rate {gbps:?}")))?;
    Ok((f64::from(v) * 125_000_000.0) as u64)
}

/// Parses an unsigned integer the way Go's `strconv.ParseUint(s, 0, 64)` does: `0x`, `0o`,
/// `0b` prefixes, a leading `0` for octal, and `_` between digits.
pub fn parse_go_uint(s: &str) -> Option<u64> {
    let (radix, digits, prefixed) = match s.as_bytes() {
        [b'0', b'x' | b'X', ..] => (16, &s[2..], true),
        [b'0', b'o' | b'O', ..] => (8, &s[2..], true),
        [b'0', b'b' | b'B', ..] => (2, &s[2..], true),
        [b'0', _, ..] => (8, &s[1..], true),
        _ => (10, s, false),
    };
    if digits.contains('_') {
        // Underscores only between digits (or right after a prefix).
        let b = digits.as_bytes();
        let bad_edge = b.last() == Some(&b'_') || (!prefixed && b.first() == Some(&b'_'));
        if bad_edge || digits.contains("__") {
            return None;
        }
        let mut n: u64 = 0;
        for c in digits.chars().filter(|&c| c != '_') {
            n = n
                .checked_mul(radix)?
                .checked_add(u64::from(c.to_digit(radix as u32)?))?;
        }
        return Some(n);
    }
    if digits.is_empty() || digits.starts_with('+') {
        return None;
    }
    u64::from_str_radix(digits, radix as u32).ok()
}

struct Port {
    number: String,
    state: PathBuf,
    phys_state: PathBuf,
    rate: PathBuf,
    /// (index into the counter table, file).
    counters: Vec<(usize, PathBuf)>,
}

struct Device {
    name: String,
    board_id: String,
    fw_ver: String,
    hca_type: String,
    ports: Vec<Port>,
}

/// What one port read during one scrape.
#[derive(Clone, Copy)]
struct PortValues {
    state: u32,
    phys_state: u32,
    rate: u64,
    counters: [Option<u64>; N_COUNTERS],
}

struct Infiniband {
    dir: PathBuf,
    devices: Vec<Device>,
    listed: Option<Instant>,
    /// Per port of `devices`, in order (reused).
    values: Vec<PortValues>,
    buf: String,
}

fn attr(path: &Path, buf: &mut String) -> Result<Option<String>, CollectError> {
    Ok(read_attr(path, buf)?.map(|()| buf.trim().to_string()))
}

fn list_counters(port_dir: &Path) -> Result<Vec<(usize, PathBuf)>, CollectError> {
    let mut out = Vec::new();
    for sub in ["counters", "counters_ext"] {
        let dir = port_dir.join(sub);
        for file in list_dir(&dir)? {
            let known = (0..N_COUNTERS).find(|&i| {
                let (d, f, ..) = counter_def(i);
                *d == sub && *f == file
            });
            if let Some(i) = known {
                let path = dir.join(&file);
                if path.is_file() {
                    out.push((i, path));
                }
            }
        }
    }
    Ok(out)
}

impl Infiniband {
    fn relist(&mut self) -> Result<(), CollectError> {
        let now = Instant::now();
        if self.listed.is_some_and(|t| now.duration_since(t) < RELIST) {
            return Ok(());
        }
        self.devices.clear();
        for name in list_dir(&self.dir)? {
            let dev_dir = self.dir.join(&name);
            let Some(fw_ver) = attr(&dev_dir.join("fw_ver"), &mut self.buf)? else {
                continue; // node_exporter fails here; not an InfiniBand device we can describe
            };
            let board_id = attr(&dev_dir.join("board_id"), &mut self.buf)?.unwrap_or_default();
            let hca_type = attr(&dev_dir.join("hca_type"), &mut self.buf)?.unwrap_or_default();
            let mut ports = Vec::new();
            for number in list_dir(&dev_dir.join("ports"))? {
                if number.parse::<u32>().is_err() {
                    continue;
                }
                let dir = dev_dir.join("ports").join(&number);
                ports.push(Port {
                    state: dir.join("state"),
                    phys_state: dir.join("phys_state"),
                    rate: dir.join("rate"),
                    counters: list_counters(&dir)?,
                    number,
                });
            }
            self.devices.push(Device {
                name,
                board_id,
                fw_ver,
                hca_type,
                ports,
            });
        }
        self.listed = Some(now);
        Ok(())
    }

    fn read_port(&mut self, d: usize, p: usize) -> Result<Option<PortValues>, CollectError> {
        let port = &self.devices[d].ports[p];
        let buf = &mut self.buf;
        let mut v = PortValues {
            state: 0,
            phys_state: 0,
            rate: 0,
            counters: [None; N_COUNTERS],
        };
        for (path, slot) in [
            (&port.state, &mut v.state),
            (&port.phys_state, &mut v.phys_state),
        ] {
            if !read_into(path, buf)? {
                return Ok(None); // the device went away
            }
            *slot = parse_state(buf).map_err(|e| CollectError::parse(path, e))?;
        }
        if !read_into(&port.rate, buf)? {
            return Ok(None);
        }
        v.rate = parse_rate(buf).map_err(|e| CollectError::parse(&port.rate, e))?;
        for (i, path) in &port.counters {
            // Unreadable counters (EINVAL, EPERM, ...) are left out like node_exporter does.
            let Ok(Some(())) = read_attr(path, buf) else {
                continue;
            };
            let text = buf.trim();
            match parse_go_uint(text) {
                Some(n) => {
                    let (.., times4) = counter_def(*i);
                    v.counters[*i] = Some(if *times4 { n.wrapping_mul(4) } else { n });
                }
                None if text.contains("N/A (no PMA)") => {}
                None => {
                    return Err(CollectError::parse(
                        path,
                        ParseError::new(1, format!("invalid counter {text:?}")),
                    ));
                }
            }
        }
        Ok(Some(v))
    }
}

impl Collector for Infiniband {
    fn name(&self) -> &'static str {
        "infiniband"
    }

    fn collect(&mut self, sink: &mut Sink) -> Result<(), CollectError> {
        self.relist()?;
        if self.devices.is_empty() {
            return Ok(());
        }
        self.values.clear();
        // (device index, port index) of each entry of `values`.
        let mut which = Vec::with_capacity(self.values.capacity());
        for d in 0..self.devices.len() {
            for p in 0..self.devices[d].ports.len() {
                if let Some(v) = self.read_port(d, p)? {
                    self.values.push(v);
                    which.push((d, p));
                }
            }
        }

        let mut info = sink.family(
            "node_infiniband_info",
            "Non-numeric data from /sys/class/infiniband/<device>, value is always 1.",
            MetricType::Gauge,
        );
        for dev in &self.devices {
            info.sample(
                &[
                    ("board_id", &dev.board_id),
                    ("device", &dev.name),
                    ("firmware_version", &dev.fw_ver),
                    ("hca_type", &dev.hca_type),
                ],
                1.0,
            );
        }
        if self.values.is_empty() {
            return Ok(());
        }
        type Pick = fn(&PortValues) -> f64;
        let gauges: [(&str, &str, Pick); 3] = [
            (
                "node_infiniband_state_id",
                "State of the InfiniBand port (0: no change, 1: down, 2: init, 3: armed, 4: active, 5: act defer)",
                |v| f64::from(v.state),
            ),
            (
                "node_infiniband_physical_state_id",
                "Physical state of the InfiniBand port (0: no change, 1: sleep, 2: polling, 3: disable, 4: shift, 5: link up, 6: link error recover, 7: phytest)",
                |v| f64::from(v.phys_state),
            ),
            (
                "node_infiniband_rate_bytes_per_second",
                "Maximum signal transfer rate",
                |v| v.rate as f64,
            ),
        ];
        for (name, help, pick) in gauges {
            let mut fam = sink.family(name, help, MetricType::Gauge);
            for (v, &(d, p)) in self.values.iter().zip(&which) {
                let dev = &self.devices[d];
                fam.sample(
                    &[("device", &dev.name), ("port", &dev.ports[p].number)],
                    pick(v),
                );
            }
        }
        for i in 0..N_COUNTERS {
            if self.values.iter().all(|v| v.counters[i].is_none()) {
                continue;
            }
            let (_, _, name, help, _) = counter_def(i);
            let mut fam =
                sink.family_parts(&["node_infiniband_", name], &[help], MetricType::Counter);
            for (v, &(d, p)) in self.values.iter().zip(&which) {
                if let Some(n) = v.counters[i] {
                    let dev = &self.devices[d];
                    fam.sample(
                        &[("device", &dev.name), ("port", &dev.ports[p].number)],
                        n as f64,
                    );
                }
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
    fn state_rate_and_go_integers() {
        assert_eq!(parse_state("4: ACTIVE\n"), Ok(4));
        assert_eq!(parse_state("5: LinkUp"), Ok(5));
        assert!(parse_state("ACTIVE").is_err());
        assert_eq!(parse_rate("56 Gb/sec (4X FDR)\n"), Ok(7_000_000_000));
        assert_eq!(parse_rate("2.5 Gb/sec (1X SDR)"), Ok(312_500_000));
        assert!(parse_rate("fast").is_err());
        assert_eq!(parse_go_uint("0x10"), Some(16));
        assert_eq!(parse_go_uint("017"), Some(15));
        assert_eq!(parse_go_uint("1_000"), Some(1000));
        assert_eq!(parse_go_uint("0"), Some(0));
        assert_eq!(parse_go_uint("N/A (no PMA)"), None);
        assert_eq!(parse_go_uint("1__0"), None);
    }

    #[test]
    fn legacy_tree() {
        let host = fixture_host("legacy");
        let sink = collect_once::<Module>(&Switch::default(), &host);
        assert_eq!(
            samples(&sink, "node_infiniband_info")[1].0,
            r#"board_id="MT_0000000010",device="mlx5_0",firmware_version="16.26.1040",hca_type="MT4119""#
        );
        assert_eq!(
            samples(&sink, "node_infiniband_rate_bytes_per_second"),
            [
                (r#"device="mlx4_0",port="1""#.to_string(), 7e9),
                (r#"device="mlx4_0",port="2""#.to_string(), 1.25e9),
                (r#"device="mlx5_0",port="1""#.to_string(), 3.125e9),
            ]
        );
        // ×4, and present on mlx5_0 whose error counters read "N/A (no PMA)".
        assert_eq!(
            samples(&sink, "node_infiniband_port_data_received_bytes_total"),
            [
                (r#"device="mlx4_0",port="1""#.to_string(), 8884894436.0),
                (r#"device="mlx4_0",port="2""#.to_string(), 0.0),
                (r#"device="mlx5_0",port="1""#.to_string(), 36481348.0),
            ]
        );
        assert_eq!(
            samples(&sink, "node_infiniband_link_downed_total"),
            [
                (r#"device="mlx4_0",port="1""#.to_string(), 1.0),
                (r#"device="mlx4_0",port="2""#.to_string(), 0.0),
            ]
        );
        assert_eq!(samples(&sink, "node_infiniband_state_id")[1].1, 1.0);
    }

    #[test]
    fn missing_directory_writes_nothing() {
        testutil::assert_empty_host_writes_nothing::<Module>();
    }
}
