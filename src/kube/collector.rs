//! The `kube` collector: one `sonde_pod_info` series per pod of this node, the pods' container
//! requests and limits in kube-state-metrics' shape, and the watch's own health. Reads only the
//! in-memory store, so a scrape never waits on the API server; a deleted pod's series are gone
//! on the next scrape because nothing is remembered between scrapes.

use std::sync::Arc;

use crate::collect::{CollectError, Collector, MetricType, Sink};

use super::PodCache;
use super::workload::{resolve, resource_sample};

/// Writes the pod cache's families.
pub struct KubeCollector {
    cache: Arc<PodCache>,
}

impl KubeCollector {
    /// A collector over `cache`.
    pub fn new(cache: Arc<PodCache>) -> Self {
        Self { cache }
    }
}

impl Collector for KubeCollector {
    fn name(&self) -> &'static str {
        "kube"
    }

    fn collect(&mut self, sink: &mut Sink) -> Result<(), CollectError> {
        let mut pods = self.cache.pods();
        pods.sort_by(|a, b| {
            (&a.metadata.namespace, &a.metadata.name)
                .cmp(&(&b.metadata.namespace, &b.metadata.name))
        });
        sink.gauge(
            "sonde_kube_pods",
            "Pods of this node in the Kubernetes pod cache.",
            pods.len() as f64,
        );
        sink.counter(
            "sonde_kube_watch_errors_total",
            "Failed requests of the Kubernetes pod watch (the cache keeps the last known pods meanwhile).",
            self.cache.watch_errors() as f64,
        );
        sink.gauge(
            "sonde_kube_synced",
            "1 once the Kubernetes pod cache completed its initial list.",
            if self.cache.is_synced() { 1.0 } else { 0.0 },
        );
        {
            let mut f = sink.family(
                "sonde_pod_info",
                "Information about a pod of this node; 1 per pod.",
                MetricType::Gauge,
            );
            for p in &pods {
                let m = &p.metadata;
                let (workload, kind) = resolve(p);
                let node = p
                    .spec
                    .as_ref()
                    .and_then(|s| s.node_name.as_deref())
                    .unwrap_or(self.cache.node());
                let qos = p
                    .status
                    .as_ref()
                    .and_then(|s| s.qos_class.as_deref())
                    .unwrap_or_default();
                f.sample(
                    &[
                        ("namespace", m.namespace.as_deref().unwrap_or_default()),
                        ("pod", m.name.as_deref().unwrap_or_default()),
                        ("uid", m.uid.as_deref().unwrap_or_default()),
                        ("node", node),
                        ("workload", &workload),
                        ("workload_kind", &kind),
                        ("qos_class", qos),
                    ],
                    1.0,
                );
            }
        }
        for (name, help, limits) in [
            (
                "sonde_pod_container_resource_requests",
                "Resources requested by a container of a pod of this node (kube-state-metrics' kube_pod_container_resource_requests).",
                false,
            ),
            (
                "sonde_pod_container_resource_limits",
                "Resource limits of a container of a pod of this node (kube-state-metrics' kube_pod_container_resource_limits).",
                true,
            ),
        ] {
            let mut f = sink.family(name, help, MetricType::Gauge);
            for p in &pods {
                let ns = p.metadata.namespace.as_deref().unwrap_or_default();
                let pod = p.metadata.name.as_deref().unwrap_or_default();
                let Some(spec) = &p.spec else { continue };
                for c in &spec.containers {
                    let Some(res) = &c.resources else { continue };
                    let map = if limits { &res.limits } else { &res.requests };
                    for (resource, q) in map.iter().flatten() {
                        let Some((label, unit, v)) = resource_sample(resource, q) else {
                            continue;
                        };
                        f.sample(
                            &[
                                ("namespace", ns),
                                ("pod", pod),
                                ("container", &c.name),
                                ("resource", &label),
                                ("unit", unit),
                            ],
                            v,
                        );
                    }
                }
            }
        }
        Ok(())
    }
}
