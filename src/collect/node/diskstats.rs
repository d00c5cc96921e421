//! `diskstats` collector: `node_disk_*` I/O counters from `/proc/diskstats` (kernel
//! `Documentation/admin-guide/iostats.rst` and `Documentation/ABI/testing/procfs-diskstats`),
//! plus the udev properties node_exporter 1.5 attaches (`node_disk_info`,
//! `node_disk_filesystem_info`, `node_disk_device_mapper_info`, `node_disk_ata_*`) from the
//! udev database `<rootfs>/run/udev/data/b<major>:<minor>` (udevadm(8), `E:KEY=value` lines).
//!
//! A diskstats line is `major minor name` followed by 11 counters (kernels before 4.18), 15
//! (4.18 added four discard counters) or 17 (5.5 added two flush counters). Like node_exporter,
//! lines with any other number of fields (the 4-counter partition lines of 2.6 kernels) are
//! skipped, and only as many families are written for a device as its line has counters.

use std::collections::HashMap;
use std::path::PathBuf;

use serde::Deserialize;

use crate::collect::registry::CollectorModule;
use crate::collect::{CollectError, Collector, MetricType, ParseError, Sink};
use crate::config::{Issue, Pattern};
use crate::host::{HostRoot, read_into};

/// node_exporter's default `--collector.diskstats.device-exclude`: partitions, RAM disks,
/// loop and floppy devices.
pub const DEFAULT_DEVICE_EXCLUDE: &str = r"^(ram|loop|fd|(h|s|v|xv)d[a-z]|nvme\d+n\d+p)\d+$";

/// Registry entry.
pub struct Module;

/// `collectors.diskstats`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Whether the collector runs.
    pub enabled: bool,
    /// Devices to leave out (unanchored regex); unset means [`DEFAULT_DEVICE_EXCLUDE`] unless
    /// `device_include` is set. Mutually exclusive with `device_include`.
    pub device_exclude: Option<Pattern>,
    /// When set, only devices matching it are reported.
    pub device_include: Option<Pattern>,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            enabled: true,
            device_exclude: None,
            device_include: None,
        }
    }
}

impl Config {
    fn check(&self, key: &str, issues: &mut Vec<Issue>) {
        if self.device_exclude.is_some() && self.device_include.is_some() {
            issues.push(Issue::new(
                format!("{key}.device_include"),
                "device_exclude and device_include are mutually exclusive",
            ));
        }
    }
}

crate::collector_config!(Config);

impl CollectorModule for Module {
    type Config = Config;
    fn build(cfg: &Config, host: &HostRoot) -> Box<dyn Collector> {
        let exclude = match (&cfg.device_exclude, &cfg.device_include) {
            (Some(p), _) => Some(p.clone()),
            (None, Some(_)) => None,
            (None, None) => Pattern::new(DEFAULT_DEVICE_EXCLUDE).ok(),
        };
        Box::new(Diskstats {
            path: host.proc("diskstats"),
            udev_dir: host.rootfs("/run/udev/data"),
            exclude,
            include: cfg.device_include.clone(),
            buf: String::with_capacity(4096),
            udev_buf: String::with_capacity(2048),
            udev_path: PathBuf::new(),
            name_buf: String::with_capacity(32),
            udev_cache: HashMap::new(),
        })
    }
}

struct Diskstats {
    path: PathBuf,
    udev_dir: PathBuf,
    exclude: Option<Pattern>,
    include: Option<Pattern>,
    buf: String,
    udev_buf: String,
    udev_path: PathBuf,
    name_buf: String,
    /// `(major, minor)` → (raw udev file, parsed properties, seen in this scrape).
    udev_cache: HashMap<(u32, u32), (String, UdevInfo, bool)>,
}

/// The most counters a line carries (kernel 5.5+).
pub const MAX_COUNTERS: usize = 17;

