//! Validates every manifest in `deploy/kubernetes/` against the Kubernetes API schema
//! (k8s-openapi types, Kubernetes 1.33). k8s-openapi ignores unknown fields when deserialising,
//! so each document is parsed to a JSON value, deserialised into its typed object, serialised
//! back and compared with the original: a typo or a field that does not exist in the schema is
//! lost on the way and fails the comparison. The ServiceMonitor (a CRD without k8s-openapi type)
//! gets a minimal typed struct with `deny_unknown_fields`. The kustomization must list every file.
//!
//! `prometheusrule.yaml` (the Prometheus Operator's PrometheusRule) is generated from
//! `monitoring/rules/*.yml` so the two cannot drift: the test renders it again and requires the
//! file to be byte-identical (and its groups equal to the rule files' groups). After changing a
//! rule file, regenerate it with `SONDE_BLESS=1 cargo test --test k8s_manifests`.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use k8s_openapi::api::apps::v1::DaemonSet;
use k8s_openapi::api::core::v1::{Namespace, Service, ServiceAccount};
use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta};
use serde::{Deserialize, Serialize};
use serde_json::Value;

fn dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy/kubernetes")
}

/// Removes nulls (k8s-openapi omits `None` fields) so only real differences remain.
fn drop_nulls(v: &mut Value) {
    match v {
        Value::Object(m) => {
            m.retain(|_, v| !v.is_null());
            m.values_mut().for_each(drop_nulls);
        }
        Value::Array(a) => a.iter_mut().for_each(drop_nulls),
        _ => {}
    }
}

/// Deserialises `original` into `T` and requires the round trip to be lossless.
fn roundtrip<T: serde::de::DeserializeOwned + Serialize>(original: &Value) -> Result<T, String> {
    let typed: T = serde_json::from_value(original.clone()).map_err(|e| e.to_string())?;
    let mut back = serde_json::to_value(&typed).map_err(|e| e.to_string())?;
    drop_nulls(&mut back);
    let mut orig = original.clone();
    drop_nulls(&mut orig);
    if back != orig {
        return Err(format!(
            "fields lost or changed by the schema round trip:\n original: {orig}\n typed:    {back}"
        ));
    }
    Ok(typed)
}

/// A minimal, strict ServiceMonitor (monitoring.coreos.com/v1): only the fields we use.
#[derive(Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct ServiceMonitor {
    api_version: String,
    kind: String,
    metadata: ObjectMeta,
    spec: ServiceMonitorSpec,
}

#[derive(Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct ServiceMonitorSpec {
    selector: LabelSelector,
    #[serde(skip_serializing_if = "Option::is_none")]
    namespace_selector: Option<NamespaceSelector>,
    endpoints: Vec<Endpoint>,
}

#[derive(Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct NamespaceSelector {
    match_names: Vec<String>,
}

#[derive(Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct Endpoint {
    port: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    path: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    interval: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    scrape_timeout: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    relabelings: Vec<Relabeling>,
}

#[derive(Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct Relabeling {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    source_labels: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    target_label: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    regex: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    action: Option<String>,
}

/// A strict PrometheusRule (monitoring.coreos.com/v1).
#[derive(Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct PrometheusRule {
    api_version: String,
    kind: String,
    metadata: ObjectMeta,
    spec: PrometheusRuleSpec,
}

#[derive(Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
struct PrometheusRuleSpec {
    groups: Vec<RuleGroup>,
}

/// A rule group as Prometheus reads it (the fields sonde's rule files use).
#[derive(Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
struct RuleGroup {
    name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    interval: Option<String>,
    rules: Vec<Rule>,
}

#[derive(Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
struct Rule {
    #[serde(skip_serializing_if = "Option::is_none")]
    record: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    alert: Option<String>,
    expr: String,
    #[serde(rename = "for", skip_serializing_if = "Option::is_none")]
    for_: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    labels: Option<std::collections::BTreeMap<String, String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    annotations: Option<std::collections::BTreeMap<String, String>>,
}

