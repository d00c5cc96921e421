//! `cpufreq` collector: `node_cpu_frequency_{,min_,max_}hertz` and
//! `node_cpu_scaling_frequency_{,min_,max_}hertz{cpu}` from
//! `/sys/devices/system/cpu/cpu<N>/cpufreq/` (kernel Documentation/admin-guide/pm/cpufreq.rst:
//! every `*_freq` attribute is one decimal number in kHz).
//!
//! node_exporter 1.5 has no governor series. `cpuinfo_min_freq`/`cpuinfo_max_freq` are the
//! hardware limits: they are read with the CPU list on a 60 s refresh. The current frequencies
//! and the scaling limits (which `cpupower` or thermald change at run time) are read on every
//! scrape. `cpuinfo_cur_freq` is root-only on most drivers and absent on intel_pstate; an
//! unreadable one is skipped as node_exporter does.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use super::sysfs::rescan_if_due;
use crate::collect::registry::{CollectorModule, Switch};
use crate::collect::{CollectError, Collector, MetricType, ParseError, Sink};
use crate::host::{HostError, HostRoot, list_dir, read_into};

/// Registry entry.
pub struct Module;

impl CollectorModule for Module {
    type Config = Switch;
    fn build(_: &Switch, host: &HostRoot) -> Box<dyn Collector> {
        Box::new(Cpufreq {
            cpu_dir: host.sys("devices/system/cpu"),
            cpus: Vec::new(),
            scanned: None,
            buf: String::with_capacity(32),
            now: Vec::new(),
        })
    }
}

/// How long the CPU list and hardware limits are reused.
const RESCAN: Duration = Duration::from_secs(60);

/// One CPU with a `cpufreq` directory.
struct Cpu {
    /// `N` of `cpuN`.
    id: String,
    /// The per-scrape attributes, in [`Current`] order.
    paths: [PathBuf; 4],
    /// `cpuinfo_min_freq`, `cpuinfo_max_freq` in kHz.
    hw_min: Option<u64>,
    hw_max: Option<u64>,
}

/// The attributes read on every scrape.
const PER_SCRAPE: [&str; 4] = [
    "cpuinfo_cur_freq",
    "scaling_cur_freq",
    "scaling_min_freq",
    "scaling_max_freq",
];

/// Per-scrape values in kHz: cpuinfo_cur, scaling_cur, scaling_min, scaling_max.
type Current = [Option<u64>; 4];

/// Picks one family's value for a CPU.
type Getter = fn(&Cpu, &Current) -> Option<u64>;

struct Cpufreq {
    cpu_dir: PathBuf,
    cpus: Vec<Cpu>,
    scanned: Option<Instant>,
    buf: String,
    now: Vec<Current>,
}

/// Parses one kHz attribute (`"3900000\n"`).
pub fn parse_khz(text: &str) -> Result<u64, ParseError> {
    let t = text.trim();
    t.parse()
        .map_err(|_| ParseError::new(1, format!("invalid frequency {t:?}")))
}

/// Reads a kHz attribute; missing or permission-denied is `None` (node_exporter skips both).
fn read_khz(path: &Path, buf: &mut String) -> Result<Option<u64>, CollectError> {
    match read_into(path, buf) {
        Ok(false) => Ok(None),
        Ok(true) => parse_khz(buf)
            .map(Some)
            .map_err(|e| CollectError::parse(path, e)),
        Err(HostError { source, .. }) if source.kind() == std::io::ErrorKind::PermissionDenied => {
            Ok(None)
        }
        Err(e) => Err(e.into()),
    }
}

/// True for `cpu<digit>...` (the glob `cpu[0-9]*`).
fn is_cpu_dir(name: &str) -> bool {
    name.strip_prefix("cpu")
        .is_some_and(|rest| rest.starts_with(|c: char| c.is_ascii_digit()))
}

