//! The HTTP side: [`router`] builds the axum router (`/metrics`, `/-/healthy`, `/-/ready`, `/`),
//! [`serve`] runs the accept loop (plain TCP or TLS per the web configuration) with graceful
//! shutdown. Errors map to responses in one place ([`ApiError`]); internal details stay in the
//! log, never in a response body.

pub mod web_config;

use std::io::Write as _;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;

use crate::collect::scrape::Scraper;
use crate::expo::{self, negotiate::accepts_gzip};
use web_config::WebSecurity;

/// Readiness gates: `/-/ready` answers 200 once every registered gate has opened (for example
/// the Kubernetes pod cache's initial sync).
#[derive(Debug, Default)]
pub struct Readiness {
    pending: AtomicUsize,
}

/// One condition `/-/ready` waits for; open it with [`ReadyGate::open`].
#[derive(Debug)]
pub struct ReadyGate {
    readiness: Arc<Readiness>,
    open: bool,
}

impl Readiness {
    /// Registers a condition that must be met before the daemon is ready.
    pub fn gate(self: &Arc<Self>) -> ReadyGate {
        self.pending.fetch_add(1, Ordering::SeqCst);
        ReadyGate {
            readiness: self.clone(),
            open: false,
        }
    }

    /// True when every gate is open.
    pub fn is_ready(&self) -> bool {
        self.pending.load(Ordering::SeqCst) == 0
    }
}

impl ReadyGate {
    /// Marks this condition as met (idempotent).
    pub fn open(&mut self) {
        if !self.open {
            self.open = true;
            self.readiness.pending.fetch_sub(1, Ordering::SeqCst);
        }
    }
}

/// Everything the handlers need.
pub struct AppState {
    /// Runs (and shares) collections.
    pub scraper: Arc<Scraper>,
    /// Readiness of the daemon.
    pub readiness: Arc<Readiness>,
    /// Limits concurrent `/metrics` requests (`web.max_requests`; `None` = unlimited).
    pub limit: Option<Semaphore>,
    /// gzip level.
    pub gzip_level: u32,
    /// Where metrics are served.
    pub telemetry_path: String,
    /// Size of the last encoded response, to preallocate the next.
    pub last_size: AtomicUsize,
    /// TLS, client certificates, basic-auth users and extra response headers.
    pub security: Arc<WebSecurity>,
    /// Service telemetry (`/breaker`), when enabled.
    pub hub: Option<Arc<crate::services::hub::Hub>>,
    /// `POST /api/v1/events`, when enabled.
    pub ingest: Option<Arc<crate::ingest::http::HttpIngest>>,
}

/// An error as the client sees it: a status and a short, generic message.
#[derive(Debug)]
pub enum ApiError {
    /// Too many concurrent scrapes.
    Overloaded,
    /// Missing or wrong credentials (never says which).
    Unauthorized,
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        match self {
            Self::Overloaded => (
                StatusCode::SERVICE_UNAVAILABLE,
                "Too many concurrent requests, try again later.\n",
            )
                .into_response(),
            Self::Unauthorized => {
                let mut r = (StatusCode::UNAUTHORIZED, "Unauthorized\n").into_response();
                r.headers_mut()
                    .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Basic"));
                r
            }
        }
    }
}

/// Builds the router for `state`.
pub fn router(state: Arc<AppState>) -> Router {
    let path = state.telemetry_path.clone();
    let mut r: Router = Router::new()
        .route(&path, get(metrics))
        .route("/-/healthy", get(|| async { "Healthy\n" }))
        .route("/-/ready", get(ready))
        .route("/", get(landing))
        .with_state(state.clone());
    if let Some(ingest) = &state.ingest {
        r = r.merge(crate::ingest::http::routes(ingest.clone()));
    }
    if let Some(hub) = &state.hub {
        r = r.merge(breaker_routes(hub.clone()));
    }
    r.layer(middleware::from_fn_with_state(state, authenticate))
}

/// `GET /breaker` (every breaker) and `GET /breaker/{name}` (one, or 404), as JSON.
fn breaker_routes(hub: Arc<crate::services::hub::Hub>) -> Router {
    async fn all(State(hub): State<Arc<crate::services::hub::Hub>>) -> Response {
        axum::Json(hub.breakers(std::time::SystemTime::now())).into_response()
    }
    async fn one(
        State(hub): State<Arc<crate::services::hub::Hub>>,
        axum::extract::Path(name): axum::extract::Path<String>,
    ) -> Response {
        match hub.breaker(&name, std::time::SystemTime::now()) {
            Some(b) => axum::Json(b).into_response(),
            None => (
                StatusCode::NOT_FOUND,
                axum::Json(serde_json::json!({ "error": "no such breaker" })),
            )
                .into_response(),
        }
    }
    Router::new()
        .route("/breaker", get(all))
        .route("/breaker/{name}", get(one))
        .with_state(hub)
}

/// Basic auth (when configured) for every endpoint, as exporter-toolkit does, and the
/// configured extra headers on every response, the 401 included.
async fn authenticate(State(state): State<Arc<AppState>>, req: Request, next: Next) -> Response {
    let security = &state.security;
    let mut response = if security
        .authorize(req.headers().get(header::AUTHORIZATION))
        .await
    {
        next.run(req).await
    } else {
        ApiError::Unauthorized.into_response()
    };
    let headers = response.headers_mut();
    for (name, value) in security.headers() {
        headers.insert(name.clone(), value.clone());
    }
    response
}

