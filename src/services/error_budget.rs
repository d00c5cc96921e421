//! Per-service error budgets: counts errors and bad requests in time buckets, and exposes
//! `service_errors_total`, `service_error_budget_remaining`,
//! `service_error_budget_remaining_ratio` and `service_error_budget_burn_rate{window}`.
//! Persistence lives in [`super::budget_store`]; this module only produces and consumes a
//! [`Snapshot`].
//!
//! # Budgets
//!
//! A service has one of two kinds of budget, over the budget window `W` (`window_seconds`,
//! default 30 days; a whole number of hours up to 92 days, or a whole number of minutes below
//! one hour — short windows exist so that tests and demos can watch errors leave the window):
//!
//! * **Count** (the existing `ERROR_BUDGETS=api=1000,worker=500` convention; services not listed
//!   get `default_budget`, 1000): at most `B` errors per window. An error is an [`ErrorEvent`] or
//!   a request for which [`RequestEvent::is_error`] holds (5xx code, or `error` outcome).
//!   - `remaining = B - errors_in_W` (negative when overspent)
//!   - `remaining_ratio = remaining / B`
//!   - `burn_rate(w) = (errors_in_w / w) / (B / W)`, i.e. how many times faster than "exactly
//!     exhausts the budget at the end of the window" errors arrived during the last `w`.
//! * **SLO** (`slos:` in the configuration): an objective `o` (e.g. 0.999) of good requests.
//!   A request is bad when its status code is in `bad_status_codes` (default `5xx`), when it has
//!   no code and the outcome `error`, or when it took longer than `latency_threshold_seconds`
//!   (if set). [`ErrorEvent`]s count in `service_errors_total` but not in an SLO budget (they
//!   have no request to be a fraction of).
//!   - `allowed = (1 - o) * requests_in_W`
//!   - `remaining = allowed - bad_in_W`
//!   - `remaining_ratio = remaining / allowed`, 1 when there were no requests
//!   - `burn_rate(w) = (bad_in_w / requests_in_w) / (1 - o)`, 0 when there were no requests.
//!
//! Burn rates are given for `w` in 5m, 30m, 1h, 2h, 6h, 1d and 3d (the standard multi-window,
//! multi-burn-rate alerting set).
//!
//! # Buckets and how the windows roll
//!
//! Each service keeps two rings of buckets indexed by time, each slot tagged with the minute
//! (or hour) it holds, so a slot whose tag is too old reads as empty and is reused in place;
//! nothing is shifted and nothing is cleared on a timer:
//!
//! * 4320 one-minute buckets (3 days, the longest burn window). Window `w` of `n` minutes sums
//!   the buckets of the current minute and the `n - 1` minutes before it, so it covers between
//!   `w - 60 s` and `w` of history, and divides by the nominal `w`.
//! * `W / 3600` one-hour buckets for a budget window of whole hours. The window sums the
//!   current hour and the `W/3600 - 1` hours before it, so an event at time `t` counts until
//!   `start_of_hour(t) + W` and then falls out: it leaves the window up to one hour before
//!   `t + W` (exactly at `t + W` when `t` is on the hour).
//! * A budget window below one hour (`W` = 60, 120, ..., 3540 s) has no ring of its own: it
//!   reads the one-minute ring with the same rule, the current minute and the `W/60 - 1`
//!   minutes before it, so an event at `t` counts until `start_of_minute(t) + W` (an error at
//!   12:00:30 in a 60 s window counts until 12:00:59 and is gone at 12:01:00).
//!
//! # Timestamps
//!
//! An event's own timestamp is used when it has one, else `now`. A timestamp in the future
//! (clock skew between sender and sonde) is clamped to `now` and counted in
//! `sonde_error_budget_clamped_events_total`. An event older than both rings (older than 3 days
//! and older than the budget window) cannot change any window: it still counts in
//! `service_errors_total` but is otherwise dropped and counted in
//! `sonde_error_budget_dropped_events_total{reason="too_old"}`. An event between 3 days and `W`
//! old only enters the hourly ring. If the wall clock steps backwards, buckets tagged with the
//! "future" are ignored until time catches up with them.
//!
//! # Bounds
//!
//! At most `max_services` services are tracked (configured ones included). Events of further
//! services are dropped and counted in `sonde_error_budget_dropped_events_total{reason="service_limit"}`;
//! an unconfigured service with no event for longer than both rings is evicted to make room
//! (looked for at most once a minute). Per service, memory is fixed: 4320 × 16 bytes plus
//! `W/3600` × 32 bytes (about 92 KiB for a 30-day window; 68 KiB for a window below one hour).

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::time::{SystemTime, UNIX_EPOCH};

use serde::Deserialize;

use crate::collect::{MetricType, Sink};
use crate::config::Issue;
use crate::services::event::{
    ErrorEvent, Event, LabelError, LabelLimits, LabelValue, RequestEvent,
};

/// The burn-rate windows: `window` label value and length in minutes.
pub const BURN_WINDOWS: [(&str, u32); 7] = [
    ("5m", 5),
    ("30m", 30),
    ("1h", 60),
    ("2h", 120),
    ("6h", 360),
    ("1d", 1440),
    ("3d", 4320),
];

/// Number of one-minute buckets: the longest burn window.
pub const MINUTE_SLOTS: u32 = 4320;

/// Longest accepted budget window (92 days, a quarter).
pub const MAX_WINDOW_SECONDS: u64 = 92 * 86_400;

// ---------------------------------------------------------------------------------------------
// Configuration
// ---------------------------------------------------------------------------------------------

/// `services.error_budgets`: budgets, the window, bounds and persistence.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Whether error budgets are computed at all.
    pub enabled: bool,
    /// The budget window, in seconds: a whole number of hours up to 92 days, or a whole number
    /// of minutes below one hour.
    pub window_seconds: u64,
    /// Count budget of services with neither a count budget nor an SLO.
    pub default_budget: u64,
    /// Count budgets per service (errors per window). `ERROR_BUDGETS` in the environment
    /// overrides entries of the same service.
    pub budgets: BTreeMap<String, u64>,
    /// SLO budgets per service.
    pub slos: BTreeMap<String, SloConfig>,
    /// Most services tracked at once (configured ones included).
    pub max_services: usize,
    /// Directory of the durable state (`budgets.redb`).
    pub data_dir: PathBuf,
    /// How often the state is written to disk; a crash loses at most this much.
    pub flush_interval_seconds: u64,
}

fn default_window_seconds() -> u64 {
    30 * 86_400
}
fn default_budget() -> u64 {
    1000
}
fn default_max_services() -> usize {
    100
}
fn default_data_dir() -> PathBuf {
    PathBuf::from("/var/lib/sonde")
}
fn default_flush_interval_seconds() -> u64 {
    10
}
fn default_bad_status_codes() -> Vec<String> {
    vec!["5xx".to_string()]
}

impl Default for Config {
    fn default() -> Self {
        Self {
            enabled: true,
            window_seconds: default_window_seconds(),
            default_budget: default_budget(),
            budgets: BTreeMap::new(),
            slos: BTreeMap::new(),
            max_services: default_max_services(),
            data_dir: default_data_dir(),
            flush_interval_seconds: default_flush_interval_seconds(),
        }
    }
}

/// One service's SLO budget.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SloConfig {
    /// Fraction of requests that must be good over the window, in (0, 1), e.g. 0.999.
    pub objective: f64,
    /// Status codes that make a request bad: a class (`5xx`), a code (`429`) or a range
    /// (`500-504`).
    #[serde(default = "default_bad_status_codes")]
    pub bad_status_codes: Vec<String>,
    /// A request slower than this is bad too.
    #[serde(default)]
    pub latency_threshold_seconds: Option<f64>,
}

impl Config {
    /// Pushes one [`Issue`] per invalid option, keyed under `key`
    /// (e.g. `services.error_budgets`).
    pub fn check(&self, key: &str, issues: &mut Vec<Issue>) {
        let w = self.window_seconds;
        let whole_minutes = (60..3600).contains(&w) && w.is_multiple_of(60);
        let whole_hours = (3600..=MAX_WINDOW_SECONDS).contains(&w) && w.is_multiple_of(3600);
        if !whole_minutes && !whole_hours {
            issues.push(Issue::new(
                format!("{key}.window_seconds"),
                format!(
                    "must be a multiple of 60 from 60 to 3540 (whole minutes below one hour) or a multiple of 3600 from 3600 to {MAX_WINDOW_SECONDS} (whole hours up to 92 days)"
                ),
            ));
        }
        if self.default_budget == 0 {
            issues.push(Issue::new(
                format!("{key}.default_budget"),
                "must be at least 1",
            ));
        }
        for (service, budget) in &self.budgets {
            if let Err(e) = LabelValue::new(service, LabelLimits::default()) {
                issues.push(Issue::new(
                    format!("{key}.budgets.{service}"),
                    format!("service name {e}"),
                ));
            }
            if *budget == 0 {
                issues.push(Issue::new(
                    format!("{key}.budgets.{service}"),
                    "must be at least 1",
                ));
            }
        }
        for (service, slo) in &self.slos {
            let k = format!("{key}.slos.{service}");
            if let Err(e) = LabelValue::new(service, LabelLimits::default()) {
                issues.push(Issue::new(k.clone(), format!("service name {e}")));
            }
            if self.budgets.contains_key(service) {
                issues.push(Issue::new(
                    k.clone(),
                    format!("service also has a count budget in {key}.budgets"),
                ));
            }
            if let Err(reason) = SloRule::from_config(slo) {
                issues.push(Issue::new(format!("{k}.{}", reason.0), reason.1));
            }
        }
        let configured = self.budgets.len() + self.slos.len();
        if self.max_services == 0 || self.max_services < configured {
            issues.push(Issue::new(
                format!("{key}.max_services"),
                format!("must be at least 1 and at least the {configured} configured services"),
            ));
        }
        if self.data_dir.as_os_str().is_empty() {
            issues.push(Issue::new(format!("{key}.data_dir"), "must not be empty"));
        }
        if self.flush_interval_seconds == 0 {
            issues.push(Issue::new(
                format!("{key}.flush_interval_seconds"),
                "must be at least 1",
            ));
        }
    }
}

/// A set of HTTP status codes (0..640), as a bitset.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct CodeSet([u64; 10]);

impl CodeSet {
    fn insert_range(&mut self, lo: u16, hi: u16) {
        for c in lo..=hi {
            self.0[usize::from(c / 64)] |= 1 << (c % 64);
        }
    }

    /// True when `code` is in the set.
    pub fn contains(&self, code: u16) -> bool {
        code < 640 && self.0[usize::from(code / 64)] & (1 << (code % 64)) != 0
    }

