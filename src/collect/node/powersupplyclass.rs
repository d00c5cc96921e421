//! `powersupplyclass` collector: `node_power_supply_*{power_supply}` gauges and
//! `node_power_supply_info` from the power supply class in `/sys/class/power_supply`
//! (Documentation/ABI/testing/sysfs-class-power, Documentation/power/power_supply_class.rst).
//!
//! Names, scaling and labels follow node_exporter 1.5: micro-units (µA, µV, µWh, µAh, µW) are
//! divided by 10⁶ (the family names keep the sysfs names, e.g. `energy_full`, except the `_now`
//! attributes, which become `current_ampere`, `voltage_volt`, `energy_watthour`,
//! `charge_ampere`, `power_watt`), tenths of °C by 10, `cycle_count` becomes `cyclecount`, and
//! numbers are read as Go's `ParseInt(s, 0, 64)` does (`0x1f`, octal `010`, a leading sign).
//! A number that does not parse fails the collection, as in node_exporter.
//!
//! Supplies and the attribute files each one has are listed once per 60 s; the attributes
//! themselves (status, capacity, voltages) change and are read on every scrape.

use std::io;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use serde::Deserialize;

use super::sysfs::rescan_if_due;
use crate::collect::node::dmi::attr_text;
use crate::collect::registry::CollectorModule;
use crate::collect::{CollectError, Collector, MetricType, ParseError, Sink};
use crate::config::Pattern;
use crate::host::{HostError, HostRoot, is_missing, list_dir};

/// How long the supply and attribute lists are reused.
const REFRESH: Duration = Duration::from_secs(60);

/// Registry entry.
pub struct Module;

/// `collectors.powersupplyclass`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Whether the collector runs.
    pub enabled: bool,
    /// Supplies whose name matches are skipped (`--collector.powersupply.ignored-supplies`;
    /// node_exporter's default `^$` ignores nothing, as does none here).
    pub ignored_supplies: Option<Pattern>,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            enabled: true,
            ignored_supplies: None,
        }
    }
}

crate::collector_config!(Config, unchecked);

/// Numeric attributes: `(sysfs file, family name after node_power_supply_, divisor)`.
const NUMERIC: [(&str, &str, f64); 49] = [
    ("authentic", "authentic", 1.0),
    ("calibrate", "calibrate", 1.0),
    ("capacity", "capacity", 1.0),
    ("capacity_alert_max", "capacity_alert_max", 1.0),
    ("capacity_alert_min", "capacity_alert_min", 1.0),
    ("charge_now", "charge_ampere", 1e6),
    ("charge_control_limit", "charge_control_limit", 1e6),
    ("charge_control_limit_max", "charge_control_limit_max", 1e6),
    ("charge_counter", "charge_counter", 1e6),
    ("charge_empty", "charge_empty", 1e6),
    ("charge_empty_design", "charge_empty_design", 1e6),
    ("charge_full", "charge_full", 1e6),
    ("charge_full_design", "charge_full_design", 1e6),
    ("charge_term_current", "charge_term_current", 1e6),
    ("constant_charge_current", "constant_charge_current", 1e6),
    (
        "constant_charge_current_max",
        "constant_charge_current_max",
        1e6,
    ),
    ("constant_charge_voltage", "constant_charge_voltage", 1e6),
    (
        "constant_charge_voltage_max",
        "constant_charge_voltage_max",
        1e6,
    ),
    ("current_now", "current_ampere", 1e6),
    ("current_boot", "current_boot", 1e6),
    ("current_max", "current_max", 1e6),
    ("cycle_count", "cyclecount", 1.0),
    ("energy_empty", "energy_empty", 1e6),
    ("energy_empty_design", "energy_empty_design", 1e6),
    ("energy_full", "energy_full", 1e6),
    ("energy_full_design", "energy_full_design", 1e6),
    ("energy_now", "energy_watthour", 1e6),
    ("input_current_limit", "input_current_limit", 1e6),
    ("online", "online", 1.0),
    ("power_now", "power_watt", 1e6),
    ("precharge_current", "precharge_current", 1e6),
    ("present", "present", 1.0),
    ("temp_alert_max", "temp_alert_max_celsius", 10.0),
    ("temp_alert_min", "temp_alert_min_celsius", 10.0),
    ("temp_ambient", "temp_ambient_celsius", 10.0),
    ("temp_ambient_max", "temp_ambient_max_celsius", 10.0),
    ("temp_ambient_min", "temp_ambient_min_celsius", 10.0),
    ("temp", "temp_celsius", 10.0),
    ("temp_max", "temp_max_celsius", 10.0),
    ("temp_min", "temp_min_celsius", 10.0),
    ("time_to_empty_now", "time_to_empty_seconds", 1.0),
    ("time_to_full_now", "time_to_full_seconds", 1.0),
    ("voltage_boot", "voltage_boot", 1e6),
    ("voltage_max", "voltage_max", 1e6),
    ("voltage_max_design", "voltage_max_design", 1e6),
    ("voltage_min", "voltage_min", 1e6),
    ("voltage_min_design", "voltage_min_design", 1e6),
    ("voltage_ocv", "voltage_ocv", 1e6),
    ("voltage_now", "voltage_volt", 1e6),
];

