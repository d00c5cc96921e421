//! Static checks of the Grafana dashboards in `monitoring/grafana/dashboards` (fast, no
//! Grafana or Prometheus needed): valid JSON in the current schema (schemaVersion >= 39, no
//! deprecated panel types), panel ids unique within a dashboard (rows' nested panels
//! included), every panel queries Prometheus through the `datasource` variable with a
//! non-empty expression, units and absolute thresholds on every panel, every `$variable` an
//! expression or variable query uses is defined (or a Grafana built-in), uids unique across
//! dashboards, data links point at dashboards that exist; and the provisioning files under
//! `monitoring/grafana/provisioning` load the dashboards and a Prometheus. Each check is a
//! function returning the problems it found, and the unit tests below feed each one a
//! deliberately broken dashboard to prove it can fail.
//! `tests/dashboards_prometheus.rs` runs every panel's queries against a real Prometheus.

mod common;

use std::collections::{BTreeMap, BTreeSet};

use common::dashboards::{all_panels, parse_dashboard, referenced_variables};
use serde_json::{Value, json};

/// The dashboards this repository ships, by file name.
const DASHBOARDS: [&str; 4] = [
    "nodes.json",
    "services.json",
    "sonde.json",
    "workloads.json",
];

/// Current panel types (Grafana 11/12). `graph`, `singlestat` and `table-old` are deprecated.
const PANEL_TYPES: &[&str] = &[
    "row",
    "timeseries",
    "stat",
    "table",
    "gauge",
    "bargauge",
    "state-timeline",
    "status-history",
    "barchart",
    "heatmap",
    "text",
];

/// Variables Grafana defines itself.
const BUILTIN_VARIABLES: &[&str] = &[
    "__rate_interval",
    "__interval",
    "__interval_ms",
    "__range",
    "__range_s",
    "__range_ms",
    "__from",
    "__to",
    "__dashboard",
    "__org",
    "__user",
];

const MIN_SCHEMA_VERSION: u64 = 39;

/// The shipped dashboards, parsed: (file name, dashboard); exactly [`DASHBOARDS`].
fn load_dashboards() -> Vec<(String, Value)> {
    let dashboards = common::dashboards::load_dashboards();
    let names: Vec<&str> = dashboards.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names, DASHBOARDS, "files in monitoring/grafana/dashboards");
    dashboards
}

fn is_row(p: &Value) -> bool {
    p["type"] == "row"
}

/// A readable name for a panel in messages.
fn label(p: &Value) -> String {
    format!(
        "panel {} {:?}",
        p["id"],
        p["title"].as_str().unwrap_or("<untitled>")
    )
}

fn check_schema(d: &Value) -> Vec<String> {
    let mut problems = Vec::new();
    match d["schemaVersion"].as_u64() {
        Some(v) if v >= MIN_SCHEMA_VERSION => {}
        other => problems.push(format!(
            "schemaVersion {other:?}, want >= {MIN_SCHEMA_VERSION}"
        )),
    }
    for key in ["uid", "title"] {
        if d[key].as_str().is_none_or(str::is_empty) {
            problems.push(format!("dashboard {key} missing"));
        }
    }
    for p in all_panels(d) {
        let t = p["type"].as_str().unwrap_or_default();
        if !PANEL_TYPES.contains(&t) {
            problems.push(format!(
                "{}: panel type {t:?} is not a current type",
                label(p)
            ));
        }
        if !is_row(p) && p["description"].as_str().is_none_or(str::is_empty) {
            problems.push(format!("{}: no description", label(p)));
        }
    }
    problems
}

fn check_panel_ids(d: &Value) -> Vec<String> {
    let mut seen: BTreeMap<i64, usize> = BTreeMap::new();
    let mut problems = Vec::new();
    for p in all_panels(d) {
        match p["id"].as_i64() {
            Some(id) => *seen.entry(id).or_default() += 1,
            None => problems.push(format!("{}: no numeric id", label(p))),
        }
    }
    for (id, n) in seen {
        if n > 1 {
            problems.push(format!("panel id {id} used {n} times"));
        }
    }
    problems
}

fn is_datasource_var(ds: &Value) -> bool {
    ds["uid"] == "${datasource}" && ds["type"] == "prometheus"
}

