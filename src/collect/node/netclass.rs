//! `netclass` collector: `node_network_info`, `node_network_up` and the per-interface
//! properties (`node_network_mtu_bytes`, `_speed_bytes`, `_carrier`, `_flags`, ...) from
//! `/sys/class/net/<iface>/` (attributes: Documentation/ABI/testing/sysfs-class-net).
//!
//! Semantics are node_exporter 1.5's: an attribute that is missing or unreadable (`speed` and
//! `carrier` of a down or virtual link return `EINVAL`) is skipped silently; `speed` of `-1`
//! is reported as `-125000` unless `ignore_invalid_speed` is set; entries of `class/net` that
//! are regular files (`bonding_masters`) are not interfaces.
//!
//! Cost: sysfs attribute reads are most of a node_exporter scrape's kernel time, so only the
//! state that changes by itself is read on every scrape: `operstate`, `carrier`,
//! `carrier_changes`, `carrier_up_count`, `carrier_down_count` and `dormant` (6 reads per
//! interface instead of ~25). The configuration-like attributes (address, broadcast, duplex,
//! ifalias, speed, mtu, flags, ifindex, iflink, link_mode, name_assign_type,
//! addr_assign_type, dev_id, type, netdev_group, tx_queue_len) are cached per interface and
//! re-read every `attribute_refresh_seconds` (default 60; 0 = every scrape), at once for all
//! interfaces when the list of `class/net` entries changes, and at once for one interface
//! when its `operstate` or `carrier_changes` changes (a renegotiated link shows its new speed
//! and duplex in the same scrape). So an MTU or alias change without a link event appears
//! within `attribute_refresh_seconds`.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use serde::Deserialize;

use crate::collect::registry::CollectorModule;
use crate::collect::{CollectError, Collector, MetricType, Sink};
use crate::config::{Issue, Pattern};
use crate::host::{HostRoot, list_dir, read_attr};

/// Registry entry.
pub struct Module;

/// `collectors.netclass`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Whether the collector runs.
    pub enabled: bool,
    /// Interfaces whose name matches are not reported
    /// (`--collector.netclass.ignored-devices`).
    pub ignored_devices: Option<Pattern>,
    /// Do not report `node_network_speed_bytes` for a negative (unknown) speed
    /// (`--collector.netclass.ignore-invalid-speed`).
    pub ignore_invalid_speed: bool,
    /// How often the cached configuration-like attributes are re-read.
    pub attribute_refresh_seconds: u64,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            enabled: true,
            ignored_devices: None,
            ignore_invalid_speed: false,
            attribute_refresh_seconds: 60,
        }
    }
}

impl Config {
    fn check(&self, key: &str, issues: &mut Vec<Issue>) {
        if self.attribute_refresh_seconds > 86_400 {
            issues.push(Issue::new(
                format!("{key}.attribute_refresh_seconds"),
                "must be at most 86400 (one day)",
            ));
        }
    }
}

crate::collector_config!(Config);

impl CollectorModule for Module {
    type Config = Config;
    fn build(cfg: &Config, host: &HostRoot) -> Box<dyn Collector> {
        Box::new(NetClass {
            dir: host.sys("class/net"),
            ignored: cfg.ignored_devices.clone(),
            ignore_invalid_speed: cfg.ignore_invalid_speed,
            refresh: Duration::from_secs(cfg.attribute_refresh_seconds),
            listing: Vec::new(),
            ifaces: Vec::new(),
            last_refresh: None,
            path: PathBuf::new(),
            buf: String::with_capacity(64),
        })
    }
}

/// Parses a sysfs integer attribute: decimal (possibly negative) or `0x` hexadecimal
/// (`flags`, `dev_id`).
pub fn parse_int(s: &str) -> Option<i64> {
    let s = s.trim();
    match s.strip_prefix("0x") {
        Some(hex) => i64::from_str_radix(hex, 16).ok(),
        None => s.parse().ok(),
    }
}

