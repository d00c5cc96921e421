//! The Kubernetes pod cache: a watch of this node's pods (kube-runtime reflector,
//! `spec.nodeName=<node>`, managed fields stripped) answering, from memory, which namespace,
//! pod, container, image and workload a pod UID or container id belongs to. The only code in
//! sonde that talks to the API server.
//!
//! Lifecycle: [`PodCache::new`] (synchronous, at configuration time) decides whether
//! Kubernetes is in use and creates the empty store; [`PodCache::spawn`] (inside the runtime)
//! builds the client and runs the watch until the process ends, calling its callback once the
//! initial list is complete (readiness). While the API server is unreachable the store keeps
//! the last known pods and the watcher reconnects with kube-runtime's default backoff (0.8 s
//! doubling to 30 s); every failure is counted in `sonde_kube_watch_errors_total`. Readers never
//! wait on the network.

pub mod collector;
pub mod workload;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use k8s_openapi::api::core::v1::Pod;
use kube::ResourceExt;
use kube::runtime::reflector::{self, Store, store::Writer};
use kube::runtime::watcher::{self, Event};
use kube::runtime::{WatchStreamExt, watcher as watch_fn};
use serde::Deserialize;

use crate::collect::cgroup::meta::{ContainerInfo, ContainerMetadata};
use crate::config::Issue;

pub use collector::KubeCollector;

/// Where the service account token is mounted in a pod.
const TOKEN_PATH: &str = "/var/run/secrets/kubernetes.io/serviceaccount/token";
/// A large annotation `kubectl apply` leaves on objects; never needed here.
const LAST_APPLIED: &str = "kubectl.kubernetes.io/last-applied-configuration";

/// Whether to watch pods.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(try_from = "EnabledRepr")]
pub enum Enabled {
    /// On when running in a cluster (service account and `KUBERNETES_SERVICE_HOST`) or when a
    /// kubeconfig exists.
    #[default]
    Auto,
    /// Always on (readiness waits for the first sync even if the API is unreachable).
    On,
    /// Off: no pod labels.
    Off,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum EnabledRepr {
    Bool(bool),
    Str(String),
}

impl TryFrom<EnabledRepr> for Enabled {
    type Error = String;
    fn try_from(v: EnabledRepr) -> Result<Self, String> {
        match v {
            EnabledRepr::Bool(true) => Ok(Self::On),
            EnabledRepr::Bool(false) => Ok(Self::Off),
            EnabledRepr::Str(s) => match s.as_str() {
                "auto" => Ok(Self::Auto),
                "true" => Ok(Self::On),
                "false" => Ok(Self::Off),
                other => Err(format!("expected auto, true or false, got {other:?}")),
            },
        }
    }
}

/// `kube:` — the pod watch.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct KubeConfig {
    /// `auto` (default), `true` or `false`.
    pub enabled: Enabled,
    /// The node whose pods are watched; default: the `NODE_NAME` environment variable (set it
    /// through the downward API).
    pub node_name: Option<String>,
    /// A kubeconfig file; default: in-cluster configuration, else `$KUBECONFIG`, else
    /// `~/.kube/config`.
    pub kubeconfig: Option<PathBuf>,
}

impl Default for KubeConfig {
    fn default() -> Self {
        Self {
            enabled: Enabled::Auto,
            node_name: None,
            kubeconfig: None,
        }
    }
}

impl KubeConfig {
    /// Validates the options; `key` is this section's dotted path (`kube`).
    pub fn check(&self, key: &str, issues: &mut Vec<Issue>) {
        if let Some(n) = &self.node_name
            && !valid_node_name(n)
        {
            issues.push(Issue::new(
                format!("{key}.node_name"),
                "must be a DNS subdomain (lowercase letters, digits, '-' and '.', at most 253)",
            ));
        }
        if let Some(p) = &self.kubeconfig
            && p.as_os_str().is_empty()
        {
            issues.push(Issue::new(format!("{key}.kubeconfig"), "must not be empty"));
        }
    }
}

fn valid_node_name(n: &str) -> bool {
    !n.is_empty()
        && n.len() <= 253
        && n.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'.')
}

