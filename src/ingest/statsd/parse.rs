//! The StatsD / DogStatsD line parser: splits a datagram into lines and parses one line into a
//! zero-copy [`Line`] (name, tags, samples) or a [`LineError`] with a stable `reason`.
//!
//! Wire format (Etsy StatsD `docs/metric_types.md`, DogStatsD "Datagram Format" v1.3):
//! `<name>:<value>|<type>[|@<rate>][|#<k>:<v>,...][|c:<container id>][|T<unix seconds>]`,
//! types `c` (counter), `g` (gauge, `+`/`-` prefix = relative), `ms` (timer), `h` (histogram),
//! `d` (distribution). Also accepted, with the semantics of statsd_exporter's `pkg/line`:
//! - several samples of one name on one line, `name:1|c:2|ms` (not combined with `|#`), and
//!   DogStatsD multi-values `name:1:2:3|d` (observer types only, sharing one suffix);
//! - tags in the name: InfluxDB `name,k=v,k2=v2`, Librato `name#k=v`, SignalFX `name[k=v]rest`
//!   (brackets take precedence); name tags and `|#` tags on one line are refused;
//! - a malformed single tag (`#novalue`, `k=`, `=v`) is dropped and counted in
//!   [`Line::tag_errors`] while the line is kept, like statsd_exporter does;
//! - unknown `|...` extension fields are ignored (forward compatibility with newer DogStatsD
//!   fields such as `card:`); a malformed `c:` container id or `T` timestamp refuses the line.
//!
//! Deliberate differences from statsd_exporter (each refuses a line it would half-accept):
//! an unparsable or out-of-range sample rate is `malformed_sample_rate` (statsd_exporter counts
//! it and uses rate 1); non-finite values (`NaN`, `inf`) are `malformed_value`; a SignalFX name
//! with an unbalanced bracket is `malformed_tag` (statsd_exporter keeps the raw name).
//!
//! Value semantics for consumers (same as statsd_exporter): a counter adds
//! [`Sample::counter_increment`] (`value / rate`); a gauge sets `value`, or adds it when
//! [`Sample::relative`]; observer types record [`Sample::observed_value`] (timers converted from
//! milliseconds to seconds) [`Sample::observation_count`] times (`floor(1 / rate)`).

use std::borrow::Cow;

/// Longest line accepted by [`parse_line`], in bytes.
pub const DEFAULT_MAX_LINE_BYTES: usize = 8192;

/// Cap of [`Sample::observation_count`].
pub const MAX_OBSERVATIONS_PER_SAMPLE: u64 = 1_000_000;

/// Most `|`-separated components in one sample (value, type and six extensions), as in
/// statsd_exporter.
const MAX_COMPONENTS: usize = 8;

/// The StatsD metric type of a sample.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Kind {
    /// `c`.
    Counter,
    /// `g`.
    Gauge,
    /// `ms`: a duration in milliseconds.
    Timer,
    /// `h`.
    Histogram,
    /// `d` (DogStatsD distribution).
    Distribution,
}

impl Kind {
    /// Every kind.
    pub const ALL: [Kind; 5] = [
        Self::Counter,
        Self::Gauge,
        Self::Timer,
        Self::Histogram,
        Self::Distribution,
    ];

    /// The type code on the wire (`c`, `g`, `ms`, `h`, `d`).
    pub fn code(self) -> &'static str {
        match self {
            Self::Counter => "c",
            Self::Gauge => "g",
            Self::Timer => "ms",
            Self::Histogram => "h",
            Self::Distribution => "d",
        }
    }

    fn from_code(code: &str) -> Result<Self, LineError> {
        Ok(match code {
            "c" => Self::Counter,
            "g" => Self::Gauge,
            "ms" => Self::Timer,
            "h" => Self::Histogram,
            "d" => Self::Distribution,
            "s" => return Err(LineError::UnsupportedType),
            _ => return Err(LineError::UnknownType),
        })
    }

    /// True for the types that record observations (`ms`, `h`, `d`).
    pub fn is_observer(self) -> bool {
        matches!(self, Self::Timer | Self::Histogram | Self::Distribution)
    }
}

/// One value of a line, with the type and extensions that apply to it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Sample {
    /// The type.
    pub kind: Kind,
    /// The value as sent (finite; for a relative gauge, the signed delta).
    pub value: f64,
    /// A gauge value with a leading `+` or `-`: add instead of set (false for other types).
    pub relative: bool,
    /// The `@rate` sample rate, in (0, 1]; 1 when absent (`@0` also means 1, as in
    /// statsd_exporter).
    pub sample_rate: f64,
    /// The DogStatsD `|T<seconds>` timestamp (validated, not used by statsd_exporter either).
    pub timestamp: Option<i64>,
}

impl Sample {
    /// What a counter adds: the value scaled up by the sample rate.
    pub fn counter_increment(&self) -> f64 {
        self.value / self.sample_rate
    }

