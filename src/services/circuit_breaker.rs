//! Circuit breakers: the state machines sonde runs on the [`RequestEvent`]s it receives for the
//! breakers defined in configuration (`circuit_breakers:` in sonde's YAML, example in
//! `config/circuit-breakers.yaml`), plus the breakers applications run themselves and report
//! through [`BreakerTransitionEvent`]s. Both kinds are exposed in the same families and in the
//! JSON snapshot served on `GET /breaker` and `GET /breaker/{name}`.
//!
//! ## A configured breaker
//! It watches the request events of one `service` (and one `route`, when given). Every watched
//! call is classified: a *failure* is [`RequestEvent::is_error`] (5xx or an `error` outcome);
//! a *slow* call took longer than `slow_call_duration_seconds` (strictly longer). The breaker
//! keeps a count-based sliding window of its last `sliding_window_calls` calls (failure and slow
//! flags) and the number of consecutive failures.
//!
//! - `closed` → `open` when any configured trip condition holds after a call:
//!   `consecutive_failures` reached; or, once the window holds at least `minimum_calls` calls,
//!   the window's failure rate >= `failure_rate_threshold_percent`, or its slow-call rate
//!   (slow calls, failed or not, over calls) >= `slow_call_rate_threshold_percent`.
//!   Both policies may be configured at once; the first that holds trips.
//! - `open` → `half_open` once `open_duration_seconds` have passed. This is evaluated lazily,
//!   on the next event or when the state is read, and the transition is dated at the exact
//!   moment the open duration ended (not at the moment it was noticed).
//! - `half_open`: the next `half_open_probes` calls are probes. A probe that fails (or is slow,
//!   when a slow-call threshold is configured) re-opens the breaker at once; when all probes
//!   succeeded it closes, with an empty window and no consecutive failures.
//!
//! Calls that arrive while the breaker is open are counted as `rejected`: a client honouring
//! the breaker (asking `GET /breaker/{name}`) would have refused them. They do not enter the
//! window. So `circuit_breaker_calls_total{outcome}` has four exclusive outcomes: `success`,
//! `failure`, `slow` (slow but not failed) and `rejected`.
//!
//! Time: the state machine runs on the `now` the caller passes (receive time), not on events'
//! own timestamps, which may arrive late or out of order.
//!
//! ## An application-reported breaker
//! A [`BreakerTransitionEvent`] names a breaker that the application runs. sonde tracks at most
//! `max_reported_breakers` of them (assumed `closed` when first seen); a report of the state the
//! breaker is already in changes nothing. A report naming a configured breaker is refused
//! (sonde's own state machine is authoritative for it); refused reports are counted in
//! `sonde_breaker_reports_dropped_total{reason}`.

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, SystemTime};

use serde::{Deserialize, Serialize};

use crate::collect::{MetricType, Sink};
use crate::config::{ConfigError, Issue};
use crate::services::event::{
    BreakerState, BreakerTransitionEvent, LabelLimits, LabelValue, RequestEvent,
};

/// Largest accepted `sliding_window_calls` (the window costs a byte per call).
pub const MAX_WINDOW_CALLS: u32 = 100_000;

/// Circuit-breaker options (`circuit_breakers:` in sonde's YAML; also the whole document of a
/// breakers file such as `config/circuit-breakers.yaml`).
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct CircuitBreakersConfig {
    /// Most application-reported breakers tracked (0 = ignore reports).
    pub max_reported_breakers: usize,
    /// The breakers sonde runs itself.
    pub breakers: Vec<BreakerConfig>,
}

fn default_max_reported_breakers() -> usize {
    100
}

impl Default for CircuitBreakersConfig {
    fn default() -> Self {
        Self {
            max_reported_breakers: default_max_reported_breakers(),
            breakers: Vec::new(),
        }
    }
}

/// One breaker sonde runs on request events.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct BreakerConfig {
    /// The `breaker` label value (letters, digits and `_.:/{}@-`, unique).
    pub name: String,
    /// The service whose request events it watches.
    pub service: String,
    /// Only this route of the service, when set.
    #[serde(default)]
    pub route: Option<String>,
    /// Trip when the window's failure rate reaches this percentage (0 < x <= 100).
    #[serde(default)]
    pub failure_rate_threshold_percent: Option<f64>,
    /// Size of the count-based sliding window: the last N calls.
    #[serde(default = "default_sliding_window_calls")]
    pub sliding_window_calls: u32,
    /// Rates are evaluated only once the window holds this many calls.
    #[serde(default = "default_minimum_calls")]
    pub minimum_calls: u32,
    /// Trip after this many failures in a row.
    #[serde(default)]
    pub consecutive_failures: Option<u32>,
    /// A call taking longer than this is slow.
    #[serde(default)]
    pub slow_call_duration_seconds: Option<f64>,
    /// Trip when the window's slow-call rate reaches this percentage (0 < x <= 100).
    #[serde(default)]
    pub slow_call_rate_threshold_percent: Option<f64>,
    /// How long the breaker stays open before letting probes through.
    #[serde(default = "default_open_duration_seconds")]
    pub open_duration_seconds: f64,
    /// Probe calls in `half_open`; all must succeed to close.
    #[serde(default = "default_half_open_probes")]
    pub half_open_probes: u32,
}

fn default_sliding_window_calls() -> u32 {
    100
}
fn default_minimum_calls() -> u32 {
    20
}
fn default_open_duration_seconds() -> f64 {
    30.0
}
fn default_half_open_probes() -> u32 {
    3
}

fn check_percent(v: Option<f64>, key: String, issues: &mut Vec<Issue>) {
    if let Some(p) = v
        && !(p > 0.0 && p <= 100.0)
    {
        issues.push(Issue::new(key, "must be a percentage in (0, 100]"));
    }
}

fn check_label(v: &str, key: String, issues: &mut Vec<Issue>) {
    if let Err(e) = LabelValue::new(v, LabelLimits::default()) {
        issues.push(Issue::new(key, e.to_string()));
    }
}

