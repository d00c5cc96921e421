//! `cgroup` collector: containers, pods and systemd services from cgroups v1, v2 and hybrid
//! hierarchies, as the kubelet's `/metrics/cadvisor` (`container_*` families and labels).
//!
//! Flow per scrape: walk the primary hierarchy (v2: the unified mount; v1/hybrid: `memory`,
//! else `cpuacct`, `cpu`, `pids`, `name=systemd`) without descending into containers, classify
//! new paths once ([`path::classify`], cached per path), apply the filters, read the counters of
//! the cgroups kept, and write each family once. Mounts are re-detected from `mountinfo` every
//! minute, block device names from `/sys/block` likewise; limits (`container_spec_*`) are
//! re-read every `limits_refresh_seconds`; counters every scrape.
//!
//! Mount points come from `<procfs>/1/mountinfo` (falling back to `self/mountinfo`). A mount
//! point under `/sys/` is reached through the configured sysfs (`--path.sysfs=/host/sys` in a
//! container sees the host's cgroup mounts there); any other through the rootfs.
//!
//! Cost: each cgroup file read every scrape is kept open and re-read with `pread` at offset 0
//! (cgroup and seq_file files regenerate on such a read), within a budget of half of what the
//! soft `RLIMIT_NOFILE` leaves after 1024; beyond it, files are opened per scrape (`openat`
//! relative to a descriptor of the hierarchy, one `read`). Label sets are rendered once per
//! cgroup; network counters are read once per network namespace.
//!
//! Differences from cAdvisor, on purpose or by necessity:
//! - `name` is the runtime's container id (what cAdvisor's containerd and CRI-O handlers give);
//!   `image`, `namespace`, `pod` and `container` come from a [`ContainerMetadata`] provider.
//! - `container_oom_events_total` is the kernel's `oom_kill` count (`memory.events`, v1
//!   `memory.oom_control`), not a count of kernel log lines.
//! - `container_processes` counts the processes of the cgroup itself (containers are leaves).
//! - Pressure families appear only where `*.pressure` files exist (v2, or the unified mount
//!   of a hybrid host), not as zeros.
//! - Network: only for containers whose network namespace differs from the host's (which
//!   needs `readlink` of `<procfs>/1/ns/net` and `<procfs>/<pid>/ns/net`: host PID namespace
//!   and ptrace-read access); none for the root cgroup (`node_network_*` covers it).
//! - Extra labels (`cpu`, `device`, `interface`, `failure_type`, `scope`) come after the
//!   base set in the exposition; label order carries no meaning.

pub mod detect;
pub mod meta;
pub mod parse;
pub mod path;

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde::Deserialize;

use crate::collect::registry::CollectorModule;
use crate::collect::sink::escape_label_value;
use crate::collect::{CollectError, Collector, MetricType, Sink, Suffix};
use crate::config::Issue;
use crate::config::Pattern;
use crate::host::{HostError, HostRoot, list_dir, read_into};
use rustix::fd::OwnedFd;
use rustix::fs::{Mode as FsMode, OFlags};

use detect::{Mode, Mount, Mounts};
pub use meta::{ContainerInfo, ContainerMetadata, MetadataHandle, set_metadata};
use parse::{CpuStat, DevIo, MemStat, NetIf};
use path::{Identity, Kind};

/// Registry entry.
pub struct Module;

/// `collectors.cgroup`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Whether the collector runs.
    pub enabled: bool,
    /// Keep only cgroups whose `container` label (or `name` when there is none) matches.
    pub container_include: Option<Pattern>,
    /// Drop cgroups whose `container` label (or `name`) matches.
    pub container_exclude: Option<Pattern>,
    /// Keep only cgroups whose `namespace` label matches (cgroups outside pods have `""`).
    pub namespace_include: Option<Pattern>,
    /// Drop cgroups whose `namespace` label matches.
    pub namespace_exclude: Option<Pattern>,
    /// Keep only cgroups whose path (`id` label) matches.
    pub path_include: Option<Pattern>,
    /// Drop cgroups whose path matches.
    pub path_exclude: Option<Pattern>,
    /// Drop pod sandbox (pause) containers.
    pub drop_pause_containers: bool,
    /// Drop pod-level and QoS-level cgroups (`kubepods*`, `pod<uid>`).
    pub drop_pod_cgroups: bool,
    /// Report systemd services (`*.service` cgroups).
    pub include_system_services: bool,
    /// Report every other cgroup too (slices, session scopes), like standalone cAdvisor.
    pub include_other_cgroups: bool,
    /// At most this many cgroups per scrape (root, containers, pods, services, others, in that
    /// order); the rest are counted in `sonde_cgroup_dropped{reason="max_containers"}`.
    pub max_containers: usize,
    /// Per-container network counters from `/proc/<pid>/net/dev` of a process in the container.
    pub network: bool,
    /// How often limits (`container_spec_*`) are re-read.
    pub limits_refresh_seconds: u64,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            enabled: true,
            container_include: None,
            container_exclude: None,
            namespace_include: None,
            namespace_exclude: None,
            path_include: None,
            path_exclude: None,
            drop_pause_containers: true,
            drop_pod_cgroups: false,
            include_system_services: true,
            include_other_cgroups: false,
            max_containers: 2000,
            network: true,
            limits_refresh_seconds: 60,
        }
    }
}

impl Config {
    fn check(&self, key: &str, issues: &mut Vec<Issue>) {
        if self.max_containers == 0 {
            issues.push(Issue::new(
                format!("{key}.max_containers"),
                "must be at least 1",
            ));
        }
    }
}

crate::collector_config!(Config);

impl CollectorModule for Module {
    type Config = Config;
    fn build(cfg: &Config, host: &HostRoot) -> Box<dyn Collector> {
        Box::new(Cgroup::with_metadata(
            cfg.clone(),
            host.clone(),
            meta::global().clone(),
        ))
    }
}

const MOUNT_REFRESH: Duration = Duration::from_secs(60);
const DEVICE_REFRESH: Duration = Duration::from_secs(60);

/// One mounted hierarchy as reachable from here, with a directory descriptor kept open so
/// that each cgroup file costs `openat` + `read` + `close` relative to it.
#[derive(Debug)]
struct Base {
    path: PathBuf,
    /// The hierarchy path mounted there (`""` for the real root).
    root: String,
    fd: Option<OwnedFd>,
}

type BaseRef = Option<Arc<Base>>;

/// Where each resource is read, resolved from [`Mounts`].
#[derive(Debug, Clone, Default)]
struct Layout {
    mode: Option<Mode>,
    cpu: BaseRef,
    cpuacct: BaseRef,
    memory: BaseRef,
    blkio: BaseRef,
    pids: BaseRef,
    unified: BaseRef,
    /// The hierarchy walked to find cgroups.
    walk: BaseRef,
    /// False when the host has no swap (`SwapTotal: 0`): every cgroup's swap is then 0 and
    /// `memory.swap.current` is not read.
    swap: bool,
}