    /// The observed value in the unit Prometheus expects: timers are sent in milliseconds and
    /// recorded in seconds; `h` and `d` values are recorded as sent.
    pub fn observed_value(&self) -> f64 {
        match self.kind {
            Kind::Timer => self.value / 1000.0,
            _ => self.value,
        }
    }

    /// How many observations a sampled observer value stands for: `floor(1 / rate)`, at most
    /// [`MAX_OBSERVATIONS_PER_SAMPLE`] (so `@1e-300` cannot overflow counts).
    pub fn observation_count(&self) -> u64 {
        ((1.0 / self.sample_rate).floor() as u64).min(MAX_OBSERVATIONS_PER_SAMPLE)
    }
}

/// Why a line was refused. [`LineError::reason`] is the `result` label of
/// `sonde_statsd_lines_total`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum LineError {
    /// Longer than the configured maximum.
    #[error("line too long")]
    LineTooLong,
    /// Not UTF-8, no `:`, no `|` after the value, an empty `|` component, or too many
    /// components.
    #[error("malformed line")]
    MalformedLine,
    /// The metric name (without its tags) is empty.
    #[error("empty metric name")]
    EmptyName,
    /// The value is not a finite number.
    #[error("malformed value")]
    MalformedValue,
    /// A counter with a negative value.
    #[error("negative counter value")]
    NegativeCounter,
    /// The `@` sample rate is not a number in [0, 1].
    #[error("malformed sample rate")]
    MalformedSampleRate,
    /// The type is not one of `c`, `g`, `ms`, `h`, `d`, `s`.
    #[error("unknown metric type")]
    UnknownType,
    /// A StatsD set (`s`), which has no Prometheus equivalent.
    #[error("sets are not supported")]
    UnsupportedType,
    /// DogStatsD multi-values (`name:1:2|c`) with a type other than `ms`, `h`, `d`.
    #[error("multiple values are only allowed for ms, h and d")]
    MultiValueType,
    /// Name tags (InfluxDB, Librato, SignalFX) together with DogStatsD `|#` tags.
    #[error("mixed tagging styles")]
    MixedTagStyles,
    /// SignalFX tags with an unbalanced `[` or `]`.
    #[error("malformed tag section")]
    MalformedTag,
    /// A `|c` component that is not `c:<container id>`.
    #[error("malformed container id")]
    MalformedContainerId,
    /// A `|T` component that is not `T<integer>`.
    #[error("malformed timestamp")]
    MalformedTimestamp,
}

impl LineError {
    /// The stable `result` label value for `sonde_statsd_lines_total{result}`.
    pub fn reason(&self) -> &'static str {
        match self {
            Self::LineTooLong => "line_too_long",
            Self::MalformedLine => "malformed_line",
            Self::EmptyName => "empty_name",
            Self::MalformedValue => "malformed_value",
            Self::NegativeCounter => "negative_counter",
            Self::MalformedSampleRate => "malformed_sample_rate",
            Self::UnknownType => "unknown_type",
            Self::UnsupportedType => "unsupported_type",
            Self::MultiValueType => "invalid_multi_value_type",
            Self::MixedTagStyles => "mixed_tag_styles",
            Self::MalformedTag => "malformed_tag",
            Self::MalformedContainerId => "malformed_container_id",
            Self::MalformedTimestamp => "malformed_timestamp",
        }
    }

    /// Every variant, so the listener can pre-create each `result` series at 0.
    pub const ALL: [LineError; 13] = [
        Self::LineTooLong,
        Self::MalformedLine,
        Self::EmptyName,
        Self::MalformedValue,
        Self::NegativeCounter,
        Self::MalformedSampleRate,
        Self::UnknownType,
        Self::UnsupportedType,
        Self::MultiValueType,
        Self::MixedTagStyles,
        Self::MalformedTag,
        Self::MalformedContainerId,
        Self::MalformedTimestamp,
    ];
}

/// Where the tags embedded in a metric name came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NameTagStyle {
    /// `name,k=v,k2=v2`.
    InfluxDb,
    /// `name#k=v,k2=v2`.
    Librato,
    /// `name[k=v,k2=v2]rest`.
    SignalFx,
}

/// One tag (label) of a line, as sent: the key is not sanitised yet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tag<'a> {
    /// The key.
    pub key: &'a str,
    /// The value.
    pub value: &'a str,
}

/// The tags of a line: the name's tag section and the DogStatsD extension fields (`#` tags and
/// the `c:` container id, yielded as `container_id`). Iterating yields only well-formed tags.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Tags<'a> {
    name: Option<(NameTagStyle, &'a str)>,
    ext: &'a str,
}

impl<'a> Tags<'a> {
    /// The style of the name's tags, if it had any.
    pub fn name_style(&self) -> Option<NameTagStyle> {
        self.name.map(|(s, _)| s)
    }

    /// The well-formed tags, name tags first, in the order sent.
    pub fn iter(&self) -> impl Iterator<Item = Tag<'a>> + 'a {
        self.raw_iter().filter_map(Result::ok)
    }