impl BreakerConfig {
    /// Pushes one [`Issue`] per bad value, keyed below `key` (e.g. `circuit_breakers.breakers[0]`).
    pub fn check(&self, key: &str, issues: &mut Vec<Issue>) {
        check_label(&self.name, format!("{key}.name"), issues);
        check_label(&self.service, format!("{key}.service"), issues);
        if let Some(r) = &self.route {
            check_label(r, format!("{key}.route"), issues);
        }
        if self.failure_rate_threshold_percent.is_none()
            && self.consecutive_failures.is_none()
            && self.slow_call_rate_threshold_percent.is_none()
        {
            issues.push(Issue::new(
                key,
                "needs failure_rate_threshold_percent, consecutive_failures or \
                 slow_call_rate_threshold_percent, otherwise it can never open",
            ));
        }
        check_percent(
            self.failure_rate_threshold_percent,
            format!("{key}.failure_rate_threshold_percent"),
            issues,
        );
        check_percent(
            self.slow_call_rate_threshold_percent,
            format!("{key}.slow_call_rate_threshold_percent"),
            issues,
        );
        if !(1..=MAX_WINDOW_CALLS).contains(&self.sliding_window_calls) {
            issues.push(Issue::new(
                format!("{key}.sliding_window_calls"),
                format!("must be between 1 and {MAX_WINDOW_CALLS}"),
            ));
        }
        if self.minimum_calls == 0 || self.minimum_calls > self.sliding_window_calls {
            issues.push(Issue::new(
                format!("{key}.minimum_calls"),
                "must be between 1 and sliding_window_calls",
            ));
        }
        if self.consecutive_failures == Some(0) {
            issues.push(Issue::new(
                format!("{key}.consecutive_failures"),
                "must be at least 1",
            ));
        }
        match (
            self.slow_call_duration_seconds,
            self.slow_call_rate_threshold_percent,
        ) {
            (Some(d), _) if !(d.is_finite() && d > 0.0) => issues.push(Issue::new(
                format!("{key}.slow_call_duration_seconds"),
                "must be a finite number > 0",
            )),
            (Some(_), None) => issues.push(Issue::new(
                format!("{key}.slow_call_rate_threshold_percent"),
                "must be set when slow_call_duration_seconds is",
            )),
            (None, Some(_)) => issues.push(Issue::new(
                format!("{key}.slow_call_duration_seconds"),
                "must be set when slow_call_rate_threshold_percent is",
            )),
            _ => {}
        }
        if Duration::try_from_secs_f64(self.open_duration_seconds).map_or(true, |d| d.is_zero()) {
            issues.push(Issue::new(
                format!("{key}.open_duration_seconds"),
                "must be a finite number > 0",
            ));
        }
        if !(1..=10_000).contains(&self.half_open_probes) {
            issues.push(Issue::new(
                format!("{key}.half_open_probes"),
                "must be between 1 and 10000",
            ));
        }
    }
}

impl CircuitBreakersConfig {
    /// Pushes one [`Issue`] per bad value, keyed below `key` (e.g. `circuit_breakers`).
    pub fn check(&self, key: &str, issues: &mut Vec<Issue>) {
        let mut seen = HashMap::new();
        for (i, b) in self.breakers.iter().enumerate() {
            let bkey = format!("{key}.breakers[{i}]");
            b.check(&bkey, issues);
            if let Some(first) = seen.insert(b.name.as_str(), i) {
                issues.push(Issue::new(
                    format!("{bkey}.name"),
                    format!("{:?} is already the name of breakers[{first}]", b.name),
                ));
            }
        }
    }

    /// Parses and checks a breakers document (the format of `config/circuit-breakers.yaml`);
    /// issues are keyed below `key`.
    pub fn from_yaml_str(text: &str, key: &str) -> Result<Self, ConfigError> {
        let cfg: Self = crate::config::from_yaml(text)?;
        let mut issues = Vec::new();
        cfg.check(key, &mut issues);
        if issues.is_empty() {
            Ok(cfg)
        } else {
            Err(ConfigError::Invalid(issues))
        }
    }
}

/// Position of a state in the per-state arrays (`closed`, `open`, `half_open`).
fn state_index(s: BreakerState) -> usize {
    match s {
        BreakerState::Closed => 0,
        BreakerState::Open => 1,
        BreakerState::HalfOpen => 2,
    }
}

/// The state part shared by configured and reported breakers.
#[derive(Debug, Clone)]
struct Machine {
    state: BreakerState,
    /// When the current state was entered (creation time for the initial `closed`).
    since: SystemTime,
    last_transition: Option<SystemTime>,
    /// Transitions into each state, indexed by [`state_index`].
    transitions: [u64; 3],
}

impl Machine {
    fn new(now: SystemTime) -> Self {
        Self {
            state: BreakerState::Closed,
            since: now,
            last_transition: None,
            transitions: [0; 3],
        }
    }

    fn enter(&mut self, state: BreakerState, at: SystemTime) {
        self.state = state;
        self.since = at;
        self.last_transition = Some(at);
        self.transitions[state_index(state)] += 1;
    }
}

const FAILED: u8 = 1;
const SLOW: u8 = 2;

/// The count-based sliding window: a ring of per-call flags with running totals.
#[derive(Debug, Clone)]
struct Window {
    ring: Box<[u8]>,
    next: usize,
    len: u32,
    failures: u32,
    slow: u32,
}

impl Window {
    fn new(size: u32) -> Self {
        Self {
            ring: vec![0; size.max(1) as usize].into(),
            next: 0,
            len: 0,
            failures: 0,
            slow: 0,
        }
    }

    fn push(&mut self, failed: bool, slow: bool) {
        let cap = self.ring.len();
        if self.len as usize == cap {
            let old = self.ring[self.next];
            self.failures -= u32::from(old & FAILED != 0);
            self.slow -= u32::from(old & SLOW != 0);
        } else {
            self.len += 1;
        }
        self.ring[self.next] = (u8::from(failed) * FAILED) | (u8::from(slow) * SLOW);
        self.failures += u32::from(failed);
        self.slow += u32::from(slow);
        self.next = (self.next + 1) % cap;
    }

    fn clear(&mut self) {
        self.next = 0;
        self.len = 0;
        self.failures = 0;
        self.slow = 0;
    }

    /// `part` over the calls in the window, in percent; `None` when empty.
    fn percent(&self, part: u32) -> Option<f64> {
        (self.len > 0).then(|| f64::from(part) * 100.0 / f64::from(self.len))
    }

    /// True when `part / len >= threshold` percent (compared without dividing).
    fn reaches(&self, part: u32, threshold: Option<f64>) -> bool {
        threshold.is_some_and(|t| f64::from(part) * 100.0 >= t * f64::from(self.len))
    }
}

