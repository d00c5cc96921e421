//! Container and pod identity from a cgroup path (pure; the result is cached per path).
//!
//! Layouts recognised (systemd and cgroupfs drivers, see the kubelet's `cgroup_manager_linux.go`
//! naming and the runtimes' cgroup parents):
//! - systemd driver: `/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod<uid with
//!   '_' for '-'>.slice/cri-containerd-<id>.scope` (also `crio-<id>.scope`, `docker-<id>.scope`,
//!   `libpod-<id>.scope`; guaranteed pods sit directly under `kubepods.slice` as
//!   `kubepods-pod<uid>.slice`); Docker/Podman outside Kubernetes under `system.slice` or
//!   `machine.slice` as `docker-<id>.scope` / `libpod-<id>.scope`;
//! - cgroupfs driver: `/kubepods/besteffort/pod<uid>/<id>` (guaranteed: `/kubepods/pod<uid>/<id>`),
//!   `/docker/<id>`, `/libpod_parent/libpod-<id>`;
//! - systemd services: any `*.service` cgroup (`/system.slice/foo.service`).
//!
//! `crio-conmon-<id>.scope` (CRI-O's monitor process) is not a container.

/// What a cgroup is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Kind {
    /// The root cgroup `/` (the whole machine).
    Root,
    /// `kubepods` and its QoS-class children (`burstable`, `besteffort`).
    Qos,
    /// A pod-level cgroup.
    Pod,
    /// A container of a runtime.
    Container,
    /// A systemd service.
    Service,
    /// Anything else (slices, scopes of sessions, unrelated hierarchies).
    Other,
}

/// A classified cgroup path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    /// The kind.
    pub kind: Kind,
    /// The runtime (`containerd`, `crio`, `docker`, `podman`, or `""` when the path does not say
    /// (cgroupfs driver under a pod)).
    pub runtime: &'static str,
    /// The container id (containers only), as the runtime reports it.
    pub container_id: String,
    /// The pod UID with dashes (pods and their containers), empty otherwise.
    pub pod_uid: String,
}

impl Identity {
    fn of(kind: Kind) -> Self {
        Self {
            kind,
            runtime: "",
            container_id: String::new(),
            pod_uid: String::new(),
        }
    }
}

/// Scope prefixes of the systemd cgroup driver, and the runtime they belong to.
const SCOPE_PREFIXES: &[(&str, &str)] = &[
    ("cri-containerd-", "containerd"),
    ("crio-", "crio"),
    ("docker-", "docker"),
    ("libpod-", "podman"),
];

fn is_container_id(s: &str) -> bool {
    s.len() >= 12 && s.len() <= 128 && s.bytes().all(|b| b.is_ascii_alphanumeric())
}

/// The pod UID of a pod-level cgroup name, `None` when `name` is not one.
fn pod_uid(name: &str) -> Option<String> {
    if let Some(uid) = name.strip_prefix("pod") {
        // cgroupfs driver: pod<uid>
        return (!uid.is_empty() && !uid.contains('.')).then(|| uid.to_string());
    }
    let inner = name.strip_prefix("kubepods-")?.strip_suffix(".slice")?;
    let uid = inner
        .strip_prefix("pod")
        .or_else(|| inner.strip_prefix("burstable-pod"))
        .or_else(|| inner.strip_prefix("besteffort-pod"))?;
    (!uid.is_empty()).then(|| uid.replace('_', "-"))
}

/// A container scope or directory name: (runtime, id).
fn container_of(name: &str, under_pod: bool, parent: &str) -> Option<(&'static str, String)> {
    if name.starts_with("crio-conmon-") {
        return None;
    }
    let base = name.strip_suffix(".scope").unwrap_or(name);
    for (prefix, runtime) in SCOPE_PREFIXES {
        if let Some(id) = base.strip_prefix(prefix)
            && is_container_id(id)
        {
            return Some((runtime, id.to_string()));
        }
    }
    if (under_pod || parent == "docker") && is_container_id(name) {
        let runtime = if parent == "docker" { "docker" } else { "" };
        return Some((runtime, name.to_string()));
    }
    None
}