impl Layout {
    fn from_mounts(m: &Mounts, host: &HostRoot) -> Self {
        let local = |mnt: &Option<Mount>| -> BaseRef {
            mnt.as_ref().map(|mnt| {
                let path = match mnt.point.strip_prefix("/sys/") {
                    Some(rest) => host.sys(rest),
                    None => host.rootfs_mount_point(&mnt.point),
                };
                let fd = rustix::fs::open(
                    &path,
                    OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
                    FsMode::empty(),
                )
                .ok();
                Arc::new(Base {
                    path,
                    root: mnt.root.trim_end_matches('/').to_string(),
                    fd,
                })
            })
        };
        let unified = local(&m.unified);
        let mode = m.mode();
        let v2 = mode == Some(Mode::V2);
        let pick = |v1: &Option<Mount>| {
            if v2 {
                unified.clone()
            } else {
                local(v1).or_else(|| unified.clone())
            }
        };
        let walk = if v2 {
            unified.clone()
        } else {
            local(&m.memory)
                .or_else(|| local(&m.cpuacct))
                .or_else(|| local(&m.cpu))
                .or_else(|| local(&m.pids))
                .or_else(|| local(&m.systemd))
        };
        Self {
            mode,
            cpu: pick(&m.cpu),
            cpuacct: pick(&m.cpuacct),
            memory: pick(&m.memory),
            blkio: pick(&m.blkio),
            pids: pick(&m.pids),
            unified,
            walk,
            swap: true,
        }
    }

    fn v2(&self) -> bool {
        self.mode == Some(Mode::V2)
    }
}

/// Limits and start time, refreshed slowly.
#[derive(Debug, Clone, Copy, Default)]
struct Spec {
    has_cpu: bool,
    cpu_period: u64,
    cpu_quota: u64,
    cpu_shares: u64,
    has_memory: bool,
    mem_limit: u64,
    mem_swap_limit: u64,
    mem_reservation: u64,
}

/// Counters read every scrape.
#[derive(Debug, Clone, Default)]
struct Stats {
    cpu: Option<CpuStat>,
    mem_usage: Option<u64>,
    mem: Option<MemStat>,
    swap: Option<u64>,
    failcnt: Option<u64>,
    oom: Option<u64>,
    processes: Option<u64>,
    threads: Option<u64>,
    /// cpu, memory, io: (some, full) in µs.
    psi: [Option<(u64, Option<u64>)>; 3],
    io: Vec<DevIo>,
    net: Vec<NetIf>,
}

#[derive(Debug)]
struct Entry {
    ident: Identity,
    /// Reported label values (`name`: the runtime's container id, as cAdvisor's containerd
    /// handler).
    meta: Option<ContainerInfo>,
    /// The path relative to the mounts (without the mount's root).
    rel: String,
    /// The `id` label: the hierarchy path as cAdvisor names it.
    id: String,
    seen: u64,
    report: bool,
    filter_ok: Option<bool>,
    pause: Option<bool>,
    start_time: Option<f64>,
    spec: Spec,
    spec_at: Option<Instant>,
    stats: Stats,
    first_pid: Option<u32>,
    /// Per-scrape files, kept open when possible.
    files: [Slot; SLOTS],
    /// The rendered base label set (cached; cleared when the metadata changes).
    labels: String,
    /// The network namespace (`net:[inode]`) of `netns_pid`, cached per process.
    netns: Option<String>,
    netns_pid: u32,
}

/// Per-scrape drop counts.
#[derive(Debug, Default, Clone, Copy)]
struct Dropped {
    max: u64,
    filter: u64,
    pause: u64,
    pod: u64,
}

/// A cgroup file of an entry, kept open between scrapes when the descriptor budget allows:
/// cgroup (kernfs) and seq_file files regenerate their content on a read at offset 0, so a
/// kept file costs one `pread` per scrape instead of `openat` + `read` + `close`.
#[derive(Debug, Default)]
enum Slot {
    /// Not opened yet (or not kept for lack of budget).
    #[default]
    Unknown,
    /// The file does not exist for this cgroup (re-checked with the limits).
    Missing,
    /// Kept open.
    Open(OwnedFd),
}

const SLOTS: usize = 15;

/// How many descriptors may be kept open, and how many are.
#[derive(Debug, Clone, Copy, Default)]
struct FdBudget {
    used: usize,
    max: usize,
}

impl FdBudget {
    /// Half of what the soft `RLIMIT_NOFILE` leaves after 1024 for everything else.
    fn from_rlimit() -> Self {
        let lim = rustix::process::getrlimit(rustix::process::Resource::Nofile);
        let soft = lim.current.unwrap_or(1 << 20).min(1 << 20) as usize;
        Self {
            used: 0,
            max: soft.saturating_sub(1024) / 2,
        }
    }
}

/// Reads an entry's per-scrape files through its slots.
struct Files<'a> {
    rd: &'a mut Reader,
    slots: &'a mut [Slot; SLOTS],
    budget: &'a mut FdBudget,
    /// Set when a kept file turned out to belong to a removed cgroup.
    recreated: &'a mut bool,
}

impl Files<'_> {
    fn read(&mut self, base: &Base, rel: &str, file: &str, slot: usize) -> Result<bool, HostError> {
        match &self.slots[slot] {
            Slot::Missing => return Ok(false),
            Slot::Open(fd) => match self.rd.pread_all(fd) {
                Ok(()) => return Ok(true),
                Err(e) => {
                    self.slots[slot] = Slot::Unknown;
                    self.budget.used = self.budget.used.saturating_sub(1);
                    let e = std::io::Error::from(e);
                    if !crate::host::is_missing(&e) {
                        return Err(HostError {
                            path: base.path.join(rel).join(file),
                            source: e,
                        });
                    }
                    // The cgroup we held was removed (ENODEV). The path may name a new cgroup
                    // (a restarted systemd service): open it again below.
                    *self.recreated = true;
                }
            },
            Slot::Unknown => {}
        }
        match self.rd.read(base, rel, file)? {
            None => {
                self.slots[slot] = Slot::Missing;
                Ok(false)
            }
            Some(fd) => {
                if self.budget.used < self.budget.max {
                    self.budget.used += 1;
                    self.slots[slot] = Slot::Open(fd);
                }
                Ok(true)
            }
        }
    }

    fn u64(
        &mut self,
        base: &Base,
        rel: &str,
        file: &str,
        slot: usize,
    ) -> Result<Option<u64>, CollectError> {
        if !self.read(base, rel, file, slot)? {
            return Ok(None);
        }
        parse::single(self.rd.text())
            .map(Some)
            .map_err(|e| CollectError::parse(base.path.join(&self.rd.rel), e))
    }
}

