//! `zfs` collector: ZFS on Linux kstats from `<procfs>/spl/kstat/zfs`, named and typed as
//! node_exporter 1.5 does:
//!
//! - `node_zfs_<subsystem>_<name>` (untyped, help `kstat.zfs.misc.<file>.<name>`) for every
//!   unsigned 64-bit (kstat type 4) row of `arcstats`, `abdstats`, `dmu_tx`, `dnodestats`, `fm`,
//!   `vdev_cache_stats`, `vdev_mirror_stats`, `xuio_stats`, `zfetchstats` and `zil` (`-` in a
//!   name becomes `_`). node_exporter 1.5 neither reads `dbufstats` nor signed (type 3) rows
//!   such as `arcstats` `memory_available_bytes`; later versions do;
//! - `node_zfs_zpool_<field>{zpool}` from each pool's `io` kstat (KSTAT_TYPE_IO: a header row of
//!   field names, then one row of values);
//! - `node_zfs_zpool_dataset_<name>{zpool,dataset}` from each pool's `objset-*` kstats (type-4
//!   rows only; the dataset is the third whitespace-separated field of the `dataset_name` row,
//!   so like node_exporter a name with a space is cut at the space);
//! - `node_zfs_zpool_state{zpool,state}` (gauge, 1 for the pool's current state, 0 for the
//!   other five of online, degraded, faulted, offline, removed, unavail) from each pool's
//!   `state` (1.5 does not list `suspended`).
//!
//! Kstat text format: OpenZFS `module/os/linux/spl/spl-kstat.c` (a header line, then
//! `name type data` and one row per value). Missing files are normal (the module is not
//! loaded, or the ZFS version lacks that kstat). The list of pools and datasets is refreshed
//! every 60 s.

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
        let base = host.proc("spl/kstat/zfs");
        Box::new(Zfs {
            kstats: KSTATS.map(|(_, file)| base.join(file)),
            base,
            pools: Vec::new(),
            listed: None,
            buf: String::with_capacity(8192),
            name: String::with_capacity(64),
        })
    }
}

/// How long the list of pools and datasets is reused.
const RELIST: Duration = Duration::from_secs(60);

/// (metric subsystem after `node_zfs_`, kstat file) of the global named kstats.
const KSTATS: [(&str, &str); 10] = [
    ("abd", "abdstats"),
    ("arc", "arcstats"),
    ("dmu_tx", "dmu_tx"),
    ("dnode", "dnodestats"),
    ("fm", "fm"),
    ("vdev_cache", "vdev_cache_stats"),
    ("vdev_mirror", "vdev_mirror_stats"),
    ("xuio", "xuio_stats"),
    ("zfetch", "zfetchstats"),
    ("zil", "zil"),
];

/// The pool states node_exporter reports, lower-cased.
const POOL_STATES: [&str; 6] = [
    "online", "degraded", "faulted", "offline", "removed", "unavail",
];

/// Is this the `name type data` row that starts the values of a named kstat?
fn is_named_header(line: &str) -> bool {
    let mut f = line.split_ascii_whitespace();
    (f.next(), f.next(), f.next(), f.next()) == (Some("name"), Some("type"), Some("data"), None)
}

/// Parses a named kstat, calling `f(name, value)` for every unsigned 64-bit row (type 4). A file
/// without the `name type data` row is an error.
pub fn parse_named(text: &str, mut f: impl FnMut(&str, u64)) -> Result<(), ParseError> {
    let mut started = false;
    for (n, line) in text.lines().enumerate() {
        if !started {
            started = is_named_header(line);
            continue;
        }
        let mut fields = line.split_ascii_whitespace();
        let (Some(name), Some(kind), Some(data)) = (fields.next(), fields.next(), fields.next())
        else {
            continue;
        };
        if kind == "4" {
            let v = data
                .parse()
                .map_err(|_| ParseError::new(n + 1, format!("invalid value {data:?} of {name}")))?;
            f(name, v);
        }
    }
    if !started {
        return Err(ParseError::new(1, "no \"name type data\" row"));
    }
    Ok(())
}

/// Parses a pool's `io` kstat (a row of field names starting with `nread`, then values), calling
/// `f(field, value)`.
pub fn parse_io(text: &str, mut f: impl FnMut(&str, u64)) -> Result<(), ParseError> {
    let mut header = None;
    for (n, line) in text.lines().enumerate() {
        let Some(names) = header else {
            let mut fields = line.split_ascii_whitespace();
            if fields.next() == Some("nread") && fields.count() >= 11 {
                header = Some(line);
            }
            continue;
        };
        let mut values = line.split_ascii_whitespace();
        for name in names.split_ascii_whitespace() {
            let v = values
                .next()
                .ok_or_else(|| ParseError::new(n + 1, format!("missing value of {name}")))?;
            let v = v
                .parse()
                .map_err(|_| ParseError::new(n + 1, format!("invalid value {v:?} of {name}")))?;
            f(name, v);
        }
    }
    Ok(())
}

