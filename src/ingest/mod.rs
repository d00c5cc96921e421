//! Transports that application events arrive on; each validates into
//! [`crate::services::event::Event`] and hands events to the services hub.

pub mod http;
pub mod statsd;

use std::path::PathBuf;

use serde::Deserialize;

use crate::config::{ConfigError, Issue};

/// `ingest:` — the event transports.
#[derive(Debug, Clone, PartialEq, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct IngestConfig {
    /// `POST /api/v1/events` on the web listener.
    pub http: HttpIngestConfig,
    /// StatsD / DogStatsD over UDP and Unix datagrams.
    pub statsd: statsd::listener::StatsdConfig,
}

/// `ingest.http`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HttpIngestConfig {
    /// Whether `POST /api/v1/events` is served.
    pub enabled: bool,
    /// A file holding a token; when set, clients must send `Authorization: Bearer <token>`.
    pub bearer_token_file: Option<PathBuf>,
    /// Largest request body; larger ones get 413 and are not read to the end.
    pub max_body_bytes: usize,
    /// Most events taken from one request; later ones are rejected one by one.
    pub max_events_per_batch: usize,
    /// Longest label value (service, route, method, kind, breaker, function).
    pub max_label_value_bytes: usize,
}

impl Default for HttpIngestConfig {
    fn default() -> Self {
        let l = http::IngestLimits::default();
        Self {
            enabled: true,
            bearer_token_file: None,
            max_body_bytes: l.max_body_bytes,
            max_events_per_batch: l.max_events_per_batch,
            max_label_value_bytes: l.max_label_value_bytes,
        }
    }
}

impl HttpIngestConfig {
    /// The limits the endpoint enforces.
    pub fn limits(&self) -> http::IngestLimits {
        http::IngestLimits {
            max_body_bytes: self.max_body_bytes,
            max_events_per_batch: self.max_events_per_batch,
            max_label_value_bytes: self.max_label_value_bytes,
        }
    }

    /// The bearer token, read from `bearer_token_file` (trailing newline removed).
    pub fn token(&self) -> Result<Option<String>, ConfigError> {
        let Some(path) = &self.bearer_token_file else {
            return Ok(None);
        };
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.clone(),
            source,
        })?;
        let token = text.trim_end_matches(['\n', '\r']).to_string();
        if token.is_empty() {
            return Err(ConfigError::Invalid(vec![Issue::new(
                "ingest.http.bearer_token_file",
                format!("{} is empty", path.display()),
            )]));
        }
        Ok(Some(token))
    }
}

impl IngestConfig {
    /// Checks every option, pushing keyed issues.
    pub fn check(&self, issues: &mut Vec<Issue>) {
        self.http.limits().check("ingest.http", issues);
        self.statsd.check(issues);
    }
}
