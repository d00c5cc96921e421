//! The StatsD listeners: a UDP socket (default `:8125`) and optionally a Unix datagram socket,
//! each served by a dedicated OS thread that receives datagrams and runs them through
//! parse → map → registry ([`super::registry::ingest_packet`]); mapped events go to the
//! services hub. Also owns `ingest.statsd` configuration and the `statsd` collector that
//! exposes the StatsD-derived metrics and the listener's own counters.
//!
//! Why threads and not tasks: a receive loop is pure CPU between two `recv` calls, and a plain
//! blocking socket with a large kernel buffer (`read_buffer_bytes`) absorbs bursts without any
//! async machinery in the hot path. The registry and its counters share one mutex, taken once
//! per datagram; events are handed to the hub after the lock is released.

use std::net::{SocketAddr, UdpSocket};
use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::SystemTime;

use serde::Deserialize;

use super::mapping::{self, Mapper, MapperLimits, Scratch};
use super::registry::{IngestStats, RegistryConfig, StatsdRegistry, ingest_packet};
use crate::collect::{CollectError, Collector, MetricType, Sink};
use crate::config::{ConfigError, Issue};
use crate::services::event::Event;
use crate::services::hub::Hub;

/// `ingest.statsd`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StatsdConfig {
    /// Whether the StatsD listeners run.
    pub enabled: bool,
    /// UDP address (`host:port`, `:port`); empty: no UDP listener.
    pub listen_udp: String,
    /// Unix datagram socket path; empty: none.
    pub listen_unixgram: String,
    /// Kernel receive buffer asked for each socket (bursts beyond it are dropped by the kernel).
    pub read_buffer_bytes: usize,
    /// Longest line; longer ones count as `line_too_long`.
    pub max_line_bytes: usize,
    /// A mapping file in statsd_exporter's format (plus sonde's `event:` extension).
    pub mapping_file: Option<PathBuf>,
    /// Limits applied while mapping.
    pub limits: MapperLimits,
    /// Bounds of the StatsD metric store.
    pub registry: RegistryConfig,
}

impl Default for StatsdConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            listen_udp: ":8125".into(),
            listen_unixgram: String::new(),
            read_buffer_bytes: 8 << 20,
            max_line_bytes: 8192,
            mapping_file: None,
            limits: MapperLimits::default(),
            registry: RegistryConfig::default(),
        }
    }
}

impl StatsdConfig {
    /// Checks every option, pushing issues keyed under `ingest.statsd`.
    pub fn check(&self, issues: &mut Vec<Issue>) {
        let key = "ingest.statsd";
        if !self.listen_udp.is_empty()
            && let Err(e) = crate::config::parse_listen_address(&self.listen_udp)
        {
            issues.push(Issue::new(format!("{key}.listen_udp"), e));
        }
        if !(512..=1 << 20).contains(&self.max_line_bytes) {
            issues.push(Issue::new(
                format!("{key}.max_line_bytes"),
                "must be between 512 and 1048576",
            ));
        }
        if self.read_buffer_bytes < 65536 {
            issues.push(Issue::new(
                format!("{key}.read_buffer_bytes"),
                "must be at least 65536",
            ));
        }
        self.limits.check(&format!("{key}.limits"), issues);
        self.registry.check(&format!("{key}.registry"), issues);
    }

    /// Compiles the mapping file (no file: every line is recorded under its sanitised name).
    pub fn mapper(&self) -> Result<Mapper, ConfigError> {
        match &self.mapping_file {
            None => Mapper::new(&mapping::MappingConfig::default(), "", self.limits)
                .map_err(ConfigError::Invalid),
            Some(path) => {
                let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
                    path: path.clone(),
                    source,
                })?;
                mapping::load(&text, self.limits)
            }
        }
    }
}

/// State shared by the listener threads and the collector.
pub struct Statsd {
    mapper: Mapper,
    max_line_bytes: usize,
    store: Mutex<(StatsdRegistry, IngestStats)>,
    hub: Arc<Hub>,
    packets: AtomicU64,
    bytes: AtomicU64,
    receive_errors: AtomicU64,
    events: AtomicU64,
}