/// Why a client could not be built (the watch retries; this is only logged and counted).
#[derive(Debug, thiserror::Error)]
pub enum KubeError {
    /// Neither in-cluster configuration nor a kubeconfig could be loaded.
    #[error("inferring the Kubernetes client configuration")]
    Infer(#[source] kube::config::InferConfigError),
    /// The configured kubeconfig file could not be read or used.
    #[error("loading kubeconfig {path}")]
    Kubeconfig {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: kube::config::KubeconfigError,
    },
    /// The HTTP client could not be built from the configuration.
    #[error("building the Kubernetes client")]
    Client(#[source] kube::Error),
}

/// What one container id maps to.
struct ContainerEntry {
    pod: Arc<Pod>,
    name: String,
    image: String,
}

/// Lookup tables rebuilt from the store after it changed.
#[derive(Default)]
struct Index {
    by_uid: HashMap<String, Arc<Pod>>,
    by_container: HashMap<String, ContainerEntry>,
}

impl Index {
    fn build(pods: Vec<Arc<Pod>>) -> Self {
        let mut ix = Index::default();
        for pod in pods {
            if let Some(uid) = &pod.metadata.uid {
                ix.by_uid.insert(uid.clone(), pod.clone());
            }
            let Some(status) = &pod.status else { continue };
            let spec_image = |name: &str| {
                pod.spec.as_ref().and_then(|s| {
                    s.containers
                        .iter()
                        .chain(s.init_containers.iter().flatten())
                        .find(|c| c.name == name)
                        .and_then(|c| c.image.clone())
                })
            };
            let lists = [
                &status.container_statuses,
                &status.init_container_statuses,
                &status.ephemeral_container_statuses,
            ];
            for cs in lists.into_iter().flatten().flatten() {
                let ids = [
                    cs.container_id.as_deref(),
                    cs.last_state
                        .as_ref()
                        .and_then(|s| s.terminated.as_ref())
                        .and_then(|t| t.container_id.as_deref()),
                ];
                for id in ids.into_iter().flatten() {
                    let id = workload::bare_container_id(id);
                    if id.is_empty() || ix.by_container.contains_key(id) {
                        continue;
                    }
                    let image = if cs.image.is_empty() {
                        spec_image(&cs.name).unwrap_or_default()
                    } else {
                        cs.image.clone()
                    };
                    ix.by_container.insert(
                        id.to_string(),
                        ContainerEntry {
                            pod: pod.clone(),
                            name: cs.name.clone(),
                            image,
                        },
                    );
                }
            }
        }
        ix
    }
}

fn pod_info(pod: &Pod, container: &str, image: &str) -> ContainerInfo {
    ContainerInfo {
        namespace: pod.metadata.namespace.clone().unwrap_or_default(),
        pod: pod.metadata.name.clone().unwrap_or_default(),
        container: container.to_string(),
        image: image.to_string(),
    }
}

/// This node's pods, in memory.
pub struct PodCache {
    node: String,
    /// `kube.kubeconfig`; `None` infers (in-cluster, `$KUBECONFIG`, `~/.kube/config`).
    kubeconfig: Option<PathBuf>,
    store: Store<Pod>,
    writer: Mutex<Option<Writer<Pod>>>,
    errors: AtomicU64,
    synced: AtomicBool,
    dirty: AtomicBool,
    index: RwLock<Index>,
}

impl std::fmt::Debug for PodCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PodCache")
            .field("node", &self.node)
            .field("pods", &self.store.state().len())
            .field("synced", &self.is_synced())
            .finish()
    }
}

impl PodCache {
    /// Decides from the configuration and environment whether to watch pods. `None` (with one
    /// info log line) when disabled, outside a cluster without a kubeconfig, or when the node
    /// name is unknown (a cluster-wide pod watch from every node is never wanted).
    pub fn new(cfg: &KubeConfig) -> Option<Arc<Self>> {
        if cfg.enabled == Enabled::Off {
            tracing::info!("Kubernetes pod metadata disabled (kube.enabled: false)");
            return None;
        }
        if cfg.enabled == Enabled::Auto && !in_cluster() && find_kubeconfig(cfg).is_none() {
            tracing::info!(
                "not running in Kubernetes (no service account, no kubeconfig): pod labels stay empty"
            );
            return None;
        }
        let node = cfg
            .node_name
            .clone()
            .or_else(|| std::env::var("NODE_NAME").ok())
            .filter(|n| !n.is_empty());
        let Some(node) = node else {
            if cfg.enabled == Enabled::On {
                tracing::warn!(
                    "kube.enabled is true but NODE_NAME is not set (nor kube.node_name): pod labels stay empty"
                );
            } else {
                tracing::info!(
                    "Kubernetes configured but NODE_NAME is not set (nor kube.node_name): pod labels stay empty"
                );
            }
            return None;
        };
        Some(Self::build(node, cfg.kubeconfig.clone()))
    }

