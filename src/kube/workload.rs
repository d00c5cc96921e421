//! Pure functions over a `Pod` object: which workload owns it, container id normalisation and
//! resource quantities in kube-state-metrics' units.
//!
//! Workload resolution reads only the pod itself, so the DaemonSet needs RBAC on pods alone and
//! no node watches every ReplicaSet and Job of the cluster (which would multiply API server load
//! by the number of nodes):
//! - ReplicaSet → Deployment: the Deployment controller names its ReplicaSets
//!   `<deployment>-<pod-template-hash>` and puts that hash on the pod as the `pod-template-hash`
//!   label; when both agree the Deployment is the prefix, otherwise the ReplicaSet is the workload.
//! - Job → CronJob: the CronJob controller names its Jobs `<cronjob>-<scheduled time in minutes
//!   since the epoch>` (8 to 10 digits for any date from 1973 to 21985); a Job named otherwise
//!   is its own workload.
//! - Static pods (`kubernetes.io/config.mirror` annotation or a `Node` owner) are `StaticPod`
//!   named after the manifest (the pod name without the `-<node>` suffix the kubelet appends).
//! - A pod without a controller is its own workload (`Pod`).

use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;

/// The annotation the kubelet puts on mirror pods of static manifests.
pub const MIRROR_ANNOTATION: &str = "kubernetes.io/config.mirror";

/// The workload a pod belongs to: (name, kind).
pub fn resolve(pod: &Pod) -> (String, String) {
    let meta = &pod.metadata;
    let name = meta.name.as_deref().unwrap_or_default();
    let node = pod
        .spec
        .as_ref()
        .and_then(|s| s.node_name.as_deref())
        .unwrap_or_default();
    let owners = meta.owner_references.as_deref().unwrap_or_default();
    let owner = owners
        .iter()
        .find(|o| o.controller == Some(true))
        .or_else(|| owners.first());
    let mirror = meta
        .annotations
        .as_ref()
        .is_some_and(|a| a.contains_key(MIRROR_ANNOTATION));
    if mirror || owner.is_some_and(|o| o.kind == "Node") {
        let base = name
            .strip_suffix(node)
            .and_then(|s| s.strip_suffix('-'))
            .filter(|s| !node.is_empty() && !s.is_empty())
            .unwrap_or(name);
        return (base.to_string(), "StaticPod".to_string());
    }
    let Some(owner) = owner else {
        return (name.to_string(), "Pod".to_string());
    };
    match owner.kind.as_str() {
        "ReplicaSet" => {
            let hash = meta
                .labels
                .as_ref()
                .and_then(|l| l.get("pod-template-hash"))
                .map(String::as_str)
                .unwrap_or_default();
            match owner
                .name
                .strip_suffix(hash)
                .and_then(|s| s.strip_suffix('-'))
                .filter(|s| !hash.is_empty() && !s.is_empty())
            {
                Some(deploy) => (deploy.to_string(), "Deployment".to_string()),
                None => (owner.name.clone(), "ReplicaSet".to_string()),
            }
        }
        "Job" => match cronjob_of(&owner.name) {
            Some(cj) => (cj.to_string(), "CronJob".to_string()),
            None => (owner.name.clone(), "Job".to_string()),
        },
        kind => (owner.name.clone(), kind.to_string()),
    }
}

/// The CronJob that created a Job named `job`, if the name has the CronJob controller's shape.
fn cronjob_of(job: &str) -> Option<&str> {
    let (prefix, stamp) = job.rsplit_once('-')?;
    let digits = stamp.len();
    ((8..=10).contains(&digits) && stamp.bytes().all(|b| b.is_ascii_digit()) && !prefix.is_empty())
        .then_some(prefix)
}

/// The bare container id of a status `containerID` (`containerd://<id>`, `cri-o://<id>`,
/// `docker://<id>`; any `scheme://`), as cgroup paths carry it.
pub fn bare_container_id(id: &str) -> &str {
    id.split_once("://").map_or(id, |(_, rest)| rest)
}

/// A resource quantity as kube-state-metrics reports it: (`resource` label, `unit` label,
/// value). CPU is in cores (rounded up to the millicore, like `Quantity.MilliValue()`), memory,
/// storage, hugepages and attachable volumes in bytes (rounded up to an integer, like
/// `Quantity.Value()`), extended resources as integers. `None` when the quantity does not parse.
pub fn resource_sample(resource: &str, q: &Quantity) -> Option<(String, &'static str, f64)> {
    let v = parse_quantity(&q.0)?;
    let label = sanitize(resource);
    Some(match resource {
        "cpu" => (label, "core", (v * 1000.0).ceil() / 1000.0),
        "memory" | "storage" | "ephemeral-storage" => (label, "byte", v.ceil()),
        r if r.starts_with("hugepages-") || r.starts_with("attachable-volumes-") => {
            (label, "byte", v.ceil())
        }
        _ => (label, "integer", v.ceil()),
    })
}

/// A resource name as a Prometheus label value in kube-state-metrics' style (`nvidia.com/gpu` →
/// `nvidia_com_gpu`, `ephemeral-storage` → `ephemeral_storage`).
fn sanitize(name: &str) -> String {
    name.chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect()
}