/// String attributes that become `node_power_supply_info` labels (label = file name), in
/// label order; `power_supply` (the name) sorts between `model_name` and `scope`.
const TEXT: [&str; 11] = [
    "capacity_level",
    "charge_type",
    "health",
    "manufacturer",
    "model_name",
    "scope",
    "serial_number",
    "status",
    "technology",
    "type",
    "usb_type",
];

/// Position of `power_supply` among the [`TEXT`] labels.
const NAME_AT: usize = 5;

impl CollectorModule for Module {
    type Config = Config;
    fn build(cfg: &Config, host: &HostRoot) -> Box<dyn Collector> {
        Box::new(PowerSupply {
            dir: host.sys("class/power_supply"),
            ignored: cfg.ignored_supplies.clone(),
            supplies: Vec::new(),
            scanned: None,
            buf: Vec::with_capacity(64),
        })
    }
}

/// One supply: which attribute files it has (cached) and their values (per scrape).
struct Supply {
    name: String,
    dir: PathBuf,
    /// Indexes into [`NUMERIC`] of the files present.
    numeric_files: Vec<usize>,
    /// Indexes into [`TEXT`] of the files present.
    text_files: Vec<usize>,
    numbers: [Option<f64>; NUMERIC.len()],
    texts: [String; TEXT.len()],
}

struct PowerSupply {
    dir: PathBuf,
    ignored: Option<Pattern>,
    supplies: Vec<Supply>,
    scanned: Option<Instant>,
    buf: Vec<u8>,
}

/// Parses an integer as Go's `strconv.ParseInt(s, 0, 64)`: optional sign, then `0x`/`0o`/`0b`
/// or a leading `0` (octal) select the base.
pub fn parse_int(s: &str) -> Result<i64, ParseError> {
    let bad = || ParseError::new(1, format!("invalid integer {s:?}"));
    let (neg, digits) = match s.as_bytes().first() {
        Some(b'-') => (true, &s[1..]),
        Some(b'+') => (false, &s[1..]),
        _ => (false, s),
    };
    let lower = digits.get(..2).map(str::to_ascii_lowercase);
    let (radix, body) = match lower.as_deref() {
        Some("0x") => (16, &digits[2..]),
        Some("0o") => (8, &digits[2..]),
        Some("0b") => (2, &digits[2..]),
        _ if digits.len() > 1 && digits.starts_with('0') => (8, &digits[1..]),
        _ => (10, digits),
    };
    if body.is_empty() || body.starts_with(['+', '-']) {
        return Err(bad());
    }
    let magnitude = i128::from_str_radix(body, radix).map_err(|_| bad())?;
    let v = if neg { -magnitude } else { magnitude };
    i64::try_from(v).map_err(|_| bad())
}