/// Why a listener could not start.
#[derive(Debug, thiserror::Error)]
pub enum ListenError {
    /// The mapping file is invalid.
    #[error("ingest.statsd.mapping_file")]
    Mapping(#[source] ConfigError),
    /// The UDP address could not be bound.
    #[error("ingest.statsd.listen_udp: binding {0}")]
    Udp(String, #[source] std::io::Error),
    /// The Unix datagram socket could not be bound.
    #[error("ingest.statsd.listen_unixgram: binding {0}")]
    Unix(String, #[source] std::io::Error),
    /// The listener thread could not be started.
    #[error("starting the StatsD listener thread")]
    Thread(#[source] std::io::Error),
}

/// What [`start`] bound, for the startup log line.
#[derive(Debug, Default)]
pub struct Bound {
    /// The UDP address actually bound (port 0 resolved).
    pub udp: Option<SocketAddr>,
    /// The Unix datagram socket path.
    pub unixgram: Option<PathBuf>,
}

impl Statsd {
    /// Builds the shared state (compiles the mapping).
    pub fn new(cfg: &StatsdConfig, hub: Arc<Hub>) -> Result<Arc<Self>, ListenError> {
        let mapper = cfg.mapper().map_err(ListenError::Mapping)?;
        Ok(Arc::new(Self {
            mapper,
            max_line_bytes: cfg.max_line_bytes,
            store: Mutex::new((StatsdRegistry::new(&cfg.registry), IngestStats::default())),
            hub,
            packets: AtomicU64::new(0),
            bytes: AtomicU64::new(0),
            receive_errors: AtomicU64::new(0),
            events: AtomicU64::new(0),
        }))
    }

    /// Runs one datagram through the pipeline (used by the listeners and by tests).
    pub fn handle(&self, packet: &[u8], w: &mut Worker) {
        self.packets.fetch_add(1, Ordering::Relaxed);
        self.bytes.fetch_add(packet.len() as u64, Ordering::Relaxed);
        let now = SystemTime::now();
        {
            let mut g = self.store.lock().unwrap_or_else(PoisonError::into_inner);
            let (reg, stats) = &mut *g;
            let events = &mut w.events;
            ingest_packet(
                packet,
                self.max_line_bytes,
                &self.mapper,
                &mut w.cache,
                &mut w.scratch,
                reg,
                now,
                stats,
                |event, count| {
                    for _ in 0..count {
                        events.push(event.clone());
                    }
                },
            );
        }
        if !w.events.is_empty() {
            self.events
                .fetch_add(w.events.len() as u64, Ordering::Relaxed);
            self.hub.submit(&w.events, now);
            w.events.clear();
        }
    }

    /// Per-thread scratch state for [`Statsd::handle`].
    pub fn worker(&self) -> Worker {
        Worker {
            cache: self.mapper.new_cache(),
            scratch: Scratch::default(),
            events: Vec::new(),
        }
    }

    fn encode(&self, sink: &mut Sink) {
        let now = SystemTime::now();
        {
            let mut g = self.store.lock().unwrap_or_else(PoisonError::into_inner);
            let (reg, stats) = &mut *g;
            reg.expire(now);
            reg.encode(now, sink);
            reg.encode_meta(sink);
            stats.encode(sink);
        }
        sink.counter(
            "sonde_statsd_packets_total",
            "StatsD datagrams received.",
            self.packets.load(Ordering::Relaxed) as f64,
        );
        sink.counter(
            "sonde_statsd_bytes_total",
            "Bytes of StatsD datagrams received.",
            self.bytes.load(Ordering::Relaxed) as f64,
        );
        sink.counter(
            "sonde_statsd_receive_errors_total",
            "Errors receiving StatsD datagrams (the listener keeps going).",
            self.receive_errors.load(Ordering::Relaxed) as f64,
        );
        sink.family(
            "sonde_ingest_events_total",
            "Events received by the ingest transports, by transport and result (rejected: invalid or over a limit).",
            MetricType::Counter,
        )
        .sample(
            &[("transport", "statsd"), ("result", "accepted")],
            self.events.load(Ordering::Relaxed) as f64,
        );
    }
}

/// Scratch state of one listener thread.
pub struct Worker {
    cache: mapping::MapCache,
    scratch: Scratch,
    events: Vec<Event>,
}

fn ask_receive_buffer<Fd: std::os::fd::AsFd>(sock: &Fd, bytes: usize) {
    // Best effort: the kernel caps the size at net.core.rmem_max.
    if let Err(e) = rustix::net::sockopt::set_socket_recv_buffer_size(sock, bytes) {
        tracing::debug!(error = %e, "cannot set the StatsD receive buffer size");
    }
}

/// Binds the configured sockets and starts one receive thread per socket.
pub fn start(cfg: &StatsdConfig, state: &Arc<Statsd>) -> Result<Bound, ListenError> {
    let mut bound = Bound::default();
    if !cfg.listen_udp.is_empty() {
        let addrs = crate::config::parse_listen_address(&cfg.listen_udp)
            .map_err(|e| ListenError::Udp(cfg.listen_udp.clone(), std::io::Error::other(e)))?;
        let mut last = None;
        let mut sock = None;
        for a in addrs {
            match UdpSocket::bind(a) {
                Ok(s) => {
                    sock = Some(s);
                    break;
                }
                Err(e) => last = Some(e),
            }
        }
        let sock = sock.ok_or_else(|| {
            ListenError::Udp(
                cfg.listen_udp.clone(),
                last.unwrap_or_else(|| std::io::Error::other("no address")),
            )
        })?;
        ask_receive_buffer(&sock, cfg.read_buffer_bytes);
        bound.udp = sock.local_addr().ok();
        let st = state.clone();
        std::thread::Builder::new()
            .name("sonde-statsd-udp".into())
            .spawn(move || {
                let mut w = st.worker();
                let mut buf = vec![0u8; 65_536];
                loop {
                    match sock.recv(&mut buf) {
                        Ok(n) => st.handle(&buf[..n], &mut w),
                        Err(_) => {
                            st.receive_errors.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                }
            })
            .map_err(ListenError::Thread)?;
    }
    if !cfg.listen_unixgram.is_empty() {
        let path = Path::new(&cfg.listen_unixgram);
        // A socket file left by a previous run would make bind fail.
        if std::fs::symlink_metadata(path)
            .is_ok_and(|m| std::os::unix::fs::FileTypeExt::is_socket(&m.file_type()))
        {
            let _ = std::fs::remove_file(path);
        }
        let sock = UnixDatagram::bind(path)
            .map_err(|e| ListenError::Unix(cfg.listen_unixgram.clone(), e))?;
        ask_receive_buffer(&sock, cfg.read_buffer_bytes);
        bound.unixgram = Some(path.to_path_buf());
        let st = state.clone();
        std::thread::Builder::new()
            .name("sonde-statsd-unix".into())
            .spawn(move || {
                let mut w = st.worker();
                let mut buf = vec![0u8; 65_536];
                loop {
                    match sock.recv(&mut buf) {
                        Ok(n) => st.handle(&buf[..n], &mut w),
                        Err(_) => {
                            st.receive_errors.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                }
            })
            .map_err(ListenError::Thread)?;
    }
    Ok(bound)
}

/// The `statsd` collector: StatsD-derived metrics and the listener's counters.
pub struct StatsdCollector {
    /// The shared state.
    pub state: Arc<Statsd>,
}

impl Collector for StatsdCollector {
    fn name(&self) -> &'static str {
        "statsd"
    }

    fn collect(&mut self, sink: &mut Sink) -> Result<(), CollectError> {
        self.state.encode(sink);
        Ok(())
    }
}