    /// Parses `5xx`, `429` or `500-504` (codes 100..=599).
    pub fn parse_spec(spec: &str) -> Result<(u16, u16), String> {
        let s = spec.trim();
        let code = |t: &str| -> Result<u16, String> {
            match t.parse::<u16>() {
                Ok(c) if (100..=599).contains(&c) && t.bytes().all(|b| b.is_ascii_digit()) => Ok(c),
                _ => Err(format!(
                    "{spec:?} is not a status code (100-599), a class like 5xx or a range like 500-504"
                )),
            }
        };
        let b = s.as_bytes();
        if b.len() == 3 && b[1..].eq_ignore_ascii_case(b"xx") && (b'1'..=b'5').contains(&b[0]) {
            let lo = u16::from(b[0] - b'0') * 100;
            return Ok((lo, lo + 99));
        }
        if let Some((lo, hi)) = s.split_once('-') {
            let (lo, hi) = (code(lo.trim())?, code(hi.trim())?);
            if lo > hi {
                return Err(format!("range {spec:?} ends before it starts"));
            }
            return Ok((lo, hi));
        }
        code(s).map(|c| (c, c))
    }
}

/// The "bad request" rule of an SLO budget.
#[derive(Debug, Clone, PartialEq)]
pub struct SloRule {
    /// Fraction of requests that must be good.
    pub objective: f64,
    /// Codes that make a request bad.
    pub bad_codes: CodeSet,
    /// Requests slower than this are bad.
    pub latency_threshold_seconds: Option<f64>,
}

impl SloRule {
    /// Validates an [`SloConfig`]; the error is `(option, reason)`.
    pub fn from_config(c: &SloConfig) -> Result<Self, (&'static str, String)> {
        if !(c.objective > 0.0 && c.objective < 1.0) {
            return Err((
                "objective",
                "must be between 0 and 1, both excluded (e.g. 0.999)".into(),
            ));
        }
        let mut bad_codes = CodeSet::default();
        for spec in &c.bad_status_codes {
            let (lo, hi) = CodeSet::parse_spec(spec).map_err(|r| ("bad_status_codes", r))?;
            bad_codes.insert_range(lo, hi);
        }
        if let Some(t) = c.latency_threshold_seconds
            && !(t.is_finite() && t > 0.0)
        {
            return Err((
                "latency_threshold_seconds",
                "must be a positive number of seconds".into(),
            ));
        }
        if c.bad_status_codes.is_empty() && c.latency_threshold_seconds.is_none() {
            return Err((
                "bad_status_codes",
                "is empty and no latency_threshold_seconds is set: no request could be bad".into(),
            ));
        }
        Ok(Self {
            objective: c.objective,
            bad_codes,
            latency_threshold_seconds: c.latency_threshold_seconds,
        })
    }

    /// True when the request is bad under this rule.
    pub fn is_bad(&self, ev: &RequestEvent) -> bool {
        let by_code = match ev.code {
            Some(c) => self.bad_codes.contains(c),
            None => ev.outcome == Some(crate::services::event::Outcome::Error),
        };
        by_code
            || self
                .latency_threshold_seconds
                .is_some_and(|t| ev.duration_seconds > t)
    }
}

// ---------------------------------------------------------------------------------------------
// ERROR_BUDGETS
// ---------------------------------------------------------------------------------------------

/// Why `ERROR_BUDGETS` was refused. `position` is the 1-based index of the comma-separated
/// entry, `entry` its text.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EnvError {
    /// Two commas with nothing between them (or a leading/trailing comma).
    #[error("ERROR_BUDGETS entry {position} is empty (expected service=count)")]
    EmptyEntry {
        /// Index of the entry.
        position: usize,
    },
    /// No `=` in the entry.
    #[error("ERROR_BUDGETS entry {position} ({entry:?}): missing '=' (expected service=count)")]
    MissingEquals {
        /// Index of the entry.
        position: usize,
        /// The entry.
        entry: String,
    },
    /// Nothing before the `=`.
    #[error("ERROR_BUDGETS entry {position} ({entry:?}): empty service name")]
    EmptyService {
        /// Index of the entry.
        position: usize,
        /// The entry.
        entry: String,
    },
    /// The service name is not a valid label value.
    #[error("ERROR_BUDGETS entry {position} ({entry:?}): service name {reason}")]
    InvalidService {
        /// Index of the entry.
        position: usize,
        /// The entry.
        entry: String,
        /// What is wrong with the name.
        reason: LabelError,
    },
    /// The count starts with `-`.
    #[error("ERROR_BUDGETS entry {position} ({entry:?}): count must not be negative")]
    NegativeCount {
        /// Index of the entry.
        position: usize,
        /// The entry.
        entry: String,
    },
    /// The count is not a whole number (or does not fit 64 bits).
    #[error("ERROR_BUDGETS entry {position} ({entry:?}): count is not a whole number")]
    BadCount {
        /// Index of the entry.
        position: usize,
        /// The entry.
        entry: String,
    },
    /// The count is 0: a budget that cannot be spent has no ratio or burn rate.
    #[error("ERROR_BUDGETS entry {position} ({entry:?}): count must be at least 1")]
    ZeroCount {
        /// Index of the entry.
        position: usize,
        /// The entry.
        entry: String,
    },
    /// The service was already listed.
    #[error("ERROR_BUDGETS entry {position} ({entry:?}): service {service:?} is listed twice")]
    Duplicate {
        /// Index of the second entry.
        position: usize,
        /// The entry.
        entry: String,
        /// The service.
        service: String,
    },
}

/// The environment variable holding count budgets.
pub const ENV_VAR: &str = "ERROR_BUDGETS";

/// Parses `ERROR_BUDGETS` (`api=1000,worker=500`; spaces around entries and `=` are allowed;
/// an empty or blank value lists nothing).
pub fn parse_error_budgets_env(value: &str) -> Result<Vec<(String, u64)>, EnvError> {
    let mut out: Vec<(String, u64)> = Vec::new();
    if value.trim().is_empty() {
        return Ok(out);
    }
    for (i, raw) in value.split(',').enumerate() {
        let position = i + 1;
        let entry = raw.trim();
        if entry.is_empty() {
            return Err(EnvError::EmptyEntry { position });
        }
        let owned = || entry.to_string();
        let Some((service, count)) = entry.split_once('=') else {
            return Err(EnvError::MissingEquals {
                position,
                entry: owned(),
            });
        };
        let (service, count) = (service.trim(), count.trim());
        if service.is_empty() {
            return Err(EnvError::EmptyService {
                position,
                entry: owned(),
            });
        }
        if let Err(reason) = LabelValue::new(service, LabelLimits::default()) {
            return Err(EnvError::InvalidService {
                position,
                entry: owned(),
                reason,
            });
        }
        if count.starts_with('-') {
            return Err(EnvError::NegativeCount {
                position,
                entry: owned(),
            });
        }
        let n = match count.parse::<u64>() {
            Ok(n) if count.bytes().all(|b| b.is_ascii_digit()) => n,
            _ => {
                return Err(EnvError::BadCount {
                    position,
                    entry: owned(),
                });
            }
        };
        if n == 0 {
            return Err(EnvError::ZeroCount {
                position,
                entry: owned(),
            });
        }
        if out.iter().any(|(s, _)| s == service) {
            return Err(EnvError::Duplicate {
                position,
                entry: owned(),
                service: service.to_string(),
            });
        }
        out.push((service.to_string(), n));
    }
    Ok(out)
}

// ---------------------------------------------------------------------------------------------
// State
// ---------------------------------------------------------------------------------------------

/// Event counts of a bucket or a window.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    /// Errors ([`ErrorEvent`]s and requests with [`RequestEvent::is_error`]).
    pub errors: u64,
    /// Requests.
    pub total: u64,
    /// Bad requests under the service's SLO rule (0 for count budgets).
    pub bad: u64,
}

impl Counts {
    fn is_zero(&self) -> bool {
        self.errors == 0 && self.total == 0 && self.bad == 0
    }

    /// Field by field maximum.
    fn max(self, o: Self) -> Self {
        Self {
            errors: self.errors.max(o.errors),
            total: self.total.max(o.total),
            bad: self.bad.max(o.bad),
        }
    }
}

impl std::ops::AddAssign for Counts {
    fn add_assign(&mut self, o: Self) {
        self.errors = self.errors.saturating_add(o.errors);
        self.total = self.total.saturating_add(o.total);
        self.bad = self.bad.saturating_add(o.bad);
    }
}

#[derive(Debug, Clone, Copy, Default)]
struct MinuteSlot {
    minute: u32,
    errors: u32,
    total: u32,
    bad: u32,
}

#[derive(Debug, Clone, Copy, Default)]
struct HourSlot {
    hour: u32,
    counts: Counts,
}

fn sat32(v: u64) -> u32 {
    u32::try_from(v).unwrap_or(u32::MAX)
}

/// The kind of budget of a service.
#[derive(Debug, Clone, PartialEq)]
pub enum Budget {
    /// At most this many errors per window.
    Count(u64),
    /// An SLO objective with its bad-request rule.
    Slo(SloRule),
}

#[derive(Debug)]
struct Service {
    name: LabelValue,
    budget: Budget,
    configured: bool,
    errors_total: u64,
    /// Newest minute an event landed in (for idle eviction).
    last_minute: u32,
    minutes: Box<[MinuteSlot]>,
    hours: Box<[HourSlot]>,
}

impl Service {
    fn new(name: LabelValue, budget: Budget, configured: bool, window_hours: u32) -> Self {
        Self {
            name,
            budget,
            configured,
            errors_total: 0,
            last_minute: 0,
            minutes: vec![MinuteSlot::default(); MINUTE_SLOTS as usize].into_boxed_slice(),
            hours: vec![HourSlot::default(); window_hours as usize].into_boxed_slice(),
        }
    }

    fn add_minute(&mut self, minute: u32, c: Counts) {
        let slot = &mut self.minutes[(minute % MINUTE_SLOTS) as usize];
        if slot.minute > minute {
            // the slot holds a newer minute (the clock stepped back): keep the newer data
            return;
        }
        if slot.minute != minute {
            *slot = MinuteSlot {
                minute,
                ..MinuteSlot::default()
            };
        }
        slot.errors = slot.errors.saturating_add(sat32(c.errors));
        slot.total = slot.total.saturating_add(sat32(c.total));
        slot.bad = slot.bad.saturating_add(sat32(c.bad));
    }

    /// The counts of hour `hour` in the hour ring, reset when the slot held an older hour;
    /// None without an hour ring (a window below one hour) or when the slot holds a newer
    /// hour (the clock stepped back: the newer data is kept).
    fn hour_slot(&mut self, hour: u32) -> Option<&mut Counts> {
        let n = self.hours.len() as u32;
        if n == 0 {
            return None;
        }
        let slot = &mut self.hours[(hour % n) as usize];
        if slot.hour > hour {
            return None;
        }
        if slot.hour != hour {
            *slot = HourSlot {
                hour,
                counts: Counts::default(),
            };
        }
        Some(&mut slot.counts)
    }

