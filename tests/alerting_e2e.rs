//! Alerting end to end: sonde (60 s budget window) is scraped by a real Prometheus evaluating
//! copies of the SHIPPED `monitoring/rules/*.yml` (only every `for:` shortened to 1s), which
//! alerts a real Alertmanager running the SHIPPED `monitoring/alertmanager.yml` (only the
//! webhook URLs and group timings rewritten), which posts to a webhook receiver inside this
//! test. Asserts that an exhausted budget pages (`/page`, firing, exact labels — alertname,
//! service, severity, job: the rule takes the lowest budget over all sondes — and rendered
//! annotations), resolves once the errors leave the window at the next minute boundary, never
//! reaches `/ticket`, and that a service still within its budget never alerts. Then, with
//! alerts posted to Alertmanager's API, that `SondeTargetDown` inhibits sonde's other alerts of
//! its instance only, not another exporter's alerts for the same instance.
//!
//! The shipped YAML files are rewritten by parsing them (serde-saphyr into a
//! `serde_json::Value`, edited, serialised back with serde-saphyr), never by text
//! replacement; every rewrite is counted and asserted so a renamed key cannot be skipped
//! silently.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde_json::{Value, json};

use common::*;

/// Budget of the service that overspends, and of the one that stays within its budget.
const BUDGETS: &str = "checkout=5,search=5";
const OVER: &str = "checkout";
const WITHIN: &str = "search";
const ALERT: &str = "ErrorBudgetExhausted";
/// Failed scrapes of sonde over the test (each marks every sonde series stale, which resolves
/// the alert early).
const FAILED_SCRAPES: &str = r#"count_over_time((up{job="sonde"} == 0)[10m:1s])"#;
/// Prometheus' scrape interval and timeout for sonde.
const SCRAPE_SECONDS: u32 = 2;

// ---------------------------------------------------------------------------------------------
// Webhook receiver
// ---------------------------------------------------------------------------------------------

/// One POST received from Alertmanager.
#[derive(Debug, Clone)]
struct Notification {
    /// Request path: `/page` or `/ticket`.
    path: String,
    /// The webhook JSON (status, receiver, groupLabels, alerts[] ...).
    body: Value,
    /// When it arrived (wall clock), to check the resolve came after the window rolled.
    received: SystemTime,
}

/// An axum server on a loopback port recording every POST; stops when dropped.
struct Receiver {
    addr: SocketAddr,
    got: Arc<Mutex<Vec<Notification>>>,
    _runtime: tokio::runtime::Runtime,
}

impl Receiver {
    fn start() -> Self {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .expect("tokio runtime");
        let got: Arc<Mutex<Vec<Notification>>> = Arc::default();
        let record = {
            let got = Arc::clone(&got);
            move |uri: axum::http::Uri, body: axum::body::Bytes| {
                let got = Arc::clone(&got);
                async move {
                    // A body that is not JSON is kept as a string: the assertions then show it.
                    let body = serde_json::from_slice(&body).unwrap_or_else(|_| {
                        Value::String(String::from_utf8_lossy(&body).into_owned())
                    });
                    got.lock().expect("lock").push(Notification {
                        path: uri.path().to_string(),
                        body,
                        received: SystemTime::now(),
                    });
                    axum::http::StatusCode::OK
                }
            }
        };
        let app = axum::Router::new().route("/{*path}", axum::routing::post(record));
        let listener = runtime
            .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
            .expect("bind receiver");
        let addr = listener.local_addr().expect("receiver addr");
        runtime.spawn(async move {
            axum::serve(listener, app).await.expect("receiver serves");
        });
        Self {
            addr,
            got,
            _runtime: runtime,
        }
    }

    fn all(&self) -> Vec<Notification> {
        self.got.lock().expect("lock").clone()
    }
}

// ---------------------------------------------------------------------------------------------
// Rewriting the shipped YAML
// ---------------------------------------------------------------------------------------------

