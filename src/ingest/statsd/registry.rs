//! The store of metrics produced by StatsD lines (after [`super::mapping`]): counters, gauges,
//! histograms and summaries keyed by (metric name, rendered label set), with per-mapping TTL
//! expiry of idle series, a global series cap with an overflow counter, rejection of type
//! conflicts, and [`StatsdRegistry::encode`] into a [`Sink`].
//!
//! Semantics follow statsd_exporter's registry: a name keeps the type it was first seen with
//! (a later line of another type is refused and counted); the TTL stored on a series is the one
//! of the mapping that last updated it; counters keep the StatsD name (no `_total` is added).
//!
//! Summaries: client_golang computes quantiles over a sliding window of `max_age` split into
//! `age_buckets` rotating sub-windows. Here each sub-window keeps a bounded sample of its
//! observations (at most `buf_cap / age_buckets`, at least 16; a weighted reservoir once full),
//! and a scrape merges the live sub-windows, weighting each kept value by how many observations
//! it stands for. Below the bound the quantiles are exact (the smallest value whose cumulative
//! weight reaches `q` of the total); above it they are unbiased estimates. `_sum` and `_count`
//! are cumulative, as in Prometheus clients.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use serde::Deserialize;

use super::mapping::{
    MapCache, Mapped, Mapper, MetricOptions, MetricRef, Observer, Scratch, SummaryParams,
};
use super::parse::{Kind, LineError, Sample, parse_line_limited, split_packet};
use crate::collect::sink::{MetricType, Sink, Suffix, ValueBuf};
use crate::config::Issue;
use crate::services::event::Event;

/// `ingest.statsd.registry` options.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RegistryConfig {
    /// Most series kept at once across all StatsD metrics; lines that would create more are
    /// dropped and counted in `sonde_statsd_series_overflow_total`.
    pub max_series: usize,
    /// Metric names StatsD lines may not create (prefixes), so a client cannot write into
    /// sonde's own families or the service-telemetry ones (use `event:` mappings for those).
    pub reserved_prefixes: Vec<String>,
}

impl Default for RegistryConfig {
    fn default() -> Self {
        Self {
            max_series: default_max_series(),
            reserved_prefixes: default_reserved_prefixes(),
        }
    }
}

fn default_max_series() -> usize {
    100_000
}

fn default_reserved_prefixes() -> Vec<String> {
    [
        "sonde_",
        "node_",
        "service_",
        "circuit_breaker_",
        "api_request_duration_seconds",
        "deprecated_function_calls_total",
    ]
    .map(String::from)
    .to_vec()
}

impl RegistryConfig {
    /// Validates the options, pushing issues keyed under `key`.
    pub fn check(&self, key: &str, issues: &mut Vec<Issue>) {
        if self.max_series == 0 {
            issues.push(Issue::new(
                format!("{key}.max_series"),
                "must be at least 1",
            ));
        }
        for (i, p) in self.reserved_prefixes.iter().enumerate() {
            if p.is_empty() {
                issues.push(Issue::new(
                    format!("{key}.reserved_prefixes[{i}]"),
                    "must not be empty (it would reserve every name)",
                ));
            }
        }
    }
}

/// Why a sample was not recorded (`sonde_statsd_samples_total{result}`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum RecordError {
    /// The name already exists with another type (or collides with a histogram/summary's
    /// `_bucket`, `_sum`, `_count` series).
    #[error("metric exists with another type")]
    TypeConflict,
    /// Creating the series would exceed `max_series`.
    #[error("series limit reached")]
    SeriesLimit,
    /// A counter increment that is negative after `scale`.
    #[error("negative counter increment")]
    NegativeCounter,
    /// A value that is not finite after `scale`.
    #[error("value is not finite")]
    InvalidValue,
    /// The name starts with one of `reserved_prefixes`.
    #[error("metric name is reserved")]
    ReservedName,
}

impl RecordError {
    /// The stable `result` label value.
    pub fn reason(&self) -> &'static str {
        match self {
            Self::TypeConflict => "type_conflict",
            Self::SeriesLimit => "series_limit",
            Self::NegativeCounter => "negative_counter",
            Self::InvalidValue => "invalid_value",
            Self::ReservedName => "reserved_name",
        }
    }
}

/// Counts kept by the registry, for its own telemetry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct RegistryStats {
    /// Series currently held.
    pub series: usize,
    /// Families currently held.
    pub families: usize,
    /// Samples dropped because the series cap was reached.
    pub overflow_total: u64,
    /// Samples refused because of a type conflict.
    pub conflicts_total: u64,
    /// Series removed by TTL expiry.
    pub expired_total: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum FamilyKind {
    Counter,
    Gauge,
    Histogram,
    Summary,
}

impl FamilyKind {
    fn metric_type(self) -> MetricType {
        match self {
            Self::Counter => MetricType::Counter,
            Self::Gauge => MetricType::Gauge,
            Self::Histogram => MetricType::Histogram,
            Self::Summary => MetricType::Summary,
        }
    }

    fn has_suffixes(self) -> bool {
        matches!(self, Self::Histogram | Self::Summary)
    }
}

#[derive(Debug)]
struct Family {
    kind: FamilyKind,
    help: Box<str>,
    series: HashMap<Box<str>, Series>,
}

#[derive(Debug)]
struct Series {
    last_update: SystemTime,
    ttl: Option<Duration>,
    value: Value,
}

#[derive(Debug)]
enum Value {
    Scalar(f64),
    Histogram(Histogram),
    Summary(Box<Summary>),
}

#[derive(Debug)]
struct Histogram {
    bounds: Arc<[f64]>,
    /// Non-cumulative counts per bound, plus one for `+Inf`.
    counts: Box<[u64]>,
    sum: f64,
    count: u64,
}

impl Histogram {
    fn new(bounds: Arc<[f64]>) -> Self {
        let counts = vec![0; bounds.len() + 1].into_boxed_slice();
        Self {
            bounds,
            counts,
            sum: 0.0,
            count: 0,
        }
    }

