//! A parser for the Prometheus text format 0.0.4, following the rules of Prometheus'
//! `expfmt.TextParser`: `# HELP`/`# TYPE` lines, escapes, histogram and summary samples grouped
//! under their family (`_bucket`, `_sum`, `_count`), optional timestamps. Used by the textfile
//! collector and by the tests that read sonde's own output.

use std::collections::HashMap;

use crate::collect::{MetricType, ParseError};

/// One parsed sample.
#[derive(Debug, Clone, PartialEq)]
pub struct ParsedSample {
    /// The sample's full name (`x_bucket`, `x_sum`, ... for histograms).
    pub name: String,
    /// Label pairs in the order written (unescaped values).
    pub labels: Labels,
    /// The value.
    pub value: f64,
    /// The timestamp in milliseconds, when one was given.
    pub timestamp_ms: Option<i64>,
}

impl ParsedSample {
    /// The value of a label, if present.
    pub fn label(&self, name: &str) -> Option<&str> {
        self.labels
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

/// One parsed family.
#[derive(Debug, Clone, PartialEq)]
pub struct ParsedFamily {
    /// Family name.
    pub name: String,
    /// Help text (unescaped), empty when absent.
    pub help: String,
    /// Type (`Untyped` when no `# TYPE` line).
    pub kind: MetricType,
    /// Samples in input order.
    pub samples: Vec<ParsedSample>,
}

fn is_name_start(c: u8, colon: bool) -> bool {
    c.is_ascii_alphabetic() || c == b'_' || (colon && c == b':')
}

fn is_name_char(c: u8, colon: bool) -> bool {
    is_name_start(c, colon) || c.is_ascii_digit()
}

/// True for a valid metric name (`[a-zA-Z_:][a-zA-Z0-9_:]*`).
pub fn valid_metric_name(s: &str) -> bool {
    let b = s.as_bytes();
    !b.is_empty() && is_name_start(b[0], true) && b.iter().all(|&c| is_name_char(c, true))
}

/// True for a valid label name (`[a-zA-Z_][a-zA-Z0-9_]*`).
pub fn valid_label_name(s: &str) -> bool {
    let b = s.as_bytes();
    !b.is_empty() && is_name_start(b[0], false) && b.iter().all(|&c| is_name_char(c, false))
}

/// Parses a float as Go's `strconv.ParseFloat` accepts it in the exposition format.
pub fn parse_value(s: &str) -> Option<f64> {
    match s {
        "+Inf" | "Inf" | "+inf" | "inf" => Some(f64::INFINITY),
        "-Inf" | "-inf" => Some(f64::NEG_INFINITY),
        "NaN" | "nan" => Some(f64::NAN),
        _ => s.parse().ok(),
    }
}

fn parse_type(s: &str) -> Option<MetricType> {
    Some(match s {
        "counter" => MetricType::Counter,
        "gauge" => MetricType::Gauge,
        "histogram" => MetricType::Histogram,
        "summary" => MetricType::Summary,
        "untyped" => MetricType::Untyped,
        _ => return None,
    })
}

fn unescape(s: &str, quote: bool) -> Result<String, &'static str> {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('\\') => out.push('\\'),
            Some('n') => out.push('\n'),
            Some('"') if quote => out.push('"'),
            // HELP texts keep other escapes verbatim, as expfmt does.
            Some(other) if !quote => {
                out.push('\\');
                out.push(other);
            }
            _ => return Err("invalid escape sequence"),
        }
    }
    Ok(out)
}

/// Parses the label set after `{`; returns the labels and the rest after `}`.
/// Label pairs as parsed.
pub type Labels = Vec<(String, String)>;

fn parse_labels(mut s: &str) -> Result<(Labels, &str), &'static str> {
    let mut labels = Vec::new();
    loop {
        s = s.trim_start();
        if let Some(rest) = s.strip_prefix('}') {
            return Ok((labels, rest));
        }
        let end = s
            .find(|c: char| c == '=' || c.is_whitespace())
            .ok_or("unterminated label set")?;
        let name = &s[..end];
        if !valid_label_name(name) {
            return Err("invalid label name");
        }
        s = s[end..]
            .trim_start()
            .strip_prefix('=')
            .ok_or("expected '=' after label name")?
            .trim_start();
        s = s
            .strip_prefix('"')
            .ok_or("expected '\"' to start a label value")?;
        let bytes = s.as_bytes();
        let mut i = 0;
        while i < bytes.len() && bytes[i] != b'"' {
            i += if bytes[i] == b'\\' { 2 } else { 1 };
        }
        if i >= bytes.len() {
            return Err("unterminated label value");
        }
        let value = unescape(&s[..i], true)?;
        if labels.iter().any(|(k, _): &(String, String)| k == name) {
            return Err("duplicate label name");
        }
        labels.push((name.to_string(), value));
        s = s[i + 1..].trim_start();
        if let Some(rest) = s.strip_prefix(',') {
            s = rest;
        } else if !s.starts_with('}') {
            return Err("expected ',' or '}' after a label");
        }
    }
}

