//! `bcache` collector: `node_bcache_*` from `<sysfs>/fs/bcache/<set uuid>/`, as node_exporter
//! 1.5 (kernel docs: `Documentation/admin-guide/bcache.rst`, "Sysfs - cache set", "- backing
//! device", "- cache device").
//!
//! Per cache set (`{uuid}`): the set's attributes and `internal/` counters; per backing device
//! `bdev<N>` (`{uuid,backing_device}`): `dirty_data`, the controller state of
//! `writeback_rate_debug` and the `stats_total/` counters; per cache device `cache<N>`
//! (`{uuid,cache_device}`): `io_errors`, `metadata_written`, `written` and, only with
//! `priority_stats: true` (node_exporter's `--collector.bcache.priorityStats`, off by default
//! because the kernel walks every bucket to produce it), the unused and metadata percentages of
//! `priority_stats`.
//!
//! Values use bcache's `bch_hprint` format (`1.2G`: binary multipliers, and a fraction that is
//! a count of 1/1024 printed in decimal); they are decoded exactly as node_exporter does
//! (`<int>.<frac>` = int + frac/10.24, times the multiplier, truncated), so the numbers match
//! even where that decoding is approximate. `btree_read_average_duration_us` is scaled by 1e-9
//! like node_exporter (which treats it as nanoseconds). The layout (sets and their devices) is
//! refreshed every 60 s; values are read on every scrape.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde::Deserialize;

use crate::collect::registry::CollectorModule;
use crate::collect::{CollectError, Collector, MetricType, ParseError, Sink};
use crate::host::{HostRoot, list_dir, read_into};

/// Registry entry.
pub struct Module;

/// `collectors.bcache`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Whether the collector runs.
    pub enabled: bool,
    /// Also read each cache device's `priority_stats` (expensive for the kernel).
    pub priority_stats: bool,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            enabled: true,
            priority_stats: false,
        }
    }
}

crate::collector_config!(Config, unchecked);

impl CollectorModule for Module {
    type Config = Config;
    fn build(cfg: &Config, host: &HostRoot) -> Box<dyn Collector> {
        Box::new(Bcache {
            dir: host.sys("fs/bcache"),
            priority_stats: cfg.priority_stats,
            sets: Vec::new(),
            listed: None,
            buf: String::with_capacity(512),
        })
    }
}

/// How long the layout is reused.
const RELIST: Duration = Duration::from_secs(60);