    fn raw_iter(&self) -> TagIter<'a> {
        TagIter {
            list: self.name.map(|(_, s)| s).filter(|s| !s.is_empty()),
            sep: b'=',
            ext: self.ext,
        }
    }
}

/// Walks tag lists; `Err(())` is a malformed tag (counted, then skipped).
struct TagIter<'a> {
    /// The rest of the current `,`-separated list (None when exhausted).
    list: Option<&'a str>,
    sep: u8,
    /// The rest of the `|`-separated extension fields.
    ext: &'a str,
}

impl<'a> Iterator for TagIter<'a> {
    type Item = Result<Tag<'a>, ()>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            if let Some(rest) = self.list {
                let (item, next) = match rest.find(',') {
                    // A trailing comma ends the list without an empty tag (statsd_exporter).
                    Some(i) => (&rest[..i], Some(&rest[i + 1..]).filter(|s| !s.is_empty())),
                    None => (rest, None),
                };
                self.list = next;
                let item = if self.sep == b':' {
                    item.strip_prefix('#').unwrap_or(item)
                } else {
                    item
                };
                return Some(split_tag(item, self.sep));
            }
            if self.ext.is_empty() {
                return None;
            }
            let (comp, rest) = self.ext.split_once('|').unwrap_or((self.ext, ""));
            self.ext = rest;
            if let Some(tags) = comp.strip_prefix('#') {
                self.list = Some(tags).filter(|s| !s.is_empty());
                self.sep = b':';
            } else if let Some(id) = comp.strip_prefix("c:") {
                return Some(Ok(Tag {
                    key: "container_id",
                    value: id,
                }));
            }
        }
    }
}

fn split_tag(item: &str, sep: u8) -> Result<Tag<'_>, ()> {
    let i = item.bytes().position(|b| b == sep).ok_or(())?;
    let (key, value) = (&item[..i], &item[i + 1..]);
    if key.is_empty() || value.is_empty() {
        return Err(());
    }
    Ok(Tag { key, value })
}

/// How the part after the name holds its samples.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Body<'a> {
    /// The common case: one value, already parsed.
    One(Sample),
    /// Several `:`-separated values sharing one parsed suffix (`1|c|@0.5`, `1:2:3|d|#a:b`).
    Shared {
        values: &'a str,
        kind: Kind,
        sample_rate: f64,
        timestamp: Option<i64>,
    },
    /// `1|c:2|ms|@0.1`: each `:`-separated chunk is a full sample.
    Chunks(&'a str),
}

/// One parsed line; borrows the input.
#[derive(Debug, Clone, PartialEq)]
pub struct Line<'a> {
    /// The metric name without its tag section (owned only for a SignalFX name with text after
    /// the `]`).
    pub name: Cow<'a, str>,
    /// The tags.
    pub tags: Tags<'a>,
    /// Malformed tags that were dropped (count them in `sonde_statsd_tag_errors_total`).
    pub tag_errors: u32,
    body: Body<'a>,
}

impl<'a> Line<'a> {
    /// The samples, in the order sent (at least one).
    pub fn samples(&self) -> Samples<'a> {
        match self.body {
            Body::One(sample) => Samples {
                one: Some(sample),
                rest: None,
                shared: None,
            },
            Body::Shared {
                values,
                kind,
                sample_rate,
                timestamp,
            } => Samples {
                one: None,
                rest: Some(values),
                shared: Some((kind, sample_rate, timestamp)),
            },
            Body::Chunks(body) => Samples {
                one: None,
                rest: Some(body),
                shared: None,
            },
        }
    }
}

/// Iterator over a [`Line`]'s samples (already validated by [`parse_line`]).
#[derive(Debug, Clone)]
pub struct Samples<'a> {
    one: Option<Sample>,
    rest: Option<&'a str>,
    shared: Option<(Kind, f64, Option<i64>)>,
}

impl Iterator for Samples<'_> {
    type Item = Sample;

    fn next(&mut self) -> Option<Sample> {
        if let Some(s) = self.one.take() {
            return Some(s);
        }
        loop {
            let rest = self.rest?;
            let (item, next) = match rest.split_once(':') {
                Some((a, b)) => (a, Some(b)),
                None => (rest, None),
            };
            self.rest = next;
            let parsed = match self.shared {
                Some((kind, sample_rate, timestamp)) => {
                    parse_value(item, kind).map(|(value, relative)| Sample {
                        kind,
                        value,
                        relative,
                        sample_rate,
                        timestamp,
                    })
                }
                None => parse_chunk(item),
            };
            // parse_line validated every sample; an error cannot happen here.
            if let Ok(s) = parsed {
                return Some(s);
            }
        }
    }
}

