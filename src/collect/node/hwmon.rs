//! `hwmon` collector: `node_hwmon_*` from `/sys/class/hwmon/hwmon<N>/` and each chip's
//! `device/` directory (kernel Documentation/hwmon/sysfs-interface.rst: files
//! `<type><N>_<item>`, temperatures and voltages in milli-units, power in microwatts, energy in
//! microjoules, fans in RPM).
//!
//! The chip label is derived from the resolved `device` symlink as node_exporter 1.5 does
//! (`<parent dir>_<device dir>`, cleaned: `platform_coretemp_0`, `0000:00:1c_0_0000:02:00_0`),
//! falling back to the `name` file, then to the resolved `hwmonN` directory name.
//!
//! What does not change while a driver is loaded — the chip list, chip names, the set of
//! attribute files, sensor labels, and the metric name each file maps to — is discovered on a
//! 60 s rescan. A scrape reads only the numeric attribute files and writes pre-rendered label
//! sets, so the per-scrape cost is one small read per value.

use std::collections::BTreeMap;
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use super::sysfs::rescan_if_due;
use crate::collect::registry::{CollectorModule, Switch};
use crate::collect::sink::escape_label_value;
use crate::collect::{CollectError, Collector, MetricType, Sink, Suffix};
use crate::host::{HostRoot, list_dir, read_into};

/// Registry entry.
pub struct Module;

impl CollectorModule for Module {
    type Config = Switch;
    fn build(_: &Switch, host: &HostRoot) -> Box<dyn Collector> {
        Box::new(Hwmon {
            class_dir: host.sys("class/hwmon"),
            dirs: Vec::new(),
            families: Vec::new(),
            scanned: None,
            buf: String::with_capacity(64),
            values: Vec::new(),
        })
    }
}

/// How long the chip and sensor layout is reused.
const RESCAN: Duration = Duration::from_secs(60);

/// The sensor types node_exporter 1.5 reports.
const SENSOR_TYPES: [&str; 13] = [
    "vrm",
    "beep_enable",
    "update_interval",
    "in",
    "cpu",
    "fan",
    "pwm",
    "temp",
    "curr",
    "power",
    "energy",
    "humidity",
    "intrusion",
];

/// How a file's text becomes the sample value (node_exporter multiplies or divides; the two
/// are kept apart because they round differently).
#[derive(Debug, Clone, Copy, PartialEq)]
enum Op {
    /// The number as read.
    Ident,
    /// `value * factor`.
    Mul(f64),
    /// `value / divisor`.
    Div(f64),
    /// `beep_enable`: 1 when the file says exactly `1`, else 0.
    BeepEnable,
    /// A constant (info-style families: chip names, sensor labels).
    Const(f64),
}

impl Op {
    fn apply(self, text: &str) -> Option<f64> {
        let t = text.trim_matches('\n');
        match self {
            Op::BeepEnable => Some(if t == "1" { 1.0 } else { 0.0 }),
            Op::Const(v) => Some(v),
            Op::Ident => t.parse().ok(),
            Op::Mul(f) => t.parse::<f64>().ok().map(|v| v * f),
            Op::Div(d) => t.parse::<f64>().ok().map(|v| v / d),
        }
    }
}

/// One series: where its value comes from and its rendered label set.
#[derive(Debug)]
struct Series {
    /// (index into the open directories, file name), `None` for constants.
    file: Option<(usize, String)>,
    labels: String,
    op: Op,
}

/// One family with every series that maps to it (across chips).
#[derive(Debug)]
struct Family {
    name: String,
    help: String,
    kind: MetricType,
    series: Vec<Series>,
}

struct Hwmon {
    class_dir: PathBuf,
    /// Open chip (and chip `device/`) directories: values are opened relative to them, so a
    /// scrape does not walk `/sys/class/hwmon/hwmonN` symlinks once per file.
    dirs: Vec<OwnedFd>,
    families: Vec<Family>,
    scanned: Option<Instant>,
    buf: String,
    values: Vec<Option<f64>>,
}