/// Attributes that only change through configuration; cached between refreshes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Static {
    /// `address`.
    pub address: String,
    /// `broadcast`.
    pub broadcast: String,
    /// `duplex`.
    pub duplex: String,
    /// `ifalias`.
    pub ifalias: String,
    /// `addr_assign_type`.
    pub addr_assign_type: Option<i64>,
    /// `dev_id`.
    pub dev_id: Option<i64>,
    /// `flags`.
    pub flags: Option<i64>,
    /// `ifindex`.
    pub ifindex: Option<i64>,
    /// `iflink`.
    pub iflink: Option<i64>,
    /// `link_mode`.
    pub link_mode: Option<i64>,
    /// `mtu`.
    pub mtu: Option<i64>,
    /// `name_assign_type`.
    pub name_assign_type: Option<i64>,
    /// `netdev_group`.
    pub netdev_group: Option<i64>,
    /// `speed` in Mb/s.
    pub speed: Option<i64>,
    /// `tx_queue_len`.
    pub tx_queue_len: Option<i64>,
    /// `type` (ARPHRD_*).
    pub protocol_type: Option<i64>,
}

/// Attributes read on every scrape.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Dynamic {
    /// `operstate` (empty when unreadable).
    pub operstate: String,
    /// `carrier`.
    pub carrier: Option<i64>,
    /// `carrier_changes`.
    pub carrier_changes: Option<i64>,
    /// `carrier_up_count`.
    pub carrier_up_count: Option<i64>,
    /// `carrier_down_count`.
    pub carrier_down_count: Option<i64>,
    /// `dormant`.
    pub dormant: Option<i64>,
}

#[derive(Debug, Clone, Default)]
struct Iface {
    name: String,
    fixed: Static,
    state: Dynamic,
    /// Listed, but gone by the time its attributes were read.
    gone: bool,
}

struct NetClass {
    dir: PathBuf,
    ignored: Option<Pattern>,
    ignore_invalid_speed: bool,
    refresh: Duration,
    /// The raw `class/net` listing the interface list was built from.
    listing: Vec<String>,
    ifaces: Vec<Iface>,
    last_refresh: Option<Instant>,
    /// Reused attribute path.
    path: PathBuf,
    buf: String,
}

/// Reads one attribute of the interface whose directory is in `path`; `None` when missing
/// or unreadable (EINVAL and friends), like node_exporter.
fn attr<'b>(path: &mut PathBuf, name: &str, buf: &'b mut String) -> Option<&'b str> {
    path.push(name);
    let ok = matches!(read_attr(path, buf), Ok(Some(())));
    path.pop();
    ok.then_some(buf.as_str())
}

fn int_attr(path: &mut PathBuf, name: &str, buf: &mut String) -> Option<i64> {
    attr(path, name, buf).and_then(parse_int)
}

fn text_attr(path: &mut PathBuf, name: &str, buf: &mut String, out: &mut String) {
    out.clear();
    if let Some(s) = attr(path, name, buf) {
        out.push_str(s);
    }
}

/// Reads the cached attributes of the interface whose directory is in `path`.
fn read_static(path: &mut PathBuf, buf: &mut String, s: &mut Static) {
    text_attr(path, "address", buf, &mut s.address);
    text_attr(path, "broadcast", buf, &mut s.broadcast);
    text_attr(path, "duplex", buf, &mut s.duplex);
    text_attr(path, "ifalias", buf, &mut s.ifalias);
    s.addr_assign_type = int_attr(path, "addr_assign_type", buf);
    s.dev_id = int_attr(path, "dev_id", buf);
    s.flags = int_attr(path, "flags", buf);
    s.ifindex = int_attr(path, "ifindex", buf);
    s.iflink = int_attr(path, "iflink", buf);
    s.link_mode = int_attr(path, "link_mode", buf);
    s.mtu = int_attr(path, "mtu", buf);
    s.name_assign_type = int_attr(path, "name_assign_type", buf);
    s.netdev_group = int_attr(path, "netdev_group", buf);
    s.speed = int_attr(path, "speed", buf);
    s.tx_queue_len = int_attr(path, "tx_queue_len", buf);
    s.protocol_type = int_attr(path, "type", buf);
}

