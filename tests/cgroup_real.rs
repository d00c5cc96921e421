//! Real cgroups on this machine: the test creates a Docker-style v1 cgroup (`/docker/<64 hex>`)
//! in the `cpu`, `cpuacct` and `memory` hierarchies found in `/proc/self/mountinfo`, moves a
//! child process into it that allocates and touches 64 MiB and burns about a second of CPU,
//! scrapes the real `sonde` binary (`--collector.disable-defaults --collector.cgroup`) and checks
//! the container's series against the child's own accounting and the cgroup files read
//! directly. Needs root and v1 `cpuacct` + `memory` controllers; elsewhere it says why and
//! passes without checking (hosts with v2-only controllers are covered by the fixture tests).

mod common;

use std::io::{BufRead, BufReader, Write};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{SystemTime, UNIX_EPOCH};

use common::*;
use sonde::collect::cgroup::detect::parse_mountinfo;

/// Removes the cgroup directories (and kills the child first) however the test ends.
struct Cleanup {
    child: Option<Child>,
    dirs: Vec<PathBuf>,
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        if let Some(c) = &mut self.child {
            let _ = c.kill();
            let _ = c.wait();
        }
        for d in self.dirs.iter().rev() {
            let _ = std::fs::remove_dir(d);
        }
    }
}

fn read_u64(p: &PathBuf) -> u64 {
    std::fs::read_to_string(p)
        .expect("read cgroup file")
        .trim()
        .parse()
        .expect("number")
}

/// The value of the one series of `family` whose labels contain all of `want`.
fn value(text: &str, family: &str, want: &[&str]) -> Option<f64> {
    text.lines()
        .filter(|l| l.starts_with(family) && l[family.len()..].starts_with('{'))
        .find(|l| want.iter().all(|w| l.contains(w)))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
}

