//! [`Sink`]: the typed, allocation-light buffer that collectors write families and samples into.
//!
//! Names, help texts and rendered label sets (`a="x",b="y"`, already escaped) live in one
//! `String`; families and samples are small fixed-size records pointing into it. Encoders walk
//! the records and copy bytes, so there is no per-sample allocation on the scrape path.

use std::fmt::Write as _;

/// The type of a metric family, as in the exposition formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MetricType {
    /// A monotonically increasing counter.
    Counter,
    /// A value that can go up and down.
    Gauge,
    /// No type information (node_exporter's `vmstat` and `netstat` fields).
    Untyped,
    /// A histogram (`_bucket{le}`, `_sum`, `_count`).
    Histogram,
    /// A summary (`{quantile}`, `_sum`, `_count`).
    Summary,
}

impl MetricType {
    /// The type's name in the Prometheus text format 0.0.4.
    pub fn text_name(self) -> &'static str {
        match self {
            Self::Counter => "counter",
            Self::Gauge => "gauge",
            Self::Untyped => "untyped",
            Self::Histogram => "histogram",
            Self::Summary => "summary",
        }
    }
}

/// Which part of a family a sample is: the plain series or a histogram/summary part.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Suffix {
    /// The family name itself.
    None,
    /// `<name>_bucket`.
    Bucket,
    /// `<name>_sum`.
    Sum,
    /// `<name>_count`.
    Count,
}

impl Suffix {
    /// The text appended to the family name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::None => "",
            Self::Bucket => "_bucket",
            Self::Sum => "_sum",
            Self::Count => "_count",
        }
    }
}

#[derive(Debug, Clone, Copy, Default)]
struct Span {
    start: u32,
    end: u32,
}

#[derive(Debug, Clone)]
struct FamilyRec {
    name: Span,
    help: Span,
    kind: MetricType,
    first: u32,
    end: u32,
}

#[derive(Debug, Clone, Copy)]
struct SampleRec {
    suffix: Suffix,
    labels: Span,
    value: f64,
}

/// Families and samples written by one collector during one collection.
#[derive(Debug, Default, Clone)]
pub struct Sink {
    buf: String,
    families: Vec<FamilyRec>,
    samples: Vec<SampleRec>,
}

/// Writes samples into the family most recently started on a [`Sink`].
pub struct FamilyWriter<'a> {
    sink: &'a mut Sink,
}

/// Appends `value` to `out` the way Prometheus clients do: integers without a fraction,
/// `NaN`, `+Inf`, `-Inf`, otherwise the shortest representation that round-trips.
pub fn write_value(out: &mut String, value: f64) {
    let mut b = ValueBuf::default();
    out.push_str(b.format(value));
}

/// Stack buffers for [`write_value`]'s formatting, reusable across values.
#[derive(Default)]
pub struct ValueBuf {
    int: itoa::Buffer,
    float: ryu::Buffer,
}

impl ValueBuf {
    /// Formats `value` (see [`write_value`]).
    pub fn format(&mut self, value: f64) -> &str {
        if value.is_nan() {
            "NaN"
        } else if value.is_infinite() {
            if value > 0.0 { "+Inf" } else { "-Inf" }
        } else if value == value.trunc() && value.abs() < 9.0e18 {
            self.int.format(value as i64)
        } else {
            self.float.format_finite(value)
        }
    }
}

/// Appends a label value escaped for both text formats (`\\`, `\"`, `\n`).
pub fn escape_label_value(out: &mut String, value: &str) {
    if !value.contains(['\\', '"', '\n']) {
        out.push_str(value);
        return;
    }
    for c in value.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
}

impl Sink {
    /// An empty sink.
    pub fn new() -> Self {
        Self::default()
    }

    /// An empty sink with room for roughly the given amount of data, so that a collector's
    /// steady-state collection does not reallocate.
    pub fn with_capacity(bytes: usize, families: usize, samples: usize) -> Self {
        Self {
            buf: String::with_capacity(bytes),
            families: Vec::with_capacity(families),
            samples: Vec::with_capacity(samples),
        }
    }

    /// (bytes, families, samples) held, used to size the next collection's sink.
    pub fn sizes(&self) -> (usize, usize, usize) {
        (self.buf.len(), self.families.len(), self.samples.len())
    }

    fn push_str(&mut self, s: &str) -> Span {
        let start = self.buf.len() as u32;
        self.buf.push_str(s);
        Span {
            start,
            end: self.buf.len() as u32,
        }
    }

    fn push_parts(&mut self, parts: &[&str]) -> Span {
        let start = self.buf.len() as u32;
        for p in parts {
            self.buf.push_str(p);
        }
        Span {
            start,
            end: self.buf.len() as u32,
        }
    }

    fn text(&self, span: Span) -> &str {
        &self.buf[span.start as usize..span.end as usize]
    }

