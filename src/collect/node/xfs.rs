//! `xfs` collector: `node_xfs_*{device}` counters from the per-filesystem statistics
//! `<sysfs>/fs/xfs/<device>/stats/stats`, like node_exporter 1.5 (which ignores the global sum in
//! `/proc/fs/xfs/stat` and `<sysfs>/fs/xfs/stats/stats`).
//!
//! Format: one line per category, a label followed by counters
//! (<https://xfs.org/index.php/Runtime_Stats>, kernel `fs/xfs/xfs_stats.c`). As in node_exporter,
//! every category except `xpc` must hold 32-bit values, and the categories it knows must have
//! their documented field count (`vnodes` 7 or 8); otherwise the whole collection fails and
//! nothing is written. The list of mounted XFS filesystems is refreshed every 60 s.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use crate::collect::registry::{CollectorModule, Switch};
use crate::collect::{CollectError, Collector, MetricType, ParseError, Sink};
use crate::host::{HostRoot, list_dir, read_into};

/// Registry entry.
pub struct Module;

impl CollectorModule for Module {
    type Config = Switch;
    fn build(_: &Switch, host: &HostRoot) -> Box<dyn Collector> {
        Box::new(Xfs {
            dir: host.sys("fs/xfs"),
            devices: Vec::new(),
            listed: None,
            stats: Vec::new(),
            buf: String::with_capacity(2048),
        })
    }
}

/// How long the list of filesystems is reused before `<sysfs>/fs/xfs` is listed again.
const RELIST: Duration = Duration::from_secs(60);

/// One exported counter: the stats line it comes from, its position there, the metric name
/// (after `node_xfs_`) and its help text (node_exporter's wording).
struct Field {
    line: &'static str,
    index: usize,
    name: &'static str,
    help: &'static str,
}

const fn f(line: &'static str, index: usize, name: &'static str, help: &'static str) -> Field {
    Field {
        line,
        index,
        name,
        help,
    }
}

/// The exported counters, in node_exporter's order.
const FIELDS: [Field; 39] = [
    f(
        "extent_alloc",
        0,
        "extent_allocation_extents_allocated_total",
        "Number of extents allocated for a filesystem.",
    ),
    f(
        "extent_alloc",
        1,
        "extent_allocation_blocks_allocated_total",
        "Number of blocks allocated for a filesystem.",
    ),
    f(
        "extent_alloc",
        2,
        "extent_allocation_extents_freed_total",
        "Number of extents freed for a filesystem.",
    ),
    f(
        "extent_alloc",
        3,
        "extent_allocation_blocks_freed_total",
        "Number of blocks freed for a filesystem.",
    ),
    f(
        "abt",
        0,
        "allocation_btree_lookups_total",
        "Number of allocation B-tree lookups for a filesystem.",
    ),
    f(
        "abt",
        1,
        "allocation_btree_compares_total",
        "Number of allocation B-tree compares for a filesystem.",
    ),
    f(
        "abt",
        2,
        "allocation_btree_records_inserted_total",
        "Number of allocation B-tree records inserted for a filesystem.",
    ),
    f(
        "abt",
        3,
        "allocation_btree_records_deleted_total",
        "Number of allocation B-tree records deleted for a filesystem.",
    ),
    f(
        "blk_map",
        0,
        "block_mapping_reads_total",
        "Number of block map for read operations for a filesystem.",
    ),
    f(
        "blk_map",
        1,
        "block_mapping_writes_total",
        "Number of block map for write operations for a filesystem.",
    ),
    f(
        "blk_map",
        2,
        "block_mapping_unmaps_total",
        "Number of block unmaps (deletes) for a filesystem.",
    ),
    f(
        "blk_map",
        3,
        "block_mapping_extent_list_insertions_total",
        "Number of extent list insertions for a filesystem.",
    ),
    f(
        "blk_map",
        4,
        "block_mapping_extent_list_deletions_total",
        "Number of extent list deletions for a filesystem.",
    ),
    f(
        "blk_map",
        5,
        "block_mapping_extent_list_lookups_total",
        "Number of extent list lookups for a filesystem.",
    ),
    f(
        "blk_map",
        6,
        "block_mapping_extent_list_compares_total",
        "Number of extent list compares for a filesystem.",
    ),
    f(
        "bmbt",
        0,
        "block_map_btree_lookups_total",
        "Number of block map B-tree lookups for a filesystem.",
    ),
    f(
        "bmbt",
        1,
        "block_map_btree_compares_total",
        "Number of block map B-tree compares for a filesystem.",
    ),
    f(
        "bmbt",
        2,
        "block_map_btree_records_inserted_total",
        "Number of block map B-tree records inserted for a filesystem.",
    ),
    f(
        "bmbt",
        3,
        "block_map_btree_records_deleted_total",
        "Number of block map B-tree records deleted for a filesystem.",
    ),
    f(
        "dir",
        0,
        "directory_operation_lookup_total",
        "Number of file name directory lookups which miss the operating systems directory name lookup cache.",
    ),
    f(
        "dir",
        1,
        "directory_operation_create_total",
        "Number of times a new directory entry was created for a filesystem.",
    ),
    // node_exporter's help text says "created" for removals too; kept for exact equality.
    f(
        "dir",
        2,
        "directory_operation_remove_total",
        "Number of times an existing directory entry was created for a filesystem.",
    ),
    f(
        "dir",
        3,
        "directory_operation_getdents_total",
        "Number of times the directory getdents operation was performed for a filesystem.",
    ),
    f(
        "ig",
        0,
        "inode_operation_attempts_total",
        "Number of times the OS looked for an XFS inode in the inode cache.",
    ),
    f(
        "ig",
        1,
        "inode_operation_found_total",
        "Number of times the OS looked for and found an XFS inode in the inode cache.",
    ),
    f(
        "ig",
        2,
        "inode_operation_recycled_total",
        "Number of times the OS found an XFS inode in the cache, but could not use it as it was being recycled.",
    ),
    f(
        "ig",
        3,
        "inode_operation_missed_total",
        "Number of times the OS looked for an XFS inode in the cache, but did not find it.",
    ),
    f(
        "ig",
        4,
        "inode_operation_duplicates_total",
        "Number of times the OS tried to add a missing XFS inode to the inode cache, but found it had already been added by another process.",
    ),
    f(
        "ig",
        5,
        "inode_operation_reclaims_total",
        "Number of times the OS reclaimed an XFS inode from the inode cache to free memory for another purpose.",
    ),
    f(
        "ig",
        6,
        "inode_operation_attribute_changes_total",
        "Number of times the OS explicitly changed the attributes of an XFS inode.",
    ),
    // The kernel writes `rw <write calls> <read calls>`.
    f(
        "rw",
        1,
        "read_calls_total",
        "Number of read(2) system calls made to files in a filesystem.",
    ),
    f(
        "rw",
        0,
        "write_calls_total",
        "Number of write(2) system calls made to files in a filesystem.",
    ),
    f(
        "vnodes",
        0,
        "vnode_active_total",
        "Number of vnodes not on free lists for a filesystem.",
    ),
    f(
        "vnodes",
        1,
        "vnode_allocate_total",
        "Number of times vn_alloc called for a filesystem.",
    ),
    f(
        "vnodes",
        2,
        "vnode_get_total",
        "Number of times vn_get called for a filesystem.",
    ),
    f(
        "vnodes",
        3,
        "vnode_hold_total",
        "Number of times vn_hold called for a filesystem.",
    ),
    f(
        "vnodes",
        4,
        "vnode_release_total",
        "Number of times vn_rele called for a filesystem.",
    ),
    f(
        "vnodes",
        5,
        "vnode_reclaim_total",
        "Number of times vn_reclaim called for a filesystem.",
    ),
    f(
        "vnodes",
        6,
        "vnode_remove_total",
        "Number of times vn_remove called for a filesystem.",
    ),
];