/// Reads the per-scrape attributes; true when the link changed state since `d` was filled.
fn read_dynamic(path: &mut PathBuf, buf: &mut String, d: &mut Dynamic) -> bool {
    let before = d.carrier_changes;
    let changed_oper = match attr(path, "operstate", buf) {
        Some(s) if s == d.operstate => false,
        Some(s) => {
            d.operstate.clear();
            d.operstate.push_str(s);
            true
        }
        None => {
            let had = !d.operstate.is_empty();
            d.operstate.clear();
            had
        }
    };
    d.carrier = int_attr(path, "carrier", buf);
    d.carrier_changes = int_attr(path, "carrier_changes", buf);
    d.carrier_up_count = int_attr(path, "carrier_up_count", buf);
    d.carrier_down_count = int_attr(path, "carrier_down_count", buf);
    d.dormant = int_attr(path, "dormant", buf);
    changed_oper || before != d.carrier_changes
}

type Getter = fn(&Iface) -> Option<i64>;

/// The numeric families in node_exporter's order: (name suffix, type, value).
const PROPERTIES: [(&str, MetricType, Getter); 16] = [
    ("address_assign_type", MetricType::Gauge, |i| {
        i.fixed.addr_assign_type
    }),
    ("carrier", MetricType::Gauge, |i| i.state.carrier),
    ("carrier_changes_total", MetricType::Counter, |i| {
        i.state.carrier_changes
    }),
    ("carrier_up_changes_total", MetricType::Counter, |i| {
        i.state.carrier_up_count
    }),
    ("carrier_down_changes_total", MetricType::Counter, |i| {
        i.state.carrier_down_count
    }),
    ("device_id", MetricType::Gauge, |i| i.fixed.dev_id),
    ("dormant", MetricType::Gauge, |i| i.state.dormant),
    ("flags", MetricType::Gauge, |i| i.fixed.flags),
    ("iface_id", MetricType::Gauge, |i| i.fixed.ifindex),
    ("iface_link", MetricType::Gauge, |i| i.fixed.iflink),
    ("iface_link_mode", MetricType::Gauge, |i| i.fixed.link_mode),
    ("mtu_bytes", MetricType::Gauge, |i| i.fixed.mtu),
    ("name_assign_type", MetricType::Gauge, |i| {
        i.fixed.name_assign_type
    }),
    ("net_dev_group", MetricType::Gauge, |i| i.fixed.netdev_group),
    ("transmit_queue_length", MetricType::Gauge, |i| {
        i.fixed.tx_queue_len
    }),
    ("protocol_type", MetricType::Gauge, |i| {
        i.fixed.protocol_type
    }),
];

impl NetClass {
    /// Re-lists `class/net`; true when the interface list was rebuilt.
    fn sync_list(&mut self) -> Result<bool, CollectError> {
        let listing = list_dir(&self.dir)?;
        if listing == self.listing && self.last_refresh.is_some() {
            return Ok(false);
        }
        self.ifaces.clear();
        for name in &listing {
            if self.ignored.as_ref().is_some_and(|p| p.is_match(name)) {
                continue;
            }
            // `bonding_masters` and similar control files are not interfaces.
            let is_file = std::fs::symlink_metadata(self.dir.join(name))
                .map(|m| m.file_type().is_file())
                .unwrap_or(true);
            if !is_file {
                self.ifaces.push(Iface {
                    name: name.clone(),
                    ..Iface::default()
                });
            }
        }
        self.listing = listing;
        Ok(true)
    }
}

