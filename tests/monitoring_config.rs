//! Checks `monitoring/prometheus-kubernetes.yml`, the one configuration CI's promtool cannot
//! check (Debian's Prometheus is built without Kubernetes discovery, so `promtool check config`
//! rejects `kubernetes_sd_configs`):
//!
//! * apart from its scrape job it is exactly `monitoring/prometheus.yml` (which promtool checks);
//! * its job parses into strict structs of the fields Prometheus accepts (a misspelt key fails),
//!   with a known discovery role and relabel actions, and regexes that compile (Prometheus uses
//!   RE2 syntax, which the `regex` crate shares for these patterns);
//! * applied to the targets Kubernetes discovery would produce for the shipped DaemonSet
//!   (`deploy/kubernetes/daemonset.yaml`: one target per container port, with the pod's labels,
//!   IP and node), its relabelling keeps exactly the metrics port and labels it `job="sonde"`,
//!   `instance=<node name>`, as the rules and the Alertmanager inhibitions expect.

use std::collections::BTreeMap;
use std::path::Path;

use serde::Deserialize;
use serde_json::Value;

fn load(rel: &str) -> Value {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(rel);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{rel}: {e}"));
    serde_saphyr::from_str(&text).unwrap_or_else(|e| panic!("{rel}: {e}"))
}

