//! `btrfs` collector: `node_btrfs_*` from `<sysfs>/fs/btrfs/<fsid>/` (kernel
//! `Documentation/ABI/testing/sysfs-fs-btrfs`), as node_exporter 1.5 writes them when it cannot
//! query a filesystem with ioctls.
//!
//! Per filesystem (`{uuid}`: `metadata_uuid` when present and non-empty, else the directory
//! name): `info{label}`, `global_rsv_size_bytes`, per block group type
//! (`data`/`metadata`/`system`) `reserved_bytes`, and per allocation profile directory
//! (`single`, `dup`, `raid1`, ...) `used_bytes`, `size_bytes` and `allocation_ratio` (1 for
//! single/raid0, 2 for dup/raid1/raid10, n/(n-1) and n/(n-2) devices for raid5/raid6, 0 for
//! others such as raid1c3, exactly as node_exporter 1.5); per device `device_size_bytes{device}`
//! (`devices/<dev>/size` × 512). Like node_exporter, a value that is missing or not a number
//! reads as 0.
//!
//! Not implemented: node_exporter 1.5 additionally opens each mounted btrfs filesystem and uses
//! the `BTRFS_IOC_FS_INFO`, `BTRFS_IOC_DEV_INFO` and `BTRFS_IOC_GET_DEV_STATS` ioctls; when that
//! works it writes `device_errors_total{type}`, `device_unused_bytes` and labels the device
//! series with `btrfs_dev_uuid` as well. Those need `unsafe` ioctl calls (forbidden in this
//! crate) and a real mount, so on hosts with mounted btrfs sonde's `device_size_bytes` lacks
//! the `btrfs_dev_uuid` label and the error counters are absent.
//!
//! The layout (filesystems, labels, devices, profile directories) is refreshed every 60 s;
//! sizes are read on every scrape.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::collect::registry::{CollectorModule, Switch};
use crate::collect::{CollectError, Collector, MetricType, Sink};
use crate::host::{HostError, HostRoot, is_missing, list_dir, read_attr};

/// Registry entry.
pub struct Module;

impl CollectorModule for Module {
    type Config = Switch;
    fn build(_: &Switch, host: &HostRoot) -> Box<dyn Collector> {
        Box::new(Btrfs {
            dir: host.sys("fs/btrfs"),
            filesystems: Vec::new(),
            listed: None,
            buf: String::with_capacity(64),
        })
    }
}

/// How long the layout is reused.
const RELIST: Duration = Duration::from_secs(60);

/// The block group types, in node_exporter's order.
const GROUP_TYPES: [&str; 3] = ["data", "metadata", "system"];

/// Bytes per sector in `devices/<dev>/size` (always 512 on Linux).
const SECTOR: u64 = 512;

/// node_exporter 1.5's allocation ratio of a profile on `devices` devices.
pub fn allocation_ratio(profile: &str, devices: usize) -> f64 {
    let n = devices as f64;
    match profile {
        "single" | "raid0" => 1.0,
        "dup" | "raid1" | "raid10" => 2.0,
        "raid5" => n / (n - 1.0),
        "raid6" => n / (n - 2.0),
        _ => 0.0,
    }
}

/// A number as node_exporter reads it here: surrounding whitespace trimmed, anything that is not
/// a decimal `u64` is 0.
pub fn parse_value(text: &str) -> u64 {
    text.trim().parse().unwrap_or(0)
}

struct Profile {
    name: String,
    total: PathBuf,
    used: PathBuf,
    ratio: f64,
    values: [u64; 2],
}

struct Group {
    reserved: PathBuf,
    reserved_value: u64,
    profiles: Vec<Profile>,
}