fn check_targets(d: &Value) -> Vec<String> {
    let mut problems = Vec::new();
    for p in all_panels(d).into_iter().filter(|p| !is_row(p)) {
        if !is_datasource_var(&p["datasource"]) {
            problems.push(format!(
                "{}: panel datasource {} is not the ${{datasource}} variable",
                label(p),
                p["datasource"]
            ));
        }
        let targets = p["targets"]
            .as_array()
            .map(Vec::as_slice)
            .unwrap_or_default();
        if targets.is_empty() {
            problems.push(format!("{}: no targets", label(p)));
        }
        for t in targets {
            let r = t["refId"].as_str().unwrap_or("?");
            if t["expr"].as_str().is_none_or(|e| e.trim().is_empty()) {
                problems.push(format!("{} target {r}: empty expr", label(p)));
            }
            if !is_datasource_var(&t["datasource"]) {
                problems.push(format!(
                    "{} target {r}: datasource {} is not the ${{datasource}} variable",
                    label(p),
                    t["datasource"]
                ));
            }
        }
    }
    problems
}

fn check_units_and_thresholds(d: &Value) -> Vec<String> {
    let mut problems = Vec::new();
    for p in all_panels(d).into_iter().filter(|p| !is_row(p)) {
        let defaults = &p["fieldConfig"]["defaults"];
        if defaults["unit"].as_str().is_none_or(str::is_empty) {
            problems.push(format!("{}: no fieldConfig.defaults.unit", label(p)));
        }
        let th = &defaults["thresholds"];
        if th["mode"] != "absolute" {
            problems.push(format!(
                "{}: thresholds mode {}, want \"absolute\"",
                label(p),
                th["mode"]
            ));
        }
        let steps = th["steps"]
            .as_array()
            .map(Vec::as_slice)
            .unwrap_or_default();
        match steps.first() {
            None => problems.push(format!("{}: no threshold steps", label(p))),
            Some(base) if !base["value"].is_null() => problems.push(format!(
                "{}: first threshold step must be the base (value null)",
                label(p)
            )),
            Some(_) => {}
        }
        for s in steps.iter().skip(1) {
            if !s["value"].is_number() || s["color"].as_str().is_none() {
                problems.push(format!("{}: bad threshold step {s}", label(p)));
            }
        }
    }
    problems
}

/// The query text of a query variable (a string in old dashboards, an object in new ones).
fn variable_query(v: &Value) -> Option<&str> {
    v["query"].as_str().or(v["query"]["query"].as_str())
}

fn check_variables(d: &Value) -> Vec<String> {
    let mut problems = Vec::new();
    let vars: Vec<&Value> = d["templating"]["list"]
        .as_array()
        .map(|l| l.iter().collect())
        .unwrap_or_default();
    let defined: BTreeSet<&str> = vars.iter().filter_map(|v| v["name"].as_str()).collect();
    match vars.iter().find(|v| v["name"] == "datasource") {
        Some(v) if v["type"] == "datasource" && v["query"] == "prometheus" => {}
        Some(v) => problems.push(format!(
            "variable datasource has type {} query {}, want a prometheus datasource variable",
            v["type"], v["query"]
        )),
        None => problems.push("no datasource variable".to_string()),
    }
    let undefined = |what: String, text: &str| -> Vec<String> {
        referenced_variables(text)
            .into_iter()
            .filter(|n| !defined.contains(n.as_str()) && !BUILTIN_VARIABLES.contains(&n.as_str()))
            .map(|n| format!("{what}: undefined variable ${n}"))
            .collect()
    };
    for v in vars.iter().filter(|v| v["type"] == "query") {
        let name = v["name"].as_str().unwrap_or("?");
        match variable_query(v) {
            Some(q) if !q.trim().is_empty() => {
                problems.extend(undefined(format!("variable {name}"), q));
            }
            _ => problems.push(format!("variable {name}: no query")),
        }
        if !is_datasource_var(&v["datasource"]) {
            problems.push(format!(
                "variable {name}: datasource {} is not the ${{datasource}} variable",
                v["datasource"]
            ));
        }
    }
    for p in all_panels(d) {
        for t in p["targets"].as_array().into_iter().flatten() {
            let r = t["refId"].as_str().unwrap_or("?");
            problems.extend(undefined(
                format!("{} target {r}", label(p)),
                t["expr"].as_str().unwrap_or_default(),
            ));
        }
    }
    problems
}

