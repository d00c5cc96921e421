//! `dmi` collector: `node_dmi_info` (constant 1) labelled with the SMBIOS identification
//! strings the kernel exports in `/sys/class/dmi/id` (Documentation/ABI/testing/sysfs-class-dmi
//! in recent trees; drivers/firmware/dmi-id.c).
//!
//! The strings only change with a firmware update, which needs a reboot, so they are read on a
//! 60 s refresh rather than every scrape. Attributes that are missing (older kernels have no
//! `bios_release`) or unreadable (the serials and `product_uuid` are root-only) are left out of
//! the label set, as node_exporter does.

use std::io;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::collect::registry::{CollectorModule, Switch};
use crate::collect::{CollectError, Collector, MetricType, Sink};
use crate::host::{HostError, HostRoot, is_missing};

/// How long the cached strings are reused.
const REFRESH: Duration = Duration::from_secs(60);

/// `(label, attribute file)` in label order (alphabetical, as node_exporter sorts them).
const ATTRS: [(&str, &str); 20] = [
    ("bios_date", "bios_date"),
    ("bios_release", "bios_release"),
    ("bios_vendor", "bios_vendor"),
    ("bios_version", "bios_version"),
    ("board_asset_tag", "board_asset_tag"),
    ("board_name", "board_name"),
    ("board_serial", "board_serial"),
    ("board_vendor", "board_vendor"),
    ("board_version", "board_version"),
    ("chassis_asset_tag", "chassis_asset_tag"),
    ("chassis_serial", "chassis_serial"),
    ("chassis_vendor", "chassis_vendor"),
    ("chassis_version", "chassis_version"),
    ("product_family", "product_family"),
    ("product_name", "product_name"),
    ("product_serial", "product_serial"),
    ("product_sku", "product_sku"),
    ("product_uuid", "product_uuid"),
    ("product_version", "product_version"),
    ("system_vendor", "sys_vendor"),
];

const HELP: &str = "A metric with a constant '1' value labeled by bios_date, bios_release, \
bios_vendor, bios_version, board_asset_tag, board_name, board_serial, board_vendor, \
board_version, chassis_asset_tag, chassis_serial, chassis_vendor, chassis_version, \
product_family, product_name, product_serial, product_sku, product_uuid, product_version, \
system_vendor if provided by DMI.";

/// Registry entry.
pub struct Module;

impl CollectorModule for Module {
    type Config = Switch;
    fn build(_: &Switch, host: &HostRoot) -> Box<dyn Collector> {
        Box::new(Dmi {
            dir: host.sys("class/dmi/id"),
            labels: Vec::new(),
            scanned: None,
        })
    }
}

struct Dmi {
    dir: PathBuf,
    /// `(label, value)` of the attributes present, in label order.
    labels: Vec<(&'static str, String)>,
    scanned: Option<Instant>,
}

/// Turns a sysfs string attribute into a label value the way node_exporter does: surrounding
/// whitespace trimmed, each run of invalid UTF-8 bytes replaced by one U+FFFD.
pub(crate) fn attr_text(raw: &[u8]) -> String {
    let raw = raw.trim_ascii();
    let mut out = String::with_capacity(raw.len());
    let mut in_bad_run = false;
    for chunk in raw.utf8_chunks() {
        if !chunk.valid().is_empty() {
            out.push_str(chunk.valid());
            in_bad_run = false;
        }
        if !chunk.invalid().is_empty() && !in_bad_run {
            out.push('\u{FFFD}');
            in_bad_run = true;
        }
    }
    out
}

/// Reads one attribute's bytes; `None` when it is missing or not readable by this user.
fn read_bytes(path: &Path) -> Result<Option<Vec<u8>>, HostError> {
    match std::fs::read(path) {
        Ok(b) => Ok(Some(b)),
        Err(e) if is_missing(&e) || e.kind() == io::ErrorKind::PermissionDenied => Ok(None),
        Err(e) => Err(HostError {
            path: path.to_path_buf(),
            source: e,
        }),
    }
}

impl Dmi {
    fn rescan(&mut self) -> Result<(), CollectError> {
        self.labels.clear();
        let mut path = self.dir.clone();
        for (label, file) in ATTRS {
            path.push(file);
            let bytes = read_bytes(&path);
            path.pop();
            if let Some(b) = bytes? {
                self.labels.push((label, attr_text(&b)));
            }
        }
        Ok(())
    }
}

impl Collector for Dmi {
    fn name(&self) -> &'static str {
        "dmi"
    }