impl Collector for NetClass {
    fn name(&self) -> &'static str {
        "netclass"
    }

    fn collect(&mut self, sink: &mut Sink) -> Result<(), CollectError> {
        let rebuilt = self.sync_list()?;
        let now = Instant::now();
        let due = rebuilt
            || self
                .last_refresh
                .is_none_or(|t| now.duration_since(t) >= self.refresh);
        if due {
            self.last_refresh = Some(now);
        }
        for iface in &mut self.ifaces {
            self.path.clear();
            self.path.push(&self.dir);
            self.path.push(&iface.name);
            let link_changed = read_dynamic(&mut self.path, &mut self.buf, &mut iface.state);
            // Every interface has an operstate; without one, check (one stat, only in this
            // rare case) whether the device went away after the listing.
            iface.gone = iface.state.operstate.is_empty() && !self.path.exists();
            if !iface.gone && (due || link_changed) {
                read_static(&mut self.path, &mut self.buf, &mut iface.fixed);
            }
        }
        if self.ifaces.iter().any(|i| i.gone) {
            // A vanished device is normal, not an error: drop it, and re-list next time in
            // case a device of the same name comes back.
            self.ifaces.retain(|i| !i.gone);
            self.listing.clear();
        }
        if self.ifaces.is_empty() {
            return Ok(());
        }

        let mut fam = sink.family(
            "node_network_up",
            "Value is 1 if operstate is 'up', 0 otherwise.",
            MetricType::Gauge,
        );
        for i in &self.ifaces {
            let up = if i.state.operstate == "up" { 1.0 } else { 0.0 };
            fam.sample(&[("device", &i.name)], up);
        }
        let mut fam = sink.family(
            "node_network_info",
            "Non-numeric data from /sys/class/net/<iface>, value is always 1.",
            MetricType::Gauge,
        );
        for i in &self.ifaces {
            fam.sample(
                &[
                    ("address", &i.fixed.address),
                    ("broadcast", &i.fixed.broadcast),
                    ("device", &i.name),
                    ("duplex", &i.fixed.duplex),
                    ("ifalias", &i.fixed.ifalias),
                    ("operstate", &i.state.operstate),
                ],
                1.0,
            );
        }
        for (name, kind, get) in PROPERTIES {
            write_property(sink, &self.ifaces, name, kind, get);
        }
        let ignore_invalid = self.ignore_invalid_speed;
        let speed: Getter = if ignore_invalid {
            |i| i.fixed.speed.filter(|s| *s >= 0).map(|s| s * 125_000)
        } else {
            |i| i.fixed.speed.map(|s| s * 125_000)
        };
        write_property(sink, &self.ifaces, "speed_bytes", MetricType::Gauge, speed);
        Ok(())
    }
}