    fn observe(&mut self, v: f64, n: u64) {
        let i = self.bounds.partition_point(|&le| le < v);
        self.counts[i] = self.counts[i].saturating_add(n);
        self.sum += v * n as f64;
        self.count = self.count.saturating_add(n);
    }
}

/// One rotating sub-window of a summary.
#[derive(Debug, Default)]
struct Window {
    /// Which sub-window period this holds (`since_epoch / width`).
    epoch: u64,
    /// Kept (value, weight) pairs.
    items: Vec<(f64, f64)>,
    /// Total weight observed in this period.
    total: f64,
    /// True once the reservoir dropped observations (weights become `total / len`).
    sampled: bool,
}

#[derive(Debug)]
struct Summary {
    params: SummaryParams,
    width_nanos: u64,
    cap: usize,
    windows: Box<[Window]>,
    rng: u64,
    sum: f64,
    count: u64,
}

impl Summary {
    fn new(params: SummaryParams, seed: u64) -> Self {
        let n = params.age_buckets.max(1) as usize;
        let width_nanos = (params.max_age.as_nanos() / n as u128).max(1_000_000) as u64;
        let cap = (params.buf_cap as usize / n).max(16);
        Self {
            windows: (0..n).map(|_| Window::default()).collect(),
            params,
            width_nanos,
            cap,
            // xorshift must not start at 0.
            rng: seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1,
            sum: 0.0,
            count: 0,
        }
    }

    fn epoch(&self, now: SystemTime) -> u64 {
        let nanos = now
            .duration_since(SystemTime::UNIX_EPOCH)
            .unwrap_or_default()
            .as_nanos();
        (nanos / self.width_nanos as u128) as u64
    }

    fn next_random(&mut self) -> u64 {
        let mut x = self.rng;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.rng = x;
        x
    }

    fn observe(&mut self, v: f64, n: u64, now: SystemTime) {
        self.sum += v * n as f64;
        self.count = self.count.saturating_add(n);
        let epoch = self.epoch(now);
        let slot = (epoch % self.windows.len() as u64) as usize;
        let cap = self.cap;
        let r = self.next_random();
        let w = &mut self.windows[slot];
        if w.epoch != epoch {
            w.epoch = epoch;
            w.items.clear();
            w.total = 0.0;
            w.sampled = false;
        }
        let weight = n as f64;
        w.total += weight;
        if w.items.len() < cap {
            w.items.push((v, weight));
            return;
        }
        // Weighted reservoir (Chao): keep the new value with probability cap * weight / total.
        w.sampled = true;
        let p = (cap as f64 * weight / w.total).min(1.0);
        let u = (r >> 11) as f64 / (1u64 << 53) as f64;
        if u < p {
            let j = (self.next_random() % cap as u64) as usize;
            self.windows[slot].items[j] = (v, weight);
        }
    }

    /// Quantile values over the live sub-windows (NaN when there are none).
    fn quantiles(&self, now: SystemTime, out: &mut Vec<(f64, f64)>, scratch: &mut Vec<(f64, f64)>) {
        out.clear();
        scratch.clear();
        let current = self.epoch(now);
        let n = self.windows.len() as u64;
        for w in self.windows.iter() {
            let live = w.epoch <= current && current - w.epoch < n && !w.items.is_empty();
            if !live {
                continue;
            }
            if w.sampled {
                let each = w.total / w.items.len() as f64;
                scratch.extend(w.items.iter().map(|&(v, _)| (v, each)));
            } else {
                scratch.extend_from_slice(&w.items);
            }
        }
        scratch.sort_by(|a, b| a.0.total_cmp(&b.0));
        let total: f64 = scratch.iter().map(|x| x.1).sum();
        for &q in self.params.quantiles.iter() {
            if scratch.is_empty() {
                out.push((q, f64::NAN));
                continue;
            }
            let target = q * total;
            let mut acc = 0.0;
            let mut value = scratch[scratch.len() - 1].0;
            for &(v, w) in scratch.iter() {
                acc += w;
                if acc >= target {
                    value = v;
                    break;
                }
            }
            out.push((q, value));
        }
    }
}

/// The StatsD metric store. Not internally synchronised: the listener owns it (or wraps it in
/// a mutex shared with the scrape path).
#[derive(Debug)]
pub struct StatsdRegistry {
    families: HashMap<Box<str>, Family>,
    series: usize,
    max_series: usize,
    reserved_prefixes: Box<[Box<str>]>,
    overflow_total: u64,
    conflicts_total: u64,
    expired_total: u64,
    seeds: u64,
}

fn family_kind(kind: Kind, options: &MetricOptions) -> FamilyKind {
    match kind {
        Kind::Counter => FamilyKind::Counter,
        Kind::Gauge => FamilyKind::Gauge,
        _ => match options.observer {
            Observer::Histogram { .. } => FamilyKind::Histogram,
            Observer::Summary(_) => FamilyKind::Summary,
        },
    }
}

impl StatsdRegistry {
    /// An empty registry.
    pub fn new(cfg: &RegistryConfig) -> Self {
        Self {
            families: HashMap::new(),
            series: 0,
            max_series: cfg.max_series,
            reserved_prefixes: cfg
                .reserved_prefixes
                .iter()
                .filter(|p| !p.is_empty())
                .map(|p| Box::from(p.as_str()))
                .collect(),
            overflow_total: 0,
            conflicts_total: 0,
            expired_total: 0,
            seeds: 0,
        }
    }

    /// The registry's counts.
    pub fn stats(&self) -> RegistryStats {
        RegistryStats {
            series: self.series,
            families: self.families.len(),
            overflow_total: self.overflow_total,
            conflicts_total: self.conflicts_total,
            expired_total: self.expired_total,
        }
    }

