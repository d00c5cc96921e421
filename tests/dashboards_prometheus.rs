//! Every panel of every Grafana dashboard (`monitoring/grafana/dashboards/*.json`) returns data
//! from a real Prometheus. One real `sonde` reads a host tree merged from two fixtures — the
//! node host `tests/fixtures/hosts/modern` plus the cgroup v2 tree and `mountinfo` of
//! `tests/fixtures/k8s_e2e` — resolves that tree's pods through the fake Kubernetes API
//! (`tests/common/fake_kube.rs`, the same `pods.json`), and receives service events over
//! `POST /api/v1/events` (requests of several codes and durations for a few services, error
//! events, a configured circuit breaker that opens, application-reported breaker transitions,
//! deprecated calls). A real Prometheus scrapes it every second and evaluates ALL of
//! `monitoring/rules/*.yml` every second, while a background thread advances cgroup CPU
//! counters and one container's memory and sends events in a wave every second until the check
//! passes, so rates and trends stay non-zero however long the polling takes.
//!
//! Then every query variable is resolved against Prometheus (its `label_values(...)` must
//! return values; multi-value/All variables become `.*`, others take the first value), the
//! built-ins are substituted (`$__rate_interval` = 1m, `$__interval` = 15s, `$__range` = 5m),
//! and every target's expression must return at least one series as an instant query, none
//! of them NaN or ±Inf (`+Inf` only in the two forecast tables that map it to "not growing",
//! `INF_MEANS_NOT_GROWING`). Every metric or recording-rule name an expression mentions must
//! also have series, so a typo cannot hide behind an `or` fallback; the one exception
//! (`ABSENT_BY_DESIGN`) must at least be recorded by a rule file. Polled with a deadline; a
//! failure lists every failing panel.
//!
//! What is rewritten in the copies of the rule files Prometheus loads (the repository's files
//! stay as they are), so slow groups evaluate every second:
//! - every group-level `interval: <d>` line is removed (groups run at the global 1s);
//! - every subquery `[<range>:<resolution>]` becomes `[2m:1s]`: the test's data spans less
//!   than two minutes, so over it `[1d:5m]` and `[2m:1s]` differ only in resolution, and a 1s
//!   step over a whole day would cost 86400 steps per evaluation. No other subquery may be
//!   left, and anomaly.yml (the day-long z-scores) must have had at least one rewritten.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use common::dashboards::{all_panels, load_dashboards, substitute};
use common::fake_kube::{bump, bump_value, copy_tree, start_fake, write_kubeconfig};
use common::*;
use serde_json::Value;

const PODS: &str = include_str!("fixtures/k8s_e2e/pods.json");

/// Names that are legitimately absent in this test: the fixture's only filesystem is the live
/// disk under the temporary directory (statfs), whose fill trend the test cannot control.
const ABSENT_BY_DESIGN: &[&str] = &["instance_mountpoint:node_filesystem_until_full:seconds"];

/// Panels whose query returns `+Inf` on purpose: the forecast tables fall back to `+ Inf` for
/// a filesystem that is not filling / a container with a limit whose memory is not growing,
/// and a value mapping (from one year up) shows that as "not filling" / "not growing". Only
/// `+Inf` is accepted there; NaN and -Inf are still problems.
const INF_MEANS_NOT_GROWING: &[(&str, &str)] = &[
    ("nodes.json", "Filesystems: time until full"),
    ("workloads.json", "Time until memory limit"),
];

const CG: &str = "sys/fs/cgroup/kubepods.slice";
const WEB: &str =
    "kubepods-burstable.slice/kubepods-burstable-pod0b7e1c8a_1111_4c3e_9a55_000000000001.slice";
const WEB_APP: &str =
    "cri-containerd-aaaa000000000000000000000000000000000000000000000000000000000002.scope";
const WEB_ENVOY: &str =
    "cri-containerd-aaaa000000000000000000000000000000000000000000000000000000000003.scope";