/// The values of [`FIELDS`], in the same order.
pub type Stats = [u64; FIELDS.len()];

/// The field counts node_exporter checks, per category (a missing category reads as zeros).
fn expected_len(label: &str) -> Option<&'static [usize]> {
    Some(match label {
        "extent_alloc" | "abt" | "bmbt" | "dir" | "attr" => &[4],
        "blk_map" | "ig" => &[7],
        "trans" | "icluster" | "xpc" => &[3],
        "log" => &[5],
        "rw" => &[2],
        "vnodes" => &[7, 8],
        "buf" => &[9],
        _ => return None,
    })
}

/// Parses one `stats` file into the exported counters.
pub fn parse(text: &str) -> Result<Stats, ParseError> {
    let mut out = [0; FIELDS.len()];
    for (n, line) in text.lines().enumerate() {
        let lineno = n + 1;
        let mut fields = line.split_ascii_whitespace();
        let (Some(label), Some(_)) = (fields.next(), fields.clone().next()) else {
            continue;
        };
        let wide = label == "xpc";
        let mut count = 0;
        for v in fields.clone() {
            let ok = if wide {
                v.parse::<u64>().is_ok()
            } else {
                v.parse::<u32>().is_ok()
            };
            if !ok {
                return Err(ParseError::new(
                    lineno,
                    format!("invalid {label} value {v:?}"),
                ));
            }
            count += 1;
        }
        let Some(want) = expected_len(label) else {
            continue;
        };
        if !want.contains(&count) {
            return Err(ParseError::new(
                lineno,
                format!("{label}: {count} values, expected {want:?}"),
            ));
        }
        for (slot, field) in out.iter_mut().zip(FIELDS.iter()) {
            if field.line == label {
                // Validated above: present and numeric.
                *slot = fields
                    .clone()
                    .nth(field.index)
                    .and_then(|v| v.parse().ok())
                    .unwrap_or(0);
            }
        }
    }
    Ok(out)
}