fn write_property(sink: &mut Sink, ifaces: &[Iface], name: &str, kind: MetricType, get: Getter) {
    if !ifaces.iter().any(|i| get(i).is_some()) {
        return;
    }
    let mut fam = sink.family_parts(
        &["node_network_", name],
        &["Network device property: ", name],
        kind,
    );
    for i in ifaces {
        if let Some(v) = get(i) {
            fam.sample(&[("device", &i.name)], v as f64);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::collect::node::testutil::{self, render, scrape};
    use std::path::Path;

    fn fixture(tree: &str) -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures/hosts")
            .join(tree)
    }

    fn host_at(root: &Path) -> HostRoot {
        HostRoot::new(root.join("proc"), root.join("sys"), root.join("root"))
    }

    /// `name{labels} value` lines.
    fn lines(c: &mut Box<dyn Collector>) -> Vec<String> {
        render(&scrape(c.as_mut()))
    }

    fn has(lines: &[String], want: &str) -> bool {
        lines.iter().any(|l| l == want)
    }

    #[test]
    fn ints_are_decimal_or_hex() {
        assert_eq!(parse_int("1500"), Some(1500));
        assert_eq!(parse_int("-1"), Some(-1));
        assert_eq!(parse_int("0x1003"), Some(4099));
        assert_eq!(parse_int("0x0"), Some(0));
        assert_eq!(parse_int("up"), None);
        assert_eq!(parse_int(""), None);
    }

    #[test]
    fn legacy_fixture() {
        let mut c = Module::build(&Config::default(), &host_at(&fixture("legacy")));
        let got = lines(&mut c);
        for want in [
            r#"node_network_up{device="eno1"} 1"#,
            r#"node_network_up{device="docker0"} 0"#,
            r#"node_network_up{device="lo"} 0"#,
            r#"node_network_info{address="3c:ec:ef:0a:1b:2c",broadcast="ff:ff:ff:ff:ff:ff",device="eno1",duplex="full",ifalias="uplink to sw1 port 12",operstate="up"} 1"#,
            r#"node_network_info{address="02:42:5d:8e:11:07",broadcast="ff:ff:ff:ff:ff:ff",device="docker0",duplex="",ifalias="",operstate="down"} 1"#,
            r#"node_network_speed_bytes{device="eno1"} 125000000"#,
            r#"node_network_speed_bytes{device="veth1a2b3c4"} 1250000000"#,
            r#"node_network_mtu_bytes{device="bond0"} 9000"#,
            r#"node_network_flags{device="bond0"} 5123"#,
            r#"node_network_carrier_changes_total{device="eno1"} 4"#,
            r#"node_network_carrier_down_changes_total{device="docker0"} 1"#,
            r#"node_network_iface_link{device="veth1a2b3c4"} 6"#,
            r#"node_network_protocol_type{device="lo"} 772"#,
            r#"node_network_name_assign_type{device="eno1"} 4"#,
            r#"node_network_transmit_queue_length{device="docker0"} 0"#,
        ] {
            assert!(has(&got, want), "missing {want}");
        }
        // bonding_masters is a file, not an interface; unreadable attributes are skipped.
        assert!(!got.iter().any(|l| l.contains("bonding_masters")));
        assert!(
            !got.iter()
                .any(|l| l.starts_with("node_network_speed_bytes{device=\"docker0\""))
        );
        assert!(
            !got.iter()
                .any(|l| l.starts_with("node_network_carrier{device=\"docker0\""))
        );
        assert!(
            !got.iter()
                .any(|l| l.starts_with("node_network_name_assign_type{device=\"lo\""))
        );
        // 5 interfaces × (up, info, 17 properties) minus the 5 unreadable attributes.
        assert_eq!(got.len(), 90);
    }

    #[test]
    fn modern_fixture_and_invalid_speed() {
        let host = host_at(&fixture("modern"));
        let got = lines(&mut Module::build(&Config::default(), &host));
        assert!(has(
            &got,
            r#"node_network_speed_bytes{device="eth0"} -125000"#
        ));
        assert!(has(&got, r#"node_network_mtu_bytes{device="eth0"} 1400"#));
        assert!(has(
            &got,
            r#"node_network_info{address="02:fc:00:00:00:01",broadcast="ff:ff:ff:ff:ff:ff",device="eth0",duplex="unknown",ifalias="",operstate="up"} 1"#
        ));
        let cfg = Config {
            ignore_invalid_speed: true,
            ignored_devices: Some(Pattern::new("^ifb").expect("re")),
            ..Config::default()
        };
        let got = lines(&mut Module::build(&cfg, &host));
        assert!(
            !got.iter()
                .any(|l| l.starts_with("node_network_speed_bytes"))
        );
        assert!(!got.iter().any(|l| l.contains("ifb")));
        assert!(has(&got, r#"node_network_up{device="lo"} 0"#));
    }

    fn copy_tree(from: &Path, to: &Path) {
        std::fs::create_dir_all(to).expect("mkdir");
        for e in std::fs::read_dir(from).expect("readdir") {
            let e = e.expect("entry");
            let dst = to.join(e.file_name());
            let kind = e.file_type().expect("type");
            if kind.is_symlink() {
                let target = std::fs::read_link(e.path()).expect("readlink");
                std::os::unix::fs::symlink(target, dst).expect("symlink");
            } else if kind.is_dir() {
                copy_tree(&e.path(), &dst);
            } else {
                std::fs::copy(e.path(), dst).expect("copy");
            }
        }
    }

    #[test]
    fn static_attributes_are_cached_until_refresh_or_change() {
        let dir = tempfile::tempdir().expect("tempdir");
        copy_tree(&fixture("legacy/sys"), &dir.path().join("sys"));
        let host = host_at(dir.path());
        let net = dir.path().join("sys/class/net");
        let mut c = Module::build(&Config::default(), &host);
        assert!(has(
            &lines(&mut c),
            r#"node_network_mtu_bytes{device="eno1"} 1500"#
        ));
        std::fs::write(net.join("eno1/mtu"), "9000\n").expect("write");
        std::fs::write(net.join("eno1/carrier_up_count"), "3\n").expect("write");
        let got = lines(&mut c);
        // Cached: the MTU is not re-read; the carrier counters are.
        assert!(has(&got, r#"node_network_mtu_bytes{device="eno1"} 1500"#));
        assert!(has(
            &got,
            r#"node_network_carrier_up_changes_total{device="eno1"} 3"#
        ));
        // A link event re-reads this interface's attributes.
        std::fs::write(net.join("eno1/carrier_changes"), "5\n").expect("write");
        assert!(has(
            &lines(&mut c),
            r#"node_network_mtu_bytes{device="eno1"} 9000"#
        ));
        // A new interface refreshes the list and appears at once.
        std::fs::write(net.join("bond0/mtu"), "1500\n").expect("write");
        copy_tree(&net.join("veth1a2b3c4"), &net.join("veth9"));
        let got = lines(&mut c);
        assert!(has(&got, r#"node_network_mtu_bytes{device="veth9"} 1500"#));
        assert!(has(&got, r#"node_network_mtu_bytes{device="bond0"} 1500"#));
        // With a zero refresh interval every scrape re-reads everything.
        let cfg = Config {
            attribute_refresh_seconds: 0,
            ..Config::default()
        };
        let mut c = Module::build(&cfg, &host);
        assert!(has(
            &lines(&mut c),
            r#"node_network_mtu_bytes{device="veth9"} 1500"#
        ));
        std::fs::write(net.join("veth9/mtu"), "1280\n").expect("write");
        assert!(has(
            &lines(&mut c),
            r#"node_network_mtu_bytes{device="veth9"} 1280"#
        ));
    }

    #[test]
    fn a_device_that_vanishes_after_listing_is_skipped() {
        // In sysfs every class/net entry is a symlink into /sys/devices; a device removed
        // between readdir and the attribute reads leaves exactly this: a name whose target is
        // gone. It is not an error and the device is not reported.
        let dir = tempfile::tempdir().expect("tempdir");
        let net = dir.path().join("sys/class/net");
        std::fs::create_dir_all(net.join("eth0")).expect("mkdir");
        for (attr, v) in [("operstate", "up"), ("mtu", "1500"), ("carrier", "1")] {
            std::fs::write(net.join("eth0").join(attr), format!("{v}\n")).expect("write");
        }
        std::os::unix::fs::symlink("../../devices/virtual/net/veth0", net.join("veth0"))
            .expect("symlink");
        let mut c = Module::build(&Config::default(), &host_at(dir.path()));
        let got = lines(&mut c);
        assert_eq!(
            got.iter()
                .filter(|l| l.contains("veth0"))
                .collect::<Vec<_>>(),
            Vec::<&String>::new()
        );
        assert!(
            has(&got, r#"node_network_mtu_bytes{device="eth0"} 1500"#),
            "{got:?}"
        );
        assert!(has(&got, r#"node_network_up{device="eth0"} 1"#), "{got:?}");
    }

    #[test]
    fn missing_directory_writes_nothing() {
        testutil::assert_empty_host_writes_nothing::<Module>();
    }
}