struct Filesystem {
    uuid: String,
    label: String,
    global_rsv_size: PathBuf,
    global_rsv_value: u64,
    groups: Vec<(&'static str, Group)>,
    /// (device name, its `size` file, size in bytes this scrape).
    devices: Vec<(String, PathBuf, u64)>,
}

struct Btrfs {
    dir: PathBuf,
    filesystems: Vec<Filesystem>,
    listed: Option<Instant>,
    buf: String,
}

/// Subdirectories of `dir` that are real directories (not symlinks), sorted; `None` when `dir`
/// is missing.
fn subdirs(dir: &Path) -> Result<Option<Vec<String>>, HostError> {
    if !dir.is_dir() {
        return Ok(None);
    }
    let mut out = Vec::new();
    for name in list_dir(dir)? {
        match std::fs::symlink_metadata(dir.join(&name)) {
            Ok(m) if m.is_dir() => out.push(name),
            Ok(_) => {}
            Err(e) if is_missing(&e) => {}
            Err(e) => {
                return Err(HostError {
                    path: dir.join(&name),
                    source: e,
                });
            }
        }
    }
    Ok(Some(out))
}

/// Reads a value file; missing or garbled is 0.
fn value(path: &Path, buf: &mut String) -> Result<u64, HostError> {
    Ok(match read_attr(path, buf)? {
        Some(()) => parse_value(buf),
        None => 0,
    })
}

fn text(path: &Path, buf: &mut String) -> Result<String, HostError> {
    Ok(match read_attr(path, buf)? {
        Some(()) => buf.trim().to_string(),
        None => String::new(),
    })
}

impl Btrfs {
    /// Reads the layout of one filesystem; `None` when it is (being) unmounted.
    fn layout(&mut self, name: &str) -> Result<Option<Filesystem>, CollectError> {
        let dir = self.dir.join(name);
        let buf = &mut self.buf;
        if !dir.join("features").is_dir() {
            return Ok(None);
        }
        let devices_dir = dir.join("devices");
        if !devices_dir.is_dir() {
            return Ok(None);
        }
        let devices: Vec<_> = list_dir(&devices_dir)?
            .into_iter()
            .map(|d| {
                let size = devices_dir.join(&d).join("size");
                (d, size, 0)
            })
            .collect();
        let alloc = dir.join("allocation");
        let mut groups = Vec::with_capacity(3);
        for ty in GROUP_TYPES {
            let gdir = alloc.join(ty);
            let Some(names) = subdirs(&gdir)? else {
                return Ok(None);
            };
            let profiles = names
                .into_iter()
                .map(|p| Profile {
                    total: gdir.join(&p).join("total_bytes"),
                    used: gdir.join(&p).join("used_bytes"),
                    ratio: allocation_ratio(&p, devices.len()),
                    name: p,
                    values: [0; 2],
                })
                .collect();
            groups.push((
                ty,
                Group {
                    reserved: gdir.join("bytes_reserved"),
                    reserved_value: 0,
                    profiles,
                },
            ));
        }
        let mut uuid = text(&dir.join("metadata_uuid"), buf)?;
        if uuid.is_empty() {
            uuid = name.to_string();
        }
        Ok(Some(Filesystem {
            uuid,
            label: text(&dir.join("label"), buf)?,
            global_rsv_size: alloc.join("global_rsv_size"),
            global_rsv_value: 0,
            groups,
            devices,
        }))
    }

    fn relist(&mut self) -> Result<(), CollectError> {
        let now = Instant::now();
        if self.listed.is_some_and(|t| now.duration_since(t) < RELIST) {
            return Ok(());
        }
        self.filesystems.clear();
        for name in list_dir(&self.dir)? {
            if !name.contains('-') {
                continue; // `features` and other global entries
            }
            if let Some(fs) = self.layout(&name)? {
                self.filesystems.push(fs);
            }
        }
        self.listed = Some(now);
        Ok(())
    }
}

impl Collector for Btrfs {
    fn name(&self) -> &'static str {
        "btrfs"
    }