/// `circuit_breaker_calls_total{outcome}` values, in exposition order.
const OUTCOMES: [&str; 4] = ["failure", "rejected", "slow", "success"];
const FAILURE: usize = 0;
const REJECTED: usize = 1;
const SLOW_CALL: usize = 2;
const SUCCESS: usize = 3;

/// A breaker sonde runs.
#[derive(Debug, Clone)]
struct Configured {
    cfg: BreakerConfig,
    open_duration: Duration,
    machine: Machine,
    window: Window,
    consecutive_failures: u32,
    probes_succeeded: u32,
    /// Indexed like [`OUTCOMES`].
    calls: [u64; 4],
}

impl Configured {
    fn new(cfg: &BreakerConfig, now: SystemTime) -> Self {
        Self {
            open_duration: Duration::try_from_secs_f64(cfg.open_duration_seconds)
                .unwrap_or(Duration::from_secs(30)),
            machine: Machine::new(now),
            window: Window::new(cfg.sliding_window_calls),
            consecutive_failures: 0,
            probes_succeeded: 0,
            calls: [0; 4],
            cfg: cfg.clone(),
        }
    }

    fn watches(&self, ev: &RequestEvent) -> bool {
        self.cfg
            .route
            .as_deref()
            .is_none_or(|r| r == ev.route.as_str())
    }

    /// When an open breaker lets probes through.
    fn half_open_at(&self) -> Option<SystemTime> {
        (self.machine.state == BreakerState::Open)
            .then(|| self.machine.since.checked_add(self.open_duration))
            .flatten()
    }

    /// Applies the lazy `open` → `half_open` transition.
    fn tick(&mut self, now: SystemTime) {
        if let Some(at) = self.half_open_at()
            && now >= at
        {
            self.probes_succeeded = 0;
            self.machine.enter(BreakerState::HalfOpen, at);
        }
    }

    fn open(&mut self, now: SystemTime) {
        self.probes_succeeded = 0;
        self.machine.enter(BreakerState::Open, now);
    }

    fn should_trip(&self) -> bool {
        let w = &self.window;
        self.cfg
            .consecutive_failures
            .is_some_and(|n| self.consecutive_failures >= n)
            || (w.len >= self.cfg.minimum_calls
                && (w.reaches(w.failures, self.cfg.failure_rate_threshold_percent)
                    || w.reaches(w.slow, self.cfg.slow_call_rate_threshold_percent)))
    }

    fn on_call(&mut self, ev: &RequestEvent, now: SystemTime) {
        self.tick(now);
        if self.machine.state == BreakerState::Open {
            self.calls[REJECTED] += 1;
            return;
        }
        let failed = ev.is_error();
        let slow = self
            .cfg
            .slow_call_duration_seconds
            .is_some_and(|t| ev.duration_seconds > t);
        self.calls[match (failed, slow) {
            (true, _) => FAILURE,
            (false, true) => SLOW_CALL,
            (false, false) => SUCCESS,
        }] += 1;
        match self.machine.state {
            BreakerState::Closed => {
                self.window.push(failed, slow);
                self.consecutive_failures = if failed {
                    self.consecutive_failures.saturating_add(1)
                } else {
                    0
                };
                if self.should_trip() {
                    self.open(now);
                }
            }
            BreakerState::HalfOpen => {
                if failed || slow {
                    self.open(now);
                } else {
                    self.probes_succeeded += 1;
                    if self.probes_succeeded >= self.cfg.half_open_probes {
                        self.window.clear();
                        self.consecutive_failures = 0;
                        self.probes_succeeded = 0;
                        self.machine.enter(BreakerState::Closed, now);
                    }
                }
            }
            BreakerState::Open => {}
        }
    }
}

/// Where a breaker's state comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum BreakerSource {
    /// Defined in configuration; sonde runs the state machine.
    Config,
    /// Run by an application, which reports its transitions.
    Application,
}

/// The sliding window's content, in a snapshot.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct WindowSnapshot {
    /// Calls in the window.
    pub calls: u32,
    /// Failed calls in the window.
    pub failures: u32,
    /// Slow calls (failed or not) in the window.
    pub slow_calls: u32,
    /// `failures / calls` in percent; null when the window is empty.
    pub failure_rate_percent: Option<f64>,
    /// `slow_calls / calls` in percent; null when the window is empty.
    pub slow_call_rate_percent: Option<f64>,
}

/// Calls seen by a configured breaker since sonde started, by outcome.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CallCounts {
    /// Calls that were neither failed nor slow.
    pub success: u64,
    /// Failed calls.
    pub failure: u64,
    /// Slow calls that did not fail.
    pub slow: u64,
    /// Calls that arrived while the breaker was open.
    pub rejected: u64,
}

/// Transitions into each state since sonde started.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TransitionCounts {
    /// Into `closed`.
    pub closed: u64,
    /// Into `open`.
    pub open: u64,
    /// Into `half_open`.
    pub half_open: u64,
}

/// One breaker as served by `GET /breaker` (a list of these) and `GET /breaker/{name}`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BreakerSnapshot {
    /// The breaker's name.
    pub name: String,
    /// Configured or application-reported.
    pub source: BreakerSource,
    /// `closed`, `open` or `half_open`.
    pub state: &'static str,
    /// When the breaker last changed state (RFC 3339, UTC); null if it never did.
    pub last_transition: Option<String>,
    /// For an open configured breaker: when it will let probes through (RFC 3339).
    pub half_open_at: Option<String>,
    /// The sliding window (configured breakers; frozen while open or half-open).
    pub window: Option<WindowSnapshot>,
    /// Failures in a row (configured breakers).
    pub consecutive_failures: Option<u32>,
    /// Probes that succeeded so far in `half_open` (configured breakers).
    pub half_open_probes_succeeded: Option<u32>,
    /// Calls by outcome (configured breakers).
    pub calls: Option<CallCounts>,
    /// Transitions into each state.
    pub transitions: TransitionCounts,
    /// The configured policy (configured breakers).
    pub policy: Option<BreakerConfig>,
}

fn rfc3339(t: SystemTime) -> Option<String> {
    jiff::Timestamp::try_from(t).ok().map(|t| t.to_string())
}

fn transition_counts(m: &Machine) -> TransitionCounts {
    TransitionCounts {
        closed: m.transitions[state_index(BreakerState::Closed)],
        open: m.transitions[state_index(BreakerState::Open)],
        half_open: m.transitions[state_index(BreakerState::HalfOpen)],
    }
}