    /// A cache for `node` whose client is given to [`PodCache::spawn_with_client`] (tests,
    /// embedding).
    pub fn for_node(node: &str) -> Arc<Self> {
        Self::build(node.to_string(), None)
    }

    /// A cache holding a fixed set of pods, without a watch (tests and fixtures).
    pub fn with_pods(node: &str, pods: Vec<Pod>) -> Arc<Self> {
        let me = Self::for_node(node);
        if let Some(mut w) = me.writer.lock().unwrap_or_else(|e| e.into_inner()).take() {
            w.apply_watcher_event(&Event::Init);
            for p in pods {
                w.apply_watcher_event(&Event::InitApply(strip(p)));
            }
            w.apply_watcher_event(&Event::InitDone);
        }
        me.synced.store(true, Ordering::SeqCst);
        me.dirty.store(true, Ordering::SeqCst);
        me
    }

    fn build(node: String, kubeconfig: Option<PathBuf>) -> Arc<Self> {
        let (store, writer) = reflector::store();
        Arc::new(Self {
            node,
            kubeconfig,
            store,
            writer: Mutex::new(Some(writer)),
            errors: AtomicU64::new(0),
            synced: AtomicBool::new(false),
            dirty: AtomicBool::new(true),
            index: RwLock::new(Index::default()),
        })
    }

    /// The node whose pods are watched.
    pub fn node(&self) -> &str {
        &self.node
    }

    /// Watch failures so far (connection, HTTP and decoding errors, client setup).
    pub fn watch_errors(&self) -> u64 {
        self.errors.load(Ordering::Relaxed)
    }

    /// True once the initial list has completed.
    pub fn is_synced(&self) -> bool {
        self.synced.load(Ordering::SeqCst)
    }

    /// The pods currently known (the last known set while the API server is unreachable).
    pub fn pods(&self) -> Vec<Arc<Pod>> {
        self.store.state()
    }

    /// The pod with this UID.
    pub fn pod_by_uid(&self, uid: &str) -> Option<Arc<Pod>> {
        self.with_index(|ix| ix.by_uid.get(uid).cloned())
    }

    fn with_index<T>(&self, f: impl FnOnce(&Index) -> T) -> T {
        if self.dirty.swap(false, Ordering::SeqCst) {
            let fresh = Index::build(self.store.state());
            *self.index.write().unwrap_or_else(|e| e.into_inner()) = fresh;
        }
        f(&self.index.read().unwrap_or_else(|e| e.into_inner()))
    }

    /// Builds the client and runs the watch on the current runtime; `on_ready` is called once,
    /// after the initial list. Call once (later calls return a task that ends at once).
    pub fn spawn(
        self: &Arc<Self>,
        on_ready: impl FnOnce() + Send + 'static,
    ) -> tokio::task::JoinHandle<()> {
        let me = self.clone();
        tokio::spawn(async move {
            let mut delay = Duration::from_millis(800);
            let client = loop {
                match me.client().await {
                    Ok(c) => break c,
                    Err(e) => {
                        me.errors.fetch_add(1, Ordering::Relaxed);
                        tracing::warn!(error = %crate::collect::scrape::error_chain(&e), retry_in = ?delay, "Kubernetes client unavailable");
                        tokio::time::sleep(delay).await;
                        delay = (delay * 2).min(Duration::from_secs(30));
                    }
                }
            };
            me.watch(client, on_ready).await;
        })
    }

    /// Runs the watch with a ready-made client (tests point it at a fake API server).
    pub fn spawn_with_client(
        self: &Arc<Self>,
        client: kube::Client,
        on_ready: impl FnOnce() + Send + 'static,
    ) -> tokio::task::JoinHandle<()> {
        let me = self.clone();
        tokio::spawn(async move { me.watch(client, on_ready).await })
    }

    async fn client(&self) -> Result<kube::Client, KubeError> {
        let config = match &self.kubeconfig {
            Some(path) => {
                let kc = kube::config::Kubeconfig::read_from(path).map_err(|source| {
                    KubeError::Kubeconfig {
                        path: path.clone(),
                        source,
                    }
                })?;
                kube::Config::from_custom_kubeconfig(kc, &Default::default())
                    .await
                    .map_err(|source| KubeError::Kubeconfig {
                        path: path.clone(),
                        source,
                    })?
            }
            None => kube::Config::infer().await.map_err(KubeError::Infer)?,
        };
        kube::Client::try_from(config).map_err(KubeError::Client)
    }