    fn collect(&mut self, sink: &mut Sink) -> Result<(), CollectError> {
        let now = Instant::now();
        if self
            .scanned
            .is_none_or(|t| now.duration_since(t) >= REFRESH)
        {
            self.rescan()?;
            self.scanned = Some(now);
        }
        if self.labels.is_empty() {
            return Ok(());
        }
        let mut pairs = [("", ""); ATTRS.len()];
        for (slot, (k, v)) in pairs.iter_mut().zip(&self.labels) {
            *slot = (k, v.as_str());
        }
        sink.family("node_dmi_info", HELP, MetricType::Gauge)
            .sample(&pairs[..self.labels.len()], 1.0);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::collect::node::testutil::{collect_once, dir_host, fixture_host};

    fn collect(host: &HostRoot) -> Sink {
        collect_once::<Module>(&Switch::default(), host)
    }

    #[test]
    fn recorded_supermicro_server() {
        let host = fixture_host("legacy");
        let sink = collect(&host);
        let fam = sink.families().next().expect("node_dmi_info");
        assert_eq!(fam.name(), "node_dmi_info");
        let s = fam.samples().next().expect("one sample");
        assert_eq!(s.value, 1.0);
        assert_eq!(
            s.labels,
            "bios_date=\"03/15/2022\",bios_vendor=\"American Megatrends Inc.\",\
bios_version=\"3.6\",board_asset_tag=\"Default string\",board_name=\"X11DPi-N\",\
board_serial=\"ZM19AS012345\",board_vendor=\"Supermicro\",board_version=\"1.10\",\
chassis_asset_tag=\"Default string\",chassis_serial=\"C8250LK27A01234\",\
chassis_vendor=\"Supermicro\",chassis_version=\"0123456789\",product_family=\"Family\",\
product_name=\"SYS-6029P-TR\",product_serial=\"S314159265358\",\
product_sku=\"Default string\",product_uuid=\"00000000-0000-0000-0000-3cecef0a1b2c\",\
product_version=\"0123456789\",system_vendor=\"Supermicro\""
        );
    }

    #[test]
    fn strings_are_trimmed_and_invalid_utf8_runs_replaced_once() {
        assert_eq!(attr_text(b"  X11DPi-N \n"), "X11DPi-N");
        assert_eq!(attr_text(b"a\xffb\xfe\xfdc\n"), "a\u{FFFD}b\u{FFFD}c");
        assert_eq!(attr_text(b"\n"), "");
    }

    #[test]
    fn empty_attribute_keeps_its_label_and_cache_holds_for_a_minute() {
        let dir = tempfile::tempdir().expect("tempdir");
        let id = dir.path().join("class/dmi/id");
        std::fs::create_dir_all(&id).expect("mkdir");
        std::fs::write(id.join("board_asset_tag"), "\n").expect("write");
        std::fs::write(id.join("sys_vendor"), "QEMU\n").expect("write");
        let host = dir_host(dir.path());
        let mut c = Module::build(&Switch::default(), &host);
        let mut sink = Sink::new();
        c.collect(&mut sink).expect("collect");
        std::fs::write(id.join("sys_vendor"), "changed\n").expect("write");
        c.collect(&mut sink).expect("collect");
        let labels: Vec<_> = sink
            .families()
            .flat_map(|f| {
                f.samples()
                    .map(|s| s.labels.to_string())
                    .collect::<Vec<_>>()
            })
            .collect();
        let want = "board_asset_tag=\"\",system_vendor=\"QEMU\"";
        assert_eq!(labels, [want, want]);
    }

    #[test]
    fn missing_directory_writes_nothing() {
        let dir = tempfile::tempdir().expect("tempdir");
        let host = dir_host(dir.path());
        assert!(collect(&host).is_empty());
    }
}
