//! `textfile` collector: metrics from the `*.prom` files of a directory (Prometheus text format
//! 0.0.4, <https://prometheus.io/docs/instrumenting/exposition_formats/>), plus
//! `node_textfile_mtime_seconds{file}` and `node_textfile_scrape_error`, with node_exporter 1.5's
//! semantics:
//!
//! - files are read in name order; a file that cannot be read or parsed, that is larger than
//!   `max_file_bytes`, or that has any sample with an explicit timestamp is skipped whole and
//!   sets `node_textfile_scrape_error` to 1 (the collector itself still succeeds);
//! - a family without `# HELP` gets `Metric read from <file>[, <file>...]`, listing every
//!   successfully read file that has the family;
//! - within one file, the samples of a family that lack a label another sample of it has get
//!   that label with an empty value;
//! - across files, samples are merged the way node_exporter's registry does it: a sample whose
//!   family was first seen with another help text or type, whose series was already seen, or
//!   whose name collides with a histogram's or summary's `_bucket`/`_sum`/`_count`, is dropped
//!   (logged, not counted as a scrape error).
//!
//! Not supported: node_exporter's glob patterns in the directory option.

use std::collections::{HashMap, HashSet};
use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, UNIX_EPOCH};

use serde::Deserialize;

use crate::collect::registry::CollectorModule;
use crate::collect::sink::escape_label_value;
use crate::collect::{CollectError, Collector, MetricType, Sink, Suffix};
use crate::config::Issue;
use crate::expo::parse::{ParsedFamily, parse};
use crate::host::HostRoot;

/// Registry entry.
pub struct Module;

/// Default for [`Config::max_file_bytes`]: 4 MiB.
pub const DEFAULT_MAX_FILE_BYTES: u64 = 4 << 20;

/// `collectors.textfile`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Whether the collector runs.
    pub enabled: bool,
    /// Directory of `*.prom` files; none disables reading.
    pub directory: Option<PathBuf>,
    /// A larger file is skipped (and counted as a scrape error).
    pub max_file_bytes: u64,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            enabled: true,
            directory: None,
            max_file_bytes: DEFAULT_MAX_FILE_BYTES,
        }
    }
}

impl Config {
    fn check(&self, key: &str, issues: &mut Vec<Issue>) {
        if self.max_file_bytes == 0 {
            issues.push(Issue::new(
                format!("{key}.max_file_bytes"),
                "must be above 0",
            ));
        }
        if let Some(dir) = &self.directory
            && dir.as_os_str().is_empty()
        {
            issues.push(Issue::new(
                format!("{key}.directory"),
                "must not be empty (leave it unset to read no files)",
            ));
        }
    }
}

crate::collector_config!(Config);

impl CollectorModule for Module {
    type Config = Config;
    fn build(cfg: &Config, _host: &HostRoot) -> Box<dyn Collector> {
        // Like node_exporter, the directory is a path of sonde's own view, not under the rootfs:
        // it is typically a directory shared with the jobs writing the files.
        Box::new(Textfile {
            dir_label: cfg
                .directory
                .as_ref()
                .map(|d| clean_path(&d.to_string_lossy()))
                .unwrap_or_default(),
            dir: cfg.directory.clone(),
            max_file_bytes: cfg.max_file_bytes,
            buf: String::new(),
            last_log: None,
        })
    }
}

struct Textfile {
    dir: Option<PathBuf>,
    /// The directory as node_exporter prints it in the `file` label (lexically cleaned).
    dir_label: String,
    max_file_bytes: u64,
    buf: String,
    last_log: Option<Instant>,
}