/// The family a sample name belongs to, given the declared types.
fn family_of<'a>(name: &'a str, types: &HashMap<String, MetricType>) -> &'a str {
    for (suffix, kinds) in [
        ("_bucket", &[MetricType::Histogram][..]),
        ("_sum", &[MetricType::Histogram, MetricType::Summary][..]),
        ("_count", &[MetricType::Histogram, MetricType::Summary][..]),
    ] {
        if let Some(base) = name
            .strip_suffix(suffix)
            .filter(|b| types.get(*b).is_some_and(|k| kinds.contains(k)))
        {
            return base;
        }
    }
    name
}

/// Parses a whole text-format document.
///
/// Errors (with a 1-based line number) follow expfmt: a second `# HELP` or `# TYPE` for a
/// family, a `# TYPE` after the family's samples, samples of one family split by another
/// family, invalid names, label syntax or values.
pub fn parse(text: &str) -> Result<Vec<ParsedFamily>, ParseError> {
    let mut families: Vec<ParsedFamily> = Vec::new();
    let mut index: HashMap<String, usize> = HashMap::new();
    let mut types: HashMap<String, MetricType> = HashMap::new();
    let mut helps: HashMap<String, String> = HashMap::new();
    let mut current: Option<usize> = None;
    for (n, raw) in text.lines().enumerate() {
        let line_no = n + 1;
        let err = |reason: &str| ParseError::new(line_no, reason);
        let line = raw.trim_matches(|c| c == ' ' || c == '\t' || c == '\r');
        if line.is_empty() {
            continue;
        }
        if let Some(comment) = line.strip_prefix('#') {
            let mut parts = comment.trim_start().splitn(3, [' ', '\t']);
            let keyword = parts.next().unwrap_or_default();
            if keyword != "HELP" && keyword != "TYPE" {
                continue;
            }
            let name = parts
                .next()
                .ok_or_else(|| err("missing metric name after # HELP/# TYPE"))?;
            if !valid_metric_name(name) {
                return Err(err(&format!("invalid metric name {name:?}")));
            }
            let rest = parts.next().unwrap_or_default().trim_start();
            if keyword == "HELP" {
                if helps.contains_key(name) {
                    return Err(err(&format!("second HELP line for metric name {name:?}")));
                }
                helps.insert(name.to_string(), unescape(rest, false).map_err(err)?);
            } else {
                if types.contains_key(name) {
                    return Err(err(&format!("second TYPE line for metric name {name:?}")));
                }
                if index.contains_key(name) {
                    return Err(err(&format!("TYPE line for {name:?} after its samples")));
                }
                let kind = parse_type(rest.trim())
                    .ok_or_else(|| err(&format!("unknown metric type {:?}", rest.trim())))?;
                types.insert(name.to_string(), kind);
            }
            if let (Some(&i), "HELP") = (index.get(name), keyword) {
                families[i].help = helps.get(name).cloned().unwrap_or_default();
            }
            continue;
        }
        let name_end = line
            .find(['{', ' ', '\t'])
            .ok_or_else(|| err("expected a value after the metric name"))?;
        let name = &line[..name_end];
        if !valid_metric_name(name) {
            return Err(err(&format!("invalid metric name {name:?}")));
        }
        let mut rest = line[name_end..].trim_start_matches([' ', '\t']);
        let mut labels = Vec::new();
        if let Some(after) = rest.strip_prefix('{') {
            let (l, r) = parse_labels(after).map_err(err)?;
            labels = l;
            rest = r;
        }
        let mut fields = rest.split_ascii_whitespace();
        let value_text = fields.next().ok_or_else(|| err("missing value"))?;
        let value =
            parse_value(value_text).ok_or_else(|| err(&format!("invalid value {value_text:?}")))?;
        let timestamp_ms = match fields.next() {
            Some(ts) => Some(
                ts.parse::<i64>()
                    .map_err(|_| err(&format!("invalid timestamp {ts:?}")))?,
            ),
            None => None,
        };
        if fields.next().is_some() {
            return Err(err("unexpected text after the timestamp"));
        }
        let family = family_of(name, &types);
        let kind = types.get(family).copied().unwrap_or(MetricType::Untyped);
        if matches!(kind, MetricType::Histogram)
            && name.ends_with("_bucket")
            && !labels.iter().any(|(k, _)| k == "le")
        {
            return Err(err("histogram bucket without an le label"));
        }
        let i = match index.get(family) {
            Some(&i) => {
                if current != Some(i) {
                    return Err(err(&format!("samples of {family:?} are not contiguous")));
                }
                i
            }
            None => {
                families.push(ParsedFamily {
                    name: family.to_string(),
                    help: helps.get(family).cloned().unwrap_or_default(),
                    kind,
                    samples: Vec::new(),
                });
                index.insert(family.to_string(), families.len() - 1);
                families.len() - 1
            }
        };
        current = Some(i);
        families[i].samples.push(ParsedSample {
            name: name.to_string(),
            labels,
            value,
            timestamp_ms,
        });
    }
    Ok(families)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_families_labels_and_escapes() {
        let text = "# HELP node_x A \\\\ help\\nline.\n# TYPE node_x counter\nnode_x{a=\"1\",b=\"q\\\"uote\\\\ \\n\"} 3.5\nnode_x{a=\"2\"} +Inf 1700000000000\n\
                    # TYPE h histogram\nh_bucket{le=\"1\"} 1\nh_bucket{le=\"+Inf\"} 2\nh_sum 3\nh_count 2\nplain 7\n";
        let fams = parse(text).expect("parses");
        assert_eq!(fams.len(), 3);
        assert_eq!(fams[0].name, "node_x");
        assert_eq!(fams[0].help, "A \\ help\nline.");
        assert_eq!(fams[0].kind, MetricType::Counter);
        assert_eq!(
            fams[0].samples[0].labels,
            vec![
                ("a".into(), "1".into()),
                ("b".into(), "q\"uote\\ \n".into())
            ]
        );
        assert_eq!(fams[0].samples[0].value, 3.5);
        assert_eq!(fams[0].samples[1].value, f64::INFINITY);
        assert_eq!(fams[0].samples[1].timestamp_ms, Some(1_700_000_000_000));
        assert_eq!(fams[1].name, "h");
        assert_eq!(
            fams[1]
                .samples
                .iter()
                .map(|s| s.name.as_str())
                .collect::<Vec<_>>(),
            ["h_bucket", "h_bucket", "h_sum", "h_count"]
        );
        assert_eq!(fams[2].kind, MetricType::Untyped);
        assert_eq!(fams[2].samples[0].value, 7.0);
    }

    #[test]
    fn errors_name_the_line() {
        let cases = [
            ("a 1\nb{x=\"1\" 2\n", 2, "expected ',' or '}' after a label"),
            (
                "# TYPE a gauge\n# TYPE a counter\n",
                2,
                "second TYPE line for metric name \"a\"",
            ),
            (
                "a 1\n# TYPE a gauge\n",
                2,
                "TYPE line for \"a\" after its samples",
            ),
            ("a 1\nb 2\na 3\n", 3, "samples of \"a\" are not contiguous"),
            ("a{1x=\"y\"} 1\n", 1, "invalid label name"),
            ("a{x=\"1\",x=\"2\"} 1\n", 1, "duplicate label name"),
            ("a one\n", 1, "invalid value \"one\""),
            ("a\n", 1, "expected a value after the metric name"),
            ("# TYPE a bogus\n", 1, "unknown metric type \"bogus\""),
            ("a{x=\"1\"}\n", 1, "missing value"),
            (
                "# TYPE h histogram\nh_bucket 1\n",
                2,
                "histogram bucket without an le label",
            ),
        ];
        for (text, line, reason) in cases {
            assert_eq!(
                parse(text),
                Err(ParseError::new(line, reason)),
                "input {text:?}"
            );
        }
    }

    #[test]
    fn sonde_output_round_trips() {
        let mut sink = crate::collect::Sink::new();
        sink.family("f_total", "Help \"x\".", MetricType::Counter)
            .sample(&[("dev", "a\"b\\c\nd")], 12.0);
        let mut out = Vec::new();
        crate::expo::encode([&sink], crate::expo::Format::Text, &mut out);
        let fams = parse(std::str::from_utf8(&out).expect("utf8")).expect("parses");
        assert_eq!(fams[0].help, "Help \"x\".");
        assert_eq!(fams[0].samples[0].label("dev"), Some("a\"b\\c\nd"));
        assert_eq!(fams[0].samples[0].value, 12.0);
    }
}