/// Reusable buffers for reads.
#[derive(Debug, Default)]
struct Reader {
    /// `<rel>/<file>` of the last cgroup read.
    rel: String,
    bytes: Vec<u8>,
    len: usize,
    /// Text of the last `/proc` read and its path.
    path: PathBuf,
    buf: String,
}

const READ_CHUNK: usize = 16 * 1024;

impl Reader {
    /// Reads `<base>/<rel>/<file>`; false when missing. The text is [`Reader::text`].
    ///
    /// Kernel cgroup and seq_file reads fill the buffer until it is full or the file ends, so a
    /// short read is the end: three system calls per file instead of std's six.
    fn read(&mut self, base: &Base, rel: &str, file: &str) -> Result<Option<OwnedFd>, HostError> {
        self.rel.clear();
        if !rel.is_empty() {
            self.rel.push_str(rel);
            self.rel.push('/');
        }
        self.rel.push_str(file);
        self.len = 0;
        let Some(dir) = &base.fd else {
            return Ok(None);
        };
        let err = |e: rustix::io::Errno, rel: &str| {
            let e = std::io::Error::from(e);
            if crate::host::is_missing(&e) {
                Ok(None)
            } else {
                Err(HostError {
                    path: base.path.join(rel),
                    source: e,
                })
            }
        };
        let fd = match rustix::fs::openat(
            dir,
            self.rel.as_str(),
            OFlags::RDONLY | OFlags::CLOEXEC,
            FsMode::empty(),
        ) {
            Ok(fd) => fd,
            Err(e) => return err(e, &self.rel),
        };
        if self.bytes.len() < READ_CHUNK {
            self.bytes.resize(READ_CHUNK, 0);
        }
        loop {
            match rustix::io::read(&fd, &mut self.bytes[self.len..]) {
                Ok(0) => break,
                Ok(n) => {
                    self.len += n;
                    if self.len < self.bytes.len() {
                        break;
                    }
                    let grown = self.bytes.len() * 2;
                    self.bytes.resize(grown, 0);
                }
                Err(rustix::io::Errno::INTR) => continue,
                Err(e) => return err(e, &self.rel),
            }
        }
        Ok(Some(fd))
    }

    /// Like [`Reader::read`] for a file name only, dropping the descriptor.
    fn read_once(&mut self, base: &Base, rel: &str, file: &str) -> Result<bool, HostError> {
        Ok(self.read(base, rel, file)?.is_some())
    }

    /// Re-reads a kept file from offset 0.
    fn pread_all(&mut self, fd: &OwnedFd) -> Result<(), rustix::io::Errno> {
        self.len = 0;
        loop {
            match rustix::io::pread(fd, &mut self.bytes[self.len..], self.len as u64) {
                Ok(0) => return Ok(()),
                Ok(n) => {
                    self.len += n;
                    if self.len < self.bytes.len() {
                        return Ok(());
                    }
                    let grown = self.bytes.len() * 2;
                    self.bytes.resize(grown, 0);
                }
                Err(rustix::io::Errno::INTR) => continue,
                Err(e) => return Err(e),
            }
        }
    }

    /// The text of the last [`Reader::read`] (empty if it was not UTF-8).
    fn text(&self) -> &str {
        std::str::from_utf8(&self.bytes[..self.len]).unwrap_or("")
    }
}

/// The cgroup collector. Build it with [`Cgroup::with_metadata`] to plug a provider in tests;
/// the registry builds it with the process-wide [`meta::global`] slot.
pub struct Cgroup {
    cfg: Config,
    host: HostRoot,
    metadata: MetadataHandle,
    layout: Layout,
    layout_at: Option<Instant>,
    entries: BTreeMap<String, Entry>,
    generation: u64,
    rd: Reader,
    walk_stack: Vec<String>,
    devices: HashMap<(u32, u32), String>,
    devices_at: Option<Instant>,
    host_netns: Option<String>,
    ticks: u64,
    dropped: Dropped,
    reported: u64,
    scratch: String,
    budget: FdBudget,
    /// The last network namespace read this scrape and its interfaces (containers of a pod
    /// share one, and are adjacent in path order).
    last_netns: String,
    last_net: Vec<NetIf>,
}

impl Cgroup {
    /// A collector reading through `host`, labelled by whatever provider `metadata` holds.
    pub fn with_metadata(cfg: Config, host: HostRoot, metadata: MetadataHandle) -> Self {
        Self {
            cfg,
            host,
            metadata,
            layout: Layout::default(),
            layout_at: None,
            entries: BTreeMap::new(),
            generation: 0,
            rd: Reader::default(),
            walk_stack: Vec::new(),
            devices: HashMap::new(),
            devices_at: None,
            host_netns: None,
            ticks: rustix::param::clock_ticks_per_second(),
            dropped: Dropped::default(),
            reported: 0,
            scratch: String::new(),
            budget: FdBudget::from_rlimit(),
            last_netns: String::new(),
            last_net: Vec::new(),
        }
    }

    fn refresh_layout(&mut self, now: Instant) -> Result<(), CollectError> {
        if self
            .layout_at
            .is_some_and(|t| now.duration_since(t) < MOUNT_REFRESH)
        {
            return Ok(());
        }
        let mut path = self.host.proc("1/mountinfo");
        if !read_into(&path, &mut self.rd.buf)? {
            path = self.host.proc("self/mountinfo");
            if !read_into(&path, &mut self.rd.buf)? {
                self.rd.buf.clear();
            }
        }
        let mounts =
            detect::parse_mountinfo(&self.rd.buf).map_err(|e| CollectError::parse(&path, e))?;
        self.layout = Layout::from_mounts(&mounts, &self.host);
        if read_into(&self.host.proc("meminfo"), &mut self.rd.buf)? {
            self.layout.swap = swap_total_kb(&self.rd.buf) != Some(0);
        }
        self.layout_at = Some(now);
        // The host's network namespace, to tell containers with their own from host-network
        // ones.
        self.host_netns = rustix::fs::readlink(self.host.proc("1/ns/net"), Vec::new())
            .ok()
            .map(|s| s.to_string_lossy().into_owned());
        Ok(())
    }

    fn refresh_devices(&mut self, now: Instant) -> Result<(), CollectError> {
        if self
            .devices_at
            .is_some_and(|t| now.duration_since(t) < DEVICE_REFRESH)
        {
            return Ok(());
        }
        self.devices.clear();
        let block = self.host.sys("block");
        for name in list_dir(&block)? {
            // cAdvisor's disk map leaves out RAM disks, loop devices and optical drives.
            if ["ram", "loop", "sr"].iter().any(|p| name.starts_with(p)) {
                continue;
            }
            let p = block.join(&name).join("dev");
            if read_into(&p, &mut self.rd.buf)?
                && let Some((ma, mi)) = self.rd.buf.trim().split_once(':')
                && let (Ok(ma), Ok(mi)) = (ma.parse(), mi.parse())
            {
                self.devices.insert((ma, mi), format!("/dev/{name}"));
            }
        }
        self.devices_at = Some(now);
        Ok(())
    }

