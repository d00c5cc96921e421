//! `filesystem` collector: `node_filesystem_*` (size, free, avail, files, files_free, readonly,
//! device_error) for every mount of the host, from `/proc/1/mounts` (falling back to
//! `/proc/mounts`; format in proc(5) and fstab(5)) and statfs(2) of each mount point under the
//! configured rootfs, with node_exporter 1.5's semantics.
//!
//! Hung mounts (a dead NFS server): statfs runs on a small persistent worker thread and the
//! collector waits at most `statfs_timeout_seconds` for it. On a timeout the mount reports
//! `device_error 1`, is remembered as stuck, and the worker blocked in the kernel is abandoned
//! (a replacement is started for the other mounts). A stuck mount is not stat'ed again until its
//! abandoned call has returned, so at most one thread per hung mount ever exists, and the
//! normal path reuses one thread instead of spawning one per mount per scrape.
//!
//! The parsed mount list (with the exclusion patterns already applied) is cached while the
//! mounts file content is byte-for-byte unchanged.

use std::collections::{HashMap, HashSet};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde::Deserialize;

use crate::collect::registry::CollectorModule;
use crate::collect::{CollectError, Collector, MetricType, ParseError, Sink};
use crate::config::{Issue, Pattern, positive};
use crate::host::{HostRoot, read_into};

/// node_exporter 1.5's default `--collector.filesystem.mount-points-exclude`.
pub const DEFAULT_MOUNT_POINTS_EXCLUDE: &str =
    "^/(dev|proc|run/credentials/.+|sys|var/lib/docker/.+|var/lib/containers/storage/.+)($|/)";

/// node_exporter 1.5's default `--collector.filesystem.fs-types-exclude`.
pub const DEFAULT_FS_TYPES_EXCLUDE: &str = "^(autofs|binfmt_misc|bpf|cgroup2?|configfs|debugfs|devpts|devtmpfs|fusectl|hugetlbfs|iso9660|mqueue|nsfs|overlay|proc|procfs|pstore|rpc_pipefs|securityfs|selinuxfs|squashfs|sysfs|tracefs)$";

/// Registry entry.
pub struct Module;

/// `collectors.filesystem`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Whether the collector runs.
    pub enabled: bool,
    /// Mount points (as the host sees them) to leave out; unanchored regex.
    pub mount_points_exclude: Pattern,
    /// Filesystem types to leave out; unanchored regex.
    pub fs_types_exclude: Pattern,
    /// How long one statfs may take before the mount is reported as failed and treated as
    /// stuck (node_exporter's hidden `--collector.filesystem.mount-timeout`).
    pub statfs_timeout_seconds: f64,
}

fn default_pattern(src: &str) -> Pattern {
    // The defaults are constants checked by a unit test; the fallback is never reached.
    Pattern::new(src).unwrap_or_else(|_| Pattern::new("$^").expect("trivial regex"))
}

impl Default for Config {
    fn default() -> Self {
        Self {
            enabled: true,
            mount_points_exclude: default_pattern(DEFAULT_MOUNT_POINTS_EXCLUDE),
            fs_types_exclude: default_pattern(DEFAULT_FS_TYPES_EXCLUDE),
            statfs_timeout_seconds: 5.0,
        }
    }
}

impl Config {
    fn check(&self, key: &str, issues: &mut Vec<Issue>) {
        positive(
            issues,
            &format!("{key}.statfs_timeout_seconds"),
            self.statfs_timeout_seconds,
        );
    }
}

crate::collector_config!(Config);

/// The statfs(2) fields node_exporter reports.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FsStat {
    /// `f_blocks`.
    pub blocks: u64,
    /// `f_bfree`.
    pub bfree: u64,
    /// `f_bavail`.
    pub bavail: u64,
    /// `f_bsize` (node_exporter multiplies block counts by this, not by `f_frsize`).
    pub bsize: u64,
    /// `f_files`.
    pub files: u64,
    /// `f_ffree`.
    pub ffree: u64,
}

