//! Request metrics computed from [`RequestEvent`]s: the latency histogram
//! `api_request_duration_seconds{service,route,method,code}` (name and buckets configurable) and
//! the counter `service_requests_total{service,code}`, with the cardinality bounds that client
//! supplied labels need.
//!
//! Bounds, all counted so that nothing disappears silently:
//! - `max_services`: an event for a service beyond the cap is dropped from request metrics
//!   (`sonde_request_dropped_total{reason="max_services"}`);
//! - `max_routes_per_service` / `max_methods_per_service`: a new route (method) beyond the
//!   service's cap is recorded as `route="other"` (`method="other"`) and counted in
//!   `sonde_request_label_overflow_total{service,label="route"|"method"}`. A client that
//!   literally sends `other` shares that series; `other` never takes a slot of the cap;
//! - `max_series`: a hard cap on histogram series; an event that would create one more is
//!   dropped (`sonde_request_dropped_total{reason="max_series"}`);
//! - `series_ttl_seconds`: a series (histogram or counter) not updated for that long is removed
//!   by [`RequestMetrics::expire`] (also run by [`RequestMetrics::encode`]), which frees its
//!   route, method and service slots. A series that comes back starts from zero, which
//!   Prometheus reads as a counter reset.
//!
//! A dropped event is dropped from both families, so that `sum by (service, code)` of the
//! histogram's `_count` equals `service_requests_total` until series expire.
//!
//! Time: series age by the `now` the caller passes with each event (receive time), not by the
//! event's own timestamp, which clients may send late or out of order.
//!
//! Hot path: [`RequestMetrics::observe`] on an existing series does two hash look-ups with
//! borrowed keys (the series by `(service, route, method, code)` and the service's counter)
//! and no allocation. Histogram buckets are stored per bucket and made cumulative at encode
//! time. Bucket semantics as in Prometheus: an observation equal to a bound counts in that
//! bucket (`le` is inclusive).

use std::borrow::Borrow;
use std::collections::{BTreeMap, HashMap};
use std::hash::{Hash, Hasher};
use std::time::{Duration, SystemTime};

use serde::{Deserialize, Serialize};

use crate::collect::{MetricType, Sink};
use crate::config::Issue;
use crate::services::event::{CodeLabel, RequestEvent};

/// The label value that stands for every route (method) beyond a service's cap.
pub const OTHER: &str = "other";