impl Configured {
    fn snapshot(&self) -> BreakerSnapshot {
        let w = &self.window;
        BreakerSnapshot {
            name: self.cfg.name.clone(),
            source: BreakerSource::Config,
            state: self.machine.state.as_str(),
            last_transition: self.machine.last_transition.and_then(rfc3339),
            half_open_at: self.half_open_at().and_then(rfc3339),
            window: Some(WindowSnapshot {
                calls: w.len,
                failures: w.failures,
                slow_calls: w.slow,
                failure_rate_percent: w.percent(w.failures),
                slow_call_rate_percent: w.percent(w.slow),
            }),
            consecutive_failures: Some(self.consecutive_failures),
            half_open_probes_succeeded: Some(self.probes_succeeded),
            calls: Some(CallCounts {
                success: self.calls[SUCCESS],
                failure: self.calls[FAILURE],
                slow: self.calls[SLOW_CALL],
                rejected: self.calls[REJECTED],
            }),
            transitions: transition_counts(&self.machine),
            policy: Some(self.cfg.clone()),
        }
    }
}

fn reported_snapshot(name: &str, m: &Machine) -> BreakerSnapshot {
    BreakerSnapshot {
        name: name.to_string(),
        source: BreakerSource::Application,
        state: m.state.as_str(),
        last_transition: m.last_transition.and_then(rfc3339),
        half_open_at: None,
        window: None,
        consecutive_failures: None,
        half_open_probes_succeeded: None,
        calls: None,
        transitions: transition_counts(m),
        policy: None,
    }
}

/// Every breaker: configured ones fed by request events, application-reported ones fed by
/// transition events. See the module documentation for the semantics.
#[derive(Debug, Clone)]
pub struct CircuitBreakers {
    configured: Vec<Configured>,
    by_name: HashMap<Box<str>, usize>,
    /// Indexes into `configured` of the breakers watching each service.
    by_service: HashMap<Box<str>, Vec<usize>>,
    reported: BTreeMap<Box<str>, Machine>,
    max_reported: usize,
    dropped_configured: u64,
    dropped_max_reported: u64,
}

impl CircuitBreakers {
    /// Builds the breakers of a configuration that passed [`CircuitBreakersConfig::check`]
    /// (a repeated name keeps its first definition), all `closed` as of `now`.
    pub fn new(cfg: &CircuitBreakersConfig, now: SystemTime) -> Self {
        let mut me = Self {
            configured: Vec::new(),
            by_name: HashMap::new(),
            by_service: HashMap::new(),
            reported: BTreeMap::new(),
            max_reported: cfg.max_reported_breakers,
            dropped_configured: 0,
            dropped_max_reported: 0,
        };
        for b in &cfg.breakers {
            if me.by_name.contains_key(b.name.as_str()) {
                continue;
            }
            let i = me.configured.len();
            me.configured.push(Configured::new(b, now));
            me.by_name.insert(b.name.as_str().into(), i);
            me.by_service
                .entry(b.service.as_str().into())
                .or_default()
                .push(i);
        }
        me
    }

    /// Feeds one request event, received at `now`, to the breakers watching it.
    pub fn observe(&mut self, ev: &RequestEvent, now: SystemTime) {
        let Some(idx) = self.by_service.get(ev.service.as_str()) else {
            return;
        };
        for &i in idx {
            if let Some(b) = self.configured.get_mut(i)
                && b.watches(ev)
            {
                b.on_call(ev, now);
            }
        }
    }

    /// Records a transition reported by an application at `now`.
    pub fn report(&mut self, ev: &BreakerTransitionEvent, now: SystemTime) {
        let name = ev.breaker.as_str();
        if self.by_name.contains_key(name) {
            self.dropped_configured += 1;
            return;
        }
        if !self.reported.contains_key(name) {
            if self.reported.len() >= self.max_reported {
                self.dropped_max_reported += 1;
                return;
            }
            self.reported.insert(name.into(), Machine::new(now));
        }
        if let Some(m) = self.reported.get_mut(name)
            && m.state != ev.state
        {
            m.enter(ev.state, now);
        }
    }

    /// Applies the lazy `open` → `half_open` transitions due at `now`.
    pub fn tick(&mut self, now: SystemTime) {
        for b in &mut self.configured {
            b.tick(now);
        }
    }

    /// The current state of the breaker `name` at `now`, if it exists.
    pub fn state(&mut self, name: &str, now: SystemTime) -> Option<BreakerState> {
        if let Some(&i) = self.by_name.get(name) {
            let b = self.configured.get_mut(i)?;
            b.tick(now);
            return Some(b.machine.state);
        }
        self.reported.get(name).map(|m| m.state)
    }

    /// The snapshot of the breaker `name` at `now` (`GET /breaker/{name}`), if it exists.
    pub fn snapshot(&mut self, name: &str, now: SystemTime) -> Option<BreakerSnapshot> {
        if let Some(&i) = self.by_name.get(name) {
            let b = self.configured.get_mut(i)?;
            b.tick(now);
            return Some(b.snapshot());
        }
        self.reported.get(name).map(|m| reported_snapshot(name, m))
    }

    /// Every breaker's snapshot at `now` (`GET /breaker`), sorted by name.
    pub fn snapshots(&mut self, now: SystemTime) -> Vec<BreakerSnapshot> {
        self.tick(now);
        let mut out: Vec<BreakerSnapshot> = self
            .configured
            .iter()
            .map(Configured::snapshot)
            .chain(self.reported.iter().map(|(n, m)| reported_snapshot(n, m)))
            .collect();
        out.sort_by(|a, b| a.name.cmp(&b.name));
        out
    }

