//! End to end on a fake Kubernetes node: the real `sonde` binary reads a copied cgroup v2 fixture
//! tree (`tests/fixtures/k8s_e2e`, whose pod UIDs and container ids match the pods in its
//! `pods.json`), resolves pods through a fake API server over real HTTP (list + watch with
//! `fieldSelector=spec.nodeName=node1`, reached through a kubeconfig the test writes), and a real
//! Prometheus scrapes it every second while the test advances the containers' `cpu.stat`
//! counters. `sum by (namespace,pod)(rate(container_cpu_usage_seconds_total[1m]))` must return
//! exactly the fixture pods (plus the pod-less group of node-level cgroups), with exact totals.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use common::fake_kube::{bump, copy_tree, start_fake, write_kubeconfig};
use common::*;
use serde_json::Value;

const PODS: &str = include_str!("fixtures/k8s_e2e/pods.json");

/// A query result as `(namespace, pod) -> value` (Prometheus drops empty labels: "" then).
fn by_pod(result: &[Value]) -> BTreeMap<(String, String), f64> {
    result
        .iter()
        .map(|s| {
            let l = |k: &str| s["metric"][k].as_str().unwrap_or_default().to_string();
            let v: f64 = s["value"][1]
                .as_str()
                .expect("value")
                .parse()
                .expect("number");
            ((l("namespace"), l("pod")), v)
        })
        .collect()
}

fn pod(ns: &str, name: &str) -> (String, String) {
    (ns.to_string(), name.to_string())
}

const CG: &str = "sys/fs/cgroup/kubepods.slice";
const WEB: &str =
    "kubepods-burstable.slice/kubepods-burstable-pod0b7e1c8a_1111_4c3e_9a55_000000000001.slice";
const DB: &str = "kubepods-pod0b7e1c8a_2222_4c3e_9a55_000000000002.slice";
const DEBUG: &str =
    "kubepods-besteffort.slice/kubepods-besteffort-pod0b7e1c8a_5555_4c3e_9a55_000000000005.slice";
const WEB_APP: &str =
    "cri-containerd-aaaa000000000000000000000000000000000000000000000000000000000002.scope";