struct Xfs {
    dir: PathBuf,
    /// (device name, path of its stats file), sorted by name.
    devices: Vec<(String, PathBuf)>,
    listed: Option<Instant>,
    /// Parsed statistics of this collection, parallel to `devices` (reused).
    stats: Vec<(usize, Stats)>,
    buf: String,
}

impl Xfs {
    fn relist(&mut self) -> Result<(), CollectError> {
        let now = Instant::now();
        if self.listed.is_some_and(|t| now.duration_since(t) < RELIST) {
            return Ok(());
        }
        self.devices.clear();
        for name in list_dir(&self.dir)? {
            let path = self.dir.join(&name).join("stats/stats");
            if path.is_file() {
                self.devices.push((name, path));
            }
        }
        self.listed = Some(now);
        Ok(())
    }
}

impl Collector for Xfs {
    fn name(&self) -> &'static str {
        "xfs"
    }

    fn collect(&mut self, sink: &mut Sink) -> Result<(), CollectError> {
        self.relist()?;
        self.stats.clear();
        for (i, (_, path)) in self.devices.iter().enumerate() {
            if !read_into(path, &mut self.buf)? {
                continue; // unmounted since the last listing
            }
            let s = parse(&self.buf).map_err(|e| CollectError::parse(path, e))?;
            self.stats.push((i, s));
        }
        if self.stats.is_empty() {
            return Ok(());
        }
        for (k, field) in FIELDS.iter().enumerate() {
            let mut fam = sink.family_parts(
                &["node_xfs_", field.name],
                &[field.help],
                MetricType::Counter,
            );
            for (i, s) in &self.stats {
                fam.sample(&[("device", &self.devices[*i].0)], s[k] as f64);
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::collect::node::testutil::{self, collect_once, fixture_host};

    fn value(s: &Stats, name: &str) -> u64 {
        let k = FIELDS
            .iter()
            .position(|f| f.name == name)
            .expect("known field");
        s[k]
    }

    #[test]
    fn recorded_legacy_filesystem() {
        let s = parse(include_str!(
            "../../../tests/fixtures/hosts/legacy/sys/fs/xfs/dm-0/stats/stats"
        ))
        .expect("parse");
        assert_eq!(
            value(&s, "extent_allocation_extents_allocated_total"),
            184327
        );
        assert_eq!(value(&s, "extent_allocation_blocks_freed_total"), 11873221);
        assert_eq!(
            value(&s, "block_mapping_extent_list_lookups_total"),
            124197063
        );
        assert_eq!(value(&s, "directory_operation_getdents_total"), 2214873);
        assert_eq!(value(&s, "read_calls_total"), 21885407);
        assert_eq!(value(&s, "write_calls_total"), 73310219);
        assert_eq!(value(&s, "inode_operation_found_total"), 8112457);
        assert_eq!(value(&s, "inode_operation_attribute_changes_total"), 91236);
        assert_eq!(value(&s, "vnode_active_total"), 11112);
        assert_eq!(value(&s, "vnode_remove_total"), 402875);
    }

    #[test]
    fn modern_global_stats_parse_but_are_not_a_device() {
        let s = parse(include_str!(
            "../../../tests/fixtures/hosts/modern/sys/fs/xfs/stats/stats"
        ))
        .expect("parse");
        assert_eq!(value(&s, "read_calls_total"), 0);
        let host = fixture_host("modern");
        let sink = collect_once::<Module>(&Switch::default(), &host);
        assert!(sink.is_empty());
    }

    #[test]
    fn legacy_tree_has_one_series_per_device() {
        let host = fixture_host("legacy");
        let sink = collect_once::<Module>(&Switch::default(), &host);
        assert_eq!(sink.families().len(), 39);
        let fam = sink
            .families()
            .find(|f| f.name() == "node_xfs_read_calls_total")
            .expect("family");
        let got: Vec<_> = fam.samples().map(|s| (s.labels, s.value)).collect();
        assert_eq!(
            got,
            [
                (r#"device="dm-0""#, 21885407.0),
                (r#"device="dm-2""#, 1.0),
                (r#"device="sda1""#, 310.0)
            ]
        );
    }

    #[test]
    fn wrong_field_counts_and_overflow_are_errors() {
        assert_eq!(
            parse("rw 1 2 3\n"),
            Err(ParseError::new(1, "rw: 3 values, expected [2]"))
        );
        assert_eq!(
            parse("rw 1 2\nabt 4294967296 0 0 0\n"),
            Err(ParseError::new(2, "invalid abt value \"4294967296\""))
        );
        // xpc is 64-bit; unknown categories are not checked for length; a 7-field vnodes is ok.
        let s = parse("xpc 4294967296 1 2\nqm 1\nvnodes 1 2 3 4 5 6 7\n").expect("ok");
        assert_eq!(value(&s, "vnode_remove_total"), 7);
    }

    #[test]
    fn missing_directory_writes_nothing() {
        testutil::assert_empty_host_writes_nothing::<Module>();
    }
}