/// The statfs implementation; injectable so tests can simulate hung mounts.
pub type StatfsFn = Arc<dyn Fn(&Path) -> io::Result<FsStat> + Send + Sync>;

/// statfs(2) through rustix.
pub fn real_statfs(path: &Path) -> io::Result<FsStat> {
    let s = rustix::fs::statfs(path)?;
    Ok(FsStat {
        blocks: s.f_blocks as u64,
        bfree: s.f_bfree as u64,
        bavail: s.f_bavail as u64,
        bsize: s.f_bsize as u64,
        files: s.f_files as u64,
        ffree: s.f_ffree as u64,
    })
}

impl CollectorModule for Module {
    type Config = Config;
    fn build(cfg: &Config, host: &HostRoot) -> Box<dyn Collector> {
        Box::new(Filesystem::new(cfg, host, Arc::new(real_statfs)))
    }
}

/// One line of a mounts file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mount {
    /// The mounted device (first field).
    pub device: String,
    /// The mount point, with fstab(5)'s `\040` (space) and `\011` (tab) decoded, as read.
    pub mount_point: String,
    /// The filesystem type.
    pub fs_type: String,
    /// The mount options include `ro`.
    pub read_only: bool,
}

/// Parses a `/proc/<pid>/mounts` file. A line with fewer than four fields is an error (as in
/// node_exporter). Only `\040` and `\011` are decoded in mount points, like node_exporter.
pub fn parse_mounts(text: &str) -> Result<Vec<Mount>, ParseError> {
    let mut out = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let mut f = line.split_ascii_whitespace();
        let (Some(device), Some(mp), Some(fs_type), Some(options)) =
            (f.next(), f.next(), f.next(), f.next())
        else {
            return Err(ParseError::new(
                n + 1,
                format!("malformed mount line {line:?}"),
            ));
        };
        out.push(Mount {
            device: device.to_string(),
            mount_point: mp.replace("\\040", " ").replace("\\011", "\t"),
            fs_type: fs_type.to_string(),
            read_only: options.split(',').any(|o| o == "ro"),
        });
    }
    Ok(out)
}

/// A mount kept after exclusion and de-duplication, with its labels and statfs path.
#[derive(Debug, Clone, PartialEq)]
struct Target {
    device: String,
    /// As the host sees it (rootfs prefix stripped).
    mount_point: String,
    fs_type: String,
    read_only: bool,
    stat_path: PathBuf,
}

impl Target {
    fn labels(&self) -> [(&str, &str); 3] {
        [
            ("device", self.device.as_str()),
            ("fstype", self.fs_type.as_str()),
            ("mountpoint", self.mount_point.as_str()),
        ]
    }
}

/// Applies the exclusion patterns (to the host-view mount point and the type) and keeps the
/// first of several mounts with the same labels, as node_exporter reports each label set once.
fn targets(
    mounts: Vec<Mount>,
    host: &HostRoot,
    mp_exclude: &Pattern,
    fs_exclude: &Pattern,
) -> Vec<Target> {
    let mut seen = HashSet::new();
    let mut out = Vec::new();
    for m in mounts {
        let mount_point = host.host_view(&m.mount_point);
        if mp_exclude.is_match(&mount_point) || fs_exclude.is_match(&m.fs_type) {
            continue;
        }
        if !seen.insert((m.device.clone(), mount_point.clone(), m.fs_type.clone())) {
            continue;
        }
        out.push(Target {
            stat_path: host.rootfs_mount_point(&mount_point),
            device: m.device,
            mount_point,
            fs_type: m.fs_type,
            read_only: m.read_only,
        });
    }
    out
}

/// What became of one statfs.
#[derive(Debug)]
pub enum StatOutcome {
    /// The call returned data.
    Ok(FsStat),
    /// The call failed (missing mount point, permission, ...).
    Failed(io::Error),
    /// The call did not return within the timeout; the mount is now stuck.
    TimedOut,
    /// An earlier call on this mount has still not returned; no new call was made.
    Stuck,
}