/// Parses a Kubernetes quantity (`250m`, `1.5`, `128Mi`, `1G`, `2e3`) to a plain number.
pub fn parse_quantity(s: &str) -> Option<f64> {
    let s = s.trim();
    let split = s
        .find(|c: char| !(c.is_ascii_digit() || c == '.' || c == '+' || c == '-'))
        .unwrap_or(s.len());
    let (num, suffix) = s.split_at(split);
    let base: f64 = num.parse().ok()?;
    let mult = match suffix {
        "" => 1.0,
        "n" => 1e-9,
        "u" => 1e-6,
        "m" => 1e-3,
        "k" => 1e3,
        "M" => 1e6,
        "G" => 1e9,
        "T" => 1e12,
        "P" => 1e15,
        "E" => 1e18,
        "Ki" => 1024.0,
        "Mi" => 1024.0 * 1024.0,
        "Gi" => 1024.0 * 1024.0 * 1024.0,
        "Ti" => 1024f64.powi(4),
        "Pi" => 1024f64.powi(5),
        "Ei" => 1024f64.powi(6),
        e if e.starts_with(['e', 'E']) => 10f64.powi(e[1..].parse().ok()?),
        _ => return None,
    };
    let v = base * mult;
    v.is_finite().then_some(v)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn pod(v: serde_json::Value) -> Pod {
        serde_json::from_value(v).expect("pod")
    }

    #[test]
    fn deployment_through_replicaset_hash() {
        let p = pod(json!({"metadata": {"name": "web-7d9c6b5f4-x2x9z",
            "labels": {"pod-template-hash": "7d9c6b5f4"},
            "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet",
                "name": "web-7d9c6b5f4", "uid": "u", "controller": true}]}}));
        assert_eq!(resolve(&p), ("web".into(), "Deployment".into()));
        // A ReplicaSet not made by a Deployment (no matching hash) stays a ReplicaSet.
        let p = pod(json!({"metadata": {"name": "rs-abcde",
            "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet",
                "name": "rs", "uid": "u", "controller": true}]}}));
        assert_eq!(resolve(&p), ("rs".into(), "ReplicaSet".into()));
    }

    #[test]
    fn cronjob_job_statefulset_daemonset_bare_static() {
        let owned = |kind: &str, name: &str| {
            pod(json!({"metadata": {"name": "p",
                "ownerReferences": [{"apiVersion": "x", "kind": kind, "name": name,
                    "uid": "u", "controller": true}]}}))
        };
        assert_eq!(
            resolve(&owned("Job", "backup-29399040")),
            ("backup".into(), "CronJob".into())
        );
        assert_eq!(
            resolve(&owned("Job", "migrate-2")),
            ("migrate-2".into(), "Job".into())
        );
        assert_eq!(
            resolve(&owned("StatefulSet", "db")),
            ("db".into(), "StatefulSet".into())
        );
        assert_eq!(
            resolve(&owned("DaemonSet", "sonde")),
            ("sonde".into(), "DaemonSet".into())
        );
        assert_eq!(
            resolve(&pod(json!({"metadata": {"name": "debug"}}))),
            ("debug".into(), "Pod".into())
        );
        let st = pod(json!({"metadata": {"name": "kube-apiserver-node1",
            "annotations": {"kubernetes.io/config.mirror": "abc"},
            "ownerReferences": [{"apiVersion": "v1", "kind": "Node", "name": "node1",
                "uid": "u", "controller": true}]},
            "spec": {"nodeName": "node1", "containers": []}}));
        assert_eq!(resolve(&st), ("kube-apiserver".into(), "StaticPod".into()));
    }

    #[test]
    fn quantities_in_ksm_units() {
        let q = |s: &str| Quantity(s.to_string());
        assert_eq!(
            resource_sample("cpu", &q("250m")),
            Some(("cpu".into(), "core", 0.25))
        );
        assert_eq!(
            resource_sample("cpu", &q("2")),
            Some(("cpu".into(), "core", 2.0))
        );
        assert_eq!(
            resource_sample("memory", &q("128Mi")),
            Some(("memory".into(), "byte", 134217728.0))
        );
        assert_eq!(
            resource_sample("memory", &q("1G")),
            Some(("memory".into(), "byte", 1e9))
        );
        assert_eq!(
            resource_sample("ephemeral-storage", &q("2e3")),
            Some(("ephemeral_storage".into(), "byte", 2000.0))
        );
        assert_eq!(
            resource_sample("hugepages-2Mi", &q("4Mi")),
            Some(("hugepages_2Mi".into(), "byte", 4194304.0))
        );
        assert_eq!(
            resource_sample("nvidia.com/gpu", &q("1")),
            Some(("nvidia_com_gpu".into(), "integer", 1.0))
        );
        assert_eq!(resource_sample("cpu", &q("lots")), None);
    }

    #[test]
    fn container_ids() {
        assert_eq!(bare_container_id("containerd://abc123"), "abc123");
        assert_eq!(bare_container_id("cri-o://def"), "def");
        assert_eq!(bare_container_id("docker://0f"), "0f");
        assert_eq!(bare_container_id("plain"), "plain");
    }
}