    fn add_hour(&mut self, hour: u32, c: Counts) {
        if let Some(counts) = self.hour_slot(hour) {
            *counts += c;
        }
    }

    /// Raises hour `hour` to at least `c`, field by field (restore only: see
    /// [`ErrorBudgets::restore`]).
    fn raise_hour(&mut self, hour: u32, c: Counts) {
        if let Some(counts) = self.hour_slot(hour) {
            *counts = counts.max(c);
        }
    }

    /// Counts of the burn windows ([`BURN_WINDOWS`] order) ending in minute `now_min`.
    fn burn_counts(&self, now_min: u32) -> [Counts; 7] {
        let mut out = [Counts::default(); 7];
        let mut acc = Counts::default();
        let mut w = 0;
        for k in 0..MINUTE_SLOTS {
            let Some(m) = now_min.checked_sub(k) else {
                break;
            };
            acc += self.minute_counts(m);
            while w < out.len() && BURN_WINDOWS[w].1 == k + 1 {
                out[w] = acc;
                w += 1;
            }
        }
        for o in out.iter_mut().skip(w) {
            *o = acc;
        }
        out
    }

    /// Counts of the `n` minutes ending in minute `now_min` (a budget window below one hour).
    fn minute_window_counts(&self, now_min: u32, n: u32) -> Counts {
        let mut acc = Counts::default();
        for k in 0..n.min(MINUTE_SLOTS) {
            let Some(m) = now_min.checked_sub(k) else {
                break;
            };
            acc += self.minute_counts(m);
        }
        acc
    }

    /// The counts of minute `m`, zero when its slot holds another minute.
    fn minute_counts(&self, m: u32) -> Counts {
        let s = &self.minutes[(m % MINUTE_SLOTS) as usize];
        if s.minute != m {
            return Counts::default();
        }
        Counts {
            errors: u64::from(s.errors),
            total: u64::from(s.total),
            bad: u64::from(s.bad),
        }
    }

    /// Counts of the budget window ending in hour `now_hour` (a window of whole hours).
    fn window_counts(&self, now_hour: u32) -> Counts {
        let n = self.hours.len() as u32;
        let mut acc = Counts::default();
        for s in self.hours.iter() {
            if s.hour <= now_hour && now_hour - s.hour < n {
                acc += s.counts;
            }
        }
        acc
    }
}

/// One service's budget figures at a point in time.
#[derive(Debug, Clone, PartialEq)]
pub struct BudgetStatus {
    /// `service_errors_total`.
    pub errors_total: u64,
    /// Counts in the budget window.
    pub window: Counts,
    /// `service_error_budget_remaining`.
    pub remaining: f64,
    /// `service_error_budget_remaining_ratio`.
    pub remaining_ratio: f64,
    /// `service_error_budget_burn_rate`, in [`BURN_WINDOWS`] order.
    pub burn_rates: [f64; 7],
}

/// A service's persisted state: totals and the non-empty buckets, by minute / hour since the
/// Unix epoch. Independent of the ring geometry, so a changed window still restores: hours of
/// the new window that the snapshot lacks (it was taken with a window below one hour, or a
/// shorter one) are rebuilt from the minute buckets, as far back as those reach (3 days).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceSnapshot {
    /// The service.
    pub service: String,
    /// `service_errors_total`.
    pub errors_total: u64,
    /// Non-empty one-minute buckets, ascending.
    pub minutes: Vec<(u32, Counts)>,
    /// Non-empty one-hour buckets, ascending.
    pub hours: Vec<(u32, Counts)>,
}

/// Every service's persisted state.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Snapshot {
    /// Services, by name.
    pub services: Vec<ServiceSnapshot>,
}

/// Why [`ErrorBudgets::new`] refused its inputs.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BuildError {
    /// A service has an SLO in the configuration and a count budget in `ERROR_BUDGETS`.
    #[error(
        "service {0:?} has both an SLO (services.error_budgets.slos) and a count budget (ERROR_BUDGETS)"
    )]
    Conflict(String),
    /// More services are configured than `max_services` allows.
    #[error("{configured} services have budgets but services.error_budgets.max_services is {max}")]
    TooManyServices {
        /// Configured services.
        configured: usize,
        /// The limit.
        max: usize,
    },
    /// A configured value is invalid (run [`Config::check`] first).
    #[error("{0}")]
    Invalid(String),
}

/// All services' error budgets. Not thread-safe by itself: the daemon holds it in a mutex.
#[derive(Debug)]
pub struct ErrorBudgets {
    window_seconds: u64,
    /// Length of the hour ring: `W / 3600`, 0 for a window below one hour.
    window_hours: u32,
    /// `W / 60` for a window below one hour (read from the minute ring), 0 otherwise.
    window_minutes: u32,
    default_budget: u64,
    max_services: usize,
    services: Vec<Service>,
    index: HashMap<Box<str>, usize>,
    dropped_service_limit: u64,
    dropped_too_old: u64,
    clamped_future: u64,
    last_evict_scan: Option<u32>,
}