/// Splits a datagram into lines: `\n`-separated, a trailing `\r` removed, empty lines skipped.
pub fn split_packet(packet: &[u8]) -> impl Iterator<Item = &[u8]> {
    packet
        .split(|&b| b == b'\n')
        .map(|l| l.strip_suffix(b"\r").unwrap_or(l))
        .filter(|l| !l.is_empty())
}

/// Parses one line (no newline) of at most [`DEFAULT_MAX_LINE_BYTES`].
pub fn parse_line(line: &[u8]) -> Result<Line<'_>, LineError> {
    parse_line_limited(line, DEFAULT_MAX_LINE_BYTES)
}

/// Parses one line (no newline) of at most `max_line_bytes`.
pub fn parse_line_limited(line: &[u8], max_line_bytes: usize) -> Result<Line<'_>, LineError> {
    if line.len() > max_line_bytes {
        return Err(LineError::LineTooLong);
    }
    let line = std::str::from_utf8(line).map_err(|_| LineError::MalformedLine)?;
    let (raw_name, body) = line.split_once(':').ok_or(LineError::MalformedLine)?;
    if raw_name.is_empty() {
        return Err(LineError::MalformedLine);
    }
    let (name, name_tags) = split_name(raw_name)?;
    if name.is_empty() {
        return Err(LineError::EmptyName);
    }
    let dog_tags = body.contains("|#");
    if dog_tags && name_tags.is_some() {
        return Err(LineError::MixedTagStyles);
    }
    let (values, suffix) = body.split_once('|').ok_or(LineError::MalformedLine)?;
    let (body, ext) = if values.contains(':') {
        // DogStatsD multi-values share the suffix; only observer types may use them.
        let (kind, sample_rate, timestamp) = parse_suffix(suffix)?;
        if !kind.is_observer() {
            return Err(LineError::MultiValueType);
        }
        for v in values.split(':') {
            parse_value(v, kind)?;
        }
        (
            Body::Shared {
                values,
                kind,
                sample_rate,
                timestamp,
            },
            suffix,
        )
    } else if !dog_tags && is_chunked(body) {
        for chunk in body.split(':') {
            parse_chunk(chunk)?;
        }
        (Body::Chunks(body), "")
    } else {
        let (kind, sample_rate, timestamp) = parse_suffix(suffix)?;
        let (value, relative) = parse_value(values, kind)?;
        (
            Body::One(Sample {
                kind,
                value,
                relative,
                sample_rate,
                timestamp,
            }),
            suffix,
        )
    };
    let tags = Tags {
        name: name_tags,
        ext,
    };
    let tag_errors = tags.raw_iter().filter(Result::is_err).count() as u32;
    Ok(Line {
        name,
        tags,
        tag_errors,
        body,
    })
}

/// Separates the name from its InfluxDB/Librato/SignalFX tag section.
#[allow(clippy::type_complexity)]
fn split_name(raw: &str) -> Result<(Cow<'_, str>, Option<(NameTagStyle, &str)>), LineError> {
    match (raw.find('['), raw.find(']')) {
        (Some(open), Some(close)) if open < close => {
            let tags = &raw[open + 1..close];
            let (head, tail) = (&raw[..open], &raw[close + 1..]);
            let name = if tail.is_empty() {
                Cow::Borrowed(head)
            } else {
                Cow::Owned([head, tail].concat())
            };
            return Ok((name, Some((NameTagStyle::SignalFx, tags))));
        }
        (None, None) => {}
        _ => return Err(LineError::MalformedTag),
    }
    match raw.find([',', '#']) {
        Some(i) => {
            let style = if raw.as_bytes()[i] == b',' {
                NameTagStyle::InfluxDb
            } else {
                NameTagStyle::Librato
            };
            Ok((Cow::Borrowed(&raw[..i]), Some((style, &raw[i + 1..]))))
        }
        None => Ok((Cow::Borrowed(raw), None)),
    }
}

/// True when a body without `|#` is statsd_exporter's `1|c:2|ms` form: every `:`-separated
/// chunk starts with a number followed by `|`. Otherwise a `:` belongs to an extension field
/// (`c:<container id>`, `card:low`) of a single sample.
fn is_chunked(body: &str) -> bool {
    body.contains(':')
        && body.split(':').all(|chunk| {
            chunk
                .split_once('|')
                .is_some_and(|(v, _)| v.parse::<f64>().is_ok())
        })
}

/// Parses one `value|type[|ext...]` chunk.
fn parse_chunk(chunk: &str) -> Result<Sample, LineError> {
    let (value, suffix) = chunk.split_once('|').ok_or(LineError::MalformedLine)?;
    let (kind, sample_rate, timestamp) = parse_suffix(suffix)?;
    let (value, relative) = parse_value(value, kind)?;
    Ok(Sample {
        kind,
        value,
        relative,
        sample_rate,
        timestamp,
    })
}

