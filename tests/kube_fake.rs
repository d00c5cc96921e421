//! The pod cache against a fake Kubernetes API server over real HTTP (axum on 127.0.0.1):
//! list + watch of `/api/v1/pods` with a field selector, driven by the real `kube::Client` and
//! kube-runtime watcher. Covers labels and workload resolution, a pod deleted and a container
//! restarted during the watch, the API server going away (the cache keeps serving the last
//! known pods, errors are counted) and coming back on the same port (a relist after `410 Gone`),
//! and the `ContainerMetadata` lookup the cgroup collector uses, from a fixture.

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::{Query, State};
use axum::response::Response;
use axum::routing::get;
use k8s_openapi::api::core::v1::Pod;
use serde_json::{Value, json};
use sonde::collect::cgroup::meta::{ContainerInfo, ContainerMetadata};
use sonde::collect::{Collector, Sink};
use sonde::expo::{self, negotiate::Format};
use sonde::kube::{KubeCollector, PodCache};
use tokio::sync::{broadcast, watch};

const FIXTURE: &str = include_str!("fixtures/kube/pods.json");

fn fixture_pods() -> Vec<Value> {
    let list: Value = serde_json::from_str(FIXTURE).expect("fixture");
    list["items"].as_array().expect("items").clone()
}

fn cid(prefix: &str, n: u32) -> String {
    format!("{prefix}{:060}", n)
}

/// The fake API server's state: the pods, a resource version counter, and the event history a
/// watch from an older version replays.
struct FakeState {
    pods: BTreeMap<String, Value>,
    rv: u64,
    /// Versions at or above this can be watched from; older ones get `410 Gone`.
    base: u64,
    history: Vec<(u64, String, Value)>,
    tx: broadcast::Sender<(u64, String, Value)>,
    requests: Vec<String>,
}

#[derive(Clone)]
struct Fake(Arc<Mutex<FakeState>>);

fn key(p: &Value) -> String {
    format!(
        "{}/{}",
        p["metadata"]["namespace"].as_str().unwrap_or_default(),
        p["metadata"]["name"].as_str().unwrap_or_default()
    )
}

impl Fake {
    fn new(pods: Vec<Value>, base: u64) -> Self {
        let (tx, _) = broadcast::channel(256);
        let mut st = FakeState {
            pods: BTreeMap::new(),
            rv: base,
            base,
            history: Vec::new(),
            tx,
            requests: Vec::new(),
        };
        for mut p in pods {
            p["metadata"]["resourceVersion"] = json!(base.to_string());
            st.pods.insert(key(&p), p);
        }
        Self(Arc::new(Mutex::new(st)))
    }

    fn event(&self, kind: &str, mut pod: Value) {
        let mut st = self.0.lock().expect("lock");
        st.rv += 1;
        let rv = st.rv;
        pod["metadata"]["resourceVersion"] = json!(rv.to_string());
        let k = key(&pod);
        if kind == "DELETED" {
            st.pods.remove(&k);
        } else {
            st.pods.insert(k, pod.clone());
        }
        st.history.push((rv, kind.to_string(), pod.clone()));
        let _ = st.tx.send((rv, kind.to_string(), pod));
    }

    fn apply(&self, pod: Value) {
        let exists = self.0.lock().expect("lock").pods.contains_key(&key(&pod));
        self.event(if exists { "MODIFIED" } else { "ADDED" }, pod);
    }

    fn delete(&self, ns: &str, name: &str) {
        let pod = self
            .0
            .lock()
            .expect("lock")
            .pods
            .get(&format!("{ns}/{name}"))
            .cloned();
        self.event("DELETED", pod.expect("pod to delete"));
    }

    fn requests(&self) -> Vec<String> {
        self.0.lock().expect("lock").requests.clone()
    }
}

/// A field selector of the form `spec.nodeName=<node>` (the only one the cache sends).
fn selected(sel: Option<&String>, pod: &Value) -> bool {
    match sel.and_then(|s| s.strip_prefix("spec.nodeName=")) {
        Some(node) => pod["spec"]["nodeName"].as_str() == Some(node),
        None => sel.is_none(),
    }
}

fn line(kind: &str, obj: &Value) -> String {
    let mut s = json!({"type": kind, "object": obj}).to_string();
    s.push('\n');
    s
}

