//! The `process` collector against the real process-exporter (Debian's
//! `prometheus-process-exporter` 0.7.10) on this live host, both with the same
//! process-exporter configuration file (`{{.Comm}}` for every process with a command line):
//! - the `namedprocess_namegroup_*` families and their types are the same (sonde leaves out
//!   `threads_wchan` and the `namedprocess_scrape_*` error counters: README "Differences");
//! - every group whose membership is stable during the test has the same `num_procs` in both;
//! - counters are accumulated from different starting points (each exporter's first reading),
//!   so their *increases* are compared: with scrapes ordered pe1, sonde1, pe2, pe3, sonde2, pe4,
//!   `pe3 - pe2 <= sonde2 - sonde1 <= pe4 - pe1` for every counter of a stable group. Groups whose
//!   process count changes between the scrapes (shells, compilers and the test's own helpers
//!   coming and going) are skipped, and so is a counter that process-exporter itself lowers
//!   (its per-thread context-switch sum drops when a thread exits);
//! - the gauges of processes started by this test (idle `sleep`s and a three-thread python
//!   process under names of their own) are equal.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use common::*;
use sonde::expo::parse::ParsedFamily;

/// Ports 19250-19259 belong to this test file.
const PE_PORT: u16 = 19252;

type Groups = BTreeMap<String, BTreeMap<String, f64>>;

/// `family{labels except groupname}` → value, per group.
fn by_group(fams: &[ParsedFamily]) -> Groups {
    let mut out: Groups = BTreeMap::new();
    for f in fams {
        if !f.name.starts_with("namedprocess_namegroup_") || f.name.contains("wchan") {
            continue;
        }
        for s in &f.samples {
            let Some(g) = s.labels.iter().find(|(k, _)| k == "groupname") else {
                continue;
            };
            let mut rest: Vec<String> = s
                .labels
                .iter()
                .filter(|(k, _)| k != "groupname")
                .map(|(k, v)| format!("{k}={v}"))
                .collect();
            rest.sort();
            out.entry(g.1.clone())
                .or_default()
                .insert(format!("{}{{{}}}", s.name, rest.join(",")), s.value);
        }
    }
    out
}

fn procs(g: &Groups, name: &str) -> f64 {
    g.get(name)
        .and_then(|m| m.get("namedprocess_namegroup_num_procs{}"))
        .copied()
        .unwrap_or(0.0)
}

/// The comm names of the helper processes of the test using `port` (tests run in parallel).
fn names(port: u16) -> (String, String) {
    (format!("pg{port}-sleep"), format!("pg{port}-thr"))
}

struct Kill(Vec<Child>);