    /// True when creating family `name` of `kind` would collide with the exposition of an
    /// existing family (`x_sum` of summary `x` and a counter `x_sum`, either way round).
    fn collides(&self, name: &str, kind: FamilyKind) -> bool {
        for suffix in ["_bucket", "_sum", "_count"] {
            if let Some(base) = name.strip_suffix(suffix)
                && self
                    .families
                    .get(base)
                    .is_some_and(|f| f.kind.has_suffixes())
            {
                return true;
            }
        }
        if kind.has_suffixes() {
            let mut probe = String::with_capacity(name.len() + 7);
            for suffix in ["_bucket", "_sum", "_count"] {
                probe.clear();
                probe.push_str(name);
                probe.push_str(suffix);
                if self.families.contains_key(probe.as_str()) {
                    return true;
                }
            }
        }
        false
    }

    /// Records one sample for the metric `m` resolved by the mapper.
    pub fn record(
        &mut self,
        m: &MetricRef<'_>,
        sample: &Sample,
        now: SystemTime,
    ) -> Result<(), RecordError> {
        let options = m.options;
        let kind = family_kind(sample.kind, options);
        let scale = options.scale.unwrap_or(1.0);
        // Validate the value before touching any state.
        let value = match sample.kind {
            Kind::Counter => sample.counter_increment() * scale,
            Kind::Gauge => sample.value * scale,
            _ => sample.observed_value() * scale,
        };
        if !value.is_finite() {
            return Err(RecordError::InvalidValue);
        }
        if kind == FamilyKind::Counter && value < 0.0 {
            return Err(RecordError::NegativeCounter);
        }
        let n = sample.observation_count();
        let set = sample.kind == Kind::Gauge && !sample.relative;
        // Fast path: the series exists (one lookup per map, no allocation).
        if let Some(f) = self.families.get_mut(m.name) {
            if f.kind != kind {
                self.conflicts_total += 1;
                return Err(RecordError::TypeConflict);
            }
            if let Some(series) = f.series.get_mut(m.labels) {
                if expired(series, now) {
                    // Idle past its TTL but not removed yet: it starts again from zero, as if
                    // expire() had run.
                    self.seeds += 1;
                    series.value = new_value(kind, options, self.seeds);
                }
                series.last_update = now;
                series.ttl = options.ttl;
                series.value.apply(value, set, n, now);
                return Ok(());
            }
        } else if self
            .reserved_prefixes
            .iter()
            .any(|p| m.name.starts_with(&**p))
        {
            return Err(RecordError::ReservedName);
        } else if self.collides(m.name, kind) {
            self.conflicts_total += 1;
            return Err(RecordError::TypeConflict);
        }
        if self.series >= self.max_series {
            self.overflow_total += 1;
            return Err(RecordError::SeriesLimit);
        }
        self.seeds += 1;
        let mut series = Series {
            last_update: now,
            ttl: options.ttl,
            value: new_value(kind, options, self.seeds),
        };
        series.value.apply(value, set, n, now);
        self.families
            .entry(Box::from(m.name))
            .or_insert_with(|| Family {
                kind,
                help: options.help.clone(),
                series: HashMap::new(),
            })
            .series
            .insert(Box::from(m.labels), series);
        self.series += 1;
        Ok(())
    }

    /// Removes series idle for at least their TTL; returns how many were removed.
    pub fn expire(&mut self, now: SystemTime) -> usize {
        let mut removed = 0;
        for f in self.families.values_mut() {
            let before = f.series.len();
            f.series.retain(|_, s| !expired(s, now));
            removed += before - f.series.len();
        }
        self.families.retain(|_, f| !f.series.is_empty());
        self.series -= removed;
        self.expired_total += removed as u64;
        removed
    }

    /// Writes every live series (expired ones are skipped even before [`Self::expire`] runs),
    /// families and series in name order.
    pub fn encode(&self, now: SystemTime, sink: &mut Sink) {
        let mut names: Vec<&str> = self.families.keys().map(|k| &**k).collect();
        names.sort_unstable();
        let mut labels_buf = String::new();
        let mut quantiles = Vec::new();
        let mut scratch = Vec::new();
        let mut vb = ValueBuf::default();
        let mut order: Vec<(&str, &Series)> = Vec::new();
        for name in names {
            let Some(f) = self.families.get(name) else {
                continue;
            };
            order.clear();
            order.extend(
                f.series
                    .iter()
                    .filter(|(_, s)| !expired(s, now))
                    .map(|(k, s)| (&**k, s)),
            );
            if order.is_empty() {
                continue;
            }
            order.sort_unstable_by(|a, b| a.0.cmp(b.0));
            let mut w = sink.family(name, &f.help, f.kind.metric_type());
            for &(labels, s) in order.iter() {
                match &s.value {
                    Value::Scalar(v) => {
                        w.raw_sample(Suffix::None, labels, *v);
                    }
                    Value::Histogram(h) => {
                        let mut cumulative = 0;
                        for (i, n) in h.counts.iter().enumerate() {
                            cumulative += n;
                            let le = h.bounds.get(i).copied().unwrap_or(f64::INFINITY);
                            with_extra(&mut labels_buf, labels, "le", vb.format(le));
                            w.raw_sample(Suffix::Bucket, &labels_buf, cumulative as f64);
                        }
                        w.raw_sample(Suffix::Sum, labels, h.sum);
                        w.raw_sample(Suffix::Count, labels, h.count as f64);
                    }
                    Value::Summary(sm) => {
                        sm.quantiles(now, &mut quantiles, &mut scratch);
                        for &(q, v) in quantiles.iter() {
                            with_extra(&mut labels_buf, labels, "quantile", vb.format(q));
                            w.raw_sample(Suffix::None, &labels_buf, v);
                        }
                        w.raw_sample(Suffix::Sum, labels, sm.sum);
                        w.raw_sample(Suffix::Count, labels, sm.count as f64);
                    }
                }
            }
        }
    }

