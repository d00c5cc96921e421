//! `thermal_zone` collector: `node_thermal_zone_temp{zone,type}` and
//! `node_cooling_device_{cur,max}_state{name,type}` from `/sys/class/thermal/`
//! (kernel Documentation/driver-api/thermal/sysfs-api.rst: `thermal_zone<N>/temp` in
//! millidegrees Celsius, `cooling_device<N>/{cur,max}_state` integers, `cur_state` may be -1
//! for intel_powerclamp).
//!
//! The device list, `type` and `max_state` are static for the life of a driver: they are read
//! on a 60 s refresh. `temp` and `cur_state` are read on every scrape.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use super::sysfs::rescan_if_due;
use crate::collect::registry::{CollectorModule, Switch};
use crate::collect::{CollectError, Collector, MetricType, ParseError, Sink};
use crate::host::{HostError, HostRoot, list_dir, read_attr, read_into};

/// Registry entry.
pub struct Module;

impl CollectorModule for Module {
    type Config = Switch;
    fn build(_: &Switch, host: &HostRoot) -> Box<dyn Collector> {
        Box::new(Thermal {
            dir: host.sys("class/thermal"),
            zones: Vec::new(),
            coolers: Vec::new(),
            scanned: None,
            buf: String::with_capacity(32),
            temps: Vec::new(),
            states: Vec::new(),
        })
    }
}

/// How long the device list and static attributes are reused.
const RESCAN: Duration = Duration::from_secs(60);

struct Zone {
    /// `N` of `thermal_zoneN`.
    id: String,
    ty: String,
    temp: PathBuf,
}

struct Cooler {
    /// `N` of `cooling_deviceN`.
    id: String,
    ty: String,
    max_state: i64,
    cur_state: PathBuf,
}

struct Thermal {
    dir: PathBuf,
    zones: Vec<Zone>,
    coolers: Vec<Cooler>,
    scanned: Option<Instant>,
    buf: String,
    temps: Vec<Option<i64>>,
    states: Vec<Option<i64>>,
}

/// Parses a signed integer attribute (`"27800\n"`, `"-1\n"`).
pub fn parse_int(text: &str) -> Result<i64, ParseError> {
    let t = text.trim();
    t.parse()
        .map_err(|_| ParseError::new(1, format!("invalid integer {t:?}")))
}

/// The `N` of `<prefix>N...` (the glob `<prefix>[0-9]*`).
fn numbered<'a>(name: &'a str, prefix: &str) -> Option<&'a str> {
    name.strip_prefix(prefix)
        .filter(|rest| rest.starts_with(|c: char| c.is_ascii_digit()))
}

/// True for errors a sensor returns while it has no reading (a powered-down device):
/// `ENODATA`, `EAGAIN`.
fn no_reading(e: &HostError) -> bool {
    matches!(
        e.source.raw_os_error(),
        Some(code) if code == rustix::io::Errno::NODATA.raw_os_error()
            || code == rustix::io::Errno::AGAIN.raw_os_error()
    )
}

/// Reads an integer attribute; missing (device gone) or no reading is `None`.
fn read_int(path: &Path, buf: &mut String) -> Result<Option<i64>, CollectError> {
    match read_into(path, buf) {
        Ok(false) => Ok(None),
        Ok(true) => parse_int(buf)
            .map(Some)
            .map_err(|e| CollectError::parse(path, e)),
        Err(e) if no_reading(&e) => Ok(None),
        Err(e) => Err(e.into()),
    }
}

impl Thermal {
    fn rescan(&mut self) -> Result<(), CollectError> {
        self.zones.clear();
        self.coolers.clear();
        for name in list_dir(&self.dir)? {
            let dir = self.dir.join(&name);
            if let Some(id) = numbered(&name, "thermal_zone") {
                if read_attr(&dir.join("type"), &mut self.buf)?.is_none() {
                    continue;
                }
                self.zones.push(Zone {
                    id: id.to_string(),
                    ty: self.buf.clone(),
                    temp: dir.join("temp"),
                });
            } else if let Some(id) = numbered(&name, "cooling_device") {
                if read_attr(&dir.join("type"), &mut self.buf)?.is_none() {
                    continue;
                }
                let ty = self.buf.clone();
                let Some(max_state) = read_int(&dir.join("max_state"), &mut self.buf)? else {
                    continue;
                };
                self.coolers.push(Cooler {
                    id: id.to_string(),
                    ty,
                    max_state,
                    cur_state: dir.join("cur_state"),
                });
            }
        }
        Ok(())
    }
}