#[derive(Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct Kustomization {
    api_version: String,
    kind: String,
    namespace: String,
    resources: Vec<String>,
}

/// A validated manifest.
#[derive(Debug)]
enum Manifest {
    ClusterRole(Box<ClusterRole>),
    DaemonSet(Box<DaemonSet>),
    Kustomization(Box<Kustomization>),
    /// Validated; nothing more is checked.
    Other,
}

/// Parses and validates one manifest's text.
fn validate(text: &str) -> Result<Manifest, String> {
    let v: Value = serde_saphyr::from_str(text).map_err(|e| e.to_string())?;
    let kind = v["kind"].as_str().unwrap_or_default().to_string();
    Ok(match kind.as_str() {
        "Namespace" => roundtrip::<Namespace>(&v).map(|_| Manifest::Other)?,
        "ServiceAccount" => roundtrip::<ServiceAccount>(&v).map(|_| Manifest::Other)?,
        "ClusterRole" => Manifest::ClusterRole(Box::new(roundtrip(&v)?)),
        "ClusterRoleBinding" => roundtrip::<ClusterRoleBinding>(&v).map(|_| Manifest::Other)?,
        "DaemonSet" => Manifest::DaemonSet(Box::new(roundtrip(&v)?)),
        "Service" => roundtrip::<Service>(&v).map(|_| Manifest::Other)?,
        "ServiceMonitor" => {
            if v["apiVersion"] != "monitoring.coreos.com/v1" {
                return Err("ServiceMonitor must be monitoring.coreos.com/v1".into());
            }
            roundtrip::<ServiceMonitor>(&v).map(|_| Manifest::Other)?
        }
        "PrometheusRule" => {
            if v["apiVersion"] != "monitoring.coreos.com/v1" {
                return Err("PrometheusRule must be monitoring.coreos.com/v1".into());
            }
            roundtrip::<PrometheusRule>(&v).map(|_| Manifest::Other)?
        }
        "Kustomization" => Manifest::Kustomization(Box::new(roundtrip(&v)?)),
        other => return Err(format!("unexpected kind {other:?}")),
    })
}

/// The files of `dir` whose extension is one of `exts`, as `(file name, text)`, sorted.
fn files_in(dir: &Path, exts: &[&str]) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|e| exts.iter().any(|x| e == *x)))
        .map(|p| {
            let name = p.file_name().expect("name").to_string_lossy().into_owned();
            (name, std::fs::read_to_string(&p).expect("read"))
        })
        .collect();
    out.sort();
    out
}

fn manifests() -> Vec<(String, String)> {
    files_in(&dir(), &["yaml", "yml"])
}

