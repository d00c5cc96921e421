//! The exposition formats: Prometheus text 0.0.4 and OpenMetrics 1.0.0 encoders over the
//! collectors' [`Sink`]s, `Accept` negotiation, and a text-format parser ([`parse`]) used by
//! the textfile collector and the tests. This is the only code (with `server`) that knows the
//! wire formats.
//!
//! Why our own encoder: the `prometheus` crate writes only text 0.0.4 and `prometheus-client`
//! only OpenMetrics, and both want a registry of long-lived metric objects, while node metrics
//! are produced fresh at every scrape. Encoding straight from the sinks' pre-rendered label
//! sets is a memcpy per sample. The output is checked by `promtool check metrics`, by a real
//! Prometheus scraping it, and by the unit tests below.

pub mod negotiate;
pub mod parse;

pub use negotiate::{Format, negotiate};

use std::collections::HashSet;

use crate::collect::sink::ValueBuf;
use crate::collect::{FamilyView, MetricType, Sink, Suffix};

/// Encodes `sinks` in `format`, appending to `out`.
///
/// Families are written sorted by name (as Prometheus client libraries do). A family name that
/// appears in several sinks (or several times in one) is merged into one family when the types
/// agree; a later family with a different type is dropped, and within a merged family a
/// repeated label set keeps its first sample, so the output is always valid.
pub fn encode<'a>(sinks: impl IntoIterator<Item = &'a Sink>, format: Format, out: &mut Vec<u8>) {
    let mut fams: Vec<FamilyView<'a>> = sinks
        .into_iter()
        .flat_map(|s| s.families())
        .filter(|f| !f.is_empty())
        .collect();
    fams.sort_by(|a, b| a.name().cmp(b.name()));
    let mut i = 0;
    while i < fams.len() {
        let mut j = i + 1;
        while j < fams.len() && fams[j].name() == fams[i].name() {
            j += 1;
        }
        let group = &fams[i..j];
        let first = group[0];
        write_header(out, first, format);
        if group.len() == 1 {
            for s in first.samples() {
                write_sample(out, first, s.suffix, s.labels, s.value, format);
            }
        } else {
            let mut seen: HashSet<(&str, &str)> = HashSet::new();
            for fam in group.iter().filter(|f| f.kind() == first.kind()) {
                for s in fam.samples() {
                    if seen.insert((s.suffix.as_str(), s.labels)) {
                        write_sample(out, first, s.suffix, s.labels, s.value, format);
                    }
                }
            }
        }
        i = j;
    }
    if format.is_openmetrics() {
        out.extend_from_slice(b"# EOF\n");
    }
}

/// For OpenMetrics a counter's family name drops `_total`; a counter without `_total` cannot
/// be a counter there, so it is exposed as `unknown`.
fn om_name_and_type(fam: FamilyView<'_>) -> (&str, &'static str) {
    match fam.kind() {
        MetricType::Counter => match fam.name().strip_suffix("_total") {
            Some(base) => (base, "counter"),
            None => (fam.name(), "unknown"),
        },
        MetricType::Untyped => (fam.name(), "unknown"),
        k => (fam.name(), k.text_name()),
    }
}

fn write_header(out: &mut Vec<u8>, fam: FamilyView<'_>, format: Format) {
    let (name, kind) = if format.is_openmetrics() {
        om_name_and_type(fam)
    } else {
        (fam.name(), fam.kind().text_name())
    };
    if !fam.help().is_empty() {
        out.extend_from_slice(b"# HELP ");
        out.extend_from_slice(name.as_bytes());
        out.push(b' ');
        escape_help(out, fam.help(), format.is_openmetrics());
        out.push(b'\n');
    }
    out.extend_from_slice(b"# TYPE ");
    out.extend_from_slice(name.as_bytes());
    out.push(b' ');
    out.extend_from_slice(kind.as_bytes());
    out.push(b'\n');
}

fn escape_help(out: &mut Vec<u8>, help: &str, openmetrics: bool) {
    for &b in help.as_bytes() {
        match b {
            b'\\' => out.extend_from_slice(b"\\\\"),
            b'\n' => out.extend_from_slice(b"\\n"),
            b'"' if openmetrics => out.extend_from_slice(b"\\\""),
            b => out.push(b),
        }
    }
}

fn write_sample(
    out: &mut Vec<u8>,
    fam: FamilyView<'_>,
    suffix: Suffix,
    labels: &str,
    value: f64,
    format: Format,
) {
    out.extend_from_slice(fam.name().as_bytes());
    out.extend_from_slice(suffix.as_str().as_bytes());
    if !labels.is_empty() {
        out.push(b'{');
        if format.is_openmetrics() {
            write_om_labels(out, fam.kind(), suffix, labels);
        } else {
            out.extend_from_slice(labels.as_bytes());
        }
        out.push(b'}');
    }
    out.push(b' ');
    out.extend_from_slice(ValueBuf::default().format(value).as_bytes());
    out.push(b'\n');
}