fn read_yaml(path: &Path) -> Value {
    let text =
        std::fs::read_to_string(path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
    serde_saphyr::from_str(&text).unwrap_or_else(|e| panic!("parse {}: {e}", path.display()))
}

fn write_yaml(path: &Path, v: &Value) {
    let text = serde_saphyr::to_string(v).expect("serialise YAML");
    std::fs::write(path, text).unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
}

/// Copies every shipped rule file into `dir` with each `for:` set to 1s. Returns the files,
/// the names of the alerts whose `for:` was rewritten, and the shipped rules (for annotations).
fn rewrite_rules(dir: &Path) -> (Vec<PathBuf>, BTreeSet<String>, Vec<Value>) {
    let mut files = Vec::new();
    let mut touched = BTreeSet::new();
    let mut shipped = Vec::new();
    let names = shipped_rule_files();
    assert!(
        names.len() >= 2,
        "expected the shipped rule files, got {names:?}"
    );
    for src in names {
        let mut doc = read_yaml(&src);
        let groups = doc["groups"]
            .as_array_mut()
            .unwrap_or_else(|| panic!("{}: no groups", src.display()));
        for g in groups {
            for rule in g["rules"].as_array_mut().expect("rules list") {
                shipped.push(rule.clone());
                if let Some(obj) = rule.as_object_mut()
                    && obj.contains_key("for")
                {
                    obj.insert("for".into(), json!("1s"));
                    touched.insert(obj["alert"].as_str().expect("alert name").to_string());
                }
            }
        }
        let dst = dir.join(src.file_name().expect("file name"));
        write_yaml(&dst, &doc);
        files.push(dst);
    }
    (files, touched, shipped)
}

/// The shipped Alertmanager configuration with webhook URLs pointing at `receiver` (paths
/// kept) and every `group_wait` / `group_interval` set to 1s. `repeat_interval`s are kept as
/// shipped: they are at least an hour, far longer than this test.
fn rewrite_alertmanager(receiver: SocketAddr) -> Value {
    let mut doc = read_yaml(&repo().join("monitoring/alertmanager.yml"));
    let mut urls = BTreeMap::new();
    for r in doc["receivers"].as_array_mut().expect("receivers") {
        let name = r["name"].as_str().expect("receiver name").to_string();
        for w in r["webhook_configs"]
            .as_array_mut()
            .expect("webhook_configs")
        {
            let url = w["url"].as_str().expect("url").to_string();
            // http://host:port/path -> keep /path
            let path = url
                .splitn(4, '/')
                .nth(3)
                .map(|p| format!("/{p}"))
                .unwrap_or_else(|| panic!("webhook url without a path: {url}"));
            w["url"] = json!(format!("http://{receiver}{path}"));
            urls.insert(name.clone(), path);
        }
    }
    assert_eq!(
        urls,
        BTreeMap::from([
            ("page".to_string(), "/page".to_string()),
            ("ticket".to_string(), "/ticket".to_string())
        ]),
        "shipped receivers and their webhook paths"
    );
    fn timings(route: &mut Value, path: &str, out: &mut Vec<String>) {
        for key in ["group_wait", "group_interval"] {
            if route.get(key).is_some() {
                route[key] = json!("1s");
                out.push(format!("{path}.{key}"));
            }
        }
        if let Some(children) = route.get_mut("routes").and_then(Value::as_array_mut) {
            for (i, c) in children.iter_mut().enumerate() {
                timings(c, &format!("{path}.routes[{i}]"), out);
            }
        }
    }
    let mut changed = Vec::new();
    timings(&mut doc["route"], "route", &mut changed);
    // the top route's timings (inherited by every child) and the page route's own group_wait
    // must have been there to rewrite, or a notification could wait the shipped 10s..5m
    for must in [
        "route.group_wait",
        "route.group_interval",
        "route.routes[0].group_wait",
    ] {
        assert!(
            changed.iter().any(|c| c == must),
            "{must} not in {changed:?}"
        );
    }
    assert_eq!(
        doc["route"]["routes"][0]["matchers"],
        json!(["severity=\"critical\""]),
        "routes[0] is the critical (page) route"
    );
    doc
}

// ---------------------------------------------------------------------------------------------
// Diagnostics and polling
// ---------------------------------------------------------------------------------------------

struct Stack {
    sonde: Daemon,
    prom: Daemon,
    am: Daemon,
    receiver: Receiver,
}

impl Stack {
    /// What every component sees, for assertion messages.
    fn context(&self) -> String {
        let fetch = |addr: SocketAddr, path: &str| match try_get(addr, path, &[]) {
            Ok(r) => String::from_utf8_lossy(&r.body).into_owned(),
            Err(e) => format!("<{e}>"),
        };
        let budgets: Vec<String> = fetch(self.sonde.addr, "/metrics")
            .lines()
            .filter(|l| l.starts_with("service_error_budget_remaining{"))
            .map(str::to_string)
            .collect();
        let got: Vec<String> = self
            .receiver
            .all()
            .iter()
            .map(|n| format!("{} {}", n.path, n.body))
            .collect();
        let prom_query = |q: &str| {
            let path = format!("/api/v1/query?query={}", encode_query(q));
            fetch(self.prom.addr, &path)
        };
        format!(
            "\n--- now: second {} of the minute\n--- sonde budgets:\n{}\n--- Prometheus up: {}\n--- failed sonde scrapes in the last 10m: {}\n--- Prometheus /api/v1/alerts:\n{}\n--- Alertmanager /api/v2/alerts:\n{}\n--- webhook payloads ({}):\n{}\n",
            unix_now() % 60,
            budgets.join("\n"),
            prom_query("up"),
            prom_query(FAILED_SCRAPES),
            fetch(self.prom.addr, "/api/v1/alerts"),
            fetch(self.am.addr, "/api/v2/alerts"),
            got.len(),
            got.join("\n"),
        )
    }

    /// Polls `cond` every 200 ms until it returns Some, failing after `within` with context.
    fn wait_for<T>(&self, what: &str, within: Duration, mut cond: impl FnMut() -> Option<T>) -> T {
        let deadline = Instant::now() + within;
        loop {
            if let Some(v) = cond() {
                return v;
            }
            assert!(
                Instant::now() < deadline,
                "timed out after {within:?} waiting for {what}{}",
                self.context()
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// Services for which Prometheus currently has an ErrorBudgetExhausted alert (any state).
    fn prometheus_alerting_services(&self) -> BTreeSet<String> {
        let r = get(self.prom.addr, "/api/v1/alerts", &[]);
        assert_eq!(r.status, 200);
        let v: Value = serde_json::from_slice(&r.body).expect("json");
        v["data"]["alerts"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|a| a["labels"]["alertname"] == ALERT)
            .map(|a| a["labels"]["service"].as_str().unwrap_or("?").to_string())
            .collect()
    }
}

/// The shipped inhibition of `SondeTargetDown`, checked on the running Alertmanager with alerts
/// posted to its API: a sonde that is down silences sonde's other alerts for its instance, but
/// not the alerts of another exporter for the same instance (in Kubernetes `instance` is the
/// node name, shared by every exporter of the node) nor sonde's alerts of another instance.
/// The posted alerts carry no severity, so they go to the default `ticket` route.
fn sonde_target_down_inhibits_only_sonde_alerts_of_its_instance(stack: &Stack) {
    let alerts = json!([
        {"labels": {"alertname": "SondeTargetDown", "job": "sonde", "instance": "n9:19110"}},
        {"labels": {"alertname": "SondeCollectorFailing", "job": "sonde", "instance": "n9:19110", "collector": "cpu"}},
        {"labels": {"alertname": "NodeCPUHighUsage", "job": "node-exporter", "instance": "n9:19110"}},
        {"labels": {"alertname": "SondeCollectorFailing", "job": "sonde", "instance": "n8:19110", "collector": "cpu"}},
    ]);
    let r = post(
        stack.am.addr,
        "/api/v2/alerts",
        &[("Content-Type", "application/json")],
        alerts.to_string().as_bytes(),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let key = |a: &str, j: &str, i: &str| (a.to_string(), j.to_string(), i.to_string());
    let expected = BTreeMap::from([
        (
            key("SondeTargetDown", "sonde", "n9:19110"),
            "active".to_string(),
        ),
        (
            key("SondeCollectorFailing", "sonde", "n9:19110"),
            "suppressed".to_string(),
        ),
        (
            key("NodeCPUHighUsage", "node-exporter", "n9:19110"),
            "active".to_string(),
        ),
        (
            key("SondeCollectorFailing", "sonde", "n8:19110"),
            "active".to_string(),
        ),
    ]);
    // (alertname, job, instance) -> state as GET /api/v2/alerts reports it. That endpoint
    // computes inhibited/silenced on every read, so no alert is ever "unprocessed" there; but
    // the inhibitor learns about the source alert (SondeTargetDown) through its own
    // asynchronous subscription to the alert store, so a read just after the POST can still
    // show the target alert as active. Hence: poll until the states are the expected ones.
    let states = || {
        let r = get(stack.am.addr, "/api/v2/alerts", &[]);
        assert_eq!(r.status, 200, "{}", r.text());
        let v: Value = serde_json::from_slice(&r.body).expect("json");
        v.as_array()
            .into_iter()
            .flatten()
            .filter(|a| {
                let i = a["labels"]["instance"].as_str().unwrap_or("");
                i == "n9:19110" || i == "n8:19110"
            })
            .map(|a| {
                let l = |k: &str| a["labels"][k].as_str().unwrap_or("").to_string();
                let state = a["status"]["state"].as_str().unwrap_or("?").to_string();
                ((l("alertname"), l("job"), l("instance")), state)
            })
            .collect::<BTreeMap<(String, String, String), String>>()
    };
    stack.wait_for(
        "Alertmanager to inhibit exactly sonde's alert of n9 (expected states)",
        Duration::from_secs(30),
        || (states() == expected).then_some(()),
    );
    // Still so a moment later: the three unrelated alerts stay active (an inhibition that
    // spread to them later would show up here).
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(
        states(),
        expected,
        "states changed after matching{}",
        stack.context()
    );
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock after 1970")
        .as_secs()
}

/// Alerts named [`ALERT`] for `service` in a webhook payload.
fn alerts_of<'a>(n: &'a Notification, service: &str) -> Vec<&'a Value> {
    n.body["alerts"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|a| a["labels"]["alertname"] == ALERT && a["labels"]["service"] == service)
        .collect()
}

/// Renders the `{{ $labels.service }}` templates of a shipped annotation; any other template
/// would make this test's expectation wrong, so it is refused.
fn render(template: &str, service: &str) -> String {
    let out = template.replace("{{ $labels.service }}", service);
    assert!(
        !out.contains("{{"),
        "annotation uses a template this test does not render: {template}"
    );
    out
}

// ---------------------------------------------------------------------------------------------
// The test
// ---------------------------------------------------------------------------------------------

#[test]
fn exhausted_budget_pages_then_resolves_when_errors_leave_the_window() {
    let started = Instant::now();
    let dir = tempfile::tempdir().expect("tempdir");

    // sonde on the fixture host tree (no live-host noise), 60 s budget window.
    let cfg = dir.path().join("sonde.yaml");
    std::fs::write(
        &cfg,
        "scrape:\n  min_interval_seconds: 0\nservices:\n  error_budgets:\n    window_seconds: 60\n",
    )
    .expect("write sonde.yaml");
    let root = fixture_host("modern");
    let procfs = format!("--path.procfs={}", root.join("proc").display());
    let sysfs = format!("--path.sysfs={}", root.join("sys").display());
    let rootfs = format!("--path.rootfs={}", root.join("root").display());
    let data = tempfile::tempdir().expect("data dir");
    let sonde = start_sonde_env(
        &[
            "--config",
            cfg.to_str().expect("utf-8"),
            &procfs,
            &sysfs,
            &rootfs,
        ],
        data.path(),
        &[("ERROR_BUDGETS", BUDGETS)],
    );
    let sonde_addr = sonde.addr;
    let remaining = |service: &str| {
        value_of(
            &scrape(sonde_addr),
            "service_error_budget_remaining",
            &[("service", service)],
        )
    };
    assert_eq!(remaining(OVER), Some(5.0));
    assert_eq!(remaining(WITHIN), Some(5.0));

    // webhook receiver, then Alertmanager with the shipped configuration.
    let receiver = Receiver::start();
    let am = start_alertmanager(
        dir.path(),
        &serde_saphyr::to_string(&rewrite_alertmanager(receiver.addr)).expect("serialise YAML"),
        &[],
    );

    // Prometheus with copies of the shipped rules.
    let rules_dir = dir.path().join("rules");
    std::fs::create_dir(&rules_dir).expect("rules dir");
    let (rule_files, touched, shipped) = rewrite_rules(&rules_dir);
    assert!(
        touched.contains(ALERT),
        "for: of {ALERT} not rewritten: {touched:?}"
    );
    // Scrapes every 2 s with a 2 s timeout: a scrape of the debug build that took over 1 s on a
    // loaded machine would mark every sonde series stale, resolve the alert early and fire it
    // again (the margin to the minute boundary is at least 30 s). Rules still run every second.
    let extra = json!({
        "rule_files": rule_files.iter().map(|p| p.display().to_string()).collect::<Vec<_>>(),
        "alerting": {"alertmanagers": [{"static_configs": [{"targets": [am.addr.to_string()]}]}]},
    });
    let prom_config = format!(
        "{}{}",
        prometheus_config_every(sonde.addr, SCRAPE_SECONDS),
        serde_saphyr::to_string(&extra).expect("serialise YAML")
    );
    let prom = start_prometheus(dir.path(), &prom_config, &["--rules.alert.resend-delay=1s"]);
    let stack = Stack {
        sonde,
        prom,
        am,
        receiver,
    };

    // Every shipped alert is loaded, with the shortened `for:` (1 s).
    let r = get(stack.prom.addr, "/api/v1/rules?type=alert", &[]);
    let v: Value = serde_json::from_slice(&r.body).expect("json");
    let loaded: BTreeMap<String, f64> = v["data"]["groups"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|g| g["rules"].as_array().cloned().unwrap_or_default())
        .map(|r| {
            (
                r["name"].as_str().expect("name").to_string(),
                r["duration"].as_f64().expect("duration"),
            )
        })
        .collect();
    let shipped_alerts: BTreeSet<String> = shipped
        .iter()
        .filter_map(|r| r["alert"].as_str().map(str::to_string))
        .collect();
    assert_eq!(
        loaded.keys().cloned().collect::<BTreeSet<_>>(),
        shipped_alerts
    );
    assert_eq!(loaded.get(ALERT), Some(&1.0));

    stack.wait_for(
        "Prometheus to scrape sonde",
        Duration::from_secs(30),
        || (!query(stack.prom.addr, "up{job=\"sonde\"} == 1").is_empty()).then_some(()),
    );

    // Send in the first half of a minute: the errors then leave the 60 s window at the next
    // minute boundary, at least 30 s later, long after the alert has fired.
    while unix_now() % 60 >= 30 {
        std::thread::sleep(Duration::from_secs(60 - unix_now() % 60));
    }
    let errors = |service: &str, n: usize| {
        let batch: Vec<String> = (0..n)
            .map(|_| format!(r#"{{"type":"error","service":"{service}"}}"#))
            .collect();
        let r = post(
            stack.sonde.addr,
            "/api/v1/events",
            &[("Content-Type", "application/json")],
            format!("[{}]", batch.join(",")).as_bytes(),
        );
        assert_eq!(r.status, 200, "{}", r.text());
    };
    let before = unix_now();
    errors(OVER, 6);
    errors(WITHIN, 2);
    let after = unix_now();
    assert_eq!(
        before / 60,
        after / 60,
        "sending took from {before} to {after}"
    );
    // the minute boundary at which the errors leave the 60 s window
    let boundary = before - before % 60 + 60;
    assert_eq!(remaining(OVER), Some(-1.0), "{}", stack.context());
    assert_eq!(remaining(WITHIN), Some(3.0), "{}", stack.context());

    // Expected labels and annotations, rendered from the shipped rule.
    let rule = shipped
        .iter()
        .find(|r| r["alert"] == ALERT)
        .expect("shipped rule");
    let want_labels = json!({
        "alertname": ALERT,
        "service": OVER,
        "severity": "critical",
        "job": "sonde",
    });
    let want_annotations: Value = rule["annotations"]
        .as_object()
        .expect("annotations")
        .iter()
        .map(|(k, t)| (k.clone(), json!(render(t.as_str().expect("string"), OVER))))
        .collect::<serde_json::Map<_, _>>()
        .into();
    assert_eq!(
        want_annotations["summary"],
        "Service checkout has exhausted its error budget"
    );
    assert_eq!(
        want_annotations
            .as_object()
            .map(|o| o.keys().cloned().collect::<Vec<_>>()),
        Some(vec![
            "description".to_string(),
            "runbook_url".to_string(),
            "summary".to_string()
        ])
    );

    let mut seen_within = BTreeSet::new();
    let mut check_within = |stack: &Stack| {
        seen_within.extend(
            stack
                .prometheus_alerting_services()
                .into_iter()
                .filter(|s| s == WITHIN),
        );
    };

    // One notification for the alert on /page with `status` (firing, then resolved), carrying
    // the one alert with the shipped rule's labels and rendered annotations.
    let mut expect_on_page = |status: &str, within: Duration| {
        let n = stack.wait_for(&format!("a {status} {ALERT} notification"), within, || {
            check_within(&stack);
            stack
                .receiver
                .all()
                .into_iter()
                .find(|n| alerts_of(n, OVER).iter().any(|a| a["status"] == status))
        });
        let ctx = stack.context();
        assert_eq!(n.path, "/page", "{ctx}");
        assert_eq!(n.body["status"], status, "{ctx}");
        assert_eq!(n.body["receiver"], "page", "{ctx}");
        let alerts = n.body["alerts"].as_array().expect("alerts");
        assert_eq!(alerts.len(), 1, "{ctx}");
        assert_eq!(alerts[0]["status"], status, "{ctx}");
        assert_eq!(alerts[0]["labels"], want_labels, "{ctx}");
        assert_eq!(alerts[0]["annotations"], want_annotations, "{ctx}");
        (n, ctx)
    };
    let (firing, ctx) = expect_on_page("firing", Duration::from_secs(60));
    // The rule aggregates per (job, service) (the lowest budget of all sondes), so of the
    // route's group_by [alertname, namespace, service, instance] only these two are set.
    assert_eq!(
        firing.body["groupLabels"],
        json!({"alertname": ALERT, "service": OVER}),
        "{ctx}"
    );
    // Resolved once the minute has rolled over.
    let (resolved, ctx) = expect_on_page("resolved", Duration::from_secs(150));
    let resolved_at = resolved
        .received
        .duration_since(UNIX_EPOCH)
        .expect("clock")
        .as_secs();
    let failed = query(stack.prom.addr, FAILED_SCRAPES);
    assert!(
        failed.is_empty(),
        "sonde scrape failed during the test (its series went stale, which resolves the alert \
         early): {failed:?}{ctx}"
    );
    assert!(
        resolved_at >= boundary,
        "resolved at {resolved_at}, before the window rolled at {boundary}{ctx}"
    );
    assert_eq!(remaining(OVER), Some(5.0), "{ctx}");

    // Nothing about the budgets went to /ticket, and the service within budget never alerted.
    check_within(&stack);
    let all = stack.receiver.all();
    let on_ticket: Vec<&Notification> = all
        .iter()
        .filter(|n| n.path == "/ticket" && !alerts_of(n, OVER).is_empty())
        .collect();
    assert!(on_ticket.is_empty(), "{ALERT} on /ticket: {on_ticket:#?}");
    let within: Vec<&Notification> = all
        .iter()
        .filter(|n| !alerts_of(n, WITHIN).is_empty())
        .collect();
    assert!(within.is_empty(), "{ALERT} for {WITHIN}: {within:#?}");
    assert_eq!(
        seen_within,
        BTreeSet::new(),
        "Prometheus had an {ALERT} alert for {WITHIN}"
    );

    sonde_target_down_inhibits_only_sonde_alerts_of_its_instance(&stack);

    let summary: Vec<String> = all
        .iter()
        .map(|n| {
            let names: Vec<&str> = n.body["alerts"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|a| a["labels"]["alertname"].as_str())
                .collect();
            format!("{} {} {names:?}", n.path, n.body["status"])
        })
        .collect();
    eprintln!(
        "alerting_e2e: events sent at second {} of the minute; {} webhook payloads {summary:?}; wall time {:?}",
        before % 60,
        all.len(),
        started.elapsed()
    );
}