/// One `/proc/diskstats` line.
#[derive(Debug, Clone, PartialEq)]
pub struct Disk<'a> {
    /// Major device number.
    pub major: u32,
    /// Minor device number.
    pub minor: u32,
    /// Kernel device name (`sda`, `nvme0n1`, `dm-0`).
    pub name: &'a str,
    /// The raw counters in file order; only the first `count` are meaningful.
    pub counters: [u64; MAX_COUNTERS],
    /// How many counters the line had: 11, 15 or 17.
    pub count: usize,
}

/// Parses `/proc/diskstats`. Lines whose field count is not 14, 18 or 20 (or more: extra
/// future columns are ignored) are skipped; a field that is not a number is an error.
pub fn parse(text: &str) -> Result<Vec<Disk<'_>>, ParseError> {
    let mut out = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let err =
            |what: &str, field: &str| ParseError::new(n + 1, format!("invalid {what} {field:?}"));
        let mut fields = line.split_ascii_whitespace();
        let Some(major) = fields.next() else { continue };
        let major = major.parse::<u32>().map_err(|_| err("major", major))?;
        let Some(minor) = fields.next() else { continue };
        let minor = minor.parse::<u32>().map_err(|_| err("minor", minor))?;
        let Some(name) = fields.next() else { continue };
        let mut counters = [0u64; MAX_COUNTERS];
        let mut count = 0;
        for (slot, field) in counters.iter_mut().zip(fields) {
            *slot = field.parse().map_err(|_| err("counter", field))?;
            count += 1;
        }
        if matches!(count, 11 | 15 | 17) {
            out.push(Disk {
                major,
                minor,
                name,
                counters,
                count,
            });
        }
    }
    Ok(out)
}

/// The udev properties node_exporter reports, from one `run/udev/data/b<maj>:<min>` file.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct UdevInfo {
    /// `ID_PATH`.
    pub path: String,
    /// `ID_WWN`.
    pub wwn: String,
    /// `ID_MODEL`.
    pub model: String,
    /// `ID_SERIAL_SHORT` (node_exporter 1.5 uses only this one).
    pub serial: String,
    /// `ID_REVISION`.
    pub revision: String,
    /// `ID_FS_TYPE`, `ID_FS_USAGE`, `ID_FS_UUID`, `ID_FS_VERSION`.
    pub fs: [String; 4],
    /// `DM_NAME`, `DM_UUID`, `DM_VG_NAME`, `DM_LV_NAME`, `DM_LV_LAYER`.
    pub dm: [String; 5],
    /// `ID_ATA` is present and not empty.
    pub ata: bool,
    /// Raw `ID_ATA_WRITE_CACHE`, `ID_ATA_WRITE_CACHE_ENABLED`, `ID_ATA_ROTATION_RATE_RPM`
    /// (None when absent).
    pub ata_values: [Option<String>; 3],
}

/// The `node_disk_ata_*` families, in the order of [`UdevInfo::ata_values`].
const ATA_FAMILIES: [(&str, &str); 3] = [
    ("node_disk_ata_write_cache", "ATA disk has a write cache."),
    (
        "node_disk_ata_write_cache_enabled",
        "ATA disk has its write cache enabled.",
    ),
    (
        "node_disk_ata_rotation_rate_rpm",
        "ATA disk rotation rate in RPMs (0 for SSDs).",
    ),
];