/// The scrape job fields this file may use (Prometheus' names; unknown keys are refused).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ScrapeConfig {
    job_name: String,
    kubernetes_sd_configs: Vec<KubernetesSd>,
    #[serde(default)]
    relabel_configs: Vec<Relabel>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct KubernetesSd {
    role: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Relabel {
    #[serde(default)]
    source_labels: Vec<String>,
    separator: Option<String>,
    regex: Option<String>,
    target_label: Option<String>,
    replacement: Option<String>,
    action: Option<String>,
}

type Labels = BTreeMap<String, String>;

/// Applies `keep` / `replace` relabelling as Prometheus defines it (regex fully anchored,
/// default `(.*)`, separator `;`, replacement `$1`; an empty result removes the label).
/// Returns None when the target is dropped.
fn relabel(mut labels: Labels, rules: &[Relabel]) -> Option<Labels> {
    for r in rules {
        let re = regex::Regex::new(&format!("^(?:{})$", r.regex.as_deref().unwrap_or("(.*)")))
            .expect("regex");
        let value = r
            .source_labels
            .iter()
            .map(|l| labels.get(l).cloned().unwrap_or_default())
            .collect::<Vec<_>>()
            .join(r.separator.as_deref().unwrap_or(";"));
        match r.action.as_deref().unwrap_or("replace") {
            "keep" => {
                if !re.is_match(&value) {
                    return None;
                }
            }
            "replace" => {
                if let Some(c) = re.captures(&value) {
                    let mut out = String::new();
                    // Prometheus writes ${1}; the regex crate expands the same syntax.
                    c.expand(r.replacement.as_deref().unwrap_or("$1"), &mut out);
                    let target = r.target_label.clone().expect("replace needs target_label");
                    if out.is_empty() {
                        labels.remove(&target);
                    } else {
                        labels.insert(target, out);
                    }
                }
            }
            other => panic!("action {other:?} is not simulated by this test"),
        }
    }
    Some(labels)
}

/// Prometheus' label-name sanitising of Kubernetes labels (`app.kubernetes.io/name` →
/// `app_kubernetes_io_name`).
fn sanitise(name: &str) -> String {
    name.chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect()
}

/// The targets `role: pod` discovery produces for one pod of the shipped DaemonSet on `node`.
fn daemonset_targets(node: &str, ip: &str) -> Vec<Labels> {
    let ds = load("deploy/kubernetes/daemonset.yaml");
    let pod = &ds["spec"]["template"];
    let mut out = Vec::new();
    for c in pod["spec"]["containers"].as_array().expect("containers") {
        for p in c["ports"].as_array().into_iter().flatten() {
            let port = p["containerPort"].as_u64().expect("containerPort");
            let mut l = Labels::new();
            l.insert("job".into(), "sonde".into());
            l.insert("__address__".into(), format!("{ip}:{port}"));
            l.insert("__meta_kubernetes_pod_ip".into(), ip.into());
            l.insert("__meta_kubernetes_pod_node_name".into(), node.into());
            l.insert(
                "__meta_kubernetes_pod_container_port_number".into(),
                port.to_string(),
            );
            l.insert(
                "__meta_kubernetes_pod_container_port_name".into(),
                p["name"].as_str().unwrap_or_default().into(),
            );
            for (k, v) in pod["metadata"]["labels"].as_object().expect("pod labels") {
                l.insert(
                    format!("__meta_kubernetes_pod_label_{}", sanitise(k)),
                    v.as_str().expect("label value").into(),
                );
            }
            out.push(l);
        }
    }
    out
}

#[test]
fn kubernetes_variant_is_the_checked_config_plus_a_pod_discovery_job() {
    let base = load("monitoring/prometheus.yml");
    let k8s = load("monitoring/prometheus-kubernetes.yml");
    for key in ["global", "rule_files", "alerting"] {
        assert_eq!(k8s[key], base[key], "{key} differs from prometheus.yml");
    }
    let keys = |v: &Value| {
        v.as_object()
            .expect("map")
            .keys()
            .cloned()
            .collect::<Vec<_>>()
    };
    assert_eq!(keys(&k8s), keys(&base));

    let jobs = k8s["scrape_configs"].as_array().expect("scrape_configs");
    assert_eq!(jobs.len(), 1, "{jobs:?}");
    let job: ScrapeConfig = serde_json::from_value(jobs[0].clone()).expect("strict job");
    assert_eq!(job.job_name, "sonde", "rules select job=\"sonde\"");
    let roles: Vec<&str> = job
        .kubernetes_sd_configs
        .iter()
        .map(|s| s.role.as_str())
        .collect();
    assert_eq!(roles, ["pod"]);
    for r in &job.relabel_configs {
        for l in &r.source_labels {
            assert!(
                l.starts_with("__meta_kubernetes_pod_"),
                "{l} is not a pod-role label"
            );
        }
    }

    // One sonde pod on node "worker-3": two container ports (metrics, StatsD).
    let targets = daemonset_targets("worker-3", "10.1.2.3");
    assert_eq!(targets.len(), 2, "{targets:?}");
    let kept: Vec<Labels> = targets
        .into_iter()
        .filter_map(|t| relabel(t, &job.relabel_configs))
        .map(|t| {
            t.into_iter()
                .filter(|(k, _)| !k.starts_with("__meta_"))
                .collect()
        })
        .collect();
    let want: Labels = [
        ("__address__", "10.1.2.3:19110"),
        ("instance", "worker-3"),
        ("job", "sonde"),
        ("node", "worker-3"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    assert_eq!(kept, vec![want]);
}

#[test]
fn the_strict_job_refuses_misspelt_keys_and_the_simulation_drops_foreign_pods() {
    let k8s = load("monitoring/prometheus-kubernetes.yml");
    let mut job = k8s["scrape_configs"][0].clone();
    job["relabel_configs"][0]["sourcelabels"] = job["relabel_configs"][0]["source_labels"].take();
    job["relabel_configs"][0]
        .as_object_mut()
        .expect("map")
        .remove("source_labels");
    assert!(serde_json::from_value::<ScrapeConfig>(job).is_err());

    let job: ScrapeConfig =
        serde_json::from_value(k8s["scrape_configs"][0].clone()).expect("strict job");
    let mut other = daemonset_targets("worker-3", "10.1.2.3").remove(0);
    other.insert(
        "__meta_kubernetes_pod_label_app_kubernetes_io_name".into(),
        "nginx".into(),
    );
    assert_eq!(relabel(other, &job.relabel_configs), None);
}

/// Every alert in `monitoring/rules/*.yml` has, somewhere in `monitoring/rules/tests/`, a
/// promtool case where it fires with its labels and all its annotations asserted, and a case
/// where it must not fire (`exp_alerts: []` at an eval_time at or after the rule's `for:`, so
/// the case tests the threshold, not the pending period); and every alert carries severity,
/// summary, description and a runbook_url anchor that exists in RUNBOOK.md. (promtool itself
/// runs the cases in tests/run.sh; this makes sure none is missing.)
#[test]
fn every_alert_has_a_firing_and_a_silent_unit_test_and_a_runbook_entry() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("monitoring");
    let yml = |dir: &Path| {
        let mut v: Vec<_> = std::fs::read_dir(dir)
            .expect("dir")
            .map(|e| e.expect("entry").path())
            .filter(|p| p.extension().is_some_and(|e| e == "yml"))
            .collect();
        v.sort();
        v
    };
    let runbook = std::fs::read_to_string(root.join("RUNBOOK.md")).expect("RUNBOOK.md");
    let mut alerts: BTreeMap<String, Value> = BTreeMap::new();
    for f in yml(&root.join("rules")) {
        let v: Value = serde_saphyr::from_str(&std::fs::read_to_string(&f).expect("read"))
            .unwrap_or_else(|e| panic!("{}: {e}", f.display()));
        for g in v["groups"].as_array().expect("groups") {
            for r in g["rules"].as_array().expect("rules") {
                if let Some(name) = r["alert"].as_str() {
                    assert!(
                        alerts.insert(name.to_string(), r.clone()).is_none(),
                        "{name} twice"
                    );
                }
            }
        }
    }
    assert!(alerts.len() >= 30, "{}", alerts.len());
    let (mut fires, mut silent) = (
        BTreeMap::<String, usize>::new(),
        BTreeMap::<String, usize>::new(),
    );
    for f in yml(&root.join("rules/tests")) {
        let v: Value = serde_saphyr::from_str(&std::fs::read_to_string(&f).expect("read"))
            .unwrap_or_else(|e| panic!("{}: {e}", f.display()));
        for t in v["tests"].as_array().expect("tests") {
            for c in t["alert_rule_test"].as_array().into_iter().flatten() {
                let name = c["alertname"].as_str().expect("alertname").to_string();
                let exp = c["exp_alerts"].as_array().cloned().unwrap_or_default();
                let Some(rule) = alerts.get(&name) else {
                    continue;
                };
                if exp.is_empty() {
                    // Before `for:` has elapsed the alert is at most pending, so an empty
                    // result there proves nothing about the threshold: only a case evaluated
                    // at or after `for:` counts as silent.
                    let eval = &c["eval_time"];
                    let eval = duration_value(eval)
                        .unwrap_or_else(|| panic!("{}: {name}: eval_time {eval:?}", f.display()));
                    let hold = &rule["for"];
                    let hold =
                        duration_value(hold).unwrap_or_else(|| panic!("{name}: for {hold:?}"));
                    if eval >= hold {
                        *silent.entry(name).or_default() += 1;
                    }
                    continue;
                }
                let want: Vec<String> = rule["annotations"]
                    .as_object()
                    .map(|o| o.keys().cloned().collect())
                    .unwrap_or_default();
                let complete = exp.iter().all(|a| {
                    a["exp_labels"]["severity"] == rule["labels"]["severity"]
                        && want.iter().all(|k| !a["exp_annotations"][k].is_null())
                });
                assert!(
                    complete,
                    "{}: a firing case of {name} does not assert severity and every annotation",
                    f.display()
                );
                *fires.entry(name).or_default() += 1;
            }
        }
    }
    let missing = |counted: &BTreeMap<String, usize>| {
        alerts
            .keys()
            .filter(|n| !counted.contains_key(*n))
            .cloned()
            .collect::<Vec<_>>()
    };
    assert_eq!(
        missing(&fires),
        Vec::<String>::new(),
        "alerts with no promtool case where they fire"
    );
    assert_eq!(
        missing(&silent),
        Vec::<String>::new(),
        "alerts with no promtool case where they must not fire (exp_alerts: [] at an \
         eval_time at or after the rule's for:)"
    );
    for (name, rule) in &alerts {
        for k in ["summary", "description", "runbook_url"] {
            assert!(rule["annotations"][k].is_string(), "{name}: no {k}");
        }
        assert!(
            ["critical", "warning", "info"]
                .contains(&rule["labels"]["severity"].as_str().unwrap_or("")),
            "{name}: severity {:?}",
            rule["labels"]["severity"]
        );
        let url = rule["annotations"]["runbook_url"]
            .as_str()
            .unwrap_or_default();
        let anchor = url
            .strip_prefix("monitoring/RUNBOOK.md#")
            .unwrap_or_else(|| panic!("{name}: runbook_url {url}"));
        // GitHub-style anchors: the heading lower-cased.
        assert!(
            runbook
                .lines()
                .any(|l| l.starts_with('#')
                    && l.trim_start_matches('#').trim().to_lowercase() == anchor),
            "{name}: RUNBOOK.md has no heading for #{anchor}"
        );
    }
}

/// A Prometheus duration (`90s`, `15m`, `1h30m`, `1d`, `0`) in milliseconds; None when it
/// does not parse.
fn duration(text: &str) -> Option<u64> {
    if text == "0" {
        return Some(0);
    }
    let units = [
        ("ms", 1),
        ("s", 1_000),
        ("m", 60_000),
        ("h", 3_600_000),
        ("d", 86_400_000),
        ("w", 604_800_000),
        ("y", 31_536_000_000),
    ];
    let (mut rest, mut total) = (text, 0u64);
    if rest.is_empty() {
        return None;
    }
    while !rest.is_empty() {
        let digits = rest.find(|c: char| !c.is_ascii_digit())?;
        if digits == 0 {
            return None;
        }
        let n: u64 = rest[..digits].parse().ok()?;
        rest = &rest[digits..];
        // "ms" before "m": the longest unit that matches.
        let (unit, scale) = units.iter().find(|(u, _)| rest.starts_with(u))?;
        total += n * scale;
        rest = &rest[unit.len()..];
    }
    Some(total)
}

/// A duration field of a rule or test file: a string, or a bare number YAML read as one (both
/// tools accept `0`); a missing field (a rule without `for:`) is 0.
fn duration_value(v: &Value) -> Option<u64> {
    match v {
        Value::Null => Some(0),
        Value::String(s) => duration(s),
        Value::Number(n) => duration(&n.to_string()),
        _ => None,
    }
}

#[test]
fn durations_parse_like_prometheus() {
    assert_eq!(duration("0"), Some(0));
    assert_eq!(duration("0s"), Some(0));
    assert_eq!(duration("90s"), Some(90_000));
    assert_eq!(duration("1m"), Some(60_000));
    assert_eq!(duration("15m"), Some(900_000));
    assert_eq!(duration("1h"), Some(3_600_000));
    assert_eq!(duration("1h30m"), Some(5_400_000));
    assert_eq!(duration("500ms"), Some(500));
    assert_eq!(duration("1d"), Some(86_400_000));
    assert_eq!(duration(""), None);
    assert_eq!(duration("m"), None);
    assert_eq!(duration("5"), None);
    assert_eq!(duration("5x"), None);
    assert_eq!(duration_value(&Value::Null), Some(0));
    assert_eq!(duration_value(&serde_json::json!("15m")), Some(900_000));
    assert_eq!(duration_value(&serde_json::json!(0)), Some(0));
    assert_eq!(duration_value(&serde_json::json!(true)), None);
}
