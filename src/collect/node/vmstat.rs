//! `vmstat` collector: the `/proc/vmstat` fields whose name matches
//! `collectors.vmstat.fields`, each as an untyped `node_vmstat_<field>` (proc(5), "vmstat";
//! one `name value` pair per line).
//!
//! The set and order of fields is fixed for a running kernel, so whether a line's name matches
//! is remembered per line position and the regex only runs when the name at that position
//! changes (in practice: on the first scrape).

use std::path::PathBuf;

use serde::Deserialize;

use crate::collect::registry::CollectorModule;
use crate::collect::{CollectError, Collector, MetricType, ParseError, Sink};
use crate::config::Pattern;
use crate::host::{HostRoot, read_into};

/// Registry entry.
pub struct Module;

/// node_exporter 1.5's default for `--collector.vmstat.fields`.
pub const DEFAULT_FIELDS: &str = "^(oom_kill|pgpg|pswp|pg.*fault).*";

/// `collectors.vmstat`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Whether the collector runs.
    pub enabled: bool,
    /// Fields to report (unanchored regex, node_exporter's `--collector.vmstat.fields`).
    pub fields: Pattern,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            enabled: true,
            fields: default_fields(),
        }
    }
}

fn default_fields() -> Pattern {
    match Pattern::new(DEFAULT_FIELDS) {
        Ok(p) => p,
        // A constant that is covered by a test: cannot fail at run time.
        Err(e) => unreachable!("default vmstat pattern: {e}"),
    }
}

crate::collector_config!(Config, unchecked);

impl CollectorModule for Module {
    type Config = Config;
    fn build(cfg: &Config, host: &HostRoot) -> Box<dyn Collector> {
        Box::new(Vmstat {
            path: host.proc("vmstat"),
            fields: cfg.fields.clone(),
            buf: String::with_capacity(8192),
            seen: Vec::new(),
        })
    }
}

struct Vmstat {
    path: PathBuf,
    fields: Pattern,
    buf: String,
    /// Per line position: the field name last seen there and whether it matched.
    seen: Vec<(String, bool)>,
}

/// Parses `/proc/vmstat`, calling `f(name, value)` for every line whose name `wanted` accepts
/// (`wanted` gets the line index and the name). Values of other lines are not parsed.
pub fn parse<'a>(
    text: &'a str,
    mut wanted: impl FnMut(usize, &str) -> bool,
    mut f: impl FnMut(&'a str, f64),
) -> Result<(), ParseError> {
    for (idx, line) in text.lines().enumerate() {
        let mut parts = line.split_ascii_whitespace();
        let Some(name) = parts.next() else { continue };
        if !wanted(idx, name) {
            continue;
        }
        let value = parts
            .next()
            .ok_or_else(|| ParseError::new(idx + 1, format!("missing value of {name}")))?;
        let value: f64 = value
            .parse()
            .map_err(|_| ParseError::new(idx + 1, format!("invalid value of {name}: {value:?}")))?;
        f(name, value);
    }
    Ok(())
}

impl Collector for Vmstat {
    fn name(&self) -> &'static str {
        "vmstat"
    }

    fn collect(&mut self, sink: &mut Sink) -> Result<(), CollectError> {
        if !read_into(&self.path, &mut self.buf)? {
            return Ok(());
        }
        let (seen, fields) = (&mut self.seen, &self.fields);
        let wanted = |idx: usize, name: &str| {
            if seen.len() <= idx {
                seen.resize_with(idx + 1, || (String::new(), false));
            }
            let slot = &mut seen[idx];
            if slot.0 != name {
                slot.0.clear();
                slot.0.push_str(name);
                slot.1 = fields.is_match(name);
            }
            slot.1
        };
        parse(&self.buf, wanted, |name, value| {
            sink.family_parts(
                &["node_vmstat_", name],
                &["/proc/vmstat information field ", name, "."],
                MetricType::Untyped,
            )
            .sample(&[], value);
        })
        .map_err(|e| CollectError::parse(&self.path, e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::collect::node::testutil::{self, dir_host, scrape};

    fn matching(text: &str, pattern: &str) -> Vec<(String, f64)> {
        let p = Pattern::new(pattern).expect("pattern");
        let mut out = Vec::new();
        parse(
            text,
            |_, n| p.is_match(n),
            |n, v| out.push((n.to_string(), v)),
        )
        .expect("parse");
        out
    }

    #[test]
    fn default_fields_on_two_kernels() {
        let legacy = matching(
            include_str!("../../../tests/fixtures/hosts/legacy/proc/vmstat"),
            DEFAULT_FIELDS,
        );
        let want: Vec<(String, f64)> = [
            ("pgpgin", 48_822_114.0),
            ("pgpgout", 391_220_876.0),
            ("pswpin", 11_071.0),
            ("pswpout", 72_322.0),
            ("pgfault", 2_944_861_023.0),
            ("pgmajfault", 138_455.0),
            ("oom_kill", 2.0),
        ]
        .iter()
        .map(|(n, v)| (n.to_string(), *v))
        .collect();
        assert_eq!(legacy, want);
        let modern = matching(
            include_str!("../../../tests/fixtures/hosts/modern/proc/vmstat"),
            DEFAULT_FIELDS,
        );
        let names: Vec<_> = modern.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(
            names,
            [
                "pgpgin",
                "pgpgout",
                "pswpin",
                "pswpout",
                "pgfault",
                "pgmajfault",
                "oom_kill"
            ]
        );
        assert_eq!(modern[4].1, 7_903_571.0);
    }

    #[test]
    fn collector_writes_untyped_families_and_remembers_matches() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(dir.path().join("vmstat"), "nr_free_pages 5\npgfault 10\n").expect("write");
        let host = dir_host(dir.path());
        let mut c = Module::build(&Config::default(), &host);
        let sink = scrape(c.as_mut());
        let got: Vec<_> = sink
            .families()
            .map(|f| {
                (
                    f.name(),
                    f.help(),
                    f.kind(),
                    f.samples().next().map(|s| s.value),
                )
            })
            .collect();
        assert_eq!(
            got,
            vec![(
                "node_vmstat_pgfault",
                "/proc/vmstat information field pgfault.",
                MetricType::Untyped,
                Some(10.0)
            )]
        );
        // Different fields at the same positions (another kernel's file): matched afresh.
        std::fs::write(dir.path().join("vmstat"), "oom_kill 1\nnr_dirty 3\n").expect("write");
        let sink = scrape(c.as_mut());
        let names: Vec<_> = sink.families().map(|f| f.name()).collect();
        assert_eq!(names, ["node_vmstat_oom_kill"]);
    }

    #[test]
    fn custom_pattern_and_errors() {
        let got = matching("nr_dirty 3\nnr_mapped x\npgfault 1\n", "^nr_dirty$");
        assert_eq!(got, vec![("nr_dirty".to_string(), 3.0)]);
        assert_eq!(
            parse("pgfault x\n", |_, _| true, |_, _| {}),
            Err(ParseError::new(1, "invalid value of pgfault: \"x\""))
        );
        assert_eq!(
            parse("a 1\npgfault\n", |_, _| true, |_, _| {}),
            Err(ParseError::new(2, "missing value of pgfault"))
        );
        assert_eq!(Config::default().fields.as_str(), DEFAULT_FIELDS);
    }

    #[test]
    fn missing_file_writes_nothing() {
        testutil::assert_empty_host_writes_nothing::<Module>();
    }
}
