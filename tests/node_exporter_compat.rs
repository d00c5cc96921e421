//! Drop-in compatibility with node_exporter 1.5, checked against the real binary (Debian's
//! `prometheus-node-exporter`):
//! - on the recorded fixture hosts, both programs read the same files, so every `node_*` series
//!   (name, labels, value) and every family type must be identical;
//! - on this live machine, the family set, types and label names must match, counters read by
//!   sonde between two node_exporter scrapes must lie between them (ne1 <= sonde <= ne2), and
//!   values that do not move must be equal.

mod common;

use std::collections::{BTreeMap, BTreeSet};

use common::*;
use sonde::collect::MetricType;
use sonde::expo::parse::ParsedFamily;

/// Collectors that read only files under procfs/sysfs/rootfs (no syscalls about the live
/// system), so their output on a fixture tree is fully determined by the tree.
const FILE_COLLECTORS: &[&str] = &[
    "arp",
    "bcache",
    "bonding",
    "btrfs",
    "conntrack",
    "cpu",
    "cpufreq",
    "diskstats",
    "dmi",
    "edac",
    "entropy",
    "fibrechannel",
    "filefd",
    "filesystem",
    "hwmon",
    "infiniband",
    "ipvs",
    "loadavg",
    "mdadm",
    "meminfo",
    "netclass",
    "netdev",
    "netstat",
    "nfs",
    "nfsd",
    "nvme",
    "os",
    "powersupplyclass",
    "pressure",
    "rapl",
    "schedstat",
    "sockstat",
    "softnet",
    "stat",
    "tapestats",
    "textfile",
    "thermal_zone",
    "udp_queues",
    "vmstat",
    "xfs",
    "zfs",
];

/// Families that only one of the two programs has, by design (README "Differences").
fn ignored_family(name: &str) -> bool {
    !name.starts_with("node_")
        || name.starts_with("node_scrape_collector_")
        || name == "node_exporter_build_info"
        || name.starts_with("node_systemd_")
}

fn node_families(fams: Vec<ParsedFamily>) -> BTreeMap<String, ParsedFamily> {
    fams.into_iter()
        .filter(|f| !ignored_family(&f.name))
        .map(|f| (f.name.clone(), f))
        .collect()
}

fn flags_for(host: &str) -> Vec<String> {
    let root = fixture_host(host);
    let mut v = vec![
        format!("--path.procfs={}", root.join("proc").display()),
        format!("--path.sysfs={}", root.join("sys").display()),
        format!("--path.rootfs={}", root.join("root").display()),
        "--collector.disable-defaults".to_string(),
    ];
    v.extend(FILE_COLLECTORS.iter().map(|c| format!("--collector.{c}")));
    v.push(format!(
        "--collector.textfile.directory={}",
        // One host reads good files, the other a directory with broken ones
        // (node_textfile_scrape_error 1, the good files still merged).
        repo()
            .join("tests/fixtures/textfile")
            .join(if host == "modern" { "good" } else { "bad" })
            .display()
    ));
    v
}

/// statfs(2) of fixture mount points that exist inside the fixture root reads the live disk,
/// whose free space moves between the two programs' calls: compare presence, not value.
const LIVE_VALUES: &[&str] = &[
    "node_filesystem_free_bytes",
    "node_filesystem_avail_bytes",
    "node_filesystem_files_free",
];

fn compare_fixture_host(host: &str) {
    let flags = flags_for(host);
    let args: Vec<&str> = flags.iter().map(String::as_str).collect();
    let mut ne_args = args.clone();
    let udev = format!(
        "--path.udev.data={}",
        fixture_host(host).join("root/run/udev/data").display()
    );
    ne_args.push(&udev);
    // node_exporter 1.5 reads interface counters over rtnetlink from the live kernel by default;
    // on a fixture tree it must read the tree's /proc/net/dev like sonde.
    ne_args.push("--no-collector.netdev.netlink");
    let ne = start_node_exporter(&ne_args);
    let sonde = start_sonde(&args);
    let ne_fams = node_families(scrape(ne.addr));
    let sonde_fams = node_families(scrape(sonde.addr));

    let mut problems = Vec::new();
    for (name, f) in &ne_fams {
        match sonde_fams.get(name) {
            None => problems.push(format!("missing family {name}")),
            Some(s) if s.kind != f.kind => problems.push(format!(
                "{name}: type {:?}, node_exporter has {:?}",
                s.kind, f.kind
            )),
            _ => {}
        }
    }
    for name in sonde_fams.keys() {
        if !ne_fams.contains_key(name) {
            problems.push(format!("extra family {name}"));
        }
    }
    let ne_series = series(&ne_fams.into_values().collect::<Vec<_>>());
    let sonde_series = series(&sonde_fams.into_values().collect::<Vec<_>>());
    for (k, v) in &ne_series {
        match sonde_series.get(k) {
            None => problems.push(format!("missing series {} {v}", show(k))),
            Some(s)
                if s.to_bits() != v.to_bits()
                    && !(s.is_nan() && v.is_nan())
                    && !LIVE_VALUES.contains(&k.0.as_str()) =>
            {
                problems.push(format!("{}: sonde {s}, node_exporter {v}", show(k)))
            }
            _ => {}
        }
    }
    for (k, v) in &sonde_series {
        if !ne_series.contains_key(k) {
            problems.push(format!("extra series {} {v}", show(k)));
        }
    }
    assert!(
        problems.is_empty(),
        "{host}: {} differences from node_exporter:\n{}",
        problems.len(),
        problems.join("\n")
    );
    assert!(
        ne_series.len() > 100,
        "{host}: the fixture exercises only {} series",
        ne_series.len()
    );
}