struct Job {
    path: PathBuf,
    seq: u64,
}

struct Worker {
    jobs: mpsc::Sender<Job>,
    replies: mpsc::Receiver<(u64, io::Result<FsStat>)>,
    /// Set by the worker each time a statfs returns; for an abandoned worker, "the hung call
    /// has returned".
    returned: Arc<AtomicBool>,
}

/// Runs statfs calls on a persistent worker thread with a timeout, and remembers stuck mounts.
pub struct Statter {
    statfs: StatfsFn,
    timeout: Duration,
    worker: Option<Worker>,
    seq: u64,
    /// Stuck mount point → the abandoned worker's "returned" flag.
    stuck: HashMap<String, Arc<AtomicBool>>,
    /// Worker threads started so far (observable by tests).
    pub spawned: usize,
}

impl Statter {
    /// A statter using `statfs` with a per-call `timeout`.
    pub fn new(statfs: StatfsFn, timeout: Duration) -> Self {
        Self {
            statfs,
            timeout,
            worker: None,
            seq: 0,
            stuck: HashMap::new(),
            spawned: 0,
        }
    }

    fn spawn(&mut self) -> io::Result<Worker> {
        let (job_tx, job_rx) = mpsc::channel::<Job>();
        let (reply_tx, reply_rx) = mpsc::channel();
        let returned = Arc::new(AtomicBool::new(true));
        let statfs = Arc::clone(&self.statfs);
        let flag = Arc::clone(&returned);
        std::thread::Builder::new()
            .name("sonde-statfs".to_string())
            .spawn(move || {
                // Ends when the collector drops its sender (worker abandoned or collector gone).
                while let Ok(job) = job_rx.recv() {
                    let r = statfs(&job.path);
                    flag.store(true, Ordering::Release);
                    if reply_tx.send((job.seq, r)).is_err() {
                        break;
                    }
                }
            })?;
        self.spawned += 1;
        Ok(Worker {
            jobs: job_tx,
            replies: reply_rx,
            returned,
        })
    }

    /// True while an earlier call on `key` has not returned.
    pub fn is_stuck(&self, key: &str) -> bool {
        self.stuck
            .get(key)
            .is_some_and(|f| !f.load(Ordering::Acquire))
    }

    /// statfs of `path`; `key` identifies the mount for stuck tracking.
    pub fn stat(&mut self, key: &str, path: &Path) -> StatOutcome {
        if let Some(flag) = self.stuck.get(key) {
            if !flag.load(Ordering::Acquire) {
                return StatOutcome::Stuck;
            }
            self.stuck.remove(key);
            tracing::info!(
                mountpoint = key,
                "statfs returned again; mount is monitored again"
            );
        }
        let worker = match self.worker.take() {
            Some(w) => w,
            None => match self.spawn() {
                Ok(w) => w,
                Err(e) => return StatOutcome::Failed(e),
            },
        };
        self.seq += 1;
        let seq = self.seq;
        worker.returned.store(false, Ordering::Release);
        if worker
            .jobs
            .send(Job {
                path: path.to_path_buf(),
                seq,
            })
            .is_err()
        {
            // The worker thread is gone (the statfs function panicked); start afresh next time.
            return StatOutcome::Failed(io::Error::other("statfs worker exited"));
        }
        let deadline = Instant::now() + self.timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match worker.replies.recv_timeout(left) {
                Ok((s, r)) if s == seq => {
                    self.worker = Some(worker);
                    return match r {
                        Ok(st) => StatOutcome::Ok(st),
                        Err(e) => StatOutcome::Failed(e),
                    };
                }
                Ok(_) => continue,
                Err(mpsc::RecvTimeoutError::Timeout) => {
                    tracing::warn!(
                        mountpoint = key,
                        timeout = ?self.timeout,
                        "statfs did not return in time; reporting device_error until it does"
                    );
                    self.stuck.insert(key.to_string(), worker.returned);
                    return StatOutcome::TimedOut;
                }
                Err(mpsc::RecvTimeoutError::Disconnected) => {
                    return StatOutcome::Failed(io::Error::other("statfs worker exited"));
                }
            }
        }
    }
}

