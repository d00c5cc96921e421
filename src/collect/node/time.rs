//! `time` collector: `node_time_seconds`, `node_time_zone_offset_seconds{time_zone}` (local
//! time zone from `TZ` / `/etc/localtime`, loaded once at start like Go's `time.Local`), and
//! the clocksource families from `/sys/devices/system/clocksource/clocksource<N>/`
//! (`available_clocksource`: space-separated names; `current_clocksource`: one name; see the
//! kernel's Documentation/ABI/testing/sysfs-devices-system-cpu, "clocksource").
//!
//! The clocksource files are read on every scrape: the kernel switches clocksource at run
//! time (an unstable TSC is dropped), which is exactly what these series are for. Only the
//! device list (fixed per boot) is cached, on a 60 s rescan.

use std::path::PathBuf;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use jiff::tz::TimeZone;

use super::sysfs::rescan_if_due;
use crate::collect::registry::{CollectorModule, Switch};
use crate::collect::{CollectError, Collector, MetricType, Sink};
use crate::host::{HostRoot, list_dir, read_attr, read_into};

/// Registry entry.
pub struct Module;

impl CollectorModule for Module {
    type Config = Switch;
    fn build(_: &Switch, host: &HostRoot) -> Box<dyn Collector> {
        Box::new(Time {
            clocksource_dir: host.sys("devices/system/clocksource"),
            tz: TimeZone::system(),
            devices: Vec::new(),
            scanned: None,
        })
    }
}

struct Time {
    clocksource_dir: PathBuf,
    tz: TimeZone,
    /// Clocksource devices (a fixed set per boot), listed on a 60 s rescan.
    devices: Vec<Device>,
    scanned: Option<Instant>,
}

/// How long the clocksource device list is reused.
const RESCAN: Duration = Duration::from_secs(60);

/// One `clocksource<N>` directory and reusable buffers for its two files.
struct Device {
    /// node_exporter labels devices by their position in the sorted listing, not by `<N>`.
    index: String,
    available_path: PathBuf,
    current_path: PathBuf,
    available: String,
    current: String,
}

/// Seconds since the epoch as a float (negative before 1970), as node_exporter computes it
/// from nanoseconds.
pub fn epoch_seconds(now: SystemTime) -> f64 {
    match now.duration_since(UNIX_EPOCH) {
        Ok(d) => d.as_nanos() as f64 / 1e9,
        Err(e) => -(e.duration().as_nanos() as f64) / 1e9,
    }
}

/// The zone offset information at `now` (abbreviation such as `UTC`, `CET`, `EDT`, and the
/// offset east of UTC).
fn zone_info(tz: &TimeZone, now: SystemTime) -> jiff::tz::TimeZoneOffsetInfo<'_> {
    let ts = jiff::Timestamp::try_from(now).unwrap_or(jiff::Timestamp::UNIX_EPOCH);
    tz.to_offset_info(ts)
}

/// The zone abbreviation and offset in seconds east of UTC at `now`.
pub fn zone_at(tz: &TimeZone, now: SystemTime) -> (String, i32) {
    let info = zone_info(tz, now);
    (info.abbreviation().to_string(), info.offset().seconds())
}

/// True for `clocksource<digits...>` directory names (the kernel's glob `clocksource[0-9]*`).
fn is_clocksource_dir(name: &str) -> bool {
    name.strip_prefix("clocksource")
        .is_some_and(|rest| rest.starts_with(|c: char| c.is_ascii_digit()))
}

impl Time {
    fn rescan(&mut self) -> Result<(), CollectError> {
        self.devices.clear();
        for name in list_dir(&self.clocksource_dir)? {
            if is_clocksource_dir(&name) {
                let dir = self.clocksource_dir.join(name);
                self.devices.push(Device {
                    index: self.devices.len().to_string(),
                    available_path: dir.join("available_clocksource"),
                    current_path: dir.join("current_clocksource"),
                    available: String::with_capacity(64),
                    current: String::with_capacity(32),
                });
            }
        }
        Ok(())
    }