    /// Walks the primary hierarchy, adding new cgroups and marking the ones still present.
    fn walk(&mut self) -> Result<(), CollectError> {
        let Some(walk) = self.layout.walk.clone() else {
            return Ok(());
        };
        let (base, root) = (&walk.path, &walk.root);
        self.walk_stack.clear();
        if walk.fd.is_some() {
            self.walk_stack.push(String::new());
        }
        // Children come from their parent's listing (directories only), so they need no stat;
        // one that vanished since is simply not listed next time.
        while let Some(rel) = self.walk_stack.pop() {
            let descend = match self.entries.get_mut(&rel) {
                Some(e) => {
                    e.seen = self.generation;
                    e.ident.kind != Kind::Container
                }
                None => {
                    let id = cgroup_id(root, &rel);
                    let ident = path::classify(&id);
                    let descend = ident.kind != Kind::Container;
                    self.entries.insert(
                        rel.clone(),
                        Entry {
                            ident,
                            meta: None,
                            rel: rel.clone(),
                            id,
                            seen: self.generation,
                            report: false,
                            filter_ok: None,
                            pause: None,
                            start_time: None,
                            spec: Spec::default(),
                            spec_at: None,
                            stats: Stats::default(),
                            first_pid: None,
                            files: Default::default(),
                            labels: String::new(),
                            netns: None,
                            netns_pid: 0,
                        },
                    );
                    descend
                }
            };
            if !descend {
                continue;
            }
            let dir = if rel.is_empty() {
                base.clone()
            } else {
                base.join(&rel)
            };
            let rd = match std::fs::read_dir(&dir) {
                Ok(rd) => rd,
                Err(e) if crate::host::is_missing(&e) => continue,
                Err(e) => {
                    return Err(HostError {
                        path: dir,
                        source: e,
                    }
                    .into());
                }
            };
            for ent in rd.flatten() {
                if !ent.file_type().is_ok_and(|t| t.is_dir()) {
                    continue;
                }
                let name = ent.file_name();
                let Some(name) = name.to_str() else { continue };
                let mut child = String::with_capacity(rel.len() + name.len() + 1);
                if !rel.is_empty() {
                    child.push_str(&rel);
                    child.push('/');
                }
                child.push_str(name);
                self.walk_stack.push(child);
            }
        }
        let gen_now = self.generation;
        let budget = &mut self.budget;
        self.entries.retain(|_, e| {
            let keep = e.seen == gen_now;
            if !keep {
                let open = e
                    .files
                    .iter()
                    .filter(|s| matches!(s, Slot::Open(_)))
                    .count();
                budget.used = budget.used.saturating_sub(open);
            }
            keep
        });
        Ok(())
    }

    /// Metadata, pause detection and filters; sets `report` on the entries kept.
    fn select(&mut self) {
        let provider = self.metadata.get();
        let cfg = &self.cfg;
        let mut dropped = Dropped::default();
        for e in self.entries.values_mut() {
            e.report = false;
            if e.meta.is_none()
                && matches!(e.ident.kind, Kind::Container | Kind::Pod)
                && let Some(p) = &provider
                && let Some(info) = p.lookup(&e.ident.pod_uid, &e.ident.container_id)
            {
                e.meta = Some(info);
                e.filter_ok = None;
                e.pause = None;
                e.labels.clear();
            }
            match e.ident.kind {
                Kind::Other if !cfg.include_other_cgroups => continue,
                Kind::Service if !cfg.include_system_services => continue,
                Kind::Pod | Kind::Qos if cfg.drop_pod_cgroups => {
                    dropped.pod += 1;
                    continue;
                }
                _ => {}
            }
            if cfg.drop_pause_containers
                && e.ident.kind == Kind::Container
                && !e.ident.pod_uid.is_empty()
            {
                if e.pause.is_none() {
                    e.pause = match &e.meta {
                        Some(m) => Some(m.container == "POD" || m.container.is_empty()),
                        None => pause_by_comm(&self.host, &self.layout, &mut self.rd, &e.rel),
                    };
                }
                if e.pause == Some(true) {
                    dropped.pause += 1;
                    continue;
                }
            }
            let ok = match e.filter_ok {
                Some(ok) => ok,
                None => {
                    let ok = passes(cfg, e);
                    e.filter_ok = Some(ok);
                    ok
                }
            };
            if !ok {
                dropped.filter += 1;
                continue;
            }
            e.report = true;
            if e.labels.is_empty() {
                render_labels(e, &mut self.scratch);
                e.labels.clone_from(&self.scratch);
            }
        }
        // The cap: keep root and containers first, then pods, services, others.
        let mut left = cfg.max_containers;
        for class in 0..4 {
            for e in self.entries.values_mut().filter(|e| e.report) {
                let c = match e.ident.kind {
                    Kind::Root | Kind::Container => 0,
                    Kind::Pod | Kind::Qos => 1,
                    Kind::Service => 2,
                    Kind::Other => 3,
                };
                if c != class {
                    continue;
                }
                if left == 0 {
                    e.report = false;
                    dropped.max += 1;
                } else {
                    left -= 1;
                }
            }
        }
        self.reported = (cfg.max_containers - left) as u64;
        self.dropped = dropped;
    }