struct Filesystem {
    host: HostRoot,
    mounts_path: PathBuf,
    fallback_path: PathBuf,
    mp_exclude: Pattern,
    fs_exclude: Pattern,
    statter: Statter,
    buf: String,
    /// The mounts file content `targets` was built from (None before the first parse).
    cached_text: Option<String>,
    targets: Vec<Target>,
    results: Vec<Option<FsStat>>,
}

impl Filesystem {
    fn new(cfg: &Config, host: &HostRoot, statfs: StatfsFn) -> Self {
        let timeout = Duration::try_from_secs_f64(cfg.statfs_timeout_seconds)
            .unwrap_or(Duration::from_secs(5));
        Self {
            host: host.clone(),
            mounts_path: host.proc("1/mounts"),
            fallback_path: host.proc("mounts"),
            mp_exclude: cfg.mount_points_exclude.clone(),
            fs_exclude: cfg.fs_types_exclude.clone(),
            statter: Statter::new(statfs, timeout),
            buf: String::with_capacity(4096),
            cached_text: None,
            targets: Vec::new(),
            results: Vec::new(),
        }
    }

    /// Reads the mounts file and refreshes the targets when its content changed. Returns false
    /// when neither mounts file exists.
    fn refresh(&mut self) -> Result<bool, CollectError> {
        let mut path = &self.mounts_path;
        if !read_into(path, &mut self.buf)? {
            // /proc/1/mounts is hidden with hidepid; node_exporter then uses /proc/mounts.
            path = &self.fallback_path;
            if !read_into(path, &mut self.buf)? {
                return Ok(false);
            }
        }
        if self.cached_text.as_deref() != Some(self.buf.as_str()) {
            let mounts = parse_mounts(&self.buf).map_err(|e| CollectError::parse(path, e))?;
            self.targets = targets(mounts, &self.host, &self.mp_exclude, &self.fs_exclude);
            // Keep this content; the old cache's allocation becomes the next read buffer.
            let old = self.cached_text.replace(std::mem::take(&mut self.buf));
            self.buf = old.unwrap_or_default();
        }
        Ok(true)
    }
}