/// The Prometheus client libraries' default buckets (5 ms .. 10 s): they cover typical web
/// request latencies and are what existing dashboards built on client-library histograms expect.
pub const DEFAULT_BUCKETS: [f64; 11] = [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// Most buckets accepted in `buckets` (each one is a series per label set).
pub const MAX_BUCKETS: usize = 64;

/// Request-metrics options (`services.requests` in sonde's YAML).
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct RequestMetricsConfig {
    /// Name of the latency histogram family.
    pub histogram_name: String,
    /// Upper bounds of the histogram buckets in seconds, strictly increasing; `+Inf` is implicit.
    pub buckets: Vec<f64>,
    /// Most services tracked at once.
    pub max_services: usize,
    /// Most distinct routes per service; more are recorded as `route="other"`.
    pub max_routes_per_service: usize,
    /// Most distinct methods per service; more are recorded as `method="other"`.
    pub max_methods_per_service: usize,
    /// Most histogram series (label sets) overall.
    pub max_series: usize,
    /// A series not updated for this long is removed (0 = never).
    pub series_ttl_seconds: f64,
}

fn default_histogram_name() -> String {
    "api_request_duration_seconds".to_string()
}
fn default_max_services() -> usize {
    100
}
fn default_max_routes_per_service() -> usize {
    100
}
fn default_max_methods_per_service() -> usize {
    20
}
fn default_max_series() -> usize {
    10_000
}
fn default_series_ttl_seconds() -> f64 {
    600.0
}

impl Default for RequestMetricsConfig {
    fn default() -> Self {
        Self {
            histogram_name: default_histogram_name(),
            buckets: DEFAULT_BUCKETS.to_vec(),
            max_services: default_max_services(),
            max_routes_per_service: default_max_routes_per_service(),
            max_methods_per_service: default_max_methods_per_service(),
            max_series: default_max_series(),
            series_ttl_seconds: default_series_ttl_seconds(),
        }
    }
}

/// Family name of the per-service request counter.
pub const REQUESTS_TOTAL: &str = "service_requests_total";

impl RequestMetricsConfig {
    /// Pushes one [`Issue`] per bad value, keyed below `key` (e.g. `services.requests`).
    pub fn check(&self, key: &str, issues: &mut Vec<Issue>) {
        let name = &self.histogram_name;
        if !crate::expo::parse::valid_metric_name(name) {
            issues.push(Issue::new(
                format!("{key}.histogram_name"),
                "must be a valid metric name ([a-zA-Z_:][a-zA-Z0-9_:]*)",
            ));
        } else if ["_bucket", "_sum", "_count", "_total"]
            .iter()
            .any(|s| name.ends_with(s))
            || name.starts_with("sonde_")
            || name == REQUESTS_TOTAL
        {
            issues.push(Issue::new(
                format!("{key}.histogram_name"),
                "must not end in _bucket, _sum, _count or _total, nor start with sonde_",
            ));
        }
        if self.buckets.is_empty() || self.buckets.len() > MAX_BUCKETS {
            issues.push(Issue::new(
                format!("{key}.buckets"),
                format!("must hold 1 to {MAX_BUCKETS} bounds"),
            ));
        } else if self.buckets.iter().any(|b| !b.is_finite() || *b < 0.0) {
            issues.push(Issue::new(
                format!("{key}.buckets"),
                "bounds must be finite and >= 0 (the +Inf bucket is implicit)",
            ));
        } else if self.buckets.windows(2).any(|w| w[0] >= w[1]) {
            issues.push(Issue::new(
                format!("{key}.buckets"),
                "must be sorted and strictly increasing",
            ));
        }
        for (field, v) in [
            ("max_services", self.max_services),
            ("max_routes_per_service", self.max_routes_per_service),
            ("max_methods_per_service", self.max_methods_per_service),
            ("max_series", self.max_series),
        ] {
            if v == 0 {
                issues.push(Issue::new(format!("{key}.{field}"), "must be at least 1"));
            }
        }
        if !(self.series_ttl_seconds.is_finite() && self.series_ttl_seconds >= 0.0) {
            issues.push(Issue::new(
                format!("{key}.series_ttl_seconds"),
                "must be a finite number >= 0 (0 = never expire)",
            ));
        }
    }
}

/// A histogram series' key, owned. Its `Hash`/`Eq` agree with [`SeriesRef`]'s, so the map can be
/// searched with borrowed strings.
#[derive(Debug, Clone)]
struct SeriesKey {
    service: Box<str>,
    route: Box<str>,
    method: Box<str>,
    code: CodeLabel,
}

/// A borrowed view of a series key: what look-ups hash and compare.
trait SeriesRef {
    fn parts(&self) -> (&str, &str, &str, CodeLabel);
}

impl SeriesRef for SeriesKey {
    fn parts(&self) -> (&str, &str, &str, CodeLabel) {
        (&self.service, &self.route, &self.method, self.code)
    }
}

impl SeriesRef for (&str, &str, &str, CodeLabel) {
    fn parts(&self) -> (&str, &str, &str, CodeLabel) {
        *self
    }
}

impl<'a> Borrow<dyn SeriesRef + 'a> for SeriesKey {
    fn borrow(&self) -> &(dyn SeriesRef + 'a) {
        self
    }
}

impl Hash for dyn SeriesRef + '_ {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.parts().hash(state);
    }
}

impl PartialEq for dyn SeriesRef + '_ {
    fn eq(&self, other: &Self) -> bool {
        self.parts() == other.parts()
    }
}

impl Eq for dyn SeriesRef + '_ {}

impl Hash for SeriesKey {
    fn hash<H: Hasher>(&self, state: &mut H) {
        // Must hash exactly as `dyn SeriesRef` does.
        self.parts().hash(state);
    }
}

impl PartialEq for SeriesKey {
    fn eq(&self, other: &Self) -> bool {
        self.parts() == other.parts()
    }
}

impl Eq for SeriesKey {}

/// One histogram series.
#[derive(Debug)]
struct Series {
    /// Observations per bucket (not cumulative); index `i` counts values in
    /// `(buckets[i-1], buckets[i]]`. Values above the last bound are only in `count`.
    counts: Box<[u64]>,
    sum: f64,
    count: u64,
    last: SystemTime,
}

/// A counter series of `service_requests_total`.
#[derive(Debug)]
struct Counter {
    value: u64,
    last: SystemTime,
}

/// Per-service bookkeeping: slot usage for the caps and the service's counters.
#[derive(Debug, Default)]
struct ServiceEntry {
    /// Live histogram series per route (the route cap counts the keys, except `other`).
    routes: HashMap<Box<str>, u32>,
    /// Live histogram series per method.
    methods: HashMap<Box<str>, u32>,
    /// `service_requests_total` by code (at most ~500 codes plus two outcomes).
    codes: BTreeMap<CodeLabel, Counter>,
    route_overflow: u64,
    method_overflow: u64,
}

/// Why an event was dropped from request metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum DropReason {
    MaxServices,
    MaxSeries,
}