async fn pods_handler(
    State((fake, shutdown)): State<(Fake, watch::Receiver<bool>)>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let mut st = fake.0.lock().expect("lock");
    let mut recorded: Vec<_> = q.iter().map(|(k, v)| format!("{k}={v}")).collect();
    recorded.sort();
    st.requests.push(recorded.join("&"));
    let sel = q.get("fieldSelector");
    if q.get("watch").map(String::as_str) != Some("true") {
        let items: Vec<&Value> = st.pods.values().filter(|p| selected(sel, p)).collect();
        let body = json!({"kind": "PodList", "apiVersion": "v1",
            "metadata": {"resourceVersion": st.rv.to_string()}, "items": items});
        return Response::builder()
            .header("content-type", "application/json")
            .body(Body::from(body.to_string()))
            .expect("response");
    }
    let from: u64 = q
        .get("resourceVersion")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let mut backlog = Vec::new();
    if from < st.base || from > st.rv {
        backlog.push(line(
            "ERROR",
            &json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                "message": "too old resource version", "reason": "Expired", "code": 410}),
        ));
        let body = backlog.concat();
        return Response::builder()
            .header("content-type", "application/json")
            .body(Body::from(body))
            .expect("response");
    }
    for (rv, kind, pod) in &st.history {
        if *rv > from && selected(sel, pod) {
            backlog.push(line(kind, pod));
        }
    }
    let rx = st.tx.subscribe();
    drop(st);
    let sel = sel.cloned();
    let stream = futures_util::stream::unfold(
        (backlog.into_iter(), rx, shutdown, sel),
        |(mut backlog, mut rx, mut shutdown, sel)| async move {
            if let Some(l) = backlog.next() {
                return Some((Ok::<_, std::io::Error>(l), (backlog, rx, shutdown, sel)));
            }
            loop {
                tokio::select! {
                    _ = shutdown.changed() => return None,
                    ev = rx.recv() => match ev {
                        Ok((_, kind, pod)) if selected(sel.as_ref(), &pod) => {
                            return Some((Ok(line(&kind, &pod)), (backlog, rx, shutdown, sel)));
                        }
                        Ok(_) => continue,
                        Err(_) => return None,
                    },
                }
            }
        },
    );
    Response::builder()
        .header("content-type", "application/json")
        .body(Body::from_stream(stream))
        .expect("response")
}

/// A running fake; [`Server::stop`] closes the listener and every open watch.
struct Server {
    addr: SocketAddr,
    stop: watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
}

impl Server {
    async fn start(fake: Fake, addr: SocketAddr) -> Self {
        let listener = tokio::net::TcpListener::bind(addr).await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let (stop, rx) = watch::channel(false);
        let app = Router::new()
            .route("/api/v1/pods", get(pods_handler))
            .with_state((fake, rx.clone()));
        let mut rx2 = rx;
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app)
                .with_graceful_shutdown(async move {
                    let _ = rx2.changed().await;
                })
                .await;
        });
        Self { addr, stop, task }
    }

    async fn stop(self) {
        let _ = self.stop.send(true);
        let _ = tokio::time::timeout(Duration::from_secs(10), self.task).await;
    }
}

fn client(addr: SocketAddr) -> kube::Client {
    let cfg = kube::Config::new(format!("http://{addr}").parse().expect("uri"));
    kube::Client::try_from(cfg).expect("client")
}

/// Polls `cond` (every 20 ms, for up to 30 s: a bound on a hung test, not a timing assertion).
async fn until(what: &str, mut cond: impl FnMut() -> bool) {
    for _ in 0..1500 {
        if cond() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("timed out waiting for {what}");
}

fn scrape(c: &mut KubeCollector) -> String {
    let mut sink = Sink::new();
    c.collect(&mut sink).expect("collect");
    let mut out = Vec::new();
    expo::encode([&sink], Format::Text, &mut out);
    String::from_utf8(out).expect("utf8")
}

fn lines<'a>(text: &'a str, family: &str) -> Vec<&'a str> {
    text.lines()
        .filter(|l| l.starts_with(family) && l[family.len()..].starts_with(['{', ' ']))
        .collect()
}

fn info(ns: &str, pod: &str, container: &str, image: &str) -> Option<ContainerInfo> {
    Some(ContainerInfo {
        namespace: ns.into(),
        pod: pod.into(),
        container: container.into(),
        image: image.into(),
    })
}

