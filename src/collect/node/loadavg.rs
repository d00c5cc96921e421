//! `loadavg` collector: `node_load1`, `node_load5`, `node_load15` from `/proc/loadavg`
//! (proc(5): the first three fields are the 1, 5 and 15 minute load averages).

use std::path::PathBuf;

use crate::collect::registry::{CollectorModule, Switch};
use crate::collect::{CollectError, Collector, ParseError, Sink};
use crate::host::{HostRoot, read_into};

/// Registry entry.
pub struct Module;

impl CollectorModule for Module {
    type Config = Switch;
    fn build(_: &Switch, host: &HostRoot) -> Box<dyn Collector> {
        Box::new(Loadavg {
            path: host.proc("loadavg"),
            buf: String::with_capacity(64),
        })
    }
}

struct Loadavg {
    path: PathBuf,
    buf: String,
}

/// Parses `/proc/loadavg` into the 1, 5 and 15 minute averages.
pub fn parse(text: &str) -> Result<[f64; 3], ParseError> {
    let mut fields = text.split_ascii_whitespace();
    let mut out = [0.0; 3];
    for (slot, what) in out.iter_mut().zip(["1m", "5m", "15m"]) {
        let field = fields
            .next()
            .ok_or_else(|| ParseError::new(1, format!("missing {what} load average")))?;
        *slot = field
            .parse()
            .map_err(|_| ParseError::new(1, format!("invalid {what} load average {field:?}")))?;
    }
    Ok(out)
}

impl Collector for Loadavg {
    fn name(&self) -> &'static str {
        "loadavg"
    }

    fn collect(&mut self, sink: &mut Sink) -> Result<(), CollectError> {
        if !read_into(&self.path, &mut self.buf)? {
            return Ok(());
        }
        let [l1, l5, l15] = parse(&self.buf).map_err(|e| CollectError::parse(&self.path, e))?;
        sink.gauge("node_load1", "1m load average.", l1);
        sink.gauge("node_load5", "5m load average.", l5);
        sink.gauge("node_load15", "15m load average.", l15);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::collect::node::testutil;

    #[test]
    fn recorded_files_from_two_kernels() {
        assert_eq!(
            parse(include_str!(
                "../../../tests/fixtures/hosts/legacy/proc/loadavg"
            )),
            Ok([0.0, 0.01, 0.05])
        );
        let modern = parse(include_str!(
            "../../../tests/fixtures/hosts/modern/proc/loadavg"
        ))
        .expect("modern");
        assert_eq!(modern, [0.0, 0.11, 0.11]);
    }

    #[test]
    fn truncated_and_garbled_files_are_errors() {
        assert_eq!(
            parse("0.10 0.20"),
            Err(ParseError::new(1, "missing 15m load average"))
        );
        assert_eq!(
            parse(""),
            Err(ParseError::new(1, "missing 1m load average"))
        );
        assert_eq!(
            parse("x 1 2 1/2 3"),
            Err(ParseError::new(1, "invalid 1m load average \"x\""))
        );
    }

    #[test]
    fn missing_file_writes_nothing() {
        testutil::assert_empty_host_writes_nothing::<Module>();
    }
}
