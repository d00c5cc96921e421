//! `process` collector: process groups as process-exporter (ncabatoff/process-exporter 0.7)
//! reports them, `namedprocess_namegroup_*{groupname}`, at a fraction of its cost.
//!
//! Semantics kept from process-exporter (see README "Differences from process-exporter" for the
//! rest):
//! - a process is matched once, when first seen (identity = PID + start time), by the first
//!   `process_names` rule that matches ([`matcher`]); with `children`, an unmatched process whose
//!   parent is in a group joins that group; unmatched processes are then ignored for their
//!   lifetime unless `recheck` is set;
//! - counters are per-group accumulations of per-process increases between scrapes: a process
//!   already running at the first collection contributes only what it consumes afterwards, a
//!   process started later contributes everything; what exited processes consumed stays in the
//!   group, so counters never go down;
//! - for a multi-threaded process, context switches are the sum over its threads and `states`
//!   counts the process plus each of its threads (both as process-exporter computes them);
//! - groups whose processes are all gone keep reporting their counters (gauges 0).
//!
//! Cost: per scrape, one `readdir` of `/proc` and one read of `stat` per process. For a process
//! in a group, also `schedstat`: a single-threaded process that has not run since the last
//! scrape cannot have switched context, done I/O or changed its fds, so nothing else is read
//! for it; otherwise `status`, `io`, the open fd count (the size of `fd/`, which procfs reports
//! on Linux >= 6.2, else a `readdir`) and, per thread of a multi-threaded process, its
//! `status`. `stat` and `schedstat` stay open between scrapes (one `pread` each). The
//! identity, the match result and the fd limit are cached per process, so `cmdline`, `limits`
//! and `/etc/passwd` are read once per process, not per scrape.

pub mod matcher;
pub mod parse;

use std::collections::HashMap;
use std::mem::MaybeUninit;
use std::os::fd::OwnedFd;
use std::path::PathBuf;

use serde::Deserialize;

use crate::collect::registry::CollectorModule;
use crate::collect::{CollectError, Collector, MetricType, ParseError, Sink};
use crate::config::Issue;
use crate::host::{HostRoot, is_missing, read_into};

use matcher::{ExporterFile, Matcher, ProcInfo, Rule};
use parse::{Stat, Status};

/// Registry entry.
pub struct Module;

/// What to do with kernel threads (processes with `PF_KTHREAD`, children of `kthreadd`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum KernelThreads {
    /// Match them like any process (process-exporter's behaviour; with the default
    /// `{{.Comm}}` naming each kernel thread name becomes a group, and kworkers rename
    /// themselves, so series grow without bound).
    Include,
    /// Ignore them.
    Exclude,
    /// Count them all in one group named `kernel` (the default: visible, bounded).
    #[default]
    Fold,
}

/// `collectors.process`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Whether the collector runs.
    pub enabled: bool,
    /// process-exporter's `process_names` rules, inline. Neither this nor `config_file`: every
    /// process is grouped by `{{.Comm}}`.
    pub process_names: Option<Vec<Rule>>,
    /// A process-exporter YAML file whose `process_names` are used as is.
    pub config_file: Option<PathBuf>,
    /// Children of a grouped process that match no rule join their parent's group
    /// (process-exporter's `-children`).
    pub children: bool,
    /// Per-thread-name families (`namedprocess_namegroup_thread_*`), as process-exporter's
    /// `-threads`.
    pub threads: bool,
    /// `memory_bytes{memtype="proportionalResident|proportionalSwapped"}` from
    /// `smaps_rollup` (process-exporter's `-gather-smaps`; costly for large processes).
    pub smaps: bool,
    /// Re-match unmatched processes on every scrape (process-exporter's `-recheck`).
    pub recheck: bool,
    /// A group with no process for this long is dropped (0 keeps groups forever, as
    /// process-exporter does).
    pub group_ttl_seconds: f64,
    /// `include`, `exclude` or `fold` (one group named `kernel`).
    pub kernel_threads: KernelThreads,
    /// At most this many groups; processes that would create more are not reported and are
    /// counted in `sonde_process_overflow_procs`.
    pub max_groups: usize,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            enabled: false,
            process_names: None,
            config_file: None,
            children: true,
            threads: false,
            smaps: false,
            recheck: false,
            group_ttl_seconds: 300.0,
            kernel_threads: KernelThreads::Fold,
            max_groups: 1000,
        }
    }
}

impl Config {
    /// The rules in effect: inline, from `config_file`, or none (group every process by comm).
    pub fn rules(&self) -> Result<Vec<Rule>, String> {
        if let Some(path) = &self.config_file {
            let text = std::fs::read_to_string(path)
                .map_err(|e| format!("reading {}: {e}", path.display()))?;
            let file: ExporterFile = serde_saphyr::from_str(&text)
                .map_err(|e| format!("{}: {}", path.display(), first_line(&e.to_string())))?;
            return Ok(file.process_names);
        }
        Ok(self.process_names.clone().unwrap_or_default())
    }

    fn check(&self, key: &str, issues: &mut Vec<Issue>) {
        if self.process_names.is_some() && self.config_file.is_some() {
            issues.push(Issue::new(
                format!("{key}.config_file"),
                "give either process_names or config_file, not both",
            ));
            return;
        }
        match self.rules() {
            Err(e) => issues.push(Issue::new(format!("{key}.config_file"), e)),
            Ok(rules) => {
                if let Err(e) = Matcher::new(&rules) {
                    let field = if self.config_file.is_some() {
                        "config_file: process_names"
                    } else {
                        "process_names"
                    };
                    issues.push(Issue::new(format!("{key}.{field}{e}"), "invalid rule"));
                }
            }
        }
        if !(self.group_ttl_seconds >= 0.0 && self.group_ttl_seconds.is_finite()) {
            issues.push(Issue::new(
                format!("{key}.group_ttl_seconds"),
                "must be a number >= 0",
            ));
        }
        if self.max_groups == 0 {
            issues.push(Issue::new(
                format!("{key}.max_groups"),
                "must be at least 1",
            ));
        }
    }
}

fn first_line(s: &str) -> &str {
    s.lines().next().unwrap_or_default()
}

crate::collector_config!(Config);

impl CollectorModule for Module {
    type Config = Config;
    fn build(cfg: &Config, host: &HostRoot) -> Box<dyn Collector> {
        let mut c = ProcessCollector::new(cfg, host, Box::new(wall_clock));
        // process-exporter takes its first reading at startup: processes already running then
        // contribute only what they consume afterwards. Do the same.
        let mut scratch = Sink::new();
        if let Err(e) = c.collect(&mut scratch) {
            tracing::debug!(error = %e, "process collector: initial reading");
        }
        Box::new(c)
    }
}

fn wall_clock() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

/// A clock returning seconds since the epoch (injectable for tests).
pub type Clock = Box<dyn FnMut() -> f64 + Send>;

/// Counters of a process or thread (CPU in clock ticks).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Counts {
    utime: u64,
    stime: u64,
    read_bytes: u64,
    write_bytes: u64,
    majflt: u64,
    minflt: u64,
    ctx_vol: u64,
    ctx_nonvol: u64,
}