/// Reads an attribute's bytes into `buf`; false when the kernel says the attribute is not
/// available now (missing, `ENODEV`, `EINVAL`, `EOPNOTSUPP`), which node_exporter skips.
fn read_attr_bytes(path: &std::path::Path, buf: &mut Vec<u8>) -> Result<bool, HostError> {
    use std::io::Read;
    buf.clear();
    let res = std::fs::File::open(path).and_then(|mut f| f.read_to_end(buf));
    match res {
        Ok(_) => Ok(true),
        Err(e) if is_missing(&e) || unavailable(&e) => Ok(false),
        Err(e) => Err(HostError {
            path: path.to_path_buf(),
            source: e,
        }),
    }
}

fn unavailable(e: &io::Error) -> bool {
    e.kind() == io::ErrorKind::InvalidInput
        || e.raw_os_error() == Some(rustix::io::Errno::OPNOTSUPP.raw_os_error())
}

impl PowerSupply {
    fn rescan(&mut self) -> Result<(), CollectError> {
        self.supplies.clear();
        for name in list_dir(&self.dir)? {
            if self.ignored.as_ref().is_some_and(|p| p.is_match(&name)) {
                continue;
            }
            let dir = self.dir.join(&name);
            if !dir.is_dir() {
                continue;
            }
            let files = list_dir(&dir)?;
            let regular = |f: &str| {
                files.binary_search_by(|x| x.as_str().cmp(f)).is_ok()
                    && dir.join(f).metadata().is_ok_and(|m| m.is_file())
            };
            let numeric_files = (0..NUMERIC.len())
                .filter(|&i| regular(NUMERIC[i].0))
                .collect();
            let text_files = (0..TEXT.len()).filter(|&i| regular(TEXT[i])).collect();
            self.supplies.push(Supply {
                name,
                dir,
                numeric_files,
                text_files,
                numbers: [None; NUMERIC.len()],
                texts: Default::default(),
            });
        }
        Ok(())
    }

    fn read_values(&mut self) -> Result<(), CollectError> {
        let buf = &mut self.buf;
        for s in &mut self.supplies {
            s.numbers = [None; NUMERIC.len()];
            let mut path = s.dir.clone();
            for &i in &s.numeric_files {
                path.push(NUMERIC[i].0);
                let present = read_attr_bytes(&path, buf)?;
                if present {
                    let text = std::str::from_utf8(buf.trim_ascii()).unwrap_or("\u{FFFD}");
                    let v = parse_int(text).map_err(|e| CollectError::parse(&path, e))?;
                    s.numbers[i] = Some(v as f64 / NUMERIC[i].2);
                }
                path.pop();
            }
            for t in &mut s.texts {
                t.clear();
            }
            for &i in &s.text_files {
                path.push(TEXT[i]);
                let present = read_attr_bytes(&path, buf);
                path.pop();
                if present? {
                    s.texts[i] = attr_text(buf);
                }
            }
        }
        Ok(())
    }
}