impl Collector for Thermal {
    fn name(&self) -> &'static str {
        "thermal_zone"
    }

    fn collect(&mut self, sink: &mut Sink) -> Result<(), CollectError> {
        rescan_if_due(self, |s| &mut s.scanned, RESCAN, Self::rescan)?;
        // Read first, write after: a parse failure writes nothing.
        self.temps.clear();
        for z in &self.zones {
            self.temps.push(read_int(&z.temp, &mut self.buf)?);
        }
        self.states.clear();
        for c in &self.coolers {
            self.states.push(read_int(&c.cur_state, &mut self.buf)?);
        }
        if self.temps.iter().any(Option::is_some) {
            let mut fam = sink.family(
                "node_thermal_zone_temp",
                "Zone temperature in Celsius",
                MetricType::Gauge,
            );
            for (z, t) in self.zones.iter().zip(&self.temps) {
                if let Some(t) = t {
                    fam.sample(&[("type", &z.ty), ("zone", &z.id)], *t as f64 / 1000.0);
                }
            }
        }
        if self.states.iter().any(Option::is_some) {
            let mut fam = sink.family(
                "node_cooling_device_cur_state",
                "Current throttle state of the cooling device",
                MetricType::Gauge,
            );
            for (c, s) in self.coolers.iter().zip(&self.states) {
                if let Some(s) = s {
                    fam.sample(&[("name", &c.id), ("type", &c.ty)], *s as f64);
                }
            }
            let mut fam = sink.family(
                "node_cooling_device_max_state",
                "Maximum throttle state of the cooling device",
                MetricType::Gauge,
            );
            for (c, s) in self.coolers.iter().zip(&self.states) {
                if s.is_some() {
                    fam.sample(&[("name", &c.id), ("type", &c.ty)], c.max_state as f64);
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
    fn legacy_tree() {
        let sys = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/hosts/legacy/sys");
        let mut c = collector(&sys);
        let sink = scrape(c.as_mut());
        assert_eq!(
            render(&sink),
            vec![
                "node_thermal_zone_temp{type=\"acpitz\",zone=\"0\"} 27.8",
                "node_thermal_zone_temp{type=\"x86_pkg_temp\",zone=\"1\"} 44",
                "node_cooling_device_cur_state{name=\"0\",type=\"Processor\"} 0",
                "node_cooling_device_cur_state{name=\"1\",type=\"Processor\"} 0",
                "node_cooling_device_cur_state{name=\"2\",type=\"Processor\"} 3",
                "node_cooling_device_cur_state{name=\"3\",type=\"Processor\"} 0",
                "node_cooling_device_cur_state{name=\"4\",type=\"intel_powerclamp\"} -1",
                "node_cooling_device_max_state{name=\"0\",type=\"Processor\"} 10",
                "node_cooling_device_max_state{name=\"1\",type=\"Processor\"} 10",
                "node_cooling_device_max_state{name=\"2\",type=\"Processor\"} 10",
                "node_cooling_device_max_state{name=\"3\",type=\"Processor\"} 10",
                "node_cooling_device_max_state{name=\"4\",type=\"intel_powerclamp\"} 50",
            ]
        );
    }

    #[test]
    fn temperature_is_reread_and_garbage_is_an_error() {
        let dir = tempfile::tempdir().expect("tempdir");
        let z = dir.path().join("class/thermal/thermal_zone3");
        std::fs::create_dir_all(&z).expect("mkdir");
        std::fs::write(z.join("type"), "pch_cannonlake\n").expect("write");
        std::fs::write(z.join("temp"), "51000\n").expect("write");
        let mut c = collector(dir.path());
        let sink = scrape(c.as_mut());
        assert_eq!(
            render(&sink),
            vec!["node_thermal_zone_temp{type=\"pch_cannonlake\",zone=\"3\"} 51"]
        );
        std::fs::write(z.join("temp"), "-2500\n").expect("write");
        let sink = scrape(c.as_mut());
        assert_eq!(
            render(&sink),
            vec!["node_thermal_zone_temp{type=\"pch_cannonlake\",zone=\"3\"} -2.5"]
        );
        std::fs::write(z.join("temp"), "hot\n").expect("write");
        let mut sink = Sink::new();
        assert!(c.collect(&mut sink).is_err());
        assert!(sink.is_empty());
    }

    #[test]
    fn parse_int_values() {
        assert_eq!(parse_int("-1\n"), Ok(-1));
        assert_eq!(
            parse_int("\n"),
            Err(ParseError::new(1, "invalid integer \"\""))
        );
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
