//! The single list of collectors. Adding a collector touches its own file plus one line here:
//! the macro generates the `collectors:` configuration section (one typed, `deny_unknown_fields`
//! struct per collector), the names accepted by `--collector.<name>`, validation and
//! construction, all in registry order.

use serde::Deserialize;

use super::Collector;
use super::{cgroup, node, process};
use crate::config::Issue;
use crate::host::HostRoot;

/// What every collector's configuration struct provides.
pub trait CollectorConfig {
    /// Whether the collector runs.
    fn enabled(&self) -> bool;
    /// Switches the collector on or off.
    fn set_enabled(&mut self, on: bool);
    /// Checks the options, pushing one issue per problem; `key` is `collectors.<name>`.
    fn validate(&self, _key: &str, _issues: &mut Vec<Issue>) {}
}

/// The configuration of a collector that has no options besides `enabled`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Switch {
    /// Whether the collector runs.
    pub enabled: bool,
}

impl Default for Switch {
    fn default() -> Self {
        Self { enabled: true }
    }
}

impl CollectorConfig for Switch {
    fn enabled(&self) -> bool {
        self.enabled
    }
    fn set_enabled(&mut self, on: bool) {
        self.enabled = on;
    }
}

/// Implements [`CollectorConfig`] for a struct with an `enabled: bool` field and an inherent
/// `fn check(&self, key: &str, issues: &mut Vec<Issue>)`; `collector_config!(Config, unchecked)`
/// for a struct whose options need no validation beyond their types.
#[macro_export]
macro_rules! collector_config {
    ($ty:ty) => {
        $crate::collector_config!($ty, |cfg, key, issues| cfg.check(key, issues));
    };
    ($ty:ty, unchecked) => {
        $crate::collector_config!($ty, |_cfg, _key, _issues| ());
    };
    ($ty:ty, |$cfg:ident, $key:ident, $issues:ident| $check:expr) => {
        impl $crate::collect::registry::CollectorConfig for $ty {
            fn enabled(&self) -> bool {
                self.enabled
            }
            fn set_enabled(&mut self, on: bool) {
                self.enabled = on;
            }
            fn validate(&self, $key: &str, $issues: &mut Vec<$crate::config::Issue>) {
                let $cfg = self;
                $check
            }
        }
    };
}

