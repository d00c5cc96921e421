//! `nvme` collector: `node_nvme_info{device,firmware_revision,model,serial,state}` from the
//! controller attributes in `/sys/class/nvme/<device>/` (drivers/nvme/host/core.c; see
//! Documentation/ABI/testing/sysfs-class-nvme).
//!
//! `firmware_rev`, `model` and `serial` do not change while a controller exists, so they are
//! read on a 60 s rescan of the class directory; `state` (`live`, `resetting`, `dead`, ...) is
//! read on every scrape. As in node_exporter 1.5, a controller without one of the four
//! attributes makes the collector write nothing at all, and values are whitespace-trimmed
//! (the kernel pads model and serial with spaces).

use std::path::PathBuf;
use std::time::{Duration, Instant};

use super::sysfs::{read_attribute, read_listed};
use crate::collect::registry::{CollectorModule, Switch};
use crate::collect::{CollectError, Collector, MetricType, Sink};
use crate::host::{HostRoot, list_dir};

/// How long listed controllers and their static attributes are reused.
const RESCAN: Duration = Duration::from_secs(60);

/// Registry entry.
pub struct Module;

impl CollectorModule for Module {
    type Config = Switch;
    fn build(_: &Switch, host: &HostRoot) -> Box<dyn Collector> {
        Box::new(Nvme {
            class_dir: host.sys("class/nvme"),
            controllers: Vec::new(),
            complete: true,
            scanned: None,
            buf: String::with_capacity(64),
        })
    }
}

struct Controller {
    name: String,
    state_path: PathBuf,
    firmware_revision: String,
    model: String,
    serial: String,
    state: String,
}

struct Nvme {
    class_dir: PathBuf,
    controllers: Vec<Controller>,
    /// False when a listed controller lacked a static attribute at the last rescan.
    complete: bool,
    scanned: Option<Instant>,
    buf: String,
}

impl Nvme {
    fn rescan(&mut self) -> Result<(), CollectError> {
        self.controllers.clear();
        self.complete = true;
        self.scanned = Some(Instant::now());
        for name in list_dir(&self.class_dir)? {
            let dir = self.class_dir.join(&name);
            let mut c = Controller {
                state_path: dir.join("state"),
                name,
                firmware_revision: String::new(),
                model: String::new(),
                serial: String::new(),
                state: String::new(),
            };
            for (file, out) in [
                ("firmware_rev", &mut c.firmware_revision),
                ("model", &mut c.model),
                ("serial", &mut c.serial),
            ] {
                if !read_attribute(&dir.join(file), &mut self.buf, out)? {
                    self.complete = false;
                }
            }
            self.controllers.push(c);
        }
        Ok(())
    }

    /// Reads every controller's state; false when one is missing.
    fn read_states(&mut self) -> Result<bool, CollectError> {
        let mut all = true;
        for c in &mut self.controllers {
            all &= read_attribute(&c.state_path, &mut self.buf, &mut c.state)?;
        }
        Ok(all)
    }
}

impl Collector for Nvme {
    fn name(&self) -> &'static str {
        "nvme"
    }

    fn collect(&mut self, sink: &mut Sink) -> Result<(), CollectError> {
        let due = self.scanned.is_none_or(|t| t.elapsed() >= RESCAN);
        // A device that went away (or was replaced) since the last rescan is looked for again.
        if !read_listed(self, due, Self::rescan, Self::read_states)? {
            return Ok(());
        }
        if !self.complete || self.controllers.is_empty() {
            return Ok(());
        }
        let mut f = sink.family(
            "node_nvme_info",
            "Non-numeric data from /sys/class/nvme/<device>, value is always 1.",
            MetricType::Gauge,
        );
        for c in &self.controllers {
            f.sample(
                &[
                    ("device", &c.name),
                    ("firmware_revision", &c.firmware_revision),
                    ("model", &c.model),
                    ("serial", &c.serial),
                    ("state", &c.state),
                ],
                1.0,
            );
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::collect::node::sysfs::attribute;
    use crate::collect::node::testutil::{self, dir_host, fixture_host, scrape};

    fn info_labels(sink: &Sink) -> Vec<String> {
        sink.families()
            .flat_map(|f| {
                f.samples()
                    .map(|s| s.labels.to_string())
                    .collect::<Vec<_>>()
            })
            .collect()
    }

    #[test]
    fn attributes_are_trimmed() {
        assert_eq!(
            attribute("SAMSUNG MZQLB1T9HAJR-00007              \n"),
            "SAMSUNG MZQLB1T9HAJR-00007"
        );
        assert_eq!(attribute("live\n"), "live");
    }

    #[test]
    fn recorded_rhel8_controllers() {
        let mut c = Module::build(&Switch::default(), &fixture_host("legacy"));
        let sink = scrape(c.as_mut());
        assert_eq!(
            info_labels(&sink),
            [
                r#"device="nvme0",firmware_revision="EDA7202Q",model="SAMSUNG MZQLB1T9HAJR-00007",serial="S439NC0R301234",state="live""#,
                r#"device="nvme1",firmware_revision="VDV10131",model="INTEL SSDPE2KX020T8",serial="PHLJ9123004L2P0BGN",state="resetting""#,
            ]
        );
    }

    #[test]
    fn state_is_read_every_scrape_and_a_missing_attribute_hides_all() {
        let dir = tempfile::tempdir().expect("tempdir");
        let ctrl = dir.path().join("class/nvme/nvme0");
        std::fs::create_dir_all(&ctrl).expect("mkdir");
        for (f, v) in [
            ("firmware_rev", "1.0\n"),
            ("model", "M  \n"),
            ("serial", "S\n"),
            ("state", "live\n"),
        ] {
            std::fs::write(ctrl.join(f), v).expect("write");
        }
        let host = dir_host(dir.path());
        let mut c = Module::build(&Switch::default(), &host);
        let sink = scrape(c.as_mut());
        assert_eq!(
            info_labels(&sink),
            [r#"device="nvme0",firmware_revision="1.0",model="M",serial="S",state="live""#]
        );

        std::fs::write(ctrl.join("state"), "resetting\n").expect("write");
        let sink = scrape(c.as_mut());
        assert_eq!(
            info_labels(&sink),
            [r#"device="nvme0",firmware_revision="1.0",model="M",serial="S",state="resetting""#]
        );

        std::fs::remove_file(ctrl.join("state")).expect("rm");
        let mut sink = Sink::new();
        c.collect(&mut sink).expect("missing is not an error");
        assert!(sink.is_empty());
    }

    #[test]
    fn missing_class_writes_nothing() {
        testutil::assert_empty_host_writes_nothing::<Module>();
    }
}
