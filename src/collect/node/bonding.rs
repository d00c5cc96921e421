//! `bonding` collector: `node_bonding_slaves{master}` and `node_bonding_active{master}` from the
//! bonding driver's sysfs files (Documentation/networking/bonding.rst, "Configuring Bonding
//! Manually via Sysfs"): the masters listed in `/sys/class/net/bonding_masters`, their slaves
//! in `<master>/bonding/slaves`, and each slave's link in
//! `<master>/lower_<slave>/bonding_slave/mii_status` (`slave_<slave>` on kernels before 4.13);
//! a slave is active when its MII status is `up`.
//!
//! Enslaving and link changes must show at the next scrape, so everything is read every time
//! (a handful of small files). As in node_exporter, a master or slave whose files are missing
//! (a bond torn down mid-read) makes the whole collection empty rather than partial.

use std::path::PathBuf;

use crate::collect::registry::{CollectorModule, Switch};
use crate::collect::{CollectError, Collector, MetricType, Sink};
use crate::host::{HostRoot, read_into};

/// Registry entry.
pub struct Module;

impl CollectorModule for Module {
    type Config = Switch;
    fn build(_: &Switch, host: &HostRoot) -> Box<dyn Collector> {
        let net = host.sys("class/net");
        Box::new(Bonding {
            masters_path: net.join("bonding_masters"),
            path: net.clone(),
            net,
            masters: String::with_capacity(64),
            slaves: String::with_capacity(64),
            state: String::with_capacity(16),
            dir: String::with_capacity(32),
            counts: Vec::new(),
        })
    }
}

struct Bonding {
    net: PathBuf,
    masters_path: PathBuf,
    /// Scratch path (reused).
    path: PathBuf,
    masters: String,
    slaves: String,
    state: String,
    /// `lower_<slave>` (reused).
    dir: String,
    /// `(master name, configured slaves, active slaves)` of this scrape (reused).
    counts: Vec<(std::ops::Range<usize>, u32, u32)>,
}

/// Whether a slave's `mii_status` says the link is up.
pub fn is_up(mii_status: &str) -> bool {
    mii_status.trim() == "up"
}

impl Bonding {
    /// Counts every master's slaves; false when some file is missing.
    fn count(&mut self) -> Result<bool, CollectError> {
        self.counts.clear();
        let base = self.masters.as_ptr() as usize;
        for master in self.masters.split_ascii_whitespace() {
            let start = master.as_ptr() as usize - base;
            self.path.clone_from(&self.net);
            self.path.extend([master, "bonding", "slaves"]);
            if !read_into(&self.path, &mut self.slaves)? {
                return Ok(false);
            }
            let (mut configured, mut active) = (0, 0);
            for slave in self.slaves.split_ascii_whitespace() {
                let mut found = false;
                for prefix in ["lower_", "slave_"] {
                    self.dir.clear();
                    self.dir.push_str(prefix);
                    self.dir.push_str(slave);
                    self.path.clone_from(&self.net);
                    self.path
                        .extend([master, self.dir.as_str(), "bonding_slave", "mii_status"]);
                    if read_into(&self.path, &mut self.state)? {
                        found = true;
                        break;
                    }
                }
                if !found {
                    return Ok(false);
                }
                configured += 1;
                if is_up(&self.state) {
                    active += 1;
                }
            }
            self.counts
                .push((start..start + master.len(), configured, active));
        }
        Ok(true)
    }
}

impl Collector for Bonding {
    fn name(&self) -> &'static str {
        "bonding"
    }

    fn collect(&mut self, sink: &mut Sink) -> Result<(), CollectError> {
        if !read_into(&self.masters_path, &mut self.masters)? || !self.count()? {
            return Ok(());
        }
        let mut f = sink.family(
            "node_bonding_slaves",
            "Number of configured slaves per bonding interface.",
            MetricType::Gauge,
        );
        for (name, configured, _) in &self.counts {
            f.sample(
                &[("master", &self.masters[name.clone()])],
                f64::from(*configured),
            );
        }
        let mut f = sink.family(
            "node_bonding_active",
            "Number of active slaves per bonding interface.",
            MetricType::Gauge,
        );
        for (name, _, active) in &self.counts {
            f.sample(
                &[("master", &self.masters[name.clone()])],
                f64::from(*active),
            );
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::collect::node::testutil::{collect_once, dir_host, fixture_host, render};

    fn collect(host: &HostRoot) -> Vec<String> {
        let sink = collect_once::<Module>(&Switch::default(), host);
        render(&sink)
    }

    #[test]
    fn recorded_active_backup_bond() {
        let host = fixture_host("legacy");
        assert_eq!(
            collect(&host),
            [
                "node_bonding_slaves{master=\"bond0\"} 1",
                "node_bonding_active{master=\"bond0\"} 1",
            ]
        );
    }

    #[test]
    fn old_slave_prefix_and_missing_slave() {
        let dir = tempfile::tempdir().expect("tempdir");
        let net = dir.path().join("class/net");
        let w = |rel: &str, text: &str| {
            let p = net.join(rel);
            std::fs::create_dir_all(p.parent().expect("parent")).expect("mkdir");
            std::fs::write(p, text).expect("write");
        };
        w("bonding_masters", "bond0 bond1\n");
        w("bond0/bonding/slaves", "eth0 eth1\n");
        w("bond0/slave_eth0/bonding_slave/mii_status", "up\n");
        w("bond0/lower_eth1/bonding_slave/mii_status", "going back\n");
        w("bond1/bonding/slaves", "\n");
        let host = dir_host(dir.path());
        assert_eq!(
            collect(&host),
            [
                "node_bonding_slaves{master=\"bond0\"} 2",
                "node_bonding_slaves{master=\"bond1\"} 0",
                "node_bonding_active{master=\"bond0\"} 1",
                "node_bonding_active{master=\"bond1\"} 0",
            ]
        );
        // A slave whose status file is gone empties the whole collection, as node_exporter's.
        w("bond1/bonding/slaves", "eth2\n");
        assert!(collect(&host).is_empty());
    }

    #[test]
    fn no_bonding_driver_writes_nothing() {
        let dir = tempfile::tempdir().expect("tempdir");
        let host = dir_host(dir.path());
        assert!(collect(&host).is_empty());
        assert!(is_up("up\n"));
        assert!(!is_up("down\n"));
    }
}