    fn read_all(&mut self, now: Instant) -> Result<(), CollectError> {
        let refresh = Duration::from_secs(self.cfg.limits_refresh_seconds);
        let mut first_err = None;
        self.last_netns.clear();
        for e in self.entries.values_mut().filter(|e| e.report) {
            let r = read_entry(
                &self.layout,
                &mut self.rd,
                &self.devices,
                self.ticks,
                e,
                (now, refresh),
                &mut self.budget,
            );
            if let Err(err) = r
                && first_err.is_none()
            {
                first_err = Some(err);
            }
            if self.cfg.network && e.ident.kind == Kind::Container {
                read_network(
                    &self.host,
                    &mut self.rd,
                    self.host_netns.as_deref(),
                    e,
                    &mut self.last_netns,
                    &mut self.last_net,
                );
            } else {
                e.stats.net.clear();
            }
        }
        match first_err {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }
}

/// `SwapTotal` of `/proc/meminfo` in kB.
fn swap_total_kb(meminfo: &str) -> Option<u64> {
    meminfo
        .lines()
        .find_map(|l| l.strip_prefix("SwapTotal:"))
        .and_then(|v| v.split_ascii_whitespace().next())
        .and_then(|v| v.parse().ok())
}

/// cAdvisor's container name: the hierarchy root joined with the relative path.
fn cgroup_id(root: &str, rel: &str) -> String {
    let mut id = String::with_capacity(root.len() + rel.len() + 1);
    id.push_str(root);
    if !rel.is_empty() {
        id.push('/');
        id.push_str(rel);
    }
    if id.is_empty() {
        id.push('/');
    }
    id
}

fn passes(cfg: &Config, e: &Entry) -> bool {
    let (ns, container) = match &e.meta {
        Some(m) => (m.namespace.as_str(), m.container.as_str()),
        None => ("", ""),
    };
    let container = if container.is_empty() {
        e.ident.container_id.as_str()
    } else {
        container
    };
    let check = |inc: &Option<Pattern>, exc: &Option<Pattern>, v: &str| {
        Pattern::admits(inc.as_ref(), exc.as_ref(), v)
    };
    check(&cfg.path_include, &cfg.path_exclude, &e.id)
        && check(&cfg.namespace_include, &cfg.namespace_exclude, ns)
        && check(&cfg.container_include, &cfg.container_exclude, container)
}

/// Without metadata, a pod's sandbox is recognised by its only process being `pause`.
fn pause_by_comm(host: &HostRoot, layout: &Layout, rd: &mut Reader, rel: &str) -> Option<bool> {
    let base = layout.walk.as_ref()?;
    if !rd.read_once(base, rel, "cgroup.procs").ok()? {
        return None;
    }
    let pid = parse::first_pid(rd.text())?;
    let mut p = itoa::Buffer::new();
    let pid = p.format(pid);
    rd.path.clear();
    rd.path.push(host.proc_root());
    rd.path.push(pid);
    rd.path.push("comm");
    if !read_into(&rd.path, &mut rd.buf).ok()? {
        return None;
    }
    let comm = rd.buf.trim_end();
    // While the runtime is still starting the container its process is the runtime's init
    // (`runc:[2:INIT]`): undecided, look again next scrape.
    if comm.is_empty() || comm.starts_with("runc") || comm.starts_with("crun") {
        return None;
    }
    Some(comm == "pause")
}

fn read_u64(
    rd: &mut Reader,
    base: &Base,
    rel: &str,
    file: &str,
) -> Result<Option<u64>, CollectError> {
    if !rd.read_once(base, rel, file)? {
        return Ok(None);
    }
    parse::single(rd.text())
        .map(Some)
        .map_err(|e| CollectError::parse(base.path.join(&rd.rel), e))
}

fn parse_err<'a>(
    base: &'a Base,
    rd: &'a Reader,
) -> impl FnOnce(crate::collect::ParseError) -> CollectError + 'a {
    move |e| CollectError::parse(base.path.join(&rd.rel), e)
}

fn mtime_secs(p: &Path) -> Option<f64> {
    let m = std::fs::metadata(p).ok()?.modified().ok()?;
    Some(m.duration_since(UNIX_EPOCH).ok()?.as_secs() as f64)
}

fn read_spec(layout: &Layout, rd: &mut Reader, rel: &str) -> Result<Spec, CollectError> {
    let mut s = Spec::default();
    let v2 = layout.v2();
    if let Some(base) = &layout.cpu {
        if v2 {
            // The v2 root has neither file: no CPU spec there.
            if let Some(w) = read_u64(rd, base, rel, "cpu.weight")? {
                s.has_cpu = true;
                s.cpu_shares = parse::weight_to_shares(w).unwrap_or(0);
            }
            if rd.read_once(base, rel, "cpu.max")? {
                s.has_cpu = true;
                let (q, p) = parse::cpu_max(rd.text()).map_err(parse_err(base, rd))?;
                s.cpu_quota = q.unwrap_or(0);
                s.cpu_period = p;
            }
        } else if base.path.join(rel).is_dir() {
            s.has_cpu = true;
            {
                s.cpu_shares = read_u64(rd, base, rel, "cpu.shares")?.unwrap_or(0);
                s.cpu_period = read_u64(rd, base, rel, "cpu.cfs_period_us")?.unwrap_or(0);
                if rd.read_once(base, rel, "cpu.cfs_quota_us")? {
                    s.cpu_quota = parse::signed(rd.text())
                        .map_err(parse_err(base, rd))?
                        .unwrap_or(0);
                }
            }
        }
    }
    if let Some(base) = &layout.memory {
        if v2 {
            if let Some(limit) = read_u64(rd, base, rel, "memory.max")? {
                s.has_memory = true;
                s.mem_limit = limit;
                s.mem_reservation = read_u64(rd, base, rel, "memory.min")?.unwrap_or(0);
                s.mem_swap_limit = read_u64(rd, base, rel, "memory.swap.max")?.unwrap_or(0);
            }
        } else if base.path.join(rel).is_dir() {
            s.has_memory = true;
            s.mem_limit = read_u64(rd, base, rel, "memory.limit_in_bytes")?.unwrap_or(0);
            s.mem_swap_limit = read_u64(rd, base, rel, "memory.memsw.limit_in_bytes")?.unwrap_or(0);
            s.mem_reservation = read_u64(rd, base, rel, "memory.soft_limit_in_bytes")?.unwrap_or(0);
        }
    }
    Ok(s)
}