async fn ready(State(state): State<Arc<AppState>>) -> Response {
    if state.readiness.is_ready() {
        (StatusCode::OK, "Ready\n").into_response()
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "Not ready\n").into_response()
    }
}

async fn landing(State(state): State<Arc<AppState>>) -> Html<String> {
    let collectors: String = state
        .scraper
        .collector_names()
        .iter()
        .map(|c| format!("<li><code>{c}</code></li>"))
        .collect::<Vec<_>>()
        .join("");
    let path = &state.telemetry_path;
    let mut extra = String::new();
    if state.hub.is_some() {
        extra.push_str("<li><a href=\"/breaker\">/breaker</a>: circuit breakers (JSON; /breaker/NAME for one)</li>");
    }
    if state.ingest.is_some() {
        extra.push_str(
            "<li><code>POST /api/v1/events</code>: application events (JSON array or NDJSON)</li>",
        );
    }
    Html(format!(
        "<!doctype html><html><head><title>sonde</title></head><body>\
         <h1>sonde {version}</h1>\
         <p>A Prometheus exporter for this node.</p>\
         <h2>Endpoints</h2><ul>\
         <li><a href=\"{path}\">{path}</a>: metrics (Prometheus text 0.0.4 or OpenMetrics 1.0.0, gzip)</li>\
         <li><a href=\"/-/healthy\">/-/healthy</a>: liveness</li>\
         <li><a href=\"/-/ready\">/-/ready</a>: readiness</li>{extra}\
         </ul><h2>Enabled collectors</h2><ul>{collectors}</ul></body></html>\n",
        version = crate::VERSION,
    ))
}

async fn metrics(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let _permit = match &state.limit {
        Some(sem) => Some(sem.try_acquire().map_err(|_| ApiError::Overloaded)?),
        None => None,
    };
    let snapshot = state.scraper.collect().await;
    let format = expo::negotiate(headers.get(header::ACCEPT).and_then(|v| v.to_str().ok()));
    let gzip = accepts_gzip(
        headers
            .get(header::ACCEPT_ENCODING)
            .and_then(|v| v.to_str().ok()),
    );
    let mut body = Vec::with_capacity(state.last_size.load(Ordering::Relaxed) + 1024);
    expo::encode(snapshot.sinks(), format, &mut body);
    state.last_size.store(body.len(), Ordering::Relaxed);
    let mut builder = Response::builder()
        .status(StatusCode::OK)
        .header(header::CONTENT_TYPE, format.content_type());
    if gzip {
        let mut enc = flate2::write::GzEncoder::new(
            Vec::with_capacity(body.len() / 4),
            flate2::Compression::new(state.gzip_level),
        );
        // Writing into a Vec cannot fail.
        let _ = enc.write_all(&body);
        if let Ok(compressed) = enc.finish() {
            body = compressed;
            builder = builder.header(header::CONTENT_ENCODING, "gzip");
        }
    }
    builder
        .body(Body::from(body))
        .map_err(|_| ApiError::Overloaded)
}

/// Binds the first address of `addrs` that can be bound (`:port` gives `[::]` then `0.0.0.0`).
pub async fn bind(addrs: &[SocketAddr]) -> std::io::Result<TcpListener> {
    let mut last = None;
    for a in addrs {
        match TcpListener::bind(a).await {
            Ok(l) => return Ok(l),
            Err(e) => last = Some(e),
        }
    }
    Err(last.unwrap_or_else(|| {
        std::io::Error::new(std::io::ErrorKind::InvalidInput, "no address to bind")
    }))
}

/// Serves `router` on `listener` until `shutdown` resolves, then waits up to `drain` for open
/// connections to finish. With TLS configured in `security`, every connection is TLS.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    security: Arc<WebSecurity>,
    header_timeout: Duration,
    shutdown: impl std::future::Future<Output = ()>,
    drain: Duration,
) {
    let graceful = GracefulShutdown::new();
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(s) => s,
                Err(e) => {
                    // EMFILE and friends: back off instead of spinning.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let _ = stream.set_nodelay(true);
        let service = TowerToHyperService::new(router.clone());
        let watcher = graceful.watcher();
        let tls = security.tls_acceptor();
        tokio::spawn(async move {
            let mut builder = hyper::server::conn::http1::Builder::new();
            builder
                .timer(TokioTimer::new())
                .header_read_timeout(header_timeout);
            match tls {
                None => {
                    let conn = builder.serve_connection(TokioIo::new(stream), service);
                    let _ = watcher.watch(conn).await;
                }
                Some(acceptor) => {
                    let stream =
                        match tokio::time::timeout(header_timeout, acceptor.accept(stream)).await {
                            Ok(Ok(s)) => s,
                            Ok(Err(e)) => {
                                tracing::debug!(%peer, error = %e, "TLS handshake failed");
                                return;
                            }
                            Err(_) => {
                                tracing::debug!(%peer, "TLS handshake timed out");
                                return;
                            }
                        };
                    let conn = builder.serve_connection(TokioIo::new(stream), service);
                    let _ = watcher.watch(conn).await;
                }
            }
        });
    }
    drop(listener);
    if tokio::time::timeout(drain, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!("connections still open after {drain:?}; closing them");
    }
}