    /// Writes every family into `sink` as of `now`, breakers sorted by name.
    pub fn encode(&mut self, now: SystemTime, sink: &mut Sink) {
        self.tick(now);
        let mut all: Vec<(&str, &Machine)> = self
            .configured
            .iter()
            .map(|b| (b.cfg.name.as_str(), &b.machine))
            .chain(self.reported.iter().map(|(n, m)| (&**n, m)))
            .collect();
        all.sort_unstable_by(|a, b| a.0.cmp(b.0));

        let mut w = sink.family(
            "circuit_breaker_state",
            "Circuit breaker state: 1 for the current state, 0 for the others.",
            MetricType::Gauge,
        );
        for (name, m) in &all {
            for st in BreakerState::ALL {
                w.sample(
                    &[("breaker", name), ("state", st.as_str())],
                    f64::from(u8::from(m.state == st)),
                );
            }
        }
        let mut w = sink.family(
            "circuit_breaker_state_transitions_total",
            "Circuit breaker transitions, by the state entered.",
            MetricType::Counter,
        );
        for (name, m) in &all {
            for st in BreakerState::ALL {
                w.sample(
                    &[("breaker", name), ("state", st.as_str())],
                    m.transitions[state_index(st)] as f64,
                );
            }
        }
        let mut configured: Vec<&Configured> = self.configured.iter().collect();
        configured.sort_unstable_by(|a, b| a.cfg.name.cmp(&b.cfg.name));
        let mut w = sink.family(
            "circuit_breaker_calls_total",
            "Calls seen by circuit breakers sonde runs, by outcome (rejected: seen while open).",
            MetricType::Counter,
        );
        for b in configured {
            for (outcome, n) in OUTCOMES.iter().zip(b.calls) {
                w.sample(&[("breaker", &b.cfg.name), ("outcome", outcome)], n as f64);
            }
        }
        sink.family(
            "sonde_breaker_reports_dropped_total",
            "Application breaker transition reports ignored, by reason.",
            MetricType::Counter,
        )
        .sample(&[("reason", "configured")], self.dropped_configured as f64)
        .sample(
            &[("reason", "max_reported_breakers")],
            self.dropped_max_reported as f64,
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::expo::{Format, encode};
    use crate::services::event::Outcome;

    fn lv(s: &str) -> LabelValue {
        LabelValue::new(s, LabelLimits::default()).expect("valid label")
    }

    /// 2023-11-14T22:13:20Z plus `ms` milliseconds.
    fn at_ms(ms: u64) -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000) + Duration::from_millis(ms)
    }

    fn at(secs: u64) -> SystemTime {
        at_ms(secs * 1000)
    }

    fn call(service: &str, route: &str, code: u16, d: f64) -> RequestEvent {
        RequestEvent {
            service: lv(service),
            route: lv(route),
            method: lv("GET"),
            code: Some(code),
            outcome: None,
            duration_seconds: d,
            timestamp: None,
        }
    }

    const OK: u16 = 200;
    const ERR: u16 = 503;

    fn breaker(name: &str) -> BreakerConfig {
        BreakerConfig {
            name: name.into(),
            service: "api".into(),
            route: None,
            failure_rate_threshold_percent: None,
            sliding_window_calls: 100,
            minimum_calls: 20,
            consecutive_failures: None,
            slow_call_duration_seconds: None,
            slow_call_rate_threshold_percent: None,
            open_duration_seconds: 30.0,
            half_open_probes: 3,
        }
    }

    fn one(b: BreakerConfig) -> CircuitBreakers {
        CircuitBreakers::new(
            &CircuitBreakersConfig {
                breakers: vec![b],
                ..Default::default()
            },
            at(0),
        )
    }

    /// Feeds calls (code, duration) at one-second steps starting at `start`.
    fn feed(cb: &mut CircuitBreakers, start: u64, calls: &[(u16, f64)]) {
        for (i, &(code, d)) in calls.iter().enumerate() {
            cb.observe(&call("api", "/x", code, d), at(start + i as u64));
        }
    }

    fn snap(cb: &mut CircuitBreakers, name: &str, now: SystemTime) -> BreakerSnapshot {
        cb.snapshot(name, now).expect("breaker exists")
    }

    fn window(cb: &mut CircuitBreakers, now: SystemTime) -> (u32, u32, u32) {
        let w = snap(cb, "b", now).window.expect("configured");
        (w.calls, w.failures, w.slow_calls)
    }

    fn text(cb: &mut CircuitBreakers, now: SystemTime) -> String {
        let mut sink = Sink::new();
        cb.encode(now, &mut sink);
        let mut out = Vec::new();
        encode([&sink], Format::Text, &mut out);
        String::from_utf8(out).expect("utf-8")
    }

    #[test]
    fn failure_rate_trips_only_after_minimum_calls() {
        let mut cb = one(BreakerConfig {
            failure_rate_threshold_percent: Some(50.0),
            sliding_window_calls: 10,
            minimum_calls: 4,
            ..breaker("b")
        });
        // 2 failures out of 3 is 66 %, but fewer than minimum_calls.
        feed(&mut cb, 1, &[(OK, 0.1), (ERR, 0.1), (ERR, 0.1)]);
        assert_eq!(cb.state("b", at(3)), Some(BreakerState::Closed));
        assert_eq!(window(&mut cb, at(3)), (3, 2, 0));
        // The 4th call (a success) makes 2/4 = 50 %: trips, at that call's time.
        feed(&mut cb, 4, &[(OK, 0.1)]);
        let s = snap(&mut cb, "b", at(4));
        assert_eq!(s.state, "open");
        assert_eq!(s.last_transition.as_deref(), Some("2023-11-14T22:13:24Z"));
        assert_eq!(s.half_open_at.as_deref(), Some("2023-11-14T22:13:54Z"));
        assert_eq!(
            s.transitions,
            TransitionCounts {
                closed: 0,
                open: 1,
                half_open: 0
            }
        );
    }

    #[test]
    fn below_the_failure_rate_it_stays_closed_and_the_threshold_is_inclusive() {
        let mut cb = one(BreakerConfig {
            failure_rate_threshold_percent: Some(50.0),
            sliding_window_calls: 10,
            minimum_calls: 4,
            ..breaker("b")
        });
        // At most 3/7 = 43 % once minimum_calls is reached: never trips.
        feed(
            &mut cb,
            1,
            &[
                (OK, 0.1),
                (ERR, 0.1),
                (OK, 0.1),
                (OK, 0.1),
                (ERR, 0.1),
                (OK, 0.1),
                (ERR, 0.1),
                (OK, 0.1),
                (ERR, 0.1),
            ],
        );
        assert_eq!(cb.state("b", at(10)), Some(BreakerState::Closed));
        assert_eq!(window(&mut cb, at(10)), (9, 4, 0));
        // A 10th call failing makes exactly 5/10 = 50 %: the threshold is inclusive.
        feed(&mut cb, 10, &[(ERR, 0.1)]);
        assert_eq!(cb.state("b", at(10)), Some(BreakerState::Open));
    }

