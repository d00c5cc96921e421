//! The collector machinery: the [`Collector`] trait, the typed [`Sink`] collectors write
//! samples into, the shared error types, and the single list of collectors ([`registry`]).
//!
//! A collector reads host files through [`crate::host::HostRoot`], parses them with pure
//! parsers, and writes families and samples into a [`Sink`]. The sink keeps every name, help
//! text and rendered label set in one growing string buffer, so a collection performs a handful
//! of allocations, not one per sample; the encoders in [`crate::expo`] copy from it directly.

pub mod cgroup;
pub mod node;
pub mod process;
pub mod registry;
pub mod scrape;
pub mod selfmetrics;
pub mod sink;

pub use registry::CollectorsConfig;
pub use sink::{FamilyView, FamilyWriter, MetricType, SampleView, Sink, Suffix};

use std::path::PathBuf;

use crate::host::HostError;

/// A pure parser's failure: where in the text and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line}: {reason}")]
pub struct ParseError {
    /// 1-based line number in the parsed text (0 when not line-oriented).
    pub line: usize,
    /// What was wrong, in a few words.
    pub reason: String,
}

impl ParseError {
    /// A parse error at a 1-based line.
    pub fn new(line: usize, reason: impl Into<String>) -> Self {
        Self {
            line,
            reason: reason.into(),
        }
    }
}

/// Why a collector failed. Never fails a scrape: it becomes `sonde_scrape_collector_success 0`
/// and a rate-limited log line.
#[derive(Debug, thiserror::Error)]
pub enum CollectError {
    /// Reading a host file failed for a reason other than "missing".
    #[error(transparent)]
    Io(#[from] HostError),
    /// A host file did not have the expected format.
    #[error("parsing {path}")]
    Parse {
        /// The file that failed to parse.
        path: PathBuf,
        /// What the parser found.
        #[source]
        source: ParseError,
    },
    /// A system call failed (statfs, adjtimex, ...).
    #[error("{call} failed")]
    Syscall {
        /// The call that failed.
        call: &'static str,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// The collector did not finish within its timeout; its result is discarded.
    #[error("timed out after {0:?}")]
    Timeout(std::time::Duration),
    /// A previous run of this collector is still blocked (for example on a hung mount), so it
    /// was not started again.
    #[error("previous collection still running")]
    StillRunning,
    /// The collector panicked; the panic was contained.
    #[error("collector panicked")]
    Panicked,
}

impl CollectError {
    /// Helper for parse failures: attaches the path.
    pub fn parse(path: impl Into<PathBuf>, source: ParseError) -> Self {
        Self::Parse {
            path: path.into(),
            source,
        }
    }
}

/// One source of metrics, run at scrape time on a blocking thread.
///
/// `collect` takes `&mut self`: the scrape machinery never runs one collector twice at once, so
/// collectors keep caches (slow-changing sysfs attributes, reusable buffers) as plain fields.
pub trait Collector: Send + 'static {
    /// The collector's name as used in `--collector.<name>` and the `collector` label.
    fn name(&self) -> &'static str;

    /// Writes this collector's families into `sink`.
    ///
    /// A missing file or vanished process is not an error (write nothing for it); an error
    /// means the collector's data is incomplete and is reported as
    /// `sonde_scrape_collector_success{collector} 0`. Samples written before an error are kept.
    fn collect(&mut self, sink: &mut Sink) -> Result<(), CollectError>;
}