/// Reads a small attribute with one `openat` and one `read`, as sysfs returns an attribute in
/// a single read (node_exporter also reads at most 128 bytes once, which also keeps a driver
/// returning `EAGAIN` from stalling the scrape). Any failure is `None`: the sample is skipped.
fn read_small<'b>(dir: &OwnedFd, name: &str, buf: &'b mut [u8; 128]) -> Option<&'b str> {
    let fd = rustix::fs::openat(
        dir,
        name,
        rustix::fs::OFlags::RDONLY | rustix::fs::OFlags::CLOEXEC,
        rustix::fs::Mode::empty(),
    )
    .ok()?;
    let n = rustix::io::read(&fd, &mut buf[..]).ok()?;
    std::str::from_utf8(&buf[..n]).ok()
}

/// node_exporter's name cleaning: lower case, every character outside `[a-z0-9:_]` becomes
/// `_`, leading and trailing `_` trimmed.
pub fn clean_name(raw: &str) -> String {
    let mut out = String::with_capacity(raw.len());
    for c in raw.chars().flat_map(char::to_lowercase) {
        out.push(
            if c.is_ascii_lowercase() || c.is_ascii_digit() || c == ':' || c == '_' {
                c
            } else {
                '_'
            },
        );
    }
    out.trim_matches('_').to_string()
}

/// Splits an attribute file name into `(type, number, item)` like node_exporter's
/// `^(?P<type>[^0-9]+)(?P<id>[0-9]*)?(_(?P<property>.+))?$` (leftmost-first, greedy):
/// `temp1_crit_alarm` → `("temp", 1, "crit_alarm")`, `beep_enable` → `("beep_enable", 0, "")`.
pub fn explode(name: &str) -> Option<(&str, u64, &str)> {
    let run = name
        .find(|c: char| c.is_ascii_digit())
        .unwrap_or(name.len());
    if run == 0 {
        return None;
    }
    let after_digits = name[run..]
        .find(|c: char| !c.is_ascii_digit())
        .map_or(name.len(), |i| run + i);
    let rest = &name[after_digits..];
    let full = match rest.strip_prefix('_') {
        None if rest.is_empty() => Some(""),
        Some(item) if !item.is_empty() => Some(item),
        _ => None,
    };
    if let Some(item) = full {
        let digits = &name[run..after_digits];
        let num = if digits.is_empty() {
            0
        } else {
            // Go's Atoi fails on overflow, and so does the whole match.
            digits
                .parse::<i64>()
                .ok()
                .and_then(|n| u64::try_from(n).ok())?
        };
        return Some((&name[..run], num, item));
    }
    // Backtrack: a shorter type ending at an underscore, no number, the rest as the item.
    let k = name[..run]
        .rfind('_')
        .filter(|&k| k >= 1 && k + 1 < name.len())?;
    Some((&name[..k], 0, &name[k + 1..]))
}

/// The chip label for a `hwmonN` directory (see the module doc), `None` if nothing yields one.
fn chip_label(dir: &Path, buf: &mut String) -> Option<String> {
    if let Ok(dev) = std::fs::canonicalize(dir.join("device")) {
        let name = dev.file_name().map(|n| clean_name(&n.to_string_lossy()));
        let parent = dev
            .parent()
            .and_then(Path::file_name)
            .map(|n| clean_name(&n.to_string_lossy()));
        match (parent, name) {
            (Some(p), Some(n)) if !p.is_empty() && !n.is_empty() => {
                return Some(format!("{p}_{n}"));
            }
            (_, Some(n)) if !n.is_empty() => return Some(n),
            _ => {}
        }
    }
    if let Some(n) = chip_name(dir, buf) {
        return Some(n);
    }
    let real = std::fs::canonicalize(dir).ok()?;
    let n = clean_name(&real.file_name()?.to_string_lossy());
    (!n.is_empty()).then_some(n)
}

/// The cleaned `name` file of a chip, if present and not empty after cleaning.
fn chip_name(dir: &Path, buf: &mut String) -> Option<String> {
    match read_into(&dir.join("name"), buf) {
        Ok(true) => {
            let n = clean_name(buf);
            (!n.is_empty()).then_some(n)
        }
        _ => None,
    }
}