    #[test]
    fn the_window_slides_over_the_last_n_calls() {
        let mut cb = one(BreakerConfig {
            failure_rate_threshold_percent: Some(50.0),
            sliding_window_calls: 4,
            minimum_calls: 4,
            ..breaker("b")
        });
        // F S S S: 25 %.
        feed(&mut cb, 1, &[(ERR, 0.1), (OK, 0.1), (OK, 0.1), (OK, 0.1)]);
        assert_eq!(window(&mut cb, at(4)), (4, 1, 0));
        // One more success pushes the failure out: S S S S.
        feed(&mut cb, 5, &[(OK, 0.1)]);
        assert_eq!(window(&mut cb, at(5)), (4, 0, 0));
        // F: S S S F = 25 %, still closed.
        feed(&mut cb, 6, &[(ERR, 0.1)]);
        assert_eq!(window(&mut cb, at(6)), (4, 1, 0));
        assert_eq!(cb.state("b", at(6)), Some(BreakerState::Closed));
        // F: S S F F = 50 %: open at 7 s.
        feed(&mut cb, 7, &[(ERR, 0.1)]);
        let s = snap(&mut cb, "b", at(7));
        assert_eq!(
            (s.state, s.window.map(|w| (w.calls, w.failures))),
            ("open", Some((4, 2)))
        );
        assert_eq!(s.last_transition.as_deref(), Some("2023-11-14T22:13:27Z"));
    }

    #[test]
    fn consecutive_failures_trip_and_a_success_resets_them() {
        let mut cb = one(BreakerConfig {
            consecutive_failures: Some(3),
            ..breaker("b")
        });
        feed(
            &mut cb,
            1,
            &[(ERR, 0.1), (ERR, 0.1), (OK, 0.1), (ERR, 0.1), (ERR, 0.1)],
        );
        let s = snap(&mut cb, "b", at(5));
        assert_eq!((s.state, s.consecutive_failures), ("closed", Some(2)));
        // An outcome-only error counts as a failure too.
        let mut e = call("api", "/x", OK, 0.1);
        e.code = None;
        e.outcome = Some(Outcome::Error);
        cb.observe(&e, at_ms(6_500));
        let s = snap(&mut cb, "b", at(7));
        assert_eq!((s.state, s.consecutive_failures), ("open", Some(3)));
        assert_eq!(s.last_transition.as_deref(), Some("2023-11-14T22:13:26.5Z"));
    }

    #[test]
    fn open_becomes_half_open_after_the_open_duration_lazily_and_exactly() {
        let mut cb = one(BreakerConfig {
            consecutive_failures: Some(1),
            open_duration_seconds: 30.0,
            ..breaker("b")
        });
        feed(&mut cb, 10, &[(ERR, 0.1)]); // open at 10 s
        // Calls while open are rejected and do not touch the window.
        cb.observe(&call("api", "/x", ERR, 0.1), at_ms(39_999));
        assert_eq!(cb.state("b", at_ms(39_999)), Some(BreakerState::Open));
        let s = snap(&mut cb, "b", at_ms(39_999));
        assert_eq!(
            s.calls.as_ref().map(|c| (c.failure, c.rejected)),
            Some((1, 1))
        );
        assert_eq!(s.window.map(|w| w.calls), Some(1));
        // Read much later: half_open, dated when the open duration ended (40 s).
        let s = snap(&mut cb, "b", at(55));
        assert_eq!(s.state, "half_open");
        assert_eq!(s.last_transition.as_deref(), Some("2023-11-14T22:14:00Z"));
        assert_eq!(s.half_open_at, None);
        assert_eq!(
            s.transitions,
            TransitionCounts {
                closed: 0,
                open: 1,
                half_open: 1
            }
        );
    }

    #[test]
    fn an_event_after_the_open_duration_is_a_probe() {
        let mut cb = one(BreakerConfig {
            consecutive_failures: Some(1),
            open_duration_seconds: 30.0,
            half_open_probes: 1,
            ..breaker("b")
        });
        feed(&mut cb, 10, &[(ERR, 0.1)]);
        // No read in between: the event at exactly 40 s is the first probe, and succeeds.
        cb.observe(&call("api", "/x", OK, 0.1), at(40));
        let s = snap(&mut cb, "b", at(40));
        assert_eq!(s.state, "closed");
        assert_eq!(
            s.transitions,
            TransitionCounts {
                closed: 1,
                open: 1,
                half_open: 1
            }
        );
        assert_eq!(s.calls.map(|c| (c.success, c.rejected)), Some((1, 0)));
    }

    #[test]
    fn half_open_closes_after_all_probes_succeed() {
        let mut cb = one(BreakerConfig {
            consecutive_failures: Some(2),
            open_duration_seconds: 5.0,
            half_open_probes: 3,
            ..breaker("b")
        });
        feed(&mut cb, 0, &[(ERR, 0.1), (ERR, 0.1)]); // open at 1 s
        assert_eq!(cb.state("b", at(6)), Some(BreakerState::HalfOpen));
        feed(&mut cb, 7, &[(OK, 0.1), (OK, 0.1)]);
        let s = snap(&mut cb, "b", at(8));
        assert_eq!(
            (s.state, s.half_open_probes_succeeded),
            ("half_open", Some(2))
        );
        feed(&mut cb, 9, &[(OK, 0.1)]);
        let s = snap(&mut cb, "b", at(9));
        assert_eq!(s.state, "closed");
        assert_eq!(s.last_transition.as_deref(), Some("2023-11-14T22:13:29Z"));
        // Closing starts from an empty window and no consecutive failures.
        assert_eq!(window(&mut cb, at(9)), (0, 0, 0));
        assert_eq!(s.consecutive_failures, Some(0));
        // It takes two fresh failures to open again.
        feed(&mut cb, 10, &[(ERR, 0.1)]);
        assert_eq!(cb.state("b", at(10)), Some(BreakerState::Closed));
        feed(&mut cb, 11, &[(ERR, 0.1)]);
        assert_eq!(cb.state("b", at(11)), Some(BreakerState::Open));
    }

