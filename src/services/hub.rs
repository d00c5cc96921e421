//! The services hub: owns every service-telemetry computation (request metrics, error budgets
//! and their durable store, circuit breakers, deprecated-call counters), takes validated events
//! from any transport through [`crate::ingest::http::EventSink`], and writes everything into a
//! [`Sink`] at scrape time as the `services` collector.
//!
//! Each computation sits behind its own mutex; a batch of events takes each lock once, so a
//! scrape or a `/breaker` request waits at most for one batch of one kind.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::SystemTime;

use serde::Deserialize;

use super::budget_store::{OpenOutcome, Store, StoreError};
use super::circuit_breaker::{BreakerSnapshot, CircuitBreakers, CircuitBreakersConfig};
use super::error_budget::{self, ErrorBudgets};
use super::event::{Event, LabelValue};
use super::request_metrics::{RequestMetrics, RequestMetricsConfig};
use crate::collect::{CollectError, Collector, MetricType, Sink};
use crate::config::{ConfigError, Issue};

/// `services.deprecated_calls`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DeprecatedCallsConfig {
    /// Most distinct functions counted; calls of further functions are dropped and counted in
    /// `sonde_deprecated_functions_dropped_total`.
    pub max_functions: usize,
}

impl Default for DeprecatedCallsConfig {
    fn default() -> Self {
        Self {
            max_functions: 1000,
        }
    }
}

/// `services:` — everything computed from application events.
#[derive(Debug, Clone, PartialEq, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct ServicesConfig {
    /// Request histograms and counters.
    pub requests: RequestMetricsConfig,
    /// Per-service error budgets and their durable state.
    pub error_budgets: error_budget::Config,
    /// Circuit breakers defined inline.
    pub circuit_breakers: CircuitBreakersConfig,
    /// A file of circuit breakers in the format of `config/circuit-breakers.yaml`; its breakers
    /// are added to the inline ones.
    pub circuit_breakers_file: Option<PathBuf>,
    /// `deprecated_function_calls_total`.
    pub deprecated_calls: DeprecatedCallsConfig,
}

impl ServicesConfig {
    /// Checks every option, pushing keyed issues.
    pub fn check(&self, issues: &mut Vec<Issue>) {
        self.requests.check("services.requests", issues);
        self.error_budgets.check("services.error_budgets", issues);
        self.circuit_breakers
            .check("services.circuit_breakers", issues);
        if self.deprecated_calls.max_functions == 0 {
            issues.push(Issue::new(
                "services.deprecated_calls.max_functions",
                "must be at least 1",
            ));
        }
    }

    /// The inline breakers plus those of `circuit_breakers_file`.
    pub fn breakers(&self) -> Result<CircuitBreakersConfig, ConfigError> {
        let mut all = self.circuit_breakers.clone();
        if let Some(path) = &self.circuit_breakers_file {
            let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
                path: path.clone(),
                source,
            })?;
            let key = format!("services.circuit_breakers_file ({})", path.display());
            let file = CircuitBreakersConfig::from_yaml_str(&text, &key)?;
            let mut issues = Vec::new();
            file.check(&key, &mut issues);
            if !issues.is_empty() {
                return Err(ConfigError::Invalid(issues));
            }
            all.breakers.extend(file.breakers);
        }
        let mut issues = Vec::new();
        all.check("services.circuit_breakers", &mut issues);
        if issues.is_empty() {
            Ok(all)
        } else {
            Err(ConfigError::Invalid(issues))
        }
    }
}

