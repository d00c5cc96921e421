//! `entropy` collector: `node_entropy_available_bits` and `node_entropy_pool_size_bits` from
//! `/proc/sys/kernel/random/{entropy_avail,poolsize}` (random(4), "/proc interfaces").
//!
//! As in node_exporter 1.5, nothing is reported without `entropy_avail`, and the pool size is
//! reported only when its file exists.

use std::path::{Path, PathBuf};

use crate::collect::registry::{CollectorModule, Switch};
use crate::collect::{CollectError, Collector, ParseError, Sink};
use crate::host::{HostRoot, read_into};

/// Registry entry.
pub struct Module;

impl CollectorModule for Module {
    type Config = Switch;
    fn build(_: &Switch, host: &HostRoot) -> Box<dyn Collector> {
        Box::new(Entropy {
            avail: host.proc("sys/kernel/random/entropy_avail"),
            poolsize: host.proc("sys/kernel/random/poolsize"),
            buf: String::with_capacity(16),
        })
    }
}

struct Entropy {
    avail: PathBuf,
    poolsize: PathBuf,
    buf: String,
}

/// Parses a one-number sysctl file.
pub fn parse(text: &str) -> Result<u64, ParseError> {
    let t = text.trim();
    t.parse()
        .map_err(|_| ParseError::new(1, format!("invalid number {t:?}")))
}

/// Reads and parses one of the files; `None` when it is missing.
fn read_num(path: &Path, buf: &mut String) -> Result<Option<u64>, CollectError> {
    if !read_into(path, buf)? {
        return Ok(None);
    }
    parse(buf)
        .map(Some)
        .map_err(|e| CollectError::parse(path, e))
}

impl Collector for Entropy {
    fn name(&self) -> &'static str {
        "entropy"
    }

    fn collect(&mut self, sink: &mut Sink) -> Result<(), CollectError> {
        let Some(avail) = read_num(&self.avail, &mut self.buf)? else {
            return Ok(());
        };
        sink.gauge(
            "node_entropy_available_bits",
            "Bits of available entropy.",
            avail as f64,
        );
        if let Some(pool) = read_num(&self.poolsize, &mut self.buf)? {
            sink.gauge(
                "node_entropy_pool_size_bits",
                "Bits of entropy pool.",
                pool as f64,
            );
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::collect::node::testutil::collect_once;

    fn collect(tree: &std::path::Path) -> Vec<(String, f64)> {
        let host = HostRoot::new(tree, tree, tree);
        let sink = collect_once::<Module>(&Switch::default(), &host);
        sink.families()
            .map(|f| {
                let v = f.samples().next().map_or(f64::NAN, |s| s.value);
                (f.name().to_string(), v)
            })
            .collect()
    }

    #[test]
    fn recorded_trees() {
        let base =
            std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/hosts");
        assert_eq!(
            collect(&base.join("legacy/proc")),
            vec![
                ("node_entropy_available_bits".to_string(), 3781.0),
                ("node_entropy_pool_size_bits".to_string(), 4096.0)
            ]
        );
        assert_eq!(
            collect(&base.join("modern/proc")),
            vec![
                ("node_entropy_available_bits".to_string(), 256.0),
                ("node_entropy_pool_size_bits".to_string(), 256.0)
            ]
        );
    }

    #[test]
    fn partial_and_garbled_files() {
        let dir = tempfile::tempdir().expect("tempdir");
        let r = dir.path().join("sys/kernel/random");
        std::fs::create_dir_all(&r).expect("mkdir");
        std::fs::write(r.join("poolsize"), "4096\n").expect("write");
        assert_eq!(collect(dir.path()), vec![], "no entropy_avail: nothing");
        std::fs::write(r.join("entropy_avail"), "12\n").expect("write");
        std::fs::remove_file(r.join("poolsize")).expect("rm");
        assert_eq!(
            collect(dir.path()),
            vec![("node_entropy_available_bits".to_string(), 12.0)]
        );
        assert_eq!(
            parse("x\n"),
            Err(ParseError::new(1, "invalid number \"x\""))
        );
    }

    #[test]
    fn missing_files_write_nothing() {
        let dir = tempfile::tempdir().expect("tempdir");
        assert!(collect(dir.path()).is_empty());
    }
}