/// Renders `k1="v1",k2="v2"` (escaped).
fn render(labels: &[(&str, &str)]) -> String {
    let mut out = String::new();
    for (i, (k, v)) in labels.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str(k);
        out.push_str("=\"");
        escape_label_value(&mut out, v);
        out.push('"');
    }
    out
}

/// The family name, help, type and conversion node_exporter 1.5 uses for item `item` of a
/// sensor of type `ty`; `has_bare` says the sensor also has a file without item (`temp1`).
/// `None` for items it does not report this way (labels, and the three whole-sensor types).
fn classify(ty: &str, item: &str, has_bare: bool) -> Option<(String, String, MetricType, Op)> {
    if item == "label" || matches!(ty, "beep_enable" | "vrm" | "update_interval") {
        return None;
    }
    let mut name = format!("node_hwmon_{ty}");
    if item == "input" {
        if has_bare {
            name.push_str("_input");
        }
    } else if !item.is_empty() {
        name.push('_');
        name.push_str(&clean_name(item));
    }
    let g = MetricType::Gauge;
    let r = match (ty, item) {
        (_, "fault" | "alarm") => (
            name,
            format!("Hardware sensor {item} status ({ty})"),
            g,
            Op::Ident,
        ),
        (_, "beep") => (
            name + "_enabled",
            "Hardware monitor sensor has beeping enabled".to_string(),
            g,
            Op::Ident,
        ),
        ("in" | "cpu", _) => (
            name + "_volts",
            format!("Hardware monitor for voltage ({item})"),
            g,
            Op::Mul(0.001),
        ),
        ("temp", _) if item != "type" => {
            let item = if item.is_empty() { "input" } else { item };
            (
                name + "_celsius",
                format!("Hardware monitor for temperature ({item})"),
                g,
                Op::Mul(0.001),
            )
        }
        ("curr", _) => (
            name + "_amps",
            format!("Hardware monitor for current ({item})"),
            g,
            Op::Mul(0.001),
        ),
        ("energy", _) => (
            name + "_joule_total",
            format!("Hardware monitor for joules used so far ({item})"),
            MetricType::Counter,
            Op::Div(1_000_000.0),
        ),
        ("power", "accuracy") => (
            name,
            "Hardware monitor power meter accuracy, as a ratio".to_string(),
            g,
            Op::Div(1_000_000.0),
        ),
        ("power", "average_interval" | "average_interval_min" | "average_interval_max") => (
            name + "_seconds",
            format!("Hardware monitor power usage update interval ({item})"),
            g,
            Op::Mul(0.001),
        ),
        ("power", _) => (
            name + "_watt",
            format!("Hardware monitor for power usage in watts ({item})"),
            g,
            Op::Div(1_000_000.0),
        ),
        ("humidity", _) => (
            name,
            format!(
                "Hardware monitor for humidity, as a ratio (multiply with 100.0 to get the \
                 humidity as a percentage) ({item})"
            ),
            g,
            Op::Div(1_000_000.0),
        ),
        ("fan", "input" | "min" | "max" | "target") => (
            name + "_rpm",
            format!("Hardware monitor for fan revolutions per minute ({item})"),
            g,
            Op::Ident,
        ),
        _ => (
            name,
            format!("Hardware monitor {ty} element {item}"),
            g,
            Op::Ident,
        ),
    };
    Some(r)
}

/// Sensor key (`temp1`) → item (`""`, `input`, `max`, ...) → (directory index, file name).
type SensorFiles = BTreeMap<String, BTreeMap<String, (usize, String)>>;

/// Adds the sensor attribute files of `dir` (directories skipped) to `out`.
fn scan_sensor_files(dir: &Path, idx: usize, out: &mut SensorFiles) -> Result<(), CollectError> {
    for name in list_dir(dir)? {
        let Some((ty, num, item)) = explode(&name) else {
            continue;
        };
        if !SENSOR_TYPES.contains(&ty) {
            continue;
        }
        let path = dir.join(&name);
        if path.is_dir() {
            continue;
        }
        out.entry(format!("{ty}{num}"))
            .or_default()
            .insert(item.to_string(), (idx, name.clone()));
    }
    Ok(())
}