    /// Writes the registry's own telemetry: `sonde_statsd_series`,
    /// `sonde_statsd_series_overflow_total`, `sonde_statsd_type_conflicts_total`,
    /// `sonde_statsd_series_expired_total`.
    pub fn encode_meta(&self, sink: &mut Sink) {
        let s = self.stats();
        sink.gauge(
            "sonde_statsd_series",
            "Series currently held for StatsD metrics.",
            s.series as f64,
        );
        sink.counter(
            "sonde_statsd_series_overflow_total",
            "StatsD samples dropped because the series limit was reached.",
            s.overflow_total as f64,
        );
        sink.counter(
            "sonde_statsd_type_conflicts_total",
            "StatsD samples refused because their metric exists with another type.",
            s.conflicts_total as f64,
        );
        sink.counter(
            "sonde_statsd_series_expired_total",
            "StatsD series removed after their TTL without updates.",
            s.expired_total as f64,
        );
    }
}

fn new_value(kind: FamilyKind, options: &MetricOptions, seed: u64) -> Value {
    match (kind, &options.observer) {
        (FamilyKind::Histogram, Observer::Histogram { buckets }) => {
            Value::Histogram(Histogram::new(buckets.clone()))
        }
        (FamilyKind::Summary, Observer::Summary(p)) => {
            Value::Summary(Box::new(Summary::new(p.clone(), seed)))
        }
        _ => Value::Scalar(0.0),
    }
}

impl Value {
    /// Adds (or for an absolute gauge, sets) `v`; observers record it `n` times.
    fn apply(&mut self, v: f64, set: bool, n: u64, now: SystemTime) {
        match self {
            Value::Scalar(x) if set => *x = v,
            Value::Scalar(x) => *x += v,
            Value::Histogram(h) => h.observe(v, n),
            Value::Summary(s) => s.observe(v, n, now),
        }
    }
}

fn expired(s: &Series, now: SystemTime) -> bool {
    s.ttl.is_some_and(|ttl| {
        now.duration_since(s.last_update)
            .is_ok_and(|idle| idle >= ttl)
    })
}

/// `labels` plus `,key="value"` (value already formatted, needs no escaping) into `buf`.
fn with_extra(buf: &mut String, labels: &str, key: &str, value: &str) {
    buf.clear();
    buf.push_str(labels);
    if !labels.is_empty() {
        buf.push(',');
    }
    buf.push_str(key);
    buf.push_str("=\"");
    buf.push_str(value);
    buf.push('"');
}

/// The per-result counters of the StatsD ingest path, kept by whoever runs
/// [`ingest_packet`] (one per listener worker; sum them, or share one behind the registry's
/// lock).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct IngestStats {
    /// Lines parsed (index 0) or refused, by [`LineError::ALL`] position + 1.
    lines: [u64; LineError::ALL.len() + 1],
    /// Samples by outcome: see [`SAMPLE_RESULTS`].
    samples: [u64; SAMPLE_RESULTS.len()],
    /// Malformed tags dropped by the parser.
    pub tag_errors_total: u64,
    /// Tags dropped by the label limits.
    pub tags_dropped_total: u64,
    /// Samples that matched no mapping (recorded under their sanitised name).
    pub unmapped_total: u64,
}

/// `result` values of `sonde_statsd_samples_total`, in [`IngestStats`] order.
pub const SAMPLE_RESULTS: [&str; 13] = [
    "metric",
    "event",
    "dropped",
    "empty_metric_name",
    "event_type_mismatch",
    "missing_event_label",
    "invalid_event_label",
    "invalid_duration",
    "type_conflict",
    "series_limit",
    "negative_counter",
    "invalid_value",
    "reserved_name",
];

impl IngestStats {
    fn sample(&mut self, result: &str) {
        if let Some(i) = SAMPLE_RESULTS.iter().position(|r| *r == result) {
            self.samples[i] += 1;
        }
    }

    /// Lines counted with `result` (`ok` or a [`LineError::reason`]).
    pub fn lines(&self, result: &str) -> u64 {
        if result == "ok" {
            return self.lines[0];
        }
        LineError::ALL
            .iter()
            .position(|e| e.reason() == result)
            .map_or(0, |i| self.lines[i + 1])
    }

    /// Samples counted with `result` (one of [`SAMPLE_RESULTS`]).
    pub fn samples(&self, result: &str) -> u64 {
        SAMPLE_RESULTS
            .iter()
            .position(|r| *r == result)
            .map_or(0, |i| self.samples[i])
    }

    /// Adds `other`'s counts (to sum per-worker stats at scrape time).
    pub fn merge(&mut self, other: &IngestStats) {
        for (a, b) in self.lines.iter_mut().zip(other.lines.iter()) {
            *a += b;
        }
        for (a, b) in self.samples.iter_mut().zip(other.samples.iter()) {
            *a += b;
        }
        self.tag_errors_total += other.tag_errors_total;
        self.tags_dropped_total += other.tags_dropped_total;
        self.unmapped_total += other.unmapped_total;
    }

    /// Writes `sonde_statsd_lines_total{result}`, `sonde_statsd_samples_total{result}` (every
    /// result, zeros included, so rates work from the first scrape),
    /// `sonde_statsd_tag_errors_total`, `sonde_statsd_tags_dropped_total` and
    /// `sonde_statsd_unmapped_total`.
    pub fn encode(&self, sink: &mut Sink) {
        let mut w = sink.family(
            "sonde_statsd_lines_total",
            "StatsD lines received, by parse result.",
            MetricType::Counter,
        );
        w.sample(&[("result", "ok")], self.lines[0] as f64);
        for (i, e) in LineError::ALL.iter().enumerate() {
            w.sample(&[("result", e.reason())], self.lines[i + 1] as f64);
        }
        let mut w = sink.family(
            "sonde_statsd_samples_total",
            "StatsD samples (values of parsed lines), by what became of them.",
            MetricType::Counter,
        );
        for (i, r) in SAMPLE_RESULTS.iter().enumerate() {
            w.sample(&[("result", r)], self.samples[i] as f64);
        }
        sink.counter(
            "sonde_statsd_tag_errors_total",
            "Malformed StatsD tags dropped while parsing.",
            self.tag_errors_total as f64,
        );
        sink.counter(
            "sonde_statsd_tags_dropped_total",
            "StatsD tags dropped by the label value length or label count limits.",
            self.tags_dropped_total as f64,
        );
        sink.counter(
            "sonde_statsd_unmapped_total",
            "StatsD samples that matched no mapping and were recorded under their sanitised name.",
            self.unmapped_total as f64,
        );
    }
}

