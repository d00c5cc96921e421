//! `rapl` collector: `node_rapl_<zone>_joules_total{index,path}` (or, with
//! `enable_zone_label`, one `node_rapl_joules_total{index,path,rapl_zone}`) from the Intel
//! RAPL energy counters under `/sys/class/powercap` (Documentation/power/powercap/powercap.rst).
//!
//! Every `/sys/class/powercap/<dir>` with a `name` file is a zone. A name ending in `-<N>`
//! (`package-0`) is split into the zone name and index `N`; a name without one (`dram`) gets as
//! index the number of zones of that name seen before it in directory order — node_exporter's
//! rule, kept so series match. The zone list, names and `max_energy_range_uj` only change with
//! hardware, so they are cached for 60 s; `energy_uj` is read on every scrape.

use std::io;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use serde::Deserialize;

use super::sysfs::rescan_if_due;
use crate::collect::registry::CollectorModule;
use crate::collect::{CollectError, Collector, MetricType, ParseError, Sink};
use crate::host::{HostError, HostRoot, list_dir, read_attr, read_into};

/// How long the zone list is reused.
const REFRESH: Duration = Duration::from_secs(60);

/// Registry entry.
pub struct Module;

/// `collectors.rapl`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Whether the collector runs.
    pub enabled: bool,
    /// One `node_rapl_joules_total` family with a `rapl_zone` label instead of one family per
    /// zone name (`--collector.rapl.enable-zone-label`).
    pub enable_zone_label: bool,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            enabled: true,
            enable_zone_label: false,
        }
    }
}

crate::collector_config!(Config, unchecked);

impl CollectorModule for Module {
    type Config = Config;
    fn build(cfg: &Config, host: &HostRoot) -> Box<dyn Collector> {
        Box::new(Rapl {
            dir: host.sys("class/powercap"),
            zone_label: cfg.enable_zone_label,
            zones: Vec::new(),
            families: Vec::new(),
            scanned: None,
            buf: String::with_capacity(32),
            values: Vec::new(),
        })
    }
}

/// One RAPL zone, as cached between refreshes.
#[derive(Debug, Clone, PartialEq)]
struct Zone {
    /// Zone name without its `-<N>` suffix.
    name: String,
    index: String,
    /// The zone directory, as the `path` label and to read `energy_uj` from.
    path: String,
    energy: PathBuf,
}

/// A family of the per-name layout: metric name, help, and the zones it holds.
struct Family {
    metric: String,
    help: String,
    zones: Vec<usize>,
}

struct Rapl {
    dir: PathBuf,
    zone_label: bool,
    zones: Vec<Zone>,
    families: Vec<Family>,
    scanned: Option<Instant>,
    buf: String,
    /// Joules per zone of the current scrape (reused).
    values: Vec<f64>,
}

/// Splits a zone's `name` file into its name and index: `package-0` → (`package`, 0);
/// a name without a numeric `-<N>` suffix takes `seen`, the count of earlier zones of that
/// name.
pub fn split_name(raw: &str, seen: &dyn Fn(&str) -> usize) -> (String, usize) {
    let mut parts = raw.split('-');
    if let (Some(base), Some(idx), None) = (parts.next(), parts.next(), parts.next())
        && let Ok(i) = idx.parse::<usize>()
    {
        return (base.to_string(), i);
    }
    (raw.to_string(), seen(raw))
}