impl Collector for Filesystem {
    fn name(&self) -> &'static str {
        "filesystem"
    }

    fn collect(&mut self, sink: &mut Sink) -> Result<(), CollectError> {
        if !self.refresh()? {
            return Ok(());
        }
        self.results.clear();
        for t in &self.targets {
            let r = match self.statter.stat(&t.mount_point, &t.stat_path) {
                StatOutcome::Ok(s) => Some(s),
                StatOutcome::Failed(e) => {
                    tracing::debug!(mountpoint = %t.mount_point, error = %e, "statfs failed");
                    None
                }
                StatOutcome::TimedOut | StatOutcome::Stuck => None,
            };
            self.results.push(r);
        }
        {
            let mut fam = sink.family(
                "node_filesystem_device_error",
                "Whether an error occurred while getting statistics for the given device.",
                MetricType::Gauge,
            );
            for (t, r) in self.targets.iter().zip(&self.results) {
                fam.sample(&t.labels(), if r.is_some() { 0.0 } else { 1.0 });
            }
        }
        type Field = fn(&Target, &FsStat) -> f64;
        let families: [(&str, &str, Field); 6] = [
            (
                "node_filesystem_size_bytes",
                "Filesystem size in bytes.",
                |_, s| s.blocks as f64 * s.bsize as f64,
            ),
            (
                "node_filesystem_free_bytes",
                "Filesystem free space in bytes.",
                |_, s| s.bfree as f64 * s.bsize as f64,
            ),
            (
                "node_filesystem_avail_bytes",
                "Filesystem space available to non-root users in bytes.",
                |_, s| s.bavail as f64 * s.bsize as f64,
            ),
            (
                "node_filesystem_files",
                "Filesystem total file nodes.",
                |_, s| s.files as f64,
            ),
            (
                "node_filesystem_files_free",
                "Filesystem total free file nodes.",
                |_, s| s.ffree as f64,
            ),
            (
                "node_filesystem_readonly",
                "Filesystem read-only status.",
                |t, _| if t.read_only { 1.0 } else { 0.0 },
            ),
        ];
        if self.results.iter().any(Option::is_some) {
            for (name, help, field) in families {
                let mut fam = sink.family(name, help, MetricType::Gauge);
                for (t, r) in self.targets.iter().zip(&self.results) {
                    if let Some(s) = r {
                        fam.sample(&t.labels(), field(t, s));
                    }
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::collect::node::testutil::{self, all_samples, fixture_host};
    use std::sync::Mutex;
    use std::sync::atomic::AtomicUsize;

    const LEGACY: &str = include_str!("../../../tests/fixtures/hosts/legacy/proc/1/mounts");
    const MODERN: &str = include_str!("../../../tests/fixtures/hosts/modern/proc/1/mounts");

    fn fake_stat(blocks: u64) -> FsStat {
        FsStat {
            blocks,
            bfree: blocks / 2,
            bavail: blocks / 4,
            bsize: 4096,
            files: 1000,
            ffree: 900,
        }
    }

    #[test]
    fn parses_mount_lines_and_escapes() {
        let m = parse_mounts(LEGACY).expect("legacy");
        assert_eq!(m.len(), 33);
        assert_eq!(
            m[13],
            Mount {
                device: "/dev/mapper/rhel-root".into(),
                mount_point: "/".into(),
                fs_type: "xfs".into(),
                read_only: false,
            }
        );
        assert_eq!(m[24].mount_point, "/media/install disc");
        assert!(m[24].read_only);
        assert_eq!(m[25].mount_point, "/srv/backup copy\ttab");
        let modern = parse_mounts(MODERN).expect("modern");
        assert_eq!(modern[5].device, "/dev/vda");
        assert_eq!(modern[5].mount_point, "/");
        assert_eq!(modern[5].fs_type, "ext4");
        assert_eq!(
            parse_mounts("a /b c\n"),
            Err(ParseError::new(1, "malformed mount line \"a /b c\""))
        );
    }

    #[test]
    fn exclusion_and_dedup_follow_node_exporter_defaults() {
        let cfg = Config::default();
        let host = fixture_host("legacy");
        let t = targets(
            parse_mounts(LEGACY).expect("parse"),
            &host,
            &cfg.mount_points_exclude,
            &cfg.fs_types_exclude,
        );
        let got: Vec<_> = t
            .iter()
            .map(|t| {
                (
                    t.device.as_str(),
                    t.mount_point.as_str(),
                    t.fs_type.as_str(),
                )
            })
            .collect();
        assert_eq!(
            got,
            [
                ("tmpfs", "/run", "tmpfs"),
                ("/dev/mapper/rhel-root", "/", "xfs"),
                ("/dev/sda1", "/boot", "xfs"),
                ("/dev/mapper/rhel-home", "/home", "xfs"),
                ("/dev/nvme0n1p1", "/boot/efi", "vfat"),
                ("nfs01.example.com:/export/shared", "/mnt/shared", "nfs4"),
                ("/dev/sdb1", "/srv/backup copy\ttab", "ext4"),
                ("tmpfs", "/run/udev", "tmpfs"),
                ("tmpfs", "/run/user/1000", "tmpfs"),
                ("/dev/mapper/rhel-root", "/var/tmp", "xfs"),
            ]
        );
        assert_eq!(t[1].stat_path, host.rootfs("/"));
        // The host view strips the rootfs prefix from mount points seen from a container.
        let container = HostRoot::new("/proc", "/sys", "/host");
        let t = targets(
            parse_mounts("/dev/vda /host ext4 rw 0 0\n/dev/vdb /host/data xfs ro 0 0\n")
                .expect("parse"),
            &container,
            &cfg.mount_points_exclude,
            &cfg.fs_types_exclude,
        );
        assert_eq!(t[0].mount_point, "/");
        assert_eq!(t[1].mount_point, "/data");
        assert_eq!(t[1].stat_path, PathBuf::from("/host/data"));
        assert!(t[1].read_only);
    }

    #[test]
    fn collects_with_an_injected_statfs() {
        let host = fixture_host("legacy");
        let calls = Arc::new(AtomicUsize::new(0));
        let c2 = Arc::clone(&calls);
        let root = host.rootfs("/");
        let statfs: StatfsFn = Arc::new(move |p: &Path| {
            c2.fetch_add(1, Ordering::SeqCst);
            if p == root {
                Ok(fake_stat(1000))
            } else if p.ends_with("run/udev") {
                Ok(fake_stat(8))
            } else {
                Err(io::Error::from_raw_os_error(2))
            }
        });
        let mut fs = Filesystem::new(&Config::default(), &host, statfs);
        let mut sink = Sink::new();
        fs.collect(&mut sink).expect("collect");
        let all = all_samples(&sink);
        let get = |name: &str, mp: &str| {
            all.iter()
                .find(|(n, l, _)| n == name && l.ends_with(&format!("mountpoint=\"{mp}\"")))
                .map(|(_, _, v)| *v)
        };
        assert_eq!(
            all.iter()
                .find(|(n, _, _)| n == "node_filesystem_size_bytes")
                .map(|(_, l, v)| (l.as_str(), *v)),
            Some((
                r#"device="/dev/mapper/rhel-root",fstype="xfs",mountpoint="/""#,
                4_096_000.0
            ))
        );
        assert_eq!(get("node_filesystem_free_bytes", "/"), Some(2_048_000.0));
        assert_eq!(get("node_filesystem_avail_bytes", "/"), Some(1_024_000.0));
        assert_eq!(get("node_filesystem_files", "/"), Some(1000.0));
        assert_eq!(get("node_filesystem_files_free", "/"), Some(900.0));
        assert_eq!(get("node_filesystem_readonly", "/"), Some(0.0));
        assert_eq!(get("node_filesystem_readonly", "/run/udev"), Some(1.0));
        assert_eq!(get("node_filesystem_device_error", "/"), Some(0.0));
        assert_eq!(
            get("node_filesystem_device_error", "/mnt/shared"),
            Some(1.0)
        );
        assert_eq!(get("node_filesystem_size_bytes", "/mnt/shared"), None);
        assert_eq!(calls.load(Ordering::SeqCst), 10);
        // Unchanged mounts file: the cached list is reused, one worker thread serves all.
        let mut sink = Sink::new();
        fs.collect(&mut sink).expect("collect again");
        assert_eq!(all_samples(&sink), all);
        assert_eq!(fs.statter.spawned, 1);
    }

    #[test]
    fn a_hung_mount_times_out_and_is_not_retried_while_stuck() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::create_dir_all(dir.path().join("1")).expect("mkdir");
        std::fs::write(
            dir.path().join("1/mounts"),
            "srv:/x /mnt/nfs nfs4 rw 0 0\n/dev/vda / ext4 rw 0 0\n",
        )
        .expect("write");
        let host = HostRoot::new(dir.path(), dir.path(), "/");
        let nfs_calls = Arc::new(AtomicUsize::new(0));
        let (release_tx, release_rx) = mpsc::channel::<()>();
        let release_rx = Arc::new(Mutex::new(release_rx));
        let calls = Arc::clone(&nfs_calls);
        let statfs: StatfsFn = Arc::new(move |p: &Path| {
            if p == Path::new("/mnt/nfs") {
                calls.fetch_add(1, Ordering::SeqCst);
                // Blocks until the test releases it, like a dead NFS server.
                let rx = release_rx
                    .lock()
                    .map_err(|_| io::Error::other("poisoned"))?;
                let _ = rx.recv();
                Ok(fake_stat(10))
            } else {
                Ok(fake_stat(100))
            }
        });
        let cfg = Config {
            statfs_timeout_seconds: 0.2,
            ..Config::default()
        };
        let mut fs = Filesystem::new(&cfg, &host, statfs);
        let errors = |sink: &Sink| {
            all_samples(sink)
                .into_iter()
                .filter(|(n, _, _)| n == "node_filesystem_device_error")
                .map(|(_, l, v)| (l, v))
                .collect::<Vec<_>>()
        };
        let want = vec![
            (
                r#"device="srv:/x",fstype="nfs4",mountpoint="/mnt/nfs""#.to_string(),
                1.0,
            ),
            (
                r#"device="/dev/vda",fstype="ext4",mountpoint="/""#.to_string(),
                0.0,
            ),
        ];

        let start = Instant::now();
        let mut sink = Sink::new();
        fs.collect(&mut sink).expect("collect");
        let took = start.elapsed();
        assert!(took >= Duration::from_millis(200), "{took:?}");
        assert!(took < Duration::from_secs(2), "{took:?}");
        assert_eq!(errors(&sink), want);
        assert!(fs.statter.is_stuck("/mnt/nfs"));
        // The blocked worker was abandoned; a second one served "/".
        assert_eq!(fs.statter.spawned, 2);

        // While stuck: no new call, no new thread, no waiting.
        let start = Instant::now();
        let mut sink = Sink::new();
        fs.collect(&mut sink).expect("collect while stuck");
        assert!(start.elapsed() < Duration::from_millis(150));
        assert_eq!(errors(&sink), want);
        assert_eq!(nfs_calls.load(Ordering::SeqCst), 1);
        assert_eq!(fs.statter.spawned, 2);

        // The hung call returns: the mount is stat'ed again and reports data.
        release_tx.send(()).expect("release");
        let deadline = Instant::now() + Duration::from_secs(5);
        while fs.statter.is_stuck("/mnt/nfs") && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(5));
        }
        release_tx.send(()).expect("let the retry through");
        let mut sink = Sink::new();
        fs.collect(&mut sink).expect("collect after recovery");
        assert_eq!(nfs_calls.load(Ordering::SeqCst), 2);
        assert_eq!(errors(&sink)[0].1, 0.0);
        assert_eq!(fs.statter.spawned, 2);
    }

    #[test]
    fn missing_files_write_nothing() {
        testutil::assert_empty_host_writes_nothing::<Module>();
    }

    #[test]
    fn default_patterns_compile_and_bad_regex_is_named() {
        assert_eq!(
            Config::default().mount_points_exclude.as_str(),
            DEFAULT_MOUNT_POINTS_EXCLUDE
        );
        assert_eq!(
            Config::default().fs_types_exclude.as_str(),
            DEFAULT_FS_TYPES_EXCLUDE
        );
        let err = crate::config::Config::from_yaml_str(
            "collectors:\n  filesystem:\n    mount_points_exclude: \"(\"\n",
        )
        .expect_err("bad regex");
        let msg = err.to_string();
        assert!(
            msg.starts_with("collectors.filesystem.mount_points_exclude: ")
                && msg.contains("invalid regex \"(\""),
            "{msg}"
        );
        let err = crate::config::Config::from_yaml_str(
            "collectors:\n  filesystem:\n    statfs_timeout_seconds: 0\n",
        )
        .expect_err("zero timeout");
        assert_eq!(
            err.to_string(),
            "collectors.filesystem.statfs_timeout_seconds: must be a number above 0, got 0"
        );
    }
}