/// Request histograms and counters; see the module documentation.
#[derive(Debug)]
pub struct RequestMetrics {
    histogram_name: String,
    buckets: Box<[f64]>,
    max_services: usize,
    max_routes: usize,
    max_methods: usize,
    max_series: usize,
    ttl: Option<Duration>,
    series: HashMap<SeriesKey, Series>,
    services: HashMap<Box<str>, ServiceEntry>,
    dropped_max_services: u64,
    dropped_max_series: u64,
    /// Reused at encode time for cumulative buckets.
    scratch: Vec<(f64, u64)>,
}

/// Counts a route or method against a service's cap: `value` itself when known or when there is
/// room, else [`OTHER`] (and the overflow counter goes up).
fn resolve<'v>(
    slots: &HashMap<Box<str>, u32>,
    value: &'v str,
    cap: usize,
    overflow: &mut u64,
) -> &'v str {
    if value == OTHER || slots.contains_key(value) {
        return value;
    }
    let named = slots.len() - usize::from(slots.contains_key(OTHER));
    if named < cap {
        value
    } else {
        *overflow += 1;
        OTHER
    }
}

fn code_str(code: CodeLabel, buf: &mut itoa::Buffer) -> &str {
    match code {
        CodeLabel::Code(c) => buf.format(c),
        CodeLabel::Success => "success",
        CodeLabel::Error => "error",
    }
}

fn age(now: SystemTime, last: SystemTime) -> Duration {
    // A clock that stepped back makes everything young rather than expiring it.
    now.duration_since(last).unwrap_or_default()
}

impl RequestMetrics {
    /// Builds the metrics from a configuration that passed [`RequestMetricsConfig::check`]
    /// (unchecked bad buckets are sorted, de-duplicated and non-finite ones dropped; zero caps
    /// act as 1).
    pub fn new(cfg: &RequestMetricsConfig) -> Self {
        let mut buckets: Vec<f64> = cfg
            .buckets
            .iter()
            .copied()
            .filter(|b| b.is_finite())
            .collect();
        buckets.sort_by(f64::total_cmp);
        buckets.dedup();
        let ttl = (cfg.series_ttl_seconds > 0.0)
            .then(|| Duration::try_from_secs_f64(cfg.series_ttl_seconds).ok())
            .flatten();
        Self {
            histogram_name: cfg.histogram_name.clone(),
            buckets: buckets.into(),
            max_services: cfg.max_services.max(1),
            max_routes: cfg.max_routes_per_service.max(1),
            max_methods: cfg.max_methods_per_service.max(1),
            max_series: cfg.max_series.max(1),
            ttl,
            series: HashMap::new(),
            services: HashMap::new(),
            dropped_max_services: 0,
            dropped_max_series: 0,
            scratch: Vec::new(),
        }
    }

    /// Number of live histogram series.
    pub fn series_count(&self) -> usize {
        self.series.len()
    }

    /// Number of tracked services.
    pub fn service_count(&self) -> usize {
        self.services.len()
    }

    /// Records one finished request received at `now`.
    pub fn observe(&mut self, ev: &RequestEvent, now: SystemTime) {
        let d = ev.duration_seconds;
        if !(d.is_finite() && d >= 0.0) {
            // The event type guarantees this; a NaN would poison `_sum` forever.
            return;
        }
        let code = ev.code_label();
        let service = ev.service.as_str();
        let key = (service, ev.route.as_str(), ev.method.as_str(), code);
        if let Some(s) = self.series.get_mut(&key as &dyn SeriesRef) {
            Self::record(s, &self.buckets, d, now);
            self.count_request(service, code, now);
            return;
        }
        if let Err(reason) = self.observe_new(ev, code, now) {
            match reason {
                DropReason::MaxServices => self.dropped_max_services += 1,
                DropReason::MaxSeries => self.dropped_max_series += 1,
            }
            return;
        }
        self.count_request(service, code, now);
    }