impl Counts {
    /// The increase since `prev`, each field floored at 0 (a thread that exited makes the
    /// per-process context-switch sum drop; process-exporter then subtracts, sonde never does).
    fn increase_since(&self, prev: &Counts) -> Counts {
        Counts {
            utime: self.utime.saturating_sub(prev.utime),
            stime: self.stime.saturating_sub(prev.stime),
            read_bytes: self.read_bytes.saturating_sub(prev.read_bytes),
            write_bytes: self.write_bytes.saturating_sub(prev.write_bytes),
            majflt: self.majflt.saturating_sub(prev.majflt),
            minflt: self.minflt.saturating_sub(prev.minflt),
            ctx_vol: self.ctx_vol.saturating_sub(prev.ctx_vol),
            ctx_nonvol: self.ctx_nonvol.saturating_sub(prev.ctx_nonvol),
        }
    }

    fn add(&mut self, d: &Counts) {
        self.utime += d.utime;
        self.stime += d.stime;
        self.read_bytes += d.read_bytes;
        self.write_bytes += d.write_bytes;
        self.majflt += d.majflt;
        self.minflt += d.minflt;
        self.ctx_vol += d.ctx_vol;
        self.ctx_nonvol += d.ctx_nonvol;
    }
}

/// Index into [`STATE_NAMES`].
fn state_index(c: u8) -> usize {
    match c {
        b'R' => 0,
        b'S' => 1,
        b'D' => 2,
        b'Z' => 3,
        _ => 4,
    }
}

const STATE_NAMES: [&str; 5] = ["Running", "Sleeping", "Waiting", "Zombie", "Other"];

/// What a known process is to the collector.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Membership {
    Group(u32),
    Ignored,
    /// Would have created a group beyond `max_groups`.
    Overflow,
}

/// Per-thread state kept for the `threads` families.
#[derive(Debug, Clone)]
struct ThreadTrack {
    name: String,
    last: Counts,
    pass: u64,
}

/// A process seen before (identity = PID + start time).
#[derive(Debug)]
struct Tracked {
    starttime: u64,
    pass: u64,
    member: Membership,
    last: Counts,
    fd_limit: u64,
    fd_limit_read_at: f64,
    threads: HashMap<i32, ThreadTrack>,
    /// `schedstat` (run time, times scheduled) at the last full read.
    sched: Option<(u64, u64)>,
    /// When `status` and `io` were last read, and the `VmSwap` read then.
    status_at: f64,
    swap: u64,
    /// Open fds at the last full read (an idle single-threaded process cannot change them).
    open_fds: i64,
    /// `stat` and `schedstat` kept open (see [`ProcessCollector::fd_budget`]).
    stat_fd: Option<OwnedFd>,
    sched_fd: Option<OwnedFd>,
}

/// Per-thread-name aggregate of a group.
#[derive(Debug, Clone, Copy, Default)]
struct ThreadAgg {
    count: u64,
    counts: Counts,
}

/// One group: accumulated counters plus this scrape's gauges.
#[derive(Debug, Default)]
struct Group {
    name: String,
    accum: Counts,
    procs: u64,
    resident: u64,
    virt: u64,
    swap: u64,
    pss: u64,
    swap_pss: u64,
    open_fds: u64,
    worst_fd_ratio: f64,
    oldest_start: Option<f64>,
    num_threads: u64,
    states: [u64; 5],
    last_nonempty: f64,
    thread_now: HashMap<String, ThreadAgg>,
    thread_hist: HashMap<String, ThreadAgg>,
}

impl Group {
    fn reset_gauges(&mut self) {
        self.procs = 0;
        self.resident = 0;
        self.virt = 0;
        self.swap = 0;
        self.pss = 0;
        self.swap_pss = 0;
        self.open_fds = 0;
        self.worst_fd_ratio = 0.0;
        self.oldest_start = None;
        self.num_threads = 0;
        self.states = [0; 5];
        self.thread_now.clear();
    }
}

/// The numeric part of a parsed `stat` (no borrow of the read buffer).
#[derive(Debug, Clone, Copy)]
struct StatNums {
    state: u8,
    ppid: i32,
    kthread: bool,
    minflt: u64,
    majflt: u64,
    utime: u64,
    stime: u64,
    num_threads: u64,
    starttime: u64,
    vsize: u64,
    rss_pages: u64,
}

impl From<&Stat<'_>> for StatNums {
    fn from(s: &Stat<'_>) -> Self {
        Self {
            state: s.state,
            ppid: s.ppid,
            kthread: s.is_kernel_thread(),
            minflt: s.minflt,
            majflt: s.majflt,
            utime: s.utime,
            stime: s.stime,
            num_threads: s.num_threads,
            starttime: s.starttime,
            vsize: s.vsize,
            rss_pages: s.rss_pages,
        }
    }
}

/// A process seen for the first time in this scrape, waiting to be matched.
#[derive(Debug)]
struct NewProc {
    pid: i32,
    stat: StatNums,
    status: Status,
    comm: String,
    cmdline: String,
    decided: Option<Membership>,
}

/// One process's readings for this scrape.
#[derive(Debug, Default)]
struct Reading {
    counts: Counts,
    swap: u64,
    pss: u64,
    swap_pss: u64,
    /// -1 when the fd directory cannot be read.
    open_fds: i64,
    states: [u64; 5],
}

/// The collector.
pub struct ProcessCollector {
    proc_root: String,
    passwd: PathBuf,
    matcher: Matcher,
    children: bool,
    threads: bool,
    smaps: bool,
    recheck: bool,
    ttl: f64,
    kernel_threads: KernelThreads,
    max_groups: usize,
    boot_time: f64,
    ticks: f64,
    page_size: u64,
    /// procfs reports the number of open fds as the size of `fd/` (Linux >= 6.2).
    fd_count_by_size: bool,
    clock: Clock,
    first_update_at: Option<f64>,
    pass: u64,
    procs: HashMap<i32, Tracked>,
    groups: Vec<Option<Group>>,
    free_groups: Vec<u32>,
    by_name: HashMap<String, u32>,
    users: Option<HashMap<u32, String>>,
    overflow_procs: u64,
    /// SwapTotal > 0 in meminfo (rechecked every minute): idle processes' `VmSwap` can change.
    host_has_swap: bool,
    swap_checked_at: f64,
    meminfo: PathBuf,
    /// How many `/proc/<pid>/{stat,schedstat}` files may stay open between scrapes: reading an
    /// open procfs file again from offset 0 regenerates it, one `pread` instead of
    /// open + read + close, and fails with `ESRCH` once that very process is gone (PID reuse
    /// cannot fool it). Each open file pins about 4 KiB of kernel memory (its seq_file buffer),
    /// so the budget is bounded by the fd limit and a fixed cap.
    fd_budget: usize,
    fds_open: usize,
    // reusable buffers
    path: String,
    buf: FileBuf,
    buf2: FileBuf,
    scratch: String,
    name: String,
    dirbuf: Vec<MaybeUninit<u8>>,
    pids: Vec<i32>,
    tids: Vec<i32>,
    new_procs: Vec<NewProc>,
    order: Vec<u32>,
}

/// Re-read a process's fd limit this often (it changes only through `prlimit`).
const FD_LIMIT_REFRESH_SECONDS: f64 = 60.0;

/// At most this many kept-open procfs files (about 4 KiB of kernel memory each).
const MAX_KEPT_FDS: usize = 8192;