/// Accumulates families while scanning.
#[derive(Default)]
struct Builder {
    families: BTreeMap<String, Family>,
}

impl Builder {
    fn add(&mut self, name: String, help: String, kind: MetricType, series: Series) {
        self.families
            .entry(name.clone())
            .or_insert_with(|| Family {
                name,
                help,
                kind,
                series: Vec::new(),
            })
            .series
            .push(series);
    }
}

impl Hwmon {
    /// Opens a directory for the lifetime of this layout; its index in `dirs`.
    fn open_dir(&mut self, dir: &Path) -> Option<usize> {
        let fd = rustix::fs::open(
            dir,
            rustix::fs::OFlags::RDONLY
                | rustix::fs::OFlags::DIRECTORY
                | rustix::fs::OFlags::CLOEXEC,
            rustix::fs::Mode::empty(),
        )
        .ok()?;
        self.dirs.push(fd);
        Some(self.dirs.len() - 1)
    }

    fn rescan(&mut self) -> Result<(), CollectError> {
        let mut b = Builder::default();
        self.dirs.clear();
        for entry in list_dir(&self.class_dir)? {
            let dir = self.class_dir.join(&entry);
            if !dir.is_dir() {
                continue;
            }
            self.scan_chip(&dir, &mut b)?;
        }
        self.families = b.families.into_values().collect();
        Ok(())
    }

    fn scan_chip(&mut self, dir: &Path, b: &mut Builder) -> Result<(), CollectError> {
        let Some(chip) = chip_label(dir, &mut self.buf) else {
            return Ok(());
        };
        let mut files = SensorFiles::new();
        let Some(idx) = self.open_dir(dir) else {
            return Ok(());
        };
        scan_sensor_files(dir, idx, &mut files)?;
        let device = dir.join("device");
        if device.is_dir()
            && let Some(idx) = self.open_dir(&device)
        {
            scan_sensor_files(&device, idx, &mut files)?;
        }
        if let Some(name) = chip_name(dir, &mut self.buf) {
            b.add(
                "node_hwmon_chip_names".into(),
                "Annotation metric for human-readable chip names".into(),
                MetricType::Gauge,
                Series {
                    file: None,
                    labels: render(&[("chip", &chip), ("chip_name", &name)]),
                    op: Op::Const(1.0),
                },
            );
        }
        for (sensor, items) in &files {
            let Some((ty, _, _)) = explode(sensor) else {
                continue;
            };
            let labels = render(&[("chip", &chip), ("sensor", sensor)]);
            if let Some(raw) = items
                .get("label")
                .and_then(|(d, name)| read_bytes(&self.dirs[*d], name))
            {
                let text = String::from_utf8_lossy(&raw);
                let label = text.trim_matches('\n');
                b.add(
                    "node_hwmon_sensor_label".into(),
                    "Label for given chip and sensor".into(),
                    MetricType::Gauge,
                    Series {
                        file: None,
                        labels: render(&[("chip", &chip), ("label", label), ("sensor", sensor)]),
                        op: Op::Const(1.0),
                    },
                );
            }
            let whole = match ty {
                "beep_enable" => Some((
                    "node_hwmon_beep_enabled",
                    "Hardware beep enabled",
                    Op::BeepEnable,
                )),
                "vrm" => Some((
                    "node_hwmon_voltage_regulator_version",
                    "Hardware voltage regulator",
                    Op::Ident,
                )),
                "update_interval" => Some((
                    "node_hwmon_update_interval_seconds",
                    "Hardware monitor update interval",
                    Op::Mul(0.001),
                )),
                _ => None,
            };
            if let Some((name, help, op)) = whole {
                if let Some(file) = items.get("") {
                    b.add(
                        name.into(),
                        help.into(),
                        MetricType::Gauge,
                        Series {
                            file: Some(file.clone()),
                            labels: labels.clone(),
                            op,
                        },
                    );
                }
                continue;
            }
            let has_bare = items.contains_key("");
            for (item, (d, file)) in items {
                let Some((name, help, kind, op)) = classify(ty, item, has_bare) else {
                    continue;
                };
                // A file whose text is not a number (a model string) never becomes a sample:
                // drop it now instead of re-reading it every scrape. An unreadable file (a
                // sensor that is asleep) is kept and retried.
                let mut raw = [0u8; 128];
                if let Some(text) = read_small(&self.dirs[*d], file, &mut raw)
                    && op.apply(text).is_none()
                {
                    continue;
                }
                b.add(
                    name,
                    help,
                    kind,
                    Series {
                        file: Some((*d, file.clone())),
                        labels: labels.clone(),
                        op,
                    },
                );
            }
        }
        Ok(())
    }
}