impl Collector for PowerSupply {
    fn name(&self) -> &'static str {
        "powersupplyclass"
    }

    fn collect(&mut self, sink: &mut Sink) -> Result<(), CollectError> {
        rescan_if_due(self, |s| &mut s.scanned, REFRESH, Self::rescan)?;
        if self.supplies.is_empty() {
            return Ok(());
        }
        self.read_values()?;
        for (i, (_, family, _)) in NUMERIC.iter().enumerate() {
            if self.supplies.iter().all(|s| s.numbers[i].is_none()) {
                continue;
            }
            let mut f = sink.family_parts(
                &["node_power_supply_", family],
                &[family, " value of /sys/class/power_supply/<power_supply>."],
                MetricType::Gauge,
            );
            for s in &self.supplies {
                if let Some(v) = s.numbers[i] {
                    f.sample(&[("power_supply", &s.name)], v);
                }
            }
        }
        let mut f = sink.family(
            "node_power_supply_info",
            "info of /sys/class/power_supply/<power_supply>.",
            MetricType::Gauge,
        );
        for s in &self.supplies {
            let mut labels = [("", ""); TEXT.len() + 1];
            let mut n = 0;
            for (i, key) in TEXT.iter().enumerate() {
                if i == NAME_AT {
                    labels[n] = ("power_supply", &s.name);
                    n += 1;
                }
                if !s.texts[i].is_empty() {
                    labels[n] = (key, &s.texts[i]);
                    n += 1;
                }
            }
            f.sample(&labels[..n], 1.0);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::collect::node::testutil::{collect_once, dir_host, fixture_host, render};

    fn collect(host: &HostRoot, cfg: &Config) -> Vec<String> {
        let sink = collect_once::<Module>(cfg, host);
        render(&sink)
    }

    #[test]
    fn integers_parse_like_go_base_zero() {
        assert_eq!(parse_int("87"), Ok(87));
        assert_eq!(parse_int("-1200"), Ok(-1200));
        assert_eq!(parse_int("+123"), Ok(123));
        assert_eq!(parse_int("0x1f"), Ok(31));
        assert_eq!(parse_int("010"), Ok(8));
        assert_eq!(parse_int("0"), Ok(0));
        assert_eq!(
            parse_int("N/A"),
            Err(ParseError::new(1, "invalid integer \"N/A\""))
        );
        assert!(parse_int("--1").is_err());
        assert!(parse_int("0x").is_err());
    }

    #[test]
    fn recorded_usb_ups_on_a_server() {
        let host = fixture_host("legacy");
        let name = "power_supply=\"hid-3B1926X12345-battery\"";
        assert_eq!(
            collect(&host, &Config::default()),
            [
                format!("node_power_supply_capacity{{{name}}} 100"),
                format!("node_power_supply_online{{{name}}} 1"),
                format!("node_power_supply_present{{{name}}} 1"),
                format!(
                    "node_power_supply_info{{model_name=\"American Power Conversion Back-UPS RS \
1500G FW:865.L7 .D USB FW:L7\",{name},scope=\"Device\",status=\"Full\",type=\"Battery\"}} 1"
                ),
            ]
        );
        let cfg = Config {
            ignored_supplies: Some(Pattern::new("^hid-").expect("regex")),
            ..Config::default()
        };
        assert!(collect(&host, &cfg).is_empty());
    }

    #[test]
    fn laptop_battery_units_and_names() {
        let dir = tempfile::tempdir().expect("tempdir");
        let bat = dir.path().join("class/power_supply/BAT0");
        std::fs::create_dir_all(bat.join("power")).expect("mkdir");
        for (f, v) in [
            ("cycle_count", "0x1f"),
            ("energy_now", "39672000"),
            ("voltage_now", "16712000"),
            ("current_now", "-1200"),
            ("temp", "297"),
            ("serial_number", " 1234 "),
            ("status", "Discharging"),
            ("alarm", "2440000"),
        ] {
            std::fs::write(bat.join(f), format!("{v}\n")).expect("write");
        }
        let host = dir_host(dir.path());
        assert_eq!(
            collect(&host, &Config::default()),
            [
                "node_power_supply_current_ampere{power_supply=\"BAT0\"} -0.0012",
                "node_power_supply_cyclecount{power_supply=\"BAT0\"} 31",
                "node_power_supply_energy_watthour{power_supply=\"BAT0\"} 39.672",
                "node_power_supply_temp_celsius{power_supply=\"BAT0\"} 29.7",
                "node_power_supply_voltage_volt{power_supply=\"BAT0\"} 16.712",
                "node_power_supply_info{power_supply=\"BAT0\",serial_number=\"1234\",status=\"Discharging\"} 1",
            ]
        );
        std::fs::write(bat.join("temp"), "hot\n").expect("write");
        let mut c = Module::build(&Config::default(), &host);
        assert!(c.collect(&mut Sink::new()).is_err());
    }

    #[test]
    fn missing_directory_writes_nothing() {
        let dir = tempfile::tempdir().expect("tempdir");
        let host = dir_host(dir.path());
        assert!(collect(&host, &Config::default()).is_empty());
    }
}