/// (file relative to its directory, metric name after `node_bcache_`, help, type, scale).
type Def = (&'static str, &'static str, &'static str, MetricType, f64);

const G: MetricType = MetricType::Gauge;
const C: MetricType = MetricType::Counter;

const SET: [Def; 10] = [
    (
        "average_key_size",
        "average_key_size_sectors",
        "Average data per key in the btree (sectors).",
        G,
        1.0,
    ),
    (
        "btree_cache_size",
        "btree_cache_size_bytes",
        "Amount of memory currently used by the btree cache.",
        G,
        1.0,
    ),
    (
        "cache_available_percent",
        "cache_available_percent",
        "Percentage of cache device without dirty data, usable for writeback (may contain clean cached data).",
        G,
        1.0,
    ),
    ("congested", "congested", "Congestion.", G, 1.0),
    (
        "root_usage_percent",
        "root_usage_percent",
        "Percentage of the root btree node in use (tree depth increases if too high).",
        G,
        1.0,
    ),
    ("tree_depth", "tree_depth", "Depth of the btree.", G, 1.0),
    (
        "internal/active_journal_entries",
        "active_journal_entries",
        "Number of journal entries that are newer than the index.",
        G,
        1.0,
    ),
    (
        "internal/btree_nodes",
        "btree_nodes",
        "Total nodes in the btree.",
        G,
        1.0,
    ),
    (
        "internal/btree_read_average_duration_us",
        "btree_read_average_duration_seconds",
        "Average btree read duration.",
        G,
        1e-9,
    ),
    (
        "internal/cache_read_races",
        "cache_read_races_total",
        "Counts instances where while data was being read from the cache, the bucket was reused and invalidated - i.e. where the pointer was stale after the read completed.",
        C,
        1.0,
    ),
];

/// Backing device values: `dirty_data`, five from `writeback_rate_debug` (file name empty),
/// then `stats_total/`.
const BDEV: [Def; 13] = [
    (
        "dirty_data",
        "dirty_data_bytes",
        "Amount of dirty data for this backing device in the cache.",
        G,
        1.0,
    ),
    (
        "",
        "dirty_target_bytes",
        "Current dirty data target threshold for this backing device in bytes.",
        G,
        1.0,
    ),
    (
        "",
        "writeback_rate",
        "Current writeback rate for this backing device in bytes.",
        G,
        1.0,
    ),
    (
        "",
        "writeback_rate_proportional_term",
        "Current result of proportional controller, part of writeback rate",
        G,
        1.0,
    ),
    (
        "",
        "writeback_rate_integral_term",
        "Current result of integral controller, part of writeback rate",
        G,
        1.0,
    ),
    (
        "",
        "writeback_change",
        "Last writeback rate change step for this backing device.",
        G,
        1.0,
    ),
    (
        "stats_total/bypassed",
        "bypassed_bytes_total",
        "Amount of IO (both reads and writes) that has bypassed the cache.",
        C,
        1.0,
    ),
    (
        "stats_total/cache_hits",
        "cache_hits_total",
        "Hits counted per individual IO as bcache sees them.",
        C,
        1.0,
    ),
    (
        "stats_total/cache_misses",
        "cache_misses_total",
        "Misses counted per individual IO as bcache sees them.",
        C,
        1.0,
    ),
    (
        "stats_total/cache_bypass_hits",
        "cache_bypass_hits_total",
        "Hits for IO intended to skip the cache.",
        C,
        1.0,
    ),
    (
        "stats_total/cache_bypass_misses",
        "cache_bypass_misses_total",
        "Misses for IO intended to skip the cache.",
        C,
        1.0,
    ),
    (
        "stats_total/cache_miss_collisions",
        "cache_miss_collisions_total",
        "Instances where data insertion from cache miss raced with write (data already present).",
        C,
        1.0,
    ),
    (
        "stats_total/cache_readaheads",
        "cache_readaheads_total",
        "Count of times readahead occurred.",
        C,
        1.0,
    ),
];

/// Cache device values; the last two come from `priority_stats` (file name empty).
const CACHE: [Def; 5] = [
    (
        "io_errors",
        "io_errors",
        "Number of errors that have occurred, decayed by io_error_halflife.",
        G,
        1.0,
    ),
    (
        "metadata_written",
        "metadata_written_bytes_total",
        "Sum of all non data writes (btree writes and all other metadata).",
        C,
        1.0,
    ),
    (
        "written",
        "written_bytes_total",
        "Sum of all data that has been written to the cache.",
        C,
        1.0,
    ),
    (
        "",
        "priority_stats_unused_percent",
        "The percentage of the cache that doesn't contain any data.",
        G,
        1.0,
    ),
    (
        "",
        "priority_stats_metadata_percent",
        "Bcache's metadata overhead.",
        G,
        1.0,
    ),
];

/// `<int>[.<frac>]` where the fraction counts 1/1024ths printed in decimal (node_exporter's
/// reading: frac / 10.24).
fn pseudo_float(s: &str) -> Option<f64> {
    let mut parts = s.split('.');
    let int: f64 = parts.next()?.parse().ok()?;
    match parts.next() {
        None => Some(int),
        Some(frac) => Some(int + frac.parse::<f64>().ok()? / 10.24),
    }
}

/// Decodes a `bch_hprint` value (`512`, `1.2G`, `24.3k`) into an integer, truncating.
pub fn dehumanize(s: &str) -> Option<u64> {
    let last = *s.as_bytes().last()?;
    let v = if last > b'9' {
        let exp = match last {
            b'k' => 10,
            b'M' => 20,
            b'G' => 30,
            b'T' => 40,
            b'P' => 50,
            b'E' => 60,
            b'Z' => 70,
            b'Y' => 80,
            // Like node_exporter, an unknown suffix multiplies by zero.
            _ => -1,
        };
        let mul = if exp < 0 { 0.0 } else { 2f64.powi(exp) };
        pseudo_float(&s[..s.len() - 1])? * mul
    } else {
        s.parse::<f64>().ok()?
    };
    Some(v as u64)
}

/// [`dehumanize`] with an optional leading `-`.
pub fn dehumanize_signed(s: &str) -> Option<i64> {
    match s.strip_prefix('-') {
        Some(rest) => Some((dehumanize(rest)? as i64).wrapping_neg()),
        None => Some(dehumanize(s)? as i64),
    }
}

/// The values node_exporter exports from `writeback_rate_debug`, in [`BDEV`] order (target,
/// rate, proportional, integral, change).
pub fn parse_writeback_rate_debug(text: &str) -> Result<[f64; 5], ParseError> {
    let mut out = [0.0; 5];
    for (n, line) in text.lines().enumerate() {
        let Some(last) = line.split_ascii_whitespace().last() else {
            continue;
        };
        let bad = || ParseError::new(n + 1, format!("invalid value {last:?}"));
        let per_sec = last.strip_suffix("/sec").unwrap_or(last);
        if line.starts_with("rate:") {
            out[1] = dehumanize(per_sec).ok_or_else(bad)? as f64;
        } else if line.starts_with("dirty:") {
            dehumanize(last).ok_or_else(bad)?;
        } else if line.starts_with("target:") {
            out[0] = dehumanize(last).ok_or_else(bad)? as f64;
        } else if line.starts_with("proportional:") {
            out[2] = dehumanize_signed(last).ok_or_else(bad)? as f64;
        } else if line.starts_with("integral:") {
            out[3] = dehumanize_signed(last).ok_or_else(bad)? as f64;
        } else if line.starts_with("change:") {
            out[4] = dehumanize_signed(per_sec).ok_or_else(bad)? as f64;
        } else if line.starts_with("next io:") {
            let ms = last.strip_suffix("ms").unwrap_or(last);
            ms.parse::<i64>().map_err(|_| bad())?;
        }
    }
    Ok(out)
}

/// (unused percent, metadata percent) from `priority_stats`.
pub fn parse_priority_stats(text: &str) -> Result<[f64; 2], ParseError> {
    let mut out = [0.0; 2];
    for (n, line) in text.lines().enumerate() {
        let slot = if line.starts_with("Unused:") {
            0
        } else if line.starts_with("Metadata:") {
            1
        } else {
            continue;
        };
        let last = line.split_ascii_whitespace().last().unwrap_or("");
        let v = last.strip_suffix('%').unwrap_or(last);
        out[slot] = v
            .parse::<u64>()
            .map_err(|_| ParseError::new(n + 1, format!("invalid percentage {last:?}")))?
            as f64;
    }
    Ok(out)
}

struct Dev<const N: usize> {
    name: String,
    dir: PathBuf,
    values: [f64; N],
}

struct Set {
    uuid: String,
    dir: PathBuf,
    values: [f64; 10],
    bdevs: Vec<Dev<13>>,
    caches: Vec<Dev<5>>,
    /// Whether this scrape read the set completely.
    ok: bool,
}

struct Bcache {
    dir: PathBuf,
    priority_stats: bool,
    sets: Vec<Set>,
    listed: Option<Instant>,
    buf: String,
}

/// Reads one `bch_hprint` attribute. Like node_exporter, the last byte (the newline) is dropped.
/// `Ok(None)` when the file is missing.
fn read_value(dir: &Path, file: &str, buf: &mut String) -> Result<Option<u64>, CollectError> {
    let path = dir.join(file);
    if !read_into(&path, buf)? {
        return Ok(None);
    }
    buf.pop();
    dehumanize(buf).map(Some).ok_or_else(|| {
        CollectError::parse(&path, ParseError::new(1, format!("invalid value {buf:?}")))
    })
}

fn devices<const N: usize>(set_dir: &Path, prefix: &str) -> Result<Vec<Dev<N>>, CollectError> {
    Ok(list_dir(set_dir)?
        .into_iter()
        .filter(|n| {
            n.strip_prefix(prefix)
                .is_some_and(|rest| rest.starts_with(|c: char| c.is_ascii_digit()))
        })
        .map(|name| Dev {
            dir: set_dir.join(&name),
            name,
            values: [0.0; N],
        })
        .collect())
}

impl Bcache {
    fn relist(&mut self) -> Result<(), CollectError> {
        let now = Instant::now();
        if self.listed.is_some_and(|t| now.duration_since(t) < RELIST) {
            return Ok(());
        }
        self.sets.clear();
        for uuid in list_dir(&self.dir)? {
            if !uuid.contains('-') {
                continue; // `register`, `register_quiet`, ...
            }
            let dir = self.dir.join(&uuid);
            if !dir.is_dir() {
                continue;
            }
            self.sets.push(Set {
                bdevs: devices(&dir, "bdev")?,
                caches: devices(&dir, "cache")?,
                uuid,
                dir,
                values: [0.0; 10],
                ok: false,
            });
        }
        self.listed = Some(now);
        Ok(())
    }

    /// Reads every value of one set; `Ok(false)` when a file is missing (the set or one of its
    /// devices is going away).
    fn read_set(set: &mut Set, priority: bool, buf: &mut String) -> Result<bool, CollectError> {
        for (slot, (file, .., scale)) in set.values.iter_mut().zip(&SET) {
            let Some(v) = read_value(&set.dir, file, buf)? else {
                return Ok(false);
            };
            *slot = v as f64 * scale;
        }
        for bdev in &mut set.bdevs {
            for (slot, (file, ..)) in bdev.values.iter_mut().zip(&BDEV) {
                if file.is_empty() {
                    continue;
                }
                let Some(v) = read_value(&bdev.dir, file, buf)? else {
                    return Ok(false);
                };
                *slot = v as f64;
            }
            let path = bdev.dir.join("writeback_rate_debug");
            if !read_into(&path, buf)? {
                return Ok(false);
            }
            let wrd = parse_writeback_rate_debug(buf).map_err(|e| CollectError::parse(&path, e))?;
            bdev.values[1..6].copy_from_slice(&wrd);
        }
        for cache in &mut set.caches {
            for (slot, (file, ..)) in cache.values.iter_mut().zip(&CACHE[..3]) {
                let Some(v) = read_value(&cache.dir, file, buf)? else {
                    return Ok(false);
                };
                *slot = v as f64;
            }
            if priority {
                let path = cache.dir.join("priority_stats");
                if !read_into(&path, buf)? {
                    return Ok(false);
                }
                let p = parse_priority_stats(buf).map_err(|e| CollectError::parse(&path, e))?;
                cache.values[3..5].copy_from_slice(&p);
            }
        }
        Ok(true)
    }
}

impl Collector for Bcache {
    fn name(&self) -> &'static str {
        "bcache"
    }

    fn collect(&mut self, sink: &mut Sink) -> Result<(), CollectError> {
        self.relist()?;
        for set in &mut self.sets {
            set.ok = Self::read_set(set, self.priority_stats, &mut self.buf)?;
        }
        let sets = || self.sets.iter().filter(|s| s.ok);
        if sets().next().is_none() {
            return Ok(());
        }
        for (k, (_, name, help, kind, _)) in SET.iter().enumerate() {
            let mut fam = sink.family_parts(&["node_bcache_", name], &[help], *kind);
            for set in sets() {
                fam.sample(&[("uuid", &set.uuid)], set.values[k]);
            }
        }
        for (k, (_, name, help, kind, _)) in BDEV.iter().enumerate() {
            if sets().all(|s| s.bdevs.is_empty()) {
                break;
            }
            let mut fam = sink.family_parts(&["node_bcache_", name], &[help], *kind);
            for set in sets() {
                for d in &set.bdevs {
                    fam.sample(
                        &[("uuid", &set.uuid), ("backing_device", &d.name)],
                        d.values[k],
                    );
                }
            }
        }
        let n_cache = if self.priority_stats { 5 } else { 3 };
        for (k, (_, name, help, kind, _)) in CACHE[..n_cache].iter().enumerate() {
            if sets().all(|s| s.caches.is_empty()) {
                break;
            }
            let mut fam = sink.family_parts(&["node_bcache_", name], &[help], *kind);
            for set in sets() {
                for d in &set.caches {
                    fam.sample(
                        &[("uuid", &set.uuid), ("cache_device", &d.name)],
                        d.values[k],
                    );
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::collect::node::testutil::{self, collect_once, fixture_host};

    const UUID: &str = "6c5e6fdb-3c42-44e8-a1d9-b0c1cc4f3e8d";

    fn collect(cfg: &Config) -> Sink {
        let host = fixture_host("legacy");
        collect_once::<Module>(cfg, &host)
    }

    fn value(sink: &Sink, name: &str) -> Vec<f64> {
        sink.families()
            .filter(|f| f.name() == name)
            .flat_map(|f| f.samples().map(|s| s.value).collect::<Vec<_>>())
            .collect()
    }

    #[test]
    fn hprint_values() {
        assert_eq!(dehumanize("87"), Some(87));
        assert_eq!(dehumanize("24.3k"), Some(24876)); // (24 + 3/10.24) * 1024
        assert_eq!(dehumanize("1.2G"), Some(1283457024));
        assert_eq!(dehumanize("998.7G"), Some(1072328343552));
        assert_eq!(dehumanize("5x"), Some(0));
        assert_eq!(dehumanize(""), None);
        assert_eq!(dehumanize_signed("-283.1k"), Some(-289892));
        assert_eq!(
            parse_writeback_rate_debug(include_str!(
                "../../../tests/fixtures/hosts/legacy/sys/fs/bcache/6c5e6fdb-3c42-44e8-a1d9-b0c1cc4f3e8d/bdev0/writeback_rate_debug"
            )),
            Ok([13304332288.0, 4096.0, -289892.0, 0.0, -1324.0])
        );
        assert_eq!(
            parse_priority_stats(include_str!(
                "../../../tests/fixtures/hosts/legacy/sys/fs/bcache/6c5e6fdb-3c42-44e8-a1d9-b0c1cc4f3e8d/cache0/priority_stats"
            )),
            Ok([12.0, 1.0])
        );
        assert!(parse_priority_stats("Unused: lots\n").is_err());
    }

    #[test]
    fn legacy_tree() {
        let sink = collect(&Config::default());
        assert_eq!(
            value(&sink, "node_bcache_btree_cache_size_bytes"),
            [1283457024.0]
        );
        assert_eq!(
            value(&sink, "node_bcache_btree_read_average_duration_seconds"),
            [1521.0 * 1e-9]
        );
        // The backing device's own stats_total, not the set's.
        assert_eq!(value(&sink, "node_bcache_cache_hits_total"), [481220117.0]);
        assert_eq!(
            value(&sink, "node_bcache_written_bytes_total"),
            [2065879269376.0]
        );
        assert!(value(&sink, "node_bcache_priority_stats_unused_percent").is_empty());
        let labels: Vec<_> = sink
            .families()
            .find(|f| f.name() == "node_bcache_io_errors")
            .map(|f| f.samples().map(|s| s.labels.to_string()).collect())
            .unwrap_or_default();
        assert_eq!(labels, [format!(r#"uuid="{UUID}",cache_device="cache0""#)]);
    }

    #[test]
    fn priority_stats_when_enabled() {
        let sink = collect(&Config {
            enabled: true,
            priority_stats: true,
        });
        assert_eq!(
            value(&sink, "node_bcache_priority_stats_unused_percent"),
            [12.0]
        );
        assert_eq!(
            value(&sink, "node_bcache_priority_stats_metadata_percent"),
            [1.0]
        );
    }

    #[test]
    fn missing_directory_writes_nothing() {
        testutil::assert_empty_host_writes_nothing::<Module>();
    }
}