/// Parses a dataset's `objset-*` kstat, calling `f(dataset, name, value)` for every type-4 row.
pub fn parse_objset(text: &str, mut f: impl FnMut(&str, &str, u64)) -> Result<(), ParseError> {
    let mut started = false;
    let mut dataset = "";
    for (n, line) in text.lines().enumerate() {
        if !started {
            started = is_named_header(line);
            continue;
        }
        let mut fields = line.split_ascii_whitespace();
        let (Some(name), Some(kind), Some(data)) = (fields.next(), fields.next(), fields.next())
        else {
            continue;
        };
        if name == "dataset_name" {
            dataset = data;
        } else if kind == "4" {
            let v = data
                .parse()
                .map_err(|_| ParseError::new(n + 1, format!("invalid value {data:?} of {name}")))?;
            f(dataset, name, v);
        }
    }
    if !started {
        return Err(ParseError::new(1, "no \"name type data\" row"));
    }
    Ok(())
}

/// The files of one pool (each may be absent).
struct Pool {
    name: String,
    io: PathBuf,
    state: PathBuf,
    objsets: Vec<PathBuf>,
}

struct Zfs {
    base: PathBuf,
    kstats: [PathBuf; 10],
    pools: Vec<Pool>,
    listed: Option<Instant>,
    buf: String,
    /// Metric name with `-` replaced (reused).
    name: String,
}

/// node_exporter's metric name for a kstat row: `-` becomes `_`.
fn metric_name<'a>(raw: &'a str, buf: &'a mut String) -> &'a str {
    if !raw.contains('-') {
        return raw;
    }
    buf.clear();
    buf.extend(raw.chars().map(|c| if c == '-' { '_' } else { c }));
    buf
}

impl Zfs {
    fn relist(&mut self) -> Result<(), CollectError> {
        let now = Instant::now();
        if self.listed.is_some_and(|t| now.duration_since(t) < RELIST) {
            return Ok(());
        }
        self.pools.clear();
        for name in list_dir(&self.base)? {
            let dir = self.base.join(&name);
            if !dir.is_dir() {
                continue;
            }
            let objsets = list_dir(&dir)?
                .into_iter()
                .filter(|f| f.starts_with("objset-"))
                .map(|f| dir.join(f))
                .collect();
            self.pools.push(Pool {
                io: dir.join("io"),
                state: dir.join("state"),
                objsets,
                name,
            });
        }
        self.listed = Some(now);
        Ok(())
    }
}