fn read_entry(
    layout: &Layout,
    rd: &mut Reader,
    devices: &HashMap<(u32, u32), String>,
    ticks: u64,
    e: &mut Entry,
    (now, refresh): (Instant, Duration),
    budget: &mut FdBudget,
) -> Result<(), CollectError> {
    let v2 = layout.v2();
    let rel = e.rel.as_str();
    if e.start_time.is_none() {
        // cAdvisor (raw handler): the earliest modification time of the cgroup's directories.
        let mut t: Option<f64> = None;
        for base in [&layout.cpu, &layout.cpuacct, &layout.memory, &layout.pids]
            .into_iter()
            .flatten()
        {
            if let Some(m) = mtime_secs(&base.path.join(rel)) {
                t = Some(t.map_or(m, |t| t.min(m)));
            }
        }
        e.start_time = t;
    }
    if e.spec_at.is_none_or(|t| now.duration_since(t) >= refresh) {
        e.spec = read_spec(layout, rd, rel)?;
        e.spec_at = Some(now);
        // Files found missing are looked for again (a controller may have been enabled).
        for s in e.files.iter_mut() {
            if matches!(s, Slot::Missing) {
                *s = Slot::Unknown;
            }
        }
    }
    let st = &mut e.stats;
    let mut recreated = false;
    let mut fx = Files {
        rd,
        slots: &mut e.files,
        budget,
        recreated: &mut recreated,
    };

    // CPU
    st.cpu = None;
    if v2 {
        if let Some(base) = &layout.cpu
            && fx.read(base, rel, "cpu.stat", 0)?
        {
            let mut c = CpuStat::default();
            parse::cpu_stat_v2(fx.rd.text(), &mut c).map_err(parse_err(base, fx.rd))?;
            st.cpu = Some(c);
        }
    } else {
        let mut c = CpuStat::default();
        let mut any = false;
        if let Some(base) = &layout.cpuacct {
            if let Some(u) = fx.u64(base, rel, "cpuacct.usage", 1)? {
                c.usage_ns = Some(u);
                any = true;
            }
            if fx.read(base, rel, "cpuacct.stat", 2)? {
                parse::cpuacct_stat(fx.rd.text(), ticks, &mut c).map_err(parse_err(base, fx.rd))?;
                any = true;
            }
        }
        if e.spec.cpu_quota != 0
            && let Some(base) = &layout.cpu
            && fx.read(base, rel, "cpu.stat", 0)?
        {
            parse::cpu_stat_v1(fx.rd.text(), &mut c).map_err(parse_err(base, fx.rd))?;
        }
        if any {
            st.cpu = Some(c);
        }
    }

    // Memory
    st.mem_usage = None;
    st.mem = None;
    st.swap = None;
    st.failcnt = None;
    st.oom = None;
    if let Some(base) = &layout.memory {
        if v2 {
            st.mem_usage = fx.u64(base, rel, "memory.current", 3)?;
            st.swap = if layout.swap {
                fx.u64(base, rel, "memory.swap.current", 4)?
            } else {
                Some(0)
            };
            if fx.read(base, rel, "memory.events", 5)? {
                st.failcnt =
                    parse::keyed_value(fx.rd.text(), "max").map_err(parse_err(base, fx.rd))?;
                st.oom =
                    parse::keyed_value(fx.rd.text(), "oom_kill").map_err(parse_err(base, fx.rd))?;
            }
            if fx.read(base, rel, "memory.stat", 7)? {
                let mut m = MemStat::default();
                parse::memory_stat_v2(fx.rd.text(), &mut m).map_err(parse_err(base, fx.rd))?;
                st.mem = Some(m);
            }
        } else {
            st.mem_usage = fx.u64(base, rel, "memory.usage_in_bytes", 3)?;
            st.failcnt = fx.u64(base, rel, "memory.failcnt", 5)?;
            if fx.read(base, rel, "memory.oom_control", 6)? {
                st.oom =
                    parse::keyed_value(fx.rd.text(), "oom_kill").map_err(parse_err(base, fx.rd))?;
            }
            if fx.read(base, rel, "memory.stat", 7)? {
                let mut m = MemStat::default();
                parse::memory_stat_v1(fx.rd.text(), &mut m).map_err(parse_err(base, fx.rd))?;
                st.swap = Some(m.swap);
                st.mem = Some(m);
            }
        }
    }

    // Block I/O
    st.io.clear();
    if let Some(base) = &layout.blkio {
        if v2 {
            if fx.read(base, rel, "io.stat", 8)? {
                parse::io_stat(fx.rd.text(), &mut st.io).map_err(parse_err(base, fx.rd))?;
            }
        } else if fx.read(base, rel, "blkio.throttle.io_service_bytes_recursive", 8)?
            || fx.read(base, rel, "blkio.throttle.io_service_bytes", 9)?
        {
            parse::blkio_service_bytes(fx.rd.text(), &mut st.io).map_err(parse_err(base, fx.rd))?;
        }
    }
    // Only devices cAdvisor can name (whole disks of /sys/block) get a series.
    st.io.retain(|d| devices.contains_key(&(d.major, d.minor)));

    // Processes and threads
    st.processes = None;
    e.first_pid = None;
    if let Some(base) = &layout.walk
        && fx.read(base, rel, "cgroup.procs", 10)?
    {
        st.processes = Some(parse::count_lines(fx.rd.text()));
        e.first_pid = parse::first_pid(fx.rd.text());
    }
    st.threads = match &layout.pids {
        Some(base) => fx.u64(base, rel, "pids.current", 11)?,
        None => None,
    };

    // Pressure (v2 files; on hybrid hosts from the unified mount when the cgroup exists there)
    st.psi = [None; 3];
    if let Some(base) = &layout.unified {
        for ((psi, file), slot) in st
            .psi
            .iter_mut()
            .zip(["cpu.pressure", "memory.pressure", "io.pressure"])
            .zip(12..)
        {
            if fx.read(base, rel, file, slot)? {
                *psi = Some(parse::pressure(fx.rd.text()).map_err(parse_err(base, fx.rd))?);
            }
        }
    }
    if recreated {
        // A new cgroup under the same path: its start time and limits are its own.
        e.start_time = None;
        e.spec_at = None;
    }
    Ok(())
}

/// Network counters of the container's network namespace, when it has its own and a process
/// of it is readable. Failures mean "not available" (never an error).
fn read_network(
    host: &HostRoot,
    rd: &mut Reader,
    host_netns: Option<&str>,
    e: &mut Entry,
    last_netns: &mut String,
    last_net: &mut Vec<NetIf>,
) {
    let Some(pid) = e.first_pid else {
        e.stats.net.clear();
        return;
    };
    let mut b = itoa::Buffer::new();
    let pid_s = b.format(pid);
    rd.path.clear();
    rd.path.push(host.proc_root());
    rd.path.push(pid_s);
    if e.netns_pid != pid {
        rd.path.push("ns/net");
        e.netns = rustix::fs::readlink(&rd.path, Vec::new())
            .ok()
            .map(|s| s.to_string_lossy().into_owned());
        e.netns_pid = pid;
        rd.path.pop();
        rd.path.pop();
    }
    // Only a namespace known to differ from the host's is reported: a container on the host
    // network (or one we cannot tell) would repeat the node's interfaces.
    let ns = match (&e.netns, host_netns) {
        (Some(own), Some(h)) if own != h => own.as_str(),
        _ => {
            e.stats.net.clear();
            return;
        }
    };
    if !last_netns.is_empty() && last_netns == ns {
        e.stats.net.clone_from(last_net);
        return;
    }
    rd.path.push("net/dev");
    let ok = matches!(read_into(&rd.path, &mut rd.buf), Ok(true))
        && parse::net_dev(&rd.buf, &mut e.stats.net).is_ok();
    if !ok {
        e.stats.net.clear();
        return;
    }
    last_netns.clear();
    last_netns.push_str(ns);
    last_net.clone_from(&e.stats.net);
}

/// Renders the kubelet's base label set of an entry (escaped, sorted by name).
fn render_labels(e: &Entry, out: &mut String) {
    let (container, image, namespace, pod) = match &e.meta {
        Some(m) => (
            m.container.as_str(),
            m.image.as_str(),
            m.namespace.as_str(),
            m.pod.as_str(),
        ),
        None => ("", "", "", ""),
    };
    out.clear();
    for (i, (k, v)) in [
        ("container", container),
        ("id", e.id.as_str()),
        ("image", image),
        ("name", e.ident.container_id.as_str()),
        ("namespace", namespace),
        ("pod", pod),
    ]
    .into_iter()
    .enumerate()
    {
        if i > 0 {
            out.push(',');
        }
        out.push_str(k);
        out.push_str("=\"");
        escape_label_value(out, v);
        out.push('"');
    }
}