fn check_uids_unique(dashboards: &[(String, Value)]) -> Vec<String> {
    let mut by_uid: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for (name, d) in dashboards {
        by_uid
            .entry(d["uid"].as_str().unwrap_or_default())
            .or_default()
            .push(name);
    }
    by_uid
        .into_iter()
        .filter(|(_, names)| names.len() > 1)
        .map(|(uid, names)| format!("uid {uid:?} used by {names:?}"))
        .collect()
}

/// Dashboard uids that data links and dashboard links point at (`/d/<uid>/...`) must exist.
fn check_link_targets(dashboards: &[(String, Value)]) -> Vec<String> {
    let uids: BTreeSet<&str> = dashboards
        .iter()
        .filter_map(|(_, d)| d["uid"].as_str())
        .collect();
    let re = regex::Regex::new(r"/d/([^/?&]+)").expect("regex");
    let mut problems = Vec::new();
    for (name, d) in dashboards {
        let mut urls: Vec<(String, &str)> = Vec::new();
        for p in all_panels(d) {
            let mut links: Vec<&Value> = Vec::new();
            links.extend(p["links"].as_array().into_iter().flatten());
            links.extend(
                p["fieldConfig"]["defaults"]["links"]
                    .as_array()
                    .into_iter()
                    .flatten(),
            );
            for o in p["fieldConfig"]["overrides"]
                .as_array()
                .into_iter()
                .flatten()
            {
                for prop in o["properties"].as_array().into_iter().flatten() {
                    if prop["id"] == "links" {
                        links.extend(prop["value"].as_array().into_iter().flatten());
                    }
                }
            }
            urls.extend(
                links
                    .into_iter()
                    .filter_map(|l| l["url"].as_str())
                    .map(|u| (label(p), u)),
            );
        }
        for (what, url) in urls {
            for c in re.captures_iter(url) {
                if !uids.contains(&c[1]) {
                    problems.push(format!(
                        "{name}: {what}: link to unknown dashboard uid {:?}",
                        &c[1]
                    ));
                }
            }
        }
    }
    problems
}

/// A per-dashboard check: the problems it found.
type Check = fn(&Value) -> Vec<String>;

/// Every per-dashboard check, each problem prefixed with the check's name.
fn check_dashboard(d: &Value) -> Vec<String> {
    let checks: [(&str, Check); 5] = [
        ("schema", check_schema),
        ("panel ids", check_panel_ids),
        ("targets", check_targets),
        ("units/thresholds", check_units_and_thresholds),
        ("variables", check_variables),
    ];
    checks
        .iter()
        .flat_map(|(name, f)| f(d).into_iter().map(move |p| format!("{name}: {p}")))
        .collect()
}