/// OpenMetrics wants `le` and `quantile` values in canonical form (`1.0`, not `1`).
fn write_om_labels(out: &mut Vec<u8>, kind: MetricType, suffix: Suffix, labels: &str) {
    let key = match (kind, suffix) {
        (MetricType::Histogram, Suffix::Bucket) => "le=\"",
        (MetricType::Summary, Suffix::None) => "quantile=\"",
        _ => {
            out.extend_from_slice(labels.as_bytes());
            return;
        }
    };
    let Some(pos) = labels.rfind(key) else {
        out.extend_from_slice(labels.as_bytes());
        return;
    };
    let start = pos + key.len();
    let Some(len) = labels[start..].find('"') else {
        out.extend_from_slice(labels.as_bytes());
        return;
    };
    let value = &labels[start..start + len];
    out.extend_from_slice(&labels.as_bytes()[..start + len]);
    if !value.contains(['.', 'e', 'E', 'I', 'N']) {
        out.extend_from_slice(b".0");
    }
    out.extend_from_slice(&labels.as_bytes()[start + len..]);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample_sinks() -> (Sink, Sink) {
        let mut a = Sink::new();
        a.family(
            "node_cpu_seconds_total",
            "Seconds the CPUs spent in each mode.",
            MetricType::Counter,
        )
        .sample(&[("cpu", "0"), ("mode", "idle")], 10.5);
        a.family(
            "node_vmstat_pgfault",
            "/proc/vmstat information field pgfault.",
            MetricType::Untyped,
        )
        .sample(&[], 7.0);
        a.family(
            "req_seconds",
            "A \"quoted\" help\nwith a newline and \\.",
            MetricType::Histogram,
        )
        .histogram(&[("svc", "a")], &[(0.5, 1), (1.0, 2)], 1.25, 3);
        a.family("lat", "Summary.", MetricType::Summary).summary(
            &[],
            &[(0.5, 0.2), (1.0, 0.9)],
            3.0,
            10,
        );
        let mut b = Sink::new();
        b.gauge("node_load1", "1m load average.", 0.25);
        // A duplicate family from another sink: merged, duplicate series dropped.
        b.family("node_cpu_seconds_total", "Other help.", MetricType::Counter)
            .sample(&[("cpu", "0"), ("mode", "idle")], 99.0)
            .sample(&[("cpu", "1"), ("mode", "idle")], 3.0);
        // Same name, different type: dropped.
        b.family("node_load1", "Conflicting.", MetricType::Counter)
            .sample(&[("x", "y")], 1.0);
        (a, b)
    }

    #[test]
    fn text_format() {
        let (a, b) = sample_sinks();
        let mut out = Vec::new();
        encode([&a, &b], Format::Text, &mut out);
        let want = "\
# HELP lat Summary.
# TYPE lat summary
lat{quantile=\"0.5\"} 0.2
lat{quantile=\"1\"} 0.9
lat_sum 3
lat_count 10
# HELP node_cpu_seconds_total Seconds the CPUs spent in each mode.
# TYPE node_cpu_seconds_total counter
node_cpu_seconds_total{cpu=\"0\",mode=\"idle\"} 10.5
node_cpu_seconds_total{cpu=\"1\",mode=\"idle\"} 3
# HELP node_load1 1m load average.
# TYPE node_load1 gauge
node_load1 0.25
# HELP node_vmstat_pgfault /proc/vmstat information field pgfault.
# TYPE node_vmstat_pgfault untyped
node_vmstat_pgfault 7
# HELP req_seconds A \"quoted\" help\\nwith a newline and \\\\.
# TYPE req_seconds histogram
req_seconds_bucket{svc=\"a\",le=\"0.5\"} 1
req_seconds_bucket{svc=\"a\",le=\"1\"} 2
req_seconds_bucket{svc=\"a\",le=\"+Inf\"} 3
req_seconds_sum{svc=\"a\"} 1.25
req_seconds_count{svc=\"a\"} 3
";
        assert_eq!(String::from_utf8(out).expect("utf8"), want);
    }

    #[test]
    fn openmetrics_format() {
        let (a, b) = sample_sinks();
        let mut out = Vec::new();
        encode([&a, &b], Format::OpenMetrics1, &mut out);
        let want = "\
# HELP lat Summary.
# TYPE lat summary
lat{quantile=\"0.5\"} 0.2
lat{quantile=\"1.0\"} 0.9
lat_sum 3
lat_count 10
# HELP node_cpu_seconds Seconds the CPUs spent in each mode.
# TYPE node_cpu_seconds counter
node_cpu_seconds_total{cpu=\"0\",mode=\"idle\"} 10.5
node_cpu_seconds_total{cpu=\"1\",mode=\"idle\"} 3
# HELP node_load1 1m load average.
# TYPE node_load1 gauge
node_load1 0.25
# HELP node_vmstat_pgfault /proc/vmstat information field pgfault.
# TYPE node_vmstat_pgfault unknown
node_vmstat_pgfault 7
# HELP req_seconds A \\\"quoted\\\" help\\nwith a newline and \\\\.
# TYPE req_seconds histogram
req_seconds_bucket{svc=\"a\",le=\"0.5\"} 1
req_seconds_bucket{svc=\"a\",le=\"1.0\"} 2
req_seconds_bucket{svc=\"a\",le=\"+Inf\"} 3
req_seconds_sum{svc=\"a\"} 1.25
req_seconds_count{svc=\"a\"} 3
# EOF
";
        assert_eq!(String::from_utf8(out).expect("utf8"), want);
    }
}