const DB: &str = "kubepods-pod0b7e1c8a_2222_4c3e_9a55_000000000002.slice";
const DB_PG: &str = "crio-bbbb000000000000000000000000000000000000000000000000000000000001.scope";

/// Node collectors that read the fixture tree, plus the cgroup collector.
const COLLECTORS: &[&str] = &[
    "cpu",
    "diskstats",
    "filesystem",
    "loadavg",
    "meminfo",
    "netdev",
    "pressure",
    "stat",
    "vmstat",
    "cgroup",
];

/// Copies of `monitoring/rules/*.yml` with the rewrites described in the module doc; the
/// names of the files written, and how many subqueries were rewritten in each.
fn rewrite_rules(to: &Path) -> (Vec<String>, BTreeMap<String, usize>) {
    std::fs::create_dir_all(to).expect("mkdir rules");
    let interval = regex::Regex::new(r"(?m)^[ \t]*interval:[ \t]*\S+[ \t]*\n").expect("regex");
    let subquery = regex::Regex::new(r"\[(\d+[smhdwy])+:(\d+[smhdwy])+\]").expect("regex");
    // Any subquery (`[<range>:<resolution>]`, resolution possibly empty) left after the rewrite.
    let any_subquery = regex::Regex::new(r"\[[^\[\]:]+:[^\[\]]*\]").expect("regex");
    let mut names = Vec::new();
    let mut rewritten = BTreeMap::new();
    for path in shipped_rule_files() {
        let name = path
            .file_name()
            .expect("name")
            .to_string_lossy()
            .to_string();
        let text = std::fs::read_to_string(&path).expect("read rules");
        // Comments are rewritten too; that is harmless.
        let text = interval.replace_all(&text, "");
        rewritten.insert(name.clone(), subquery.find_iter(&text).count());
        let text = subquery.replace_all(&text, "[2m:1s]");
        assert!(
            !text
                .lines()
                .any(|l| l.trim_start().starts_with("interval:")),
            "{name}: a group interval survived the rewrite"
        );
        let left: Vec<&str> = any_subquery
            .find_iter(&text)
            .map(|m| m.as_str())
            .filter(|m| *m != "[2m:1s]")
            .collect();
        assert!(
            left.is_empty(),
            "{name}: subqueries the rewrite missed: {left:?}"
        );
        std::fs::write(to.join(&name), text.as_bytes()).expect("write rules");
        names.push(name);
    }
    (names, rewritten)
}

/// Every `record:` name of the rewritten rule files.
fn recorded_names(rules: &Path) -> BTreeSet<String> {
    let re = regex::Regex::new(r"(?m)^\s*-?\s*record:\s*(\S+)").expect("regex");
    let mut out = BTreeSet::new();
    for e in std::fs::read_dir(rules).expect("rules dir") {
        let text = std::fs::read_to_string(e.expect("entry").path()).expect("read");
        out.extend(re.captures_iter(&text).map(|c| c[1].to_string()));
    }
    out
}