    #[test]
    fn a_failed_probe_reopens_for_a_full_open_duration() {
        let mut cb = one(BreakerConfig {
            consecutive_failures: Some(1),
            open_duration_seconds: 5.0,
            half_open_probes: 3,
            ..breaker("b")
        });
        feed(&mut cb, 0, &[(ERR, 0.1)]); // open at 0
        feed(&mut cb, 5, &[(OK, 0.1), (ERR, 0.1)]); // half_open at 5, probe ok, probe fails at 6
        let s = snap(&mut cb, "b", at(6));
        assert_eq!(s.state, "open");
        assert_eq!(s.last_transition.as_deref(), Some("2023-11-14T22:13:26Z"));
        assert_eq!(s.half_open_at.as_deref(), Some("2023-11-14T22:13:31Z"));
        assert_eq!(cb.state("b", at_ms(10_999)), Some(BreakerState::Open));
        assert_eq!(cb.state("b", at(11)), Some(BreakerState::HalfOpen));
        let s = snap(&mut cb, "b", at(11));
        assert_eq!(
            s.transitions,
            TransitionCounts {
                closed: 0,
                open: 2,
                half_open: 2
            }
        );
        // Probes start from zero in the new half-open period.
        assert_eq!(s.half_open_probes_succeeded, Some(0));
    }

    #[test]
    fn slow_calls_trip_on_their_rate_and_fail_probes() {
        let mut cb = one(BreakerConfig {
            slow_call_duration_seconds: Some(1.0),
            slow_call_rate_threshold_percent: Some(50.0),
            sliding_window_calls: 4,
            minimum_calls: 3,
            open_duration_seconds: 10.0,
            half_open_probes: 2,
            ..breaker("b")
        });
        // Exactly the threshold is not slow; 2.5 s is; a failed slow call is slow and failed.
        feed(&mut cb, 1, &[(OK, 1.0), (OK, 2.5)]);
        assert_eq!(window(&mut cb, at(2)), (2, 0, 1));
        feed(&mut cb, 3, &[(OK, 0.2)]); // 1/3 slow
        assert_eq!(cb.state("b", at(3)), Some(BreakerState::Closed));
        feed(&mut cb, 4, &[(ERR, 3.0)]); // 2/4 slow: open at 4
        let s = snap(&mut cb, "b", at(4));
        assert_eq!(s.state, "open");
        let w = s.window.clone().expect("configured");
        assert_eq!(
            (
                w.calls,
                w.failures,
                w.slow_calls,
                w.failure_rate_percent,
                w.slow_call_rate_percent
            ),
            (4, 1, 2, Some(25.0), Some(50.0))
        );
        // A slow probe that succeeded still re-opens.
        feed(&mut cb, 14, &[(OK, 0.5), (OK, 1.5)]);
        let s = snap(&mut cb, "b", at(15));
        assert_eq!(s.state, "open");
        assert_eq!(s.last_transition.as_deref(), Some("2023-11-14T22:13:35Z"));
        assert_eq!(
            s.calls,
            Some(CallCounts {
                success: 3,
                failure: 1,
                slow: 2,
                rejected: 0
            })
        );
    }

    #[test]
    fn breakers_watch_their_service_and_route_only() {
        let mut cb = CircuitBreakers::new(
            &CircuitBreakersConfig {
                breakers: vec![
                    BreakerConfig {
                        route: Some("/pay".into()),
                        consecutive_failures: Some(2),
                        ..breaker("pay")
                    },
                    BreakerConfig {
                        consecutive_failures: Some(2),
                        ..breaker("all")
                    },
                ],
                ..Default::default()
            },
            at(0),
        );
        cb.observe(&call("api", "/pay", ERR, 0.1), at(1));
        cb.observe(&call("api", "/other", ERR, 0.1), at(2));
        cb.observe(&call("web", "/pay", ERR, 0.1), at(3));
        assert_eq!(cb.state("pay", at(3)), Some(BreakerState::Closed));
        assert_eq!(cb.state("all", at(3)), Some(BreakerState::Open));
        assert_eq!(
            snap(&mut cb, "pay", at(3))
                .window
                .map(|w| (w.calls, w.failures)),
            Some((1, 1))
        );
        assert_eq!(cb.state("nope", at(3)), None);
    }

    #[test]
    fn application_reports_are_tracked_and_bounded() {
        let mut cb = CircuitBreakers::new(
            &CircuitBreakersConfig {
                max_reported_breakers: 1,
                breakers: vec![BreakerConfig {
                    consecutive_failures: Some(1),
                    ..breaker("own")
                }],
            },
            at(0),
        );
        let rep = |b: &str, s: BreakerState| BreakerTransitionEvent {
            breaker: lv(b),
            state: s,
        };
        cb.report(&rep("cache", BreakerState::Open), at(1));
        cb.report(&rep("cache", BreakerState::Open), at(2)); // no change
        cb.report(&rep("cache", BreakerState::HalfOpen), at(3));
        cb.report(&rep("own", BreakerState::Open), at(4)); // configured: refused
        cb.report(&rep("db", BreakerState::Open), at(5)); // over the cap
        assert_eq!(cb.state("own", at(5)), Some(BreakerState::Closed));
        assert_eq!(cb.state("db", at(5)), None);
        let s = snap(&mut cb, "cache", at(5));
        assert_eq!(s.source, BreakerSource::Application);
        assert_eq!(s.state, "half_open");
        assert_eq!(s.last_transition.as_deref(), Some("2023-11-14T22:13:23Z"));
        assert_eq!(
            s.transitions,
            TransitionCounts {
                closed: 0,
                open: 1,
                half_open: 1
            }
        );
        // Reported breakers do not expire into half_open on their own.
        assert_eq!(cb.state("cache", at(100_000)), Some(BreakerState::HalfOpen));
    }

    /// Drives two configured breakers and one reported breaker through a scenario and checks
    /// the whole exposition.
    #[test]
    fn exposition_is_exact() {
        let mut cb = CircuitBreakers::new(
            &CircuitBreakersConfig {
                max_reported_breakers: 1,
                breakers: vec![
                    BreakerConfig {
                        service: "payments".into(),
                        failure_rate_threshold_percent: Some(50.0),
                        sliding_window_calls: 4,
                        minimum_calls: 2,
                        slow_call_duration_seconds: Some(2.0),
                        slow_call_rate_threshold_percent: Some(100.0),
                        open_duration_seconds: 10.0,
                        half_open_probes: 1,
                        ..breaker("payments")
                    },
                    BreakerConfig {
                        service: "search".into(),
                        consecutive_failures: Some(5),
                        ..breaker("search")
                    },
                ],
            },
            at(0),
        );
        let p = |code, d| call("payments", "/charge", code, d);
        cb.observe(&p(OK, 0.5), at(1)); // success
        cb.observe(&p(OK, 3.0), at(2)); // slow; 0 % failures, 50 % slow: closed
        cb.observe(&p(ERR, 0.5), at(3)); // failure; 1/3 failures
        cb.observe(&p(ERR, 0.5), at(4)); // failure; 2/4 = 50 %: open at 4
        cb.observe(&p(OK, 0.5), at(5)); // rejected
        cb.observe(&p(OK, 0.5), at(14)); // half_open at 14, probe ok: closed at 14
        cb.observe(&p(ERR, 0.5), at(15)); // failure, window 1/1 < minimum: closed
        cb.observe(&call("search", "/q", 404, 0.1), at(15)); // 4xx is a success
        cb.report(
            &BreakerTransitionEvent {
                breaker: lv("inventory-client"),
                state: BreakerState::Open,
            },
            at(16),
        );
        cb.report(
            &BreakerTransitionEvent {
                breaker: lv("search"),
                state: BreakerState::Open,
            },
            at(16),
        );
        assert_eq!(
            text(&mut cb, at(20)),
            include_str!("../../tests/fixtures/services/circuit_breakers_basic.prom")
        );
    }