/// Parses a udev database entry: only `E:KEY=value` (device property) lines count; a later
/// duplicate key wins.
pub fn parse_udev(text: &str) -> UdevInfo {
    let mut info = UdevInfo::default();
    for line in text.lines() {
        let Some((key, value)) = line.strip_prefix("E:").and_then(|p| p.split_once('=')) else {
            continue;
        };
        let slot = match key {
            "ID_PATH" => &mut info.path,
            "ID_WWN" => &mut info.wwn,
            "ID_MODEL" => &mut info.model,
            "ID_SERIAL_SHORT" => &mut info.serial,
            "ID_REVISION" => &mut info.revision,
            "ID_FS_TYPE" => &mut info.fs[0],
            "ID_FS_USAGE" => &mut info.fs[1],
            "ID_FS_UUID" => &mut info.fs[2],
            "ID_FS_VERSION" => &mut info.fs[3],
            "DM_NAME" => &mut info.dm[0],
            "DM_UUID" => &mut info.dm[1],
            "DM_VG_NAME" => &mut info.dm[2],
            "DM_LV_NAME" => &mut info.dm[3],
            "DM_LV_LAYER" => &mut info.dm[4],
            "ID_ATA" => {
                info.ata = !value.is_empty();
                continue;
            }
            "ID_ATA_WRITE_CACHE" => {
                info.ata_values[0] = Some(value.to_string());
                continue;
            }
            "ID_ATA_WRITE_CACHE_ENABLED" => {
                info.ata_values[1] = Some(value.to_string());
                continue;
            }
            "ID_ATA_ROTATION_RATE_RPM" => {
                info.ata_values[2] = Some(value.to_string());
                continue;
            }
            _ => continue,
        };
        slot.clear();
        slot.push_str(value);
    }
    info
}

/// `(name, help, type, scale)` of each counter column, in file order. Times are milliseconds
/// (scaled by multiplying with 0.001, as node_exporter does, so values match to the bit);
/// sectors are the kernel's fixed 512-byte units, except the discarded-sectors count, which
/// node_exporter reports unscaled.
const COLUMNS: [(&str, &str, MetricType, f64); MAX_COUNTERS] = [
    (
        "node_disk_reads_completed_total",
        "The total number of reads completed successfully.",
        MetricType::Counter,
        1.0,
    ),
    (
        "node_disk_reads_merged_total",
        "The total number of reads merged.",
        MetricType::Counter,
        1.0,
    ),
    (
        "node_disk_read_bytes_total",
        "The total number of bytes read successfully.",
        MetricType::Counter,
        512.0,
    ),
    (
        "node_disk_read_time_seconds_total",
        "The total number of seconds spent by all reads.",
        MetricType::Counter,
        MS,
    ),
    (
        "node_disk_writes_completed_total",
        "The total number of writes completed successfully.",
        MetricType::Counter,
        1.0,
    ),
    (
        "node_disk_writes_merged_total",
        "The number of writes merged.",
        MetricType::Counter,
        1.0,
    ),
    (
        "node_disk_written_bytes_total",
        "The total number of bytes written successfully.",
        MetricType::Counter,
        512.0,
    ),
    (
        "node_disk_write_time_seconds_total",
        "This is the total number of seconds spent by all writes.",
        MetricType::Counter,
        MS,
    ),
    (
        "node_disk_io_now",
        "The number of I/Os currently in progress.",
        MetricType::Gauge,
        1.0,
    ),
    (
        "node_disk_io_time_seconds_total",
        "Total seconds spent doing I/Os.",
        MetricType::Counter,
        MS,
    ),
    (
        "node_disk_io_time_weighted_seconds_total",
        "The weighted # of seconds spent doing I/Os.",
        MetricType::Counter,
        MS,
    ),
    (
        "node_disk_discards_completed_total",
        "The total number of discards completed successfully.",
        MetricType::Counter,
        1.0,
    ),
    (
        "node_disk_discards_merged_total",
        "The total number of discards merged.",
        MetricType::Counter,
        1.0,
    ),
    (
        "node_disk_discarded_sectors_total",
        "The total number of sectors discarded successfully.",
        MetricType::Counter,
        1.0,
    ),
    (
        "node_disk_discard_time_seconds_total",
        "This is the total number of seconds spent by all discards.",
        MetricType::Counter,
        MS,
    ),
    (
        "node_disk_flush_requests_total",
        "The total number of flush requests completed successfully",
        MetricType::Counter,
        1.0,
    ),
    (
        "node_disk_flush_requests_time_seconds_total",
        "This is the total number of seconds spent by all flush requests.",
        MetricType::Counter,
        MS,
    ),
];