#[test]
fn every_manifest_matches_the_schema_and_the_kustomization_lists_them() {
    let all = manifests();
    assert!(
        all.len() >= 9,
        "{:?}",
        all.iter().map(|m| &m.0).collect::<Vec<_>>()
    );
    let mut files = BTreeSet::new();
    let mut kust = None;
    let mut ds = None;
    let mut role = None;
    for (name, text) in &all {
        let m = validate(text).unwrap_or_else(|e| panic!("{name}: {e}"));
        match m {
            Manifest::Kustomization(k) => kust = Some(k),
            other => {
                files.insert(name.clone());
                match other {
                    Manifest::DaemonSet(d) => ds = Some(d),
                    Manifest::ClusterRole(r) => role = Some(r),
                    _ => {}
                }
            }
        }
    }
    let kust = kust.expect("kustomization.yaml");
    let listed: BTreeSet<String> = kust.resources.iter().cloned().collect();
    assert_eq!(listed, files, "kustomization resources vs files");
    assert_eq!(kust.resources.len(), listed.len(), "duplicate resources");

    // The parts of the DaemonSet the daemon depends on.
    let ds = ds.expect("daemonset");
    let pod = ds
        .spec
        .as_ref()
        .and_then(|s| s.template.spec.as_ref())
        .expect("pod spec");
    let c = &pod.containers[0];
    let args = c.args.clone().unwrap_or_default();
    for a in [
        "--path.procfs=/host/proc",
        "--path.sysfs=/host/sys",
        "--path.rootfs=/host/root",
        "--path.data=/var/lib/sonde",
    ] {
        assert!(args.iter().any(|x| x == a), "missing {a}");
    }
    let env = c.env.clone().unwrap_or_default();
    let node = env
        .iter()
        .find(|e| e.name == "NODE_NAME")
        .expect("NODE_NAME");
    assert_eq!(
        node.value_from
            .as_ref()
            .and_then(|v| v.field_ref.as_ref())
            .map(|f| f.field_path.as_str()),
        Some("spec.nodeName")
    );
    let probe_path = |p: &Option<k8s_openapi::api::core::v1::Probe>| {
        p.as_ref()
            .and_then(|p| p.http_get.as_ref())
            .and_then(|h| h.path.clone())
    };
    assert_eq!(probe_path(&c.liveness_probe).as_deref(), Some("/-/healthy"));
    assert_eq!(probe_path(&c.readiness_probe).as_deref(), Some("/-/ready"));
    let sc = c.security_context.as_ref().expect("securityContext");
    assert_eq!(sc.read_only_root_filesystem, Some(true));
    assert_eq!(sc.allow_privilege_escalation, Some(false));
    for m in c.volume_mounts.as_deref().unwrap_or_default() {
        if m.mount_path.starts_with("/host/") {
            assert_eq!(
                m.read_only,
                Some(true),
                "{} must be read-only",
                m.mount_path
            );
        }
    }
    assert_eq!(pod.service_account_name.as_deref(), Some("sonde"));

    // Least privilege: read-only verbs on pods, nothing else.
    let rules = role.expect("clusterrole").rules.unwrap_or_default();
    assert_eq!(rules.len(), 1);
    assert_eq!(
        rules[0].resources.as_deref(),
        Some(&["pods".to_string()][..])
    );
    assert_eq!(rules[0].verbs, vec!["get", "list", "watch"]);
}

#[test]
fn typos_and_unknown_fields_are_refused() {
    let all = manifests();
    let text = |name: &str| {
        all.iter()
            .find(|(n, _)| n == name)
            .map(|(_, t)| t.clone())
            .expect(name)
    };
    let ds = text("daemonset.yaml");
    assert!(validate(&ds).is_ok());
    for (from, to) in [
        ("readOnlyRootFilesystem", "readOnlyRootFileSystem"),
        ("fieldPath: spec.nodeName", "fieldpath: spec.nodeName"),
        ("mountPropagation", "mountPropogation"),
        (
            "hostNetwork: true",
            "hostNetwork: true\n      hostNetwrk: true",
        ),
    ] {
        assert!(ds.contains(from), "{from}");
        let bad = ds.replacen(from, to, 1);
        assert!(validate(&bad).is_err(), "typo {to:?} accepted");
    }
    let sm = text("servicemonitor.yaml");
    assert!(validate(&sm).is_ok());
    for (from, to) in [
        ("sourceLabels", "sourcelabels"),
        ("scrapeTimeout", "scrape_timeout"),
        ("matchLabels", "matchLabel"),
    ] {
        let bad = sm.replacen(from, to, 1);
        assert!(validate(&bad).is_err(), "typo {to:?} accepted");
    }
    let svc = text("service.yaml").replacen("targetPort", "targetport", 1);
    assert!(validate(&svc).is_err());
    let role = text("clusterrole.yaml").replacen("verbs", "verb", 1);
    assert!(validate(&role).is_err());
    let k = text("kustomization.yaml").replacen("resources", "resource", 1);
    assert!(validate(&k).is_err());
}

/// The rule files, sorted by name: `(file name, text)`.
fn rule_files() -> Vec<(String, String)> {
    files_in(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("monitoring/rules"),
        &["yml"],
    )
}

