//! Wires the configuration to the collectors, the scrape machinery and the HTTP server, and owns
//! startup and shutdown.

use std::sync::Arc;
use std::sync::atomic::AtomicUsize;
use std::time::Duration;

use tokio::sync::Semaphore;

use crate::collect::scrape::Scraper;
use crate::config::{Config, parse_listen_address};
use crate::ingest::http::HttpIngest;
use crate::ingest::statsd::listener::{Statsd, StatsdCollector};
use crate::server::web_config::{WebConfigError, WebSecurity};
use crate::server::{self, AppState, Readiness};
use crate::services::hub::{Hub, HubCollector};

/// Why the daemon could not start.
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    /// The web configuration file was refused.
    #[error("web configuration {path}")]
    WebConfig {
        /// The file.
        path: std::path::PathBuf,
        /// Why.
        #[source]
        source: WebConfigError,
    },
    /// The service telemetry could not be set up (`ERROR_BUDGETS`, budgets, breakers file).
    #[error(transparent)]
    Services(#[from] crate::services::hub::HubError),
    /// The StatsD listener could not be set up.
    #[error(transparent)]
    Statsd(#[from] crate::ingest::statsd::listener::ListenError),
    /// The ingest bearer token file could not be read.
    #[error("ingest.http.bearer_token_file")]
    IngestToken(#[source] crate::config::ConfigError),
    /// The listen address could not be parsed.
    #[error("web.listen_address: {0}")]
    ListenAddress(String),
    /// The listen address could not be bound.
    #[error("listening on {address}")]
    Bind {
        /// The configured address.
        address: String,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
}

/// A configured daemon, ready to serve.
pub struct App {
    /// Shared handler state.
    pub state: Arc<AppState>,
    config: Config,
    statsd: Option<Arc<Statsd>>,
    kube: Option<(Arc<crate::kube::PodCache>, server::ReadyGate)>,
}

impl App {
    /// Builds collectors, scraper and server state from a validated configuration.
    pub fn new(config: Config) -> Result<Self, AppError> {
        let security = match &config.web.config_file {
            Some(path) => WebSecurity::load(path).map_err(|source| AppError::WebConfig {
                path: path.clone(),
                source,
            })?,
            None => WebSecurity::none(),
        };
        let host = config.host_root();
        let mut collectors = config.collectors.build(&host);
        let now = std::time::SystemTime::now();
        let env_budgets = std::env::var(crate::services::error_budget::ENV_VAR).ok();
        let hub = Arc::new(Hub::new(&config.services, env_budgets.as_deref(), now)?);
        let ingest = if config.ingest.http.enabled {
            let token = config.ingest.http.token().map_err(AppError::IngestToken)?;
            Some(Arc::new(HttpIngest::new(
                config.ingest.http.limits(),
                token,
                hub.clone(),
            )))
        } else {
            None
        };
        collectors.push(Box::new(HubCollector {
            hub: hub.clone(),
            ingest: ingest.clone(),
        }));
        let statsd = if config.ingest.statsd.enabled {
            let st = Statsd::new(&config.ingest.statsd, hub.clone())?;
            collectors.push(Box::new(StatsdCollector { state: st.clone() }));
            Some(st)
        } else {
            None
        };
        let readiness = Arc::new(Readiness::default());
        let kube = crate::kube::PodCache::new(&config.kube).map(|cache| {
            crate::collect::cgroup::meta::set_metadata(cache.clone());
            collectors.push(Box::new(crate::kube::KubeCollector::new(cache.clone())));
            (cache, readiness.gate())
        });
        let scraper = Arc::new(Scraper::new(
            collectors,
            Duration::from_secs_f64(config.scrape.collector_timeout_seconds),
            Duration::from_secs_f64(config.scrape.min_interval_seconds),
        ));
        let state = Arc::new(AppState {
            scraper,
            readiness,
            limit: (config.web.max_requests > 0).then(|| Semaphore::new(config.web.max_requests)),
            gzip_level: config.scrape.gzip_level,
            telemetry_path: config.web.telemetry_path.clone(),
            last_size: AtomicUsize::new(0),
            security: Arc::new(security),
            hub: Some(hub),
            ingest,
        });
        Ok(Self {
            state,
            config,
            statsd,
            kube,
        })
    }

    /// Binds the listen address and serves until `shutdown` resolves.
    pub async fn run(
        self,
        shutdown: impl std::future::Future<Output = ()>,
    ) -> Result<(), AppError> {
        let addrs = parse_listen_address(&self.config.web.listen_address)
            .map_err(AppError::ListenAddress)?;
        let listener = server::bind(&addrs)
            .await
            .map_err(|source| AppError::Bind {
                address: self.config.web.listen_address.clone(),
                source,
            })?;
        let local = listener
            .local_addr()
            .map(|a| a.to_string())
            .unwrap_or_default();
        let statsd = match &self.statsd {
            Some(st) => crate::ingest::statsd::listener::start(&self.config.ingest.statsd, st)?,
            None => Default::default(),
        };
        tracing::info!(
            address = %local,
            statsd_udp = %statsd.udp.map(|a| a.to_string()).unwrap_or_default(),
            statsd_unixgram = %statsd.unixgram.map(|p| p.display().to_string()).unwrap_or_default(),
            tls = self.state.security.tls_acceptor().is_some(),
            collectors = ?self.state.scraper.collector_names(),
            "sonde {} listening",
            crate::VERSION
        );
        let kube_task = self
            .kube
            .map(|(cache, mut gate)| cache.spawn(move || gate.open()));
        let flusher = self.state.hub.clone().map(|hub| {
            let every = Duration::from_secs(
                self.config
                    .services
                    .error_budgets
                    .flush_interval_seconds
                    .max(1),
            );
            tokio::spawn(flush_loop(hub, every))
        });
        let router = server::router(self.state.clone());
        server::serve(
            listener,
            router,
            self.state.security.clone(),
            Duration::from_secs_f64(self.config.web.read_header_timeout_seconds),
            shutdown,
            Duration::from_secs(5),
        )
        .await;
        if let Some(f) = flusher {
            f.abort();
        }
        if let Some(k) = kube_task {
            k.abort();
        }
        if let Some(hub) = self.state.hub.clone() {
            // The final flush: a clean stop loses nothing.
            let _ = tokio::task::spawn_blocking(move || flush(&hub)).await;
        }
        tracing::info!("sonde stopped");
        Ok(())
    }
}

fn flush(hub: &Hub) {
    if let Err(e) = hub.flush(std::time::SystemTime::now()) {
        tracing::warn!(error = %crate::collect::scrape::error_chain(&e), "saving error budgets failed");
    }
}

/// Saves the error budgets every `every`, on the blocking pool, so that `kill -9` loses at most
/// one interval.
async fn flush_loop(hub: Arc<Hub>, every: Duration) {
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tick.tick().await;
    loop {
        tick.tick().await;
        let h = hub.clone();
        let _ = tokio::task::spawn_blocking(move || flush(&h)).await;
    }
}
