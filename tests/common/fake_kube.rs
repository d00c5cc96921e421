//! A fake Kubernetes node for end-to-end tests: a fake API server over real HTTP (pod list with
//! `fieldSelector=spec.nodeName=<node>`, and a watch that stays open without events), a
//! kubeconfig pointing at it, and helpers to copy a fixture host tree and advance its cgroup
//! files in place while sonde keeps them open.

use std::collections::BTreeMap;
use std::io::Write;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use axum::Router;
use axum::body::Body;
use axum::extract::{Query, State};
use axum::response::Response;
use axum::routing::get as route_get;
use serde_json::{Value, json};

/// The fake API server's pods (every node; the handler applies the field selector).
#[derive(Clone)]
struct Fake(std::sync::Arc<Vec<Value>>);

fn selected(sel: Option<&String>, pod: &Value) -> bool {
    match sel.and_then(|s| s.strip_prefix("spec.nodeName=")) {
        Some(node) => pod["spec"]["nodeName"].as_str() == Some(node),
        None => sel.is_none(),
    }
}

/// `GET /api/v1/pods`: a list at resource version 100, or a watch that stays open without
/// events (nothing changes in these tests).
async fn pods_handler(
    State(fake): State<Fake>,
    Query(q): Query<BTreeMap<String, String>>,
) -> Response {
    let sel = q.get("fieldSelector");
    if q.get("watch").map(String::as_str) == Some("true") {
        let stream = futures_util::stream::pending::<Result<String, std::io::Error>>();
        return Response::builder()
            .header("content-type", "application/json")
            .body(Body::from_stream(stream))
            .expect("response");
    }
    let items: Vec<Value> = fake
        .0
        .iter()
        .filter(|p| selected(sel, p))
        .cloned()
        .map(|mut p| {
            p["metadata"]["resourceVersion"] = json!("100");
            p
        })
        .collect();
    let body = json!({"kind": "PodList", "apiVersion": "v1",
        "metadata": {"resourceVersion": "100"}, "items": items});
    Response::builder()
        .header("content-type", "application/json")
        .body(Body::from(body.to_string()))
        .expect("response")
}

/// Starts the fake serving the `items` of the PodList JSON `pods` on 127.0.0.1:0, on its own
/// runtime (kept alive by the returned value).
pub fn start_fake(pods: &str) -> (tokio::runtime::Runtime, SocketAddr) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("runtime");
    let list: Value = serde_json::from_str(pods).expect("pods JSON");
    let fake = Fake(std::sync::Arc::new(
        list["items"].as_array().expect("items").clone(),
    ));
    let addr = rt.block_on(async {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        let app = Router::new()
            .route("/api/v1/pods", route_get(pods_handler))
            .with_state(fake);
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        addr
    });
    (rt, addr)
}

/// Writes `<dir>/kubeconfig` pointing at the fake API server (no credentials) and returns it.
pub fn write_kubeconfig(dir: &Path, api: SocketAddr) -> PathBuf {
    let path = dir.join("kubeconfig");
    std::fs::write(
        &path,
        format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: fake\n  cluster:\n    server: http://{api}\n\
             users:\n- name: fake\n  user: {{}}\ncontexts:\n- name: fake\n  context:\n    cluster: fake\n    user: fake\n\
             current-context: fake\n"
        ),
    )
    .expect("write kubeconfig");
    path
}

/// Copies the tree `from` into `to` (merging into directories that already exist).
pub fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("mkdir");
    for e in std::fs::read_dir(from).expect("read_dir") {
        let e = e.expect("entry");
        let dst = to.join(e.file_name());
        if e.file_type().expect("file type").is_dir() {
            copy_tree(&e.path(), &dst);
        } else {
            std::fs::copy(e.path(), &dst).expect("copy");
        }
    }
}

/// Adds `delta` to a counter in a cgroup file, rewriting it in place (same inode, no
/// truncation: sonde keeps cgroup files open and re-reads them with `pread`, so a rename would
/// go unseen, and a truncate could be read half-done). `key` names the line of a flat-keyed file
/// (`usage_usec` in `cpu.stat`); `None` is a single-value file (`memory.current`). Values only
/// grow, so the new text is never shorter than the old one.
pub fn bump_value(file: &Path, key: Option<&str>, delta: u64) {
    let text = std::fs::read_to_string(file).expect("read cgroup file");
    let mut out = String::new();
    let mut found = false;
    for line in text.lines() {
        let value = match key {
            Some(k) => line.strip_prefix(k).and_then(|rest| rest.strip_prefix(' ')),
            None => Some(line.trim()),
        };
        match value {
            Some(v) if !found => {
                let v: u64 = v.parse().expect("counter value");
                found = true;
                match key {
                    Some(k) => out.push_str(&format!("{k} {}\n", v + delta)),
                    None => out.push_str(&format!("{}\n", v + delta)),
                }
            }
            _ => {
                out.push_str(line);
                out.push('\n');
            }
        }
    }
    assert!(found, "{key:?} not in {}", file.display());
    assert!(out.len() >= text.len());
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .open(file)
        .expect("open cgroup file");
    f.write_all(out.as_bytes()).expect("write cgroup file");
}

/// Adds `delta` µs to `usage_usec` in a `cpu.stat`.
pub fn bump(cpu_stat: &Path, delta: u64) {
    bump_value(cpu_stat, Some("usage_usec"), delta);
}