    /// Starts a family. Samples written through the returned writer belong to it.
    pub fn family(&mut self, name: &str, help: &str, kind: MetricType) -> FamilyWriter<'_> {
        let name = self.push_str(name);
        let help = self.push_str(help);
        self.start(name, help, kind)
    }

    /// Starts a family whose name and help are concatenated from parts (no allocation), e.g.
    /// `&["node_memory_", key, "_bytes"]`.
    pub fn family_parts(
        &mut self,
        name: &[&str],
        help: &[&str],
        kind: MetricType,
    ) -> FamilyWriter<'_> {
        let name = self.push_parts(name);
        let help = self.push_parts(help);
        self.start(name, help, kind)
    }

    fn start(&mut self, name: Span, help: Span, kind: MetricType) -> FamilyWriter<'_> {
        let first = self.samples.len() as u32;
        self.families.push(FamilyRec {
            name,
            help,
            kind,
            first,
            end: first,
        });
        FamilyWriter { sink: self }
    }

    /// Shortcut: a family with one unlabelled sample.
    pub fn single(&mut self, name: &str, help: &str, kind: MetricType, value: f64) {
        self.family(name, help, kind).sample(&[], value);
    }

    /// Shortcut: a gauge family with one unlabelled sample.
    pub fn gauge(&mut self, name: &str, help: &str, value: f64) {
        self.single(name, help, MetricType::Gauge, value);
    }

    /// Shortcut: a counter family with one unlabelled sample.
    pub fn counter(&mut self, name: &str, help: &str, value: f64) {
        self.single(name, help, MetricType::Counter, value);
    }

    /// Appends every family of `other` (used to merge a sub-collection).
    pub fn append(&mut self, other: &Sink) {
        for fam in other.families() {
            let mut w = self.family(fam.name(), fam.help(), fam.kind());
            for s in fam.samples() {
                w.raw_sample(s.suffix, s.labels, s.value);
            }
        }
    }

    /// True when nothing was written.
    pub fn is_empty(&self) -> bool {
        self.families.is_empty()
    }

    /// The families written, in order.
    pub fn families(&self) -> impl ExactSizeIterator<Item = FamilyView<'_>> + '_ {
        self.families
            .iter()
            .map(move |f| FamilyView { sink: self, rec: f })
    }

    /// Number of samples written.
    pub fn sample_count(&self) -> usize {
        self.samples.len()
    }
}

impl FamilyWriter<'_> {
    fn push_labels(&mut self, labels: &[(&str, &str)], extra: Option<(&str, f64)>) -> Span {
        let buf = &mut self.sink.buf;
        let start = buf.len() as u32;
        for (i, (k, v)) in labels.iter().enumerate() {
            if i > 0 {
                buf.push(',');
            }
            buf.push_str(k);
            buf.push_str("=\"");
            escape_label_value(buf, v);
            buf.push('"');
        }
        if let Some((k, v)) = extra {
            if !labels.is_empty() {
                buf.push(',');
            }
            buf.push_str(k);
            buf.push_str("=\"");
            write_value(buf, v);
            buf.push('"');
        }
        Span {
            start,
            end: buf.len() as u32,
        }
    }

    fn push_sample(&mut self, suffix: Suffix, labels: Span, value: f64) {
        self.sink.samples.push(SampleRec {
            suffix,
            labels,
            value,
        });
        if let Some(f) = self.sink.families.last_mut() {
            f.end = self.sink.samples.len() as u32;
        }
    }

    /// One sample with the given labels (names must be valid label names; values are escaped).
    pub fn sample(&mut self, labels: &[(&str, &str)], value: f64) -> &mut Self {
        let span = self.push_labels(labels, None);
        self.push_sample(Suffix::None, span, value);
        self
    }

    /// One sample whose label set is already rendered (`a="x",b="y"`, escaped).
    pub fn raw_sample(&mut self, suffix: Suffix, rendered_labels: &str, value: f64) -> &mut Self {
        let span = self.sink.push_str(rendered_labels);
        self.push_sample(suffix, span, value);
        self
    }

    /// A histogram: cumulative `(upper_bound, count)` buckets (the `+Inf` bucket is added from
    /// `count` when absent), `_sum` and `_count`.
    pub fn histogram(
        &mut self,
        labels: &[(&str, &str)],
        buckets: &[(f64, u64)],
        sum: f64,
        count: u64,
    ) -> &mut Self {
        for &(le, n) in buckets {
            let span = self.push_labels(labels, Some(("le", le)));
            self.push_sample(Suffix::Bucket, span, n as f64);
        }
        if buckets.last().is_none_or(|(le, _)| *le != f64::INFINITY) {
            let span = self.push_labels(labels, Some(("le", f64::INFINITY)));
            self.push_sample(Suffix::Bucket, span, count as f64);
        }
        let span = self.push_labels(labels, None);
        self.push_sample(Suffix::Sum, span, sum);
        self.push_sample(Suffix::Count, span, count as f64);
        self
    }

    /// A summary: `(quantile, value)` pairs, `_sum` and `_count`.
    pub fn summary(
        &mut self,
        labels: &[(&str, &str)],
        quantiles: &[(f64, f64)],
        sum: f64,
        count: u64,
    ) -> &mut Self {
        for &(q, v) in quantiles {
            let span = self.push_labels(labels, Some(("quantile", q)));
            self.push_sample(Suffix::None, span, v);
        }
        let span = self.push_labels(labels, None);
        self.push_sample(Suffix::Sum, span, sum);
        self.push_sample(Suffix::Count, span, count as f64);
        self
    }
}

