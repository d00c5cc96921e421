//! The scrape machinery: runs the enabled collectors off the async runtime with a per-collector
//! timeout, shares one collection between concurrent scrapes (single flight, plus reuse within
//! `min_interval`), and adds the meta families (`sonde_scrape_collector_*`, the node_exporter
//! compatible `node_scrape_collector_*`, `sonde_build_info`, `process_*`).
//!
//! Collectors run one after another on a single blocking-pool thread (a "chain"): on a machine
//! like ours that costs one thread hand-off per scrape instead of one per collector. The async
//! side sleeps until the chain finishes or the running collector overruns its timeout; then the
//! overrunning collector is reported failed, the chain is abandoned (its thread finishes the
//! blocked read whenever the kernel lets it, and its results are discarded) and a new chain
//! continues with the next collector. A collector still blocked from an earlier scrape is not
//! started again (its lock is held): it is reported failed at once, so one hung NFS mount costs
//! one timeout, once.

use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, TryLockError};
use std::time::{Duration, Instant};

use futures_util::FutureExt;
use futures_util::future::{BoxFuture, Shared};
use tokio::sync::Notify;

use super::selfmetrics::SelfMetrics;
use super::{CollectError, Collector, MetricType, Sink};

/// Locks a mutex, recovering from poisoning (a panicking collector must not wedge the daemon).
pub fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// The result of one collector in one collection.
#[derive(Debug)]
pub struct CollectorResult {
    /// Collector name.
    pub name: &'static str,
    /// What it wrote (kept even when it failed part-way).
    pub sink: Sink,
    /// Wall time it took (the timeout, when it timed out).
    pub duration: Duration,
    /// Why it failed, if it did.
    pub error: Option<String>,
}

/// Everything one collection produced; shared by every scrape that uses it.
#[derive(Debug)]
pub struct Snapshot {
    /// When the collection started.
    pub started: Instant,
    /// Per-collector results, in registry order, followed by the meta families.
    pub results: Vec<CollectorResult>,
}

impl Snapshot {
    /// All sinks, in order (collectors then meta).
    pub fn sinks(&self) -> impl Iterator<Item = &Sink> {
        self.results.iter().map(|r| &r.sink)
    }
}

/// Rate limit for failure logs: the first failure of a streak is logged at once, later ones at
/// most once per this interval (with the number suppressed), and recovery once.
const LOG_EVERY: Duration = Duration::from_secs(300);

#[derive(Debug, Default)]
struct LogState {
    failing: bool,
    last_logged: Option<Instant>,
    suppressed: u64,
}

struct Slot {
    name: &'static str,
    /// node_exporter's collectors also report `node_scrape_collector_*`.
    node_compat: bool,
    collector: Arc<Mutex<Box<dyn Collector>>>,
    /// Sizes of the last sink, to preallocate the next one.
    hint: Mutex<(usize, usize, usize)>,
    log: Mutex<LogState>,
}

struct Flight {
    last: Option<Arc<Snapshot>>,
    inflight: Option<Shared<BoxFuture<'static, Arc<Snapshot>>>>,
}

/// Runs collections; cheap to share (`Arc`).
pub struct Scraper {
    slots: Vec<Slot>,
    timeout: Duration,
    min_interval: Duration,
    flight: Mutex<Flight>,
    collections: AtomicU64,
    self_metrics: Mutex<SelfMetrics>,
}

/// State shared between the async waiter and the blocking chain(s) of one collection.
struct Run {
    inner: Mutex<RunInner>,
    done: Notify,
}

struct RunInner {
    results: Vec<Option<CollectorResult>>,
    /// Index of the collector the current chain is running.
    current: usize,
    current_started: Instant,
    /// Chains with another generation have been abandoned and must stop.
    generation: u64,
    finished: bool,
}

impl Scraper {
    /// A scraper over `collectors` (in registry order). `node_compat` names the collectors that
    /// also get node_exporter's `node_scrape_collector_*` series.
    pub fn new(
        collectors: Vec<Box<dyn Collector>>,
        timeout: Duration,
        min_interval: Duration,
    ) -> Self {
        let slots = collectors
            .into_iter()
            .map(|c| Slot {
                name: c.name(),
                node_compat: super::registry::is_node_collector(c.name()),
                collector: Arc::new(Mutex::new(c)),
                hint: Mutex::new((0, 0, 0)),
                log: Mutex::new(LogState::default()),
            })
            .collect();
        Self {
            slots,
            timeout,
            min_interval,
            flight: Mutex::new(Flight {
                last: None,
                inflight: None,
            }),
            collections: AtomicU64::new(0),
            self_metrics: Mutex::new(SelfMetrics::new()),
        }
    }