    /// The slow path: the exact series does not exist (new, or its route/method overflowed).
    fn observe_new(
        &mut self,
        ev: &RequestEvent,
        code: CodeLabel,
        now: SystemTime,
    ) -> Result<(), DropReason> {
        let service = ev.service.as_str();
        if !self.services.contains_key(service) {
            if self.services.len() >= self.max_services {
                return Err(DropReason::MaxServices);
            }
            // A new service needs a new series: check now so no empty entry is left behind.
            if self.series.len() >= self.max_series {
                return Err(DropReason::MaxSeries);
            }
            self.services
                .insert(service.into(), ServiceEntry::default());
        }
        let Some(svc) = self.services.get_mut(service) else {
            return Err(DropReason::MaxServices);
        };
        let route = resolve(
            &svc.routes,
            ev.route.as_str(),
            self.max_routes,
            &mut svc.route_overflow,
        );
        let method = resolve(
            &svc.methods,
            ev.method.as_str(),
            self.max_methods,
            &mut svc.method_overflow,
        );
        let key = (service, route, method, code);
        if let Some(s) = self.series.get_mut(&key as &dyn SeriesRef) {
            Self::record(s, &self.buckets, ev.duration_seconds, now);
            return Ok(());
        }
        if self.series.len() >= self.max_series {
            return Err(DropReason::MaxSeries);
        }
        *svc.routes.entry(route.into()).or_default() += 1;
        *svc.methods.entry(method.into()).or_default() += 1;
        let mut s = Series {
            counts: vec![0; self.buckets.len()].into(),
            sum: 0.0,
            count: 0,
            last: now,
        };
        Self::record(&mut s, &self.buckets, ev.duration_seconds, now);
        self.series.insert(
            SeriesKey {
                service: service.into(),
                route: route.into(),
                method: method.into(),
                code,
            },
            s,
        );
        Ok(())
    }

    fn record(s: &mut Series, buckets: &[f64], d: f64, now: SystemTime) {
        let i = buckets.partition_point(|&b| b < d);
        if let Some(c) = s.counts.get_mut(i) {
            *c += 1;
        }
        s.sum += d;
        s.count += 1;
        s.last = now;
    }

    fn count_request(&mut self, service: &str, code: CodeLabel, now: SystemTime) {
        let Some(svc) = self.services.get_mut(service) else {
            return;
        };
        let c = svc.codes.entry(code).or_insert(Counter {
            value: 0,
            last: now,
        });
        c.value += 1;
        c.last = now;
    }

    /// Removes series not updated for `series_ttl_seconds` before `now` (age >= TTL), then
    /// services left with no series and no counters.
    pub fn expire(&mut self, now: SystemTime) {
        let Some(ttl) = self.ttl else {
            return;
        };
        let services = &mut self.services;
        self.series.retain(|k, s| {
            if age(now, s.last) < ttl {
                return true;
            }
            if let Some(svc) = services.get_mut(&*k.service) {
                for (slots, v) in [(&mut svc.routes, &k.route), (&mut svc.methods, &k.method)] {
                    if let Some(n) = slots.get_mut(v) {
                        *n = n.saturating_sub(1);
                    }
                }
            }
            false
        });
        self.services.retain(|_, svc| {
            svc.routes.retain(|_, n| *n > 0);
            svc.methods.retain(|_, n| *n > 0);
            svc.codes.retain(|_, c| age(now, c.last) < ttl);
            !(svc.routes.is_empty() && svc.codes.is_empty())
        });
    }

    /// Expires old series (see [`Self::expire`]) and writes every family into `sink`, series
    /// sorted by their labels.
    pub fn encode(&mut self, now: SystemTime, sink: &mut Sink) {
        self.expire(now);
        let mut itoa = itoa::Buffer::new();

        let mut keys: Vec<(&SeriesKey, &Series)> = self.series.iter().collect();
        keys.sort_unstable_by(|a, b| a.0.parts().cmp(&b.0.parts()));
        let mut w = sink.family(
            &self.histogram_name,
            "Duration of requests reported by services, in seconds.",
            MetricType::Histogram,
        );
        let scratch = &mut self.scratch;
        for (k, s) in keys {
            scratch.clear();
            let mut cum = 0;
            for (le, n) in self.buckets.iter().zip(s.counts.iter()) {
                cum += n;
                scratch.push((*le, cum));
            }
            w.histogram(
                &[
                    ("service", &k.service),
                    ("route", &k.route),
                    ("method", &k.method),
                    ("code", code_str(k.code, &mut itoa)),
                ],
                scratch,
                s.sum,
                s.count,
            );
        }

        let mut services: Vec<(&Box<str>, &ServiceEntry)> = self.services.iter().collect();
        services.sort_unstable_by(|a, b| a.0.cmp(b.0));
        let mut w = sink.family(
            REQUESTS_TOTAL,
            "Requests reported by services, by status code or outcome.",
            MetricType::Counter,
        );
        for (name, svc) in &services {
            for (code, c) in &svc.codes {
                w.sample(
                    &[("service", name), ("code", code_str(*code, &mut itoa))],
                    c.value as f64,
                );
            }
        }
        let mut w = sink.family(
            "sonde_request_label_overflow_total",
            "Requests whose route or method was recorded as \"other\" because the service \
             reached its cap of distinct values.",
            MetricType::Counter,
        );
        for (name, svc) in &services {
            w.sample(
                &[("service", name), ("label", "method")],
                svc.method_overflow as f64,
            );
            w.sample(
                &[("service", name), ("label", "route")],
                svc.route_overflow as f64,
            );
        }
        sink.family(
            "sonde_request_dropped_total",
            "Requests left out of request metrics because a cardinality cap was reached.",
            MetricType::Counter,
        )
        .sample(&[("reason", "max_series")], self.dropped_max_series as f64)
        .sample(
            &[("reason", "max_services")],
            self.dropped_max_services as f64,
        );
        sink.gauge(
            "sonde_request_series",
            "Live series of the request-duration histogram.",
            self.series.len() as f64,
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::expo::{Format, encode};
    use crate::services::event::{LabelLimits, LabelValue, Outcome};

    fn lv(s: &str) -> LabelValue {
        LabelValue::new(s, LabelLimits::default()).expect("valid label")
    }

    fn req(service: &str, route: &str, method: &str, code: Option<u16>, d: f64) -> RequestEvent {
        RequestEvent {
            service: lv(service),
            route: lv(route),
            method: lv(method),
            code,
            outcome: None,
            duration_seconds: d,
            timestamp: None,
        }
    }

    fn at(secs: u64) -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000 + secs)
    }