/// Why the hub could not be built.
#[derive(Debug, thiserror::Error)]
pub enum HubError {
    /// `ERROR_BUDGETS` in the environment is malformed.
    #[error("environment variable {}", error_budget::ENV_VAR)]
    Env(#[source] error_budget::EnvError),
    /// The budgets configuration contradicts itself or the environment.
    #[error("services.error_budgets")]
    Budgets(#[source] error_budget::BuildError),
    /// The circuit breakers file could not be loaded.
    #[error("circuit breakers")]
    Breakers(#[source] ConfigError),
}

#[derive(Default)]
struct DeprecatedCalls {
    max: usize,
    calls: HashMap<LabelValue, u64>,
    dropped: u64,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic while holding the lock leaves counters that are still valid numbers.
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Every service-telemetry computation, shared by the ingest paths and the scrape.
pub struct Hub {
    requests: Mutex<RequestMetrics>,
    budgets: Option<Mutex<ErrorBudgets>>,
    store: Option<Store>,
    store_failed: bool,
    breakers: Mutex<CircuitBreakers>,
    deprecated: Mutex<DeprecatedCalls>,
}

impl Hub {
    /// Builds the hub; `env_budgets` is the value of `ERROR_BUDGETS`, if set. Opens (or
    /// creates) the budget store under `data_dir` and restores it; a store that cannot be
    /// opened is logged and budgets then live in memory only (`sonde_budget_store_up 0`).
    pub fn new(
        cfg: &ServicesConfig,
        env_budgets: Option<&str>,
        now: SystemTime,
    ) -> Result<Self, HubError> {
        let breakers_cfg = cfg.breakers().map_err(HubError::Breakers)?;
        let (budgets, store, store_failed) = if cfg.error_budgets.enabled {
            let env = error_budget::parse_error_budgets_env(env_budgets.unwrap_or(""))
                .map_err(HubError::Env)?;
            let mut budgets =
                ErrorBudgets::new(&cfg.error_budgets, &env).map_err(HubError::Budgets)?;
            let (store, failed) = open_store(&cfg.error_budgets.data_dir, now);
            if let Some(store) = &store {
                match store.load() {
                    Ok(snap) => {
                        let restored = budgets.restore(&snap, now);
                        tracing::info!(services = restored, path = %store.path().display(), "error budgets restored");
                    }
                    Err(e) => {
                        tracing::warn!(error = %crate::collect::scrape::error_chain(&e), "error budget state could not be read; starting with full budgets")
                    }
                }
            }
            (Some(Mutex::new(budgets)), store, failed)
        } else {
            (None, None, false)
        };
        Ok(Self {
            requests: Mutex::new(RequestMetrics::new(&cfg.requests)),
            budgets,
            store,
            store_failed,
            breakers: Mutex::new(CircuitBreakers::new(&breakers_cfg, now)),
            deprecated: Mutex::new(DeprecatedCalls {
                max: cfg.deprecated_calls.max_functions,
                ..DeprecatedCalls::default()
            }),
        })
    }

    /// Applies a batch of events received at `now`.
    pub fn submit(&self, events: &[Event], now: SystemTime) {
        if events.iter().any(|e| matches!(e, Event::Request(_))) {
            let mut r = lock(&self.requests);
            let mut b = lock(&self.breakers);
            for e in events {
                if let Event::Request(req) = e {
                    r.observe(req, now);
                    b.observe(req, now);
                }
            }
        }
        if let Some(budgets) = &self.budgets
            && events
                .iter()
                .any(|e| matches!(e, Event::Request(_) | Event::Error(_)))
        {
            let mut g = lock(budgets);
            for e in events {
                g.record(e, now);
            }
        }
        for e in events {
            match e {
                Event::BreakerTransition(t) => lock(&self.breakers).report(t, now),
                Event::DeprecatedCall(d) => {
                    let mut g = lock(&self.deprecated);
                    if let Some(n) = g.calls.get_mut(&d.function) {
                        *n += 1;
                    } else if g.calls.len() < g.max {
                        g.calls.insert(d.function.clone(), 1);
                    } else {
                        g.dropped += 1;
                    }
                }
                Event::Request(_) | Event::Error(_) => {}
            }
        }
    }

    /// Writes the budget state to the store (blocking: call from the blocking pool).
    pub fn flush(&self, now: SystemTime) -> Result<(), StoreError> {
        let (Some(budgets), Some(store)) = (&self.budgets, &self.store) else {
            return Ok(());
        };
        let snap = lock(budgets).snapshot(now);
        store.save_snapshot(&snap, now)
    }

    /// Every breaker's state, for `GET /breaker`.
    pub fn breakers(&self, now: SystemTime) -> Vec<BreakerSnapshot> {
        lock(&self.breakers).snapshots(now)
    }

    /// One breaker's state, for `GET /breaker/{name}`.
    pub fn breaker(&self, name: &str, now: SystemTime) -> Option<BreakerSnapshot> {
        lock(&self.breakers).snapshot(name, now)
    }

    /// Writes every service family into `sink`.
    pub fn encode(&self, now: SystemTime, sink: &mut Sink) {
        lock(&self.requests).encode(now, sink);
        if let Some(b) = &self.budgets {
            lock(b).encode(now, sink);
        }
        if let Some(s) = &self.store {
            s.encode(sink);
        }
        if self.budgets.is_some() {
            sink.gauge(
                "sonde_budget_store_up",
                "1 when error budgets are persisted to the store, 0 when they live in memory only.",
                if self.store_failed { 0.0 } else { 1.0 },
            );
        }
        lock(&self.breakers).encode(now, sink);
        let d = lock(&self.deprecated);
        let mut fns: Vec<(&LabelValue, &u64)> = d.calls.iter().collect();
        fns.sort();
        let mut fam = sink.family(
            "deprecated_function_calls_total",
            "Calls of deprecated functions reported by applications.",
            MetricType::Counter,
        );
        for (f, n) in fns {
            fam.sample(&[("function", f.as_str())], *n as f64);
        }
        sink.counter(
            "sonde_deprecated_functions_dropped_total",
            "Deprecated-call events dropped because services.deprecated_calls.max_functions functions are already counted.",
            d.dropped as f64,
        );
    }
}

fn open_store(dir: &std::path::Path, now: SystemTime) -> (Option<Store>, bool) {
    match Store::open_in(dir, now) {
        Ok((store, outcome)) => {
            match outcome {
                OpenOutcome::Created => {
                    tracing::info!(path = %store.path().display(), "error budget store created")
                }
                OpenOutcome::Opened => {}
                // The store already logged where the unreadable file went.
                OpenOutcome::Reset { .. } => {}
            }
            (Some(store), false)
        }
        Err(e) => {
            tracing::error!(
                dir = %dir.display(),
                error = %crate::collect::scrape::error_chain(&e),
                "cannot open the error budget store; budgets will not survive a restart"
            );
            (None, true)
        }
    }
}

impl crate::ingest::http::EventSink for Hub {
    fn submit(&self, events: Vec<Event>, now: SystemTime) {
        Hub::submit(self, &events, now);
    }
}

/// The `services` collector: the hub's families at scrape time.
pub struct HubCollector {
    /// The shared hub.
    pub hub: Arc<Hub>,
    /// The HTTP ingest endpoint, for its own counters.
    pub ingest: Option<Arc<crate::ingest::http::HttpIngest>>,
}

impl Collector for HubCollector {
    fn name(&self) -> &'static str {
        "services"
    }

    fn collect(&mut self, sink: &mut Sink) -> Result<(), CollectError> {
        self.hub.encode(SystemTime::now(), sink);
        if let Some(i) = &self.ingest {
            i.encode(sink);
        }
        Ok(())
    }
}