#[test]
fn modern_fixture_host_is_identical_to_node_exporter() {
    compare_fixture_host("modern");
}

#[test]
fn legacy_fixture_host_is_identical_to_node_exporter() {
    compare_fixture_host("legacy");
}

/// Gauges that cannot change between two scrapes a few milliseconds apart.
const STABLE_GAUGES: &[&str] = &[
    "node_boot_time_seconds",
    "node_memory_MemTotal_bytes",
    "node_memory_SwapTotal_bytes",
    "node_filefd_maximum",
    "node_entropy_pool_size_bits",
    "node_network_mtu_bytes",
    "node_network_up",
    "node_network_info",
    "node_nf_conntrack_entries_limit",
    "node_os_info",
    "node_os_version",
    "node_uname_info",
    "node_filesystem_size_bytes",
    "node_filesystem_files",
    "node_filesystem_readonly",
    "node_filesystem_device_error",
    "node_time_zone_offset_seconds",
    "node_disk_info",
    "node_selinux_enabled",
    "node_network_carrier",
    "node_network_transmit_queue_length",
];

/// Families whose series set legitimately changes from one moment to the next.
const VOLATILE_SERIES: &[&str] = &["node_arp_entries"];

#[test]
fn live_host_matches_node_exporter_defaults() {
    let ne = start_node_exporter(&[]);
    let sonde = start_sonde(&[]);
    let ne1 = node_families(scrape(ne.addr));
    let mine = node_families(scrape(sonde.addr));
    let ne2 = node_families(scrape(ne.addr));

    let mut problems = Vec::new();
    let ne_names: BTreeSet<&String> = ne1.keys().collect();
    let my_names: BTreeSet<&String> = mine.keys().collect();
    for n in ne_names.difference(&my_names) {
        problems.push(format!("missing family {n}"));
    }
    for n in my_names.difference(&ne_names) {
        problems.push(format!("extra family {n}"));
    }
    let s1 = series(&ne1.values().cloned().collect::<Vec<_>>());
    let s2 = series(&ne2.values().cloned().collect::<Vec<_>>());
    let sm = series(&mine.values().cloned().collect::<Vec<_>>());
    for (name, f) in &ne1 {
        let Some(m) = mine.get(name) else { continue };
        if m.kind != f.kind {
            problems.push(format!("{name}: type {:?} vs {:?}", m.kind, f.kind));
        }
        let label_names = |fam: &ParsedFamily| -> BTreeSet<String> {
            fam.samples
                .iter()
                .flat_map(|s| s.labels.iter().map(|(k, _)| k.clone()))
                .collect()
        };
        if label_names(m) != label_names(f) {
            problems.push(format!(
                "{name}: label names {:?} vs {:?}",
                label_names(m),
                label_names(f)
            ));
        }
        if VOLATILE_SERIES.contains(&name.as_str()) {
            continue;
        }
        for s in &f.samples {
            let mut labels = s.labels.clone();
            labels.sort();
            let key = (s.name.clone(), labels);
            let Some(&v) = sm.get(&key) else {
                problems.push(format!("missing series {}", show(&key)));
                continue;
            };
            let lo = s1[&key];
            let hi = s2.get(&key).copied().unwrap_or(lo);
            if f.kind == MetricType::Counter && !(lo <= v && v <= hi) {
                problems.push(format!(
                    "{}: sonde {v} not within node_exporter's {lo}..{hi}",
                    show(&key)
                ));
            }
            if STABLE_GAUGES.contains(&name.as_str()) && lo == hi && v != lo {
                problems.push(format!("{}: sonde {v}, node_exporter {lo}", show(&key)));
            }
        }
    }
    for (key, _) in sm.iter() {
        if !s1.contains_key(key)
            && !s2.contains_key(key)
            && !VOLATILE_SERIES.contains(&key.0.as_str())
            && ne_names.contains(&key.0)
        {
            problems.push(format!("extra series {}", show(key)));
        }
    }
    assert!(
        problems.is_empty(),
        "{} differences from node_exporter on this host:\n{}",
        problems.len(),
        problems.join("\n")
    );
}