impl Collector for Zfs {
    fn name(&self) -> &'static str {
        "zfs"
    }

    fn collect(&mut self, sink: &mut Sink) -> Result<(), CollectError> {
        if !self.base.is_dir() {
            return Ok(()); // the zfs module is not loaded
        }
        let Self { buf, name, .. } = self;
        for ((sub, file), path) in KSTATS.iter().zip(&self.kstats) {
            if !read_into(path, buf)? {
                continue;
            }
            parse_named(buf, |raw, v| {
                let m = metric_name(raw, name);
                sink.family_parts(
                    &["node_zfs_", sub, "_", m],
                    &["kstat.zfs.misc.", file, ".", raw],
                    MetricType::Untyped,
                )
                .sample(&[], v as f64);
            })
            .map_err(|e| CollectError::parse(path, e))?;
        }

        self.relist()?;
        let Self {
            pools, buf, name, ..
        } = self;
        for pool in pools.iter() {
            if !read_into(&pool.io, buf)? {
                continue;
            }
            parse_io(buf, |raw, v| {
                let m = metric_name(raw, name);
                sink.family_parts(
                    &["node_zfs_zpool_", m],
                    &["kstat.zfs.misc.io.", raw],
                    MetricType::Untyped,
                )
                .sample(&[("zpool", &pool.name)], v as f64);
            })
            .map_err(|e| CollectError::parse(&pool.io, e))?;
        }
        for pool in pools.iter() {
            for path in &pool.objsets {
                if !read_into(path, buf)? {
                    continue;
                }
                parse_objset(buf, |dataset, raw, v| {
                    let m = metric_name(raw, name);
                    sink.family_parts(
                        &["node_zfs_zpool_dataset_", m],
                        &["kstat.zfs.misc.objset.", raw],
                        MetricType::Untyped,
                    )
                    .sample(&[("zpool", &pool.name), ("dataset", dataset)], v as f64);
                })
                .map_err(|e| CollectError::parse(path, e))?;
            }
        }
        // First line of each `state`, lower-cased into `name`, one pool after another.
        let mut states: Vec<(&str, std::ops::Range<usize>)> = Vec::new();
        name.clear();
        for pool in pools.iter() {
            if !read_into(&pool.state, buf)? {
                continue;
            }
            let start = name.len();
            let first = buf.lines().next().unwrap_or("");
            name.extend(first.chars().flat_map(char::to_lowercase));
            states.push((&pool.name, start..name.len()));
        }
        if !states.is_empty() {
            let mut fam = sink.family(
                "node_zfs_zpool_state",
                "kstat.zfs.misc.state",
                MetricType::Gauge,
            );
            for (pool, range) in &states {
                let actual = &name[range.clone()];
                for state in POOL_STATES {
                    let v = if actual == state { 1.0 } else { 0.0 };
                    fam.sample(&[("zpool", pool), ("state", state)], v);
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::collect::node::testutil::{self, collect_once};

    const LEGACY: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/hosts/legacy");

    fn named(text: &str) -> Vec<(String, u64)> {
        let mut v = Vec::new();
        parse_named(text, |n, x| v.push((n.to_string(), x))).expect("parse");
        v
    }

    #[test]
    fn recorded_named_kstats() {
        let arc = named(include_str!(
            "../../../tests/fixtures/hosts/legacy/proc/spl/kstat/zfs/arcstats"
        ));
        assert_eq!(arc.len(), 97);
        assert_eq!(arc[0], ("hits".to_string(), 1143922837));
        assert!(!arc.iter().any(|(n, _)| n == "memory_available_bytes"));
        assert!(arc.contains(&("c_max".to_string(), 33554432000)));
        let fm = named(include_str!(
            "../../../tests/fixtures/hosts/legacy/proc/spl/kstat/zfs/fm"
        ));
        assert_eq!(fm[0], ("erpt-dropped".to_string(), 18));
    }

    #[test]
    fn string_rows_are_skipped_and_headerless_files_are_errors() {
        let text = "1 1 0x01 2 0 1 2\nname type data\nlabel 7 x\nhits 4 5\nneg 3 -1\nbad 4 -1\n";
        let mut v = Vec::new();
        assert_eq!(
            parse_named(text, |n, x| v.push((n.to_string(), x))),
            Err(ParseError::new(6, "invalid value \"-1\" of bad"))
        );
        assert_eq!(v, [("hits".to_string(), 5)]);
        assert_eq!(
            parse_named("hits 4 5\n", |_, _| {}),
            Err(ParseError::new(1, "no \"name type data\" row"))
        );
    }

    #[test]
    fn recorded_pool_io_and_objset() {
        let mut io = Vec::new();
        parse_io(
            include_str!("../../../tests/fixtures/hosts/legacy/proc/spl/kstat/zfs/tank/io"),
            |n, v| io.push((n.to_string(), v)),
        )
        .expect("io");
        assert_eq!(io.len(), 12);
        assert_eq!(io[0], ("nread".to_string(), 1287310049280));
        assert_eq!(io[11], ("rcnt".to_string(), 1));
        let mut os = Vec::new();
        parse_objset(
            include_str!(
                "../../../tests/fixtures/hosts/legacy/proc/spl/kstat/zfs/tank/objset-0x2a1"
            ),
            |d, n, v| os.push((d.to_string(), n.to_string(), v)),
        )
        .expect("objset");
        assert_eq!(os.len(), 6);
        assert_eq!(os[3], ("tank/vm".to_string(), "nread".to_string(), 28672));
    }

    #[test]
    fn legacy_tree() {
        let host = HostRoot::new(
            format!("{LEGACY}/proc"),
            format!("{LEGACY}/sys"),
            format!("{LEGACY}/root"),
        );
        let sink = collect_once::<Module>(&Switch::default(), &host);
        let get = |name: &str| -> Vec<(String, f64)> {
            sink.families()
                .filter(|f| f.name() == name)
                .flat_map(|f| {
                    f.samples()
                        .map(|s| (s.labels.to_string(), s.value))
                        .collect::<Vec<_>>()
                })
                .collect()
        };
        assert_eq!(get("node_zfs_arc_hits"), [(String::new(), 1143922837.0)]);
        assert_eq!(get("node_zfs_fm_erpt_dropped"), [(String::new(), 18.0)]);
        assert_eq!(
            get("node_zfs_zpool_nwritten"),
            [
                (r#"zpool="backup""#.to_string(), 55214759936.0),
                (r#"zpool="tank""#.to_string(), 503117201408.0)
            ]
        );
        assert_eq!(
            get("node_zfs_zpool_dataset_nunlinks"),
            [
                (r#"zpool="backup",dataset="backup""#.to_string(), 0.0),
                (r#"zpool="tank",dataset="tank/vm""#.to_string(), 0.0),
                (r#"zpool="tank",dataset="tank""#.to_string(), 12.0),
                (r#"zpool="tank",dataset="tank/home""#.to_string(), 20113.0),
            ]
        );
        let state = get("node_zfs_zpool_state");
        assert_eq!(state.len(), 12);
        assert_eq!(
            state[1],
            (r#"zpool="backup",state="degraded""#.to_string(), 1.0)
        );
        assert_eq!(
            state[6],
            (r#"zpool="tank",state="online""#.to_string(), 1.0)
        );
        assert_eq!(state.iter().map(|s| s.1).sum::<f64>(), 2.0);
        let help = sink
            .families()
            .find(|f| f.name() == "node_zfs_fm_erpt_dropped")
            .map(|f| f.help());
        assert_eq!(help, Some("kstat.zfs.misc.fm.erpt-dropped"));
    }

    #[test]
    fn missing_directory_writes_nothing() {
        testutil::assert_empty_host_writes_nothing::<Module>();
    }
}
