//! `selinux` collector: `node_selinux_enabled`, and when SELinux is enabled
//! `node_selinux_config_mode` and `node_selinux_current_mode` (1 enforcing, 0 permissive,
//! -1 disabled/unknown), as node_exporter 1.5 reports them.
//!
//! SELinux counts as enabled when selinuxfs is mounted, i.e. `<sysfs>/fs/selinux/enforce`
//! exists (see the kernel's Documentation/admin-guide/LSM/SELinux.rst; the file holds `0` or
//! `1`). The configured mode is the `SELINUX=` line of `<rootfs>/etc/selinux/config`
//! (selinux_config(5)); it is re-parsed only when the file's modification time changes.
//!
//! Unlike node_exporter 1.5 (whose SELinux library always looks at the live `/sys/fs/selinux`
//! and `/etc/selinux/config`), both paths honour `--path.sysfs` and `--path.rootfs`, so a
//! containerised sonde reports the host's state.

use std::path::PathBuf;
use std::time::SystemTime;

use crate::collect::registry::{CollectorModule, Switch};
use crate::collect::{CollectError, Collector, Sink};
use crate::host::{HostError, HostRoot, is_missing, read_into};

/// Registry entry.
pub struct Module;

impl CollectorModule for Module {
    type Config = Switch;
    fn build(_: &Switch, host: &HostRoot) -> Box<dyn Collector> {
        Box::new(Selinux {
            enforce: host.sys("fs/selinux/enforce"),
            config: host.rootfs("/etc/selinux/config"),
            config_cache: None,
            buf: String::with_capacity(64),
        })
    }
}

struct Selinux {
    enforce: PathBuf,
    config: PathBuf,
    /// (mtime of the config file, its mode); `None` mtime when the file is missing.
    config_cache: Option<(Option<SystemTime>, i8)>,
    buf: String,
}

/// The mode of `/sys/fs/selinux/enforce` text: its integer (1 enforcing, 0 permissive), -1
/// when unparsable.
pub fn parse_enforce(text: &str) -> i8 {
    text.trim().parse::<i8>().unwrap_or(-1)
}

/// The configured mode from `/etc/selinux/config` text: `SELINUX=enforcing` → 1,
/// `permissive` → 0, anything else (including `disabled` or no line) → -1. Blank lines and
/// `#`/`;` comments are skipped; the value may be double-quoted.
pub fn parse_config(text: &str) -> i8 {
    for line in text.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with(['#', ';']) {
            continue;
        }
        if let Some(("SELINUX", value)) = line.split_once('=') {
            return match value.trim_matches('"') {
                "enforcing" => 1,
                "permissive" => 0,
                _ => -1,
            };
        }
    }
    -1
}

impl Selinux {
    fn config_mode(&mut self) -> Result<i8, CollectError> {
        let mtime = match std::fs::metadata(&self.config).and_then(|m| m.modified()) {
            Ok(t) => Some(t),
            Err(e) if is_missing(&e) => None,
            Err(e) => {
                return Err(HostError {
                    path: self.config.clone(),
                    source: e,
                }
                .into());
            }
        };
        if let Some((cached, mode)) = self.config_cache
            && cached == mtime
        {
            return Ok(mode);
        }
        let mode = if mtime.is_some() && read_into(&self.config, &mut self.buf)? {
            parse_config(&self.buf)
        } else {
            -1
        };
        self.config_cache = Some((mtime, mode));
        Ok(mode)
    }
}

impl Collector for Selinux {
    fn name(&self) -> &'static str {
        "selinux"
    }

    fn collect(&mut self, sink: &mut Sink) -> Result<(), CollectError> {
        if !read_into(&self.enforce, &mut self.buf)? {
            sink.gauge(
                "node_selinux_enabled",
                "SELinux is enabled, 1 is true, 0 is false",
                0.0,
            );
            return Ok(());
        }
        let current = parse_enforce(&self.buf);
        let configured = self.config_mode()?;
        sink.gauge(
            "node_selinux_enabled",
            "SELinux is enabled, 1 is true, 0 is false",
            1.0,
        );
        sink.gauge(
            "node_selinux_config_mode",
            "Configured SELinux enforcement mode",
            f64::from(configured),
        );
        sink.gauge(
            "node_selinux_current_mode",
            "Current SELinux enforcement mode",
            f64::from(current),
        );
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::collect::node::testutil::{dir_host, fixture_host, scrape};

    fn series(sink: &Sink) -> Vec<(String, f64)> {
        let mut out = Vec::new();
        for f in sink.families() {
            for s in f.samples() {
                out.push((f.name().to_string(), s.value));
            }
        }
        out
    }

    fn collect(host: &HostRoot, c: Option<&mut Box<dyn Collector>>) -> Vec<(String, f64)> {
        let mut own;
        let c = match c {
            Some(c) => c,
            None => {
                own = Module::build(&Switch::default(), host);
                &mut own
            }
        };
        let sink = scrape(c.as_mut());
        series(&sink)
    }

    fn tree(name: &str) -> HostRoot {
        fixture_host(name)
    }

    #[test]
    fn enforcing_rhel8() {
        assert_eq!(
            parse_config(include_str!(
                "../../../tests/fixtures/hosts/legacy/root/etc/selinux/config"
            )),
            1
        );
        assert_eq!(
            collect(&tree("legacy"), None),
            vec![
                ("node_selinux_enabled".to_string(), 1.0),
                ("node_selinux_config_mode".to_string(), 1.0),
                ("node_selinux_current_mode".to_string(), 1.0),
            ]
        );
    }

    #[test]
    fn disabled_host_reports_only_enabled_zero() {
        assert_eq!(
            collect(&tree("modern"), None),
            vec![("node_selinux_enabled".to_string(), 0.0)]
        );
    }

    #[test]
    fn permissive_runtime_and_config_changes() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::create_dir_all(dir.path().join("fs/selinux")).expect("mkdir");
        std::fs::write(dir.path().join("fs/selinux/enforce"), "0").expect("write");
        let host = dir_host(dir.path());
        let mut c = Module::build(&Switch::default(), &host);
        // No config file: -1.
        assert_eq!(
            collect(&host, Some(&mut c))[1..],
            [
                ("node_selinux_config_mode".to_string(), -1.0),
                ("node_selinux_current_mode".to_string(), 0.0),
            ]
        );
        std::fs::create_dir_all(dir.path().join("etc/selinux")).expect("mkdir");
        std::fs::write(
            dir.path().join("etc/selinux/config"),
            "# x\nSELINUX=\"permissive\"\n",
        )
        .expect("write");
        assert_eq!(collect(&host, Some(&mut c))[1].1, 0.0);
    }

    #[test]
    fn parsers() {
        assert_eq!(parse_enforce("1"), 1);
        assert_eq!(parse_enforce("0\n"), 0);
        assert_eq!(parse_enforce("x"), -1);
        assert_eq!(parse_config("SELINUX=disabled\n"), -1);
        assert_eq!(parse_config("; SELINUX=enforcing\nSELINUXTYPE=mls\n"), -1);
        assert_eq!(parse_config("\n  SELINUX=enforcing  \n"), 1);
    }
}
