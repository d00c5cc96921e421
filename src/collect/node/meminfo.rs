//! `meminfo` collector: one `node_memory_*` gauge per `/proc/meminfo` field (proc(5) and
//! Documentation/filesystems/proc.rst, "meminfo").
//!
//! Names follow node_exporter 1.5: `Key(sub)` becomes `Key_sub`; a field with a unit (always
//! `kB`) is reported in bytes as `node_memory_<Key>_bytes`, a unitless one (`HugePages_Total`)
//! as `node_memory_<Key>`. The help text repeats the metric's short name.

use std::path::PathBuf;

use crate::collect::registry::{CollectorModule, Switch};
use crate::collect::{CollectError, Collector, MetricType, ParseError, Sink};
use crate::host::{HostRoot, read_into};

/// Registry entry.
pub struct Module;

impl CollectorModule for Module {
    type Config = Switch;
    fn build(_: &Switch, host: &HostRoot) -> Box<dyn Collector> {
        Box::new(Meminfo {
            path: host.proc("meminfo"),
            buf: String::with_capacity(4096),
        })
    }
}

struct Meminfo {
    path: PathBuf,
    buf: String,
}

/// One parsed field, its metric name split into borrowed parts so that no name is built.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Field<'a> {
    /// The key before any parenthesis (`Active` of `Active(anon)`).
    pub base: &'a str,
    /// The parenthesised part without the parentheses (`anon`), if any.
    pub sub: Option<&'a str>,
    /// Whatever followed the closing parenthesis (normally empty).
    pub rest: &'a str,
    /// The value, already converted to bytes when the line had a unit.
    pub value: f64,
    /// True when the line had a unit (the metric gets the `_bytes` suffix).
    pub bytes: bool,
}

impl Field<'_> {
    /// The metric's short name parts: `base`, `_sub`/`` and `rest`, then `_bytes` or ``.
    pub fn name_parts(&self) -> [&str; 5] {
        // `Key()` still becomes `Key_`, as node_exporter's `\((.*)\)` → `_$1` rewrite does.
        let (sep, sub) = match self.sub {
            Some(sub) => ("_", sub),
            None => ("", ""),
        };
        [
            self.base,
            sep,
            sub,
            self.rest,
            if self.bytes { "_bytes" } else { "" },
        ]
    }
}

/// Parses `/proc/meminfo`, calling `f` for every field in file order.
pub fn parse<'a>(text: &'a str, mut f: impl FnMut(Field<'a>)) -> Result<(), ParseError> {
    for (idx, line) in text.lines().enumerate() {
        let mut parts = line.split_ascii_whitespace();
        let Some(key) = parts.next() else {
            continue; // some old kernels print blank lines
        };
        let lineno = idx + 1;
        let value = parts
            .next()
            .ok_or_else(|| ParseError::new(lineno, format!("missing value for {key:?}")))?;
        let unit = parts.next();
        if parts.next().is_some() {
            return Err(ParseError::new(lineno, "too many fields"));
        }
        let mut value: f64 = value
            .parse()
            .map_err(|_| ParseError::new(lineno, format!("invalid value {value:?}")))?;
        if unit.is_some() {
            value *= 1024.0;
        }
        let key = key.strip_suffix(':').unwrap_or(key);
        let (base, sub, rest) = match (key.find('('), key.rfind(')')) {
            (Some(open), Some(close)) if open < close => {
                (&key[..open], Some(&key[open + 1..close]), &key[close + 1..])
            }
            _ => (key, None, ""),
        };
        f(Field {
            base,
            sub,
            rest,
            value,
            bytes: unit.is_some(),
        });
    }
    Ok(())
}