/// Parses `type[|@rate][|#tags][|c:id][|Tts][|unknown]`. Tags are read later by [`Tags`].
fn parse_suffix(suffix: &str) -> Result<(Kind, f64, Option<i64>), LineError> {
    let mut comps = suffix.split('|');
    let kind = Kind::from_code(comps.next().unwrap_or_default())?;
    let mut sample_rate = 1.0;
    let mut timestamp = None;
    let mut n = 2;
    for comp in comps {
        n += 1;
        if n > MAX_COMPONENTS {
            return Err(LineError::MalformedLine);
        }
        let bytes = comp.as_bytes();
        match bytes.first() {
            None => return Err(LineError::MalformedLine),
            Some(b'@') => {
                let rate: f64 = comp[1..]
                    .parse()
                    .map_err(|_| LineError::MalformedSampleRate)?;
                if !(0.0..=1.0).contains(&rate) {
                    return Err(LineError::MalformedSampleRate);
                }
                sample_rate = if rate == 0.0 { 1.0 } else { rate };
            }
            // `c` or `c:` without an id; longer fields such as `card:` are unknown fields.
            Some(b'c') if comp == "c" || comp == "c:" => {
                return Err(LineError::MalformedContainerId);
            }
            Some(b'T') => {
                let ts: i64 = comp[1..]
                    .parse()
                    .map_err(|_| LineError::MalformedTimestamp)?;
                timestamp = Some(ts);
            }
            // `#` tags (read by [`Tags`]) and unknown extension fields.
            Some(_) => {}
        }
    }
    Ok((kind, sample_rate, timestamp))
}