/// The PrometheusRule text for the rule files: each file's `groups:` list, indented under
/// `spec.groups`, comments and block scalars kept as written.
fn render_prometheus_rule(files: &[(String, String)]) -> String {
    let mut out = String::from(
        "# GENERATED from monitoring/rules/*.yml by tests/k8s_manifests.rs; do not edit.\n\
         # Regenerate: SONDE_BLESS=1 cargo test --test k8s_manifests\n\
         # For the Prometheus Operator: every sonde alert and recording rule. The Prometheus\n\
         # resource's ruleSelector must match these labels (kube-prometheus-stack selects\n\
         # `release: <helm release>` by default: add that label here or widen the selector).\n\
         apiVersion: monitoring.coreos.com/v1\n\
         kind: PrometheusRule\n\
         metadata:\n  name: sonde\n  namespace: monitoring\n  labels:\n    \
         app.kubernetes.io/name: sonde\n\
         spec:\n  groups:\n",
    );
    for (name, text) in files {
        let body = text
            .split_once("\ngroups:\n")
            .map(|(_, b)| b)
            .unwrap_or_else(|| panic!("{name}: no top-level `groups:` line"));
        out.push_str(&format!("    # monitoring/rules/{name}\n"));
        for line in body.lines() {
            if line.trim().is_empty() {
                out.push('\n');
            } else {
                out.push_str("  ");
                out.push_str(line);
                out.push('\n');
            }
        }
    }
    out
}

#[test]
fn prometheusrule_is_generated_from_the_monitoring_rules() {
    let files = rule_files();
    assert!(
        files.len() >= 5,
        "{:?}",
        files.iter().map(|f| &f.0).collect::<Vec<_>>()
    );
    let want = render_prometheus_rule(&files);
    let path = dir().join("prometheusrule.yaml");
    if std::env::var_os("SONDE_BLESS").is_some() {
        std::fs::write(&path, &want).expect("write prometheusrule.yaml");
    }
    let have = std::fs::read_to_string(&path).expect("prometheusrule.yaml");
    assert!(
        have == want,
        "deploy/kubernetes/prometheusrule.yaml is stale: run SONDE_BLESS=1 cargo test --test k8s_manifests"
    );
    // Independently of the text: the same groups, parsed, in the same order.
    let parsed: Value = serde_saphyr::from_str(&have).expect("yaml");
    let mut groups = Vec::new();
    for (name, text) in &files {
        let v: Value = serde_saphyr::from_str(text).unwrap_or_else(|e| panic!("{name}: {e}"));
        groups.extend(v["groups"].as_array().expect("groups").iter().cloned());
    }
    assert_eq!(parsed["spec"]["groups"], Value::Array(groups));
    assert!(matches!(validate(&have), Ok(Manifest::Other)));
    let bad = have.replacen("expr:", "exp:", 1);
    assert!(
        validate(&bad).is_err(),
        "a misspelt rule field must be refused"
    );
}

/// The Operator's own target labels (naming the sonde pod) must be dropped, or they clash with
/// the namespace/pod/container/service labels sonde exports; job and instance must stay.
#[test]
fn servicemonitor_drops_the_operator_target_labels_that_clash_with_sondes() {
    let text = std::fs::read_to_string(dir().join("servicemonitor.yaml")).expect("read");
    let v: Value = serde_saphyr::from_str(&text).expect("yaml");
    let sm: ServiceMonitor = roundtrip(&v).expect("servicemonitor");
    let drops: Vec<regex::Regex> = sm.spec.endpoints[0]
        .relabelings
        .iter()
        .filter(|r| r.action.as_deref() == Some("labeldrop"))
        .map(|r| {
            regex::Regex::new(&format!("^(?:{})$", r.regex.as_deref().expect("regex"))).expect("re")
        })
        .collect();
    let dropped = |l: &str| drops.iter().any(|re| re.is_match(l));
    for l in ["namespace", "service", "pod", "container", "endpoint"] {
        assert!(dropped(l), "{l} is not dropped");
    }
    for l in ["job", "instance"] {
        assert!(!dropped(l), "{l} must stay");
    }
}