#[test]
fn shipped_dashboards_pass_every_check() {
    let dashboards = load_dashboards();
    let mut problems = check_uids_unique(&dashboards);
    problems.extend(check_link_targets(&dashboards));
    for (name, d) in &dashboards {
        problems.extend(
            check_dashboard(d)
                .into_iter()
                .map(|p| format!("{name}: {p}")),
        );
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn shipped_dashboards_have_their_uids_and_panels() {
    let dashboards = load_dashboards();
    let summary: Vec<(&str, &str, bool)> = dashboards
        .iter()
        .map(|(n, d)| {
            let n_panels = all_panels(d).iter().filter(|p| !is_row(p)).count();
            (
                n.as_str(),
                d["uid"].as_str().unwrap_or_default(),
                n_panels >= 10,
            )
        })
        .collect();
    assert_eq!(
        summary,
        [
            ("nodes.json", "sonde-nodes", true),
            ("services.json", "sonde-services", true),
            ("sonde.json", "sonde-self", true),
            ("workloads.json", "sonde-workloads", true),
        ]
    );
}

/// The smallest dashboard every check accepts; the tests below break one thing at a time.
fn good() -> Value {
    let ds = json!({"type": "prometheus", "uid": "${datasource}"});
    json!({
        "uid": "t", "title": "t", "schemaVersion": 39,
        "templating": {"list": [
            {"name": "datasource", "type": "datasource", "query": "prometheus"},
            {"name": "job", "type": "query", "datasource": ds,
             "query": {"query": "label_values(up, job)", "refId": "V"}},
        ]},
        "panels": [
            {"type": "row", "id": 1, "title": "r", "collapsed": false, "panels": []},
            {"type": "stat", "id": 2, "title": "up", "description": "d", "datasource": ds,
             "fieldConfig": {"defaults": {"unit": "none", "thresholds": {"mode": "absolute",
                 "steps": [{"color": "green", "value": null}, {"color": "red", "value": 1}]}}},
             "targets": [{"refId": "A", "datasource": ds,
                          "expr": "rate(up{job=~\"$job\"}[$__rate_interval])"}]},
            {"type": "row", "id": 3, "title": "c", "collapsed": true, "panels": [
                {"type": "timeseries", "id": 4, "title": "nested", "description": "d",
                 "datasource": ds,
                 "fieldConfig": {"defaults": {"unit": "s", "thresholds": {"mode": "absolute",
                     "steps": [{"color": "green", "value": null}]}}},
                 "targets": [{"refId": "A", "datasource": ds, "expr": "up[${__range}]"}]}
            ]}
        ]
    })
}

/// The nested panel of [`good`].
fn nested(d: &mut Value) -> &mut Value {
    &mut d["panels"][2]["panels"][0]
}

#[test]
fn the_good_dashboard_passes() {
    assert_eq!(check_dashboard(&good()), Vec::<String>::new());
    assert_eq!(
        check_uids_unique(&[("a".into(), good()), ("b".into(), json!({"uid": "u"}))]),
        Vec::<String>::new()
    );
}

#[test]
fn invalid_json_is_reported_with_the_file_name() {
    let e = parse_dashboard("x.json", "{\"panels\": [}").expect_err("invalid");
    assert!(e.starts_with("x.json: invalid JSON: "), "{e}");
    assert_eq!(
        parse_dashboard("y.json", "[]").expect_err("array"),
        "y.json: not a JSON object"
    );
}

#[test]
fn old_schema_and_deprecated_panels_fail() {
    let mut d = good();
    d["schemaVersion"] = json!(27);
    d["panels"][1]["type"] = json!("singlestat");
    nested(&mut d)["type"] = json!("graph");
    nested(&mut d)["description"] = json!("");
    assert_eq!(
        check_schema(&d),
        [
            "schemaVersion Some(27), want >= 39",
            "panel 2 \"up\": panel type \"singlestat\" is not a current type",
            "panel 4 \"nested\": panel type \"graph\" is not a current type",
            "panel 4 \"nested\": no description",
        ]
    );
}

#[test]
fn duplicate_ids_in_collapsed_rows_fail() {
    let mut d = good();
    nested(&mut d)["id"] = json!(2);
    assert_eq!(check_panel_ids(&d), ["panel id 2 used 2 times"]);
}

#[test]
fn missing_targets_expr_and_datasource_fail() {
    let mut d = good();
    d["panels"][1]["targets"] = json!([]);
    nested(&mut d)["targets"][0]["expr"] = json!(" ");
    nested(&mut d)["targets"][0]["datasource"] = json!({"type": "prometheus", "uid": "abc"});
    nested(&mut d)["datasource"] = json!(null);
    assert_eq!(
        check_targets(&d),
        [
            "panel 2 \"up\": no targets",
            "panel 4 \"nested\": panel datasource null is not the ${datasource} variable",
            "panel 4 \"nested\" target A: empty expr",
            "panel 4 \"nested\" target A: datasource {\"type\":\"prometheus\",\"uid\":\"abc\"} is not the ${datasource} variable",
        ]
    );
}

#[test]
fn missing_units_and_thresholds_fail() {
    let mut d = good();
    d["panels"][1]["fieldConfig"]["defaults"]
        .as_object_mut()
        .expect("defaults")
        .remove("unit");
    nested(&mut d)["fieldConfig"]["defaults"]["thresholds"] =
        json!({"mode": "percentage", "steps": []});
    assert_eq!(
        check_units_and_thresholds(&d),
        [
            "panel 2 \"up\": no fieldConfig.defaults.unit",
            "panel 4 \"nested\": thresholds mode \"percentage\", want \"absolute\"",
            "panel 4 \"nested\": no threshold steps",
        ]
    );
    let mut d = good();
    d["panels"][1]["fieldConfig"]["defaults"]["thresholds"]["steps"] =
        json!([{"color": "green", "value": 0}, {"color": "red", "value": "1"}]);
    assert_eq!(
        check_units_and_thresholds(&d),
        [
            "panel 2 \"up\": first threshold step must be the base (value null)",
            "panel 2 \"up\": bad threshold step {\"color\":\"red\",\"value\":\"1\"}",
        ]
    );
}

#[test]
fn undefined_variables_and_a_missing_datasource_variable_fail() {
    let mut d = good();
    d["panels"][1]["targets"][0]["expr"] = json!("up{instance=~\"${instance:regex}\"}");
    nested(&mut d)["targets"][0]["expr"] = json!("rate(up[$__rate_interval]) + [[node]]");
    d["templating"]["list"][1]["query"]["query"] = json!("label_values(up{x=\"$nope\"}, job)");
    d["templating"]["list"][0]["type"] = json!("query");
    assert_eq!(
        check_variables(&d),
        [
            "variable datasource has type \"query\" query \"prometheus\", want a prometheus datasource variable",
            // Now a query variable itself, without a datasource of its own.
            "variable datasource: datasource null is not the ${datasource} variable",
            "variable job: undefined variable $nope",
            "panel 2 \"up\" target A: undefined variable $instance",
            "panel 4 \"nested\" target A: undefined variable $node",
        ]
    );
    let mut d = good();
    d["templating"]["list"]
        .as_array_mut()
        .expect("list")
        .remove(0);
    assert_eq!(check_variables(&d), ["no datasource variable"]);
}

#[test]
fn variable_references_are_found_in_every_syntax() {
    let got = referenced_variables("a $x ${y} ${z:csv} [[w]] [[v:regex]] $__range 5$");
    let want: BTreeSet<String> = ["x", "y", "z", "w", "v", "__range"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    assert_eq!(got, want);
}

#[test]
fn duplicate_uids_across_dashboards_fail() {
    let d = good();
    assert_eq!(
        check_uids_unique(&[
            ("a.json".into(), d.clone()),
            ("b.json".into(), json!({"uid": "u"})),
            ("c.json".into(), d)
        ]),
        ["uid \"t\" used by [\"a.json\", \"c.json\"]"]
    );
}

#[test]
fn links_to_unknown_dashboards_fail() {
    let mut d = good();
    let link = json!([{"title": "x", "url": "/d/t/t?var-instance=${__data.fields.instance}"}]);
    d["panels"][1]["fieldConfig"]["overrides"] = json!([{"matcher": {"id": "byName", "options": "i"},
                "properties": [{"id": "links", "value": link}]}]);
    assert_eq!(
        check_link_targets(&[("a.json".into(), d.clone())]),
        Vec::<String>::new()
    );
    nested(&mut d)["links"] = json!([{"title": "y", "url": "/d/nope/x"}]);
    assert_eq!(
        check_link_targets(&[("a.json".into(), d)]),
        ["a.json: panel 4 \"nested\": link to unknown dashboard uid \"nope\""]
    );
}

#[test]
fn provisioning_files_point_at_the_dashboards_and_prometheus() {
    let dir = common::repo().join("monitoring/grafana/provisioning");
    let read = |rel: &str| {
        let text = std::fs::read_to_string(dir.join(rel)).expect(rel);
        assert!(text.starts_with("# "), "{rel} must open with a comment");
        serde_saphyr::from_str::<Value>(&text).unwrap_or_else(|e| panic!("{rel}: {e}"))
    };
    let dashboards = read("dashboards/sonde.yaml");
    assert_eq!(dashboards["apiVersion"], 1);
    let providers = dashboards["providers"].as_array().expect("providers");
    assert_eq!(providers.len(), 1);
    assert_eq!(providers[0]["type"], "file");
    assert_eq!(
        providers[0]["options"]["path"],
        "/var/lib/grafana/dashboards/sonde"
    );
    let datasources = read("datasources/sonde.yaml");
    assert_eq!(datasources["apiVersion"], 1);
    let ds = datasources["datasources"].as_array().expect("datasources");
    assert_eq!(ds.len(), 1);
    assert_eq!(ds[0]["type"], "prometheus");
    assert_eq!(ds[0]["access"], "proxy");
}