    fn text(m: &mut RequestMetrics, now: SystemTime) -> String {
        let mut sink = Sink::new();
        m.encode(now, &mut sink);
        let mut out = Vec::new();
        encode([&sink], Format::Text, &mut out);
        String::from_utf8(out).expect("utf-8")
    }

    /// Only the lines of `text` that start with `prefix`.
    fn lines(text: &str, prefix: &str) -> String {
        text.lines()
            .filter(|l| l.starts_with(prefix))
            .map(|l| format!("{l}\n"))
            .collect()
    }

    fn small() -> RequestMetricsConfig {
        RequestMetricsConfig {
            buckets: vec![0.1, 0.5, 1.0],
            ..Default::default()
        }
    }

    #[test]
    fn exposition_is_exact() {
        let mut m = RequestMetrics::new(&small());
        let t = at(0);
        // Bounds are inclusive: 0.5 lands in le="0.5".
        for d in [0.0625, 0.5, 0.75, 2.0] {
            m.observe(&req("api", "/users/{id}", "GET", Some(200), d), t);
        }
        m.observe(&req("api", "/users/{id}", "GET", Some(503), 0.25), t);
        let mut e = req("worker", "jobs", "run", None, 0.125);
        e.outcome = Some(Outcome::Error);
        m.observe(&e, t);
        e.outcome = None;
        m.observe(&e, t);
        let got = text(&mut m, t);
        assert_eq!(
            got,
            include_str!("../../tests/fixtures/services/request_metrics_basic.prom")
        );
    }

    #[test]
    fn default_config_uses_client_default_buckets_and_name() {
        let mut m = RequestMetrics::new(&RequestMetricsConfig::default());
        m.observe(&req("api", "/", "GET", Some(200), 0.3), at(0));
        let got = lines(&text(&mut m, at(0)), "api_request_duration_seconds_bucket");
        let want: String = [
            ("0.005", 0),
            ("0.01", 0),
            ("0.025", 0),
            ("0.05", 0),
            ("0.1", 0),
            ("0.25", 0),
            ("0.5", 1),
            ("1", 1),
            ("2.5", 1),
            ("5", 1),
            ("10", 1),
            ("+Inf", 1),
        ]
        .iter()
        .map(|(le, n)| {
            format!(
                "api_request_duration_seconds_bucket{{service=\"api\",route=\"/\",method=\"GET\",code=\"200\",le=\"{le}\"}} {n}\n"
            )
        })
        .collect();
        assert_eq!(got, want);
    }

    #[test]
    fn histogram_name_is_configurable() {
        let mut m = RequestMetrics::new(&RequestMetricsConfig {
            histogram_name: "http_server_seconds".into(),
            buckets: vec![1.0],
            ..Default::default()
        });
        m.observe(&req("a", "/", "GET", Some(204), 1.5), at(0));
        assert_eq!(
            lines(&text(&mut m, at(0)), "http_server_seconds"),
            "http_server_seconds_bucket{service=\"a\",route=\"/\",method=\"GET\",code=\"204\",le=\"1\"} 0\n\
             http_server_seconds_bucket{service=\"a\",route=\"/\",method=\"GET\",code=\"204\",le=\"+Inf\"} 1\n\
             http_server_seconds_sum{service=\"a\",route=\"/\",method=\"GET\",code=\"204\"} 1.5\n\
             http_server_seconds_count{service=\"a\",route=\"/\",method=\"GET\",code=\"204\"} 1\n"
        );
    }