const MS: f64 = 1.0 / 1000.0;

/// Parses an ATA property value the way Go's `strconv.ParseFloat` accepts it (no surrounding
/// spaces, optional sign, exponent, `inf`/`nan`).
fn parse_ata_value(s: &str) -> Option<f64> {
    s.parse::<f64>().ok()
}

impl Diskstats {
    fn ignored(&self, dev: &str) -> bool {
        !Pattern::admits(self.include.as_ref(), self.exclude.as_ref(), dev)
    }

    /// Refreshes the cached udev properties of one device. The file is read every scrape (udev
    /// rewrites it when a device changes) but only re-parsed when its content changed, so the
    /// steady state allocates nothing.
    fn refresh_udev(&mut self, major: u32, minor: u32) {
        use std::fmt::Write as _;
        self.name_buf.clear();
        let _ = write!(self.name_buf, "b{major}:{minor}");
        self.udev_path.clone_from(&self.udev_dir);
        self.udev_path.push(&self.name_buf);
        match read_into(&self.udev_path, &mut self.udev_buf) {
            Ok(true) => {}
            // Missing (no udev on the host) or unreadable: the labels stay empty, as in
            // node_exporter, which only logs this at debug level.
            Ok(false) => self.udev_buf.clear(),
            Err(e) => {
                tracing::debug!(error = %e, "reading udev data");
                self.udev_buf.clear();
            }
        }
        let entry = self.udev_cache.entry((major, minor)).or_default();
        entry.2 = true;
        if entry.0 != self.udev_buf {
            entry.1 = parse_udev(&self.udev_buf);
            entry.0.clone_from(&self.udev_buf);
        }
    }
}

impl Collector for Diskstats {
    fn name(&self) -> &'static str {
        "diskstats"
    }

    fn collect(&mut self, sink: &mut Sink) -> Result<(), CollectError> {
        let mut buf = std::mem::take(&mut self.buf);
        let res = self.collect_from(&mut buf, sink);
        self.buf = buf;
        res
    }
}

