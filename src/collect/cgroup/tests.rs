//! End-to-end tests of the cgroup collector on fixture trees (tests/fixtures/cgroup/{v2,v1,hybrid},
//! written to look like real hosts: systemd driver with containerd and CRI-O on v2, cgroupfs
//! driver and plain Docker on v1, Docker with the systemd driver and a service on this machine's
//! hybrid layout), asserting exact values.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use super::*;

fn fixture(name: &str) -> HostRoot {
    let base = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/cgroup")
        .join(name);
    HostRoot::new(base.join("proc"), base.join("sys"), base.join("root"))
}

/// `name{labels}` -> value.
fn series(sink: &Sink) -> BTreeMap<String, f64> {
    let mut m = BTreeMap::new();
    for f in sink.families() {
        for s in f.samples() {
            let prev = m.insert(format!("{}{{{}}}", f.name(), s.labels), s.value);
            assert!(
                prev.is_none(),
                "duplicate series {} {{{}}}",
                f.name(),
                s.labels
            );
        }
    }
    m
}

fn collect(name: &str, cfg: Config, meta: MetadataHandle) -> BTreeMap<String, f64> {
    let mut c = Cgroup::with_metadata(cfg, fixture(name), meta);
    let mut sink = Sink::new();
    c.collect(&mut sink).expect("collect");
    series(&sink)
}

fn labels(container: &str, id: &str, name: &str, ns: &str, pod: &str, image: &str) -> String {
    format!(
        r#"container="{container}",id="{id}",image="{image}",name="{name}",namespace="{ns}",pod="{pod}""#
    )
}

fn get(m: &BTreeMap<String, f64>, family: &str, labels: &str) -> f64 {
    *m.get(&format!("{family}{{{labels}}}"))
        .unwrap_or_else(|| panic!("missing {family}{{{labels}}}"))
}

/// The base labels followed by one extra label (sonde writes extra labels last).
fn with_extra(base: &str, extra: Option<(&str, &str)>) -> String {
    match extra {
        Some((k, v)) => format!("{base},{k}=\"{v}\""),
        None => base.to_string(),
    }
}

const POD1: &str = "/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod6b5f1c2e_3d4a_4f5b_8c6d_7e8f9a0b1c2d.slice";
const UID1: &str = "6b5f1c2e-3d4a-4f5b-8c6d-7e8f9a0b1c2d";
const CID_A: &str = "a1b2c3d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f60718293a4b5c6d7e8f9";
const CID_PAUSE: &str = "f0e1d2c3b4a5968778695a4b3c2d1e0ff0e1d2c3b4a5968778695a4b3c2d1e0f";
const POD2: &str = "/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod0a1b2c3d_4e5f_6071_8293_a4b5c6d7e8f9.slice";
const CID_C: &str = "c3c3c3c3d4d4d4d4e5e5e5e5f6f6f6f6a7a7a7a7b8b8b8b8c9c9c9c9d0d0d0d0";

fn id_a() -> String {
    format!("{POD1}/cri-containerd-{CID_A}.scope")
}

fn id_c() -> String {
    format!("{POD2}/crio-{CID_C}.scope")
}