    #[test]
    fn routes_and_methods_beyond_the_cap_become_other() {
        let mut m = RequestMetrics::new(&RequestMetricsConfig {
            buckets: vec![1.0],
            max_routes_per_service: 2,
            max_methods_per_service: 1,
            ..Default::default()
        });
        let t = at(0);
        m.observe(&req("api", "/a", "GET", Some(200), 0.5), t);
        m.observe(&req("api", "/b", "GET", Some(200), 0.5), t);
        m.observe(&req("api", "/c", "GET", Some(200), 0.5), t); // route overflow
        m.observe(&req("api", "/d", "GET", Some(200), 0.5), t); // route overflow
        m.observe(&req("api", "/a", "POST", Some(200), 0.5), t); // method overflow
        m.observe(&req("api", "/a", "GET", Some(200), 0.5), t); // existing: no overflow
        // Another service has its own slots.
        m.observe(&req("web", "/c", "PUT", Some(200), 0.5), t);
        let got = text(&mut m, t);
        assert_eq!(
            lines(&got, "api_request_duration_seconds_count"),
            "api_request_duration_seconds_count{service=\"api\",route=\"/a\",method=\"GET\",code=\"200\"} 2\n\
             api_request_duration_seconds_count{service=\"api\",route=\"/a\",method=\"other\",code=\"200\"} 1\n\
             api_request_duration_seconds_count{service=\"api\",route=\"/b\",method=\"GET\",code=\"200\"} 1\n\
             api_request_duration_seconds_count{service=\"api\",route=\"other\",method=\"GET\",code=\"200\"} 2\n\
             api_request_duration_seconds_count{service=\"web\",route=\"/c\",method=\"PUT\",code=\"200\"} 1\n"
        );
        assert_eq!(
            lines(&got, "sonde_request_label_overflow_total{"),
            "sonde_request_label_overflow_total{service=\"api\",label=\"method\"} 1\n\
             sonde_request_label_overflow_total{service=\"api\",label=\"route\"} 2\n\
             sonde_request_label_overflow_total{service=\"web\",label=\"method\"} 0\n\
             sonde_request_label_overflow_total{service=\"web\",label=\"route\"} 0\n"
        );
        assert_eq!(
            lines(&got, "service_requests_total{"),
            "service_requests_total{service=\"api\",code=\"200\"} 6\n\
             service_requests_total{service=\"web\",code=\"200\"} 1\n"
        );
    }

    #[test]
    fn services_and_series_beyond_the_caps_are_dropped_and_counted() {
        let mut m = RequestMetrics::new(&RequestMetricsConfig {
            buckets: vec![1.0],
            max_services: 2,
            max_series: 3,
            ..Default::default()
        });
        let t = at(0);
        m.observe(&req("a", "/", "GET", Some(200), 0.5), t);
        m.observe(&req("b", "/", "GET", Some(200), 0.5), t);
        m.observe(&req("c", "/", "GET", Some(200), 0.5), t); // max_services
        m.observe(&req("a", "/", "GET", Some(500), 0.5), t);
        m.observe(&req("b", "/", "GET", Some(500), 0.5), t); // max_series
        m.observe(&req("b", "/", "GET", Some(200), 0.5), t); // existing series: kept
        assert_eq!(m.service_count(), 2);
        let got = text(&mut m, t);
        assert_eq!(
            lines(&got, "sonde_request_dropped_total{"),
            "sonde_request_dropped_total{reason=\"max_series\"} 1\n\
             sonde_request_dropped_total{reason=\"max_services\"} 1\n"
        );
        assert_eq!(
            lines(&got, "service_requests_total{"),
            "service_requests_total{service=\"a\",code=\"200\"} 1\n\
             service_requests_total{service=\"a\",code=\"500\"} 1\n\
             service_requests_total{service=\"b\",code=\"200\"} 2\n"
        );
        assert_eq!(
            lines(&got, "sonde_request_series "),
            "sonde_request_series 3\n"
        );
    }

    #[test]
    fn a_new_service_refused_by_the_series_cap_takes_no_service_slot() {
        let mut m = RequestMetrics::new(&RequestMetricsConfig {
            max_series: 1,
            series_ttl_seconds: 0.0,
            ..Default::default()
        });
        m.observe(&req("a", "/", "GET", Some(200), 0.5), at(0));
        m.observe(&req("b", "/", "GET", Some(200), 0.5), at(0));
        m.expire(at(0));
        assert_eq!((m.series_count(), m.service_count()), (1, 1));
        assert_eq!(
            lines(&text(&mut m, at(0)), "sonde_request_dropped_total{"),
            "sonde_request_dropped_total{reason=\"max_series\"} 1\n\
             sonde_request_dropped_total{reason=\"max_services\"} 0\n"
        );
    }