    async fn watch(self: Arc<Self>, client: kube::Client, on_ready: impl FnOnce() + Send) {
        let Some(writer) = self.writer.lock().unwrap_or_else(|e| e.into_inner()).take() else {
            return;
        };
        let api: kube::Api<Pod> = kube::Api::all(client);
        let wc = watcher::Config::default().fields(&format!("spec.nodeName={}", self.node));
        let stream = watch_fn(api, wc)
            .default_backoff()
            .modify(|p| {
                p.managed_fields_mut().clear();
                p.annotations_mut().remove(LAST_APPLIED);
            })
            .reflect(writer);
        let mut stream = std::pin::pin!(stream);
        let mut on_ready = Some(on_ready);
        let mut last_warn: Option<Instant> = None;
        let mut failing = false;
        while let Some(ev) = stream.next().await {
            match ev {
                Ok(ev) => {
                    self.dirty.store(true, Ordering::SeqCst);
                    if matches!(ev, Event::InitDone) {
                        self.synced.store(true, Ordering::SeqCst);
                        tracing::info!(
                            node = %self.node,
                            pods = self.store.state().len(),
                            "Kubernetes pod cache synced"
                        );
                        if let Some(f) = on_ready.take() {
                            f();
                        }
                    }
                    // `Init` is emitted before the (re)list request, so it proves nothing.
                    if failing && !matches!(ev, Event::Init) {
                        failing = false;
                        tracing::info!("Kubernetes pod watch recovered");
                    }
                }
                Err(e) => {
                    self.errors.fetch_add(1, Ordering::Relaxed);
                    failing = true;
                    // One line on the first failure, then at most one a minute while it lasts.
                    if last_warn.is_none_or(|t| t.elapsed() >= Duration::from_secs(60)) {
                        last_warn = Some(Instant::now());
                        tracing::warn!(error = %crate::collect::scrape::error_chain(&e), "Kubernetes pod watch failing; keeping the last known pods");
                    }
                }
            }
        }
    }
}

fn strip(mut p: Pod) -> Pod {
    p.managed_fields_mut().clear();
    p.annotations_mut().remove(LAST_APPLIED);
    p
}

fn in_cluster() -> bool {
    std::env::var_os("KUBERNETES_SERVICE_HOST").is_some()
        && std::path::Path::new(TOKEN_PATH).exists()
}

fn find_kubeconfig(cfg: &KubeConfig) -> Option<PathBuf> {
    if let Some(p) = &cfg.kubeconfig {
        return Some(p.clone());
    }
    if let Some(k) = std::env::var_os("KUBECONFIG").filter(|k| !k.is_empty()) {
        return Some(PathBuf::from(k));
    }
    let home = std::env::var_os("HOME")?;
    let p = PathBuf::from(home).join(".kube/config");
    p.exists().then_some(p)
}

impl ContainerMetadata for PodCache {
    fn lookup(&self, pod_uid: &str, container_id: &str) -> Option<ContainerInfo> {
        self.with_index(|ix| {
            if !container_id.is_empty() {
                // An id not (yet) in any status — a sandbox, or a container that started before
                // the kubelet reported it — stays unknown: the cgroup collector caches positive
                // answers, so a guess here would stick.
                let e = ix.by_container.get(container_id)?;
                return Some(pod_info(&e.pod, &e.name, &e.image));
            }
            if pod_uid.is_empty() {
                return None;
            }
            ix.by_uid.get(pod_uid).map(|p| pod_info(p, "", ""))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_parses_and_checks() {
        let c: KubeConfig =
            serde_saphyr::from_str("enabled: true\nnode_name: node-1\n").expect("yaml");
        assert_eq!(c.enabled, Enabled::On);
        assert_eq!(c.node_name.as_deref(), Some("node-1"));
        let c: KubeConfig = serde_saphyr::from_str("enabled: auto\n").expect("yaml");
        assert_eq!(c.enabled, Enabled::Auto);
        let c: KubeConfig = serde_saphyr::from_str("enabled: false\n").expect("yaml");
        assert_eq!(c.enabled, Enabled::Off);
        assert!(serde_saphyr::from_str::<KubeConfig>("enabled: maybe\n").is_err());
        assert!(serde_saphyr::from_str::<KubeConfig>("nodename: x\n").is_err());
        let mut issues = Vec::new();
        KubeConfig {
            node_name: Some("Node_1".into()),
            ..Default::default()
        }
        .check("kube", &mut issues);
        assert_eq!(issues.len(), 1);
        assert_eq!(issues[0].key, "kube.node_name");
        assert!(
            PodCache::new(&KubeConfig {
                enabled: Enabled::Off,
                ..Default::default()
            })
            .is_none()
        );
    }
}