macro_rules! registry {
    ($( $(#[$doc:meta])* $name:ident => $module:path ),* $(,)?) => {
        /// `collectors:` — one section per collector, each with `enabled` and its options.
        #[derive(Debug, Clone, PartialEq, Deserialize, Default)]
        #[serde(deny_unknown_fields, default)]
        pub struct CollectorsConfig {
            $( $(#[$doc])* pub $name: <$module as CollectorModule>::Config, )*
        }

        /// Every collector name, in registry order.
        pub const ALL: &[&str] = &[$(stringify!($name)),*];

        impl CollectorsConfig {
            /// Switches one collector; false when the name is unknown.
            pub fn set_enabled(&mut self, name: &str, on: bool) -> bool {
                match name {
                    $( stringify!($name) => { self.$name.set_enabled(on); true } )*
                    _ => false,
                }
            }

            /// Switches every collector.
            pub fn set_all(&mut self, on: bool) {
                $( self.$name.set_enabled(on); )*
            }

            /// Names of the enabled collectors, in registry order.
            pub fn enabled(&self) -> Vec<&'static str> {
                let mut v = Vec::new();
                $( if self.$name.enabled() { v.push(stringify!($name)); } )*
                v
            }

            /// Validates every collector's options.
            pub fn validate(&self, issues: &mut Vec<Issue>) {
                $( self.$name.validate(concat!("collectors.", stringify!($name)), issues); )*
            }

            /// Builds the enabled collectors, in registry order.
            pub fn build(&self, host: &HostRoot) -> Vec<Box<dyn Collector>> {
                let mut v: Vec<Box<dyn Collector>> = Vec::new();
                $( if self.$name.enabled() { v.push(<$module as CollectorModule>::build(&self.$name, host)); } )*
                v
            }
        }
    };
}

/// Ties a collector's configuration type to its constructor (implemented by each collector
/// module's marker type).
pub trait CollectorModule {
    /// The `collectors.<name>` section.
    type Config: CollectorConfig
        + Default
        + Clone
        + PartialEq
        + std::fmt::Debug
        + for<'de> Deserialize<'de>;
    /// Builds the collector from validated options.
    fn build(cfg: &Self::Config, host: &HostRoot) -> Box<dyn Collector>;
}

registry! {
    /// `node_arp_*` from /proc/net/arp.
    arp => node::arp::Module,
    /// `node_bcache_*` from /sys/fs/bcache.
    bcache => node::bcache::Module,
    /// `node_bonding_*` from /sys/class/net/*/bonding.
    bonding => node::bonding::Module,
    /// `node_btrfs_*` from /sys/fs/btrfs.
    btrfs => node::btrfs::Module,
    /// `node_nf_conntrack_*`.
    conntrack => node::conntrack::Module,
    /// `node_cpu_*` from /proc/stat.
    cpu => node::cpu::Module,
    /// `node_cpu_frequency_*`, `node_cpu_scaling_*` from cpufreq.
    cpufreq => node::cpufreq::Module,
    /// `node_disk_*` from /proc/diskstats.
    diskstats => node::diskstats::Module,
    /// `node_dmi_info` from /sys/class/dmi/id.
    dmi => node::dmi::Module,
    /// `node_edac_*` from /sys/devices/system/edac.
    edac => node::edac::Module,
    /// `node_entropy_*`.
    entropy => node::entropy::Module,
    /// `node_fibrechannel_*` from /sys/class/fc_host.
    fibrechannel => node::fibrechannel::Module,
    /// `node_filefd_*` from /proc/sys/fs/file-nr.
    filefd => node::filefd::Module,
    /// `node_filesystem_*` from mountinfo and statfs.
    filesystem => node::filesystem::Module,
    /// `node_hwmon_*` from /sys/class/hwmon.
    hwmon => node::hwmon::Module,
    /// `node_infiniband_*` from /sys/class/infiniband.
    infiniband => node::infiniband::Module,
    /// `node_ipvs_*` from /proc/net/ip_vs*.
    ipvs => node::ipvs::Module,
    /// `node_load1/5/15` from /proc/loadavg.
    loadavg => node::loadavg::Module,
    /// `node_md_*` from /proc/mdstat.
    mdadm => node::mdadm::Module,
    /// `node_memory_*` from /proc/meminfo.
    meminfo => node::meminfo::Module,
    /// `node_network_*` attributes from /sys/class/net.
    netclass => node::netclass::Module,
    /// `node_network_*_total` counters from /proc/net/dev.
    netdev => node::netdev::Module,
    /// `node_netstat_*` from /proc/net/{netstat,snmp,snmp6}.
    netstat => node::netstat::Module,
    /// `node_nfs_*` from /proc/net/rpc/nfs.
    nfs => node::nfs::Module,
    /// `node_nfsd_*` from /proc/net/rpc/nfsd.
    nfsd => node::nfsd::Module,
    /// `node_nvme_info` from /sys/class/nvme.
    nvme => node::nvme::Module,
    /// `node_os_*` from os-release.
    os => node::os::Module,
    /// `node_power_supply_*` from /sys/class/power_supply.
    powersupplyclass => node::powersupplyclass::Module,
    /// `node_pressure_*` from /proc/pressure.
    pressure => node::pressure::Module,
    /// `node_rapl_*` from /sys/class/powercap.
    rapl => node::rapl::Module,
    /// `node_schedstat_*` from /proc/schedstat.
    schedstat => node::schedstat::Module,
    /// `node_selinux_*`.
    selinux => node::selinux::Module,
    /// `node_sockstat_*` from /proc/net/sockstat{,6}.
    sockstat => node::sockstat::Module,
    /// `node_softnet_*` from /proc/net/softnet_stat.
    softnet => node::softnet::Module,
    /// `node_boot_time_seconds`, `node_context_switches_total`, ... from /proc/stat.
    stat => node::stat::Module,
    /// `node_tape_*` from /sys/class/scsi_tape.
    tapestats => node::tapestats::Module,
    /// `*.prom` files from a directory.
    textfile => node::textfile::Module,
    /// `node_thermal_zone_*`, `node_cooling_device_*`.
    thermal_zone => node::thermal_zone::Module,
    /// `node_time_*`.
    time => node::time::Module,
    /// `node_timex_*` from adjtimex(2).
    timex => node::timex::Module,
    /// `node_udp_queues` from /proc/net/udp{,6}.
    udp_queues => node::udp_queues::Module,
    /// `node_uname_info`.
    uname => node::uname::Module,
    /// `node_vmstat_*` from /proc/vmstat.
    vmstat => node::vmstat::Module,
    /// `node_xfs_*` from /proc/fs/xfs/stat and /sys/fs/xfs.
    xfs => node::xfs::Module,
    /// `node_zfs_*` from /proc/spl/kstat/zfs.
    zfs => node::zfs::Module,
    /// `namedprocess_namegroup_*`: process groups as process-exporter.
    process => process::Module,
    /// `container_*`: containers from cgroups as the kubelet's cAdvisor.
    cgroup => cgroup::Module,
}

/// Collectors that node_exporter does not have (no `node_scrape_collector_*` for them).
const NON_NODE: &[&str] = &["process", "cgroup"];

/// True for collectors that node_exporter also has (they report `node_scrape_collector_*`).
pub fn is_node_collector(name: &str) -> bool {
    ALL.contains(&name) && !NON_NODE.contains(&name)
}