fn web_pod() -> Value {
    fixture_pods()
        .into_iter()
        .find(|p| p["metadata"]["name"] == "web-7d9c6b5f4-x2x9z")
        .expect("web pod")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watch_list_delete_restart_outage_and_resync() {
    let fake = Fake::new(fixture_pods(), 10);
    let server = Server::start(fake.clone(), "127.0.0.1:0".parse().expect("addr")).await;
    let addr = server.addr;
    let cache = PodCache::for_node("node1");
    let ready = Arc::new(AtomicBool::new(false));
    let r = ready.clone();
    let _task = cache.spawn_with_client(client(addr), move || r.store(true, Ordering::SeqCst));
    until("initial sync", || ready.load(Ordering::SeqCst)).await;
    assert!(cache.is_synced());

    // The list asked for this node's pods only.
    let reqs = fake.requests();
    assert!(
        reqs[0].contains("fieldSelector=spec.nodeName=node1") && !reqs[0].contains("watch=true"),
        "{reqs:?}"
    );

    let mut col = KubeCollector::new(cache.clone());
    let text = scrape(&mut col);
    assert_eq!(
        lines(&text, "sonde_pod_info"),
        vec![
            r#"sonde_pod_info{namespace="default",pod="debug",uid="0b7e1c8a-5555-4c3e-9a55-000000000005",node="node1",workload="debug",workload_kind="Pod",qos_class="BestEffort"} 1"#,
            r#"sonde_pod_info{namespace="kube-system",pod="kube-apiserver-node1",uid="0b7e1c8a-4444-4c3e-9a55-000000000004",node="node1",workload="kube-apiserver",workload_kind="StaticPod",qos_class="Burstable"} 1"#,
            r#"sonde_pod_info{namespace="monitoring",pod="sonde-abcde",uid="0b7e1c8a-6666-4c3e-9a55-000000000006",node="node1",workload="sonde",workload_kind="DaemonSet",qos_class="BestEffort"} 1"#,
            r#"sonde_pod_info{namespace="ops",pod="backup-29399040-kq7vn",uid="0b7e1c8a-3333-4c3e-9a55-000000000003",node="node1",workload="backup",workload_kind="CronJob",qos_class="BestEffort"} 1"#,
            r#"sonde_pod_info{namespace="shop",pod="db-0",uid="0b7e1c8a-2222-4c3e-9a55-000000000002",node="node1",workload="db",workload_kind="StatefulSet",qos_class="Guaranteed"} 1"#,
            r#"sonde_pod_info{namespace="shop",pod="web-7d9c6b5f4-x2x9z",uid="0b7e1c8a-1111-4c3e-9a55-000000000001",node="node1",workload="web",workload_kind="Deployment",qos_class="Burstable"} 1"#,
        ]
    );
    let mut req = lines(&text, "sonde_pod_container_resource_requests");
    req.sort();
    assert_eq!(
        req,
        vec![
            r#"sonde_pod_container_resource_requests{namespace="kube-system",pod="kube-apiserver-node1",container="kube-apiserver",resource="cpu",unit="core"} 0.25"#,
            r#"sonde_pod_container_resource_requests{namespace="shop",pod="db-0",container="postgres",resource="cpu",unit="core"} 2"#,
            r#"sonde_pod_container_resource_requests{namespace="shop",pod="db-0",container="postgres",resource="memory",unit="byte"} 4294967296"#,
            r#"sonde_pod_container_resource_requests{namespace="shop",pod="web-7d9c6b5f4-x2x9z",container="app",resource="cpu",unit="core"} 0.25"#,
            r#"sonde_pod_container_resource_requests{namespace="shop",pod="web-7d9c6b5f4-x2x9z",container="app",resource="memory",unit="byte"} 134217728"#,
            r#"sonde_pod_container_resource_requests{namespace="shop",pod="web-7d9c6b5f4-x2x9z",container="envoy",resource="cpu",unit="core"} 0.1"#,
        ]
    );
    let mut lim = lines(&text, "sonde_pod_container_resource_limits");
    lim.sort();
    assert_eq!(
        lim,
        vec![
            r#"sonde_pod_container_resource_limits{namespace="default",pod="debug",container="shell",resource="nvidia_com_gpu",unit="integer"} 1"#,
            r#"sonde_pod_container_resource_limits{namespace="shop",pod="db-0",container="postgres",resource="cpu",unit="core"} 2"#,
            r#"sonde_pod_container_resource_limits{namespace="shop",pod="db-0",container="postgres",resource="memory",unit="byte"} 4294967296"#,
            r#"sonde_pod_container_resource_limits{namespace="shop",pod="web-7d9c6b5f4-x2x9z",container="app",resource="cpu",unit="core"} 1"#,
            r#"sonde_pod_container_resource_limits{namespace="shop",pod="web-7d9c6b5f4-x2x9z",container="app",resource="ephemeral_storage",unit="byte"} 1073741824"#,
            r#"sonde_pod_container_resource_limits{namespace="shop",pod="web-7d9c6b5f4-x2x9z",container="app",resource="memory",unit="byte"} 268435456"#,
        ]
    );
    assert_eq!(lines(&text, "sonde_kube_pods"), vec!["sonde_kube_pods 6"]);
    assert_eq!(
        lines(&text, "sonde_kube_watch_errors_total"),
        vec!["sonde_kube_watch_errors_total 0"]
    );
    // Managed fields and the last-applied annotation are not kept.
    let web = cache
        .pod_by_uid("0b7e1c8a-1111-4c3e-9a55-000000000001")
        .expect("web");
    assert!(
        web.metadata
            .managed_fields
            .as_deref()
            .unwrap_or_default()
            .is_empty()
    );
    assert!(
        !web.metadata
            .annotations
            .as_ref()
            .is_some_and(|a| a.contains_key("kubectl.kubernetes.io/last-applied-configuration"))
    );
    let app1 = cid("aaaa", 2);
    assert_eq!(
        cache.lookup("", &app1),
        info(
            "shop",
            "web-7d9c6b5f4-x2x9z",
            "app",
            "registry.example/shop/web:1.4.2"
        )
    );
    // The other node's pod was never listed.
    assert_eq!(cache.lookup("", &cid("9999", 1)), None);

    // A container restarts: the MODIFIED event carries its new id.
    let app2 = cid("aaaa", 20);
    let mut web = web_pod();
    web["status"]["containerStatuses"][0]["containerID"] = json!(format!("containerd://{app2}"));
    web["status"]["containerStatuses"][0]["restartCount"] = json!(1);
    web["status"]["containerStatuses"][0]["lastState"] =
        json!({"terminated": {"exitCode": 137, "containerID": format!("containerd://{app1}")}});
    fake.apply(web.clone());
    until("restarted container id", || {
        cache.lookup("", &app2).is_some()
    })
    .await;
    assert_eq!(
        cache.lookup("", &app2),
        info(
            "shop",
            "web-7d9c6b5f4-x2x9z",
            "app",
            "registry.example/shop/web:1.4.2"
        )
    );

    // A pod deleted during the watch is gone on the next scrape.
    fake.delete("default", "debug");
    until("debug pod deleted", || {
        cache
            .pod_by_uid("0b7e1c8a-5555-4c3e-9a55-000000000005")
            .is_none()
    })
    .await;
    let text = scrape(&mut col);
    assert!(!text.contains(r#"pod="debug""#), "{text}");
    assert_eq!(lines(&text, "sonde_kube_pods"), vec!["sonde_kube_pods 5"]);
    assert_eq!(cache.lookup("", &cid("eeee", 1)), None);

    // The API server goes away: the cache keeps the last known pods and counts the failures.
    server.stop().await;
    until("watch errors while the API is down", || {
        cache.watch_errors() > 0
    })
    .await;
    assert_eq!(
        cache.lookup("", &app2),
        info(
            "shop",
            "web-7d9c6b5f4-x2x9z",
            "app",
            "registry.example/shop/web:1.4.2"
        )
    );
    assert_eq!(
        cache.lookup("0b7e1c8a-2222-4c3e-9a55-000000000002", ""),
        info("shop", "db-0", "", "")
    );
    let text = scrape(&mut col);
    assert_eq!(lines(&text, "sonde_kube_pods"), vec!["sonde_kube_pods 5"]);
    assert!(text.contains(r#"pod="db-0""#));
    let errors_line = lines(&text, "sonde_kube_watch_errors_total");
    assert_ne!(errors_line, vec!["sonde_kube_watch_errors_total 0"]);

    // It comes back on the same port with a history the client never saw (db-0 gone, a new
    // pod, web restarted once more): the old resource version is refused with 410 and the
    // watcher relists.
    let mut pods: Vec<Value> = fixture_pods()
        .into_iter()
        .filter(|p| p["metadata"]["name"] != "db-0" && p["metadata"]["name"] != "debug")
        .collect();
    let app3 = cid("aaaa", 30);
    web["status"]["containerStatuses"][0]["containerID"] = json!(format!("containerd://{app3}"));
    pods.retain(|p| p["metadata"]["name"] != "web-7d9c6b5f4-x2x9z");
    pods.push(web);
    let mut late = json!({"metadata": {"name": "late", "namespace": "default",
        "uid": "0b7e1c8a-8888-4c3e-9a55-000000000008"},
        "spec": {"nodeName": "node1", "containers": [{"name": "c", "image": "busybox:1.36"}]},
        "status": {"qosClass": "BestEffort", "containerStatuses": [{"name": "c",
            "image": "docker.io/library/busybox:1.36", "imageID": "", "ready": true,
            "restartCount": 0, "containerID": "containerd://late1"}]}});
    pods.push(late.clone());
    let fake2 = Fake::new(pods, 1000);
    let server2 = Server::start(fake2.clone(), addr).await;
    until("resync after the outage", || {
        cache.lookup("", "late1").is_some()
    })
    .await;
    assert_eq!(
        cache.lookup("", "late1"),
        info("default", "late", "c", "docker.io/library/busybox:1.36")
    );
    until("db-0 gone after relist", || {
        cache
            .pod_by_uid("0b7e1c8a-2222-4c3e-9a55-000000000002")
            .is_none()
    })
    .await;
    assert_eq!(
        cache.lookup("", &app3),
        info(
            "shop",
            "web-7d9c6b5f4-x2x9z",
            "app",
            "registry.example/shop/web:1.4.2"
        )
    );
    let text = scrape(&mut col);
    assert_eq!(lines(&text, "sonde_kube_pods"), vec!["sonde_kube_pods 5"]);
    assert!(!text.contains(r#"pod="db-0""#));

    // The client's first request to the new server was a watch from the old version (refused
    // with 410), then a relist.
    let reqs = fake2.requests();
    assert!(
        reqs[0].contains("watch=true") && reqs[0].contains("resourceVersion=1"),
        "{reqs:?}"
    );
    assert!(reqs.iter().any(|r| !r.contains("watch=true")), "{reqs:?}");

    // The resumed watch keeps following events.
    late["status"]["containerStatuses"][0]["containerID"] = json!("containerd://late2");
    fake2.apply(late);
    until("event after resync", || cache.lookup("", "late2").is_some()).await;
    server2.stop().await;
}

#[test]
fn container_metadata_lookup_from_fixture() {
    let pods: Vec<Pod> = fixture_pods()
        .into_iter()
        .filter(|p| p["spec"]["nodeName"] == "node1")
        .map(|p| serde_json::from_value(p).expect("pod"))
        .collect();
    let cache = PodCache::with_pods("node1", pods);
    let m: &dyn ContainerMetadata = &*cache;
    // containerd, CRI-O and Docker ids, stripped of their scheme.
    assert_eq!(
        m.lookup("0b7e1c8a-1111-4c3e-9a55-000000000001", &cid("aaaa", 3)),
        info(
            "shop",
            "web-7d9c6b5f4-x2x9z",
            "envoy",
            "docker.io/envoyproxy/envoy:v1.30"
        )
    );
    assert_eq!(
        m.lookup("", &cid("bbbb", 1)),
        info("shop", "db-0", "postgres", "docker.io/library/postgres:16")
    );
    assert_eq!(
        m.lookup("", &cid("cccc", 1)),
        info(
            "ops",
            "backup-29399040-kq7vn",
            "backup",
            "docker.io/restic/restic:0.16"
        )
    );
    // Init containers too.
    assert_eq!(
        m.lookup("", &cid("aaaa", 1)),
        info(
            "shop",
            "web-7d9c6b5f4-x2x9z",
            "migrate",
            "registry.example/shop/migrate:2.1"
        )
    );
    // A pod-level cgroup: pod known, no container.
    assert_eq!(
        m.lookup("0b7e1c8a-4444-4c3e-9a55-000000000004", ""),
        info("kube-system", "kube-apiserver-node1", "", "")
    );
    // Unknown ids (a sandbox, a container not reported yet) stay unknown.
    assert_eq!(
        m.lookup("0b7e1c8a-1111-4c3e-9a55-000000000001", "feed"),
        None
    );
    assert_eq!(m.lookup("nope", ""), None);
    assert_eq!(m.lookup("", ""), None);
}