impl Cpufreq {
    fn rescan(&mut self) -> Result<(), CollectError> {
        self.cpus.clear();
        for name in list_dir(&self.cpu_dir)? {
            if !is_cpu_dir(&name) {
                continue;
            }
            let dir = self.cpu_dir.join(&name).join("cpufreq");
            if !dir.is_dir() {
                continue;
            }
            let hw_min = read_khz(&dir.join("cpuinfo_min_freq"), &mut self.buf)?;
            let hw_max = read_khz(&dir.join("cpuinfo_max_freq"), &mut self.buf)?;
            self.cpus.push(Cpu {
                id: name["cpu".len()..].to_string(),
                paths: PER_SCRAPE.map(|f| dir.join(f)),
                hw_min,
                hw_max,
            });
        }
        Ok(())
    }
}

impl Collector for Cpufreq {
    fn name(&self) -> &'static str {
        "cpufreq"
    }

    fn collect(&mut self, sink: &mut Sink) -> Result<(), CollectError> {
        rescan_if_due(self, |s| &mut s.scanned, RESCAN, Self::rescan)?;
        // Read everything before writing, so a parse failure writes nothing (node_exporter
        // fails the whole collector).
        self.now.clear();
        for cpu in &self.cpus {
            let mut cur: Current = [None; 4];
            for (slot, path) in cur.iter_mut().zip(&cpu.paths) {
                *slot = read_khz(path, &mut self.buf)?;
            }
            self.now.push(cur);
        }
        let hz = |khz: u64| khz as f64 * 1000.0;
        let families: [(&str, &str, Getter); 6] = [
            (
                "node_cpu_frequency_hertz",
                "Current cpu thread frequency in hertz.",
                |_, c| c[0],
            ),
            (
                "node_cpu_frequency_min_hertz",
                "Minimum cpu thread frequency in hertz.",
                |cpu, _| cpu.hw_min,
            ),
            (
                "node_cpu_frequency_max_hertz",
                "Maximum cpu thread frequency in hertz.",
                |cpu, _| cpu.hw_max,
            ),
            (
                "node_cpu_scaling_frequency_hertz",
                "Current scaled CPU thread frequency in hertz.",
                |_, c| c[1],
            ),
            (
                "node_cpu_scaling_frequency_min_hertz",
                "Minimum scaled CPU thread frequency in hertz.",
                |_, c| c[2],
            ),
            (
                "node_cpu_scaling_frequency_max_hertz",
                "Maximum scaled CPU thread frequency in hertz.",
                |_, c| c[3],
            ),
        ];
        for (name, help, get) in families {
            if !self
                .cpus
                .iter()
                .zip(&self.now)
                .any(|(cpu, cur)| get(cpu, cur).is_some())
            {
                continue;
            }
            let mut fam = sink.family(name, help, MetricType::Gauge);
            for (cpu, cur) in self.cpus.iter().zip(&self.now) {
                if let Some(v) = get(cpu, cur) {
                    fam.sample(&[("cpu", &cpu.id)], hz(v));
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

    #[test]
    fn legacy_intel_pstate_tree() {
        let sys = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/hosts/legacy/sys");
        let mut c = Module::build(&Switch::default(), &sys_host(&sys));
        let sink = scrape(c.as_mut());
        let got = render(&sink);
        let expected: Vec<String> = [
            "node_cpu_frequency_min_hertz{cpu=\"0\"} 800000000",
            "node_cpu_frequency_min_hertz{cpu=\"1\"} 800000000",
            "node_cpu_frequency_min_hertz{cpu=\"2\"} 800000000",
            "node_cpu_frequency_min_hertz{cpu=\"3\"} 800000000",
            "node_cpu_frequency_max_hertz{cpu=\"0\"} 3900000000",
            "node_cpu_frequency_max_hertz{cpu=\"1\"} 3900000000",
            "node_cpu_frequency_max_hertz{cpu=\"2\"} 3900000000",
            "node_cpu_frequency_max_hertz{cpu=\"3\"} 3900000000",
            "node_cpu_scaling_frequency_hertz{cpu=\"0\"} 1200253000",
            "node_cpu_scaling_frequency_hertz{cpu=\"1\"} 3300117000",
            "node_cpu_scaling_frequency_hertz{cpu=\"2\"} 799968000",
            "node_cpu_scaling_frequency_hertz{cpu=\"3\"} 2899940000",
            "node_cpu_scaling_frequency_min_hertz{cpu=\"0\"} 800000000",
            "node_cpu_scaling_frequency_min_hertz{cpu=\"1\"} 800000000",
            "node_cpu_scaling_frequency_min_hertz{cpu=\"2\"} 800000000",
            "node_cpu_scaling_frequency_min_hertz{cpu=\"3\"} 800000000",
            "node_cpu_scaling_frequency_max_hertz{cpu=\"0\"} 3900000000",
            "node_cpu_scaling_frequency_max_hertz{cpu=\"1\"} 3900000000",
            "node_cpu_scaling_frequency_max_hertz{cpu=\"2\"} 3900000000",
            "node_cpu_scaling_frequency_max_hertz{cpu=\"3\"} 2800000000",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        assert_eq!(got, expected);
    }

    #[test]
    fn current_values_are_reread_but_limits_are_cached() {
        let dir = tempfile::tempdir().expect("tempdir");
        let f = dir.path().join("devices/system/cpu/cpu12/cpufreq");
        std::fs::create_dir_all(&f).expect("mkdir");
        std::fs::create_dir_all(dir.path().join("devices/system/cpu/cpufreq")).expect("mkdir");
        for (name, v) in [
            ("cpuinfo_cur_freq", "2000000\n"),
            ("cpuinfo_min_freq", "1000000\n"),
            ("scaling_cur_freq", "2100000\n"),
        ] {
            std::fs::write(f.join(name), v).expect("write");
        }
        let mut c = Module::build(&Switch::default(), &sys_host(dir.path()));
        let sink = scrape(c.as_mut());
        assert_eq!(
            render(&sink),
            vec![
                "node_cpu_frequency_hertz{cpu=\"12\"} 2000000000",
                "node_cpu_frequency_min_hertz{cpu=\"12\"} 1000000000",
                "node_cpu_scaling_frequency_hertz{cpu=\"12\"} 2100000000",
            ]
        );
        std::fs::write(f.join("scaling_cur_freq"), "2200000\n").expect("write");
        std::fs::write(f.join("cpuinfo_min_freq"), "900000\n").expect("write");
        let sink = scrape(c.as_mut());
        let got = render(&sink);
        assert_eq!(
            got[1],
            "node_cpu_frequency_min_hertz{cpu=\"12\"} 1000000000"
        );
        assert_eq!(
            got[2],
            "node_cpu_scaling_frequency_hertz{cpu=\"12\"} 2200000000"
        );

        std::fs::write(f.join("scaling_cur_freq"), "fast\n").expect("write");
        let mut sink = Sink::new();
        assert!(c.collect(&mut sink).is_err());
        assert!(sink.is_empty());
    }

    #[test]
    fn parse_khz_values() {
        assert_eq!(parse_khz("3900000\n"), Ok(3_900_000));
        assert_eq!(
            parse_khz("<unsupported>\n"),
            Err(ParseError::new(1, "invalid frequency \"<unsupported>\""))
        );
    }

    #[test]
    fn missing_tree_writes_nothing() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut c = Module::build(&Switch::default(), &sys_host(dir.path()));
        let mut sink = Sink::new();
        c.collect(&mut sink).expect("missing is not an error");
        assert!(sink.is_empty());
        // The modern (VM) tree has no cpufreq at all.
        let sys = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/hosts/modern/sys");
        let mut c = Module::build(&Switch::default(), &sys_host(&sys));
        c.collect(&mut sink).expect("no cpufreq is not an error");
        assert!(sink.is_empty());
    }
}