    #[test]
    fn snapshots_serialise_to_the_documented_json() {
        let mut cb = one(BreakerConfig {
            route: Some("/charge".into()),
            failure_rate_threshold_percent: Some(50.0),
            sliding_window_calls: 4,
            minimum_calls: 2,
            open_duration_seconds: 10.0,
            half_open_probes: 2,
            ..breaker("payments")
        });
        cb.observe(&call("api", "/charge", OK, 0.5), at(1));
        cb.observe(&call("api", "/charge", ERR, 0.5), at_ms(2_250));
        cb.report(
            &BreakerTransitionEvent {
                breaker: lv("cache"),
                state: BreakerState::Open,
            },
            at(3),
        );
        let all = cb.snapshots(at(4));
        let got = serde_json::to_value(&all).expect("serialises");
        let want: serde_json::Value = serde_json::from_str(include_str!(
            "../../tests/fixtures/services/breakers_snapshot.json"
        ))
        .expect("fixture is JSON");
        assert_eq!(got, want);
        assert_eq!(cb.snapshot("cache", at(4)).map(|s| s.state), Some("open"));
    }

    proptest::proptest! {
        /// The ring's running totals always equal a recount of the last N calls.
        #[test]
        fn window_totals_match_a_recount(
            size in 1u32..8,
            calls in proptest::collection::vec((proptest::bool::ANY, proptest::bool::ANY), 0..40),
        ) {
            let mut w = Window::new(size);
            for (i, &(failed, slow)) in calls.iter().enumerate() {
                w.push(failed, slow);
                let last = &calls[(i + 1).saturating_sub(size as usize)..=i];
                let failures = last.iter().filter(|c| c.0).count() as u32;
                let slows = last.iter().filter(|c| c.1).count() as u32;
                proptest::prop_assert_eq!((w.len, w.failures, w.slow), (last.len() as u32, failures, slows));
            }
        }
    }

    #[test]
    fn the_example_file_parses_and_checks() {
        let cfg = CircuitBreakersConfig::from_yaml_str(
            include_str!("../../config/circuit-breakers.yaml"),
            "circuit_breakers",
        )
        .expect("example is valid");
        assert_eq!(cfg.max_reported_breakers, 100);
        assert_eq!(
            cfg.breakers,
            vec![
                BreakerConfig {
                    name: "payments-charge".into(),
                    service: "payments".into(),
                    route: Some("/v1/charge".into()),
                    failure_rate_threshold_percent: Some(50.0),
                    sliding_window_calls: 20,
                    minimum_calls: 10,
                    consecutive_failures: None,
                    slow_call_duration_seconds: Some(2.0),
                    slow_call_rate_threshold_percent: Some(80.0),
                    open_duration_seconds: 30.0,
                    half_open_probes: 3,
                },
                BreakerConfig {
                    name: "inventory".into(),
                    service: "inventory".into(),
                    route: None,
                    failure_rate_threshold_percent: None,
                    sliding_window_calls: 100,
                    minimum_calls: 20,
                    consecutive_failures: Some(5),
                    slow_call_duration_seconds: None,
                    slow_call_rate_threshold_percent: None,
                    open_duration_seconds: 10.0,
                    half_open_probes: 1,
                },
            ]
        );
    }

    #[test]
    fn config_problems_are_reported_with_keys() {
        let yaml = "\
breakers:
  - name: a b
    service: api
    sliding_window_calls: 10
    minimum_calls: 11
    failure_rate_threshold_percent: 150
    slow_call_duration_seconds: 1
    open_duration_seconds: 0
    half_open_probes: 0
  - name: x
    service: api
  - name: x
    service: api
    consecutive_failures: 0
    slow_call_rate_threshold_percent: 20
";
        let err =
            CircuitBreakersConfig::from_yaml_str(yaml, "circuit_breakers").expect_err("invalid");
        assert_eq!(
            err.to_string(),
            "circuit_breakers.breakers[0].name: contains ' ', allowed are letters, digits and _.:/{}@-\n\
             circuit_breakers.breakers[0].failure_rate_threshold_percent: must be a percentage in (0, 100]\n\
             circuit_breakers.breakers[0].minimum_calls: must be between 1 and sliding_window_calls\n\
             circuit_breakers.breakers[0].slow_call_rate_threshold_percent: must be set when slow_call_duration_seconds is\n\
             circuit_breakers.breakers[0].open_duration_seconds: must be a finite number > 0\n\
             circuit_breakers.breakers[0].half_open_probes: must be between 1 and 10000\n\
             circuit_breakers.breakers[1]: needs failure_rate_threshold_percent, consecutive_failures or slow_call_rate_threshold_percent, otherwise it can never open\n\
             circuit_breakers.breakers[2].consecutive_failures: must be at least 1\n\
             circuit_breakers.breakers[2].slow_call_duration_seconds: must be set when slow_call_rate_threshold_percent is\n\
             circuit_breakers.breakers[2].name: \"x\" is already the name of breakers[1]"
        );
        let err = CircuitBreakersConfig::from_yaml_str(
            "breakers:\n  - name: a\n    service: b\n    consecutive: 3\n",
            "circuit_breakers",
        )
        .expect_err("unknown field");
        // Parse errors name the key relative to the document.
        assert!(
            err.to_string().starts_with(
                "breakers[0].consecutive: line 4 column 5: unknown field `consecutive`"
            ),
            "{err}"
        );
    }
}