/// Parses a value; the bool is "relative" (gauges with a sign).
fn parse_value(s: &str, kind: Kind) -> Result<(f64, bool), LineError> {
    let value: f64 = s.parse().map_err(|_| LineError::MalformedValue)?;
    if !value.is_finite() {
        return Err(LineError::MalformedValue);
    }
    let signed = s.starts_with(['+', '-']);
    match kind {
        Kind::Counter if value < 0.0 => Err(LineError::NegativeCounter),
        Kind::Gauge => Ok((value, signed)),
        _ => Ok((value, false)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// The parse result in owned, comparable form.
    #[derive(Debug, PartialEq)]
    struct Parsed {
        name: String,
        tags: Vec<(String, String)>,
        tag_errors: u32,
        samples: Vec<Sample>,
    }

    fn parse(line: &str) -> Result<Parsed, LineError> {
        parse_line(line.as_bytes()).map(|l| Parsed {
            name: l.name.to_string(),
            tags: l
                .tags
                .iter()
                .map(|t| (t.key.to_string(), t.value.to_string()))
                .collect(),
            tag_errors: l.tag_errors,
            samples: l.samples().collect(),
        })
    }

    fn s(kind: Kind, value: f64) -> Sample {
        Sample {
            kind,
            value,
            relative: false,
            sample_rate: 1.0,
            timestamp: None,
        }
    }

    fn ok(name: &str, tags: &[(&str, &str)], samples: Vec<Sample>) -> Result<Parsed, LineError> {
        Ok(Parsed {
            name: name.into(),
            tags: tags
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            tag_errors: 0,
            samples,
        })
    }

    #[test]
    fn counter() {
        assert_eq!(
            parse("hits:3|c"),
            ok("hits", &[], vec![s(Kind::Counter, 3.0)])
        );
    }

    #[test]
    fn counter_with_sample_rate_is_scaled() {
        let p = parse("hits:3|c|@0.1").expect("valid");
        assert_eq!(
            p.samples,
            vec![Sample {
                sample_rate: 0.1,
                ..s(Kind::Counter, 3.0)
            }]
        );
        assert_eq!(p.samples[0].counter_increment(), 30.0);
        let p = parse("hits:1|c|@0.25").expect("valid");
        assert_eq!(p.samples[0].counter_increment(), 4.0);
        // `@0` means "not sampled", as in statsd_exporter.
        let p = parse("hits:2|c|@0").expect("valid");
        assert_eq!(p.samples[0].sample_rate, 1.0);
        assert_eq!(p.samples[0].counter_increment(), 2.0);
    }

    #[test]
    fn gauges_absolute_and_relative() {
        assert_eq!(
            parse("temp:21.5|g"),
            ok("temp", &[], vec![s(Kind::Gauge, 21.5)])
        );
        let rel = |v| Sample {
            relative: true,
            ..s(Kind::Gauge, v)
        };
        assert_eq!(parse("temp:+4|g"), ok("temp", &[], vec![rel(4.0)]));
        assert_eq!(parse("temp:-4.5|g"), ok("temp", &[], vec![rel(-4.5)]));
        // The rate is kept but has no effect on gauges.
        let p = parse("temp:7|g|@0.5").expect("valid");
        assert_eq!(p.samples[0].value, 7.0);
    }

    #[test]
    fn timer_is_converted_to_seconds() {
        let p = parse("req.time:320|ms").expect("valid");
        assert_eq!(p.samples, vec![s(Kind::Timer, 320.0)]);
        assert_eq!(p.samples[0].observed_value(), 0.32);
        assert_eq!(p.samples[0].observation_count(), 1);
        let p = parse("req.time:320|ms|@0.1").expect("valid");
        assert_eq!(p.samples[0].observation_count(), 10);
        let p = parse("req.time:320|ms|@0.3").expect("valid");
        assert_eq!(p.samples[0].observation_count(), 3);
        let p = parse("req.time:320|ms|@1e-300").expect("valid");
        assert_eq!(
            p.samples[0].observation_count(),
            MAX_OBSERVATIONS_PER_SAMPLE
        );
    }

    #[test]
    fn histogram_and_distribution_are_recorded_as_sent() {
        let p = parse("size:512|h").expect("valid");
        assert_eq!(p.samples, vec![s(Kind::Histogram, 512.0)]);
        assert_eq!(p.samples[0].observed_value(), 512.0);
        let p = parse("size:0.25|d").expect("valid");
        assert_eq!(p.samples, vec![s(Kind::Distribution, 0.25)]);
        assert_eq!(p.samples[0].observed_value(), 0.25);
    }

    #[test]
    fn dogstatsd_multi_values_share_the_suffix() {
        let shared = |v| Sample {
            sample_rate: 0.5,
            ..s(Kind::Distribution, v)
        };
        assert_eq!(
            parse("lat:1:2.5:3|d|@0.5|#env:prod"),
            ok(
                "lat",
                &[("env", "prod")],
                vec![shared(1.0), shared(2.5), shared(3.0)]
            )
        );
        assert_eq!(parse("hits:1:2|c"), Err(LineError::MultiValueType));
        assert_eq!(parse("temp:1:2|g"), Err(LineError::MultiValueType));
        assert_eq!(parse("lat:1::3|ms"), Err(LineError::MalformedValue));
    }

    #[test]
    fn several_samples_of_one_name() {
        assert_eq!(
            parse("foo:200|ms:300|ms:5|c|@0.1:6|g"),
            ok(
                "foo",
                &[],
                vec![
                    s(Kind::Timer, 200.0),
                    s(Kind::Timer, 300.0),
                    Sample {
                        sample_rate: 0.1,
                        ..s(Kind::Counter, 5.0)
                    },
                    s(Kind::Gauge, 6.0),
                ]
            )
        );
        // `x` is no value, so this is one sample whose type is `c:x`.
        assert_eq!(parse("foo:1|c:x|c"), Err(LineError::UnknownType));
        assert_eq!(parse("foo:1|c:2|q"), Err(LineError::UnknownType));
    }

    #[test]
    fn dogstatsd_tags() {
        assert_eq!(
            parse("page.views:1|c|#env:prod,region:eu-west,url:http://x/y"),
            ok(
                "page.views",
                &[
                    ("env", "prod"),
                    ("region", "eu-west"),
                    ("url", "http://x/y")
                ],
                vec![s(Kind::Counter, 1.0)]
            )
        );
        // Each tag may carry its own `#`, and tags may come before the rate.
        let p = parse("a:1|c|#x:1,#y:2|@0.5").expect("valid");
        assert_eq!(
            p.tags,
            vec![("x".into(), "1".into()), ("y".into(), "2".into())]
        );
        assert_eq!(p.samples[0].sample_rate, 0.5);
    }

    #[test]
    fn malformed_dogstatsd_tags_are_dropped_and_counted() {
        let p = parse("a:1|c|#novalue,k:v,:v2,k3:,,x:y").expect("valid");
        assert_eq!(
            p.tags,
            vec![("k".into(), "v".into()), ("x".into(), "y".into())]
        );
        assert_eq!(p.tag_errors, 4);
        // A trailing comma is not an empty tag.
        let p = parse("a:1|c|#k:v,").expect("valid");
        assert_eq!(p.tag_errors, 0);
        assert_eq!(p.tags, vec![("k".into(), "v".into())]);
    }

    #[test]
    fn dogstatsd_container_id_and_timestamp() {
        let p = parse("a:1|c|#k:v|c:83c0a99c0a54|T1656581400").expect("valid");
        assert_eq!(
            p.tags,
            vec![
                ("k".into(), "v".into()),
                ("container_id".into(), "83c0a99c0a54".into())
            ]
        );
        assert_eq!(
            p.samples,
            vec![Sample {
                timestamp: Some(1656581400),
                ..s(Kind::Counter, 1.0)
            }]
        );
        // Without `#` tags, the `:` of the container id does not start a new sample.
        let p = parse("a:1|c|c:abc").expect("valid");
        assert_eq!(p.tags, vec![("container_id".into(), "abc".into())]);
        assert_eq!(p.samples, vec![s(Kind::Counter, 1.0)]);
        assert_eq!(parse("a:1|c|c"), Err(LineError::MalformedContainerId));
        assert_eq!(parse("a:1|c|c:"), Err(LineError::MalformedContainerId));
        assert_eq!(parse("a:1|c|T"), Err(LineError::MalformedTimestamp));
        assert_eq!(parse("a:1|c|T12x"), Err(LineError::MalformedTimestamp));
    }

    #[test]
    fn unknown_extension_fields_are_ignored() {
        assert_eq!(
            parse("a:1|c|card:low|e:it-123|cx|#k:v"),
            ok("a", &[("k", "v")], vec![s(Kind::Counter, 1.0)])
        );
    }

    #[test]
    fn influxdb_tags() {
        assert_eq!(
            parse("http.requests,method=GET,code=200:1|c"),
            ok(
                "http.requests",
                &[("method", "GET"), ("code", "200")],
                vec![s(Kind::Counter, 1.0)]
            )
        );
    }

    #[test]
    fn librato_tags() {
        assert_eq!(
            parse("http.requests#method=GET,code=200:1|c"),
            ok(
                "http.requests",
                &[("method", "GET"), ("code", "200")],
                vec![s(Kind::Counter, 1.0)]
            )
        );
    }

    #[test]
    fn signalfx_tags() {
        assert_eq!(
            parse("http[method=GET,code=200].requests:1|c"),
            ok(
                "http.requests",
                &[("method", "GET"), ("code", "200")],
                vec![s(Kind::Counter, 1.0)]
            )
        );
        let line = parse_line(b"http.requests[method=GET]:1|c").expect("valid");
        assert!(matches!(line.name, Cow::Borrowed("http.requests")));
        assert_eq!(line.tags.name_style(), Some(NameTagStyle::SignalFx));
        assert_eq!(parse("http[method=GET:1|c"), Err(LineError::MalformedTag));
        assert_eq!(parse("http]x[:1|c"), Err(LineError::MalformedTag));
    }

    #[test]
    fn malformed_name_tags_are_dropped_and_counted() {
        let p = parse("a,k=v,novalue,=x,y=:1|c").expect("valid");
        assert_eq!(p.tags, vec![("k".into(), "v".into())]);
        assert_eq!(p.tag_errors, 3);
    }

    #[test]
    fn mixed_tag_styles_are_refused() {
        assert_eq!(parse("a,k=v:1|c|#x:y"), Err(LineError::MixedTagStyles));
        assert_eq!(parse("a#k=v:1|c|#x:y"), Err(LineError::MixedTagStyles));
        assert_eq!(parse("a[k=v]:1|c|#x:y"), Err(LineError::MixedTagStyles));
    }

    #[test]
    fn malformed_lines() {
        assert_eq!(parse("nocolon"), Err(LineError::MalformedLine));
        assert_eq!(parse(":1|c"), Err(LineError::MalformedLine));
        assert_eq!(parse("a:1"), Err(LineError::MalformedLine));
        assert_eq!(parse("a:1|c||@0.1"), Err(LineError::MalformedLine));
        assert_eq!(parse("a:1|c|"), Err(LineError::MalformedLine));
        assert_eq!(parse("a:1|c|x|x|x|x|x|x|x"), Err(LineError::MalformedLine));
        assert!(parse("a:1|c|x|x|x|x|x|x").is_ok());
        assert_eq!(parse_line(b"a\xff:1|c"), Err(LineError::MalformedLine));
        assert_eq!(parse(",k=v:1|c"), Err(LineError::EmptyName));
        assert_eq!(parse("[k=v]:1|c"), Err(LineError::EmptyName));
    }

    #[test]
    fn malformed_values_and_types() {
        assert_eq!(parse("a:abc|c"), Err(LineError::MalformedValue));
        assert_eq!(parse("a:|c"), Err(LineError::MalformedValue));
        assert_eq!(parse("a:NaN|g"), Err(LineError::MalformedValue));
        assert_eq!(parse("a:inf|ms"), Err(LineError::MalformedValue));
        assert_eq!(parse("a:-1|c"), Err(LineError::NegativeCounter));
        assert_eq!(parse("a:1|x"), Err(LineError::UnknownType));
        assert_eq!(parse("a:1|"), Err(LineError::UnknownType));
        assert_eq!(parse("a:1|s"), Err(LineError::UnsupportedType));
    }

    #[test]
    fn malformed_sample_rates() {
        assert_eq!(parse("a:1|c|@"), Err(LineError::MalformedSampleRate));
        assert_eq!(parse("a:1|c|@x"), Err(LineError::MalformedSampleRate));
        assert_eq!(parse("a:1|c|@1.5"), Err(LineError::MalformedSampleRate));
        assert_eq!(parse("a:1|c|@-0.5"), Err(LineError::MalformedSampleRate));
        assert_eq!(parse("a:1|c|@NaN"), Err(LineError::MalformedSampleRate));
    }

    #[test]
    fn line_length_is_limited() {
        let long = format!("{}:1|c", "a".repeat(DEFAULT_MAX_LINE_BYTES));
        assert_eq!(parse(&long), Err(LineError::LineTooLong));
        assert_eq!(
            parse_line_limited(b"abcdef:1|c", 10).map(|l| l.name.to_string()),
            Ok("abcdef".to_string())
        );
        assert_eq!(
            parse_line_limited(b"abcdefg:1|c", 10),
            Err(LineError::LineTooLong)
        );
    }

    #[test]
    fn reasons_are_distinct_and_stable() {
        let reasons: Vec<_> = LineError::ALL.iter().map(LineError::reason).collect();
        let mut dedup = reasons.clone();
        dedup.sort_unstable();
        dedup.dedup();
        assert_eq!(dedup.len(), reasons.len());
        assert_eq!(
            LineError::MalformedSampleRate.reason(),
            "malformed_sample_rate"
        );
        assert_eq!(LineError::LineTooLong.reason(), "line_too_long");
    }

    #[test]
    fn packets_split_into_lines() {
        let packet = b"a:1|c\n\nb:2|g\r\nc:3|ms\n";
        let lines: Vec<_> = split_packet(packet).collect();
        assert_eq!(lines, vec![&b"a:1|c"[..], b"b:2|g", b"c:3|ms"]);
        // One bad line does not stop the rest of the packet.
        let results: Vec<_> = split_packet(b"a:1|c\nbad\nb:2|g")
            .map(|l| parse_line(l).map(|l| l.name.into_owned()))
            .collect();
        assert_eq!(
            results,
            vec![
                Ok("a".to_string()),
                Err(LineError::MalformedLine),
                Ok("b".to_string())
            ]
        );
    }

    #[derive(Debug, Clone, Copy)]
    enum Style {
        None,
        Dog,
        Influx,
        Librato,
        SignalFx,
    }

    fn render(name: &str, style: Style, tags: &[(String, String)], sample: &Sample) -> String {
        let joined = |sep: &str| {
            tags.iter()
                .map(|(k, v)| format!("{k}{sep}{v}"))
                .collect::<Vec<_>>()
                .join(",")
        };
        let mut out = match style {
            Style::Influx if !tags.is_empty() => format!("{name},{}", joined("=")),
            Style::Librato if !tags.is_empty() => format!("{name}#{}", joined("=")),
            Style::SignalFx => format!("{name}[{}]", joined("=")),
            _ => name.to_string(),
        };
        let value = if sample.relative && sample.value >= 0.0 {
            format!("+{}", sample.value)
        } else {
            format!("{}", sample.value)
        };
        out.push_str(&format!(":{value}|{}", sample.kind.code()));
        if sample.sample_rate != 1.0 {
            out.push_str(&format!("|@{}", sample.sample_rate));
        }
        if let (Style::Dog, false) = (style, tags.is_empty()) {
            out.push_str(&format!("|#{}", joined(":")));
        }
        if let Some(ts) = sample.timestamp {
            out.push_str(&format!("|T{ts}"));
        }
        out
    }

    fn sample_strategy() -> impl Strategy<Value = Sample> {
        (
            prop::sample::select(Kind::ALL.to_vec()),
            0.0f64..1e12,
            any::<bool>(),
            prop::option::of(0.001f64..=1.0),
            prop::option::of(any::<i64>()),
        )
            .prop_map(|(kind, v, sign, rate, timestamp)| {
                let relative = kind == Kind::Gauge && sign;
                Sample {
                    kind,
                    value: if relative && v > 0.0 && (v as u64).is_multiple_of(2) {
                        -v
                    } else {
                        v
                    },
                    relative,
                    sample_rate: rate.unwrap_or(1.0),
                    timestamp,
                }
            })
    }

    proptest! {
        #[test]
        fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..200)) {
            for line in split_packet(&bytes) {
                if let Ok(l) = parse_line(line) {
                    let _ = l.samples().count();
                    let _ = l.tags.iter().count();
                }
            }
        }

        #[test]
        fn statsd_shaped_garbage_never_panics(s in "[a-z#,=\\[\\]:|@.0-9cgmsdhT+-]{0,60}") {
            if let Ok(l) = parse_line(s.as_bytes()) {
                prop_assert!(l.samples().count() >= 1);
                let _ = l.tags.iter().count();
            }
        }

        #[test]
        fn valid_lines_round_trip(
            name in "[a-zA-Z_][a-zA-Z0-9_.-]{0,30}",
            style in prop::sample::select(vec![Style::None, Style::Dog, Style::Influx, Style::Librato, Style::SignalFx]),
            tags in prop::collection::vec(("[a-z_][a-z0-9_]{0,8}", "[a-zA-Z0-9_./-]{1,12}"), 0..4),
            sample in sample_strategy(),
        ) {
            let tags = if matches!(style, Style::None) { Vec::new() } else { tags };
            let line = render(&name, style, &tags, &sample);
            let parsed = parse(&line);
            prop_assert_eq!(parsed, Ok(Parsed { name, tags, tag_errors: 0, samples: vec![sample] }), "line {}", line);
        }
    }
}