    /// Names of the collectors, in order.
    pub fn collector_names(&self) -> Vec<&'static str> {
        self.slots.iter().map(|s| s.name).collect()
    }

    /// Number of collections actually run so far.
    pub fn collections(&self) -> u64 {
        self.collections.load(Ordering::Relaxed)
    }

    /// A snapshot for one scrape: joins the collection in flight, reuses the last one if it
    /// started within `min_interval`, or starts a new one.
    pub async fn collect(self: &Arc<Self>) -> Arc<Snapshot> {
        let fut = {
            let mut flight = lock(&self.flight);
            if let Some(last) = flight
                .last
                .as_ref()
                .filter(|l| l.started.elapsed() <= self.min_interval)
            {
                return last.clone();
            }
            match &flight.inflight {
                Some(f) => f.clone(),
                None => {
                    let me = self.clone();
                    // A task of its own: a client that disconnects does not cancel a collection
                    // other scrapes are waiting for.
                    let handle = tokio::spawn(async move {
                        let snap = Arc::new(me.run_collection().await);
                        let mut flight = lock(&me.flight);
                        flight.inflight = None;
                        flight.last = Some(snap.clone());
                        snap
                    });
                    let shared = async move {
                        handle.await.unwrap_or_else(|_| {
                            Arc::new(Snapshot {
                                started: Instant::now(),
                                results: Vec::new(),
                            })
                        })
                    }
                    .boxed()
                    .shared();
                    flight.inflight = Some(shared.clone());
                    shared
                }
            }
        };
        fut.await
    }

    async fn run_collection(self: &Arc<Self>) -> Snapshot {
        let started = Instant::now();
        self.collections.fetch_add(1, Ordering::Relaxed);
        let n = self.slots.len();
        let run = Arc::new(Run {
            inner: Mutex::new(RunInner {
                results: (0..n).map(|_| None).collect(),
                current: 0,
                current_started: started,
                generation: 0,
                finished: n == 0,
            }),
            done: Notify::new(),
        });
        if n > 0 {
            self.spawn_chain(&run, 0, 0);
        }
        loop {
            let notified = run.done.notified();
            let deadline = {
                let mut inner = lock(&run.inner);
                if inner.finished {
                    break;
                }
                let deadline = inner.current_started + self.timeout;
                if Instant::now() >= deadline {
                    // The running collector overran: report it, abandon this chain, go on.
                    let i = inner.current;
                    inner.results[i] = Some(CollectorResult {
                        name: self.slots[i].name,
                        sink: Sink::new(),
                        duration: self.timeout,
                        error: Some(CollectError::Timeout(self.timeout).to_string()),
                    });
                    inner.generation += 1;
                    if i + 1 >= n {
                        inner.finished = true;
                        break;
                    }
                    inner.current = i + 1;
                    inner.current_started = Instant::now();
                    let generation = inner.generation;
                    drop(inner);
                    self.spawn_chain(&run, i + 1, generation);
                    continue;
                }
                deadline
            };
            let _ = tokio::time::timeout_at(deadline.into(), notified).await;
        }
        let mut results: Vec<CollectorResult> = {
            let mut inner = lock(&run.inner);
            std::mem::take(&mut inner.results)
                .into_iter()
                .flatten()
                .collect()
        };
        for r in &results {
            if let Some(slot) = self.slots.iter().find(|s| s.name == r.name) {
                self.log_outcome(slot, r);
            }
        }
        let meta = self.meta_sink(&results);
        results.push(CollectorResult {
            name: "meta",
            sink: meta,
            duration: Duration::ZERO,
            error: None,
        });
        Snapshot { started, results }
    }

    fn spawn_chain(self: &Arc<Self>, run: &Arc<Run>, start: usize, generation: u64) {
        let me = self.clone();
        let run = run.clone();
        tokio::task::spawn_blocking(move || me.chain(&run, start, generation));
    }

    /// Runs collectors `start..` in order on this (blocking) thread until done or abandoned.
    fn chain(&self, run: &Run, start: usize, generation: u64) {
        for i in start..self.slots.len() {
            {
                let mut inner = lock(&run.inner);
                if inner.generation != generation {
                    return;
                }
                inner.current = i;
                inner.current_started = Instant::now();
            }
            let result = self.run_one(&self.slots[i]);
            let mut inner = lock(&run.inner);
            if inner.generation != generation {
                return;
            }
            inner.results[i] = Some(result);
        }
        let mut inner = lock(&run.inner);
        if inner.generation == generation {
            inner.finished = true;
            drop(inner);
            run.done.notify_one();
        }
    }

    fn run_one(&self, slot: &Slot) -> CollectorResult {
        let t0 = Instant::now();
        let mut guard = match slot.collector.try_lock() {
            Ok(g) => g,
            Err(TryLockError::Poisoned(p)) => p.into_inner(),
            Err(TryLockError::WouldBlock) => {
                return CollectorResult {
                    name: slot.name,
                    sink: Sink::new(),
                    duration: Duration::ZERO,
                    error: Some(CollectError::StillRunning.to_string()),
                };
            }
        };
        let (bytes, fams, samples) = *lock(&slot.hint);
        let mut sink = Sink::with_capacity(bytes, fams, samples);
        let outcome = std::panic::catch_unwind(AssertUnwindSafe(|| guard.collect(&mut sink)));
        drop(guard);
        *lock(&slot.hint) = sink.sizes();
        let error = match outcome {
            Ok(Ok(())) => None,
            Ok(Err(e)) => Some(error_chain(&e)),
            Err(_) => Some(CollectError::Panicked.to_string()),
        };
        CollectorResult {
            name: slot.name,
            sink,
            duration: t0.elapsed(),
            error,
        }
    }

    fn log_outcome(&self, slot: &Slot, r: &CollectorResult) {
        let mut st = lock(&slot.log);
        match &r.error {
            Some(err) => {
                let now = Instant::now();
                let due = !st.failing
                    || st
                        .last_logged
                        .is_none_or(|t| now.duration_since(t) >= LOG_EVERY);
                if due {
                    tracing::warn!(collector = slot.name, error = %err, suppressed = st.suppressed, "collector failed");
                    st.last_logged = Some(now);
                    st.suppressed = 0;
                } else {
                    st.suppressed += 1;
                }
                st.failing = true;
            }
            None if st.failing => {
                tracing::info!(collector = slot.name, "collector recovered");
                *st = LogState::default();
            }
            None => {}
        }
    }

    fn meta_sink(&self, results: &[CollectorResult]) -> Sink {
        let mut sink = Sink::with_capacity(8192, 12, 4 * results.len() + 16);
        let node: Vec<&CollectorResult> = results
            .iter()
            .filter(|r| self.slots.iter().any(|s| s.name == r.name && s.node_compat))
            .collect();
        for (prefix, set) in [
            ("sonde", results.iter().collect::<Vec<_>>()),
            ("node", node),
        ] {
            if set.is_empty() {
                continue;
            }
            let mut f = sink.family_parts(
                &[prefix, "_scrape_collector_duration_seconds"],
                &["Duration of a collector's collection in seconds."],
                MetricType::Gauge,
            );
            for r in &set {
                f.sample(&[("collector", r.name)], r.duration.as_secs_f64());
            }
            let mut f = sink.family_parts(
                &[prefix, "_scrape_collector_success"],
                &["Whether a collector succeeded (1) or failed (0) in this collection."],
                MetricType::Gauge,
            );
            for r in &set {
                f.sample(
                    &[("collector", r.name)],
                    if r.error.is_none() { 1.0 } else { 0.0 },
                );
            }
        }
        sink.counter(
            "sonde_collections_total",
            "Collections run; scrapes that shared or reused a collection do not add to it.",
            self.collections() as f64,
        );
        sink.family(
            "sonde_build_info",
            "A metric with a constant 1 labelled with sonde's build information.",
            MetricType::Gauge,
        )
        .sample(
            &[
                ("version", crate::VERSION),
                ("revision", env!("SONDE_GIT_REVISION")),
                ("rustc", env!("SONDE_RUSTC_VERSION")),
            ],
            1.0,
        );
        lock(&self.self_metrics).write(&mut sink);
        sink
    }
}