fn fd_budget() -> usize {
    let soft = rustix::process::getrlimit(rustix::process::Resource::Nofile)
        .current
        .unwrap_or(u64::MAX);
    // leave room for connections, other collectors and files being read
    (soft.saturating_sub(512) / 2).min(MAX_KEPT_FDS as u64) as usize
}

/// On a host with swap, `status` (for `VmSwap`) of an idle process is re-read this often.
const IDLE_STATUS_REFRESH_SECONDS: f64 = 60.0;

/// Name of the group kernel threads are folded into.
pub const KERNEL_GROUP: &str = "kernel";

impl ProcessCollector {
    /// Builds the collector without taking a first reading (see [`Module::build`]).
    pub fn new(cfg: &Config, host: &HostRoot, clock: Clock) -> Self {
        let matcher = cfg
            .rules()
            .and_then(|r| Matcher::new(&r))
            .unwrap_or_else(|e| {
                // validate() reported it already; a file changed since then.
                tracing::warn!(error = %e, "process collector: rules unusable, grouping by comm");
                Matcher::all()
            });
        let proc_root = host.proc_root().to_string_lossy().into_owned();
        let mut buf = String::new();
        let boot_time = match read_into(&host.proc("stat"), &mut buf) {
            Ok(true) => buf
                .lines()
                .find_map(|l| l.strip_prefix("btime "))
                .and_then(|v| v.trim().parse::<f64>().ok())
                .unwrap_or(0.0),
            _ => 0.0,
        };
        let fd_count_by_size = rustix::fs::statfs(host.proc_root())
            .is_ok_and(|s| s.f_type == rustix::fs::PROC_SUPER_MAGIC)
            && rustix::fs::stat(host.proc("self/fd")).is_ok_and(|s| s.st_size > 0);
        let mut dirbuf = Vec::with_capacity(32 * 1024);
        dirbuf.resize(32 * 1024, MaybeUninit::new(0));
        Self {
            proc_root,
            passwd: host.rootfs("/etc/passwd"),
            matcher,
            children: cfg.children,
            threads: cfg.threads,
            smaps: cfg.smaps,
            recheck: cfg.recheck,
            ttl: cfg.group_ttl_seconds,
            kernel_threads: cfg.kernel_threads,
            max_groups: cfg.max_groups.max(1),
            boot_time,
            ticks: rustix::param::clock_ticks_per_second() as f64,
            page_size: rustix::param::page_size() as u64,
            fd_count_by_size,
            clock,
            first_update_at: None,
            pass: 0,
            procs: HashMap::new(),
            groups: Vec::new(),
            free_groups: Vec::new(),
            by_name: HashMap::new(),
            users: None,
            overflow_procs: 0,
            host_has_swap: true,
            swap_checked_at: f64::NEG_INFINITY,
            meminfo: host.proc("meminfo"),
            fd_budget: fd_budget(),
            fds_open: 0,
            path: String::with_capacity(64),
            buf: FileBuf::new(),
            buf2: FileBuf::new(),
            scratch: String::new(),
            name: String::new(),
            dirbuf,
            pids: Vec::new(),
            tids: Vec::new(),
            new_procs: Vec::new(),
            order: Vec::new(),
        }
    }

    /// Makes every process count from zero, as if the collector had started before all of
    /// them (tests on recorded trees, whose processes all started in the past).
    pub fn count_from_boot(&mut self) {
        self.first_update_at = Some(f64::NEG_INFINITY);
    }

    fn set_path(&mut self, pid: i32, tid: Option<i32>, file: &str) {
        self.path.clear();
        self.path.push_str(&self.proc_root);
        self.path.push('/');
        self.path.push_str(itoa::Buffer::new().format(pid));
        if let Some(t) = tid {
            self.path.push_str("/task/");
            self.path.push_str(itoa::Buffer::new().format(t));
        }
        if !file.is_empty() {
            self.path.push('/');
            self.path.push_str(file);
        }
    }

    /// Reads `<proc>/<pid>[/task/<tid>]/<file>` into `buf` (or `buf2`). `Ok(false)`: missing
    /// (the process exited) or not permitted.
    fn read(
        &mut self,
        pid: i32,
        tid: Option<i32>,
        file: &str,
        second: bool,
    ) -> Result<bool, CollectError> {
        self.set_path(pid, tid, file);
        let buf = if second {
            &mut self.buf2
        } else {
            &mut self.buf
        };
        match buf.read(&self.path) {
            Ok(found) => Ok(found),
            Err(e) if e.kind() == std::io::ErrorKind::PermissionDenied => Ok(false),
            Err(e) => Err(CollectError::Io(crate::host::HostError {
                path: PathBuf::from(&self.path),
                source: e,
            })),
        }
    }

    /// Numeric entries of a directory (PIDs of `/proc`, TIDs of `task/`), into `out`.
    fn list_numeric(
        path: &str,
        dirbuf: &mut [MaybeUninit<u8>],
        out: &mut Vec<i32>,
    ) -> std::io::Result<bool> {
        out.clear();
        let fd = match rustix::fs::open(
            path,
            rustix::fs::OFlags::RDONLY
                | rustix::fs::OFlags::DIRECTORY
                | rustix::fs::OFlags::CLOEXEC,
            rustix::fs::Mode::empty(),
        ) {
            Ok(fd) => fd,
            Err(e) => {
                let e = std::io::Error::from(e);
                return if is_missing(&e) { Ok(false) } else { Err(e) };
            }
        };
        let mut dir = rustix::fs::RawDir::new(fd, dirbuf);
        while let Some(entry) = dir.next() {
            let entry = entry.map_err(std::io::Error::from)?;
            let name = entry.file_name().to_bytes();
            if name.first().is_some_and(u8::is_ascii_digit)
                && let Some(n) = std::str::from_utf8(name).ok().and_then(|s| s.parse().ok())
            {
                out.push(n);
            }
        }
        Ok(true)
    }

    /// Open fds of a process, -1 when its fd directory cannot be read.
    fn open_fds(&mut self, pid: i32) -> i64 {
        self.set_path(pid, None, "fd");
        if self.fd_count_by_size {
            return match rustix::fs::stat(self.path.as_str()) {
                Ok(st) => st.st_size,
                Err(_) => -1,
            };
        }
        let fd = match rustix::fs::open(
            self.path.as_str(),
            rustix::fs::OFlags::RDONLY
                | rustix::fs::OFlags::DIRECTORY
                | rustix::fs::OFlags::CLOEXEC,
            rustix::fs::Mode::empty(),
        ) {
            Ok(fd) => fd,
            Err(_) => return -1,
        };
        let mut n = 0;
        let mut dir = rustix::fs::RawDir::new(fd, &mut self.dirbuf);
        while let Some(entry) = dir.next() {
            match entry {
                Ok(e) if e.file_name().to_bytes() != b"." && e.file_name().to_bytes() != b".." => {
                    n += 1
                }
                Ok(_) => {}
                Err(_) => return -1,
            }
        }
        n
    }

    fn username(&mut self, uid: u32) -> String {
        let users = self.users.get_or_insert_with(|| {
            let mut m = HashMap::new();
            if let Ok(text) = std::fs::read_to_string(&self.passwd) {
                for line in text.lines() {
                    let mut f = line.split(':');
                    if let (Some(name), Some(_), Some(id)) = (f.next(), f.next(), f.next())
                        && let Ok(id) = id.parse::<u32>()
                    {
                        m.entry(id).or_insert_with(|| name.to_string());
                    }
                }
            }
            m
        });
        users.get(&uid).cloned().unwrap_or_else(|| uid.to_string())
    }