impl Collector for Meminfo {
    fn name(&self) -> &'static str {
        "meminfo"
    }

    fn collect(&mut self, sink: &mut Sink) -> Result<(), CollectError> {
        if !read_into(&self.path, &mut self.buf)? {
            return Ok(());
        }
        // Validate first so that a garbled file yields no partial output (node_exporter
        // reports nothing from meminfo when it fails to parse).
        parse(&self.buf, |_| {}).map_err(|e| CollectError::parse(&self.path, e))?;
        parse(&self.buf, |field| {
            let [a, b, c, d, e] = field.name_parts();
            sink.family_parts(
                &["node_memory_", a, b, c, d, e],
                &["Memory information field ", a, b, c, d, e, "."],
                MetricType::Gauge,
            )
            .sample(&[], field.value);
        })
        .map_err(|e| CollectError::parse(&self.path, e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::collect::node::testutil::{self, collect_file, dir_host};

    fn collect_text(text: &str) -> Vec<(String, String, f64)> {
        let mut out = Vec::new();
        parse(text, |f| {
            out.push((f.name_parts().concat(), String::new(), f.value));
        })
        .expect("parse");
        out
    }

    fn find(fields: &[(String, String, f64)], name: &str) -> Option<f64> {
        fields.iter().find(|(n, _, _)| n == name).map(|f| f.2)
    }

    #[test]
    fn legacy_kernel_fields() {
        let f = collect_text(include_str!(
            "../../../tests/fixtures/hosts/legacy/proc/meminfo"
        ));
        assert_eq!(f.len(), 48);
        assert_eq!(
            f[0],
            ("MemTotal_bytes".into(), String::new(), 8_181_821_440.0)
        );
        assert_eq!(find(&f, "Active_anon_bytes"), Some(1_037_291_520.0));
        assert_eq!(find(&f, "Inactive_file_bytes"), Some(3_343_605_760.0));
        assert_eq!(find(&f, "HugePages_Total"), Some(8.0));
        assert_eq!(find(&f, "HugePages_Rsvd"), Some(1.0));
        assert_eq!(find(&f, "Hugepagesize_bytes"), Some(2_097_152.0));
        assert_eq!(find(&f, "VmallocTotal_bytes"), Some(35_184_372_087_808.0));
        assert_eq!(find(&f, "Zswap_bytes"), None);
    }

    #[test]
    fn modern_kernel_fields() {
        let f = collect_text(include_str!(
            "../../../tests/fixtures/hosts/modern/proc/meminfo"
        ));
        assert_eq!(f.len(), 54);
        assert_eq!(find(&f, "MemTotal_bytes"), Some(24_684_092.0 * 1024.0));
        assert_eq!(find(&f, "Inactive_anon_bytes"), Some(6776.0 * 1024.0));
        assert_eq!(find(&f, "Zswapped_bytes"), Some(0.0));
        assert_eq!(find(&f, "HugePages_Free"), Some(0.0));
        assert_eq!(find(&f, "DirectMap1G_bytes"), Some(25_165_824.0 * 1024.0));
    }

    #[test]
    fn family_names_and_help() {
        let sink = collect_file::<Module>(
            "meminfo",
            "MemTotal:  10 kB\nActive(anon):  2 kB\n\nHugePages_Total:   3\n",
        );
        let got: Vec<_> = sink
            .families()
            .map(|f| {
                let s = f.samples().next().expect("one sample");
                (f.name(), f.help(), f.kind(), s.labels, s.value)
            })
            .collect();
        assert_eq!(
            got,
            vec![
                (
                    "node_memory_MemTotal_bytes",
                    "Memory information field MemTotal_bytes.",
                    MetricType::Gauge,
                    "",
                    10240.0
                ),
                (
                    "node_memory_Active_anon_bytes",
                    "Memory information field Active_anon_bytes.",
                    MetricType::Gauge,
                    "",
                    2048.0
                ),
                (
                    "node_memory_HugePages_Total",
                    "Memory information field HugePages_Total.",
                    MetricType::Gauge,
                    "",
                    3.0
                ),
            ]
        );
    }

    #[test]
    fn garbled_files_are_errors_without_output() {
        assert_eq!(
            parse("MemTotal: x kB\n", |_| {}),
            Err(ParseError::new(1, "invalid value \"x\""))
        );
        assert_eq!(
            parse("MemTotal: 1 kB\nMemFree:\n", |_| {}),
            Err(ParseError::new(2, "missing value for \"MemFree:\""))
        );
        assert_eq!(
            parse("MemTotal: 1 kB extra\n", |_| {}),
            Err(ParseError::new(1, "too many fields"))
        );
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(
            dir.path().join("meminfo"),
            "MemTotal: 1 kB\nMemFree: y kB\n",
        )
        .expect("write");
        let host = dir_host(dir.path());
        let mut c = Module::build(&Switch::default(), &host);
        let mut sink = Sink::new();
        assert!(c.collect(&mut sink).is_err());
        assert!(sink.is_empty());
    }

    #[test]
    fn missing_file_writes_nothing() {
        testutil::assert_empty_host_writes_nothing::<Module>();
    }
}