/// `base` followed by extra `name="value"` labels (values escaped), into `out`. The extra
/// labels come last: label order carries no meaning in the exposition formats.
fn with_labels<'a>(out: &'a mut String, base: &str, extra: &[(&str, &str)]) -> &'a str {
    out.clear();
    out.push_str(base);
    for (k, v) in extra {
        out.push(',');
        out.push_str(k);
        out.push_str("=\"");
        escape_label_value(out, v);
        out.push('"');
    }
    out
}

/// Memory spec values above 2^62 mean "unlimited" and are reported as 0, as cAdvisor.
fn spec_mem(v: u64) -> f64 {
    if v > 1 << 62 { 0.0 } else { v as f64 }
}

impl Collector for Cgroup {
    fn name(&self) -> &'static str {
        "cgroup"
    }

    fn collect(&mut self, sink: &mut Sink) -> Result<(), CollectError> {
        let now = Instant::now();
        self.refresh_layout(now)?;
        let Some(mode) = self.layout.mode else {
            return Ok(());
        };
        self.generation += 1;
        let dev_result = self.refresh_devices(now);
        self.walk()?;
        self.select();
        let read_result = self.read_all(now);
        let unix_now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0.0, |d| d.as_secs() as f64);
        self.write(sink, mode, unix_now);
        dev_result?;
        read_result
    }
}

type Getter = fn(&Entry) -> Option<f64>;