    fn clocksources(&mut self, sink: &mut Sink) -> Result<(), CollectError> {
        rescan_if_due(self, |s| &mut s.scanned, RESCAN, Self::rescan)?;
        if self.devices.is_empty() {
            return Ok(());
        }
        // Read everything first: a device with a missing file writes no series at all (node_exporter
        // fails the whole list).
        for d in &mut self.devices {
            if !read_into(&d.available_path, &mut d.available)?
                || read_attr(&d.current_path, &mut d.current)?.is_none()
            {
                self.scanned = None;
                return Ok(());
            }
        }
        let mut fam = sink.family(
            "node_time_clocksource_available_info",
            "Available clocksources read from '/sys/devices/system/clocksource'.",
            MetricType::Gauge,
        );
        for d in &self.devices {
            for cs in d.available.split_ascii_whitespace() {
                fam.sample(&[("clocksource", cs), ("device", &d.index)], 1.0);
            }
        }
        let mut fam = sink.family(
            "node_time_clocksource_current_info",
            "Current clocksource read from '/sys/devices/system/clocksource'.",
            MetricType::Gauge,
        );
        for d in &self.devices {
            fam.sample(
                &[("clocksource", d.current.trim()), ("device", &d.index)],
                1.0,
            );
        }
        Ok(())
    }
}

impl Collector for Time {
    fn name(&self) -> &'static str {
        "time"
    }

    fn collect(&mut self, sink: &mut Sink) -> Result<(), CollectError> {
        let now = SystemTime::now();
        sink.gauge(
            "node_time_seconds",
            "System time in seconds since epoch (1970).",
            epoch_seconds(now),
        );
        let info = zone_info(&self.tz, now);
        sink.family(
            "node_time_zone_offset_seconds",
            "System time zone offset in seconds.",
            MetricType::Gauge,
        )
        .sample(
            &[("time_zone", info.abbreviation())],
            f64::from(info.offset().seconds()),
        );
        self.clocksources(sink)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::collect::node::testutil::{all_samples, collect_once, dir_host, fixture_host};

    fn collect_tree(tree: &str) -> Vec<(String, String, f64)> {
        let host = fixture_host(tree);
        let sink = collect_once::<Module>(&Switch::default(), &host);
        all_samples(&sink)
            .into_iter()
            .filter(|(n, _, _)| n.starts_with("node_time_clocksource"))
            .collect()
    }

    fn s(name: &str, labels: &str) -> (String, String, f64) {
        (name.to_string(), labels.to_string(), 1.0)
    }

    #[test]
    fn clocksources_from_recorded_trees() {
        assert_eq!(
            collect_tree("modern"),
            vec![
                s(
                    "node_time_clocksource_available_info",
                    "clocksource=\"tsc\",device=\"0\""
                ),
                s(
                    "node_time_clocksource_available_info",
                    "clocksource=\"kvm-clock\",device=\"0\""
                ),
                s(
                    "node_time_clocksource_current_info",
                    "clocksource=\"tsc\",device=\"0\""
                ),
            ]
        );
        assert_eq!(
            collect_tree("legacy"),
            vec![
                s(
                    "node_time_clocksource_available_info",
                    "clocksource=\"tsc\",device=\"0\""
                ),
                s(
                    "node_time_clocksource_available_info",
                    "clocksource=\"hpet\",device=\"0\""
                ),
                s(
                    "node_time_clocksource_available_info",
                    "clocksource=\"acpi_pm\",device=\"0\""
                ),
                s(
                    "node_time_clocksource_current_info",
                    "clocksource=\"tsc\",device=\"0\""
                ),
            ]
        );
    }

    #[test]
    fn epoch_seconds_and_zones() {
        let t = UNIX_EPOCH + std::time::Duration::from_nanos(1_700_000_000_500_000_000);
        assert_eq!(epoch_seconds(t), 1_700_000_000.5);
        assert_eq!(
            epoch_seconds(UNIX_EPOCH - std::time::Duration::from_millis(1500)),
            -1.5
        );
        assert_eq!(zone_at(&TimeZone::UTC, t), ("UTC".to_string(), 0));
        let tz = TimeZone::posix("CET-1CEST,M3.5.0,M10.5.0/3").expect("posix tz");
        // 2023-11-14 is winter time in Europe.
        assert_eq!(zone_at(&tz, t), ("CET".to_string(), 3600));
        let summer = UNIX_EPOCH + std::time::Duration::from_secs(1_690_000_000);
        assert_eq!(zone_at(&tz, summer), ("CEST".to_string(), 7200));
    }

    #[test]
    fn missing_clocksource_dir_still_reports_time() {
        let dir = tempfile::tempdir().expect("tempdir");
        let host = dir_host(dir.path());
        let mut c = Module::build(&Switch::default(), &host);
        let mut sink = Sink::new();
        let before = epoch_seconds(SystemTime::now());
        c.collect(&mut sink).expect("collect");
        let got = all_samples(&sink);
        assert_eq!(got.len(), 2);
        assert_eq!(got[0].0, "node_time_seconds");
        assert!(got[0].2 >= before && got[0].2 - before < 60.0, "{got:?}");
        assert_eq!(got[1].0, "node_time_zone_offset_seconds");
    }
}