    /// The group's slot, created if needed; `None` when `max_groups` is reached.
    fn group_for(&mut self, name: &str, now: f64) -> Option<u32> {
        if let Some(&g) = self.by_name.get(name) {
            return Some(g);
        }
        if self.by_name.len() >= self.max_groups {
            return None;
        }
        let group = Group {
            name: name.to_string(),
            last_nonempty: now,
            ..Group::default()
        };
        let id = match self.free_groups.pop() {
            Some(id) => {
                self.groups[id as usize] = Some(group);
                id
            }
            None => {
                self.groups.push(Some(group));
                (self.groups.len() - 1) as u32
            }
        };
        self.by_name.insert(name.to_string(), id);
        Some(id)
    }

    /// Reads the per-scrape files of a grouped process. `None`: it vanished.
    fn reading(
        &mut self,
        pid: i32,
        st: &StatNums,
        status: &Status,
        threads: Option<&mut HashMap<i32, ThreadTrack>>,
        thread_out: &mut Vec<(String, Counts)>,
    ) -> Result<Option<Reading>, CollectError> {
        let mut r = Reading {
            counts: Counts {
                utime: st.utime,
                stime: st.stime,
                majflt: st.majflt,
                minflt: st.minflt,
                ctx_vol: status.voluntary_ctxt_switches,
                ctx_nonvol: status.nonvoluntary_ctxt_switches,
                ..Counts::default()
            },
            swap: status.vm_swap_bytes,
            ..Reading::default()
        };
        r.states[state_index(st.state)] += 1;
        if self.read(pid, None, "io", false)? {
            // Unreadable io (another user's process without CAP_SYS_PTRACE) counts as 0, as
            // process-exporter does.
            if let Ok((rd, wr)) = parse::parse_io(self.buf.text()) {
                r.counts.read_bytes = rd;
                r.counts.write_bytes = wr;
            }
        }
        if self.smaps && self.read(pid, None, "smaps_rollup", false)? {
            (r.pss, r.swap_pss) = parse::parse_smaps_rollup(self.buf.text());
        }
        r.open_fds = self.open_fds(pid);
        if st.num_threads > 1 {
            self.read_threads(pid, &mut r, threads, thread_out)?;
        }
        Ok(Some(r))
    }

    /// process-exporter sums context switches over the threads and adds each thread's state
    /// to the process's (when at least two threads were read).
    fn read_threads(
        &mut self,
        pid: i32,
        r: &mut Reading,
        mut threads: Option<&mut HashMap<i32, ThreadTrack>>,
        thread_out: &mut Vec<(String, Counts)>,
    ) -> Result<(), CollectError> {
        self.set_path(pid, None, "task");
        let mut tids = std::mem::take(&mut self.tids);
        let listed = Self::list_numeric(&self.path, &mut self.dirbuf, &mut tids);
        let mut vol = 0;
        let mut nonvol = 0;
        let mut states = [0u64; 5];
        let mut n = 0;
        thread_out.clear();
        if listed.unwrap_or(false) {
            for &tid in &tids {
                if !self.read(pid, Some(tid), "status", false)? {
                    continue;
                }
                let Ok(ts) = parse::parse_status(self.buf.text()) else {
                    continue;
                };
                if let Some(track) = threads.as_deref_mut() {
                    if !self.read(pid, Some(tid), "stat", true)? {
                        continue;
                    }
                    let Ok(tst) = parse::parse_stat(self.buf2.text()) else {
                        continue;
                    };
                    let mut c = Counts {
                        utime: tst.utime,
                        stime: tst.stime,
                        majflt: tst.majflt,
                        minflt: tst.minflt,
                        ctx_vol: ts.voluntary_ctxt_switches,
                        ctx_nonvol: ts.nonvoluntary_ctxt_switches,
                        ..Counts::default()
                    };
                    let name = tst.comm.to_string();
                    if self.read(pid, Some(tid), "io", false)?
                        && let Ok((rd, wr)) = parse::parse_io(self.buf.text())
                    {
                        c.read_bytes = rd;
                        c.write_bytes = wr;
                    }
                    let latest = match track.get_mut(&tid) {
                        Some(t) => {
                            let d = c.increase_since(&t.last);
                            t.last = c;
                            t.name.clone_from(&name);
                            t.pass = self.pass;
                            d
                        }
                        None => {
                            track.insert(
                                tid,
                                ThreadTrack {
                                    name: name.clone(),
                                    last: c,
                                    pass: self.pass,
                                },
                            );
                            Counts::default()
                        }
                    };
                    thread_out.push((name, latest));
                }
                vol += ts.voluntary_ctxt_switches;
                nonvol += ts.nonvoluntary_ctxt_switches;
                states[state_index(ts.state)] += 1;
                n += 1;
            }
        }
        self.tids = tids;
        if let Some(track) = threads {
            let pass = self.pass;
            track.retain(|_, t| t.pass == pass);
        }
        if n >= 2 {
            r.counts.ctx_vol = vol;
            r.counts.ctx_nonvol = nonvol;
            for (a, b) in r.states.iter_mut().zip(states) {
                *a += b;
            }
        } else {
            thread_out.clear();
        }
        Ok(())
    }

    /// Adds one process's reading to its group: counters by their increase since `prev`,
    /// gauges as they are.
    #[allow(clippy::too_many_arguments)]
    fn add_to_group(
        &mut self,
        g: u32,
        st: &StatNums,
        r: &Reading,
        increase: &Counts,
        fd_limit: u64,
        thread_out: &[(String, Counts)],
    ) {
        let start = self.boot_time + st.starttime as f64 / self.ticks;
        let resident = st.rss_pages * self.page_size;
        let Some(Some(grp)) = self.groups.get_mut(g as usize) else {
            return;
        };
        grp.accum.add(increase);
        grp.procs += 1;
        grp.resident += resident;
        grp.virt += st.vsize;
        grp.swap += r.swap;
        grp.pss += r.pss;
        grp.swap_pss += r.swap_pss;
        if r.open_fds >= 0 {
            grp.open_fds += r.open_fds as u64;
        }
        let ratio = r.open_fds as f64 / fd_limit as f64;
        if grp.worst_fd_ratio < ratio {
            grp.worst_fd_ratio = ratio;
        }
        grp.num_threads += st.num_threads;
        for (a, b) in grp.states.iter_mut().zip(r.states) {
            *a += b;
        }
        if grp.oldest_start.is_none_or(|o| start < o) {
            grp.oldest_start = Some(start);
        }
        for (name, latest) in thread_out {
            let agg = grp.thread_now.entry(name.clone()).or_default();
            agg.count += 1;
            agg.counts.add(latest);
        }
    }

    fn fd_limit(&mut self, pid: i32) -> Result<Option<u64>, CollectError> {
        if !self.read(pid, None, "limits", false)? {
            return Ok(None);
        }
        Ok(parse::parse_limits_open_files(self.buf.text()).ok())
    }