impl Drop for Kill {
    fn drop(&mut self) {
        for c in &mut self.0 {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// Starts the helper processes, process-exporter and sonde (same rules; `threads` switches both
/// to per-thread families). Returns everything that must stay alive.
fn start_pair(threads: bool, pe_port: u16) -> (tempfile::TempDir, Kill, Daemon, Daemon) {
    let (sleeper, threaded) = names(pe_port);
    let dir = tempfile::tempdir().expect("tempdir");
    // Helpers under their own comm, so their groups are stable and ours alone.
    let sleep_link = dir.path().join(&sleeper);
    std::os::unix::fs::symlink("/bin/sleep", &sleep_link).expect("symlink sleep");
    // the interpreter itself, not a wrapper script (pyenv shims exec it under its own name)
    let py = Command::new("python3")
        .args(["-c", "import sys; print(sys.executable)"])
        .output()
        .expect("python3");
    let py_path = String::from_utf8_lossy(&py.stdout).trim().to_string();
    let py_link = dir.path().join(&threaded);
    std::os::unix::fs::symlink(&py_path, &py_link).expect("symlink python3");
    let mut helpers = Kill(Vec::new());
    for _ in 0..3 {
        helpers.0.push(
            Command::new(&sleep_link)
                .arg("600")
                .spawn()
                .expect("spawn sleeper"),
        );
    }
    helpers.0.push(
        Command::new(&py_link)
            .args([
                "-c",
                "import threading,time\n\
                 def w():\n    while True: time.sleep(0.01)\n\
                 for _ in range(2): threading.Thread(target=w, daemon=True).start()\n\
                 time.sleep(600)\n",
            ])
            .stdin(Stdio::null())
            .spawn()
            .expect("spawn threads"),
    );
    std::thread::sleep(Duration::from_millis(300));

    let pe_cfg = dir.path().join("pe.yml");
    std::fs::write(
        &pe_cfg,
        "process_names:\n  - name: \"{{.Comm}}\"\n    cmdline:\n    - '.+'\n",
    )
    .expect("write pe config");
    let sonde_cfg = dir.path().join("sonde.yml");
    std::fs::write(
        &sonde_cfg,
        format!(
            "scrape:\n  min_interval_seconds: 0\ncollectors:\n  process:\n    config_file: {}\n    kernel_threads: include\n    threads: {threads}\n",
            pe_cfg.display()
        ),
    )
    .expect("write sonde config");

    let pe = start_on_port(
        "prometheus-process-exporter",
        &[
            format!("-web.listen-address=127.0.0.1:{pe_port}"),
            format!("-config.path={}", pe_cfg.display()),
            format!("-threads={threads}"),
            "-gather-smaps=false".into(),
        ],
        pe_port,
        "/metrics",
    );
    let cfg_arg = sonde_cfg.display().to_string();
    let sonde = start_sonde(&[
        "--config",
        &cfg_arg,
        "--collector.disable-defaults",
        "--collector.process",
    ]);
    std::thread::sleep(Duration::from_millis(500));
    (dir, helpers, pe, sonde)
}

#[test]
fn live_host_matches_process_exporter() {
    let (_dir, helpers, pe, sonde) = start_pair(false, PE_PORT);
    let (sleeper, threaded) = names(PE_PORT);
    let p1f = scrape(pe.addr);
    let s1f = scrape(sonde.addr);
    let p2f = scrape(pe.addr);
    std::thread::sleep(Duration::from_millis(1500));
    let p3f = scrape(pe.addr);
    let s2f = scrape(sonde.addr);
    let p4f = scrape(pe.addr);

    // Families and types.
    let kinds = |fams: &[ParsedFamily]| -> BTreeMap<String, String> {
        fams.iter()
            .filter(|f| f.name.starts_with("namedprocess_namegroup_") && !f.name.contains("wchan"))
            .map(|f| (f.name.clone(), format!("{:?}", f.kind)))
            .collect()
    };
    assert_eq!(kinds(&s1f), kinds(&p1f), "families and types");

    let [p1, s1, p2, p3, s2, p4] = [&p1f, &s1f, &p2f, &p3f, &s2f, &p4f].map(|f| by_group(f));
    let all = [&p1, &s1, &p2, &p3, &s2, &p4];
    let mut names: BTreeSet<&String> = BTreeSet::new();
    for g in all {
        names.extend(g.keys().filter(|n| procs(g, n) > 0.0));
    }
    let mut problems = Vec::new();
    let mut compared = 0;
    for name in names {
        let pe_counts: Vec<f64> = [&p1, &p2, &p3, &p4]
            .iter()
            .map(|g| procs(g, name))
            .collect();
        if pe_counts.iter().any(|&c| c != pe_counts[0]) {
            continue; // membership changed during the test
        }
        let sonde_counts = [procs(&s1, name), procs(&s2, name)];
        if sonde_counts != [pe_counts[0]; 2] {
            problems.push(format!(
                "{name}: num_procs sonde {sonde_counts:?}, process-exporter {pe_counts:?}"
            ));
            continue;
        }
        compared += 1;
        for (series, &v1) in &s1[name] {
            if !series.contains("_total") {
                continue;
            }
            let get = |g: &Groups| g[name].get(series).copied();
            let (Some(a1), Some(a2), Some(a3), Some(a4), Some(v2)) =
                (get(&p1), get(&p2), get(&p3), get(&p4), get(&s2))
            else {
                problems.push(format!("{name}: {series} missing in process-exporter"));
                continue;
            };
            // process-exporter lowered its own counter (a thread exited, so its per-thread
            // context-switch sum dropped), possibly wrapping it around 2^64
            if !(a1 <= a2 && a2 <= a3 && a3 <= a4) || a4 > 1e18 {
                continue;
            }
            let (lo, mine, hi) = (a3 - a2, v2 - v1, a4 - a1);
            if mine < lo - 1e-6 || mine > hi + 1e-6 {
                problems.push(format!(
                    "{name}: {series} increased by {mine}, process-exporter by {lo}..{hi}"
                ));
            }
        }
    }
    // Gauges of the test's own processes are equal.
    for name in [sleeper.as_str(), threaded.as_str()] {
        let (Some(mine), Some(theirs)) = (s2.get(name), p4.get(name)) else {
            problems.push(format!("{name}: group missing"));
            continue;
        };
        let states = |m: &BTreeMap<String, f64>| -> f64 {
            m.iter()
                .filter(|(k, _)| k.starts_with("namedprocess_namegroup_states"))
                .map(|(_, v)| v)
                .sum()
        };
        // the process plus each of its threads, whatever state they are in at the moment
        let expected_states = if name == threaded { 4.0 } else { 3.0 };
        assert_eq!(
            (states(mine), states(theirs)),
            (expected_states, expected_states)
        );
        for (series, v) in theirs {
            // the worker threads wake every 10 ms: which state they are in is a race
            if series.contains("_total") || (name == threaded && series.contains("_states")) {
                continue;
            }
            if mine.get(series) != Some(v) {
                problems.push(format!(
                    "{name}: {series} sonde {:?}, process-exporter {v}",
                    mine.get(series)
                ));
            }
        }
    }
    assert_eq!(procs(&s2, &sleeper), 3.0);
    assert_eq!(
        s2[&threaded].get("namedprocess_namegroup_num_threads{}"),
        Some(&3.0)
    );
    assert!(compared >= 4, "only {compared} stable groups compared");
    assert!(
        problems.is_empty(),
        "{} differences from process-exporter:\n{}",
        problems.len(),
        problems.join("\n")
    );
    drop(helpers);
}

/// With per-thread families on both sides (`threads: true`, `-threads=true`): the test's
/// three-thread process reports one thread name with three threads, and its per-thread counters
/// increase within process-exporter's bounds.
#[test]
fn live_threads_families_match_process_exporter() {
    let (_dir, helpers, pe, sonde) = start_pair(true, PE_PORT + 1);
    let p1 = by_group(&scrape(pe.addr));
    let s1 = by_group(&scrape(sonde.addr));
    let p2 = by_group(&scrape(pe.addr));
    std::thread::sleep(Duration::from_millis(1500));
    let p3 = by_group(&scrape(pe.addr));
    let s2 = by_group(&scrape(sonde.addr));
    let p4 = by_group(&scrape(pe.addr));
    let (_, threaded) = names(PE_PORT + 1);
    let name = threaded.as_str();
    let count = format!("namedprocess_namegroup_thread_count{{threadname={name}}}");
    assert_eq!(s2[name].get(&count), Some(&3.0));
    assert_eq!(p4[name].get(&count), Some(&3.0));
    let mut problems = Vec::new();
    let mut checked = 0;
    for (series, &v1) in s1[name]
        .iter()
        .filter(|(k, _)| k.contains("_thread_") && k.contains("_total"))
    {
        let get = |g: &Groups| g[name].get(series).copied().unwrap_or(f64::NAN);
        let (a1, a2, a3, a4, v2) = (get(&p1), get(&p2), get(&p3), get(&p4), get(&s2));
        let (lo, mine, hi) = (a3 - a2, v2 - v1, a4 - a1);
        checked += 1;
        if !(mine >= lo - 1e-6 && mine <= hi + 1e-6) {
            problems.push(format!(
                "{series}: increased by {mine}, process-exporter by {lo}..{hi}"
            ));
        }
    }
    assert!(checked >= 8, "only {checked} thread counters");
    assert!(problems.is_empty(), "{}", problems.join("\n"));
    drop(helpers);
}