impl Diskstats {
    fn collect_from(&mut self, buf: &mut String, sink: &mut Sink) -> Result<(), CollectError> {
        if !read_into(&self.path, buf)? {
            return Ok(());
        }
        let mut disks = parse(buf).map_err(|e| CollectError::parse(&self.path, e))?;
        disks.retain(|d| !self.ignored(d.name));
        if disks.is_empty() {
            return Ok(());
        }
        for e in self.udev_cache.values_mut() {
            e.2 = false;
        }
        for d in &disks {
            self.refresh_udev(d.major, d.minor);
        }
        // Forget devices that went away.
        self.udev_cache.retain(|_, e| e.2);
        let none = UdevInfo::default();
        let infos: Vec<&UdevInfo> = disks
            .iter()
            .map(|d| {
                self.udev_cache
                    .get(&(d.major, d.minor))
                    .map_or(&none, |e| &e.1)
            })
            .collect();

        let mut minor_buf = itoa::Buffer::new();
        let mut major_buf = itoa::Buffer::new();
        {
            let mut fam = sink.family(
                "node_disk_info",
                "Info of /sys/block/<block_device>.",
                MetricType::Gauge,
            );
            for (d, u) in disks.iter().zip(&infos) {
                fam.sample(
                    &[
                        ("device", d.name),
                        ("major", major_buf.format(d.major)),
                        ("minor", minor_buf.format(d.minor)),
                        ("model", &u.model),
                        ("path", &u.path),
                        ("revision", &u.revision),
                        ("serial", &u.serial),
                        ("wwn", &u.wwn),
                    ],
                    1.0,
                );
            }
        }
        for (i, &(name, help, kind, scale)) in COLUMNS.iter().enumerate() {
            if !disks.iter().any(|d| d.count > i) {
                continue;
            }
            let mut fam = sink.family(name, help, kind);
            for d in disks.iter().filter(|d| d.count > i) {
                fam.sample(&[("device", d.name)], d.counters[i] as f64 * scale);
            }
        }
        if infos.iter().any(|u| !u.fs[0].is_empty()) {
            let mut fam = sink.family(
                "node_disk_filesystem_info",
                "Info about disk filesystem.",
                MetricType::Gauge,
            );
            for (d, u) in disks
                .iter()
                .zip(&infos)
                .filter(|(_, u)| !u.fs[0].is_empty())
            {
                fam.sample(
                    &[
                        ("device", d.name),
                        ("type", &u.fs[0]),
                        ("usage", &u.fs[1]),
                        ("uuid", &u.fs[2]),
                        ("version", &u.fs[3]),
                    ],
                    1.0,
                );
            }
        }
        if infos.iter().any(|u| !u.dm[0].is_empty()) {
            let mut fam = sink.family(
                "node_disk_device_mapper_info",
                "Info about disk device mapper.",
                MetricType::Gauge,
            );
            for (d, u) in disks
                .iter()
                .zip(&infos)
                .filter(|(_, u)| !u.dm[0].is_empty())
            {
                fam.sample(
                    &[
                        ("device", d.name),
                        ("lv_layer", &u.dm[4]),
                        ("lv_name", &u.dm[3]),
                        ("name", &u.dm[0]),
                        ("uuid", &u.dm[1]),
                        ("vg_name", &u.dm[2]),
                    ],
                    1.0,
                );
            }
        }
        for (i, (name, help)) in ATA_FAMILIES.iter().enumerate() {
            let mut values = disks.iter().zip(&infos).filter_map(|(d, u)| {
                if !u.ata {
                    return None;
                }
                let raw = u.ata_values[i].as_deref()?;
                match parse_ata_value(raw) {
                    Some(v) => Some((d.name, v)),
                    None => {
                        tracing::debug!(device = d.name, value = raw, "unparsable ATA udev value");
                        None
                    }
                }
            });
            let Some((dev, v)) = values.next() else {
                continue;
            };
            let mut fam = sink.family(name, help, MetricType::Gauge);
            fam.sample(&[("device", dev)], v);
            for (dev, v) in values {
                fam.sample(&[("device", dev)], v);
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::collect::node::testutil::{self, all_samples, collect_once, fixture_host, scrape};

    const LEGACY: &str = include_str!("../../../tests/fixtures/hosts/legacy/proc/diskstats");
    const MODERN: &str = include_str!("../../../tests/fixtures/hosts/modern/proc/diskstats");

    fn collect(tree: &str, cfg: &Config) -> Vec<(String, String, f64)> {
        all_samples(&collect_once::<Module>(cfg, &fixture_host(tree)))
    }

    fn value(all: &[(String, String, f64)], name: &str, labels: &str) -> Option<f64> {
        all.iter()
            .find(|(n, l, _)| n == name && l == labels)
            .map(|(_, _, v)| *v)
    }

    #[test]
    fn parses_the_three_line_lengths() {
        let disks = parse(LEGACY).expect("legacy");
        let names: Vec<_> = disks.iter().map(|d| (d.name, d.count)).collect();
        assert_eq!(
            names,
            [
                ("sda", 15),
                ("sda1", 15),
                ("sda2", 15),
                ("sdb", 11),
                ("sr0", 15),
                ("dm-0", 15),
                ("dm-1", 15),
                ("nvme0n1", 15),
                ("nvme0n1p1", 15),
                ("loop0", 15),
            ]
        );
        assert_eq!(disks[0].major, 8);
        assert_eq!(disks[0].counters[..4], [5493382, 19021, 421866382, 3147183]);
        assert_eq!(disks[0].counters[14], 4102);
        let modern = parse(MODERN).expect("modern");
        let vda = modern.iter().find(|d| d.name == "vda").expect("vda");
        assert_eq!((vda.major, vda.minor, vda.count), (254, 0, 17));
        assert_eq!(vda.counters[0], 43929);
        assert_eq!(vda.counters[15..], [513, 22]);
    }

    #[test]
    fn short_lines_are_skipped_and_garbage_is_an_error() {
        let disks = parse("   8  1 sda1 10 20 30 40\n\n").expect("2.6 partition line");
        assert!(disks.is_empty());
        assert_eq!(
            parse("8 0 sda 1 2 x 4 5 6 7 8 9 10 11\n"),
            Err(ParseError::new(1, "invalid counter \"x\""))
        );
    }

    #[test]
    fn udev_properties() {
        let info = parse_udev(include_str!(
            "../../../tests/fixtures/hosts/legacy/root/run/udev/data/b11:0"
        ));
        assert_eq!(info.model, "QEMU_DVD-ROM");
        assert_eq!(info.serial, "");
        assert_eq!(info.wwn, "a=b");
        assert_eq!(info.fs[0], "");
        assert!(info.ata);
        assert_eq!(info.ata_values[0].as_deref(), Some(" 1"));
        assert_eq!(info.ata_values[1].as_deref(), Some("+1e0"));
    }

    #[test]
    fn legacy_tree_matches_node_exporter() {
        let all = collect("legacy", &Config::default());
        assert_eq!(
            value(
                &all,
                "node_disk_info",
                r#"device="sda",major="8",minor="0",model="Samsung_SSD_860_EVO_500GB",path="pci-0000:00:1f.2-ata-1",revision="RVT02B6Q",serial="S3Z2NB0K812345X",wwn="0x5002538e40a1b2c3""#
            ),
            Some(1.0)
        );
        assert_eq!(
            value(
                &all,
                "node_disk_info",
                r#"device="dm-1",major="253",minor="1",model="",path="",revision="",serial="",wwn="""#
            ),
            Some(1.0)
        );
        // Partitions and loop devices are excluded by default.
        assert!(
            !all.iter().any(|(_, l, _)| l.contains("sda1")
                || l.contains("nvme0n1p1")
                || l.contains("loop0"))
        );
        assert_eq!(
            value(&all, "node_disk_read_bytes_total", r#"device="sda""#),
            Some(421866382.0 * 512.0)
        );
        assert_eq!(
            value(
                &all,
                "node_disk_io_time_seconds_total",
                r#"device="nvme0n1""#
            ),
            Some(0.8220000000000001)
        );
        assert_eq!(
            value(
                &all,
                "node_disk_discarded_sectors_total",
                r#"device="dm-0""#
            ),
            Some(8257536.0)
        );
        // The 14-field line has no discard counters.
        assert_eq!(
            value(
                &all,
                "node_disk_discards_completed_total",
                r#"device="sdb""#
            ),
            None
        );
        assert_eq!(
            value(
                &all,
                "node_disk_io_time_weighted_seconds_total",
                r#"device="sdb""#
            ),
            Some(0.053)
        );
        assert_eq!(
            value(
                &all,
                "node_disk_filesystem_info",
                r#"device="sdb",type="LVM2_member",usage="raid",uuid="cK8eZp-3mQa-1bXy-Wq9r-Tz2u-Lk4s-Hn7vJd",version="LVM2 001""#
            ),
            Some(1.0)
        );
        assert_eq!(
            value(
                &all,
                "node_disk_device_mapper_info",
                r#"device="dm-0",lv_layer="",lv_name="root",name="rhel-root",uuid="LVM-2mXvYb7cQ1dE9fR3gH5jK8lN0pS4tU6wY1zA3bC5dE7fG9hJ1kL3mN5pQ7rS9tU",vg_name="rhel""#
            ),
            Some(1.0)
        );
        let ata: Vec<_> = all
            .iter()
            .filter(|(n, _, _)| n.starts_with("node_disk_ata_"))
            .map(|(n, l, v)| (n.as_str(), l.as_str(), *v))
            .collect();
        assert_eq!(
            ata,
            [
                ("node_disk_ata_write_cache", r#"device="sda""#, 1.0),
                ("node_disk_ata_write_cache", r#"device="sdb""#, 1.0),
                ("node_disk_ata_write_cache_enabled", r#"device="sda""#, 1.0),
                ("node_disk_ata_write_cache_enabled", r#"device="sdb""#, 0.0),
                ("node_disk_ata_write_cache_enabled", r#"device="sr0""#, 1.0),
                ("node_disk_ata_rotation_rate_rpm", r#"device="sda""#, 0.0),
                ("node_disk_ata_rotation_rate_rpm", r#"device="sdb""#, 7200.0),
            ]
        );
    }

    #[test]
    fn modern_tree_has_flush_counters() {
        let all = collect("modern", &Config::default());
        assert_eq!(
            value(&all, "node_disk_flush_requests_total", r#"device="vda""#),
            Some(513.0)
        );
        assert_eq!(
            value(
                &all,
                "node_disk_flush_requests_time_seconds_total",
                r#"device="zram0""#
            ),
            Some(0.0)
        );
        assert_eq!(
            value(
                &all,
                "node_disk_info",
                r#"device="vda",major="254",minor="0",model="",path="pci-0000:00:05.0",revision="",serial="",wwn="""#
            ),
            Some(1.0)
        );
        assert_eq!(all.iter().filter(|(_, l, _)| l.contains("loop")).count(), 0);
    }

    #[test]
    fn include_and_exclude_options() {
        let cfg = Config {
            device_include: Pattern::new("^sd").ok(),
            ..Config::default()
        };
        let all = collect("legacy", &cfg);
        let mut devs: Vec<_> = all
            .iter()
            .filter(|(n, _, _)| n == "node_disk_io_now")
            .map(|(_, l, _)| l.as_str())
            .collect();
        devs.sort_unstable();
        assert_eq!(
            devs,
            [
                r#"device="sda""#,
                r#"device="sda1""#,
                r#"device="sda2""#,
                r#"device="sdb""#
            ]
        );
        let err = crate::config::Config::from_yaml_str(
            "collectors:\n  diskstats:\n    device_exclude: \"^a\"\n    device_include: \"^b\"\n",
        )
        .expect_err("exclusive");
        assert_eq!(
            err.to_string(),
            "collectors.diskstats.device_include: device_exclude and device_include are mutually exclusive"
        );
    }

    #[test]
    fn udev_changes_are_picked_up() {
        let dir = tempfile::tempdir().expect("tempdir");
        let udev = dir.path().join("root/run/udev/data");
        std::fs::create_dir_all(&udev).expect("mkdir");
        std::fs::write(
            dir.path().join("diskstats"),
            "8 0 sdz 1 2 3 4 5 6 7 8 9 10 11\n",
        )
        .expect("write");
        let host = HostRoot::new(dir.path(), dir.path(), dir.path().join("root"));
        let mut c = Module::build(&Config::default(), &host);
        let info = |c: &mut Box<dyn Collector>| {
            let sink = scrape(c.as_mut());
            sink.families()
                .find(|f| f.name() == "node_disk_info")
                .and_then(|f| f.samples().next().map(|s| s.labels.to_string()))
        };
        assert_eq!(
            info(&mut c).as_deref(),
            Some(
                r#"device="sdz",major="8",minor="0",model="",path="",revision="",serial="",wwn="""#
            )
        );
        std::fs::write(udev.join("b8:0"), "E:ID_MODEL=New\n").expect("write");
        assert_eq!(
            info(&mut c).as_deref(),
            Some(
                r#"device="sdz",major="8",minor="0",model="New",path="",revision="",serial="",wwn="""#
            )
        );
    }

    #[test]
    fn missing_file_writes_nothing() {
        testutil::assert_empty_host_writes_nothing::<Module>();
    }
}