    /// One collection pass: updates processes and groups.
    fn update(&mut self) -> Result<(), CollectError> {
        let now = (self.clock)();
        let first = *self.first_update_at.get_or_insert(now);
        if now - self.swap_checked_at >= IDLE_STATUS_REFRESH_SECONDS {
            self.swap_checked_at = now;
            self.host_has_swap = match self.buf.read(&self.meminfo.to_string_lossy()) {
                Ok(true) => self
                    .buf
                    .text()
                    .lines()
                    .find_map(|l| l.strip_prefix("SwapTotal:"))
                    .is_none_or(|v| v.trim().trim_end_matches("kB").trim() != "0"),
                _ => true,
            };
        }
        self.pass += 1;
        let pass = self.pass;
        for g in self.groups.iter_mut().flatten() {
            g.reset_gauges();
        }
        let mut pids = std::mem::take(&mut self.pids);
        let listed = Self::list_numeric(&self.proc_root, &mut self.dirbuf, &mut pids);
        if let Err(e) = listed {
            self.pids = pids;
            return Err(CollectError::Io(crate::host::HostError {
                path: PathBuf::from(&self.proc_root),
                source: e,
            }));
        }
        // Sorted: deterministic group creation order (max_groups) and parents usually first.
        pids.sort_unstable();
        let mut first_err: Option<CollectError> = None;
        let mut thread_out = Vec::new();
        self.new_procs.clear();
        for &pid in &pids {
            if let Err(e) = self.visit(pid, now, pass, &mut thread_out) {
                first_err.get_or_insert(e);
            }
        }
        self.pids = pids;
        if let Err(e) = self.place_new(first, now, pass, &mut thread_out) {
            first_err.get_or_insert(e);
        }
        self.procs.retain(|_, t| t.pass == pass);
        self.fds_open = self
            .procs
            .values()
            .map(|t| usize::from(t.stat_fd.is_some()) + usize::from(t.sched_fd.is_some()))
            .sum();
        self.finish_groups(now);
        match first_err {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    /// Handles one listed PID: known grouped processes are read and accounted; new ones are
    /// queued for matching.
    fn visit(
        &mut self,
        pid: i32,
        now: f64,
        pass: u64,
        thread_out: &mut Vec<(String, Counts)>,
    ) -> Result<(), CollectError> {
        let mut have = false;
        if let Some(t) = self.procs.get_mut(&pid)
            && let Some(fd) = &t.stat_fd
        {
            have = self.buf.pread(fd).unwrap_or(false);
            if !have {
                // that process is gone (ESRCH); the PID may be a new one's
                t.stat_fd = None;
                t.sched_fd = None;
            }
        }
        if !have {
            self.set_path(pid, None, "stat");
            let Some(fd) = self.open_kept(pid, "stat")? else {
                return Ok(());
            };
            if !self.buf.pread(&fd).unwrap_or(false) {
                return Ok(());
            }
            if let Some(t) = self.procs.get_mut(&pid)
                && self.fds_open < self.fd_budget
            {
                t.stat_fd = Some(fd);
                self.fds_open += 1;
            }
        }
        self.set_path(pid, None, "stat");
        let path_err = |s: &Self, e: ParseError| CollectError::parse(&s.path, e);
        let stat = parse::parse_stat(self.buf.text()).map_err(|e| path_err(self, e))?;
        let st = StatNums::from(&stat);
        let member = match self.procs.get_mut(&pid) {
            Some(t) if t.starttime == st.starttime => {
                t.pass = pass;
                Some(t.member)
            }
            _ => None,
        };
        match member {
            Some(Membership::Group(g)) => self.visit_grouped(pid, g, &st, now, thread_out)?,
            Some(Membership::Ignored) if self.recheck => {
                self.queue_new(pid, st, stat_comm(self.buf.text()))?
            }
            Some(_) => {}
            None => self.queue_new(pid, st, stat_comm(self.buf.text()))?,
        }
        Ok(())
    }

    /// Opens `<proc>/<pid>/<file>`; `None` when the process is gone.
    fn open_kept(&mut self, pid: i32, file: &str) -> Result<Option<OwnedFd>, CollectError> {
        use rustix::fs::{Mode, OFlags};
        self.set_path(pid, None, file);
        match rustix::fs::open(
            self.path.as_str(),
            OFlags::RDONLY | OFlags::CLOEXEC,
            Mode::empty(),
        ) {
            Ok(fd) => Ok(Some(fd)),
            Err(e) => {
                let e = std::io::Error::from(e);
                if is_missing(&e) || e.kind() == std::io::ErrorKind::PermissionDenied {
                    Ok(None)
                } else {
                    Err(CollectError::Io(crate::host::HostError {
                        path: PathBuf::from(&self.path),
                        source: e,
                    }))
                }
            }
        }
    }

    /// Reads `schedstat` of a known process into `buf`, through a kept-open file when possible.
    fn read_sched(&mut self, pid: i32) -> Result<bool, CollectError> {
        if let Some(t) = self.procs.get_mut(&pid)
            && let Some(fd) = &t.sched_fd
        {
            if self.buf.pread(fd).unwrap_or(false) {
                return Ok(true);
            }
            t.sched_fd = None;
        }
        let Some(fd) = self.open_kept(pid, "schedstat")? else {
            return Ok(false);
        };
        if !self.buf.pread(&fd).unwrap_or(false) {
            return Ok(false);
        }
        if let Some(t) = self.procs.get_mut(&pid)
            && self.fds_open < self.fd_budget
        {
            t.sched_fd = Some(fd);
            self.fds_open += 1;
        }
        Ok(true)
    }

    /// A process already in a group. A single-threaded process that has not been scheduled
    /// since the last scrape (same `schedstat`) cannot have switched context, done I/O or
    /// opened or closed a file, so only its `stat` is read; `status` is still re-read every
    /// [`IDLE_STATUS_REFRESH_SECONDS`] when the host has swap, for `VmSwap`.
    fn visit_grouped(
        &mut self,
        pid: i32,
        g: u32,
        st: &StatNums,
        now: f64,
        thread_out: &mut Vec<(String, Counts)>,
    ) -> Result<(), CollectError> {
        let refresh_limit = self
            .procs
            .get(&pid)
            .is_some_and(|t| now - t.fd_limit_read_at >= FD_LIMIT_REFRESH_SECONDS);
        if refresh_limit
            && let Some(limit) = self.fd_limit(pid)?
            && let Some(t) = self.procs.get_mut(&pid)
        {
            t.fd_limit = limit;
            t.fd_limit_read_at = now;
        }
        let mut sched = None;
        if st.num_threads == 1 && !self.smaps && self.read_sched(pid)? {
            sched = parse::parse_schedstat(self.buf.text());
            let idle = self.procs.get(&pid).is_some_and(|t| {
                sched.is_some()
                    && t.sched == sched
                    && (!self.host_has_swap || now - t.status_at < IDLE_STATUS_REFRESH_SECONDS)
            });
            if idle {
                let Some(t) = self.procs.get(&pid) else {
                    return Ok(());
                };
                let mut r = Reading {
                    counts: Counts {
                        utime: st.utime,
                        stime: st.stime,
                        majflt: st.majflt,
                        minflt: st.minflt,
                        ..t.last
                    },
                    swap: t.swap,
                    open_fds: t.open_fds,
                    ..Reading::default()
                };
                r.states[state_index(st.state)] += 1;
                let increase = r.counts.increase_since(&t.last);
                let limit = t.fd_limit;
                if let Some(t) = self.procs.get_mut(&pid) {
                    t.last = r.counts;
                }
                thread_out.clear();
                self.add_to_group(g, st, &r, &increase, limit, thread_out);
                return Ok(());
            }
        }
        if !self.read(pid, None, "status", false)? {
            return Ok(());
        }
        let status =
            parse::parse_status(self.buf.text()).map_err(|e| CollectError::parse(&self.path, e))?;
        let mut threads = if self.threads {
            self.procs
                .get_mut(&pid)
                .map(|t| std::mem::take(&mut t.threads))
        } else {
            None
        };
        let reading = self.reading(pid, st, &status, threads.as_mut(), thread_out)?;
        let Some(t) = self.procs.get_mut(&pid) else {
            return Ok(());
        };
        if let Some(th) = threads {
            t.threads = th;
        }
        let Some(r) = reading else { return Ok(()) };
        let increase = r.counts.increase_since(&t.last);
        t.last = r.counts;
        t.sched = sched;
        t.status_at = now;
        t.swap = status.vm_swap_bytes;
        t.open_fds = r.open_fds;
        let limit = t.fd_limit;
        self.add_to_group(g, st, &r, &increase, limit, thread_out);
        Ok(())
    }

    fn queue_new(&mut self, pid: i32, st: StatNums, comm: String) -> Result<(), CollectError> {
        if !self.read(pid, None, "status", false)? {
            return Ok(());
        }
        let status =
            parse::parse_status(self.buf.text()).map_err(|e| CollectError::parse(&self.path, e))?;
        let cmdline = if self.matcher_needs_cmdline() {
            if !self.read(pid, None, "cmdline", false)? {
                return Ok(());
            }
            self.buf.text().to_string()
        } else {
            String::new()
        };
        self.new_procs.push(NewProc {
            pid,
            stat: st,
            status,
            comm,
            cmdline,
            decided: None,
        });
        Ok(())
    }

    fn matcher_needs_cmdline(&self) -> bool {
        !self.matcher.is_match_all()
    }

    /// Matches the processes first seen in this scrape (rules first, then parents), records
    /// them, and accounts the grouped ones.
    fn place_new(
        &mut self,
        first: f64,
        now: f64,
        pass: u64,
        thread_out: &mut Vec<(String, Counts)>,
    ) -> Result<(), CollectError> {
        let mut news = std::mem::take(&mut self.new_procs);
        // Step 1: rules (and the kernel-thread policy).
        for np in news.iter_mut() {
            np.decided = self.decide_by_rules(np, now);
            if let Some(m) = np.decided {
                self.record(np, m, pass);
            }
        }
        // Step 2: children of grouped processes.
        if self.children {
            let index: HashMap<i32, usize> =
                news.iter().enumerate().map(|(i, n)| (n.pid, i)).collect();
            for i in 0..news.len() {
                if news[i].decided.is_some() {
                    continue;
                }
                let mut chain = vec![i];
                let mut outcome = Membership::Ignored;
                let mut cur = i;
                for _ in 0..4096 {
                    let ppid = news[cur].stat.ppid;
                    if let Some(t) = self.procs.get(&ppid).filter(|t| t.pass == pass) {
                        outcome = match t.member {
                            Membership::Group(g) => Membership::Group(g),
                            _ => Membership::Ignored,
                        };
                        break;
                    }
                    match index.get(&ppid) {
                        Some(&p) if news[p].decided.is_none() && !chain.contains(&p) => {
                            chain.push(p);
                            cur = p;
                        }
                        Some(&p) => {
                            if let Some(Membership::Group(g)) = news[p].decided {
                                outcome = Membership::Group(g);
                            }
                            break;
                        }
                        None => break,
                    }
                }
                for &c in &chain {
                    news[c].decided = Some(outcome);
                    self.record(&news[c], outcome, pass);
                }
            }
        }
        for np in news.iter_mut() {
            let m = np.decided.unwrap_or(Membership::Ignored);
            if np.decided.is_none() {
                np.decided = Some(m);
                self.record(np, m, pass);
            }
        }
        // Account the newly grouped processes.
        let mut result = Ok(());
        for np in &news {
            let Some(Membership::Group(g)) = np.decided else {
                continue;
            };
            if let Err(e) = self.account_new(np, g, first, now, thread_out) {
                result = Err(e);
            }
        }
        news.clear();
        self.new_procs = news;
        result
    }

    fn account_new(
        &mut self,
        np: &NewProc,
        g: u32,
        first: f64,
        now: f64,
        thread_out: &mut Vec<(String, Counts)>,
    ) -> Result<(), CollectError> {
        let limit = self.fd_limit(np.pid)?;
        let Some(limit) = limit else {
            // process-exporter skips a process whose limits it cannot read (it exited)
            self.procs.remove(&np.pid);
            return Ok(());
        };
        let mut threads = if self.threads {
            Some(HashMap::new())
        } else {
            None
        };
        let Some(r) = self.reading(np.pid, &np.stat, &np.status, threads.as_mut(), thread_out)?
        else {
            self.procs.remove(&np.pid);
            return Ok(());
        };
        let start = self.boot_time + np.stat.starttime as f64 / self.ticks;
        // A process that was running at the first reading counts from that reading on; one
        // started later counts from zero (process-exporter's firstUpdateAt rule).
        let baseline = if start > first {
            Counts::default()
        } else {
            r.counts
        };
        let increase = r.counts.increase_since(&baseline);
        if let Some(t) = self.procs.get_mut(&np.pid) {
            t.last = r.counts;
            t.fd_limit = limit;
            t.fd_limit_read_at = now;
            if let Some(th) = threads {
                t.threads = th;
            }
        }
        self.add_to_group(g, &np.stat, &r, &increase, limit, thread_out);
        Ok(())
    }

    fn record(&mut self, np: &NewProc, m: Membership, pass: u64) {
        if m == Membership::Ignored && self.recheck {
            // not remembered: matched again next scrape
            self.procs.remove(&np.pid);
            return;
        }
        self.procs.insert(
            np.pid,
            Tracked {
                starttime: np.stat.starttime,
                pass,
                member: m,
                last: Counts::default(),
                fd_limit: 0,
                fd_limit_read_at: f64::NEG_INFINITY,
                threads: HashMap::new(),
                sched: None,
                status_at: f64::NEG_INFINITY,
                swap: 0,
                open_fds: -1,
                stat_fd: None,
                sched_fd: None,
            },
        );
    }

    fn decide_by_rules(&mut self, np: &NewProc, now: f64) -> Option<Membership> {
        if np.stat.kthread {
            match self.kernel_threads {
                KernelThreads::Exclude => return Some(Membership::Ignored),
                KernelThreads::Fold => {
                    return Some(match self.group_for(KERNEL_GROUP, now) {
                        Some(g) => Membership::Group(g),
                        None => Membership::Overflow,
                    });
                }
                KernelThreads::Include => {}
            }
        }
        let username = if self.matcher.uses_username() {
            self.username(np.status.euid)
        } else {
            String::new()
        };
        let info = ProcInfo {
            comm: &np.comm,
            cmdline_raw: &np.cmdline,
            username: &username,
            pid: np.pid,
            start_time: self.boot_time + np.stat.starttime as f64 / self.ticks,
        };
        let mut name = std::mem::take(&mut self.name);
        let matched = self
            .matcher
            .match_and_name(&info, &mut self.scratch, &mut name);
        let out = if matched {
            Some(match self.group_for(&name, now) {
                Some(g) => Membership::Group(g),
                None => Membership::Overflow,
            })
        } else {
            None
        };
        self.name = name;
        out
    }

    /// Expires empty groups past the TTL and recounts overflowed processes.
    fn finish_groups(&mut self, now: f64) {
        self.overflow_procs = self
            .procs
            .values()
            .filter(|t| t.member == Membership::Overflow)
            .count() as u64;
        let free_before = self.free_groups.len();
        for (id, slot) in self.groups.iter_mut().enumerate() {
            let Some(g) = slot else { continue };
            if g.procs > 0 {
                g.last_nonempty = now;
            } else if self.ttl > 0.0 && now - g.last_nonempty >= self.ttl {
                self.by_name.remove(&g.name);
                *slot = None;
                self.free_groups.push(id as u32);
                continue;
            }
            // Threads by name: this scrape's increases plus the history of names still present.
            if g.thread_now.is_empty() {
                g.thread_hist.clear();
            } else {
                for (name, agg) in g.thread_now.iter_mut() {
                    if let Some(h) = g.thread_hist.get(name) {
                        agg.counts.add(&h.counts);
                    }
                }
                std::mem::swap(&mut g.thread_hist, &mut g.thread_now);
                g.thread_now.clear();
            }
        }
        // A process still known as a member of an expired group (it could not be read for the
        // whole TTL) is matched again when next seen, so it never lands in a reused slot.
        let dropped = &self.free_groups[free_before..];
        if !dropped.is_empty() {
            self.procs
                .retain(|_, t| !matches!(t.member, Membership::Group(g) if dropped.contains(&g)));
        }
    }

    fn write(&mut self, sink: &mut Sink) {
        let mut order = std::mem::take(&mut self.order);
        order.clear();
        order.extend(
            self.groups
                .iter()
                .enumerate()
                .filter(|(_, g)| g.is_some())
                .map(|(i, _)| i as u32),
        );
        let groups = &self.groups;
        let get = |i: u32| groups[i as usize].as_ref();
        order.sort_by(|&a, &b| {
            get(a)
                .map(|g| g.name.as_str())
                .cmp(&get(b).map(|g| g.name.as_str()))
        });
        sink.gauge(
            "sonde_process_overflow_procs",
            "Processes not reported because collectors.process.max_groups groups exist.",
            self.overflow_procs as f64,
        );
        if order.is_empty() {
            // no group yet: no family (as process-exporter, whose families have no samples)
            self.order = order;
            return;
        }
        let ticks = self.ticks;
        let each = |sink: &mut Sink,
                    name: &str,
                    help: &str,
                    kind: MetricType,
                    f: &dyn Fn(&Group) -> f64| {
            let mut w = sink.family(name, help, kind);
            for &i in &order {
                if let Some(g) = get(i) {
                    w.sample(&[("groupname", g.name.as_str())], f(g));
                }
            }
        };
        each(
            sink,
            "namedprocess_namegroup_num_procs",
            "number of processes in this group",
            MetricType::Gauge,
            &|g| g.procs as f64,
        );
        {
            let mut w = sink.family(
                "namedprocess_namegroup_cpu_seconds_total",
                "Cpu user usage in seconds",
                MetricType::Counter,
            );
            for &i in &order {
                if let Some(g) = get(i) {
                    w.sample(
                        &[("groupname", g.name.as_str()), ("mode", "system")],
                        g.accum.stime as f64 / ticks,
                    );
                    w.sample(
                        &[("groupname", g.name.as_str()), ("mode", "user")],
                        g.accum.utime as f64 / ticks,
                    );
                }
            }
        }
        each(
            sink,
            "namedprocess_namegroup_read_bytes_total",
            "number of bytes read by this group",
            MetricType::Counter,
            &|g| g.accum.read_bytes as f64,
        );
        each(
            sink,
            "namedprocess_namegroup_write_bytes_total",
            "number of bytes written by this group",
            MetricType::Counter,
            &|g| g.accum.write_bytes as f64,
        );
        each(
            sink,
            "namedprocess_namegroup_major_page_faults_total",
            "Major page faults",
            MetricType::Counter,
            &|g| g.accum.majflt as f64,
        );
        each(
            sink,
            "namedprocess_namegroup_minor_page_faults_total",
            "Minor page faults",
            MetricType::Counter,
            &|g| g.accum.minflt as f64,
        );
        {
            let mut w = sink.family(
                "namedprocess_namegroup_context_switches_total",
                "Context switches",
                MetricType::Counter,
            );
            for &i in &order {
                if let Some(g) = get(i) {
                    w.sample(
                        &[
                            ("ctxswitchtype", "nonvoluntary"),
                            ("groupname", g.name.as_str()),
                        ],
                        g.accum.ctx_nonvol as f64,
                    );
                    w.sample(
                        &[
                            ("ctxswitchtype", "voluntary"),
                            ("groupname", g.name.as_str()),
                        ],
                        g.accum.ctx_vol as f64,
                    );
                }
            }
        }
        {
            let smaps = self.smaps;
            let mut w = sink.family(
                "namedprocess_namegroup_memory_bytes",
                "number of bytes of memory in use",
                MetricType::Gauge,
            );
            for &i in &order {
                if let Some(g) = get(i) {
                    if smaps {
                        w.sample(
                            &[
                                ("groupname", g.name.as_str()),
                                ("memtype", "proportionalResident"),
                            ],
                            g.pss as f64,
                        );
                        w.sample(
                            &[
                                ("groupname", g.name.as_str()),
                                ("memtype", "proportionalSwapped"),
                            ],
                            g.swap_pss as f64,
                        );
                    }
                    w.sample(
                        &[("groupname", g.name.as_str()), ("memtype", "resident")],
                        g.resident as f64,
                    );
                    w.sample(
                        &[("groupname", g.name.as_str()), ("memtype", "swapped")],
                        g.swap as f64,
                    );
                    w.sample(
                        &[("groupname", g.name.as_str()), ("memtype", "virtual")],
                        g.virt as f64,
                    );
                }
            }
        }
        each(
            sink,
            "namedprocess_namegroup_open_filedesc",
            "number of open file descriptors for this group",
            MetricType::Gauge,
            &|g| g.open_fds as f64,
        );
        each(
            sink,
            "namedprocess_namegroup_worst_fd_ratio",
            "the worst (closest to 1) ratio between open fds and max fds among all procs in this group",
            MetricType::Gauge,
            &|g| g.worst_fd_ratio,
        );
        // An empty group reports Go's zero time, as process-exporter does.
        each(
            sink,
            "namedprocess_namegroup_oldest_start_time_seconds",
            "start time in seconds since 1970/01/01 of oldest process in group",
            MetricType::Gauge,
            &|g| g.oldest_start.map_or(GO_ZERO_TIME_UNIX, f64::trunc),
        );
        each(
            sink,
            "namedprocess_namegroup_num_threads",
            "Number of threads",
            MetricType::Gauge,
            &|g| g.num_threads as f64,
        );
        {
            let mut w = sink.family(
                "namedprocess_namegroup_states",
                "Number of processes in states Running, Sleeping, Waiting, Zombie, or Other",
                MetricType::Gauge,
            );
            for &i in &order {
                if let Some(g) = get(i) {
                    for s in [4, 0, 1, 2, 3] {
                        w.sample(
                            &[("groupname", g.name.as_str()), ("state", STATE_NAMES[s])],
                            g.states[s] as f64,
                        );
                    }
                }
            }
        }
        if self.threads {
            self.write_threads(sink, &order);
        }
        self.order = order;
    }

    fn write_threads(&self, sink: &mut Sink, order: &[u32]) {
        let ticks = self.ticks;
        let mut names: Vec<&String> = Vec::new();
        type Emit<'a> = (
            &'a str,
            &'a str,
            MetricType,
            Option<&'a str>,
            [(&'a str, fn(&ThreadAgg, f64) -> f64); 2],
        );
        let fams: [Emit<'_>; 6] = [
            (
                "namedprocess_namegroup_thread_count",
                "Number of threads in this group with same threadname",
                MetricType::Gauge,
                None,
                [("", |a, _| a.count as f64), ("", |_, _| 0.0)],
            ),
            (
                "namedprocess_namegroup_thread_cpu_seconds_total",
                "Cpu user/system usage in seconds",
                MetricType::Counter,
                Some("mode"),
                [
                    ("system", |a, t| a.counts.stime as f64 / t),
                    ("user", |a, t| a.counts.utime as f64 / t),
                ],
            ),
            (
                "namedprocess_namegroup_thread_io_bytes_total",
                "number of bytes read/written by these threads",
                MetricType::Counter,
                Some("iomode"),
                [
                    ("read", |a, _| a.counts.read_bytes as f64),
                    ("write", |a, _| a.counts.write_bytes as f64),
                ],
            ),
            (
                "namedprocess_namegroup_thread_major_page_faults_total",
                "Major page faults for these threads",
                MetricType::Counter,
                None,
                [("", |a, _| a.counts.majflt as f64), ("", |_, _| 0.0)],
            ),
            (
                "namedprocess_namegroup_thread_minor_page_faults_total",
                "Minor page faults for these threads",
                MetricType::Counter,
                None,
                [("", |a, _| a.counts.minflt as f64), ("", |_, _| 0.0)],
            ),
            (
                "namedprocess_namegroup_thread_context_switches_total",
                "Context switches for these threads",
                MetricType::Counter,
                Some("ctxswitchtype"),
                [
                    ("nonvoluntary", |a, _| a.counts.ctx_nonvol as f64),
                    ("voluntary", |a, _| a.counts.ctx_vol as f64),
                ],
            ),
        ];
        for (fam, help, kind, label, parts) in fams {
            let mut w = sink.family(fam, help, kind);
            for &i in order {
                let Some(g) = self.groups[i as usize].as_ref() else {
                    continue;
                };
                names.clear();
                names.extend(g.thread_hist.keys());
                names.sort();
                for n in &names {
                    let Some(agg) = g.thread_hist.get(*n) else {
                        continue;
                    };
                    match label {
                        None => {
                            w.sample(
                                &[("groupname", g.name.as_str()), ("threadname", n)],
                                (parts[0].1)(agg, ticks),
                            );
                        }
                        Some(l) => {
                            for (v, f) in parts {
                                let mut labels = [
                                    ("groupname", g.name.as_str()),
                                    ("threadname", n.as_str()),
                                    (l, v),
                                ];
                                if l == "ctxswitchtype" {
                                    labels.rotate_right(1);
                                }
                                w.sample(&labels, f(agg, ticks));
                            }
                        }
                    }
                }
            }
        }
    }
}

/// A reusable read buffer for small procfs files. `std::fs::File::read_to_string` asks for the
/// file size first (`statx` + `lseek`), which procfs files do not have; this reads directly.
#[derive(Debug)]
struct FileBuf {
    data: Vec<u8>,
    len: usize,
}

impl FileBuf {
    fn new() -> Self {
        Self {
            data: vec![0; 8192],
            len: 0,
        }
    }

    /// Reads the whole file; `Ok(false)` when it is missing or its process is gone.
    fn read(&mut self, path: &str) -> std::io::Result<bool> {
        use rustix::fs::{Mode, OFlags};
        self.len = 0;
        let fd = match rustix::fs::open(path, OFlags::RDONLY | OFlags::CLOEXEC, Mode::empty()) {
            Ok(fd) => fd,
            Err(e) => {
                let e = std::io::Error::from(e);
                return if is_missing(&e) { Ok(false) } else { Err(e) };
            }
        };
        loop {
            if self.len == self.data.len() {
                self.data.resize(self.data.len() * 2, 0);
            }
            let room = self.data.len() - self.len;
            match rustix::io::read(&fd, &mut self.data[self.len..]) {
                Ok(0) => break,
                // procfs seq_files (stat, status, io, schedstat, limits, meminfo...) return
                // everything that fits in one read: a short read is the end, no need for the
                // extra read that returns 0. (cmdline is not a seq_file: read to the end.)
                Ok(n) if n < room && !path.ends_with("cmdline") => {
                    self.len += n;
                    break;
                }
                Ok(n) => self.len += n,
                Err(rustix::io::Errno::INTR) => continue,
                Err(e) => {
                    let e = std::io::Error::from(e);
                    self.len = 0;
                    return if is_missing(&e) { Ok(false) } else { Err(e) };
                }
            }
        }
        // comm and cmdline may hold any bytes: keep the text valid UTF-8
        self.sanitize();
        Ok(true)
    }

    /// Reads an open procfs file again from offset 0 (a seq_file regenerates its content);
    /// `Ok(false)` once its process is gone.
    fn pread(&mut self, fd: &OwnedFd) -> std::io::Result<bool> {
        self.len = 0;
        loop {
            if self.len == self.data.len() {
                self.data.resize(self.data.len() * 2, 0);
            }
            let room = self.data.len() - self.len;
            match rustix::io::pread(fd, &mut self.data[self.len..], self.len as u64) {
                Ok(0) => break,
                Ok(n) if n < room => {
                    self.len += n;
                    break;
                }
                Ok(n) => self.len += n,
                Err(rustix::io::Errno::INTR) => continue,
                Err(e) => {
                    let e = std::io::Error::from(e);
                    self.len = 0;
                    return if is_missing(&e) { Ok(false) } else { Err(e) };
                }
            }
        }
        if self.len == 0 {
            return Ok(false);
        }
        self.sanitize();
        Ok(true)
    }

    fn sanitize(&mut self) {
        while let Err(e) = std::str::from_utf8(&self.data[..self.len]) {
            let bad = e.valid_up_to();
            let n = e.error_len().unwrap_or(self.len - bad);
            for b in &mut self.data[bad..bad + n] {
                *b = b'?';
            }
        }
    }

    fn text(&self) -> &str {
        std::str::from_utf8(&self.data[..self.len]).unwrap_or_default()
    }
}

/// `time.Time{}.Unix()` in Go: January 1, year 1.
const GO_ZERO_TIME_UNIX: f64 = -62_135_596_800.0;

fn stat_comm(stat_text: &str) -> String {
    parse::parse_stat(stat_text)
        .map(|s| s.comm.to_string())
        .unwrap_or_default()
}

impl Collector for ProcessCollector {
    fn name(&self) -> &'static str {
        "process"
    }

    fn collect(&mut self, sink: &mut Sink) -> Result<(), CollectError> {
        let result = self.update();
        self.write(sink);
        result
    }
}

#[cfg(test)]
mod tests;