fn unix_secs(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

impl ErrorBudgets {
    /// Budgets from the configuration plus `ERROR_BUDGETS` (see [`parse_error_budgets_env`]),
    /// which overrides the configuration's count budget of the same service.
    pub fn new(config: &Config, env_budgets: &[(String, u64)]) -> Result<Self, BuildError> {
        let mut issues = Vec::new();
        config.check("services.error_budgets", &mut issues);
        if let Some(i) = issues.first() {
            return Err(BuildError::Invalid(i.to_string()));
        }
        // check() guarantees whole minutes below one hour, or whole hours
        let (window_hours, window_minutes) = if config.window_seconds < 3600 {
            (0, (config.window_seconds / 60) as u32)
        } else {
            ((config.window_seconds / 3600) as u32, 0)
        };
        let mut this = Self {
            window_seconds: config.window_seconds,
            window_hours,
            window_minutes,
            default_budget: config.default_budget,
            max_services: config.max_services,
            services: Vec::new(),
            index: HashMap::new(),
            dropped_service_limit: 0,
            dropped_too_old: 0,
            clamped_future: 0,
            last_evict_scan: None,
        };
        let mut budgets: BTreeMap<&str, Budget> = config
            .budgets
            .iter()
            .map(|(s, b)| (s.as_str(), Budget::Count(*b)))
            .collect();
        for (s, b) in env_budgets {
            if config.slos.contains_key(s) {
                return Err(BuildError::Conflict(s.clone()));
            }
            budgets.insert(s.as_str(), Budget::Count(*b));
        }
        for (s, slo) in &config.slos {
            let rule = SloRule::from_config(slo)
                .map_err(|(k, r)| BuildError::Invalid(format!("slos.{s}.{k}: {r}")))?;
            budgets.insert(s.as_str(), Budget::Slo(rule));
        }
        if budgets.len() > config.max_services {
            return Err(BuildError::TooManyServices {
                configured: budgets.len(),
                max: config.max_services,
            });
        }
        for (s, b) in budgets {
            let name = LabelValue::new(s, LabelLimits::default())
                .map_err(|e| BuildError::Invalid(format!("service {s:?}: name {e}")))?;
            this.index.insert(s.into(), this.services.len());
            this.services
                .push(Service::new(name, b, true, window_hours));
        }
        Ok(this)
    }

    /// The budget of `service` (configured, or the default count budget).
    pub fn budget_of(&self, service: &str) -> Budget {
        match self.index.get(service) {
            Some(&i) => self.services[i].budget.clone(),
            None => Budget::Count(self.default_budget),
        }
    }

    /// Number of services tracked.
    pub fn service_count(&self) -> usize {
        self.services.len()
    }

    fn retention_minutes(&self) -> u32 {
        MINUTE_SLOTS.max(self.window_hours * 60)
    }

    /// The index of `name`, creating it (within `max_services`) when new.
    fn slot_of(&mut self, name: &LabelValue, now_min: u32) -> Option<usize> {
        if let Some(&i) = self.index.get(name.as_str()) {
            return Some(i);
        }
        if self.services.len() >= self.max_services {
            self.evict_idle(now_min);
            if self.services.len() >= self.max_services {
                self.dropped_service_limit += 1;
                return None;
            }
        }
        let i = self.services.len();
        self.services.push(Service::new(
            name.clone(),
            Budget::Count(self.default_budget),
            false,
            self.window_hours,
        ));
        self.index.insert(name.as_str().into(), i);
        Some(i)
    }

    /// Removes unconfigured services whose newest event has left both rings; at most one scan
    /// per minute, so a flood of new services at the cap costs one lookup each.
    fn evict_idle(&mut self, now_min: u32) {
        if self.last_evict_scan == Some(now_min) {
            return;
        }
        self.last_evict_scan = Some(now_min);
        let keep = self.retention_minutes();
        let before = self.services.len();
        self.services
            .retain(|s| s.configured || now_min.saturating_sub(s.last_minute) < keep);
        if self.services.len() != before {
            self.index.clear();
            for (i, s) in self.services.iter().enumerate() {
                self.index.insert(s.name.as_str().into(), i);
            }
        }
    }

    /// Adds `c` at time `ts` (or `now`) to service `i`.
    fn add(&mut self, i: usize, ts: Option<SystemTime>, now: SystemTime, c: Counts) {
        let now_s = unix_secs(now);
        let mut t = ts.map_or(now_s, unix_secs);
        if t > now_s {
            t = now_s;
            self.clamped_future += 1;
        }
        let (now_min, now_hour) = ((now_s / 60) as u32, (now_s / 3600) as u32);
        let (minute, hour) = ((t / 60) as u32, (t / 3600) as u32);
        let in_minutes = now_min - minute < MINUTE_SLOTS;
        let in_hours = now_hour - hour < self.window_hours;
        let s = &mut self.services[i];
        s.errors_total = s.errors_total.saturating_add(c.errors);
        if !in_minutes && !in_hours {
            self.dropped_too_old += 1;
            return;
        }
        s.last_minute = s.last_minute.max(minute);
        if in_minutes {
            s.add_minute(minute, c);
        }
        if in_hours {
            s.add_hour(hour, c);
        }
    }

    /// Records a finished request.
    pub fn record_request(&mut self, ev: &RequestEvent, now: SystemTime) {
        let now_min = (unix_secs(now) / 60) as u32;
        let Some(i) = self.slot_of(&ev.service, now_min) else {
            return;
        };
        let bad = match &self.services[i].budget {
            Budget::Slo(rule) => u64::from(rule.is_bad(ev)),
            Budget::Count(_) => 0,
        };
        let c = Counts {
            errors: u64::from(ev.is_error()),
            total: 1,
            bad,
        };
        self.add(i, ev.timestamp, now, c);
    }

    /// Records an error the service reported.
    pub fn record_error(&mut self, ev: &ErrorEvent, now: SystemTime) {
        let now_min = (unix_secs(now) / 60) as u32;
        let Some(i) = self.slot_of(&ev.service, now_min) else {
            return;
        };
        let c = Counts {
            errors: 1,
            total: 0,
            bad: 0,
        };
        self.add(i, ev.timestamp, now, c);
    }

    /// Records the events that concern budgets (requests and errors); ignores the others.
    pub fn record(&mut self, ev: &Event, now: SystemTime) {
        match ev {
            Event::Request(r) => self.record_request(r, now),
            Event::Error(e) => self.record_error(e, now),
            Event::BreakerTransition(_) | Event::DeprecatedCall(_) => {}
        }
    }

    /// Counts of `s` in the budget window at `now_s` (Unix seconds).
    fn budget_window_counts(&self, s: &Service, now_s: u64) -> Counts {
        if self.window_minutes > 0 {
            s.minute_window_counts((now_s / 60) as u32, self.window_minutes)
        } else {
            s.window_counts((now_s / 3600) as u32)
        }
    }

    fn status_of(&self, s: &Service, now: SystemTime) -> BudgetStatus {
        let now_s = unix_secs(now);
        let window = self.budget_window_counts(s, now_s);
        let burns = s.burn_counts((now_s / 60) as u32);
        let mut burn_rates = [0.0; 7];
        let (remaining, remaining_ratio) = match &s.budget {
            Budget::Count(b) => {
                let b = *b as f64;
                let remaining = b - window.errors as f64;
                for (r, (c, (_, mins))) in burn_rates.iter_mut().zip(burns.iter().zip(BURN_WINDOWS))
                {
                    // (errors / w) / (B / W), as one division of exact integers
                    *r = (c.errors as f64 * self.window_seconds as f64)
                        / (f64::from(mins) * 60.0 * b);
                }
                (remaining, remaining / b)
            }
            Budget::Slo(rule) => {
                let allowed_fraction = 1.0 - rule.objective;
                let allowed = allowed_fraction * window.total as f64;
                let remaining = allowed - window.bad as f64;
                let ratio = if window.total == 0 {
                    1.0
                } else {
                    remaining / allowed
                };
                for (r, c) in burn_rates.iter_mut().zip(burns.iter()) {
                    *r = if c.total == 0 {
                        0.0
                    } else {
                        c.bad as f64 / (c.total as f64 * allowed_fraction)
                    };
                }
                (remaining, ratio)
            }
        };
        BudgetStatus {
            errors_total: s.errors_total,
            window,
            remaining,
            remaining_ratio,
            burn_rates,
        }
    }

    /// The figures of `service` at `now`, None when it is not tracked.
    pub fn status(&self, service: &str, now: SystemTime) -> Option<BudgetStatus> {
        let &i = self.index.get(service)?;
        Some(self.status_of(&self.services[i], now))
    }

    /// Writes every family (services sorted by name).
    pub fn encode(&self, now: SystemTime, sink: &mut Sink) {
        let mut order: Vec<usize> = (0..self.services.len()).collect();
        order.sort_by(|&a, &b| self.services[a].name.cmp(&self.services[b].name));
        let statuses: Vec<BudgetStatus> = order
            .iter()
            .map(|&i| self.status_of(&self.services[i], now))
            .collect();
        let name = |k: usize| self.services[order[k]].name.as_str();

        let mut f = sink.family(
            "service_errors_total",
            "Errors of the service (reported errors, and requests with a 5xx code or an error outcome) since sonde started or restored its state.",
            MetricType::Counter,
        );
        for (k, st) in statuses.iter().enumerate() {
            f.sample(&[("service", name(k))], st.errors_total as f64);
        }
        let mut f = sink.family(
            "service_error_budget_remaining",
            "Errors (count budgets) or bad requests (SLO budgets) still allowed in the budget window; negative when overspent.",
            MetricType::Gauge,
        );
        for (k, st) in statuses.iter().enumerate() {
            f.sample(&[("service", name(k))], st.remaining);
        }
        let mut f = sink.family(
            "service_error_budget_remaining_ratio",
            "Fraction of the error budget left in the budget window: 1 untouched, 0 exhausted, negative overspent.",
            MetricType::Gauge,
        );
        for (k, st) in statuses.iter().enumerate() {
            f.sample(&[("service", name(k))], st.remaining_ratio);
        }
        let mut f = sink.family(
            "service_error_budget_burn_rate",
            "Error rate over the window divided by the rate that would exactly exhaust the budget over the budget window.",
            MetricType::Gauge,
        );
        for (k, st) in statuses.iter().enumerate() {
            for ((label, _), r) in BURN_WINDOWS.iter().zip(st.burn_rates) {
                f.sample(&[("service", name(k)), ("window", label)], r);
            }
        }
        sink.family(
            "sonde_error_budget_dropped_events_total",
            "Events not counted in any error budget window, by reason.",
            MetricType::Counter,
        )
        .sample(
            &[("reason", "service_limit")],
            self.dropped_service_limit as f64,
        )
        .sample(&[("reason", "too_old")], self.dropped_too_old as f64);
        sink.counter(
            "sonde_error_budget_clamped_events_total",
            "Events whose timestamp lay in the future and was replaced by the time sonde received them.",
            self.clamped_future as f64,
        );
    }

    /// The state to persist: every service's totals and non-empty buckets still inside the
    /// rings at `now`.
    pub fn snapshot(&self, now: SystemTime) -> Snapshot {
        let now_s = unix_secs(now);
        let (now_min, now_hour) = ((now_s / 60) as u32, (now_s / 3600) as u32);
        let mut services: Vec<ServiceSnapshot> = self
            .services
            .iter()
            .map(|s| {
                let mut minutes: Vec<(u32, Counts)> = s
                    .minutes
                    .iter()
                    .filter(|m| {
                        m.minute <= now_min
                            && now_min - m.minute < MINUTE_SLOTS
                            && (m.errors | m.total | m.bad) != 0
                    })
                    .map(|m| {
                        (
                            m.minute,
                            Counts {
                                errors: u64::from(m.errors),
                                total: u64::from(m.total),
                                bad: u64::from(m.bad),
                            },
                        )
                    })
                    .collect();
                minutes.sort_unstable_by_key(|m| m.0);
                let mut hours: Vec<(u32, Counts)> = s
                    .hours
                    .iter()
                    .filter(|h| {
                        h.hour <= now_hour
                            && now_hour - h.hour < self.window_hours
                            && !h.counts.is_zero()
                    })
                    .map(|h| (h.hour, h.counts))
                    .collect();
                hours.sort_unstable_by_key(|h| h.0);
                ServiceSnapshot {
                    service: s.name.as_str().to_string(),
                    errors_total: s.errors_total,
                    minutes,
                    hours,
                }
            })
            .collect();
        services.sort_by(|a, b| a.service.cmp(&b.service));
        Snapshot { services }
    }

    /// Replaces the state of every service in `snap` (typically at start, before any event).
    /// Buckets outside the current rings at `now` are ignored; services with invalid names or
    /// beyond `max_services` are skipped. Returns the number of services restored.
    ///
    /// With an hour ring, each hour of the window is raised, field by field, to the sum of the
    /// restored minute buckets of that hour: a snapshot taken with a window below one hour has
    /// no hour buckets at all, and one taken with a shorter hour window lacks the older hours,
    /// so the minute ring is the only record of those errors. The maximum never counts an event
    /// twice, because with an hour ring every event of the minute ring also went into its
    /// hour; the hour bucket is larger when it also holds minutes that have left the minute
    /// ring (more than 3 days ago).
    pub fn restore(&mut self, snap: &Snapshot, now: SystemTime) -> usize {
        let now_s = unix_secs(now);
        let (now_min, now_hour) = ((now_s / 60) as u32, (now_s / 3600) as u32);
        let window_hours = self.window_hours;
        let mut restored = 0;
        for ss in &snap.services {
            let Ok(name) = LabelValue::new(&ss.service, LabelLimits::default()) else {
                continue;
            };
            let Some(i) = self.slot_of(&name, now_min) else {
                continue;
            };
            let s = &mut self.services[i];
            s.errors_total = ss.errors_total;
            s.minutes.fill(MinuteSlot::default());
            s.hours.fill(HourSlot::default());
            s.last_minute = 0;
            for &(m, c) in &ss.minutes {
                if m <= now_min && now_min - m < MINUTE_SLOTS {
                    s.add_minute(m, c);
                    s.last_minute = s.last_minute.max(m);
                }
            }
            for &(h, c) in &ss.hours {
                if h <= now_hour && now_hour - h < window_hours {
                    s.add_hour(h, c);
                    s.last_minute = s.last_minute.max(h.saturating_mul(60));
                }
            }
            if window_hours > 0 {
                let mut by_hour: BTreeMap<u32, Counts> = BTreeMap::new();
                for m in s.minutes.iter() {
                    if m.minute <= now_min
                        && now_min - m.minute < MINUTE_SLOTS
                        && (m.errors | m.total | m.bad) != 0
                    {
                        *by_hour.entry(m.minute / 60).or_default() += Counts {
                            errors: u64::from(m.errors),
                            total: u64::from(m.total),
                            bad: u64::from(m.bad),
                        };
                    }
                }
                for (h, c) in by_hour {
                    if h <= now_hour && now_hour - h < window_hours {
                        s.raise_hour(h, c);
                    }
                }
            }
            restored += 1;
        }
        restored
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::services::event::Outcome;
    use std::time::Duration;

    /// 2023-11-14T22:00:00Z: on the hour, so window edges are easy to state.
    const T0: u64 = 1_700_000_000 - 1_700_000_000 % 3600;

    fn at(secs: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(T0 + secs)
    }

    fn lv(s: &str) -> LabelValue {
        LabelValue::new(s, LabelLimits::default()).expect("valid label")
    }

    fn req(service: &str, code: u16, duration: f64) -> RequestEvent {
        RequestEvent {
            service: lv(service),
            route: lv("/x"),
            method: lv("GET"),
            code: Some(code),
            outcome: None,
            duration_seconds: duration,
            timestamp: None,
        }
    }

    fn err(service: &str) -> ErrorEvent {
        ErrorEvent {
            service: lv(service),
            kind: None,
            timestamp: None,
        }
    }

    fn budgets(cfg: &Config, env: &str) -> ErrorBudgets {
        let env = parse_error_budgets_env(env).expect("env parses");
        ErrorBudgets::new(cfg, &env).expect("builds")
    }

    fn errors_at(b: &mut ErrorBudgets, service: &str, secs: u64, n: usize) {
        for _ in 0..n {
            b.record_error(&err(service), at(secs));
        }
    }

    /// `n` errors stamped `ts`, received at `now`.
    fn errors_stamped(b: &mut ErrorBudgets, service: &str, ts: u64, now: u64, n: usize) {
        let mut e = err(service);
        e.timestamp = Some(at(ts));
        for _ in 0..n {
            b.record_error(&e, at(now));
        }
    }

    #[test]
    fn env_parses_and_rejects_bad_entries_clearly() {
        assert_eq!(
            parse_error_budgets_env("api=1000,worker=500"),
            Ok(vec![("api".into(), 1000), ("worker".into(), 500)])
        );
        assert_eq!(
            parse_error_budgets_env(" api = 7 , b=1"),
            Ok(vec![("api".into(), 7), ("b".into(), 1)])
        );
        assert_eq!(parse_error_budgets_env("  "), Ok(vec![]));
        let msg = |s: &str| {
            parse_error_budgets_env(s)
                .expect_err("must be refused")
                .to_string()
        };
        assert_eq!(
            msg("api=1000,worker500"),
            r#"ERROR_BUDGETS entry 2 ("worker500"): missing '=' (expected service=count)"#
        );
        assert_eq!(
            msg("=5"),
            r#"ERROR_BUDGETS entry 1 ("=5"): empty service name"#
        );
        assert_eq!(
            msg("api=10,worker=-5"),
            r#"ERROR_BUDGETS entry 2 ("worker=-5"): count must not be negative"#
        );
        assert_eq!(
            msg("api=1.5"),
            r#"ERROR_BUDGETS entry 1 ("api=1.5"): count is not a whole number"#
        );
        assert_eq!(
            msg("api=ten"),
            r#"ERROR_BUDGETS entry 1 ("api=ten"): count is not a whole number"#
        );
        assert_eq!(
            msg("api="),
            r#"ERROR_BUDGETS entry 1 ("api="): count is not a whole number"#
        );
        assert_eq!(
            msg("api=+5"),
            r#"ERROR_BUDGETS entry 1 ("api=+5"): count is not a whole number"#
        );
        assert_eq!(
            msg("api=99999999999999999999"),
            r#"ERROR_BUDGETS entry 1 ("api=99999999999999999999"): count is not a whole number"#
        );
        assert_eq!(
            msg("api=0"),
            r#"ERROR_BUDGETS entry 1 ("api=0"): count must be at least 1"#
        );
        assert_eq!(
            msg("api=1,worker=2,api=3"),
            r#"ERROR_BUDGETS entry 3 ("api=3"): service "api" is listed twice"#
        );
        assert_eq!(
            msg("api=1,,b=2"),
            "ERROR_BUDGETS entry 2 is empty (expected service=count)"
        );
        assert_eq!(
            msg("my api=1"),
            r#"ERROR_BUDGETS entry 1 ("my api=1"): service name contains ' ', allowed are letters, digits and _.:/{}@-"#
        );
    }

    #[test]
    fn count_budget_remaining_ratio_and_default() {
        let mut b = budgets(&Config::default(), "api=10");
        // api: configured, present before any event
        let st = b.status("api", at(0)).expect("configured");
        assert_eq!((st.remaining, st.remaining_ratio), (10.0, 1.0));
        errors_at(&mut b, "api", 5, 3);
        let mut r = req("api", 503, 0.1);
        b.record_request(&r, at(6));
        r.code = Some(404);
        b.record_request(&r, at(7));
        r.code = None;
        r.outcome = Some(Outcome::Error);
        b.record_request(&r, at(8));
        let st = b.status("api", at(10)).expect("tracked");
        assert_eq!(st.errors_total, 5);
        assert_eq!(
            st.window,
            Counts {
                errors: 5,
                total: 3,
                bad: 0
            }
        );
        assert_eq!(st.remaining, 5.0);
        assert_eq!(st.remaining_ratio, 0.5);
        // overspent: 12 errors of 10
        errors_at(&mut b, "api", 20, 7);
        let st = b.status("api", at(30)).expect("tracked");
        assert_eq!((st.remaining, st.remaining_ratio), (-2.0, -0.2));
        // an unlisted service gets the default budget of 1000
        errors_at(&mut b, "other", 30, 250);
        let st = b.status("other", at(40)).expect("tracked");
        assert_eq!((st.remaining, st.remaining_ratio), (750.0, 0.75));
        assert_eq!(b.budget_of("nobody"), Budget::Count(1000));
    }

    #[test]
    fn window_rolls_over() {
        let cfg = Config {
            window_seconds: 86_400,
            ..Config::default()
        };
        let mut b = budgets(&cfg, "api=100");
        // on the hour: falls out exactly at t + window
        errors_at(&mut b, "api", 0, 4);
        // half past: falls out at start of its hour + window
        errors_at(&mut b, "api", 1800, 1);
        let rem = |b: &ErrorBudgets, s: u64| b.status("api", at(s)).expect("tracked").remaining;
        assert_eq!(rem(&b, 0), 95.0);
        assert_eq!(rem(&b, 86_399), 95.0);
        assert_eq!(rem(&b, 86_400), 100.0);
        // errors_total is a counter, it does not roll
        assert_eq!(b.status("api", at(86_400)).map(|s| s.errors_total), Some(5));
        // a new error reuses the ring slot of the expired hour without resurrecting old counts
        errors_at(&mut b, "api", 86_400 + 10, 2);
        assert_eq!(rem(&b, 86_400 + 20), 98.0);
        assert_eq!(rem(&b, 2 * 86_400 - 1), 98.0);
        assert_eq!(rem(&b, 2 * 86_400), 100.0);
    }

    /// 2023-11-18T12:00:00Z (four days after `T0`, so events three days older still fit).
    const NOON: u64 = 4 * 86_400 + 14 * 3600;

    #[test]
    fn minute_windows_roll_over_at_the_minute() {
        let rem = |b: &ErrorBudgets, s: u64| b.status("api", at(s)).expect("tracked").remaining;
        // 60 s: an error at 12:00:30 counts at 12:00:59 and is gone at 12:01:00
        let cfg = Config {
            window_seconds: 60,
            ..Config::default()
        };
        let mut b = budgets(&cfg, "api=5");
        errors_at(&mut b, "api", NOON + 30, 1);
        assert_eq!(rem(&b, NOON + 30), 4.0);
        assert_eq!(rem(&b, NOON + 59), 4.0);
        assert_eq!(rem(&b, NOON + 60), 5.0);
        assert_eq!(
            b.status("api", at(NOON + 60)).map(|s| s.errors_total),
            Some(1)
        );
        // 120 s: the same error counts until 12:01:59 and is gone at 12:02:00
        let cfg = Config {
            window_seconds: 120,
            ..Config::default()
        };
        let mut b = budgets(&cfg, "api=5");
        errors_at(&mut b, "api", NOON + 30, 1);
        assert_eq!(rem(&b, NOON + 60), 4.0);
        assert_eq!(rem(&b, NOON + 119), 4.0);
        assert_eq!(rem(&b, NOON + 120), 5.0);
        // the last allowed minute: 59 minutes
        let cfg = Config {
            window_seconds: 3540,
            ..Config::default()
        };
        let mut b = budgets(&cfg, "api=5");
        errors_at(&mut b, "api", NOON + 30, 2);
        assert_eq!(rem(&b, NOON + 3539), 3.0);
        assert_eq!(rem(&b, NOON + 3540), 5.0);
    }

    #[test]
    fn minute_window_budget_and_burn_rates() {
        let cfg = Config {
            window_seconds: 60,
            ..Config::default()
        };
        let mut b = budgets(&cfg, "api=5");
        // 6 errors: overspent by one
        errors_at(&mut b, "api", NOON + 10, 6);
        // stamped two minutes earlier: in the burn windows, not in the 60 s budget window
        errors_stamped(&mut b, "api", NOON - 120, NOON + 10, 3);
        let st = b.status("api", at(NOON + 20)).expect("tracked");
        assert_eq!(st.errors_total, 9);
        assert_eq!(st.window.errors, 6);
        assert_eq!((st.remaining, st.remaining_ratio), (-1.0, -0.2));
        // burn(w) = (errors_w / w) / (B / W) = errors_w × 60 / (w_seconds × 5)
        assert_eq!(
            st.burn_rates,
            [
                9.0 * 60.0 / (300.0 * 5.0),
                9.0 * 60.0 / (1800.0 * 5.0),
                9.0 * 60.0 / (3600.0 * 5.0),
                9.0 * 60.0 / (7200.0 * 5.0),
                9.0 * 60.0 / (21_600.0 * 5.0),
                9.0 * 60.0 / (86_400.0 * 5.0),
                9.0 * 60.0 / (259_200.0 * 5.0),
            ]
        );
        assert_eq!(st.burn_rates[0], 0.36);
        // older than the minute ring: dropped, the window has no hour ring to keep it
        errors_stamped(&mut b, "api", NOON - 3 * 86_400 - 60, NOON + 10, 1);
        let mut sink = Sink::new();
        b.encode(at(NOON + 20), &mut sink);
        let text = render(&sink);
        assert!(
            text.contains("sonde_error_budget_dropped_events_total{reason=\"too_old\"} 1\n"),
            "{text}"
        );
        assert!(
            text.contains("service_error_budget_remaining{service=\"api\"} -1\n"),
            "{text}"
        );
    }

    #[test]
    fn minute_window_survives_snapshot_store_and_restore() {
        let cfg = Config {
            window_seconds: 120,
            ..Config::default()
        };
        let now = NOON + 150; // 12:02:30
        let mut b = budgets(&cfg, "api=10");
        errors_at(&mut b, "api", NOON + 30, 4); // minute 12:00: out of the window at 12:02
        errors_at(&mut b, "api", NOON + 70, 2); // 12:01
        errors_at(&mut b, "api", NOON + 140, 1); // 12:02
        errors_at(&mut b, "worker", NOON + 145, 3);
        let snap = b.snapshot(at(now));
        assert!(snap.services.iter().all(|s| s.hours.is_empty()));
        let api = &snap.services[0];
        assert_eq!(api.service, "api");
        let m0 = ((T0 + NOON) / 60) as u32;
        assert_eq!(
            api.minutes
                .iter()
                .map(|m| (m.0 - m0, m.1.errors))
                .collect::<Vec<_>>(),
            vec![(0, 4), (1, 2), (2, 1)]
        );
        // through the real store, as the daemon does across a restart
        let dir = tempfile::tempdir().expect("tempdir");
        {
            let (store, _) =
                crate::services::budget_store::Store::open_in(dir.path(), at(now)).expect("opens");
            store.save(&b, at(now)).expect("saves");
        }
        let (store, _) =
            crate::services::budget_store::Store::open_in(dir.path(), at(now + 5)).expect("opens");
        let loaded = store.load().expect("loads");
        assert_eq!(loaded, snap);
        let mut c = budgets(&cfg, "api=10");
        assert_eq!(c.restore(&loaded, at(now + 5)), 2);
        for t in [now + 5, NOON + 179, NOON + 180, NOON + 240] {
            for s in ["api", "worker"] {
                assert_eq!(c.status(s, at(t)), b.status(s, at(t)), "{s} at {t}");
            }
        }
        let rem = |x: &ErrorBudgets, t: u64| x.status("api", at(t)).expect("tracked").remaining;
        assert_eq!(rem(&c, now + 5), 7.0);
        assert_eq!(rem(&c, NOON + 180), 9.0);
        assert_eq!(rem(&c, NOON + 240), 10.0);
        assert_eq!(c.snapshot(at(now + 5)), snap);
    }

    #[test]
    fn minute_window_snapshot_restores_into_an_hour_window() {
        // taken with a 60 s window: the snapshot holds minute buckets only
        let short = Config {
            window_seconds: 60,
            ..Config::default()
        };
        let now = NOON + 150; // 12:02:30
        let mut b = budgets(&short, "api=100");
        errors_stamped(&mut b, "api", NOON - 2 * 86_400, now, 5); // older than one day
        errors_stamped(&mut b, "api", NOON - 5 * 3600 + 600, now, 3); // 07:10
        errors_at(&mut b, "api", NOON + 30, 2);
        errors_at(&mut b, "api", NOON + 140, 1);
        let snap = b.snapshot(at(now));
        assert!(snap.services[0].hours.is_empty());
        // restarted with a one-day window: the errors of the last 24 hours are still spent
        let day = Config {
            window_seconds: 86_400,
            ..Config::default()
        };
        let mut c = budgets(&day, "api=100");
        assert_eq!(c.restore(&snap, at(now)), 1);
        let st = c.status("api", at(now)).expect("tracked");
        assert_eq!(st.window.errors, 6);
        assert_eq!(st.remaining, 94.0);
        assert_eq!(st.errors_total, 11);
        // burn windows read the minute ring as before, now against B / 1 d
        let burn = |e: f64, w: f64| e * 86_400.0 / (w * 100.0);
        assert_eq!(
            st.burn_rates,
            [
                burn(3.0, 300.0),
                burn(3.0, 1800.0),
                burn(3.0, 3600.0),
                burn(3.0, 7200.0),
                burn(6.0, 21_600.0),
                burn(6.0, 86_400.0),
                burn(11.0, 259_200.0),
            ]
        );
        // the 07:10 errors leave with their hour: at 07:00 the next day
        let errs = |t: u64| c.status("api", at(t)).expect("tracked").window.errors;
        assert_eq!(errs(NOON + 19 * 3600 - 1), 6);
        assert_eq!(errs(NOON + 19 * 3600), 3);
        assert_eq!(errs(NOON + 86_400), 0);
        // a snapshot of the restored state carries the hours and restores the same
        let snap2 = c.snapshot(at(now));
        let h0 = ((T0 + NOON) / 3600) as u32 - 5; // 07:00
        assert_eq!(
            snap2.services[0]
                .hours
                .iter()
                .map(|h| (h.0 - h0, h.1.errors))
                .collect::<Vec<_>>(),
            vec![(0, 3), (5, 3)]
        );
        let mut d = budgets(&day, "api=100");
        d.restore(&snap2, at(now));
        assert_eq!(d.status("api", at(now)), c.status("api", at(now)));
    }

    #[test]
    fn growing_hour_window_recovers_minute_data_without_double_counting() {
        let hour = Config {
            window_seconds: 3600,
            ..Config::default()
        };
        let now = NOON + 150;
        let mut b = budgets(&hour, "api=100");
        errors_stamped(&mut b, "api", NOON - 2 * 86_400, now, 4); // minute ring only
        errors_stamped(&mut b, "api", NOON - 2 * 3600, now, 7); // minute ring only
        errors_at(&mut b, "api", NOON + 30, 2); // both rings
        let snap = b.snapshot(at(now));
        assert_eq!(
            snap.services[0]
                .hours
                .iter()
                .map(|h| h.1.errors)
                .collect::<Vec<_>>(),
            vec![2]
        );
        // 1 h -> 30 d: the three days of the minute ring are recovered, the current hour once
        let mut c = budgets(&Config::default(), "api=100");
        c.restore(&snap, at(now));
        assert_eq!(c.status("api", at(now)).map(|s| s.window.errors), Some(13));
        // 1 h -> 1 h: unchanged
        let mut d = budgets(&hour, "api=100");
        d.restore(&snap, at(now));
        assert_eq!(d.status("api", at(now)), b.status("api", at(now)));
        assert_eq!(d.status("api", at(now)).map(|s| s.window.errors), Some(2));
    }

    #[test]
    fn window_seconds_accepts_minutes_below_an_hour_and_whole_hours() {
        let check = |w: u64| {
            let mut issues = Vec::new();
            Config {
                window_seconds: w,
                ..Config::default()
            }
            .check("services.error_budgets", &mut issues);
            issues.len()
        };
        for ok in [60, 120, 1800, 3540, 3600, 7200, MAX_WINDOW_SECONDS] {
            assert_eq!(check(ok), 0, "{ok}");
        }
        for bad in [0, 1, 59, 90, 3599, 3660, 5400, MAX_WINDOW_SECONDS + 3600] {
            assert_eq!(check(bad), 1, "{bad}");
        }
    }

    #[test]
    fn thirty_day_window_rolls_over() {
        let mut b = budgets(&Config::default(), "api=1000");
        errors_at(&mut b, "api", 0, 10);
        errors_at(&mut b, "api", 10 * 86_400, 20);
        let rem = |b: &ErrorBudgets, s: u64| b.status("api", at(s)).expect("tracked").remaining;
        assert_eq!(rem(&b, 30 * 86_400 - 1), 970.0);
        assert_eq!(rem(&b, 30 * 86_400), 980.0);
        assert_eq!(rem(&b, 40 * 86_400 - 1), 980.0);
        assert_eq!(rem(&b, 40 * 86_400), 1000.0);
    }

    #[test]
    fn burn_rates_per_window() {
        // budget 1000 over 30 days: allowed rate 1000 / 2592000 errors per second
        let mut b = budgets(&Config::default(), "api=1000");
        let now: u64 = 4 * 86_400; // minute-aligned
        // ages (seconds before now) chosen to land in successive windows
        errors_stamped(&mut b, "api", now - 10, now, 3); // in 5m and every longer window
        errors_stamped(&mut b, "api", now - 20 * 60, now, 2); // 30m+
        errors_stamped(&mut b, "api", now - 45 * 60, now, 5); // 1h+
        errors_stamped(&mut b, "api", now - 90 * 60, now, 4); // 2h+
        errors_stamped(&mut b, "api", now - 5 * 3600, now, 6); // 6h+
        errors_stamped(&mut b, "api", now - 20 * 3600, now, 10); // 1d+
        errors_stamped(&mut b, "api", now - 2 * 86_400, now, 30); // 3d
        errors_stamped(&mut b, "api", now - 3 * 86_400 - 60, now, 100); // only in the budget window
        let st = b.status("api", at(now)).expect("tracked");
        // burn(w) = errors_w * 2592000 / (w_seconds * 1000)
        let expect = [
            3.0 * 2592.0 / 300.0,     // 5m: 3 errors
            5.0 * 2592.0 / 1800.0,    // 30m: 5
            10.0 * 2592.0 / 3600.0,   // 1h: 10
            14.0 * 2592.0 / 7200.0,   // 2h: 14
            20.0 * 2592.0 / 21600.0,  // 6h: 20
            30.0 * 2592.0 / 86400.0,  // 1d: 30
            60.0 * 2592.0 / 259200.0, // 3d: 60
        ];
        assert_eq!(st.burn_rates, [25.92, 7.2, 7.2, 5.04, 2.4, 0.9, 0.6]);
        for (got, want) in st.burn_rates.iter().zip(expect) {
            assert!((got - want).abs() < 1e-12, "{got} vs {want}");
        }
        assert_eq!(st.window.errors, 160);
        assert_eq!(st.remaining, 840.0);
        // five minutes later the 5m window is empty, the 30m one still holds the 3+2
        let st = b.status("api", at(now + 300)).expect("tracked");
        assert_eq!(st.burn_rates[0], 0.0);
        assert_eq!(st.burn_rates[1], 7.2);
    }

    #[test]
    fn slo_budget_with_latency_rule() {
        let mut cfg = Config::default();
        cfg.slos.insert(
            "checkout".into(),
            SloConfig {
                objective: 0.75,
                bad_status_codes: vec!["5xx".into(), "429".into()],
                latency_threshold_seconds: Some(0.5),
            },
        );
        let mut b = budgets(&cfg, "");
        let st = b.status("checkout", at(0)).expect("configured");
        assert_eq!((st.remaining, st.remaining_ratio), (0.0, 1.0));
        assert_eq!(st.burn_rates, [0.0; 7]);
        // 40 requests in the last 5 minutes: 2 × 500, 1 × 429, 1 slow 200, 1 × 404 (good),
        // 35 fast 200 → 4 bad
        let now = 86_400;
        for (code, d, n) in [
            (500, 0.1, 2),
            (429, 0.1, 1),
            (200, 0.9, 1),
            (404, 0.1, 1),
            (200, 0.5, 35),
        ] {
            for _ in 0..n {
                b.record_request(&req("checkout", code, d), at(now - 30));
            }
        }
        // 60 good requests two hours before (outside 1h, inside 6h)
        for _ in 0..60 {
            b.record_request(&req("checkout", 200, 0.1), at(now - 2 * 3600 - 60));
        }
        b.record_error(&err("checkout"), at(now - 30));
        let st = b.status("checkout", at(now)).expect("tracked");
        assert_eq!(
            st.window,
            Counts {
                errors: 3, // 2 × 500 + the error event; 429 and slow are bad but not errors
                total: 100,
                bad: 4
            }
        );
        assert_eq!(st.errors_total, 3);
        // allowed = 0.25 × 100 = 25; remaining 21; ratio 21/25
        assert_eq!(st.remaining, 21.0);
        assert_eq!(st.remaining_ratio, 0.84);
        // 5m..1h: 4 bad of 40 → 0.1 / 0.25 = 0.4; 6h and longer: 4 of 100 → 0.16
        assert_eq!(st.burn_rates, [0.4, 0.4, 0.4, 0.4, 0.16, 0.16, 0.16]);
    }

    #[test]
    fn slo_with_realistic_objective() {
        let mut cfg = Config::default();
        cfg.slos.insert(
            "api".into(),
            SloConfig {
                objective: 0.999,
                bad_status_codes: default_bad_status_codes(),
                latency_threshold_seconds: None,
            },
        );
        let mut b = budgets(&cfg, "");
        for i in 0..10_000u32 {
            let code = if i % 2000 == 0 { 502 } else { 200 };
            b.record_request(&req("api", code, 3.0), at(100));
        }
        let st = b.status("api", at(120)).expect("tracked");
        // allowed 10, bad 5
        assert!((st.remaining - 5.0).abs() < 1e-9, "{}", st.remaining);
        assert!((st.remaining_ratio - 0.5).abs() < 1e-9);
        assert!((st.burn_rates[0] - 0.5).abs() < 1e-9);
        assert_eq!(
            b.budget_of("api"),
            Budget::Slo(SloRule::from_config(&cfg.slos["api"]).expect("valid"))
        );
    }

    #[test]
    fn timestamps_are_clamped_or_dropped() {
        let cfg = Config {
            window_seconds: 86_400,
            ..Config::default()
        };
        let mut b = budgets(&cfg, "api=100");
        let now = 10 * 86_400;
        let mut e = err("api");
        // from the future: counted now
        e.timestamp = Some(at(now + 3600));
        b.record_error(&e, at(now));
        // 2 days old: outside the 1-day budget window, inside the 3-day burn window
        e.timestamp = Some(at(now - 2 * 86_400));
        b.record_error(&e, at(now));
        // 4 days old: outside both
        e.timestamp = Some(at(now - 4 * 86_400));
        b.record_error(&e, at(now));
        let st = b.status("api", at(now)).expect("tracked");
        assert_eq!(st.errors_total, 3);
        assert_eq!(st.window.errors, 1);
        assert_eq!(st.remaining, 99.0);
        // 3d burn: 2 errors × 86400 / (259200 × 100)
        assert_eq!(st.burn_rates[6], 2.0 * 86_400.0 / (259_200.0 * 100.0));
        assert_eq!(st.burn_rates[0], 86_400.0 / (300.0 * 100.0));
        let mut sink = Sink::new();
        b.encode(at(now), &mut sink);
        let text = render(&sink);
        assert!(text.contains("sonde_error_budget_dropped_events_total{reason=\"too_old\"} 1\n"));
        assert!(text.contains("sonde_error_budget_clamped_events_total 1\n"));
    }

    #[test]
    fn services_are_capped_and_idle_ones_evicted() {
        let cfg = Config {
            max_services: 3,
            window_seconds: 3600,
            ..Config::default()
        };
        let mut b = budgets(&cfg, "api=5");
        errors_at(&mut b, "a", 0, 1);
        errors_at(&mut b, "b", 0, 1);
        errors_at(&mut b, "c", 10, 1);
        errors_at(&mut b, "c", 20, 1);
        assert_eq!(b.service_count(), 3);
        assert!(b.status("c", at(20)).is_none());
        // three days later "a" and "b" are idle and make room; "api" is configured and stays
        errors_at(&mut b, "c", 3 * 86_400, 1);
        assert_eq!(b.service_count(), 2);
        assert!(b.status("a", at(3 * 86_400)).is_none());
        assert_eq!(
            b.status("c", at(3 * 86_400)).map(|s| s.errors_total),
            Some(1)
        );
        assert!(b.status("api", at(3 * 86_400)).is_some());
        let mut sink = Sink::new();
        b.encode(at(3 * 86_400), &mut sink);
        assert!(
            render(&sink)
                .contains("sonde_error_budget_dropped_events_total{reason=\"service_limit\"} 2\n")
        );
    }

    #[test]
    fn config_conflicts_and_limits() {
        let mut cfg = Config::default();
        cfg.slos.insert(
            "api".into(),
            SloConfig {
                objective: 0.99,
                bad_status_codes: default_bad_status_codes(),
                latency_threshold_seconds: None,
            },
        );
        let env = parse_error_budgets_env("api=5").expect("parses");
        assert_eq!(
            ErrorBudgets::new(&cfg, &env).map(|_| ()),
            Err(BuildError::Conflict("api".into()))
        );
        cfg.max_services = 1;
        let env = parse_error_budgets_env("worker=5").expect("parses");
        assert_eq!(
            ErrorBudgets::new(&cfg, &env).map(|_| ()),
            Err(BuildError::TooManyServices {
                configured: 2,
                max: 1
            })
        );
    }

    #[test]
    fn config_check_names_keys() {
        let mut cfg = Config {
            window_seconds: 5000,
            default_budget: 0,
            max_services: 0,
            flush_interval_seconds: 0,
            ..Config::default()
        };
        cfg.budgets.insert("bad name".into(), 0);
        cfg.slos.insert(
            "api".into(),
            SloConfig {
                objective: 1.0,
                bad_status_codes: vec![],
                latency_threshold_seconds: None,
            },
        );
        cfg.slos.insert(
            "web".into(),
            SloConfig {
                objective: 0.9,
                bad_status_codes: vec!["6xx".into()],
                latency_threshold_seconds: None,
            },
        );
        cfg.slos.insert(
            "db".into(),
            SloConfig {
                objective: 0.9,
                bad_status_codes: vec!["504-500".into()],
                latency_threshold_seconds: Some(-1.0),
            },
        );
        let mut issues = Vec::new();
        cfg.check("services.error_budgets", &mut issues);
        let got: Vec<String> = issues.iter().map(|i| i.to_string()).collect();
        assert_eq!(
            got,
            vec![
                "services.error_budgets.window_seconds: must be a multiple of 60 from 60 to 3540 (whole minutes below one hour) or a multiple of 3600 from 3600 to 7948800 (whole hours up to 92 days)",
                "services.error_budgets.default_budget: must be at least 1",
                "services.error_budgets.budgets.bad name: service name contains ' ', allowed are letters, digits and _.:/{}@-",
                "services.error_budgets.budgets.bad name: must be at least 1",
                "services.error_budgets.slos.api.objective: must be between 0 and 1, both excluded (e.g. 0.999)",
                "services.error_budgets.slos.db.bad_status_codes: range \"504-500\" ends before it starts",
                "services.error_budgets.slos.web.bad_status_codes: \"6xx\" is not a status code (100-599), a class like 5xx or a range like 500-504",
                "services.error_budgets.max_services: must be at least 1 and at least the 4 configured services",
                "services.error_budgets.flush_interval_seconds: must be at least 1",
            ]
        );
        let mut issues = Vec::new();
        Config::default().check("k", &mut issues);
        assert_eq!(issues, vec![]);
    }

    #[test]
    fn code_specs() {
        assert_eq!(CodeSet::parse_spec("5xx"), Ok((500, 599)));
        assert_eq!(CodeSet::parse_spec("4XX"), Ok((400, 499)));
        assert_eq!(CodeSet::parse_spec("429"), Ok((429, 429)));
        assert_eq!(CodeSet::parse_spec("500-504"), Ok((500, 504)));
        assert!(CodeSet::parse_spec("99").is_err());
        assert!(CodeSet::parse_spec("+500").is_err());
        let mut set = CodeSet::default();
        set.insert_range(500, 504);
        assert!(set.contains(500) && set.contains(504));
        assert!(!set.contains(505) && !set.contains(499) && !set.contains(9999));
    }

    #[test]
    fn yaml_config_parses_with_defaults() {
        let cfg: Config = crate::config::from_yaml(
            "window_seconds: 604800\nbudgets:\n  api: 50\nslos:\n  checkout:\n    objective: 0.995\n    latency_threshold_seconds: 0.3\n",
        )
        .expect("parses");
        assert_eq!(cfg.window_seconds, 604_800);
        assert_eq!(cfg.budgets.get("api"), Some(&50));
        assert_eq!(
            cfg.slos.get("checkout"),
            Some(&SloConfig {
                objective: 0.995,
                bad_status_codes: vec!["5xx".into()],
                latency_threshold_seconds: Some(0.3)
            })
        );
        assert_eq!(cfg.flush_interval_seconds, 10);
        assert!(crate::config::from_yaml::<Config>("window: 5\n").is_err());
    }

    #[test]
    fn snapshot_restores_identically() {
        let mut cfg = Config::default();
        cfg.slos.insert(
            "checkout".into(),
            SloConfig {
                objective: 0.75,
                bad_status_codes: default_bad_status_codes(),
                latency_threshold_seconds: None,
            },
        );
        let mut b = budgets(&cfg, "api=100");
        let now = 5 * 86_400;
        errors_at(&mut b, "api", now - 4 * 86_400, 7); // hourly ring only
        errors_at(&mut b, "api", now - 3600, 3);
        errors_at(&mut b, "api", now - 30, 1);
        errors_at(&mut b, "worker", now - 100, 2);
        b.record_request(&req("checkout", 500, 0.1), at(now - 10));
        b.record_request(&req("checkout", 200, 0.1), at(now - 10));
        let snap = b.snapshot(at(now));
        let mut c = budgets(&cfg, "api=100");
        assert_eq!(c.restore(&snap, at(now)), 3);
        for s in ["api", "checkout", "worker"] {
            assert_eq!(c.status(s, at(now)), b.status(s, at(now)), "{s}");
            assert_eq!(
                c.status(s, at(now + 7200)),
                b.status(s, at(now + 7200)),
                "{s}"
            );
        }
        assert_eq!(c.status("api", at(now)).map(|s| s.remaining), Some(89.0));
        assert_eq!(c.snapshot(at(now)), snap);
    }

    #[test]
    fn encode_writes_every_family() {
        let mut b = budgets(&Config::default(), "api=1000");
        errors_at(&mut b, "api", 0, 3);
        let mut sink = Sink::new();
        b.encode(at(0), &mut sink);
        let text = render(&sink);
        for line in [
            "service_errors_total{service=\"api\"} 3\n",
            "service_error_budget_remaining{service=\"api\"} 997\n",
            "service_error_budget_remaining_ratio{service=\"api\"} 0.997\n",
            "service_error_budget_burn_rate{service=\"api\",window=\"5m\"} 25.92\n",
            "service_error_budget_burn_rate{service=\"api\",window=\"3d\"} 0.03\n",
        ] {
            assert!(text.contains(line), "missing {line:?} in\n{text}");
        }
        let kinds: Vec<(&str, MetricType)> =
            sink.families().map(|f| (f.name(), f.kind())).collect();
        assert_eq!(kinds[0], ("service_errors_total", MetricType::Counter));
        assert_eq!(
            kinds[3],
            ("service_error_budget_burn_rate", MetricType::Gauge)
        );
    }

    /// The rings agree with a plain list of events filtered by time, whatever the order and age
    /// of the timestamps (the clock itself only moves forward), and a snapshot restores them.
    mod model {
        use super::*;
        use proptest::prelude::*;
        use proptest::strategy::ValueTree;
        use proptest::test_runner::TestRunner;

        /// Budget windows tried: whole minutes below one hour (read from the minute ring) and
        /// whole hours (the hour ring).
        const WINDOW_MINUTES: [u64; 8] = [1, 2, 17, 59, 60, 120, 1440, 43_200];

        /// Code and duration of the request kinds 1, 2 and 3 of [`Step::kind`].
        const REQUESTS: [(u16, f64); 3] = [(503, 0.1), (200, 0.1), (200, 2.0)];

        #[derive(Debug, Clone)]
        struct Step {
            advance: u64,
            /// Seconds before `now`; negative means in the future.
            age: i64,
            /// 0: error event, 1: 5xx request, 2: 200 request, 3: slow 200 request.
            kind: u8,
        }

        fn step() -> impl Strategy<Value = Step> {
            (
                0u64..5000,
                // from the future (clamped to now), within two hours (the minute windows and the
                // 1 h / 2 h hour rings), or up to five days (beyond the minute ring)
                prop_oneof![-900i64..0, 0i64..7_200, 0i64..5 * 86_400],
                0u8..4,
            )
                .prop_map(|(advance, age, kind)| Step { advance, age, kind })
        }

        #[derive(Debug, Clone)]
        struct Case {
            window_minutes: u64,
            slo: bool,
            steps: Vec<Step>,
            /// Gaps between the queries that follow the first one, at the last event's `now`.
            later: Vec<u64>,
        }

        fn case() -> impl Strategy<Value = Case> {
            (
                prop::sample::select(WINDOW_MINUTES.to_vec()),
                any::<bool>(),
                prop::collection::vec(step(), 1..120),
                // no gap, within the minute windows, within the hour, or days
                prop::collection::vec(
                    prop_oneof![Just(0u64), 0u64..120, 0u64..3_600, 0u64..2 * 86_400],
                    1..4,
                ),
            )
                .prop_map(|(window_minutes, slo, steps, later)| Case {
                    window_minutes,
                    slo,
                    steps,
                    later,
                })
        }

        /// One event: when it was received and stamped, and where the model keeps it.
        struct Recorded {
            now: u64,
            ts: u64,
            kind: u8,
            /// The time it counts at (`ts` clamped to `now`).
            t: u64,
            counts: Counts,
            in_min: bool,
            in_hour: bool,
        }

        /// What the plain event list says.
        struct Expected {
            events: Vec<Recorded>,
            /// The clock after the last step (snapshot and restore happen here).
            now: u64,
            errors_total: u64,
            too_old: u64,
            /// `now`, then `now` plus each running sum of `later`.
            queries: Vec<u64>,
        }

        impl Case {
            /// Hour-ring length; 0 when the window is read from the minute ring.
            fn hours(&self) -> u64 {
                if self.window_minutes >= 60 {
                    self.window_minutes / 60
                } else {
                    0
                }
            }

            fn expected(&self) -> Expected {
                let hours = self.hours();
                let mut events = Vec::with_capacity(self.steps.len());
                let (mut now, mut errors_total, mut too_old) = (7 * 86_400u64, 0u64, 0u64);
                for st in &self.steps {
                    now += st.advance;
                    let ts = now.saturating_add_signed(-st.age);
                    let counts = match st.kind {
                        0 => Counts {
                            errors: 1,
                            total: 0,
                            bad: 0,
                        },
                        k => {
                            let (code, d) = REQUESTS[usize::from(k) - 1];
                            Counts {
                                errors: u64::from(code >= 500),
                                total: 1,
                                bad: u64::from(self.slo && (code >= 500 || d > 1.0)),
                            }
                        }
                    };
                    errors_total += counts.errors;
                    let t = ts.min(now);
                    let in_min = (T0 + now) / 60 - (T0 + t) / 60 < u64::from(MINUTE_SLOTS);
                    let in_hour = (T0 + now) / 3600 - (T0 + t) / 3600 < hours;
                    if !in_min && !in_hour {
                        too_old += 1;
                    }
                    events.push(Recorded {
                        now,
                        ts,
                        kind: st.kind,
                        t,
                        counts,
                        in_min,
                        in_hour,
                    });
                }
                let mut queries = vec![now];
                let mut q = now;
                for l in &self.later {
                    q += l;
                    queries.push(q);
                }
                Expected {
                    events,
                    now,
                    errors_total,
                    too_old,
                    queries,
                }
            }
        }

        impl Expected {
            /// Budget-window and burn-window counts at `q`.
            fn windows_at(&self, case: &Case, q: u64) -> (Counts, [Counts; 7]) {
                let hours = case.hours();
                let (qm, qh) = ((T0 + q) / 60, (T0 + q) / 3600);
                let mut window = Counts::default();
                let mut burns = [Counts::default(); 7];
                for e in &self.events {
                    let (m, h) = ((T0 + e.t) / 60, (T0 + e.t) / 3600);
                    let in_window = if hours == 0 {
                        e.in_min && qm - m < case.window_minutes
                    } else {
                        e.in_hour && qh - h < hours
                    };
                    if in_window {
                        window += e.counts;
                    }
                    for (bw, (_, mins)) in burns.iter_mut().zip(BURN_WINDOWS) {
                        if e.in_min && qm - m < u64::from(mins) {
                            *bw += e.counts;
                        }
                    }
                }
                (window, burns)
            }

            /// Budget-window counts at `now` after a restore under a window of `hours` hours
            /// (at least the case's): per hour, the larger of what the case's hour ring kept and
            /// what the minute ring kept, field by field.
            fn regrown_window(&self, case: &Case, hours: u64) -> Counts {
                let (nm, nh) = ((T0 + self.now) / 60, (T0 + self.now) / 3600);
                let mut per_hour: BTreeMap<u64, (Counts, Counts)> = BTreeMap::new();
                for e in &self.events {
                    let (m, h) = ((T0 + e.t) / 60, (T0 + e.t) / 3600);
                    if nh - h >= hours {
                        continue;
                    }
                    let (in_hours, in_minutes) = per_hour.entry(h).or_default();
                    if e.in_hour && nh - h < case.hours() {
                        *in_hours += e.counts;
                    }
                    if e.in_min && nm - m < u64::from(MINUTE_SLOTS) {
                        *in_minutes += e.counts;
                    }
                }
                let mut acc = Counts::default();
                for (a, b) in per_hour.into_values() {
                    acc += a.max(b);
                }
                acc
            }
        }

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(256))]
            #[test]
            fn rings_match_a_plain_event_list(c in case()) {
                let mut cfg = Config { window_seconds: c.window_minutes * 60, ..Config::default() };
                if c.slo {
                    cfg.slos.insert("s".into(), SloConfig {
                        objective: 0.5,
                        bad_status_codes: default_bad_status_codes(),
                        latency_threshold_seconds: Some(1.0),
                    });
                }
                let env = if c.slo { "" } else { "s=10" };
                let exp = c.expected();
                let mut b = budgets(&cfg, env);
                for e in &exp.events {
                    match e.kind {
                        0 => {
                            let mut ev = err("s");
                            ev.timestamp = Some(at(e.ts));
                            b.record_error(&ev, at(e.now));
                        }
                        k => {
                            let (code, d) = REQUESTS[usize::from(k) - 1];
                            let mut r = req("s", code, d);
                            r.timestamp = Some(at(e.ts));
                            b.record_request(&r, at(e.now));
                        }
                    }
                }
                let snap = b.snapshot(at(exp.now));
                let mut restored = budgets(&cfg, env);
                restored.restore(&snap, at(exp.now));
                prop_assert_eq!(b.dropped_too_old, exp.too_old);
                // restarted with a 30-day window: whatever the snapshot's window was
                let grown_cfg = Config { window_seconds: 30 * 86_400, ..cfg.clone() };
                let mut grown = budgets(&grown_cfg, env);
                grown.restore(&snap, at(exp.now));
                let svc = &grown.services[grown.index["s"]];
                prop_assert_eq!(
                    grown.budget_window_counts(svc, T0 + exp.now),
                    exp.regrown_window(&c, 720)
                );
                for &q in &exp.queries {
                    let (window, burns) = exp.windows_at(&c, q);
                    for x in [&b, &restored] {
                        let svc = &x.services[x.index["s"]];
                        prop_assert_eq!(x.budget_window_counts(svc, T0 + q), window);
                        prop_assert_eq!(svc.burn_counts(((T0 + q) / 60) as u32), burns);
                        prop_assert_eq!(svc.errors_total, exp.errors_total);
                    }
                }
            }
        }

        /// The generator above really exercises the budget windows: over 4000 deterministic
        /// draws, for every window length, a floor on the share of cases whose budget window is
        /// non-empty at `q = now`, non-empty at a later query (`q > now`), and loses events
        /// between two queries (the window rolls). Run with `--nocapture` to see the shares.
        #[test]
        fn generated_cases_fill_the_budget_windows() {
            let mut runner = TestRunner::deterministic();
            let strategy = case();
            // per window length: cases, non-empty at now, non-empty later, rolls
            let mut tally: BTreeMap<u64, [u32; 4]> = BTreeMap::new();
            for _ in 0..4000 {
                let c = strategy.new_tree(&mut runner).expect("draws").current();
                let exp = c.expected();
                let windows: Vec<(u64, Counts)> = exp
                    .queries
                    .iter()
                    .map(|&q| (q, exp.windows_at(&c, q).0))
                    .collect();
                let t = tally.entry(c.window_minutes).or_default();
                t[0] += 1;
                t[1] += u32::from(!windows[0].1.is_zero());
                t[2] += u32::from(windows.iter().any(|(q, w)| *q > exp.now && !w.is_zero()));
                t[3] += u32::from(windows.windows(2).any(|p| p[1].1 != p[0].1));
            }
            assert_eq!(tally.keys().copied().collect::<Vec<_>>(), WINDOW_MINUTES);
            for (w, [n, at_now, later, rolls]) in &tally {
                let pct = |k: &u32| f64::from(*k) * 100.0 / f64::from(*n);
                eprintln!(
                    "window {w} min: {n} cases; non-empty at now {:.1} %, later {:.1} %; rolls {:.1} %",
                    pct(at_now),
                    pct(later),
                    pct(rolls)
                );
                assert!(
                    at_now * 100 >= n * 30,
                    "window {w} min: non-empty at now in {at_now} of {n}"
                );
                if *w < 43_200 {
                    // events at most 5 days old and queries at most 6 days later never leave a
                    // 30-day window; thirty_day_window_rolls_over covers that one
                    assert!(
                        rolls * 100 >= n * 25,
                        "window {w} min: rolls in {rolls} of {n}"
                    );
                }
            }
        }
    }

    fn render(sink: &Sink) -> String {
        let mut out = String::new();
        for f in sink.families() {
            for s in f.samples() {
                out.push_str(f.name());
                if !s.labels.is_empty() {
                    out.push('{');
                    out.push_str(s.labels);
                    out.push('}');
                }
                out.push(' ');
                crate::collect::sink::write_value(&mut out, s.value);
                out.push('\n');
            }
        }
        out
    }
}
