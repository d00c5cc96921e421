//! `uname` collector: `node_uname_info{sysname,release,version,machine,nodename,domainname}`
//! from the uname(2) system call (see uname(2); Linux reports an unset NIS domain name as
//! `(none)`, which is passed through as node_exporter does).
//!
//! uname(2) is a sub-microsecond system call with no file I/O, so it is made on every scrape
//! rather than cached: the node name can change at run time (`hostname`, cloud-init), and a
//! cached value would go stale for no measurable saving.

use std::ffi::CStr;

use crate::collect::registry::{CollectorModule, Switch};
use crate::collect::{CollectError, Collector, MetricType, Sink};
use crate::host::HostRoot;

/// Registry entry.
pub struct Module;

impl CollectorModule for Module {
    type Config = Switch;
    fn build(_: &Switch, _host: &HostRoot) -> Box<dyn Collector> {
        Box::new(Uname)
    }
}

struct Uname;

/// The six uname(2) fields as text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fields<'a> {
    /// Kernel name (`Linux`).
    pub sysname: &'a str,
    /// Network node name (host name).
    pub nodename: &'a str,
    /// Kernel release (`6.1.0-18-amd64`).
    pub release: &'a str,
    /// Kernel version string (`#1 SMP PREEMPT_DYNAMIC ...`).
    pub version: &'a str,
    /// Hardware name (`x86_64`).
    pub machine: &'a str,
    /// NIS domain name (`(none)` when unset).
    pub domainname: &'a str,
}

/// Writes the info family for `f` (labels in the order node_exporter's client library sorts them).
pub fn write(sink: &mut Sink, f: &Fields<'_>) {
    sink.family(
        "node_uname_info",
        "Labeled system information as provided by the uname system call.",
        MetricType::Gauge,
    )
    .sample(
        &[
            ("domainname", f.domainname),
            ("machine", f.machine),
            ("nodename", f.nodename),
            ("release", f.release),
            ("sysname", f.sysname),
            ("version", f.version),
        ],
        1.0,
    );
}

fn text(c: &CStr) -> std::borrow::Cow<'_, str> {
    c.to_string_lossy()
}

impl Collector for Uname {
    fn name(&self) -> &'static str {
        "uname"
    }

    fn collect(&mut self, sink: &mut Sink) -> Result<(), CollectError> {
        let u = rustix::system::uname();
        let (sysname, nodename, release) =
            (text(u.sysname()), text(u.nodename()), text(u.release()));
        let (version, machine, domainname) =
            (text(u.version()), text(u.machine()), text(u.domainname()));
        write(
            sink,
            &Fields {
                sysname: &sysname,
                nodename: &nodename,
                release: &release,
                version: &version,
                machine: &machine,
                domainname: &domainname,
            },
        );
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn collect() -> Sink {
        let host = HostRoot::default();
        let mut c = Module::build(&Switch::default(), &host);
        let mut sink = Sink::new();
        c.collect(&mut sink).expect("uname cannot fail");
        sink
    }

    #[test]
    fn labels_match_the_uname_command() {
        let sink = collect();
        let fam = sink.families().next().expect("one family");
        assert_eq!(fam.name(), "node_uname_info");
        assert_eq!(fam.kind(), MetricType::Gauge);
        let s = fam.samples().next().expect("one sample");
        assert_eq!(s.value, 1.0);
        let cmd = |flag: &str| {
            let out = std::process::Command::new("uname")
                .arg(flag)
                .output()
                .expect("run uname");
            String::from_utf8(out.stdout)
                .expect("utf-8")
                .trim_end()
                .to_string()
        };
        let expected = format!(
            "domainname=\"{}\",machine=\"{}\",nodename=\"{}\",release=\"{}\",sysname=\"{}\",version=\"{}\"",
            rustix::system::uname().domainname().to_string_lossy(),
            cmd("-m"),
            cmd("-n"),
            cmd("-r"),
            cmd("-s"),
            cmd("-v"),
        );
        assert_eq!(s.labels, expected);
    }

    #[test]
    fn fields_are_rendered_in_sorted_label_order_and_escaped() {
        let mut sink = Sink::new();
        write(
            &mut sink,
            &Fields {
                sysname: "Linux",
                nodename: "web-1",
                release: "4.18.0-477.10.1.el8_8.x86_64",
                version: "#1 SMP \"x\"",
                machine: "x86_64",
                domainname: "(none)",
            },
        );
        let fam = sink.families().next().expect("family");
        assert_eq!(
            fam.samples().next().expect("sample").labels,
            "domainname=\"(none)\",machine=\"x86_64\",nodename=\"web-1\",\
             release=\"4.18.0-477.10.1.el8_8.x86_64\",sysname=\"Linux\",version=\"#1 SMP \\\"x\\\"\""
        );
    }
}