#[test]
fn prometheus_sums_container_cpu_by_fixture_pod() {
    let started = Instant::now();
    let (_rt, api) = start_fake(PODS);
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path().join("host");
    copy_tree(&repo().join("tests/fixtures/k8s_e2e"), &root);

    let kubeconfig = write_kubeconfig(dir.path(), api);
    let cfg = dir.path().join("sonde.yaml");
    std::fs::write(
        &cfg,
        format!(
            "kube:\n  enabled: true\n  node_name: node1\n  kubeconfig: {}\n",
            kubeconfig.display()
        ),
    )
    .expect("write sonde.yaml");
    let procfs = format!("--path.procfs={}", root.join("proc").display());
    let sysfs = format!("--path.sysfs={}", root.join("sys").display());
    let rootfs = format!("--path.rootfs={}", root.display());
    let data = tempfile::tempdir().expect("data dir");
    let sonde = start_sonde_env(
        &[
            "--config",
            cfg.to_str().expect("utf-8"),
            &procfs,
            &sysfs,
            &rootfs,
            "--collector.disable-defaults",
            "--collector.cgroup",
        ],
        data.path(),
        &[("KUBECONFIG", ""), ("NODE_NAME", "")],
    );

    // Ready only once the fake's initial list has been synced.
    wait_ready(sonde.addr, Duration::from_secs(10));

    let prom = start_prometheus(dir.path(), &prometheus_config(sonde.addr), &[]);

    // Prometheus' first scrape comes a few seconds after start (target discovery); the counters
    // only start moving after it, so every bump lands between two stored samples.
    wait_for_query(
        prom.addr,
        "up{job=\"sonde\"} == 1",
        Duration::from_secs(15),
        "Prometheus never scraped sonde",
    );

    // Advance CPU for every pod and its containers, a few times, while Prometheus scrapes.
    let cg = root.join(CG);
    let bumps: [(String, u64); 7] = [
        (format!("{WEB}/{WEB_APP}"), 1_000_000),
        (
            format!(
                "{WEB}/cri-containerd-aaaa000000000000000000000000000000000000000000000000000000000003.scope"
            ),
            2_000_000,
        ),
        (WEB.to_string(), 3_000_000),
        (
            format!(
                "{DB}/crio-bbbb000000000000000000000000000000000000000000000000000000000001.scope"
            ),
            500_000,
        ),
        (DB.to_string(), 500_000),
        (
            format!(
                "{DEBUG}/cri-containerd-eeee000000000000000000000000000000000000000000000000000000000001.scope"
            ),
            250_000,
        ),
        (DEBUG.to_string(), 250_000),
    ];
    const TICKS: u64 = 4;
    for _ in 0..TICKS {
        std::thread::sleep(Duration::from_millis(1100));
        for (d, delta) in &bumps {
            bump(&cg.join(d).join("cpu.stat"), *delta);
        }
    }

    // Totals per pod from the fixture's usage_usec (pod cgroup + its containers) plus the bumps.
    let secs = |usec: u64| usec as f64 / 1e6;
    let want_total: BTreeMap<(String, String), f64> = [
        (
            pod("shop", "web-7d9c6b5f4-x2x9z"),
            secs(48_300_000 + 48_213_457 + 86_543 + TICKS * 6_000_000),
        ),
        (
            pod("shop", "db-0"),
            secs(48_300_000 + 48_213_457 + TICKS * 1_000_000),
        ),
        (
            pod("default", "debug"),
            secs(100_000 + 86_543 + TICKS * 500_000),
        ),
        // Node-level cgroups, no pod: the root, kubepods, the QoS slices and containerd.service
        // (sonde does not report the bare system.slice parent).
        (
            pod("", ""),
            secs(987_654_321_000 + 61_000_000 + 50_000_000 + 50_000_000 + 345_678_901),
        ),
    ]
    .into_iter()
    .collect();

    // Wait until Prometheus has scraped the final counters.
    let totals_q = "sum by (namespace,pod)(container_cpu_usage_seconds_total{job=\"sonde\"})";
    let deadline = Instant::now() + Duration::from_secs(15);
    let mut totals = BTreeMap::new();
    while Instant::now() < deadline {
        totals = by_pod(&query(prom.addr, totals_q));
        if totals.len() == want_total.len()
            && want_total
                .iter()
                .all(|(k, v)| totals.get(k).is_some_and(|t| (t - v).abs() < 1e-6))
        {
            break;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    assert_eq!(
        totals.keys().collect::<BTreeSet<_>>(),
        want_total.keys().collect::<BTreeSet<_>>()
    );
    for (k, v) in &want_total {
        let t = totals[k];
        assert!((t - v).abs() < 1e-6, "{k:?}: stored total {t}, want {v}");
    }

    // The acceptance query: exactly the fixture pods, moving; the pod-less group did not move.
    let rates = by_pod(&query(
        prom.addr,
        "sum by (namespace,pod)(rate(container_cpu_usage_seconds_total[1m]))",
    ));
    assert_eq!(
        rates.keys().collect::<BTreeSet<_>>(),
        want_total.keys().collect::<BTreeSet<_>>(),
        "{rates:?}"
    );
    for p in [
        pod("shop", "web-7d9c6b5f4-x2x9z"),
        pod("shop", "db-0"),
        pod("default", "debug"),
    ] {
        assert!(rates[&p] > 0.0, "{p:?} rate {}", rates[&p]);
    }
    assert_eq!(rates[&pod("", "")], 0.0);
    // web moved 6x as much as db-0 at every tick; db-0 twice as much as debug.
    assert!(rates[&pod("shop", "web-7d9c6b5f4-x2x9z")] > rates[&pod("shop", "db-0")]);
    assert!(rates[&pod("shop", "db-0")] > rates[&pod("default", "debug")]);

    // Pod info for every pod of node1 the fake serves (node2's pod is filtered out).
    let info: BTreeSet<(String, String, String, String)> = query(prom.addr, "sonde_pod_info")
        .iter()
        .map(|s| {
            let l = |k: &str| s["metric"][k].as_str().unwrap_or_default().to_string();
            (l("namespace"), l("pod"), l("workload"), l("workload_kind"))
        })
        .collect();
    let t = |a: &str, b: &str, c: &str, d: &str| (a.into(), b.into(), c.into(), d.into());
    let want_info: BTreeSet<(String, String, String, String)> = [
        t("default", "debug", "debug", "Pod"),
        t(
            "kube-system",
            "kube-apiserver-node1",
            "kube-apiserver",
            "StaticPod",
        ),
        t("monitoring", "sonde-abcde", "sonde", "DaemonSet"),
        t("ops", "backup-29399040-kq7vn", "backup", "CronJob"),
        t("shop", "db-0", "db", "StatefulSet"),
        t("shop", "web-7d9c6b5f4-x2x9z", "web", "Deployment"),
    ]
    .into_iter()
    .collect();
    assert_eq!(info, want_info);

    // Working set = memory.current − inactive_file from the fixture (157286400 − 31457280).
    let ws = query(
        prom.addr,
        "container_memory_working_set_bytes{namespace=\"shop\",pod=\"web-7d9c6b5f4-x2x9z\",container=\"app\"}",
    );
    assert_eq!(ws.len(), 1, "{ws:?}");
    assert_eq!(ws[0]["value"][1].as_str(), Some("125829120"));

    assert!(
        started.elapsed() < Duration::from_secs(40),
        "took {:?}",
        started.elapsed()
    );
}