/// Runs one datagram through parse → map → registry, handing events to `on_event` (with how
/// many times each happened) and counting every outcome in `stats`. A bad line never stops the
/// rest of the packet.
#[allow(clippy::too_many_arguments)]
pub fn ingest_packet(
    packet: &[u8],
    max_line_bytes: usize,
    mapper: &Mapper,
    cache: &mut MapCache,
    scratch: &mut Scratch,
    registry: &mut StatsdRegistry,
    now: SystemTime,
    stats: &mut IngestStats,
    mut on_event: impl FnMut(Event, u64),
) {
    for raw in split_packet(packet) {
        let line = match parse_line_limited(raw, max_line_bytes) {
            Ok(l) => l,
            Err(e) => {
                if let Some(i) = LineError::ALL.iter().position(|x| *x == e) {
                    stats.lines[i + 1] += 1;
                }
                continue;
            }
        };
        stats.lines[0] += 1;
        stats.tag_errors_total += u64::from(line.tag_errors);
        for sample in line.samples() {
            match mapper.map(cache, scratch, &line, &sample) {
                Mapped::Dropped => stats.sample("dropped"),
                Mapped::Rejected(e) => stats.sample(e.reason()),
                Mapped::Event { event, count } => {
                    stats.sample("event");
                    on_event(event, count);
                }
                Mapped::Metric(m) => {
                    stats.tags_dropped_total += u64::from(m.dropped_tags);
                    if !m.matched {
                        stats.unmapped_total += 1;
                    }
                    match registry.record(&m, &sample, now) {
                        Ok(()) => stats.sample("metric"),
                        Err(e) => stats.sample(e.reason()),
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ingest::statsd::mapping::{MapperLimits, load};
    use crate::ingest::statsd::parse::{parse_line, split_packet};

    const MAPPING: &str = "\
defaults:
  ttl: 1m
mappings:
- match: api.*.latency
  name: api_latency_seconds
  observer_type: histogram
  histogram_options:
    buckets: [0.1, 0.5, 1]
  labels:
    service: $1
- match: job.*.duration
  name: job_duration_seconds
  observer_type: summary
  help: Job durations.
  summary_options:
    quantiles:
    - quantile: 0.5
    - quantile: 0.9
    - quantile: 0.99
    max_age: 60s
    age_buckets: 3
    buf_cap: 600
  labels:
    job: $1
- match: cache.*.hits
  name: cache_hits
  ttl: 10s
  help: Cache hits.
  labels:
    cache: $1
- match: forever.*
  name: forever
  ttl: 0s
";

    struct Harness {
        mapper: Mapper,
        cache: MapCache,
        scratch: Scratch,
        reg: StatsdRegistry,
    }

    fn t(secs: u64) -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000 + secs)
    }

    impl Harness {
        fn new(max_series: usize) -> Self {
            let mapper = load(MAPPING, MapperLimits::default()).expect("mapping loads");
            Self {
                cache: mapper.new_cache(),
                mapper,
                scratch: Scratch::default(),
                reg: StatsdRegistry::new(&RegistryConfig {
                    max_series,
                    ..RegistryConfig::default()
                }),
            }
        }

        /// Feeds a packet; returns each sample's result reason ("ok" when recorded).
        fn feed(&mut self, packet: &str, now: SystemTime) -> Vec<String> {
            let mut out = Vec::new();
            for line in split_packet(packet.as_bytes()) {
                let line = match parse_line(line) {
                    Ok(l) => l,
                    Err(e) => {
                        out.push(e.reason().to_string());
                        continue;
                    }
                };
                for s in line.samples() {
                    match self
                        .mapper
                        .map(&mut self.cache, &mut self.scratch, &line, &s)
                    {
                        Mapped::Metric(m) => out.push(match self.reg.record(&m, &s, now) {
                            Ok(()) => "ok".into(),
                            Err(e) => e.reason().into(),
                        }),
                        other => out.push(format!("{other:?}")),
                    }
                }
            }
            out
        }

        fn text(&self, now: SystemTime) -> String {
            let mut sink = Sink::new();
            self.reg.encode(now, &mut sink);
            render(&sink)
        }
    }

    fn render(sink: &Sink) -> String {
        let mut s = String::new();
        for f in sink.families() {
            s.push_str(&format!(
                "# HELP {} {}\n# TYPE {} {}\n",
                f.name(),
                f.help(),
                f.name(),
                f.kind().text_name()
            ));
            for x in f.samples() {
                let mut v = String::new();
                crate::collect::sink::write_value(&mut v, x.value);
                if x.labels.is_empty() {
                    s.push_str(&format!("{}{} {v}\n", f.name(), x.suffix.as_str()));
                } else {
                    s.push_str(&format!(
                        "{}{}{{{}}} {v}\n",
                        f.name(),
                        x.suffix.as_str(),
                        x.labels
                    ));
                }
            }
        }
        s
    }

    #[test]
    fn counters_and_gauges() {
        let mut h = Harness::new(100);
        let r = h.feed(
            "hits:3|c\nhits:1|c|@0.25\nhits:2|c|#path:/a\ntemp:20|g\ntemp:+5|g\ntemp:-2.5|g\nqueue.size:7|g|#q:x\nqueue.size:9|g|#q:x",
            t(0),
        );
        assert_eq!(r, vec!["ok"; 8]);
        assert_eq!(
            h.text(t(1)),
            "\
# HELP hits Metric autogenerated by sonde's StatsD ingest.
# TYPE hits counter
hits 7
hits{path=\"/a\"} 2
# HELP queue_size Metric autogenerated by sonde's StatsD ingest.
# TYPE queue_size gauge
queue_size{q=\"x\"} 9
# HELP temp Metric autogenerated by sonde's StatsD ingest.
# TYPE temp gauge
temp 22.5
"
        );
    }

    #[test]
    fn histograms_use_mapping_buckets_and_sample_rates() {
        let mut h = Harness::new(100);
        // 50ms, 300ms, 2s; the 300ms timer is sampled at 0.5 and counts twice.
        let r = h.feed(
            "api.users.latency:50|ms\napi.users.latency:300|ms|@0.5\napi.users.latency:2000|ms",
            t(0),
        );
        assert_eq!(r, vec!["ok"; 3]);
        assert_eq!(
            h.text(t(1)),
            "\
# HELP api_latency_seconds Metric autogenerated by sonde's StatsD ingest.
# TYPE api_latency_seconds histogram
api_latency_seconds_bucket{service=\"users\",le=\"0.1\"} 1
api_latency_seconds_bucket{service=\"users\",le=\"0.5\"} 3
api_latency_seconds_bucket{service=\"users\",le=\"1\"} 3
api_latency_seconds_bucket{service=\"users\",le=\"+Inf\"} 4
api_latency_seconds_sum{service=\"users\"} 2.65
api_latency_seconds_count{service=\"users\"} 4
"
        );
    }

    #[test]
    fn summaries_are_exact_below_the_bound_and_slide() {
        let mut h = Harness::new(100);
        // 1..=100 ms, as seconds; 3 sub-windows of 20s; cap per window 200.
        let packet: String = (1..=100)
            .map(|i| format!("job.etl.duration:{i}|ms\n"))
            .collect();
        assert_eq!(h.feed(&packet, t(0)), vec!["ok"; 100]);
        assert_eq!(
            h.text(t(1)),
            "\
# HELP job_duration_seconds Job durations.
# TYPE job_duration_seconds summary
job_duration_seconds{job=\"etl\",quantile=\"0.5\"} 0.05
job_duration_seconds{job=\"etl\",quantile=\"0.9\"} 0.09
job_duration_seconds{job=\"etl\",quantile=\"0.99\"} 0.099
job_duration_seconds_sum{job=\"etl\"} 5.050000000000001
job_duration_seconds_count{job=\"etl\"} 100
"
        );
        // 30s later, 100 observations of 1s land in another sub-window: both are live.
        let packet: String = (0..100).map(|_| "job.etl.duration:1000|ms\n").collect();
        h.feed(&packet, t(30));
        let text = h.text(t(31));
        assert!(
            text.contains("job_duration_seconds{job=\"etl\",quantile=\"0.5\"} 0.1\n"),
            "{text}"
        );
        assert!(
            text.contains("job_duration_seconds{job=\"etl\",quantile=\"0.9\"} 1\n"),
            "{text}"
        );
        // After max_age the first batch has left the window; _sum/_count stay cumulative.
        let text = h.text(t(65));
        assert!(
            text.contains("job_duration_seconds{job=\"etl\",quantile=\"0.5\"} 1\n"),
            "{text}"
        );
        assert!(
            text.contains("job_duration_seconds_sum{job=\"etl\"} 105.05\n"),
            "{text}"
        );
        assert!(
            text.contains("job_duration_seconds_count{job=\"etl\"} 200\n"),
            "{text}"
        );
        // Nothing live (but the series is not idle for its 1m TTL yet): quantiles are NaN, like
        // Prometheus clients.
        let text = h.text(t(89));
        assert!(
            text.contains("job_duration_seconds{job=\"etl\",quantile=\"0.5\"} NaN\n"),
            "{text}"
        );
    }

    #[test]
    fn summary_memory_is_bounded_and_estimates_stay_close() {
        let mut h = Harness::new(100);
        // 20,000 observations uniformly 0..=999 ms in one sub-window (cap 200).
        let mut packet = String::new();
        for i in 0..20_000u32 {
            packet.push_str(&format!("job.big.duration:{}|ms\n", (i * 7919) % 1000));
        }
        h.feed(&packet, t(0));
        let fam = h.reg.families.get("job_duration_seconds").expect("family");
        let series = fam.series.values().next().expect("series");
        let Value::Summary(sm) = &series.value else {
            panic!("not a summary")
        };
        let kept: usize = sm.windows.iter().map(|w| w.items.len()).sum();
        assert_eq!(kept, 200);
        let mut q = Vec::new();
        sm.quantiles(t(1), &mut q, &mut Vec::new());
        // Median of uniform 0..1s, estimated from 200 kept values: within 0.1.
        assert!((q[0].1 - 0.5).abs() < 0.1, "median {}", q[0].1);
        assert!((q[1].1 - 0.9).abs() < 0.07, "p90 {}", q[1].1);
        assert_eq!(sm.count, 20_000);
    }

    #[test]
    fn type_conflicts_are_refused_and_counted() {
        let mut h = Harness::new(100);
        let r = h.feed("x:1|c\nx:2|g\nx:3|ms\nx:4|c", t(0));
        assert_eq!(r, vec!["ok", "type_conflict", "type_conflict", "ok"]);
        // A counter named like a summary's _sum series collides too, both ways round.
        let r = h.feed("y:1|ms\ny_sum:1|c\nz_count:1|c\nz:1|ms", t(0));
        assert_eq!(r, vec!["ok", "type_conflict", "ok", "type_conflict"]);
        assert_eq!(h.reg.stats().conflicts_total, 4);
        assert!(h.text(t(0)).contains("# TYPE x counter\nx 5\n"));
    }

    #[test]
    fn reserved_names_are_refused() {
        let mut h = Harness::new(100);
        let r = h.feed(
            "sonde_statsd_lines_total:1|c\nnode.load1:5|g\nservice_errors_total:1|c\nservices:1|c",
            t(0),
        );
        assert_eq!(
            r,
            vec!["reserved_name", "reserved_name", "reserved_name", "ok"]
        );
        let mut issues = Vec::new();
        RegistryConfig {
            max_series: 0,
            reserved_prefixes: vec!["ok_".into(), String::new()],
        }
        .check("ingest.statsd.registry", &mut issues);
        assert_eq!(
            issues,
            vec![
                Issue::new("ingest.statsd.registry.max_series", "must be at least 1"),
                Issue::new(
                    "ingest.statsd.registry.reserved_prefixes[1]",
                    "must not be empty (it would reserve every name)"
                ),
            ]
        );
    }

    #[test]
    fn series_cap_drops_and_counts_new_series_only() {
        let mut h = Harness::new(3);
        let r = h.feed(
            "a:1|c|#k:1\na:1|c|#k:2\na:1|c|#k:3\na:1|c|#k:4\na:1|c|#k:1\nb:1|g",
            t(0),
        );
        assert_eq!(
            r,
            vec!["ok", "ok", "ok", "series_limit", "ok", "series_limit"]
        );
        assert_eq!(
            h.reg.stats(),
            RegistryStats {
                series: 3,
                families: 1,
                overflow_total: 2,
                conflicts_total: 0,
                expired_total: 0,
            }
        );
        let mut sink = Sink::new();
        h.reg.encode_meta(&mut sink);
        let text = render(&sink);
        assert!(text.contains("sonde_statsd_series 3\n"), "{text}");
        assert!(
            text.contains("sonde_statsd_series_overflow_total 2\n"),
            "{text}"
        );
    }

    #[test]
    fn ttl_expiry_per_mapping() {
        let mut h = Harness::new(100);
        // cache: 10s; unmatched: defaults 1m; `ttl: 0s` inherits the defaults' 1m, as in
        // statsd_exporter.
        h.feed("cache.users.hits:1|c\nother:1|c\nforever.x:1|g", t(0));
        h.feed("cache.orders.hits:1|c", t(8));
        // At 10s cache.users is idle for its TTL: hidden from encode even before expire().
        let text = h.text(t(10));
        assert!(!text.contains("cache=\"users\""), "{text}");
        assert!(text.contains("cache_hits{cache=\"orders\"} 1\n"), "{text}");
        assert_eq!(h.reg.expire(t(10)), 1);
        assert_eq!(h.reg.stats().series, 3);
        // An update refreshes the idle clock.
        h.feed("other:1|c", t(50));
        assert_eq!(h.reg.expire(t(59)), 1); // cache.orders, idle 51s
        assert_eq!(h.reg.expire(t(60)), 1); // forever.x, idle 60s
        assert_eq!(h.reg.expire(t(109)), 0);
        assert_eq!(
            h.text(t(109)),
            "# HELP other Metric autogenerated by sonde's StatsD ingest.\n# TYPE other counter\nother 2\n"
        );
        assert_eq!(h.reg.expire(t(110)), 1); // other, idle 60s
        assert_eq!(
            h.reg.stats(),
            RegistryStats {
                series: 0,
                families: 0,
                overflow_total: 0,
                conflicts_total: 0,
                expired_total: 4,
            }
        );
        assert_eq!(h.text(t(110)), "");
        // A re-created series starts from zero.
        h.feed("cache.users.hits:2|c", t(200));
        assert!(h.text(t(200)).contains("cache_hits{cache=\"users\"} 2\n"));
        // So does one updated after its TTL before expire() removed it.
        h.feed("cache.users.hits:5|c", t(300));
        assert!(h.text(t(300)).contains("cache_hits{cache=\"users\"} 5\n"));
        assert_eq!(h.reg.stats().series, 1);
    }

    #[test]
    fn without_ttl_series_never_expire() {
        let mut h = Harness::new(100);
        h.mapper = load("mappings: []\n", MapperLimits::default()).expect("loads");
        h.cache = h.mapper.new_cache();
        h.feed("a:1|c", t(0));
        assert_eq!(h.reg.expire(t(10_000_000)), 0);
        assert_eq!(
            h.text(t(10_000_000)),
            "# HELP a Metric autogenerated by sonde's StatsD ingest.\n# TYPE a counter\na 1\n"
        );
    }

    #[test]
    fn exposition_parses_back_with_escaped_labels() {
        let mut h = Harness::new(100);
        h.feed(
            "api.users.latency:250|ms|#path:/a\"b\\c\njob.etl.duration:5|ms\nhits:2|c",
            t(0),
        );
        let mut sink = Sink::new();
        h.reg.encode(t(0), &mut sink);
        let mut out = Vec::new();
        crate::expo::encode([&sink], crate::expo::Format::Text, &mut out);
        let text = String::from_utf8(out).expect("utf-8");
        let fams = crate::expo::parse::parse(&text).expect("parses");
        let got: Vec<(String, MetricType, usize)> = fams
            .iter()
            .map(|f| (f.name.clone(), f.kind, f.samples.len()))
            .collect();
        assert_eq!(
            got,
            vec![
                ("api_latency_seconds".to_string(), MetricType::Histogram, 6),
                ("hits".to_string(), MetricType::Counter, 1),
                ("job_duration_seconds".to_string(), MetricType::Summary, 5),
            ]
        );
        let bucket = &fams[0].samples[1];
        assert_eq!(
            (
                bucket.name.as_str(),
                bucket.label("path"),
                bucket.label("le"),
                bucket.value
            ),
            (
                "api_latency_seconds_bucket",
                Some("/a\"b\\c"),
                Some("0.5"),
                1.0
            )
        );
        let q = &fams[2].samples[0];
        assert_eq!((q.label("quantile"), q.value), (Some("0.5"), 0.005));
    }

    #[test]
    fn ingest_packet_counts_every_outcome() {
        let mapper = load(
            &format!("{MAPPING}- match: drop.*\n  action: drop\n- match: req.*\n  event: request\n  labels:\n    service: $1\n    route: /x\n    method: GET\n"),
            MapperLimits {
                max_labels: 1,
                ..MapperLimits::default()
            },
        )
        .expect("loads");
        let mut cache = mapper.new_cache();
        let mut scratch = Scratch::default();
        let mut reg = StatsdRegistry::new(&RegistryConfig::default());
        let mut stats = IngestStats::default();
        let mut events = Vec::new();
        let packet = b"hits:1|c|#a:1,b:2\nbad line\nx:1|q\nhits:1|g\ndrop.me:1|c\nreq.api:20|ms|@0.5\nreq.api:1|g\ncache.c.hits:1:2|c\ntagless:1|c|#novalue\n";
        ingest_packet(
            packet,
            1024,
            &mapper,
            &mut cache,
            &mut scratch,
            &mut reg,
            t(0),
            &mut stats,
            |e, n| events.push((e, n)),
        );
        assert_eq!(
            (
                stats.lines("ok"),
                stats.lines("malformed_line"),
                stats.lines("unknown_type"),
                stats.lines("invalid_multi_value_type")
            ),
            (6, 1, 1, 1)
        );
        assert_eq!(
            SAMPLE_RESULTS.map(|r| stats.samples(r)),
            [2, 1, 1, 0, 1, 0, 0, 0, 1, 0, 0, 0, 0]
        );
        assert_eq!(
            (
                stats.tag_errors_total,
                stats.tags_dropped_total,
                stats.unmapped_total
            ),
            (1, 1, 3)
        );
        assert_eq!(events.len(), 1);
        assert_eq!(events[0].1, 2);
        let mut sink = Sink::new();
        stats.encode(&mut sink);
        let lines = sink.families().next().expect("lines family");
        assert_eq!(lines.name(), "sonde_statsd_lines_total");
        assert_eq!(lines.len(), LineError::ALL.len() + 1);
        let mut total = IngestStats::default();
        total.merge(&stats);
        total.merge(&stats);
        assert_eq!(total.lines("ok"), 12);
        assert_eq!(total.samples("metric"), 4);
    }

    #[test]
    fn every_rejection_reason_has_a_sample_result() {
        use crate::ingest::statsd::mapping::MapError;
        let reasons = [
            MapError::EmptyName.reason(),
            MapError::EventTypeMismatch.reason(),
            MapError::MissingEventLabel.reason(),
            MapError::InvalidEventLabel.reason(),
            MapError::InvalidDuration.reason(),
            RecordError::TypeConflict.reason(),
            RecordError::SeriesLimit.reason(),
            RecordError::NegativeCounter.reason(),
            RecordError::InvalidValue.reason(),
            RecordError::ReservedName.reason(),
        ];
        for r in reasons {
            assert!(SAMPLE_RESULTS.contains(&r), "{r} missing");
        }
    }

    #[test]
    fn help_comes_from_the_mapping() {
        let mut h = Harness::new(100);
        h.feed("cache.users.hits:1|c", t(0));
        assert!(
            h.text(t(0))
                .starts_with("# HELP cache_hits Cache hits.\n# TYPE cache_hits counter\n")
        );
    }

    #[test]
    fn scaled_and_invalid_values() {
        let mapper = load(
            "mappings:\n- match: neg.*\n  name: neg\n  scale: -1\n- match: kb.*\n  name: kb\n  scale: 0.001\n  observer_type: histogram\n  histogram_options:\n    buckets: [1]\n",
            MapperLimits::default(),
        )
        .expect("loads");
        let mut h = Harness::new(10);
        h.mapper = mapper;
        h.cache = h.mapper.new_cache();
        let r = h.feed("neg.x:1|c\nneg.x:4|g\nkb.x:1500|h", t(0));
        assert_eq!(r, vec!["negative_counter", "ok", "ok"]);
        let text = h.text(t(0));
        assert!(text.contains("kb_sum 1.5\n"), "{text}");
        assert!(text.contains("neg -4\n"), "{text}");
    }

    proptest::proptest! {
        #[test]
        fn random_traffic_keeps_the_invariants(
            ops in proptest::collection::vec(
                (0usize..4, 0usize..5, 0usize..6, 0.0f64..1000.0, 0u64..15),
                1..120,
            )
        ) {
            let mut h = Harness::new(8);
            h.mapper = load(
                "defaults:\n  ttl: 20s\nmappings:\n- match: s.*\n  name: s\n  observer_type: summary\n  labels:\n    k: $1\n",
                MapperLimits::default(),
            )
            .expect("loads");
            h.cache = h.mapper.new_cache();
            let mut now = 0;
            for (name, ty, label, value, advance) in ops {
                now += advance;
                let name = ["a", "b", "s.x", "a_sum"][name];
                let ty = ["c", "g", "ms", "h", "d"][ty];
                h.feed(&format!("{name}:{value}|{ty}|#l:{label}"), t(now));
                if advance > 10 {
                    h.reg.expire(t(now));
                    let live: usize = h.reg.families.values().map(|f| f.series.len()).sum();
                    proptest::prop_assert!(h.reg.families.values().all(|f| !f.series.is_empty()));
                    proptest::prop_assert_eq!(live, h.reg.stats().series);
                }
                let total: usize = h.reg.families.values().map(|f| f.series.len()).sum();
                proptest::prop_assert_eq!(total, h.reg.stats().series);
                proptest::prop_assert!(total <= 8);
                let mut sink = Sink::new();
                h.reg.encode(t(now), &mut sink);
                let mut out = Vec::new();
                crate::expo::encode([&sink], crate::expo::Format::Text, &mut out);
                let text = String::from_utf8(out).expect("utf-8");
                let parsed = crate::expo::parse::parse(&text);
                proptest::prop_assert!(parsed.is_ok(), "{:?}\n{}", parsed, text);
            }
        }
    }
}
