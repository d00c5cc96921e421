//! Helpers shared by the node collectors' unit tests: hosts rooted at the recorded fixture
//! trees (`tests/fixtures/hosts/<tree>`) or at a scratch directory, one-shot collection, and
//! flattening a [`Sink`] into comparable values.

use std::path::Path;

use crate::collect::registry::CollectorModule;
use crate::collect::{Collector, Sink};
use crate::host::HostRoot;

/// A host whose `proc`, `sys` and `root` are those of the recorded fixture tree `tree`
/// (`"legacy"` or `"modern"`).
pub(crate) fn fixture_host(tree: &str) -> HostRoot {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/hosts")
        .join(tree);
    HostRoot::new(root.join("proc"), root.join("sys"), root.join("root"))
}

/// A host whose proc, sys and rootfs are all `dir` (a scratch tree a test fills in).
pub(crate) fn dir_host(dir: &Path) -> HostRoot {
    HostRoot::new(dir, dir, dir)
}

/// A host with only a sysfs, at `sys` (proc and rootfs point nowhere).
pub(crate) fn sys_host(sys: &Path) -> HostRoot {
    HostRoot::new("/nonexistent", sys, "/nonexistent")
}

/// Builds collector `M` with `cfg` on `host` and collects once; a collection error fails the test.
pub(crate) fn collect_once<M: CollectorModule>(cfg: &M::Config, host: &HostRoot) -> Sink {
    scrape(M::build(cfg, host).as_mut())
}

/// Collects once from an already built collector into a fresh sink; an error fails the test.
pub(crate) fn scrape(c: &mut dyn Collector) -> Sink {
    let mut sink = Sink::new();
    c.collect(&mut sink).expect("collect");
    sink
}

/// Collects once with collector `M`'s default options from a scratch host holding only the
/// file `rel` (relative to the host's proc, sys and rootfs directory) with content `text`.
pub(crate) fn collect_file<M: CollectorModule>(rel: &str, text: &str) -> Sink {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join(rel);
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).expect("mkdir");
    }
    std::fs::write(&path, text).expect("write");
    collect_once::<M>(&M::Config::default(), &dir_host(dir.path()))
}

/// Asserts that collector `M` with its default options, on a host where nothing exists,
/// succeeds and writes nothing (missing files are normal).
pub(crate) fn assert_empty_host_writes_nothing<M: CollectorModule>() {
    let dir = tempfile::tempdir().expect("tempdir");
    let host = dir_host(dir.path());
    let mut c = M::build(&M::Config::default(), &host);
    let mut sink = Sink::new();
    c.collect(&mut sink).expect("missing is not an error");
    assert!(sink.is_empty());
}

/// The `(labels, value)` pairs of every sample of the family named `family`, in written order.
pub(crate) fn samples(sink: &Sink, family: &str) -> Vec<(String, f64)> {
    sink.families()
        .filter(|f| f.name() == family)
        .flat_map(|f| {
            f.samples()
                .map(|s| (s.labels.to_string(), s.value))
                .collect::<Vec<_>>()
        })
        .collect()
}

/// Every sample as `(family name, labels, value)`, in written order.
pub(crate) fn all_samples(sink: &Sink) -> Vec<(String, String, f64)> {
    sink.families()
        .flat_map(|f| {
            f.samples()
                .map(|s| (f.name().to_string(), s.labels.to_string(), s.value))
                .collect::<Vec<_>>()
        })
        .collect()
}

/// Every sample rendered as `name{labels} value` (braces kept even when empty), in written order.
pub(crate) fn render(sink: &Sink) -> Vec<String> {
    let mut out = Vec::new();
    for f in sink.families() {
        for s in f.samples() {
            out.push(format!("{}{{{}}} {}", f.name(), s.labels, s.value));
        }
    }
    out
}

/// Every family's name and number of samples, in written order.
pub(crate) fn family_sizes(sink: &Sink) -> Vec<(&str, usize)> {
    sink.families()
        .map(|f| (f.name(), f.samples().len()))
        .collect()
}

/// Every family's name and its first sample's value (-1 for a family without samples).
pub(crate) fn first_values(sink: &Sink) -> Vec<(String, f64)> {
    sink.families()
        .map(|f| {
            (
                f.name().to_string(),
                f.samples().next().map_or(-1.0, |s| s.value),
            )
        })
        .collect()
}
