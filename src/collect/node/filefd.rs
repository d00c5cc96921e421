//! `filefd` collector: `node_filefd_allocated` and `node_filefd_maximum` from
//! `/proc/sys/fs/file-nr` (Documentation/admin-guide/sysctl/fs.rst, "file-max & file-nr":
//! allocated handles, allocated-but-unused handles (always 0 since 2.6), maximum).

use std::path::PathBuf;

use crate::collect::registry::{CollectorModule, Switch};
use crate::collect::{CollectError, Collector, ParseError, Sink};
use crate::host::{HostRoot, read_into};

/// Registry entry.
pub struct Module;

impl CollectorModule for Module {
    type Config = Switch;
    fn build(_: &Switch, host: &HostRoot) -> Box<dyn Collector> {
        Box::new(Filefd {
            path: host.proc("sys/fs/file-nr"),
            buf: String::with_capacity(64),
        })
    }
}

struct Filefd {
    path: PathBuf,
    buf: String,
}

/// Parses `file-nr` into (allocated, maximum).
pub fn parse(text: &str) -> Result<(f64, f64), ParseError> {
    let mut fields = text.split_ascii_whitespace();
    let (Some(allocated), Some(_unused), Some(maximum)) =
        (fields.next(), fields.next(), fields.next())
    else {
        return Err(ParseError::new(1, "expected 3 fields"));
    };
    let num = |what: &str, s: &str| {
        s.parse::<f64>()
            .map_err(|_| ParseError::new(1, format!("invalid {what} {s:?}")))
    };
    Ok((num("allocated", allocated)?, num("maximum", maximum)?))
}

impl Collector for Filefd {
    fn name(&self) -> &'static str {
        "filefd"
    }

    fn collect(&mut self, sink: &mut Sink) -> Result<(), CollectError> {
        if !read_into(&self.path, &mut self.buf)? {
            return Ok(());
        }
        let (allocated, maximum) =
            parse(&self.buf).map_err(|e| CollectError::parse(&self.path, e))?;
        sink.gauge(
            "node_filefd_allocated",
            "File descriptor statistics: allocated.",
            allocated,
        );
        sink.gauge(
            "node_filefd_maximum",
            "File descriptor statistics: maximum.",
            maximum,
        );
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::collect::node::testutil::{self, collect_file};

    #[test]
    fn recorded_files_from_two_kernels() {
        assert_eq!(
            parse(include_str!(
                "../../../tests/fixtures/hosts/legacy/proc/sys/fs/file-nr"
            )),
            Ok((3264.0, 797_932.0))
        );
        assert_eq!(
            parse(include_str!(
                "../../../tests/fixtures/hosts/modern/proc/sys/fs/file-nr"
            )),
            Ok((491.0, 2_466_177.0))
        );
    }

    #[test]
    fn garbled_files_are_errors() {
        assert_eq!(
            parse("12\t0\n"),
            Err(ParseError::new(1, "expected 3 fields"))
        );
        assert_eq!(
            parse("12\t0\tmany\n"),
            Err(ParseError::new(1, "invalid maximum \"many\""))
        );
    }

    #[test]
    fn collector_output() {
        let sink = collect_file::<Module>("sys/fs/file-nr", "7\t0\t99\n");
        let got: Vec<_> = sink
            .families()
            .map(|f| (f.name(), f.help(), f.samples().next().map(|s| s.value)))
            .collect();
        assert_eq!(
            got,
            vec![
                (
                    "node_filefd_allocated",
                    "File descriptor statistics: allocated.",
                    Some(7.0)
                ),
                (
                    "node_filefd_maximum",
                    "File descriptor statistics: maximum.",
                    Some(99.0)
                ),
            ]
        );
    }

    #[test]
    fn missing_file_writes_nothing() {
        testutil::assert_empty_host_writes_nothing::<Module>();
    }
}