/// Lexically cleans a slash-separated path as Go's `filepath.Clean` does (node_exporter builds
/// the `file` label with `filepath.Join`).
pub fn clean_path(p: &str) -> String {
    let rooted = p.starts_with('/');
    let mut parts: Vec<&str> = Vec::new();
    for part in p.split('/') {
        match part {
            "" | "." => {}
            ".." => match parts.last() {
                Some(&last) if last != ".." => {
                    parts.pop();
                }
                _ if rooted => {}
                _ => parts.push(".."),
            },
            other => parts.push(other),
        }
    }
    let joined = parts.join("/");
    match (rooted, joined.is_empty()) {
        (true, _) => format!("/{joined}"),
        (false, true) => ".".to_string(),
        (false, false) => joined,
    }
}

/// Formats a float as Go's `strconv.FormatFloat(v, 'g', -1, 64)`, which node_exporter uses for
/// the `le` and `quantile` label values (`1e+06`, `0.001`, `2.5`, `+Inf`).
pub fn go_float_label(v: f64) -> String {
    if v.is_nan() {
        return "NaN".to_string();
    }
    if v.is_infinite() {
        return if v > 0.0 { "+Inf" } else { "-Inf" }.to_string();
    }
    if v == 0.0 {
        return if v.is_sign_negative() { "-0" } else { "0" }.to_string();
    }
    // Shortest round-trip digits and decimal exponent, from Rust's own shortest formatting.
    let sci = format!("{:e}", v.abs());
    let (mantissa, exp) = sci.split_once('e').unwrap_or((&sci, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    let digits: String = mantissa.chars().filter(|c| *c != '.').collect();
    let sign = if v < 0.0 { "-" } else { "" };
    if !(-4..6).contains(&exp) {
        let (first, rest) = digits.split_at(1);
        let frac = if rest.is_empty() {
            String::new()
        } else {
            format!(".{rest}")
        };
        let esign = if exp < 0 { '-' } else { '+' };
        return format!("{sign}{first}{frac}e{esign}{:02}", exp.abs());
    }
    let point = exp + 1; // digits before the decimal point
    if point <= 0 {
        format!("{sign}0.{}{digits}", "0".repeat((-point) as usize))
    } else if point as usize >= digits.len() {
        format!(
            "{sign}{digits}{}",
            "0".repeat(point as usize - digits.len())
        )
    } else {
        let (int, frac) = digits.split_at(point as usize);
        format!("{sign}{int}.{frac}")
    }
}

/// One series of a family as read from a file.
#[derive(Debug, Clone, PartialEq)]
pub enum Data {
    /// A counter, gauge or untyped value.
    Value(f64),
    /// Histogram buckets (sorted by bound, one per bound), sum and count.
    Histogram {
        /// `(le, cumulative count)`.
        buckets: Vec<(f64, u64)>,
        /// `_sum`.
        sum: f64,
        /// `_count`.
        count: u64,
    },
    /// Summary quantiles (sorted, one per quantile), sum and count.
    Summary {
        /// `(quantile, value)`.
        quantiles: Vec<(f64, f64)>,
        /// `_sum`.
        sum: f64,
        /// `_count`.
        count: u64,
    },
}

/// One series: its rendered label set (sorted by name, escaped, missing labels filled with
/// empty values) and data.
#[derive(Debug, Clone, PartialEq)]
pub struct Series {
    /// `a="x",b=""`, without braces.
    pub labels: String,
    /// The value(s).
    pub data: Data,
}

/// One family of one file, ready to be merged.
#[derive(Debug, Clone, PartialEq)]
pub struct FileFamily {
    /// Family name.
    pub name: String,
    /// The `# HELP` text, None when the file had none.
    pub help: Option<String>,
    /// Type.
    pub kind: MetricType,
    /// Series in file order.
    pub series: Vec<Series>,
}

/// Why a file is skipped.
#[derive(Debug, thiserror::Error)]
pub enum FileError {
    /// The file could not be opened, read or stat'ed.
    #[error("reading {path}")]
    Io {
        /// The file.
        path: String,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The file is larger than `max_file_bytes`.
    #[error("{path} is larger than max_file_bytes ({max} bytes)")]
    TooLarge {
        /// The file.
        path: String,
        /// The limit.
        max: u64,
    },
    /// The text format parser rejected the file, or a sample did not fit its family's type.
    #[error("parsing {path}: {reason}")]
    Parse {
        /// The file.
        path: String,
        /// What was wrong.
        reason: String,
    },
    /// A sample has an explicit timestamp, which node_exporter does not accept.
    #[error("{path} contains unsupported client-side timestamps, skipping entire file")]
    Timestamps {
        /// The file.
        path: String,
    },
}

fn render_labels(out: &mut String, pairs: &[(&str, &str)]) {
    for (i, (k, v)) in pairs.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str(k);
        out.push_str("=\"");
        escape_label_value(out, v);
        out.push('"');
    }
}

/// Converts one file's parsed families into series (pure: the caller supplies the text).
///
/// Errors are those node_exporter reports for the whole file: explicit timestamps, and samples
/// that cannot belong to their family (a summary sample without `quantile`).
pub fn convert(families: Vec<ParsedFamily>) -> Result<Vec<FileFamily>, String> {
    if families
        .iter()
        .any(|f| f.samples.iter().any(|s| s.timestamp_ms.is_some()))
    {
        return Err("timestamps".to_string());
    }
    let mut out = Vec::with_capacity(families.len());
    for fam in families {
        let special = match fam.kind {
            MetricType::Histogram => Some("le"),
            MetricType::Summary => Some("quantile"),
            _ => None,
        };
        // Every label name the family uses, sorted (the output order of label pairs).
        let mut all_names: Vec<&str> = fam
            .samples
            .iter()
            .flat_map(|s| s.labels.iter().map(|(k, _)| k.as_str()))
            .filter(|k| Some(*k) != special)
            .collect();
        all_names.sort_unstable();
        all_names.dedup();
        let render = |labels: &[(String, String)]| {
            let pairs: Vec<(&str, &str)> = all_names
                .iter()
                .map(|&n| {
                    let v = labels
                        .iter()
                        .find(|(k, _)| k == n)
                        .map(|(_, v)| v.as_str())
                        .unwrap_or("");
                    (n, v)
                })
                .collect();
            let mut s = String::new();
            render_labels(&mut s, &pairs);
            s
        };
        let mut series: Vec<Series> = Vec::new();
        let mut index: HashMap<String, usize> = HashMap::new();
        for s in &fam.samples {
            let labels = render(&s.labels);
            match fam.kind {
                MetricType::Counter | MetricType::Gauge | MetricType::Untyped => {
                    // Every sample is its own series here; duplicates are dropped when merging.
                    series.push(Series {
                        labels,
                        data: Data::Value(s.value),
                    });
                }
                MetricType::Histogram | MetricType::Summary => {
                    let i = *index.entry(labels.clone()).or_insert_with(|| {
                        series.push(Series {
                            labels,
                            data: if fam.kind == MetricType::Histogram {
                                Data::Histogram {
                                    buckets: Vec::new(),
                                    sum: 0.0,
                                    count: 0,
                                }
                            } else {
                                Data::Summary {
                                    quantiles: Vec::new(),
                                    sum: 0.0,
                                    count: 0,
                                }
                            },
                        });
                        series.len() - 1
                    });
                    let suffix = s.name.strip_prefix(fam.name.as_str()).unwrap_or_default();
                    // Counts are unsigned integers in node_exporter's data model.
                    let as_count = s.value as u64;
                    match (&mut series[i].data, suffix) {
                        (Data::Histogram { sum, .. } | Data::Summary { sum, .. }, "_sum") => {
                            *sum = s.value
                        }
                        (Data::Histogram { count, .. } | Data::Summary { count, .. }, "_count") => {
                            *count = as_count
                        }
                        (Data::Histogram { buckets, .. }, "_bucket") => {
                            let le = s
                                .label("le")
                                .and_then(crate::expo::parse::parse_value)
                                .ok_or_else(|| format!("invalid le label on {}", fam.name))?;
                            buckets.push((le, as_count));
                        }
                        (Data::Summary { quantiles, .. }, "") => {
                            let q = s
                                .label("quantile")
                                .and_then(crate::expo::parse::parse_value)
                                .ok_or_else(|| {
                                    format!("summary {} sample without a valid quantile", fam.name)
                                })?;
                            quantiles.push((q, s.value));
                        }
                        _ => return Err(format!("unexpected sample {} in {}", s.name, fam.name)),
                    }
                }
            }
        }
        for s in &mut series {
            match &mut s.data {
                Data::Histogram { buckets: v, .. } => sort_last_wins(v),
                Data::Summary { quantiles: v, .. } => sort_last_wins(v),
                Data::Value(_) => {}
            }
        }
        out.push(FileFamily {
            name: fam.name,
            help: (!fam.help.is_empty()).then_some(fam.help),
            kind: fam.kind,
            series,
        });
    }
    Ok(out)
}

/// Sorts `(bound, value)` pairs by bound, keeping the last value given for a repeated bound (a
/// Go map filled in file order).
fn sort_last_wins<T: Copy>(v: &mut Vec<(f64, T)>) {
    v.reverse();
    v.sort_by(|a, b| a.0.total_cmp(&b.0));
    v.dedup_by(|later, earlier| later.0 == earlier.0);
}

/// A family after merging all files, as node_exporter's registry would gather it.
#[derive(Debug, Default)]
struct Merged {
    families: Vec<(String, String, MetricType, Vec<Series>)>,
    by_name: HashMap<String, usize>,
    seen: HashSet<(String, String)>,
}

impl Merged {
    /// Adds one series, or explains why the registry would drop it.
    fn add(
        &mut self,
        name: &str,
        help: &str,
        kind: MetricType,
        series: Series,
    ) -> Result<(), String> {
        let i = match self.by_name.get(name) {
            Some(&i) => {
                let (_, h, k, _) = &self.families[i];
                if h != help {
                    return Err(format!("{name} has help {help:?} but should have {h:?}"));
                }
                if *k != kind {
                    return Err(format!("{name} has type {kind:?} but should have {k:?}"));
                }
                i
            }
            None => {
                self.check_suffix_collision(name, kind)?;
                self.families
                    .push((name.to_string(), help.to_string(), kind, Vec::new()));
                self.by_name
                    .insert(name.to_string(), self.families.len() - 1);
                self.families.len() - 1
            }
        };
        if !self.seen.insert((name.to_string(), series.labels.clone())) {
            return Err(format!(
                "{name}{{{}}} was collected before with the same name and label values",
                series.labels
            ));
        }
        self.families[i].3.push(series);
        Ok(())
    }

    fn check_suffix_collision(&self, name: &str, kind: MetricType) -> Result<(), String> {
        let kind_of = |n: &str| self.by_name.get(n).map(|&i| self.families[i].2);
        for suffix in ["_count", "_sum", "_bucket"] {
            if let Some(base) = name.strip_suffix(suffix) {
                let collides = match kind_of(base) {
                    Some(MetricType::Summary) => suffix != "_bucket",
                    Some(MetricType::Histogram) => true,
                    _ => false,
                };
                if collides {
                    return Err(format!("{name} collides with the family {base}"));
                }
            }
        }
        let mut own: &[&str] = &[];
        if kind == MetricType::Summary {
            own = &["_count", "_sum"];
        } else if kind == MetricType::Histogram {
            own = &["_count", "_sum", "_bucket"];
        }
        for suffix in own {
            let other = format!("{name}{suffix}");
            if self.by_name.contains_key(&other) {
                return Err(format!("{name} collides with the family {other}"));
            }
        }
        Ok(())
    }

    fn write(&self, sink: &mut Sink) {
        let mut labels = String::new();
        for (name, help, kind, series) in &self.families {
            let mut fam = sink.family(name, help, *kind);
            for s in series {
                match &s.data {
                    Data::Value(v) => {
                        fam.raw_sample(Suffix::None, &s.labels, *v);
                    }
                    Data::Histogram {
                        buckets,
                        sum,
                        count,
                    } => {
                        for (le, n) in buckets {
                            with_extra(&mut labels, &s.labels, "le", *le);
                            fam.raw_sample(Suffix::Bucket, &labels, *n as f64);
                        }
                        if buckets.last().is_none_or(|(le, _)| *le != f64::INFINITY) {
                            with_extra(&mut labels, &s.labels, "le", f64::INFINITY);
                            fam.raw_sample(Suffix::Bucket, &labels, *count as f64);
                        }
                        fam.raw_sample(Suffix::Sum, &s.labels, *sum);
                        fam.raw_sample(Suffix::Count, &s.labels, *count as f64);
                    }
                    Data::Summary {
                        quantiles,
                        sum,
                        count,
                    } => {
                        for (q, v) in quantiles {
                            with_extra(&mut labels, &s.labels, "quantile", *q);
                            fam.raw_sample(Suffix::None, &labels, *v);
                        }
                        fam.raw_sample(Suffix::Sum, &s.labels, *sum);
                        fam.raw_sample(Suffix::Count, &s.labels, *count as f64);
                    }
                }
            }
        }
    }
}

/// `base` plus `name="<value as Go prints it>"` appended last (as client libraries do).
fn with_extra(out: &mut String, base: &str, name: &str, v: f64) {
    out.clear();
    out.push_str(base);
    if !base.is_empty() {
        out.push(',');
    }
    out.push_str(name);
    out.push_str("=\"");
    out.push_str(&go_float_label(v));
    out.push('"');
}

/// How often a repeating problem is logged.
const LOG_EVERY: Duration = Duration::from_secs(300);

impl Textfile {
    fn should_log(&mut self) -> bool {
        let now = Instant::now();
        if self
            .last_log
            .is_some_and(|t| now.duration_since(t) < LOG_EVERY)
        {
            return false;
        }
        self.last_log = Some(now);
        true
    }

    /// Reads and converts one file; returns its families and mtime (whole seconds, as
    /// node_exporter 1.5 reports it).
    fn read_file(&mut self, path: &Path, label: &str) -> Result<(Vec<FileFamily>, f64), FileError> {
        let io = |source| FileError::Io {
            path: label.to_string(),
            source,
        };
        let file = File::open(path).map_err(io)?;
        self.buf.clear();
        let limit = self.max_file_bytes;
        let n = (&file)
            .take(limit.saturating_add(1))
            .read_to_string(&mut self.buf)
            .map_err(io)?;
        if n as u64 > limit {
            return Err(FileError::TooLarge {
                path: label.to_string(),
                max: limit,
            });
        }
        let parsed = parse(&self.buf).map_err(|e| FileError::Parse {
            path: label.to_string(),
            reason: e.to_string(),
        })?;
        let families = convert(parsed).map_err(|reason| {
            if reason == "timestamps" {
                FileError::Timestamps {
                    path: label.to_string(),
                }
            } else {
                FileError::Parse {
                    path: label.to_string(),
                    reason,
                }
            }
        })?;
        // Stat only after a successful parse, so a broken file never looks fresh.
        let modified = file.metadata().and_then(|m| m.modified()).map_err(io)?;
        let mtime = match modified.duration_since(UNIX_EPOCH) {
            Ok(d) => d.as_secs() as f64,
            Err(e) => -(e.duration().as_secs() as f64),
        };
        Ok((families, mtime))
    }
}

impl Collector for Textfile {
    fn name(&self) -> &'static str {
        "textfile"
    }

    fn collect(&mut self, sink: &mut Sink) -> Result<(), CollectError> {
        let mut errored = false;
        let mut errors: Vec<String> = Vec::new();
        let mut files: Vec<(String, Vec<FileFamily>)> = Vec::new();
        let mut mtimes: Vec<(String, f64)> = Vec::new();
        if let Some(dir) = self.dir.clone() {
            match std::fs::read_dir(&dir) {
                Err(e) => {
                    errored = true;
                    errors.push(format!("reading directory {}: {e}", dir.display()));
                }
                Ok(rd) => {
                    let mut names: Vec<String> = rd
                        .filter_map(|e| e.ok())
                        .map(|e| e.file_name().to_string_lossy().into_owned())
                        .filter(|n| n.ends_with(".prom"))
                        .collect();
                    names.sort_unstable();
                    for name in names {
                        let label = clean_path(&format!("{}/{name}", self.dir_label));
                        match self.read_file(&dir.join(&name), &label) {
                            Ok((fams, mtime)) => {
                                mtimes.push((label.clone(), mtime));
                                files.push((label, fams));
                            }
                            Err(e) => {
                                errored = true;
                                let mut msg = e.to_string();
                                if let Some(src) = std::error::Error::source(&e) {
                                    msg.push_str(&format!(": {src}"));
                                }
                                errors.push(msg);
                            }
                        }
                    }
                }
            }
        }

        // Files each family was read from, for the generated help text.
        let mut origins: HashMap<&str, Vec<&str>> = HashMap::new();
        for (label, fams) in &files {
            for f in fams {
                origins
                    .entry(f.name.as_str())
                    .or_default()
                    .push(label.as_str());
            }
        }
        let mut merged = Merged::default();
        let mut dropped: Vec<String> = Vec::new();
        for (_, fams) in &files {
            for f in fams {
                let help = match &f.help {
                    Some(h) => h.clone(),
                    None => format!(
                        "Metric read from {}",
                        origins
                            .get(f.name.as_str())
                            .map(|v| v.join(", "))
                            .unwrap_or_default()
                    ),
                };
                for s in &f.series {
                    if let Err(e) = merged.add(&f.name, &help, f.kind, s.clone()) {
                        dropped.push(e);
                    }
                }
            }
        }
        merged.write(sink);

        if !mtimes.is_empty() {
            let mut fam = sink.family(
                "node_textfile_mtime_seconds",
                "Unixtime mtime of textfiles successfully read.",
                MetricType::Gauge,
            );
            for (file, t) in &mtimes {
                fam.sample(&[("file", file)], *t);
            }
        }
        sink.gauge(
            "node_textfile_scrape_error",
            "1 if there was an error opening or reading a file, 0 otherwise",
            if errored { 1.0 } else { 0.0 },
        );
        if (!errors.is_empty() || !dropped.is_empty()) && self.should_log() {
            tracing::warn!(
                collector = "textfile",
                errors = ?errors,
                dropped = ?dropped,
                "textfile problems (repeats are logged at most every 5 minutes)"
            );
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture_dir(name: &str) -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures/textfile")
            .join(name)
    }

    /// Copies a fixture directory into a tempdir with a fixed mtime on every file.
    fn staged(name: &str, mtime_secs: u64) -> tempfile::TempDir {
        let dir = tempfile::tempdir().expect("tempdir");
        for entry in std::fs::read_dir(fixture_dir(name)).expect("fixture dir") {
            let entry = entry.expect("entry");
            let to = dir.path().join(entry.file_name());
            std::fs::copy(entry.path(), &to).expect("copy");
            let f = File::options().write(true).open(&to).expect("open");
            f.set_modified(UNIX_EPOCH + Duration::from_millis(mtime_secs * 1000 + 678))
                .expect("set mtime");
        }
        dir
    }

    fn run(dir: Option<PathBuf>, max: u64) -> Vec<(String, String, MetricType, String, f64)> {
        let cfg = Config {
            enabled: true,
            directory: dir,
            max_file_bytes: max,
        };
        let host = HostRoot::default();
        let mut c = Module::build(&cfg, &host);
        let mut sink = Sink::new();
        c.collect(&mut sink).expect("textfile never fails");
        let mut out = Vec::new();
        for f in sink.families() {
            for s in f.samples() {
                out.push((
                    format!("{}{}", f.name(), s.suffix.as_str()),
                    f.help().to_string(),
                    f.kind(),
                    s.labels.to_string(),
                    s.value,
                ));
            }
        }
        out
    }

    fn find<'a>(
        all: &'a [(String, String, MetricType, String, f64)],
        name: &str,
    ) -> Vec<(&'a str, f64)> {
        all.iter()
            .filter(|r| r.0 == name)
            .map(|r| (r.3.as_str(), r.4))
            .collect()
    }

    #[test]
    fn good_directory_is_merged_like_node_exporter() {
        let dir = staged("good", 1_700_000_000);
        let d = dir.path().to_string_lossy().into_owned();
        let all = run(Some(dir.path().to_path_buf()), DEFAULT_MAX_FILE_BYTES);
        assert_eq!(
            find(&all, "backup_last_success_timestamp_seconds"),
            [
                (r#"host="",job="db""#, 1.7e9),
                (r#"host="a",job="home""#, 1700000123.0),
                (r#"job="mail""#, 1700000999.0),
                (r#"job="db""#, 5.0),
            ]
        );
        // No help in a.prom: generated from both files; b.prom's own help then conflicts and
        // its sample is dropped, as node_exporter's registry does.
        let runs: Vec<_> = all.iter().filter(|r| r.0 == "backup_runs_total").collect();
        assert_eq!(runs.len(), 1);
        assert_eq!(
            runs[0].1,
            format!("Metric read from {d}/a.prom, {d}/b.prom")
        );
        assert_eq!(
            (runs[0].2, runs[0].3.as_str(), runs[0].4),
            (MetricType::Counter, r#"job="db""#, 42.0)
        );
        assert_eq!(find(&all, "raid_degraded"), [("", 0.0)]);
        assert_eq!(
            find(&all, "escaped_help"),
            [(r#"msg="say \"hi\"\nbye",path="C:\\dir""#, 1.0)]
        );
        assert_eq!(
            find(&all, "apt_latency_seconds_bucket"),
            [
                (r#"le="0.5""#, 2.0),
                (r#"le="1""#, 3.0),
                (r#"le="2.5""#, 7.0),
                (r#"le="+Inf""#, 9.0)
            ]
        );
        assert_eq!(find(&all, "apt_latency_seconds_sum"), [("", 11.5)]);
        assert_eq!(
            find(&all, "rpc_duration_seconds"),
            [
                (r#"service="a",quantile="0.5""#, 0.05),
                (r#"service="a",quantile="0.99""#, 0.4)
            ]
        );
        assert_eq!(
            find(&all, "rpc_duration_seconds_count"),
            [(r#"service="a""#, 240.0)]
        );
        let special = find(&all, "special_values");
        assert!(special[0].1.is_nan());
        assert_eq!(
            special[1..],
            [
                (r#"kind="inf""#, f64::INFINITY),
                (r#"kind="neg""#, f64::NEG_INFINITY)
            ]
        );
        assert_eq!(find(&all, "b_only_total"), [("", 3.0)]);
        assert!(find(&all, "this_is_not_read").is_empty());
        assert_eq!(
            find(&all, "node_textfile_mtime_seconds"),
            [
                (format!("file=\"{d}/a.prom\"").as_str(), 1_700_000_000.0),
                (format!("file=\"{d}/b.prom\"").as_str(), 1_700_000_000.0)
            ]
        );
        assert_eq!(find(&all, "node_textfile_scrape_error"), [("", 0.0)]);
    }

    #[test]
    fn bad_files_are_skipped_whole_and_flagged() {
        let dir = staged("bad", 1_600_000_000);
        let d = dir.path().to_string_lossy().into_owned();
        let all = run(Some(dir.path().to_path_buf()), DEFAULT_MAX_FILE_BYTES);
        let names: Vec<_> = all.iter().map(|r| r.0.as_str()).collect();
        assert_eq!(
            names,
            [
                "ok_metric",
                "second_ok",
                "node_textfile_mtime_seconds",
                "node_textfile_mtime_seconds",
                "node_textfile_scrape_error"
            ]
        );
        assert_eq!(all[1].1, format!("Metric read from {d}/d_ok.prom"));
        assert_eq!(find(&all, "node_textfile_scrape_error"), [("", 1.0)]);
    }

    #[test]
    fn oversized_files_are_errors() {
        let dir = staged("good", 1);
        let all = run(Some(dir.path().to_path_buf()), 600);
        // a.prom (over 600 bytes) is skipped, b.prom is read.
        assert!(find(&all, "apt_latency_seconds_sum").is_empty());
        assert_eq!(find(&all, "b_only_total"), [("", 3.0)]);
        assert_eq!(find(&all, "node_textfile_scrape_error"), [("", 1.0)]);
    }

    #[test]
    fn missing_or_unset_directory() {
        let all = run(None, DEFAULT_MAX_FILE_BYTES);
        assert_eq!(all.len(), 1);
        assert_eq!(find(&all, "node_textfile_scrape_error"), [("", 0.0)]);
        let all = run(
            Some(PathBuf::from("/nonexistent/sonde-textfile")),
            DEFAULT_MAX_FILE_BYTES,
        );
        assert_eq!(find(&all, "node_textfile_scrape_error"), [("", 1.0)]);
    }

    #[test]
    fn registry_rules_across_files() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(
            dir.path().join("a.prom"),
            "dup{x=\"1\"} 1\ndup{x=\"1\"} 2\nconflict 1\n# TYPE coll summary\ncoll_sum 1\ncoll_count 1\n\
             # TYPE h histogram\nh_bucket{le=\"1000000\"} 1\nh_bucket{le=\"0.001\"} 1\n",
        )
        .expect("write");
        std::fs::write(
            dir.path().join("b.prom"),
            "dup{x=\"1\"} 3\n# TYPE conflict gauge\nconflict{z=\"1\"} 2\ncoll_count{a=\"b\"} 5\n",
        )
        .expect("write");
        let all = run(Some(dir.path().to_path_buf()), DEFAULT_MAX_FILE_BYTES);
        assert_eq!(find(&all, "dup"), [(r#"x="1""#, 1.0)]);
        assert_eq!(find(&all, "conflict"), [("", 1.0)]);
        assert_eq!(find(&all, "coll_count"), [("", 1.0)]);
        assert_eq!(
            find(&all, "h_bucket"),
            [
                (r#"le="0.001""#, 1.0),
                (r#"le="1e+06""#, 1.0),
                (r#"le="+Inf""#, 0.0)
            ]
        );
        assert_eq!(find(&all, "node_textfile_scrape_error"), [("", 0.0)]);
    }

    #[test]
    fn go_float_formatting() {
        for (v, want) in [
            (1e6, "1e+06"),
            (100000.0, "100000"),
            (0.001, "0.001"),
            (0.0001, "0.0001"),
            (0.00001, "1e-05"),
            (2.5, "2.5"),
            (1.0, "1"),
            (0.0, "0"),
            (-3.25, "-3.25"),
            (123456789.0, "1.23456789e+08"),
            (f64::INFINITY, "+Inf"),
        ] {
            assert_eq!(go_float_label(v), want, "{v}");
        }
        assert_eq!(clean_path("dir/"), "dir");
        assert_eq!(clean_path("./a//b/../c.prom"), "a/c.prom");
        assert_eq!(clean_path("/x/./y/"), "/x/y");
    }

    #[test]
    fn bad_max_file_bytes_is_named() {
        let err = crate::config::Config::from_yaml_str(
            "collectors:\n  textfile:\n    max_file_bytes: 0\n",
        )
        .expect_err("zero");
        assert_eq!(
            err.to_string(),
            "collectors.textfile.max_file_bytes: must be above 0"
        );
    }
}