    #[test]
    fn series_expire_after_the_ttl_and_free_their_slots() {
        let mut m = RequestMetrics::new(&RequestMetricsConfig {
            buckets: vec![1.0],
            max_routes_per_service: 1,
            series_ttl_seconds: 600.0,
            ..Default::default()
        });
        m.observe(&req("api", "/a", "GET", Some(200), 0.5), at(0));
        m.observe(&req("api", "/b", "GET", Some(200), 0.5), at(300)); // -> other
        m.observe(&req("api", "/a", "GET", Some(404), 0.5), at(300));
        // At 599 s nothing is old enough.
        m.expire(at(599));
        assert_eq!(m.series_count(), 3);
        // At 600 s the first series has not been updated for the whole TTL.
        let got = text(&mut m, at(600));
        assert_eq!(
            lines(&got, "api_request_duration_seconds_count"),
            "api_request_duration_seconds_count{service=\"api\",route=\"/a\",method=\"GET\",code=\"404\"} 1\n\
             api_request_duration_seconds_count{service=\"api\",route=\"other\",method=\"GET\",code=\"200\"} 1\n"
        );
        // service_requests_total{code="200"} was updated at 300 through the other route.
        assert_eq!(
            lines(&got, "service_requests_total{"),
            "service_requests_total{service=\"api\",code=\"200\"} 2\n\
             service_requests_total{service=\"api\",code=\"404\"} 1\n"
        );
        // Everything is gone at 900 s, service included; /b now gets the freed slot.
        m.expire(at(900));
        assert_eq!((m.series_count(), m.service_count()), (0, 0));
        m.observe(&req("api", "/b", "GET", Some(200), 0.25), at(901));
        let got = text(&mut m, at(901));
        assert_eq!(
            lines(&got, "api_request_duration_seconds_sum"),
            "api_request_duration_seconds_sum{service=\"api\",route=\"/b\",method=\"GET\",code=\"200\"} 0.25\n"
        );
        assert_eq!(
            lines(&got, "service_requests_total{"),
            "service_requests_total{service=\"api\",code=\"200\"} 1\n"
        );
        assert_eq!(
            lines(&got, "sonde_request_label_overflow_total{"),
            "sonde_request_label_overflow_total{service=\"api\",label=\"method\"} 0\n\
             sonde_request_label_overflow_total{service=\"api\",label=\"route\"} 0\n"
        );
    }

    #[test]
    fn a_route_slot_is_freed_only_when_all_its_series_expired() {
        let mut m = RequestMetrics::new(&RequestMetricsConfig {
            buckets: vec![1.0],
            max_routes_per_service: 1,
            series_ttl_seconds: 10.0,
            ..Default::default()
        });
        m.observe(&req("api", "/a", "GET", Some(200), 0.5), at(0));
        m.observe(&req("api", "/a", "GET", Some(500), 0.5), at(5));
        m.expire(at(10)); // code 200 series gone, code 500 series holds /a
        m.observe(&req("api", "/b", "GET", Some(200), 0.5), at(11));
        let got = text(&mut m, at(11));
        assert_eq!(
            lines(&got, "api_request_duration_seconds_count"),
            "api_request_duration_seconds_count{service=\"api\",route=\"/a\",method=\"GET\",code=\"500\"} 1\n\
             api_request_duration_seconds_count{service=\"api\",route=\"other\",method=\"GET\",code=\"200\"} 1\n"
        );
    }

    #[test]
    fn zero_ttl_never_expires() {
        let mut m = RequestMetrics::new(&RequestMetricsConfig {
            series_ttl_seconds: 0.0,
            ..Default::default()
        });
        m.observe(&req("api", "/a", "GET", Some(200), 0.5), at(0));
        m.expire(at(10_000_000));
        assert_eq!(m.series_count(), 1);
    }

    #[test]
    fn config_is_checked_with_keys() {
        let mut issues = Vec::new();
        RequestMetricsConfig::default().check("services.requests", &mut issues);
        assert_eq!(issues, vec![]);
        let bad = RequestMetricsConfig {
            histogram_name: "bad-name".into(),
            buckets: vec![0.5, 0.25],
            max_routes_per_service: 0,
            series_ttl_seconds: f64::NAN,
            ..Default::default()
        };
        bad.check("services.requests", &mut issues);
        let got: Vec<String> = issues.iter().map(ToString::to_string).collect();
        assert_eq!(
            got,
            vec![
                "services.requests.histogram_name: must be a valid metric name ([a-zA-Z_:][a-zA-Z0-9_:]*)",
                "services.requests.buckets: must be sorted and strictly increasing",
                "services.requests.max_routes_per_service: must be at least 1",
                "services.requests.series_ttl_seconds: must be a finite number >= 0 (0 = never expire)",
            ]
        );
        for (buckets, want) in [
            (vec![], "must hold 1 to 64 bounds"),
            (
                vec![0.1, f64::INFINITY],
                "bounds must be finite and >= 0 (the +Inf bucket is implicit)",
            ),
            (vec![1.0, 1.0], "must be sorted and strictly increasing"),
        ] {
            let mut issues = Vec::new();
            RequestMetricsConfig {
                buckets,
                histogram_name: "service_requests_total".into(),
                ..Default::default()
            }
            .check("r", &mut issues);
            assert_eq!(
                issues,
                vec![
                    Issue::new(
                        "r.histogram_name",
                        "must not end in _bucket, _sum, _count or _total, nor start with sonde_"
                    ),
                    Issue::new("r.buckets", want)
                ]
            );
        }
    }