impl Cgroup {
    fn write(&self, sink: &mut Sink, mode: Mode, unix_now: f64) {
        use MetricType::{Counter, Gauge};
        const NS: f64 = 1e9;
        let ids: Vec<&Entry> = self.entries.values().filter(|e| e.report).collect();
        let mut scratch = String::with_capacity(512);

        let simple = |sink: &mut Sink, name: &str, help: &str, kind: MetricType, get: Getter| {
            if !ids.iter().any(|e| get(e).is_some()) {
                return;
            }
            let mut f = sink.family(name, help, kind);
            for e in &ids {
                if let Some(v) = get(e) {
                    f.raw_sample(Suffix::None, &e.labels, v);
                }
            }
        };

        simple(
            sink,
            "container_cpu_user_seconds_total",
            "Cumulative user cpu time consumed in seconds.",
            Counter,
            |e| e.stats.cpu.map(|c| c.user_ns as f64 / NS),
        );
        simple(
            sink,
            "container_cpu_system_seconds_total",
            "Cumulative system cpu time consumed in seconds.",
            Counter,
            |e| e.stats.cpu.map(|c| c.system_ns as f64 / NS),
        );
        // cAdvisor writes the total (cpu="total") only when it is positive.
        let usage = |e: &Entry| {
            e.stats
                .cpu
                .and_then(|c| c.usage_ns)
                .filter(|u| *u > 0)
                .map(|u| u as f64 / NS)
        };
        if ids.iter().any(|e| usage(e).is_some()) {
            let mut f = sink.family(
                "container_cpu_usage_seconds_total",
                "Cumulative cpu time consumed in seconds.",
                Counter,
            );
            for e in &ids {
                if let Some(v) = usage(e) {
                    f.raw_sample(
                        Suffix::None,
                        with_labels(&mut scratch, &e.labels, &[("cpu", "total")]),
                        v,
                    );
                }
            }
        }
        // The CFS families exist only for cgroups with a quota, as in cAdvisor.
        simple(
            sink,
            "container_cpu_cfs_periods_total",
            "Number of elapsed enforcement period intervals.",
            Counter,
            |e| cfs(e).map(|c| c.periods as f64),
        );
        simple(
            sink,
            "container_cpu_cfs_throttled_periods_total",
            "Number of throttled period intervals.",
            Counter,
            |e| cfs(e).map(|c| c.throttled_periods as f64),
        );
        simple(
            sink,
            "container_cpu_cfs_throttled_seconds_total",
            "Total time duration the container has been throttled.",
            Counter,
            |e| cfs(e).map(|c| c.throttled_ns as f64 / NS),
        );

        simple(
            sink,
            "container_memory_cache",
            "Number of bytes of page cache memory.",
            Gauge,
            |e| e.stats.mem.map(|m| m.cache as f64),
        );
        simple(
            sink,
            "container_memory_rss",
            "Size of RSS in bytes.",
            Gauge,
            |e| e.stats.mem.map(|m| m.rss as f64),
        );
        simple(
            sink,
            "container_memory_mapped_file",
            "Size of memory mapped files in bytes.",
            Gauge,
            |e| e.stats.mem.map(|m| m.mapped_file as f64),
        );
        simple(
            sink,
            "container_memory_swap",
            "Container swap usage in bytes.",
            Gauge,
            |e| e.stats.swap.map(|v| v as f64),
        );
        simple(
            sink,
            "container_memory_failcnt",
            "Number of memory usage hits limits",
            Counter,
            |e| e.stats.failcnt.map(|v| v as f64),
        );
        simple(
            sink,
            "container_memory_usage_bytes",
            "Current memory usage in bytes, including all memory regardless of when it was accessed",
            Gauge,
            |e| e.stats.mem_usage.map(|v| v as f64),
        );
        simple(
            sink,
            "container_memory_working_set_bytes",
            "Current working set in bytes.",
            Gauge,
            |e| {
                e.stats.mem_usage.map(|u| {
                    parse::working_set(u, e.stats.mem.and_then(|m| m.inactive_file)) as f64
                })
            },
        );
        if ids.iter().any(|e| e.stats.mem.is_some()) {
            let mut f = sink.family(
                "container_memory_failures_total",
                "Cumulative count of memory allocation failures.",
                Counter,
            );
            for e in &ids {
                let Some(m) = e.stats.mem else { continue };
                for (ty, scope, v) in [
                    ("pgfault", "container", m.pgfault),
                    ("pgmajfault", "container", m.pgmajfault),
                    ("pgfault", "hierarchy", m.total_pgfault),
                    ("pgmajfault", "hierarchy", m.total_pgmajfault),
                ] {
                    f.raw_sample(
                        Suffix::None,
                        with_labels(
                            &mut scratch,
                            &e.labels,
                            &[("failure_type", ty), ("scope", scope)],
                        ),
                        v as f64,
                    );
                }
            }
        }
        simple(
            sink,
            "container_oom_events_total",
            "Count of out of memory events observed for the container",
            Counter,
            |e| e.stats.oom.map(|v| v as f64),
        );

        // Block I/O, per device cAdvisor can name.
        if ids.iter().any(|e| !e.stats.io.is_empty()) {
            for (name, help, write) in [
                (
                    "container_fs_reads_bytes_total",
                    "Cumulative count of bytes read",
                    false,
                ),
                (
                    "container_fs_writes_bytes_total",
                    "Cumulative count of bytes written",
                    true,
                ),
            ] {
                let mut f = sink.family(name, help, Counter);
                for e in &ids {
                    for d in &e.stats.io {
                        let Some(dev) = self.devices.get(&(d.major, d.minor)) else {
                            continue;
                        };
                        let v = if write { d.write } else { d.read };
                        f.raw_sample(
                            Suffix::None,
                            with_labels(&mut scratch, &e.labels, &[("device", dev)]),
                            v as f64,
                        );
                    }
                }
            }
        }

        // Network, per interface of the container's own network namespace.
        if ids.iter().any(|e| !e.stats.net.is_empty()) {
            for (name, help, tx, col) in NET_FAMILIES {
                let mut f = sink.family(name, help, Counter);
                for e in &ids {
                    for n in &e.stats.net {
                        let v = if *tx { n.tx[*col] } else { n.rx[*col] };
                        f.raw_sample(
                            Suffix::None,
                            with_labels(&mut scratch, &e.labels, &[("interface", &n.name)]),
                            v as f64,
                        );
                    }
                }
            }
        }

        simple(
            sink,
            "container_processes",
            "Number of processes running inside the container.",
            Gauge,
            |e| e.stats.processes.map(|v| v as f64),
        );
        simple(
            sink,
            "container_threads",
            "Number of threads running inside the container",
            Gauge,
            |e| e.stats.threads.map(|v| v as f64),
        );

        // Pressure (PSI totals are in microseconds).
        for (i, res, what) in [(0, "cpu", "CPU"), (1, "memory", "memory"), (2, "io", "IO")] {
            if !ids.iter().any(|e| e.stats.psi[i].is_some()) {
                continue;
            }
            {
                let mut f = sink.family_parts(
                    &["container_pressure_", res, "_stalled_seconds_total"],
                    &[
                        "Total time duration no tasks in the container could make progress due to ",
                        what,
                        " congestion.",
                    ],
                    Counter,
                );
                for e in &ids {
                    if let Some((_, full)) = e.stats.psi[i] {
                        f.raw_sample(Suffix::None, &e.labels, full.unwrap_or(0) as f64 / 1e6);
                    }
                }
            }
            let mut f = sink.family_parts(
                &["container_pressure_", res, "_waiting_seconds_total"],
                &[
                    "Total time duration tasks in the container have waited due to ",
                    what,
                    " congestion.",
                ],
                Counter,
            );
            for e in &ids {
                if let Some((some, _)) = e.stats.psi[i] {
                    f.raw_sample(Suffix::None, &e.labels, some as f64 / 1e6);
                }
            }
        }

        // Spec
        simple(
            sink,
            "container_start_time_seconds",
            "Start time of the container since unix epoch in seconds.",
            Gauge,
            |e| e.start_time,
        );
        simple(
            sink,
            "container_spec_cpu_period",
            "CPU period of the container.",
            Gauge,
            |e| e.spec.has_cpu.then_some(e.spec.cpu_period as f64),
        );
        simple(
            sink,
            "container_spec_cpu_quota",
            "CPU quota of the container.",
            Gauge,
            |e| (e.spec.has_cpu && e.spec.cpu_quota != 0).then_some(e.spec.cpu_quota as f64),
        );
        simple(
            sink,
            "container_spec_cpu_shares",
            "CPU share of the container.",
            Gauge,
            |e| e.spec.has_cpu.then_some(e.spec.cpu_shares as f64),
        );
        simple(
            sink,
            "container_spec_memory_limit_bytes",
            "Memory limit for the container.",
            Gauge,
            |e| e.spec.has_memory.then_some(spec_mem(e.spec.mem_limit)),
        );
        simple(
            sink,
            "container_spec_memory_reservation_limit_bytes",
            "Memory reservation limit for the container.",
            Gauge,
            |e| {
                e.spec
                    .has_memory
                    .then_some(spec_mem(e.spec.mem_reservation))
            },
        );
        simple(
            sink,
            "container_spec_memory_swap_limit_bytes",
            "Memory swap limit for the container.",
            Gauge,
            |e| e.spec.has_memory.then_some(spec_mem(e.spec.mem_swap_limit)),
        );

        if !ids.is_empty() {
            let mut f = sink.family(
                "container_last_seen",
                "Last time a container was seen by the exporter",
                Gauge,
            );
            for e in &ids {
                f.raw_sample(Suffix::None, &e.labels, unix_now);
            }
        }

        // sonde's own view of the collection.
        sink.family(
            "sonde_cgroup_hierarchy_info",
            "The cgroup hierarchy layout detected from mountinfo (v1, v2 or hybrid).",
            Gauge,
        )
        .sample(&[("mode", mode.as_str())], 1.0);
        sink.gauge(
            "sonde_cgroup_reported",
            "Cgroups (containers, pods, services) reported in this scrape.",
            self.reported as f64,
        );
        sink.family(
            "sonde_cgroup_dropped",
            "Cgroups left out of this scrape, by reason (max_containers is the overflow of the cap).",
            Gauge,
        )
        .sample(&[("reason", "filter")], self.dropped.filter as f64)
        .sample(&[("reason", "max_containers")], self.dropped.max as f64)
        .sample(&[("reason", "pause")], self.dropped.pause as f64)
        .sample(&[("reason", "pod_cgroup")], self.dropped.pod as f64);
    }
}

fn cfs(e: &Entry) -> Option<CpuStat> {
    if e.spec.cpu_quota != 0 {
        e.stats.cpu
    } else {
        None
    }
}

/// (family, help, transmit, column of rx/tx) of the per-interface families.
const NET_FAMILIES: &[(&str, &str, bool, usize)] = &[
    (
        "container_network_receive_bytes_total",
        "Cumulative count of bytes received",
        false,
        0,
    ),
    (
        "container_network_receive_packets_total",
        "Cumulative count of packets received",
        false,
        1,
    ),
    (
        "container_network_receive_errors_total",
        "Cumulative count of errors encountered while receiving",
        false,
        2,
    ),
    (
        "container_network_receive_packets_dropped_total",
        "Cumulative count of packets dropped while receiving",
        false,
        3,
    ),
    (
        "container_network_transmit_bytes_total",
        "Cumulative count of bytes transmitted",
        true,
        0,
    ),
    (
        "container_network_transmit_packets_total",
        "Cumulative count of packets transmitted",
        true,
        1,
    ),
    (
        "container_network_transmit_errors_total",
        "Cumulative count of errors encountered while transmitting",
        true,
        2,
    ),
    (
        "container_network_transmit_packets_dropped_total",
        "Cumulative count of packets dropped while transmitting",
        true,
        3,
    ),
];

#[cfg(test)]
mod tests;
