//! Container metadata providers: the seam through which the Kubernetes pod cache (or a runtime
//! client) fills the `namespace`, `pod`, `container` and `image` labels of cgroup series.
//!
//! The cgroup collector is built by the registry before the pod watch exists, so it holds a
//! [`MetadataHandle`] (a shared, swappable slot) instead of a provider: whoever owns the pod
//! cache calls [`set_metadata`] (or [`MetadataHandle::set`] on the handle it passed to
//! [`super::Cgroup::with_metadata`]) once the cache is ready. Until then labels stay empty.

use std::sync::{Arc, OnceLock, RwLock};

/// What a provider knows about one container.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ContainerInfo {
    /// Kubernetes namespace.
    pub namespace: String,
    /// Pod name.
    pub pod: String,
    /// Container name in the pod spec; `"POD"` (or empty with a known pod) marks the sandbox
    /// (pause) container.
    pub container: String,
    /// Image reference.
    pub image: String,
}

/// Maps a pod UID and container id to names. Called on the scrape path for containers whose
/// metadata is not known yet (positive answers are cached per cgroup), so it must not block:
/// answer from memory.
pub trait ContainerMetadata: Send + Sync {
    /// `pod_uid` is the pod UID with dashes (empty for containers outside Kubernetes);
    /// `container_id` is the runtime's bare container id (no `containerd://` scheme), empty
    /// when asking about a pod-level cgroup.
    fn lookup(&self, pod_uid: &str, container_id: &str) -> Option<ContainerInfo>;
}

type Slot = Arc<RwLock<Option<Arc<dyn ContainerMetadata>>>>;

/// A shared slot holding the current provider; cheap to clone.
#[derive(Clone, Default)]
pub struct MetadataHandle(Slot);

impl std::fmt::Debug for MetadataHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("MetadataHandle")
            .field(&self.get().is_some())
            .finish()
    }
}

impl MetadataHandle {
    /// An empty slot.
    pub fn new() -> Self {
        Self::default()
    }

    /// Installs (or replaces) the provider; takes effect on the next scrape.
    pub fn set(&self, provider: Arc<dyn ContainerMetadata>) {
        let mut g = self.0.write().unwrap_or_else(|e| e.into_inner());
        *g = Some(provider);
    }

    /// Removes the provider.
    pub fn clear(&self) {
        let mut g = self.0.write().unwrap_or_else(|e| e.into_inner());
        *g = None;
    }

    /// The current provider.
    pub fn get(&self) -> Option<Arc<dyn ContainerMetadata>> {
        self.0.read().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

/// The process-wide slot used by collectors the registry builds.
pub fn global() -> &'static MetadataHandle {
    static GLOBAL: OnceLock<MetadataHandle> = OnceLock::new();
    GLOBAL.get_or_init(MetadataHandle::new)
}

/// Installs the provider for every cgroup collector built by the registry.
pub fn set_metadata(provider: Arc<dyn ContainerMetadata>) {
    global().set(provider);
}