fn events(sonde: SocketAddr, body: &str) {
    let r = post(
        sonde,
        "/api/v1/events",
        &[("Content-Type", "application/json")],
        body.as_bytes(),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let v: Value = serde_json::from_slice(&r.body).expect("json");
    assert_eq!(v["rejected"], 0, "{v}");
}

/// One wave of service events: successes and failures of several codes and durations for
/// `api` and `checkout`, error events for `worker`, calls through the configured `payments`
/// breaker (failures on the first wave open it, later calls are rejected), an application
/// breaker `inventory` cycling through its states, deprecated calls.
fn send_wave(sonde: SocketAddr, wave: usize) {
    let mut ev = Vec::new();
    let req = |service: &str, route: &str, method: &str, code: u16, secs: f64| {
        format!(
            r#"{{"type":"request","service":"{service}","route":"{route}","method":"{method}","code":{code},"duration_seconds":{secs}}}"#
        )
    };
    for i in 0..10 {
        let secs = 0.005 * (i + 1) as f64 * (wave + 1) as f64;
        ev.push(req("api", "/users/{id}", "GET", 200, secs));
        ev.push(req("api", "/login", "POST", 200, 2.0 * secs));
        ev.push(req("checkout", "/cart", "POST", 200, 3.0 * secs));
    }
    ev.push(req("api", "/users/{id}", "GET", 404, 0.002));
    ev.push(req("api", "/login", "POST", 500, 1.2));
    ev.push(req("checkout", "/cart", "POST", 503, 2.5));
    ev.push(
        r#"{"type":"request","service":"checkout","route":"/pay","method":"POST","outcome":"error","duration_seconds":0.8}"#
            .to_string(),
    );
    ev.push(r#"{"type":"error","service":"worker","kind":"timeout"}"#.to_string());
    ev.push(req("payments", "charge", "POST", 200, 0.05));
    for _ in 0..3 {
        ev.push(req("payments", "charge", "POST", 503, 0.3));
    }
    let state = ["open", "half_open", "closed", "open"][wave % 4];
    ev.push(format!(
        r#"{{"type":"breaker_transition","breaker":"inventory","state":"{state}"}}"#
    ));
    ev.push(r#"{"type":"deprecated_call","function":"v1_login"}"#.to_string());
    if wave % 2 == 1 {
        ev.push(r#"{"type":"deprecated_call","function":"v1_export"}"#.to_string());
    }
    events(sonde, &format!("[{}]", ev.join(",")));
}

fn builtins() -> BTreeMap<String, String> {
    [
        ("__rate_interval", "1m"),
        ("__interval", "15s"),
        ("__range", "5m"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect()
}

/// GETs a Prometheus API path; its `data` (an error names the path and the body).
fn api(prom: std::net::SocketAddr, path: &str) -> Result<Value, String> {
    let r = try_get(prom, path, &[]).map_err(|e| format!("GET {path}: {e}"))?;
    let v: Value = serde_json::from_slice(&r.body)
        .map_err(|e| format!("GET {path}: {e}: {}", String::from_utf8_lossy(&r.body)))?;
    if r.status != 200 || v["status"] != "success" {
        return Err(format!("HTTP {}: {}", r.status, v["error"]));
    }
    Ok(v["data"].clone())
}

/// Values of a `label_values(selector, label)` or `label_values(label)` variable query.
fn label_values(prom: std::net::SocketAddr, query: &str) -> Result<Vec<String>, String> {
    let inner = query
        .trim()
        .strip_prefix("label_values(")
        .and_then(|q| q.strip_suffix(')'))
        .ok_or_else(|| format!("not a label_values query: {query}"))?;
    let (selector, label) = match inner.rsplit_once(',') {
        Some((s, l)) => (Some(s.trim()), l.trim()),
        None => (None, inner.trim()),
    };
    let path = match selector {
        Some(s) => format!("/api/v1/label/{label}/values?match[]={}", encode_query(s)),
        None => format!("/api/v1/label/{label}/values"),
    };
    let data = api(prom, &path)?;
    Ok(data
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|v| v.as_str().map(str::to_string))
        .collect())
}

/// Resolves a dashboard's variables in order (a variable's query may use earlier ones).
fn resolve_variables(
    prom: std::net::SocketAddr,
    d: &Value,
    problems: &mut Vec<String>,
) -> BTreeMap<String, String> {
    let mut values = builtins();
    for v in d["templating"]["list"].as_array().into_iter().flatten() {
        let name = v["name"].as_str().expect("variable name").to_string();
        if v["type"] != "query" {
            continue;
        }
        let query = v["query"]["query"]
            .as_str()
            .or(v["query"].as_str())
            .expect("variable query");
        let query = substitute(query, &values);
        let found = match label_values(prom, &query) {
            Ok(found) => found,
            Err(e) => {
                problems.push(format!("variable ${name}: {query}: {e}"));
                Vec::new()
            }
        };
        if found.is_empty() {
            problems.push(format!("variable ${name}: {query} returned no values"));
        }
        let value = if v["multi"] == true || v["includeAll"] == true {
            ".*".to_string()
        } else {
            found.first().cloned().unwrap_or_default()
        };
        values.insert(name, value);
    }
    values
}

/// Metric and recording-rule names an expression selects (functions, keywords, label names in
/// `by (...)`/`on (...)` lists, matchers, ranges and strings removed).
fn metric_names(expr: &str) -> BTreeSet<String> {
    let strings = regex::Regex::new(r#""(?:[^"\\]|\\.)*""#).expect("regex");
    let braces = regex::Regex::new(r"\{[^}]*\}").expect("regex");
    let brackets = regex::Regex::new(r"\[[^\]]*\]").expect("regex");
    let lists =
        regex::Regex::new(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)")
            .expect("regex");
    let token = regex::Regex::new(r"[a-zA-Z_:][\w:]*").expect("regex");
    let s = strings.replace_all(expr, " ");
    let s = braces.replace_all(&s, " ");
    let s = brackets.replace_all(&s, " ");
    let s = lists.replace_all(&s, " ");
    const KEYWORDS: &[&str] = &[
        "and",
        "or",
        "unless",
        "bool",
        "offset",
        "by",
        "without",
        "on",
        "ignoring",
        "group_left",
        "group_right",
        "Inf",
        "inf",
        "NaN",
        "nan",
    ];
    token
        .find_iter(&s)
        // Not the tail of a number (1e-9) or of another token, not a function call.
        .filter(|m| {
            let before = s[..m.start()].chars().next_back();
            let after = s[m.end()..].trim_start().chars().next();
            !before.is_some_and(|c| c.is_alphanumeric() || c == '.' || c == '_')
                && after != Some('(')
        })
        .map(|m| m.as_str().to_string())
        .filter(|n| !KEYWORDS.contains(&n.as_str()))
        .collect()
}

/// The series of an instant-query result whose value is NaN or ±Inf (`+Inf` allowed when
/// `inf_ok`): a panel would show them as "NaN"/"Infinity".
fn non_finite(result: &Value, inf_ok: bool) -> impl Iterator<Item = String> + '_ {
    result
        .as_array()
        .into_iter()
        .flatten()
        .filter(move |s| {
            let v = prom_value(s);
            let accepted = v.is_finite() || (inf_ok && v == f64::INFINITY);
            !accepted
        })
        .map(|s| s.to_string())
}

/// One pass over every dashboard: the problems found (empty when every panel has data).
fn check_all(
    prom: std::net::SocketAddr,
    dashboards: &[(String, Value)],
    recorded: &BTreeSet<String>,
) -> (Vec<String>, usize) {
    let mut problems = Vec::new();
    let mut names: BTreeMap<String, String> = BTreeMap::new();
    let mut n_targets = 0;
    for (file, d) in dashboards {
        let mut var_problems = Vec::new();
        let values = resolve_variables(prom, d, &mut var_problems);
        problems.extend(var_problems.into_iter().map(|p| format!("{file}: {p}")));
        for p in all_panels(d).into_iter().filter(|p| p["type"] != "row") {
            let title = p["title"].as_str().unwrap_or_default();
            for t in p["targets"].as_array().into_iter().flatten() {
                n_targets += 1;
                let raw = t["expr"].as_str().unwrap_or_default();
                for n in metric_names(raw) {
                    names
                        .entry(n)
                        .or_insert_with(|| format!("{file} {title:?}"));
                }
                let expr = substitute(raw, &values);
                let what = format!("{file} panel {title:?} target {}", t["refId"]);
                let q = format!("/api/v1/query?query={}", encode_query(&expr));
                match api(prom, &q) {
                    Ok(data) if data["result"].as_array().is_some_and(|r| !r.is_empty()) => {
                        let inf_ok = INF_MEANS_NOT_GROWING.contains(&(file.as_str(), title));
                        problems.extend(
                            non_finite(&data["result"], inf_ok)
                                .map(|s| format!("{what}: non-finite value in {s}: {expr}")),
                        );
                    }
                    Ok(_) => problems.push(format!("{what}: no series: {expr}")),
                    Err(e) => problems.push(format!("{what}: {e}: {expr}")),
                }
            }
        }
    }
    for (name, first_use) in &names {
        if ABSENT_BY_DESIGN.contains(&name.as_str()) {
            if !recorded.contains(name) {
                problems.push(format!(
                    "{name} (used by {first_use}) is recorded by no rule"
                ));
            }
            continue;
        }
        let q = format!(
            "/api/v1/query?query={}",
            encode_query(&format!("count({name})"))
        );
        match api(prom, &q) {
            Ok(data) if data["result"].as_array().is_some_and(|r| !r.is_empty()) => {}
            Ok(_) => problems.push(format!("{name} (used by {first_use}) has no series")),
            Err(e) => problems.push(format!("{name} (used by {first_use}): {e}")),
        }
    }
    (problems, n_targets)
}

#[test]
fn metric_names_are_found_and_everything_else_is_not() {
    let got = metric_names(
        r#"max by (instance, job) (rate(a_total{job=~"$job", x="y{z}"}[$__rate_interval])) / on (instance) group_left (k) b:c:d * 1e-9 or sum without (le) (e) + Inf unless histogram_quantile(0.95, f_bucket[5m:1s]) > bool 2"#,
    );
    let want: BTreeSet<String> = ["a_total", "b:c:d", "e", "f_bucket"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    assert_eq!(got, want);
}

#[test]
fn every_dashboard_panel_returns_data_from_prometheus() {
    let started = Instant::now();
    let (_rt, kube_api) = start_fake(PODS);
    let dir = tempfile::tempdir().expect("tempdir");

    // One host: the node fixture plus the k8s_e2e cgroup tree and mountinfo (the node fixture
    // has /proc/1/mounts but no mountinfo and no /sys/fs/cgroup, so nothing is overwritten).
    let root = dir.path().join("host");
    copy_tree(&fixture_host("modern"), &root);
    let k8s = repo().join("tests/fixtures/k8s_e2e");
    copy_tree(&k8s.join("proc"), &root.join("proc"));
    copy_tree(&k8s.join("sys"), &root.join("sys"));

    let kubeconfig = write_kubeconfig(dir.path(), kube_api);
    let cfg = dir.path().join("sonde.yaml");
    std::fs::write(
        &cfg,
        format!(
            "scrape:\n  min_interval_seconds: 0\n\
             kube:\n  enabled: true\n  node_name: node1\n  kubeconfig: {}\n\
             services:\n  circuit_breakers:\n    breakers:\n\
             \x20     - name: payments\n        service: payments\n        consecutive_failures: 3\n\
             \x20       open_duration_seconds: 3600\n        half_open_probes: 1\n",
            kubeconfig.display()
        ),
    )
    .expect("write sonde.yaml");
    let mut args: Vec<String> = vec![
        "--config".into(),
        cfg.to_str().expect("utf-8").into(),
        format!("--path.procfs={}", root.join("proc").display()),
        format!("--path.sysfs={}", root.join("sys").display()),
        format!("--path.rootfs={}", root.join("root").display()),
        "--collector.disable-defaults".into(),
    ];
    args.extend(COLLECTORS.iter().map(|c| format!("--collector.{c}")));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let data = tempfile::tempdir().expect("data dir");
    let sonde = start_sonde_env(&args, data.path(), &[("KUBECONFIG", ""), ("NODE_NAME", "")]);
    wait_ready(sonde.addr, Duration::from_secs(10));

    let rules = dir.path().join("rules");
    let (rule_files, subqueries) = rewrite_rules(&rules);
    assert!(rule_files.len() >= 5, "{rule_files:?}");
    // anomaly.yml's day-long subqueries must have been shortened, or each evaluation would
    // step through a whole day every second.
    assert!(
        subqueries.get("anomaly.yml").is_some_and(|n| *n >= 1),
        "no subquery rewritten in anomaly.yml: {subqueries:?}"
    );
    let recorded = recorded_names(&rules);
    let config = format!(
        "{}rule_files:\n  - {}/*.yml\n",
        prometheus_config(sonde.addr),
        rules.display()
    );
    let prom = start_prometheus(dir.path(), &config, &[]);
    wait_for_query(
        prom.addr,
        "up{job=\"sonde\"} == 1",
        Duration::from_secs(15),
        "Prometheus never scraped sonde",
    );

    // Waves between scrapes, every second until the check passes (panels filtered on
    // `rate(...[1m]) > 0` empty out a minute after the last wave): CPU of three containers and
    // their pods, web/app's memory growing 1 MiB a wave towards its 256 MiB limit from 150 MiB
    // (a positive trend for the forecast; the polling deadline keeps it far below the limit),
    // and service events.
    let cg = root.join(CG);
    let cpu: [(PathBuf, u64); 5] = [
        (cg.join(WEB).join(WEB_APP), 300_000),
        (cg.join(WEB).join(WEB_ENVOY), 100_000),
        (cg.join(WEB), 400_000),
        (cg.join(DB).join(DB_PG), 200_000),
        (cg.join(DB), 200_000),
    ];
    let memory = cg.join(WEB).join(WEB_APP).join("memory.current");
    let stop = Arc::new(AtomicBool::new(false));
    let waves = Arc::new(AtomicUsize::new(0));
    let sonde_addr = sonde.addr;
    let waver = {
        let (stop, waves) = (Arc::clone(&stop), Arc::clone(&waves));
        std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                for (d, delta) in &cpu {
                    bump(&d.join("cpu.stat"), *delta);
                }
                bump_value(&memory, None, 1 << 20);
                send_wave(sonde_addr, waves.load(Ordering::Relaxed));
                waves.fetch_add(1, Ordering::Relaxed);
                std::thread::sleep(Duration::from_millis(1000));
            }
        })
    };
    // A failed wave (an assertion in the thread) is reported as itself, not as empty panels.
    let check_waver = |waver: &std::thread::JoinHandle<()>| {
        assert!(
            !waver.is_finished(),
            "the wave thread stopped (see its panic above)"
        );
    };
    const WAVES: usize = 5;
    let deadline = Instant::now() + Duration::from_secs(30);
    while waves.load(Ordering::Relaxed) < WAVES {
        check_waver(&waver);
        assert!(Instant::now() < deadline, "{WAVES} waves took over 30 s");
        std::thread::sleep(Duration::from_millis(100));
    }

    let dashboards = load_dashboards();
    assert_eq!(dashboards.len(), 4);
    let deadline = Instant::now() + Duration::from_secs(40);
    let (problems, n_targets) = loop {
        check_waver(&waver);
        let (problems, n) = check_all(prom.addr, &dashboards, &recorded);
        if problems.is_empty() || Instant::now() >= deadline {
            break (problems, n);
        }
        std::thread::sleep(Duration::from_millis(500));
    };
    stop.store(true, Ordering::Relaxed);
    waver.join().expect("wave thread");
    assert!(
        problems.is_empty(),
        "{} problem(s) after {:?}:\n{}",
        problems.len(),
        started.elapsed(),
        problems.join("\n")
    );
    assert!(n_targets >= 100, "only {n_targets} targets");
    eprintln!(
        "{n_targets} targets of {} dashboards returned data; took {:?}",
        dashboards.len(),
        started.elapsed()
    );
}