    fn collect(&mut self, sink: &mut Sink) -> Result<(), CollectError> {
        self.relist()?;
        if self.filesystems.is_empty() {
            return Ok(());
        }
        let buf = &mut self.buf;
        for fs in &mut self.filesystems {
            fs.global_rsv_value = value(&fs.global_rsv_size, buf)?;
            for (_, g) in &mut fs.groups {
                g.reserved_value = value(&g.reserved, buf)?;
                for p in &mut g.profiles {
                    p.values = [value(&p.used, buf)?, value(&p.total, buf)?];
                }
            }
            for (_, path, size) in &mut fs.devices {
                *size = value(path, buf)?.wrapping_mul(SECTOR);
            }
        }
        let fss = &self.filesystems;

        let mut fam = sink.family(
            "node_btrfs_info",
            "Filesystem information",
            MetricType::Gauge,
        );
        for fs in fss {
            fam.sample(&[("uuid", &fs.uuid), ("label", &fs.label)], 1.0);
        }
        let mut fam = sink.family(
            "node_btrfs_global_rsv_size_bytes",
            "Size of global reserve.",
            MetricType::Gauge,
        );
        for fs in fss {
            fam.sample(&[("uuid", &fs.uuid)], fs.global_rsv_value as f64);
        }
        let mut fam = sink.family(
            "node_btrfs_reserved_bytes",
            "Amount of space reserved for a data type",
            MetricType::Gauge,
        );
        for fs in fss {
            for (ty, g) in &fs.groups {
                fam.sample(
                    &[("uuid", &fs.uuid), ("block_group_type", ty)],
                    g.reserved_value as f64,
                );
            }
        }
        type Pick = fn(&Profile) -> f64;
        let per_profile: [(&str, &str, Pick); 3] = [
            (
                "node_btrfs_used_bytes",
                "Amount of used space by a layout/data type",
                |p| p.values[0] as f64,
            ),
            (
                "node_btrfs_size_bytes",
                "Amount of space allocated for a layout/data type",
                |p| p.values[1] as f64,
            ),
            (
                "node_btrfs_allocation_ratio",
                "Data allocation ratio for a layout/data type",
                |p| p.ratio,
            ),
        ];
        let any_profile = fss
            .iter()
            .any(|fs| fs.groups.iter().any(|(_, g)| !g.profiles.is_empty()));
        for (name, help, pick) in per_profile {
            if !any_profile {
                break;
            }
            let mut fam = sink.family(name, help, MetricType::Gauge);
            for fs in fss {
                for (ty, g) in &fs.groups {
                    for p in &g.profiles {
                        fam.sample(
                            &[
                                ("uuid", &fs.uuid),
                                ("block_group_type", ty),
                                ("mode", &p.name),
                            ],
                            pick(p),
                        );
                    }
                }
            }
        }
        if fss.iter().any(|fs| !fs.devices.is_empty()) {
            let mut fam = sink.family(
                "node_btrfs_device_size_bytes",
                "Size of a device that is part of the filesystem.",
                MetricType::Gauge,
            );
            for fs in fss {
                for (dev, _, size) in &fs.devices {
                    fam.sample(&[("uuid", &fs.uuid), ("device", dev)], *size as f64);
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::collect::node::testutil::{collect_once, fixture_host, samples};

    fn collect(tree: &str) -> Sink {
        let host = fixture_host(tree);
        collect_once::<Module>(&Switch::default(), &host)
    }

    #[test]
    fn ratios_and_values_like_node_exporter() {
        assert_eq!(allocation_ratio("raid5", 3), 1.5);
        assert_eq!(allocation_ratio("raid6", 3), 3.0);
        assert_eq!(allocation_ratio("raid10", 4), 2.0);
        assert_eq!(allocation_ratio("raid1c3", 3), 0.0);
        assert_eq!(parse_value(" 77 \n"), 77);
        assert_eq!(parse_value("abc"), 0);
        assert_eq!(parse_value("-5"), 0);
    }

    #[test]
    fn legacy_tree() {
        let sink = collect("legacy");
        let a = "0fb3c0a8-2a52-4e55-9b8e-1f6a5d7b3c21";
        let b = "7d1e54f2-63b9-4c3a-8a3e-2b9c0d4e5f61";
        assert_eq!(
            samples(&sink, "node_btrfs_info"),
            [
                (format!(r#"uuid="{a}",label="backup-pool""#), 1.0),
                (format!(r#"uuid="{b}",label="""#), 1.0),
            ]
        );
        assert_eq!(
            samples(&sink, "node_btrfs_device_size_bytes")[0],
            (format!(r#"uuid="{a}",device="sdc""#), 4000787030016.0)
        );
        let ratio = samples(&sink, "node_btrfs_allocation_ratio");
        assert_eq!(
            ratio[0],
            (
                format!(r#"uuid="{a}",block_group_type="data",mode="raid5""#),
                1.5
            )
        );
        assert_eq!(
            samples(&sink, "node_btrfs_used_bytes")[3],
            (
                format!(r#"uuid="{b}",block_group_type="data",mode="single""#),
                88021147648.0
            )
        );
        assert_eq!(
            samples(&sink, "node_btrfs_reserved_bytes")[1],
            (
                format!(r#"uuid="{a}",block_group_type="metadata""#),
                49152.0
            )
        );
    }

    #[test]
    fn module_loaded_without_filesystems_writes_nothing() {
        assert!(collect("modern").is_empty());
        let dir = tempfile::tempdir().expect("tempdir");
        let root = dir.path().to_string_lossy().into_owned();
        assert!(collect(&root).is_empty());
    }
}