/// A metric name made valid by replacing every character outside `[A-Za-z0-9_]` with `_`.
fn sanitize(name: &str) -> String {
    name.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// Parses an unsigned integer attribute.
fn parse_u64(text: &str) -> Result<u64, ParseError> {
    text.trim()
        .parse()
        .map_err(|_| ParseError::new(1, format!("invalid unsigned integer {text:?}")))
}

impl Rapl {
    fn rescan(&mut self) -> Result<(), CollectError> {
        self.zones.clear();
        self.families.clear();
        // How many zones of each (split) name were seen, for unindexed names.
        let mut counts: Vec<(String, usize)> = Vec::new();
        for entry in list_dir(&self.dir)? {
            let zdir = self.dir.join(&entry);
            // A directory without a readable `name` (the `intel-rapl` control type) is no zone.
            let Ok(Some(())) = read_attr(&zdir.join("name"), &mut self.buf) else {
                continue;
            };
            let raw = self.buf.trim().to_string();
            let lookup = |n: &str| counts.iter().find(|(k, _)| k == n).map_or(0, |(_, c)| *c);
            let (name, index) = split_name(&raw, &lookup);
            // node_exporter refuses the whole zone list when a zone's range is unreadable.
            let max = zdir.join("max_energy_range_uj");
            if !read_into(&max, &mut self.buf)? {
                return Err(HostError {
                    path: max,
                    source: io::Error::from(io::ErrorKind::NotFound),
                }
                .into());
            }
            parse_u64(&self.buf).map_err(|e| CollectError::parse(&max, e))?;
            match counts.iter_mut().find(|(k, _)| *k == name) {
                Some((_, c)) => *c = index + 1,
                None => counts.push((name.clone(), index + 1)),
            }
            let zone = Zone {
                index: index.to_string(),
                path: zdir.to_string_lossy().into_owned(),
                energy: zdir.join("energy_uj"),
                name,
            };
            let metric = ["node_rapl_", &sanitize(&zone.name), "_joules_total"].concat();
            let at = self.zones.len();
            match self.families.iter_mut().find(|f| f.metric == metric) {
                Some(f) => f.zones.push(at),
                None => self.families.push(Family {
                    help: ["Current RAPL ", &zone.name, " value in joules"].concat(),
                    metric,
                    zones: vec![at],
                }),
            }
            self.zones.push(zone);
        }
        Ok(())
    }

    /// Reads a zone's counter in joules; `None` when it is not readable by this user.
    fn joules(&mut self, zone: usize) -> Result<Option<f64>, CollectError> {
        let path = &self.zones[zone].energy;
        match read_into(path, &mut self.buf) {
            Ok(true) => {}
            Ok(false) => {
                return Err(HostError {
                    path: path.clone(),
                    source: io::Error::from(io::ErrorKind::NotFound),
                }
                .into());
            }
            Err(e) if e.source.kind() == io::ErrorKind::PermissionDenied => return Ok(None),
            Err(e) => return Err(e.into()),
        }
        let uj = parse_u64(&self.buf).map_err(|e| CollectError::parse(path, e))?;
        Ok(Some(uj as f64 / 1e6))
    }
}

impl Collector for Rapl {
    fn name(&self) -> &'static str {
        "rapl"
    }

    fn collect(&mut self, sink: &mut Sink) -> Result<(), CollectError> {
        rescan_if_due(self, |s| &mut s.scanned, REFRESH, Self::rescan)?;
        // Since Linux 5.10 `energy_uj` is root-only: node_exporter stops at the first zone it
        // cannot read (writing those before it, reporting no error), and so do we.
        let mut values = std::mem::take(&mut self.values);
        values.clear();
        for z in 0..self.zones.len() {
            match self.joules(z) {
                Ok(Some(v)) => values.push(v),
                Ok(None) => break,
                Err(e) => {
                    self.values = values;
                    return Err(e);
                }
            }
        }
        let read = values.len();
        if self.zone_label && read > 0 {
            let mut f = sink.family(
                "node_rapl_joules_total",
                "Current RAPL value in joules",
                MetricType::Counter,
            );
            for (z, v) in self.zones.iter().zip(&values) {
                let labels = [
                    ("index", z.index.as_str()),
                    ("path", z.path.as_str()),
                    ("rapl_zone", z.name.as_str()),
                ];
                f.sample(&labels, *v);
            }
        } else if read > 0 {
            for fam in &self.families {
                if fam.zones[0] >= read {
                    continue;
                }
                let mut f = sink.family(&fam.metric, &fam.help, MetricType::Counter);
                for &z in fam.zones.iter().filter(|&&z| z < read) {
                    let zone = &self.zones[z];
                    f.sample(&[("index", &zone.index), ("path", &zone.path)], values[z]);
                }
            }
        }
        self.values = values;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::collect::node::testutil::{self, collect_once, fixture_host, render};

    fn legacy() -> HostRoot {
        fixture_host("legacy")
    }

    #[test]
    fn names_split_into_zone_and_index() {
        let none = |_: &str| 0;
        assert_eq!(split_name("package-1", &none), ("package".into(), 1));
        assert_eq!(split_name("dram", &|_| 2), ("dram".into(), 2));
        assert_eq!(split_name("psys-x", &none), ("psys-x".into(), 0));
        assert_eq!(split_name("a-1-2", &none), ("a-1-2".into(), 0));
        assert_eq!(sanitize("psys-x"), "psys_x");
    }

    #[test]
    fn recorded_dual_socket_xeon() {
        let host = legacy();
        let dir = host.sys("class/powercap").to_string_lossy().into_owned();
        let sink = collect_once::<Module>(&Config::default(), &host);
        let names: Vec<_> = sink.families().map(|f| (f.name(), f.help())).collect();
        assert_eq!(
            names,
            [
                (
                    "node_rapl_package_joules_total",
                    "Current RAPL package value in joules"
                ),
                (
                    "node_rapl_dram_joules_total",
                    "Current RAPL dram value in joules"
                ),
            ]
        );
        assert_eq!(
            render(&sink),
            [
                format!(
                    "node_rapl_package_joules_total{{index=\"0\",path=\"{dir}/intel-rapl:0\"}} 183429.681562"
                ),
                format!(
                    "node_rapl_package_joules_total{{index=\"1\",path=\"{dir}/intel-rapl:1\"}} 171982.003641"
                ),
                format!(
                    "node_rapl_dram_joules_total{{index=\"0\",path=\"{dir}/intel-rapl:0:0\"}} 41274.01387"
                ),
                format!(
                    "node_rapl_dram_joules_total{{index=\"1\",path=\"{dir}/intel-rapl:1:0\"}} 39802.447301"
                ),
            ]
        );
    }

    #[test]
    fn zone_label_layout() {
        let host = legacy();
        let dir = host.sys("class/powercap").to_string_lossy().into_owned();
        let cfg = Config {
            enable_zone_label: true,
            ..Config::default()
        };
        let sink = collect_once::<Module>(&cfg, &host);
        let lines = render(&sink);
        assert_eq!(lines.len(), 4);
        assert_eq!(
            lines[1],
            format!(
                "node_rapl_joules_total{{index=\"0\",path=\"{dir}/intel-rapl:0:0\",rapl_zone=\"dram\"}} 41274.01387"
            )
        );
    }

    #[test]
    fn missing_directory_writes_nothing() {
        testutil::assert_empty_host_writes_nothing::<Module>();
    }
}