/// Reads a small file as bytes (labels may not be UTF-8); any failure is `None`.
fn read_bytes(dir: &OwnedFd, name: &str) -> Option<Vec<u8>> {
    let fd = rustix::fs::openat(
        dir,
        name,
        rustix::fs::OFlags::RDONLY | rustix::fs::OFlags::CLOEXEC,
        rustix::fs::Mode::empty(),
    )
    .ok()?;
    let mut buf = [0u8; 128];
    let n = rustix::io::read(&fd, &mut buf[..]).ok()?;
    Some(buf[..n].to_vec())
}

impl Collector for Hwmon {
    fn name(&self) -> &'static str {
        "hwmon"
    }

    fn collect(&mut self, sink: &mut Sink) -> Result<(), CollectError> {
        rescan_if_due(self, |s| &mut s.scanned, RESCAN, Self::rescan)?;
        let mut raw = [0u8; 128];
        for fam in &self.families {
            self.values.clear();
            for s in &fam.series {
                let v = match &s.file {
                    None => s.op.apply(""),
                    Some((d, name)) => {
                        read_small(&self.dirs[*d], name, &mut raw).and_then(|t| s.op.apply(t))
                    }
                };
                self.values.push(v);
            }
            if self.values.iter().all(Option::is_none) {
                continue;
            }
            let mut w = sink.family(&fam.name, &fam.help, fam.kind);
            for (s, v) in fam.series.iter().zip(&self.values) {
                if let Some(v) = v {
                    w.raw_sample(Suffix::None, &s.labels, *v);
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::collect::node::testutil::{render, scrape, sys_host};

    fn collector(sys: &Path) -> Box<dyn Collector> {
        Module::build(&Switch::default(), &sys_host(sys))
    }

    #[test]
    fn file_names_split_like_node_exporter() {
        assert_eq!(explode("temp1_crit_alarm"), Some(("temp", 1, "crit_alarm")));
        assert_eq!(explode("temp12"), Some(("temp", 12, "")));
        assert_eq!(explode("beep_enable"), Some(("beep_enable", 0, "")));
        assert_eq!(explode("intrusion0_alarm"), Some(("intrusion", 0, "alarm")));
        assert_eq!(explode("temp_1"), Some(("temp_", 1, "")));
        assert_eq!(explode("in_foo1x"), Some(("in", 0, "foo1x")));
        assert_eq!(explode("temp1x"), None);
        assert_eq!(explode("temp1_"), None);
        assert_eq!(explode("1temp"), None);
    }

    #[test]
    fn names_are_cleaned_like_node_exporter() {
        assert_eq!(clean_name("coretemp.0"), "coretemp_0");
        assert_eq!(clean_name("My Chip-X\n"), "my_chip_x");
        assert_eq!(clean_name("0000:00:1c.0"), "0000:00:1c_0");
        assert_eq!(clean_name("__"), "");
    }

    #[test]
    fn classification_and_units() {
        let c = classify;
        assert_eq!(
            c("temp", "", false),
            Some((
                "node_hwmon_temp_celsius".into(),
                "Hardware monitor for temperature (input)".into(),
                MetricType::Gauge,
                Op::Mul(0.001)
            ))
        );
        assert_eq!(
            c("temp", "input", true).map(|x| x.0),
            Some("node_hwmon_temp_input_celsius".into())
        );
        assert_eq!(
            c("temp", "type", false).map(|x| (x.0, x.1)),
            Some((
                "node_hwmon_temp_type".into(),
                "Hardware monitor temp element type".into()
            ))
        );
        assert_eq!(
            c("energy", "input", false).map(|x| (x.0, x.2, x.3)),
            Some((
                "node_hwmon_energy_joule_total".into(),
                MetricType::Counter,
                Op::Div(1e6)
            ))
        );
        assert_eq!(
            c("pwm", "", false).map(|x| (x.0, x.1)),
            Some((
                "node_hwmon_pwm".into(),
                "Hardware monitor pwm element ".into()
            ))
        );
        assert_eq!(c("temp", "label", false), None);
        assert_eq!(Op::Mul(0.001).apply("1032\n"), Some(1032.0 * 0.001));
        assert_eq!(Op::Div(1e6).apply("257000000\n"), Some(257.0));
        assert_eq!(Op::BeepEnable.apply("1\n"), Some(1.0));
        assert_eq!(Op::BeepEnable.apply("yes\n"), Some(0.0));
        assert_eq!(Op::Ident.apply("Dell PMI\n"), None);
    }

    #[test]
    fn legacy_tree_matches_node_exporter() {
        let sys = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/hosts/legacy/sys");
        let mut c = collector(&sys);
        let sink = scrape(c.as_mut());
        let mut got = render(&sink);
        got.sort();
        // Recorded from node_exporter 1.5.0 on the same tree (sorted).
        let want = [
            r#"node_hwmon_beep_enabled{chip="platform_nct6775_656",sensor="beep_enable0"} 0"#,
            r#"node_hwmon_chip_names{chip="0000:00:1c_0_0000:02:00_0",chip_name="i350bb"} 1"#,
            r#"node_hwmon_chip_names{chip="platform_coretemp_0",chip_name="coretemp"} 1"#,
            r#"node_hwmon_chip_names{chip="platform_nct6775_656",chip_name="nct6775"} 1"#,
            r#"node_hwmon_cpu_vid_volts{chip="platform_nct6775_656",sensor="cpu0"} 1.35"#,
            r#"node_hwmon_fan_alarm{chip="platform_nct6775_656",sensor="fan1"} 0"#,
            r#"node_hwmon_fan_alarm{chip="platform_nct6775_656",sensor="fan2"} 0"#,
            r#"node_hwmon_fan_beep_enabled{chip="platform_nct6775_656",sensor="fan1"} 0"#,
            r#"node_hwmon_fan_beep_enabled{chip="platform_nct6775_656",sensor="fan2"} 0"#,
            r#"node_hwmon_fan_min_rpm{chip="platform_nct6775_656",sensor="fan1"} 0"#,
            r#"node_hwmon_fan_min_rpm{chip="platform_nct6775_656",sensor="fan2"} 0"#,
            r#"node_hwmon_fan_pulses{chip="platform_nct6775_656",sensor="fan1"} 2"#,
            r#"node_hwmon_fan_pulses{chip="platform_nct6775_656",sensor="fan2"} 2"#,
            r#"node_hwmon_fan_rpm{chip="platform_nct6775_656",sensor="fan1"} 1205"#,
            r#"node_hwmon_fan_rpm{chip="platform_nct6775_656",sensor="fan2"} 0"#,
            r#"node_hwmon_in_alarm{chip="platform_nct6775_656",sensor="in0"} 0"#,
            r#"node_hwmon_in_alarm{chip="platform_nct6775_656",sensor="in1"} 1"#,
            r#"node_hwmon_in_beep_enabled{chip="platform_nct6775_656",sensor="in0"} 0"#,
            r#"node_hwmon_in_beep_enabled{chip="platform_nct6775_656",sensor="in1"} 0"#,
            r#"node_hwmon_in_max_volts{chip="platform_nct6775_656",sensor="in0"} 1.744"#,
            r#"node_hwmon_in_max_volts{chip="platform_nct6775_656",sensor="in1"} 0"#,
            r#"node_hwmon_in_min_volts{chip="platform_nct6775_656",sensor="in0"} 0"#,
            r#"node_hwmon_in_min_volts{chip="platform_nct6775_656",sensor="in1"} 0"#,
            r#"node_hwmon_in_volts{chip="platform_nct6775_656",sensor="in0"} 1.032"#,
            r#"node_hwmon_in_volts{chip="platform_nct6775_656",sensor="in1"} 1.84"#,
            r#"node_hwmon_intrusion_alarm{chip="platform_nct6775_656",sensor="intrusion0"} 1"#,
            r#"node_hwmon_intrusion_beep_enabled{chip="platform_nct6775_656",sensor="intrusion0"} 0"#,
            r#"node_hwmon_power_accuracy{chip="lnxsybus:00_acpi000d:00",sensor="power1"} 0.095"#,
            r#"node_hwmon_power_average_interval_max_seconds{chip="lnxsybus:00_acpi000d:00",sensor="power1"} 300"#,
            r#"node_hwmon_power_average_interval_min_seconds{chip="lnxsybus:00_acpi000d:00",sensor="power1"} 1"#,
            r#"node_hwmon_power_average_interval_seconds{chip="lnxsybus:00_acpi000d:00",sensor="power1"} 1"#,
            r#"node_hwmon_power_average_watt{chip="lnxsybus:00_acpi000d:00",sensor="power1"} 257"#,
            r#"node_hwmon_power_is_battery_watt{chip="lnxsybus:00_acpi000d:00",sensor="power1"} 0"#,
            r#"node_hwmon_pwm_enable{chip="platform_nct6775_656",sensor="pwm1"} 5"#,
            r#"node_hwmon_pwm_mode{chip="platform_nct6775_656",sensor="pwm1"} 1"#,
            r#"node_hwmon_pwm_temp_sel{chip="platform_nct6775_656",sensor="pwm1"} 1"#,
            r#"node_hwmon_pwm{chip="platform_nct6775_656",sensor="pwm1"} 128"#,
            r#"node_hwmon_sensor_label{chip="0000:00:1c_0_0000:02:00_0",label="loc1",sensor="temp1"} 1"#,
            r#"node_hwmon_sensor_label{chip="platform_coretemp_0",label="Core 0",sensor="temp2"} 1"#,
            r#"node_hwmon_sensor_label{chip="platform_coretemp_0",label="Core 1",sensor="temp3"} 1"#,
            r#"node_hwmon_sensor_label{chip="platform_coretemp_0",label="Core 2",sensor="temp4"} 1"#,
            r#"node_hwmon_sensor_label{chip="platform_coretemp_0",label="Core 3",sensor="temp5"} 1"#,
            r#"node_hwmon_sensor_label{chip="platform_coretemp_0",label="Package id 0",sensor="temp1"} 1"#,
            r#"node_hwmon_sensor_label{chip="platform_nct6775_656",label="PECI Agent 0",sensor="temp7"} 1"#,
            r#"node_hwmon_sensor_label{chip="platform_nct6775_656",label="SYSTIN",sensor="temp1"} 1"#,
            r#"node_hwmon_temp_alarm{chip="platform_nct6775_656",sensor="temp1"} 0"#,
            r#"node_hwmon_temp_beep_enabled{chip="platform_nct6775_656",sensor="temp1"} 0"#,
            r#"node_hwmon_temp_celsius{chip="0000:00:1c_0_0000:02:00_0",sensor="temp1"} 52"#,
            r#"node_hwmon_temp_celsius{chip="platform_coretemp_0",sensor="temp1"} 45"#,
            r#"node_hwmon_temp_celsius{chip="platform_coretemp_0",sensor="temp2"} 43"#,
            r#"node_hwmon_temp_celsius{chip="platform_coretemp_0",sensor="temp3"} 44"#,
            r#"node_hwmon_temp_celsius{chip="platform_coretemp_0",sensor="temp4"} 41"#,
            r#"node_hwmon_temp_celsius{chip="platform_coretemp_0",sensor="temp5"} 42"#,
            r#"node_hwmon_temp_celsius{chip="platform_nct6775_656",sensor="temp1"} 38"#,
            r#"node_hwmon_temp_celsius{chip="platform_nct6775_656",sensor="temp7"} 44.5"#,
            r#"node_hwmon_temp_crit_alarm_celsius{chip="platform_coretemp_0",sensor="temp1"} 0"#,
            r#"node_hwmon_temp_crit_alarm_celsius{chip="platform_coretemp_0",sensor="temp2"} 0"#,
            r#"node_hwmon_temp_crit_alarm_celsius{chip="platform_coretemp_0",sensor="temp3"} 0"#,
            r#"node_hwmon_temp_crit_alarm_celsius{chip="platform_coretemp_0",sensor="temp4"} 0"#,
            r#"node_hwmon_temp_crit_alarm_celsius{chip="platform_coretemp_0",sensor="temp5"} 0"#,
            r#"node_hwmon_temp_crit_celsius{chip="0000:00:1c_0_0000:02:00_0",sensor="temp1"} 120"#,
            r#"node_hwmon_temp_crit_celsius{chip="platform_coretemp_0",sensor="temp1"} 100"#,
            r#"node_hwmon_temp_crit_celsius{chip="platform_coretemp_0",sensor="temp2"} 100"#,
            r#"node_hwmon_temp_crit_celsius{chip="platform_coretemp_0",sensor="temp3"} 100"#,
            r#"node_hwmon_temp_crit_celsius{chip="platform_coretemp_0",sensor="temp4"} 100"#,
            r#"node_hwmon_temp_crit_celsius{chip="platform_coretemp_0",sensor="temp5"} 100"#,
            r#"node_hwmon_temp_max_celsius{chip="0000:00:1c_0_0000:02:00_0",sensor="temp1"} 110"#,
            r#"node_hwmon_temp_max_celsius{chip="platform_coretemp_0",sensor="temp1"} 84"#,
            r#"node_hwmon_temp_max_celsius{chip="platform_coretemp_0",sensor="temp2"} 84"#,
            r#"node_hwmon_temp_max_celsius{chip="platform_coretemp_0",sensor="temp3"} 84"#,
            r#"node_hwmon_temp_max_celsius{chip="platform_coretemp_0",sensor="temp4"} 84"#,
            r#"node_hwmon_temp_max_celsius{chip="platform_coretemp_0",sensor="temp5"} 84"#,
            r#"node_hwmon_temp_max_celsius{chip="platform_nct6775_656",sensor="temp1"} 80"#,
            r#"node_hwmon_temp_max_hyst_celsius{chip="platform_nct6775_656",sensor="temp1"} 75"#,
            r#"node_hwmon_temp_offset_celsius{chip="platform_nct6775_656",sensor="temp1"} 0"#,
            r#"node_hwmon_temp_type{chip="platform_nct6775_656",sensor="temp1"} 4"#,
            r#"node_hwmon_temp_type{chip="platform_nct6775_656",sensor="temp7"} 6"#,
            r#"node_hwmon_voltage_regulator_version{chip="platform_nct6775_656",sensor="vrm0"} 13"#,
        ];
        assert_eq!(got, want);
    }

    #[test]
    fn values_are_reread_and_layout_is_cached() {
        let dir = tempfile::tempdir().expect("tempdir");
        let chip = dir.path().join("class/hwmon/hwmon0");
        std::fs::create_dir_all(&chip).expect("mkdir");
        std::fs::write(chip.join("name"), "drivetemp\n").expect("write");
        std::fs::write(chip.join("temp1_input"), "31000\n").expect("write");
        let mut c = collector(dir.path());
        let sink = scrape(c.as_mut());
        assert_eq!(
            render(&sink),
            vec![
                "node_hwmon_chip_names{chip=\"drivetemp\",chip_name=\"drivetemp\"} 1",
                "node_hwmon_temp_celsius{chip=\"drivetemp\",sensor=\"temp1\"} 31",
            ]
        );
        std::fs::write(chip.join("temp1_input"), "32500\n").expect("write");
        // A label appearing within the rescan interval is not picked up yet.
        std::fs::write(chip.join("temp1_label"), "Drive Temperature\n").expect("write");
        let sink = scrape(c.as_mut());
        assert_eq!(
            render(&sink)[1],
            "node_hwmon_temp_celsius{chip=\"drivetemp\",sensor=\"temp1\"} 32.5"
        );
        assert_eq!(render(&sink).len(), 2);
    }

    #[test]
    fn missing_tree_writes_nothing() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut c = collector(dir.path());
        let mut sink = Sink::new();
        c.collect(&mut sink).expect("missing is not an error");
        assert!(sink.is_empty());
    }
}