    #[test]
    fn config_parses_from_yaml_with_defaults() {
        let cfg: RequestMetricsConfig = crate::config::from_yaml(
            "histogram_name: http_seconds\nbuckets: [0.1, 1]\nseries_ttl_seconds: 60\n",
        )
        .expect("parses");
        assert_eq!(
            cfg,
            RequestMetricsConfig {
                histogram_name: "http_seconds".into(),
                buckets: vec![0.1, 1.0],
                series_ttl_seconds: 60.0,
                ..Default::default()
            }
        );
        let err = crate::config::from_yaml::<RequestMetricsConfig>("max_route: 3\n")
            .expect_err("unknown key");
        assert!(err.to_string().contains("max_route"), "{err}");
    }

    proptest::proptest! {
        /// Whatever arrives, the caps hold, the histogram's counts (and its `+Inf` buckets) add
        /// up to the counter per (service, code), and accepted plus dropped is everything sent.
        #[test]
        fn caps_hold_and_counts_agree(
            events in proptest::collection::vec(
                (0u8..6, 0u8..8, 0u8..4, proptest::option::of(200u16..205), 0u32..3000),
                0..300,
            )
        ) {
            let cfg = RequestMetricsConfig {
                buckets: vec![0.5, 1.0, 2.0],
                max_services: 4,
                max_routes_per_service: 3,
                max_methods_per_service: 2,
                max_series: 40,
                ..Default::default()
            };
            let mut m = RequestMetrics::new(&cfg);
            for (s, r, me, code, ms) in &events {
                let mut e = req(&format!("s{s}"), &format!("/r{r}"), &format!("M{me}"), *code, f64::from(*ms) / 1000.0);
                if code.is_none() {
                    e.outcome = Some(Outcome::Error);
                }
                m.observe(&e, at(0));
            }
            let mut sink = Sink::new();
            m.encode(at(0), &mut sink);
            let mut out = Vec::new();
            encode([&sink], Format::Text, &mut out);
            let fams = crate::expo::parse::parse(&String::from_utf8(out).expect("utf-8")).expect("parses");
            let mut hist: BTreeMap<(String, String), f64> = BTreeMap::new();
            let mut total: BTreeMap<(String, String), f64> = BTreeMap::new();
            let mut routes: BTreeMap<String, std::collections::BTreeSet<String>> = BTreeMap::new();
            let mut inf: BTreeMap<(String, String), f64> = BTreeMap::new();
            let mut series = 0;
            for f in &fams {
                for s in &f.samples {
                    let key = || (s.label("service").unwrap_or_default().to_string(), s.label("code").unwrap_or_default().to_string());
                    if s.name == "api_request_duration_seconds_count" {
                        *hist.entry(key()).or_default() += s.value;
                        series += 1;
                        let r = s.label("route").unwrap_or_default();
                        if r != OTHER {
                            routes.entry(key().0).or_default().insert(r.to_string());
                        }
                    } else if s.name == "api_request_duration_seconds_bucket" && s.label("le") == Some("+Inf") {
                        *inf.entry(key()).or_default() += s.value;
                    } else if s.name == "service_requests_total" {
                        *total.entry(key()).or_default() += s.value;
                    }
                }
            }
            proptest::prop_assert_eq!(&hist, &total);
            proptest::prop_assert_eq!(&inf, &total);
            proptest::prop_assert!(series <= 40);
            proptest::prop_assert!(total.keys().map(|k| &k.0).collect::<std::collections::BTreeSet<_>>().len() <= 4);
            proptest::prop_assert!(routes.values().all(|r| r.len() <= 3));
            let dropped: f64 = fams.iter().filter(|f| f.name == "sonde_request_dropped_total").flat_map(|f| f.samples.iter()).map(|s| s.value).sum();
            proptest::prop_assert_eq!(total.values().sum::<f64>() + dropped, events.len() as f64);
        }
    }
}