/// Read access to one family of a [`Sink`].
#[derive(Clone, Copy)]
pub struct FamilyView<'a> {
    sink: &'a Sink,
    rec: &'a FamilyRec,
}

/// Read access to one sample.
#[derive(Debug, Clone, Copy)]
pub struct SampleView<'a> {
    /// Which part of the family.
    pub suffix: Suffix,
    /// The rendered, escaped label set without braces (`a="x",b="y"`), empty for none.
    pub labels: &'a str,
    /// The value.
    pub value: f64,
}

impl<'a> FamilyView<'a> {
    /// The family name (for counters, including `_total`).
    pub fn name(&self) -> &'a str {
        self.sink.text(self.rec.name)
    }

    /// The help text, unescaped.
    pub fn help(&self) -> &'a str {
        self.sink.text(self.rec.help)
    }

    /// The family's type.
    pub fn kind(&self) -> MetricType {
        self.rec.kind
    }

    /// The family's samples in the order written.
    pub fn samples(&self) -> impl ExactSizeIterator<Item = SampleView<'a>> + 'a {
        let sink = self.sink;
        sink.samples[self.rec.first as usize..self.rec.end as usize]
            .iter()
            .map(move |s| SampleView {
                suffix: s.suffix,
                labels: sink.text(s.labels),
                value: s.value,
            })
    }

    /// Number of samples.
    pub fn len(&self) -> usize {
        (self.rec.end - self.rec.first) as usize
    }

    /// True when the family has no samples.
    pub fn is_empty(&self) -> bool {
        self.rec.end == self.rec.first
    }
}

impl std::fmt::Debug for FamilyView<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut s = String::new();
        for sample in self.samples() {
            let _ = write!(
                s,
                "{}{}{{{}}} {}; ",
                self.name(),
                sample.suffix.as_str(),
                sample.labels,
                sample.value
            );
        }
        f.debug_struct("Family")
            .field("name", &self.name())
            .field("kind", &self.kind())
            .field("samples", &s)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_are_formatted_like_prometheus_clients() {
        let cases = [
            (0.0, "0"),
            (42.0, "42"),
            (-3.0, "-3"),
            (0.25, "0.25"),
            (1e15, "1000000000000000"),
            (18446744073709551615.0, "1.8446744073709552e19"),
            (1.5e-7, "1.5e-7"),
            (f64::NAN, "NaN"),
            (f64::INFINITY, "+Inf"),
            (f64::NEG_INFINITY, "-Inf"),
        ];
        for (v, want) in cases {
            let mut s = String::new();
            write_value(&mut s, v);
            assert_eq!(s, want, "formatting {v}");
        }
    }

    #[test]
    fn label_values_are_escaped() {
        let mut s = String::new();
        escape_label_value(&mut s, "a\\b\"c\nd");
        assert_eq!(s, r#"a\\b\"c\nd"#);
    }

    #[test]
    fn families_and_samples_round_trip() {
        let mut sink = Sink::new();
        sink.family("node_cpu_seconds_total", "Seconds.", MetricType::Counter)
            .sample(&[("cpu", "0"), ("mode", "idle")], 12.5)
            .sample(&[("cpu", "0"), ("mode", "user")], 3.0);
        sink.gauge("node_load1", "Load.", 0.5);
        sink.family("h", "Hist.", MetricType::Histogram).histogram(
            &[("x", "y")],
            &[(0.5, 1), (1.0, 3)],
            2.5,
            4,
        );
        let fams: Vec<_> = sink.families().collect();
        assert_eq!(fams.len(), 3);
        assert_eq!(fams[0].name(), "node_cpu_seconds_total");
        let s: Vec<_> = fams[0]
            .samples()
            .map(|s| (s.labels.to_string(), s.value))
            .collect();
        assert_eq!(
            s,
            vec![
                (r#"cpu="0",mode="idle""#.to_string(), 12.5),
                (r#"cpu="0",mode="user""#.to_string(), 3.0)
            ]
        );
        assert_eq!(
            fams[1].samples().next().map(|s| (s.labels, s.value)),
            Some(("", 0.5))
        );
        let h: Vec<_> = fams[2]
            .samples()
            .map(|s| (s.suffix.as_str(), s.labels.to_string(), s.value))
            .collect();
        assert_eq!(
            h,
            vec![
                ("_bucket", r#"x="y",le="0.5""#.to_string(), 1.0),
                ("_bucket", r#"x="y",le="1""#.to_string(), 3.0),
                ("_bucket", r#"x="y",le="+Inf""#.to_string(), 4.0),
                ("_sum", r#"x="y""#.to_string(), 2.5),
                ("_count", r#"x="y""#.to_string(), 4.0),
            ]
        );
    }
}
