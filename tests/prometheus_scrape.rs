//! A real Prometheus server (Debian's 2.42) scrapes sonde running on a recorded fixture host.
//! Prometheus negotiates OpenMetrics and parses it with its own parser; every `node_*` value it
//! stores must equal what sonde's text exposition says, the target must be healthy, and the
//! number of samples Prometheus ingested must equal the number sonde exposed.
//! Also: the shared start helpers (`tests/common`) refuse a port that another process took
//! between `free_port()` and the program's bind, instead of returning a daemon pointing at it.

mod common;

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener};
use std::time::Duration;

use common::*;

#[test]
fn prometheus_scrapes_every_fixture_value_exactly() {
    let root = fixture_host("modern");
    let procfs = format!("--path.procfs={}", root.join("proc").display());
    let sysfs = format!("--path.sysfs={}", root.join("sys").display());
    let rootfs = format!("--path.rootfs={}", root.join("root").display());
    // One collection serves every scrape for a minute, so Prometheus' scrapes and the test's
    // own scrape see the very same values, including live ones (time, timex, filesystem).
    let dir = tempfile::tempdir().expect("tempdir");
    let sonde_cfg = dir.path().join("sonde.yaml");
    std::fs::write(&sonde_cfg, "scrape:\n  min_interval_seconds: 120\n").expect("write");
    let sonde = start_sonde(&[
        "--config",
        sonde_cfg.to_str().expect("utf-8"),
        &procfs,
        &sysfs,
        &rootfs,
    ]);

    let prom = start_prometheus(dir.path(), &prometheus_config(sonde.addr), &[]);

    // Wait for two successful scrapes.
    wait_for_query(
        prom.addr,
        "up{job=\"sonde\"} == 1 and on() count_over_time(up{job=\"sonde\"}[1m]) >= 2",
        Duration::from_secs(60),
        "Prometheus never scraped sonde successfully",
    );
    let r = get(prom.addr, "/api/v1/targets", &[]);
    let targets: serde_json::Value = serde_json::from_slice(&r.body).expect("json");
    let t = &targets["data"]["activeTargets"][0];
    assert_eq!(t["health"], "up", "{t}");
    assert_eq!(t["lastError"], "", "{t}");

    // Everything sonde exposes for node_* families, straight from a text scrape.
    let exposed: BTreeMap<SeriesKey, f64> = series(&scrape(sonde.addr))
        .into_iter()
        .filter(|((name, _), _)| name.starts_with("node_"))
        // Prometheus stores an empty label value as an absent label.
        .map(|((name, labels), v)| {
            let labels = labels.into_iter().filter(|(_, v)| !v.is_empty()).collect();
            ((name, labels), v)
        })
        .collect();
    assert!(exposed.len() > 100, "only {} node series", exposed.len());
    let stored = query(prom.addr, "{__name__=~\"node_.+\",job=\"sonde\"}");
    let mut seen = BTreeMap::new();
    for s in &stored {
        let metric = s["metric"].as_object().expect("metric");
        let name = metric["__name__"].as_str().expect("name").to_string();
        let mut labels: Vec<(String, String)> = metric
            .iter()
            .filter(|(k, _)| !["__name__", "job", "instance"].contains(&k.as_str()))
            .map(|(k, v)| (k.clone(), v.as_str().expect("label").to_string()))
            .collect();
        labels.sort();
        seen.insert((name, labels), prom_value(s));
    }
    let mut problems = Vec::new();
    for (k, v) in &exposed {
        match seen.get(k) {
            None => problems.push(format!("not stored: {}", show(k))),
            Some(p) if p.to_bits() != v.to_bits() && !(p.is_nan() && v.is_nan()) => {
                problems.push(format!("{}: exposed {v}, stored {p}", show(k)))
            }
            _ => {}
        }
    }
    for k in seen.keys() {
        if !exposed.contains_key(k) {
            problems.push(format!("stored but not exposed: {}", show(k)));
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));

    let total: usize = scrape(sonde.addr).iter().map(|f| f.samples.len()).sum();
    let scraped = query(prom.addr, "scrape_samples_scraped{job=\"sonde\"}");
    assert_eq!(prom_value(&scraped[0]) as usize, total);
}

/// An impostor on a loopback port answering `200 ok` to every request (like node_exporter's
/// landing page, or another test's Prometheus answering `/-/ready`); runs until the test ends.
fn impostor() -> SocketAddr {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind impostor");
    let addr = l.local_addr().expect("addr");
    std::thread::spawn(move || {
        for mut s in l.incoming().flatten() {
            let mut buf = [0u8; 4096];
            let _ = s.read(&mut buf);
            let _ =
                s.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok");
        }
    });
    addr
}

/// Whether a start attempt was refused as "port taken" (so the caller retries elsewhere).
fn port_taken<T>(r: Result<T, StartError>) -> Result<(), String> {
    match r {
        Err(StartError::PortTaken(_)) => Ok(()),
        Err(StartError::Failed(e)) => Err(format!("failed, but not as port taken: {e}")),
        Ok(_) => Err("returned a daemon for a port held by another process".to_string()),
    }
}

#[test]
fn start_helpers_refuse_a_port_held_by_another_process() {
    let taken = impostor();
    let dir = tempfile::tempdir().expect("tempdir");
    let prom = try_start_prometheus_on(dir.path(), &prometheus_config(taken), &[], taken.port());
    assert_eq!(port_taken(prom), Ok(()), "prometheus");
    let am = try_start_alertmanager_on(
        dir.path(),
        "route:\n  receiver: r\nreceivers:\n  - name: r\n    webhook_configs:\n      - url: http://127.0.0.1:9/x\n",
        &[],
        taken.port(),
    );
    assert_eq!(port_taken(am), Ok(()), "alertmanager");
    // The retrying helper then ends on a port of its own, with our configuration.
    let prom = start_prometheus(dir.path(), &prometheus_config(taken), &[]);
    assert_ne!(prom.addr, taken);
    let r = get(prom.addr, "/api/v1/status/flags", &[]);
    let v: serde_json::Value = serde_json::from_slice(&r.body).expect("json");
    assert_eq!(
        v["data"]["config.file"],
        dir.path().join("prometheus.yml").display().to_string()
    );
}