#[test]
fn a_real_v1_container_shows_the_cpu_and_memory_its_process_uses() {
    if !rustix::process::geteuid().is_root() {
        eprintln!("skipped: needs root to create cgroups");
        return;
    }
    let mounts =
        parse_mountinfo(&std::fs::read_to_string("/proc/self/mountinfo").expect("mountinfo"))
            .expect("parse mountinfo");
    let (Some(cpuacct), Some(memory)) = (mounts.cpuacct.clone(), mounts.memory.clone()) else {
        eprintln!(
            "skipped: no v1 cpuacct and memory hierarchies ({:?})",
            mounts.mode()
        );
        return;
    };
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock")
        .as_nanos();
    let id = format!(
        "{:032x}{:032x}",
        nanos,
        std::process::id() as u128 * 0x9e37_79b9
    );
    assert_eq!(id.len(), 64);
    let mut points = vec![PathBuf::from(&cpuacct.point), PathBuf::from(&memory.point)];
    if let Some(cpu) = &mounts.cpu
        && cpu.point != cpuacct.point
    {
        points.push(PathBuf::from(&cpu.point));
    }
    let mut guard = Cleanup {
        child: None,
        dirs: Vec::new(),
    };
    for p in &points {
        let parent = p.join("docker");
        if !parent.exists() {
            std::fs::create_dir(&parent).expect("mkdir docker");
            guard.dirs.push(parent.clone());
        }
        let dir = parent.join(&id);
        std::fs::create_dir(&dir).expect("mkdir container cgroup");
        guard.dirs.push(dir);
    }

    // The child waits for a line on stdin (sent once it is in the cgroup), then touches 64 MiB
    // and burns ~1 s of CPU, reports its own CPU time and waits; each further line burns
    // another 0.5 s (to check that a second scrape sees fresh values).
    let script = r#"
import os, sys, time
sys.stdin.readline()
buf = bytearray(64 << 20)
for i in range(0, len(buf), 4096):
    buf[i] = 1
burn = 1.0
while True:
    t0 = time.process_time()
    x = 0
    while time.process_time() - t0 < burn:
        x += 1
    t = os.times()
    print(t.user + t.system, flush=True)
    if not sys.stdin.readline():
        break
    burn = 0.5
"#;
    let mut child = Command::new("python3")
        .args(["-c", script])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("python3");
    let pid = child.id();
    let mut stdin = child.stdin.take().expect("stdin");
    let stdout = child.stdout.take().expect("stdout");
    guard.child = Some(child);
    for p in &points {
        std::fs::write(
            p.join("docker").join(&id).join("cgroup.procs"),
            pid.to_string(),
        )
        .expect("move child into cgroup");
    }
    writeln!(stdin, "go").expect("start child");
    let mut stdout = BufReader::new(stdout);
    let mut line = String::new();
    stdout.read_line(&mut line).expect("child output");
    let child_cpu: f64 = line.trim().parse().expect("child cpu seconds");
    assert!(child_cpu >= 1.0, "{child_cpu}");

    let cg_cpu = PathBuf::from(&cpuacct.point).join("docker").join(&id);
    let cg_mem = PathBuf::from(&memory.point).join("docker").join(&id);
    let usage_before = read_u64(&cg_cpu.join("cpuacct.usage"));
    let mem_before = read_u64(&cg_mem.join("memory.usage_in_bytes"));

    let sonde = start_sonde(&["--collector.disable-defaults", "--collector.cgroup"]);
    let text = get(sonde.addr, "/metrics", &[]).text();
    let usage_after = read_u64(&cg_cpu.join("cpuacct.usage"));
    let mem_after = read_u64(&cg_mem.join("memory.usage_in_bytes"));

    let id_label = format!("id=\"/docker/{id}\"");
    let name_label = format!("name=\"{id}\"");
    let want = [id_label.as_str(), name_label.as_str()];
    let cpu = value(&text, "container_cpu_usage_seconds_total", &want)
        .unwrap_or_else(|| panic!("no cpu series for /docker/{id} in:\n{text}"));
    // At least what the child measured for itself, and exactly what the cgroup file says.
    assert!(
        cpu >= child_cpu,
        "cgroup {cpu} s < child's own {child_cpu} s"
    );
    assert!(
        (usage_before as f64 / 1e9) <= cpu && cpu <= (usage_after as f64 / 1e9),
        "{cpu} not within cpuacct.usage {usage_before}..{usage_after} ns"
    );
    let user = value(&text, "container_cpu_user_seconds_total", &want).expect("user");
    let system = value(&text, "container_cpu_system_seconds_total", &want).expect("system");
    assert!(
        user + system >= child_cpu - 0.05,
        "{user} + {system} vs {child_cpu}"
    );

    let mem = value(&text, "container_memory_usage_bytes", &want).expect("memory usage");
    assert!(
        (mem_before.min(mem_after) as f64) <= mem && mem <= (mem_before.max(mem_after) as f64),
        "{mem} not within memory.usage_in_bytes {mem_before}..{mem_after}"
    );
    let rss = value(&text, "container_memory_rss", &want).expect("rss");
    assert!(rss >= (64 << 20) as f64, "rss {rss}");
    let ws = value(&text, "container_memory_working_set_bytes", &want).expect("working set");
    assert!(
        ws >= (64 << 20) as f64 && ws <= mem,
        "working set {ws}, usage {mem}"
    );
    assert_eq!(value(&text, "container_processes", &want), Some(1.0));
    assert!(value(&text, "container_spec_memory_limit_bytes", &want).is_some());
    assert_eq!(
        value(&text, "sonde_cgroup_hierarchy_info", &[]),
        Some(1.0),
        "{text}"
    );

    // A second scrape after more work: the collector keeps cgroup files open between scrapes
    // and must still read fresh values.
    writeln!(stdin, "again").expect("burn again");
    line.clear();
    stdout.read_line(&mut line).expect("child output");
    let child_cpu2: f64 = line.trim().parse().expect("child cpu seconds");
    std::thread::sleep(std::time::Duration::from_millis(600)); // past scrape.min_interval
    let before2 = read_u64(&cg_cpu.join("cpuacct.usage"));
    let text2 = get(sonde.addr, "/metrics", &[]).text();
    let after2 = read_u64(&cg_cpu.join("cpuacct.usage"));
    let cpu2 = value(&text2, "container_cpu_usage_seconds_total", &want).expect("cpu again");
    assert!(cpu2 >= cpu + 0.5, "second scrape {cpu2} s, first {cpu} s");
    assert!(cpu2 >= child_cpu2, "{cpu2} < child's own {child_cpu2}");
    assert!(
        (before2 as f64 / 1e9) <= cpu2 && cpu2 <= (after2 as f64 / 1e9),
        "{cpu2} not within cpuacct.usage {before2}..{after2} ns"
    );

    drop(stdin);
    drop(sonde);
    drop(guard);
    for p in &points {
        assert!(!p.join("docker").join(&id).exists(), "cgroup left behind");
    }
}