#[test]
fn v2_systemd_driver_containerd_container_exact_values() {
    let m = collect("v2", Config::default(), MetadataHandle::new());
    let id = id_a();
    let l = labels("", &id, CID_A, "", "", "");
    let cpu_l = with_extra(&l, Some(("cpu", "total")));
    assert_eq!(
        get(&m, "container_cpu_usage_seconds_total", &cpu_l),
        48.213457
    );
    assert_eq!(get(&m, "container_cpu_user_seconds_total", &l), 40.1);
    assert_eq!(get(&m, "container_cpu_system_seconds_total", &l), 8.113457);
    assert_eq!(get(&m, "container_cpu_cfs_periods_total", &l), 1520.0);
    assert_eq!(
        get(&m, "container_cpu_cfs_throttled_periods_total", &l),
        37.0
    );
    assert_eq!(
        get(&m, "container_cpu_cfs_throttled_seconds_total", &l),
        2.253
    );
    assert_eq!(get(&m, "container_memory_usage_bytes", &l), 157286400.0);
    // working set = memory.current - inactive_file = 157286400 - 31457280
    assert_eq!(
        get(&m, "container_memory_working_set_bytes", &l),
        125829120.0
    );
    assert_eq!(get(&m, "container_memory_rss", &l), 104857600.0);
    assert_eq!(get(&m, "container_memory_cache", &l), 41943040.0);
    assert_eq!(get(&m, "container_memory_mapped_file", &l), 8388608.0);
    assert_eq!(get(&m, "container_memory_swap", &l), 0.0);
    assert_eq!(get(&m, "container_memory_failcnt", &l), 3.0);
    assert_eq!(get(&m, "container_oom_events_total", &l), 1.0);
    let fail = |ty: &str, scope: &str| {
        format!(
            r#"container="",id="{id}",image="",name="{CID_A}",namespace="",pod="",failure_type="{ty}",scope="{scope}""#
        )
    };
    assert_eq!(
        get(
            &m,
            "container_memory_failures_total",
            &fail("pgfault", "container")
        ),
        250123.0
    );
    assert_eq!(
        get(
            &m,
            "container_memory_failures_total",
            &fail("pgfault", "hierarchy")
        ),
        250123.0
    );
    assert_eq!(
        get(
            &m,
            "container_memory_failures_total",
            &fail("pgmajfault", "container")
        ),
        42.0
    );
    assert_eq!(get(&m, "container_spec_cpu_quota", &l), 50000.0);
    assert_eq!(get(&m, "container_spec_cpu_period", &l), 100000.0);
    // cpu.weight 20 -> 2 + (19 * 262142) / 9999 = 500 shares
    assert_eq!(get(&m, "container_spec_cpu_shares", &l), 500.0);
    assert_eq!(
        get(&m, "container_spec_memory_limit_bytes", &l),
        268435456.0
    );
    assert_eq!(
        get(&m, "container_spec_memory_reservation_limit_bytes", &l),
        67108864.0
    );
    assert_eq!(get(&m, "container_spec_memory_swap_limit_bytes", &l), 0.0);
    let dev = with_extra(&l, Some(("device", "/dev/vda")));
    assert_eq!(get(&m, "container_fs_reads_bytes_total", &dev), 1048576.0);
    assert_eq!(get(&m, "container_fs_writes_bytes_total", &dev), 20480.0);
    assert!(
        !m.keys()
            .any(|k| k.contains("device=\"\"") || k.contains("loop")),
        "loop devices have no cAdvisor name"
    );
    assert_eq!(get(&m, "container_processes", &l), 2.0);
    assert_eq!(get(&m, "container_threads", &l), 7.0);
    assert_eq!(
        get(&m, "container_pressure_cpu_waiting_seconds_total", &l),
        1.523
    );
    assert_eq!(
        get(&m, "container_pressure_cpu_stalled_seconds_total", &l),
        0.22
    );
    assert_eq!(
        get(&m, "container_pressure_memory_waiting_seconds_total", &l),
        0.085
    );
    assert_eq!(
        get(&m, "container_pressure_memory_stalled_seconds_total", &l),
        0.06
    );
    assert_eq!(
        get(&m, "container_pressure_io_waiting_seconds_total", &l),
        0.301
    );
    assert_eq!(
        get(&m, "container_pressure_io_stalled_seconds_total", &l),
        0.12
    );
    let net = format!(
        r#"container="",id="{id}",image="",name="{CID_A}",namespace="",pod="",interface="eth0""#
    );
    assert_eq!(
        get(&m, "container_network_receive_bytes_total", &net),
        73400320.0
    );
    assert_eq!(
        get(&m, "container_network_receive_packets_total", &net),
        51234.0
    );
    assert_eq!(get(&m, "container_network_receive_errors_total", &net), 2.0);
    assert_eq!(
        get(&m, "container_network_receive_packets_dropped_total", &net),
        7.0
    );
    assert_eq!(
        get(&m, "container_network_transmit_bytes_total", &net),
        10485760.0
    );
    assert_eq!(
        get(&m, "container_network_transmit_packets_total", &net),
        40321.0
    );
    assert_eq!(
        get(&m, "container_network_transmit_errors_total", &net),
        1.0
    );
    assert_eq!(
        get(&m, "container_network_transmit_packets_dropped_total", &net),
        3.0
    );
    assert!(!m.keys().any(|k| k.contains("interface=\"lo\"")));
    let last_seen = get(&m, "container_last_seen", &l);
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock")
        .as_secs() as f64;
    assert!((now - last_seen).abs() <= 5.0, "{last_seen} vs {now}");
    assert_eq!(get(&m, "sonde_cgroup_hierarchy_info", r#"mode="v2""#), 1.0);
}

#[test]
fn v2_crio_besteffort_pods_services_and_what_is_left_out() {
    let m = collect("v2", Config::default(), MetadataHandle::new());
    let c = labels("", &id_c(), CID_C, "", "", "");
    // inactive_file (60000000) > memory.current (52428800): working set floors at 0.
    assert_eq!(get(&m, "container_memory_usage_bytes", &c), 52428800.0);
    assert_eq!(get(&m, "container_memory_working_set_bytes", &c), 0.0);
    assert_eq!(get(&m, "container_spec_cpu_shares", &c), 2.0);
    assert_eq!(get(&m, "container_spec_cpu_period", &c), 100000.0);
    assert_eq!(get(&m, "container_spec_memory_limit_bytes", &c), 0.0);
    assert!(!m.contains_key(&format!("container_spec_cpu_quota{{{c}}}")));
    assert!(!m.contains_key(&format!("container_cpu_cfs_periods_total{{{c}}}")));
    // hostNetwork: no per-container network series.
    assert!(
        !m.keys()
            .any(|k| k.starts_with("container_network") && k.contains(CID_C))
    );
    // CRI-O's conmon scope, the pause container and plain slices are not reported.
    assert!(!m.keys().any(|k| k.contains("crio-conmon")));
    assert!(!m.keys().any(|k| k.contains(CID_PAUSE)));
    assert!(!m.keys().any(|k| k.contains("id=\"/system.slice\"")));
    assert!(!m.keys().any(|k| k.contains("user.slice")));
    assert_eq!(get(&m, "sonde_cgroup_dropped", r#"reason="pause""#), 1.0);
    // Pod and QoS cgroups, the root and the containerd service are.
    let pod = labels("", POD1, "", "", "", "");
    assert_eq!(
        get(&m, "container_memory_working_set_bytes", &pod),
        127926272.0
    );
    assert_eq!(get(&m, "container_spec_cpu_shares", &pod), 500.0);
    let q = labels("", "/kubepods.slice", "", "", "", "");
    assert_eq!(get(&m, "container_memory_usage_bytes", &q), 262144000.0);
    let root = labels("", "/", "", "", "", "");
    assert_eq!(
        get(
            &m,
            "container_cpu_usage_seconds_total",
            &with_extra(&root, Some(("cpu", "total")))
        ),
        987654.321
    );
    assert_eq!(
        get(&m, "container_pressure_io_stalled_seconds_total", &root),
        23.456789
    );
    assert!(!m.contains_key(&format!("container_memory_usage_bytes{{{root}}}")));
    assert!(!m.contains_key(&format!("container_spec_cpu_shares{{{root}}}")));
    let svc = labels("", "/system.slice/containerd.service", "", "", "", "");
    assert_eq!(
        get(
            &m,
            "container_cpu_usage_seconds_total",
            &with_extra(&svc, Some(("cpu", "total")))
        ),
        345.678901
    );
    assert_eq!(
        get(&m, "container_memory_working_set_bytes", &svc),
        73400320.0
    );
    assert_eq!(
        get(
            &m,
            "container_fs_writes_bytes_total",
            &with_extra(&svc, Some(("device", "/dev/vda")))
        ),
        104857600.0
    );
    // root, kubepods.slice, 2 QoS slices, 2 pods, 2 containers, 1 service
    assert_eq!(get(&m, "sonde_cgroup_reported", ""), 9.0);

    let m = collect(
        "v2",
        Config {
            include_system_services: false,
            drop_pod_cgroups: true,
            drop_pause_containers: false,
            ..Config::default()
        },
        MetadataHandle::new(),
    );
    assert!(m.keys().any(|k| k.contains(CID_PAUSE)));
    assert!(!m.keys().any(|k| k.contains("containerd.service")));
    assert!(!m.keys().any(|k| k.contains("id=\"/kubepods.slice\"")));
    assert!(!m.contains_key(&format!("container_memory_usage_bytes{{{pod}}}")));
    assert_eq!(
        get(&m, "sonde_cgroup_dropped", r#"reason="pod_cgroup""#),
        5.0
    );
    // root + 3 containers
    assert_eq!(get(&m, "sonde_cgroup_reported", ""), 4.0);
}

struct Fake {
    calls: AtomicUsize,
}

impl ContainerMetadata for Fake {
    fn lookup(&self, pod_uid: &str, container_id: &str) -> Option<ContainerInfo> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        if pod_uid != UID1 {
            return None;
        }
        let (container, image) = match container_id {
            CID_A => ("nginx", "docker.io/library/nginx:1.27"),
            CID_PAUSE => ("POD", "registry.k8s.io/pause:3.10"),
            "" => ("", ""),
            _ => return None,
        };
        Some(ContainerInfo {
            namespace: "shop".into(),
            pod: "web-7d9f8c6b5-x2x4k".into(),
            container: container.into(),
            image: image.into(),
        })
    }
}

#[test]
fn metadata_provider_plugged_in_after_build_fills_labels_and_filters() {
    let handle = MetadataHandle::new();
    let mut c = Cgroup::with_metadata(Config::default(), fixture("v2"), handle.clone());
    let mut sink = Sink::new();
    c.collect(&mut sink).expect("collect");
    let before = series(&sink);
    let bare = labels("", &id_a(), CID_A, "", "", "");
    assert!(before.contains_key(&format!("container_memory_rss{{{bare}}}")));

    let fake = Arc::new(Fake {
        calls: AtomicUsize::new(0),
    });
    handle.set(fake.clone());
    let mut sink = Sink::new();
    c.collect(&mut sink).expect("collect");
    let m = series(&sink);
    let l = labels(
        "nginx",
        &id_a(),
        CID_A,
        "shop",
        "web-7d9f8c6b5-x2x4k",
        "docker.io/library/nginx:1.27",
    );
    assert_eq!(get(&m, "container_memory_rss", &l), 104857600.0);
    assert!(!m.contains_key(&format!("container_memory_rss{{{bare}}}")));
    let pod = labels("", POD1, "", "shop", "web-7d9f8c6b5-x2x4k", "");
    assert_eq!(get(&m, "container_memory_usage_bytes", &pod), 159383552.0);
    // The sandbox is known as "POD" and still dropped.
    assert!(!m.keys().any(|k| k.contains(CID_PAUSE)));

    // Positive answers are cached: the next scrape asks only about the unknown ones
    // (pod 2, the CRI-O container, the pause container was answered).
    let calls = fake.calls.load(Ordering::SeqCst);
    let mut sink = Sink::new();
    c.collect(&mut sink).expect("collect");
    assert_eq!(fake.calls.load(Ordering::SeqCst) - calls, 2);

    let only_shop = Config {
        namespace_include: Some(Pattern::new("^shop$").expect("re")),
        container_exclude: Some(Pattern::new("^istio-proxy$").expect("re")),
        ..Config::default()
    };
    let mut c = Cgroup::with_metadata(only_shop, fixture("v2"), handle.clone());
    let mut sink = Sink::new();
    c.collect(&mut sink).expect("collect");
    let m = series(&sink);
    let ids: std::collections::BTreeSet<_> = m
        .keys()
        .filter(|k| k.starts_with("container_last_seen"))
        .cloned()
        .collect();
    assert_eq!(
        ids,
        [
            format!("container_last_seen{{{l}}}"),
            format!("container_last_seen{{{pod}}}")
        ]
        .into_iter()
        .collect()
    );
    assert_eq!(get(&m, "sonde_cgroup_dropped", r#"reason="filter""#), 7.0);
}

#[test]
fn path_filters_and_the_cap() {
    let m = collect(
        "v2",
        Config {
            path_exclude: Some(Pattern::new("besteffort|^/$").expect("re")),
            ..Config::default()
        },
        MetadataHandle::new(),
    );
    assert!(!m.keys().any(|k| k.contains("besteffort")));
    assert!(!m.keys().any(|k| k.contains(r#"id="/""#)));
    assert!(m.keys().any(|k| k.contains(CID_A)));
    let m = collect(
        "v2",
        Config {
            max_containers: 3,
            ..Config::default()
        },
        MetadataHandle::new(),
    );
    // root and the two containers come first.
    let kept: std::collections::BTreeSet<_> = m
        .keys()
        .filter(|k| k.starts_with("container_last_seen"))
        .cloned()
        .collect();
    assert_eq!(kept.len(), 3);
    assert!(kept.iter().any(|k| k.contains(CID_A)));
    assert!(kept.iter().any(|k| k.contains(CID_C)));
    assert!(kept.iter().any(|k| k.contains(r#"id="/""#)));
    assert_eq!(
        get(&m, "sonde_cgroup_dropped", r#"reason="max_containers""#),
        6.0
    );
    assert_eq!(get(&m, "sonde_cgroup_reported", ""), 3.0);
}

#[test]
fn v1_cgroupfs_driver_and_plain_docker() {
    let m = collect("v1", Config::default(), MetadataHandle::new());
    assert_eq!(get(&m, "sonde_cgroup_hierarchy_info", r#"mode="v1""#), 1.0);
    let cid = "d4d4d4d4e5e5e5e5f6f6f6f6a7a7a7a7b8b8b8b8c9c9c9c9d0d0d0d0e1e1e1e1";
    let id = format!("/kubepods/besteffort/pod0a1b2c3d-4e5f-6071-8293-a4b5c6d7e8f9/{cid}");
    let l = labels("", &id, cid, "", "", "");
    assert_eq!(
        get(
            &m,
            "container_cpu_usage_seconds_total",
            &with_extra(&l, Some(("cpu", "total")))
        ),
        91.23456789
    );
    // cpuacct.stat ticks at USER_HZ = 100
    assert_eq!(get(&m, "container_cpu_user_seconds_total", &l), 70.0);
    assert_eq!(get(&m, "container_cpu_system_seconds_total", &l), 20.0);
    assert!(!m.contains_key(&format!("container_cpu_cfs_periods_total{{{l}}}")));
    assert!(!m.contains_key(&format!("container_spec_cpu_quota{{{l}}}")));
    assert_eq!(get(&m, "container_spec_cpu_period", &l), 100000.0);
    assert_eq!(get(&m, "container_spec_cpu_shares", &l), 2.0);
    assert_eq!(get(&m, "container_memory_usage_bytes", &l), 73400320.0);
    // usage - total_inactive_file = 73400320 - 10485760
    assert_eq!(
        get(&m, "container_memory_working_set_bytes", &l),
        62914560.0
    );
    assert_eq!(get(&m, "container_memory_rss", &l), 56623104.0);
    assert_eq!(get(&m, "container_memory_cache", &l), 12582912.0);
    assert_eq!(get(&m, "container_memory_mapped_file", &l), 1048576.0);
    assert_eq!(get(&m, "container_memory_failcnt", &l), 5.0);
    assert_eq!(get(&m, "container_oom_events_total", &l), 2.0);
    let fail = |ty: &str, scope: &str| {
        format!(
            r#"container="",id="{id}",image="",name="{cid}",namespace="",pod="",failure_type="{ty}",scope="{scope}""#
        )
    };
    assert_eq!(
        get(
            &m,
            "container_memory_failures_total",
            &fail("pgfault", "container")
        ),
        654321.0
    );
    assert_eq!(
        get(
            &m,
            "container_memory_failures_total",
            &fail("pgfault", "hierarchy")
        ),
        654400.0
    );
    assert_eq!(
        get(
            &m,
            "container_memory_failures_total",
            &fail("pgmajfault", "container")
        ),
        7.0
    );
    assert_eq!(
        get(
            &m,
            "container_memory_failures_total",
            &fail("pgmajfault", "hierarchy")
        ),
        8.0
    );
    // 9223372036854771712 (no limit) is reported as 0, as cAdvisor.
    assert_eq!(get(&m, "container_spec_memory_limit_bytes", &l), 0.0);
    assert_eq!(get(&m, "container_spec_memory_swap_limit_bytes", &l), 0.0);
    let dev = with_extra(&l, Some(("device", "/dev/sda")));
    assert_eq!(get(&m, "container_fs_reads_bytes_total", &dev), 4096.0);
    assert_eq!(get(&m, "container_fs_writes_bytes_total", &dev), 8192.0);
    assert_eq!(get(&m, "container_processes", &l), 2.0);
    assert_eq!(get(&m, "container_threads", &l), 3.0);
    assert!(!m.keys().any(|k| k.starts_with("container_pressure")));

    let did = "5e5e5e5e6f6f6f6f7a7a7a7a8b8b8b8b9c9c9c9cadadadadbebebebecfcfcfcf";
    let d = labels("", &format!("/docker/{did}"), did, "", "", "");
    assert_eq!(
        get(
            &m,
            "container_cpu_usage_seconds_total",
            &with_extra(&d, Some(("cpu", "total")))
        ),
        29.87654321
    );
    assert_eq!(get(&m, "container_cpu_user_seconds_total", &d), 23.45);
    assert_eq!(get(&m, "container_cpu_system_seconds_total", &d), 5.67);
    assert_eq!(get(&m, "container_cpu_cfs_periods_total", &d), 4321.0);
    assert_eq!(
        get(&m, "container_cpu_cfs_throttled_periods_total", &d),
        123.0
    );
    assert_eq!(
        get(&m, "container_cpu_cfs_throttled_seconds_total", &d),
        9.87654321
    );
    assert_eq!(get(&m, "container_spec_cpu_quota", &d), 150000.0);
    assert_eq!(get(&m, "container_spec_cpu_shares", &d), 1024.0);
    assert_eq!(
        get(&m, "container_spec_memory_limit_bytes", &d),
        536870912.0
    );
    assert_eq!(
        get(&m, "container_spec_memory_swap_limit_bytes", &d),
        1073741824.0
    );
    assert_eq!(
        get(&m, "container_spec_memory_reservation_limit_bytes", &d),
        268435456.0
    );
    assert_eq!(get(&m, "container_memory_swap", &d), 4096.0);
    assert_eq!(
        get(&m, "container_memory_working_set_bytes", &d),
        246415360.0
    );
    assert_eq!(
        get(
            &m,
            "container_fs_reads_bytes_total",
            &with_extra(&d, Some(("device", "/dev/sda")))
        ),
        10485760.0
    );
    let root = labels("", "/", "", "", "", "");
    assert_eq!(
        get(&m, "container_memory_working_set_bytes", &root),
        5227249664.0
    );
    assert!(!m.keys().any(|k| k.contains("id=\"/docker\"")));
    assert!(!m.keys().any(|k| k.contains("user.slice")));
    // root, kubepods, besteffort, pod, 2 containers
    assert_eq!(get(&m, "sonde_cgroup_reported", ""), 6.0);
}

#[test]
fn hybrid_docker_systemd_driver_service_and_unified_pressure() {
    let host = fixture("hybrid");
    let did = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
    let rel = format!("system.slice/docker-{did}.scope");
    // Start time: the earliest mtime of the cgroup's directories, as cAdvisor's raw handler.
    for (i, ctrl) in ["cpu", "cpuacct", "memory", "pids"].iter().enumerate() {
        let dir = host.sys(&format!("fs/cgroup/{ctrl}/{rel}"));
        let t = UNIX_EPOCH + Duration::from_secs(1_700_000_300 - 100 * i as u64);
        std::fs::File::open(&dir)
            .and_then(|f| f.set_modified(t))
            .expect("set mtime");
    }
    let m = collect("hybrid", Config::default(), MetadataHandle::new());
    assert_eq!(
        get(&m, "sonde_cgroup_hierarchy_info", r#"mode="hybrid""#),
        1.0
    );
    let d = labels("", &format!("/{rel}"), did, "", "", "");
    assert_eq!(get(&m, "container_start_time_seconds", &d), 1_700_000_000.0);
    assert_eq!(
        get(
            &m,
            "container_cpu_usage_seconds_total",
            &with_extra(&d, Some(("cpu", "total")))
        ),
        4.567890123
    );
    assert_eq!(get(&m, "container_cpu_user_seconds_total", &d), 4.0);
    assert_eq!(get(&m, "container_cpu_system_seconds_total", &d), 0.5);
    assert_eq!(get(&m, "container_cpu_cfs_periods_total", &d), 900.0);
    assert_eq!(
        get(&m, "container_cpu_cfs_throttled_periods_total", &d),
        12.0
    );
    assert_eq!(
        get(&m, "container_cpu_cfs_throttled_seconds_total", &d),
        0.345
    );
    assert_eq!(get(&m, "container_spec_cpu_shares", &d), 512.0);
    assert_eq!(
        get(&m, "container_spec_memory_limit_bytes", &d),
        134217728.0
    );
    assert_eq!(
        get(&m, "container_spec_memory_reservation_limit_bytes", &d),
        0.0
    );
    assert_eq!(
        get(&m, "container_memory_working_set_bytes", &d),
        35651584.0
    );
    assert_eq!(
        get(&m, "container_pressure_cpu_waiting_seconds_total", &d),
        0.077
    );
    assert_eq!(
        get(&m, "container_pressure_cpu_stalled_seconds_total", &d),
        0.011
    );
    assert_eq!(
        get(&m, "container_pressure_memory_waiting_seconds_total", &d),
        0.022
    );
    assert_eq!(
        get(&m, "container_pressure_io_stalled_seconds_total", &d),
        0.001
    );
    assert_eq!(
        get(
            &m,
            "container_fs_writes_bytes_total",
            &with_extra(&d, Some(("device", "/dev/vda")))
        ),
        1024.0
    );
    assert_eq!(get(&m, "container_processes", &d), 1.0);
    assert_eq!(get(&m, "container_threads", &d), 4.0);
    let s = labels("", "/system.slice/sshd.service", "", "", "", "");
    assert_eq!(get(&m, "container_memory_working_set_bytes", &s), 5242880.0);
    assert_eq!(
        get(&m, "container_pressure_io_waiting_seconds_total", &s),
        0.0
    );
    assert_eq!(get(&m, "container_cpu_user_seconds_total", &s), 1.5);
    let root = labels("", "/", "", "", "", "");
    assert_eq!(
        get(&m, "container_pressure_cpu_waiting_seconds_total", &root),
        284.615024
    );
    assert_eq!(get(&m, "sonde_cgroup_reported", ""), 3.0);
}

#[test]
fn swap_is_read_only_on_hosts_with_swap() {
    assert_eq!(
        swap_total_kb("MemTotal: 1 kB\nSwapTotal:        0 kB\n"),
        Some(0)
    );
    assert_eq!(swap_total_kb("SwapTotal:  8388604 kB\n"), Some(8388604));
    assert_eq!(swap_total_kb("MemTotal: 1 kB\n"), None);
}

#[test]
fn no_cgroup_mounts_writes_nothing() {
    let dir = tempfile::tempdir().expect("tempdir");
    let host = HostRoot::new(dir.path(), dir.path(), dir.path());
    let mut c = Module::build(&Config::default(), &host);
    let mut sink = Sink::new();
    c.collect(&mut sink).expect("missing is not an error");
    assert!(sink.is_empty());
}

#[test]
fn config_keys_and_validation() {
    let cfg: Config = serde_saphyr::from_str(
        "drop_pause_containers: false\nmax_containers: 10\npath_exclude: '^/user\\.slice'\n",
    )
    .expect("yaml");
    assert!(!cfg.drop_pause_containers);
    assert_eq!(cfg.max_containers, 10);
    assert!(
        cfg.path_exclude
            .as_ref()
            .is_some_and(|p| p.is_match("/user.slice/x"))
    );
    assert!(serde_saphyr::from_str::<Config>("max_container: 1\n").is_err());
    let mut issues = Vec::new();
    Config {
        max_containers: 0,
        ..Config::default()
    }
    .check("collectors.cgroup", &mut issues);
    assert_eq!(issues.len(), 1);
}