/// Classifies a cgroup path as cAdvisor names it (`/` or `/a/b`, no trailing slash).
pub fn classify(id: &str) -> Identity {
    if id == "/" || id.is_empty() {
        return Identity::of(Kind::Root);
    }
    let trimmed = id.trim_end_matches('/');
    let (parent_path, name) = trimmed.rsplit_once('/').unwrap_or(("", trimmed));
    let parent = parent_path.rsplit('/').next().unwrap_or("");
    let in_kubepods = trimmed.starts_with("/kubepods");

    if in_kubepods {
        if let Some(uid) = pod_uid(name) {
            let mut i = Identity::of(Kind::Pod);
            i.pod_uid = uid;
            return i;
        }
        if let Some(parent_uid) = pod_uid(parent)
            && let Some((runtime, cid)) = container_of(name, true, parent)
        {
            return Identity {
                kind: Kind::Container,
                runtime,
                container_id: cid,
                pod_uid: parent_uid,
            };
        }
        let qos = matches!(
            name,
            "kubepods"
                | "kubepods.slice"
                | "burstable"
                | "besteffort"
                | "kubepods-burstable.slice"
                | "kubepods-besteffort.slice"
        );
        return Identity::of(if qos { Kind::Qos } else { Kind::Other });
    }
    if let Some((runtime, cid)) = container_of(name, false, parent) {
        return Identity {
            kind: Kind::Container,
            runtime,
            container_id: cid,
            pod_uid: String::new(),
        };
    }
    if name.ends_with(".service") {
        return Identity::of(Kind::Service);
    }
    Identity::of(Kind::Other)
}

#[cfg(test)]
mod tests {
    use super::*;

    const ID: &str = "4c8b2a1e0f9d7c6b5a4938271605f4e3d2c1b0a9988776655443322110ffeedd";

    fn container(runtime: &'static str, pod: &str) -> Identity {
        Identity {
            kind: Kind::Container,
            runtime,
            container_id: ID.into(),
            pod_uid: pod.into(),
        }
    }

    #[test]
    fn systemd_driver_pods_and_containers() {
        let pod = "/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod6b5f1c2e_3d4a_4f5b_8c6d_7e8f9a0b1c2d.slice";
        let uid = "6b5f1c2e-3d4a-4f5b-8c6d-7e8f9a0b1c2d";
        assert_eq!(classify(pod).kind, Kind::Pod);
        assert_eq!(classify(pod).pod_uid, uid);
        assert_eq!(
            classify(&format!("{pod}/cri-containerd-{ID}.scope")),
            container("containerd", uid)
        );
        assert_eq!(
            classify(&format!("{pod}/crio-{ID}.scope")),
            container("crio", uid)
        );
        assert_eq!(
            classify(&format!("{pod}/crio-conmon-{ID}.scope")).kind,
            Kind::Other
        );
        let guaranteed = "/kubepods.slice/kubepods-pod11111111_2222_3333_4444_555555555555.slice";
        assert_eq!(
            classify(guaranteed).pod_uid,
            "11111111-2222-3333-4444-555555555555"
        );
        assert_eq!(classify("/kubepods.slice").kind, Kind::Qos);
        assert_eq!(
            classify("/kubepods.slice/kubepods-besteffort.slice").kind,
            Kind::Qos
        );
    }

    #[test]
    fn cgroupfs_driver_and_plain_runtimes() {
        let uid = "0a1b2c3d-4e5f-6071-8293-a4b5c6d7e8f9";
        assert_eq!(
            classify(&format!("/kubepods/besteffort/pod{uid}/{ID}")),
            container("", uid)
        );
        assert_eq!(
            classify(&format!("/kubepods/pod{uid}/{ID}")),
            container("", uid)
        );
        assert_eq!(
            classify(&format!("/kubepods/besteffort/pod{uid}")).pod_uid,
            uid
        );
        assert_eq!(classify("/kubepods/besteffort").kind, Kind::Qos);
        assert_eq!(classify(&format!("/docker/{ID}")), container("docker", ""));
        assert_eq!(
            classify(&format!("/system.slice/docker-{ID}.scope")),
            container("docker", "")
        );
        assert_eq!(
            classify(&format!("/machine.slice/libpod-{ID}.scope")),
            container("podman", "")
        );
        assert_eq!(
            classify(&format!("/libpod_parent/libpod-{ID}")),
            container("podman", "")
        );
    }

    #[test]
    fn services_root_and_others() {
        assert_eq!(classify("/").kind, Kind::Root);
        assert_eq!(
            classify("/system.slice/containerd.service").kind,
            Kind::Service
        );
        assert_eq!(
            classify("/system.slice/system-getty.slice/getty@tty1.service").kind,
            Kind::Service
        );
        assert_eq!(classify("/system.slice").kind, Kind::Other);
        assert_eq!(
            classify("/user.slice/user-0.slice/session-1.scope").kind,
            Kind::Other
        );
        assert_eq!(classify("/docker").kind, Kind::Other);
        assert_eq!(classify("/docker/short").kind, Kind::Other);
    }
}