/// Renders an error with its sources: `reading /proc/stat: Permission denied (os error 13)`.
pub fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(src) = cur {
        s.push_str(": ");
        s.push_str(&src.to_string());
        cur = src.source();
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicUsize;

    struct Fixed(&'static str, f64);
    impl Collector for Fixed {
        fn name(&self) -> &'static str {
            self.0
        }
        fn collect(&mut self, sink: &mut Sink) -> Result<(), CollectError> {
            sink.gauge("test_value", "A value.", self.1);
            Ok(())
        }
    }

    struct Sleepy(Duration, Arc<AtomicUsize>);
    impl Collector for Sleepy {
        fn name(&self) -> &'static str {
            "sleepy"
        }
        fn collect(&mut self, sink: &mut Sink) -> Result<(), CollectError> {
            self.1.fetch_add(1, Ordering::SeqCst);
            std::thread::sleep(self.0);
            sink.gauge("test_sleepy", "Late.", 1.0);
            Ok(())
        }
    }

    struct Failing;
    impl Collector for Failing {
        fn name(&self) -> &'static str {
            "failing"
        }
        fn collect(&mut self, sink: &mut Sink) -> Result<(), CollectError> {
            sink.gauge("test_partial", "Written before failing.", 7.0);
            Err(CollectError::parse(
                "/proc/x",
                super::super::ParseError::new(3, "bad"),
            ))
        }
    }

    struct Panicking;
    impl Collector for Panicking {
        fn name(&self) -> &'static str {
            "panicking"
        }
        fn collect(&mut self, _: &mut Sink) -> Result<(), CollectError> {
            panic!("boom")
        }
    }

    fn success(snap: &Snapshot) -> Vec<(String, f64)> {
        let meta = &snap.results.last().expect("meta").sink;
        let fam = meta
            .families()
            .find(|f| f.name() == "sonde_scrape_collector_success")
            .expect("success family");
        fam.samples()
            .map(|s| (s.labels.to_string(), s.value))
            .collect()
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn failures_timeouts_and_panics_never_fail_the_scrape() {
        let calls = Arc::new(AtomicUsize::new(0));
        let scraper = Arc::new(Scraper::new(
            vec![
                Box::new(Fixed("a", 1.0)),
                Box::new(Sleepy(Duration::from_millis(1500), calls.clone())),
                Box::new(Failing),
                Box::new(Panicking),
                Box::new(Fixed("z", 2.0)),
            ],
            Duration::from_millis(300),
            Duration::ZERO,
        ));
        let snap = scraper.collect().await;
        assert_eq!(
            success(&snap),
            vec![
                (r#"collector="a""#.to_string(), 1.0),
                (r#"collector="sleepy""#.to_string(), 0.0),
                (r#"collector="failing""#.to_string(), 0.0),
                (r#"collector="panicking""#.to_string(), 0.0),
                (r#"collector="z""#.to_string(), 1.0),
            ]
        );
        let errors: Vec<_> = snap.results.iter().map(|r| r.error.clone()).collect();
        assert_eq!(errors[1].as_deref(), Some("timed out after 300ms"));
        assert_eq!(errors[2].as_deref(), Some("parsing /proc/x: line 3: bad"));
        assert_eq!(errors[3].as_deref(), Some("collector panicked"));
        // The partial output of the failing collector is kept; the timed-out one's is not.
        assert_eq!(
            snap.results[2].sink.families().next().map(|f| f.name()),
            Some("test_partial")
        );
        assert!(snap.results[1].sink.is_empty());
        // The still-blocked collector is not started a second time.
        let snap2 = scraper.collect().await;
        assert_eq!(
            snap2.results[1].error.as_deref(),
            Some("previous collection still running")
        );
        assert_eq!(calls.load(Ordering::SeqCst), 1);
        assert_eq!(snap2.results[4].error, None);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_scrapes_share_one_collection() {
        let calls = Arc::new(AtomicUsize::new(0));
        let scraper = Arc::new(Scraper::new(
            vec![Box::new(Sleepy(Duration::from_millis(200), calls.clone()))],
            Duration::from_secs(5),
            Duration::ZERO,
        ));
        let (a, b, c) = tokio::join!(scraper.collect(), scraper.collect(), scraper.collect());
        assert!(Arc::ptr_eq(&a, &b) && Arc::ptr_eq(&b, &c));
        assert_eq!(calls.load(Ordering::SeqCst), 1);
        // With min_interval 0 the next scrape collects again.
        let d = scraper.collect().await;
        assert!(!Arc::ptr_eq(&a, &d));
        assert_eq!(calls.load(Ordering::SeqCst), 2);
        assert_eq!(scraper.collections(), 2);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn scrapes_within_min_interval_reuse_the_last_collection() {
        let calls = Arc::new(AtomicUsize::new(0));
        let scraper = Arc::new(Scraper::new(
            vec![Box::new(Sleepy(Duration::from_millis(1), calls.clone()))],
            Duration::from_secs(5),
            Duration::from_secs(60),
        ));
        let a = scraper.collect().await;
        let b = scraper.collect().await;
        assert!(Arc::ptr_eq(&a, &b));
        assert_eq!(calls.load(Ordering::SeqCst), 1);
    }
}
