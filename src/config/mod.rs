//! sonde's YAML configuration: serde structs with `deny_unknown_fields` and named defaults, one
//! [`Config::validate`] whose messages name the offending key, and the embedded default
//! configuration (the documented `config/sonde.yaml`).
//!
//! Parsing errors carry the key path too (`collectors.cpu.bogus: unknown field ...`), because
//! deserialization runs through `serde_path_to_error`.

mod types;

pub use types::{Pattern, parse_listen_address};

use std::fmt;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::collect::CollectorsConfig;

/// The documented example configuration; it is also the embedded default (a test checks that it
/// parses to exactly [`Config::default`]).
pub const DEFAULT_CONFIG_YAML: &str = include_str!("../../config/sonde.yaml");

/// One problem found in a configuration: the key and the reason.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Issue {
    /// Dotted key path, e.g. `collectors.filesystem.mount_points_exclude`.
    pub key: String,
    /// What is wrong with it.
    pub reason: String,
}

impl Issue {
    /// An issue for `key`.
    pub fn new(key: impl Into<String>, reason: impl Into<String>) -> Self {
        Self {
            key: key.into(),
            reason: reason.into(),
        }
    }
}

impl fmt::Display for Issue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.key, self.reason)
    }
}

/// Why a configuration could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read {path}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The YAML did not match the schema.
    #[error("{key}: {message}")]
    Parse {
        /// Dotted key path where parsing stopped (`.` for the document itself).
        key: String,
        /// The parser's message, with line and column.
        message: String,
    },
    /// The YAML parsed but some values are not acceptable.
    #[error("{}", .0.iter().map(Issue::to_string).collect::<Vec<_>>().join("\n"))]
    Invalid(Vec<Issue>),
}

/// Parses YAML into `T`, reporting the key path of the first error.
pub fn from_yaml<T: serde::de::DeserializeOwned>(text: &str) -> Result<T, ConfigError> {
    let mut path = None;
    let parsed = serde_saphyr::with_deserializer_from_str(text, |de| {
        serde_path_to_error::deserialize::<_, T>(de).map_err(|e| {
            path = Some(e.path().to_string());
            e.into_inner()
        })
    });
    parsed.map_err(|e| {
        let key = path
            .filter(|p| !p.is_empty() && p != ".")
            .unwrap_or_else(|| "(document)".to_string());
        // The error's first line is "error: line L column C: reason"; keep it compact.
        let message = e
            .to_string()
            .lines()
            .next()
            .unwrap_or_default()
            .trim_start_matches("error: ")
            .to_string();
        ConfigError::Parse { key, message }
    })
}

/// The whole configuration.
#[derive(Debug, Clone, PartialEq, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// HTTP server.
    pub web: WebConfig,
    /// Logging.
    pub log: LogConfig,
    /// Where the host's trees are mounted.
    pub paths: PathsConfig,
    /// Scrape machinery.
    pub scrape: ScrapeConfig,
    /// Per-collector switches and options.
    pub collectors: CollectorsConfig,
    /// Event transports (HTTP, StatsD).
    pub ingest: crate::ingest::IngestConfig,
    /// Service telemetry computed from events.
    pub services: crate::services::hub::ServicesConfig,
    /// Kubernetes pod metadata (the node-scoped pod watch).
    pub kube: crate::kube::KubeConfig,
}

/// `web:` — the HTTP endpoint.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct WebConfig {
    /// `host:port` or `:port` (all interfaces).
    pub listen_address: String,
    /// An exporter-toolkit `web-config.yml` (TLS, mTLS, basic auth); none for plain HTTP.
    pub config_file: Option<PathBuf>,
    /// The path metrics are served on.
    pub telemetry_path: String,
    /// Concurrent `/metrics` requests served at once; more get 503 (0 = unlimited).
    pub max_requests: usize,
    /// Time allowed for a client to send its request headers (and for a TLS handshake).
    pub read_header_timeout_seconds: f64,
}

fn default_listen_address() -> String {
    ":19110".to_string()
}

impl Default for WebConfig {
    fn default() -> Self {
        Self {
            listen_address: default_listen_address(),
            config_file: None,
            telemetry_path: "/metrics".to_string(),
            max_requests: 40,
            read_header_timeout_seconds: 10.0,
        }
    }
}

/// Log output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable lines.
    #[default]
    Text,
    /// One JSON object per line.
    Json,
}

/// `log:` — logging (the `RUST_LOG` environment variable overrides `level`).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LogConfig {
    /// A tracing filter: `error`, `warn`, `info`, `debug`, `trace`, or directives such as
    /// `info,sonde::collect=debug`.
    pub level: String,
    /// `text` or `json`.
    pub format: LogFormat,
}

impl Default for LogConfig {
    fn default() -> Self {
        Self {
            level: "info".to_string(),
            format: LogFormat::Text,
        }
    }
}

/// `paths:` — where the host's `/proc`, `/sys` and root filesystem are mounted.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PathsConfig {
    /// procfs mount point.
    pub procfs: PathBuf,
    /// sysfs mount point.
    pub sysfs: PathBuf,
    /// The host's root filesystem.
    pub rootfs: PathBuf,
}

impl Default for PathsConfig {
    fn default() -> Self {
        Self {
            procfs: "/proc".into(),
            sysfs: "/sys".into(),
            rootfs: "/".into(),
        }
    }
}

/// `scrape:` — how collections run.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ScrapeConfig {
    /// Scrapes arriving within this many seconds of the last collection's start reuse it
    /// (concurrent scrapes always share the collection in flight). 0 disables reuse.
    pub min_interval_seconds: f64,
    /// Each collector must finish within this time or it is reported failed for this scrape.
    pub collector_timeout_seconds: f64,
    /// gzip level (1 fastest .. 9 smallest) when the client accepts gzip.
    pub gzip_level: u32,
}

impl Default for ScrapeConfig {
    fn default() -> Self {
        Self {
            min_interval_seconds: 0.5,
            collector_timeout_seconds: 8.0,
            gzip_level: 1,
        }
    }
}

impl Config {
    /// Parses a YAML document and validates it.
    pub fn from_yaml_str(text: &str) -> Result<Self, ConfigError> {
        let cfg: Config = from_yaml(text)?;
        cfg.validate()?;
        Ok(cfg)
    }

    /// Reads, parses and validates a YAML file.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        Self::from_yaml_str(&text)
    }

    /// The embedded default configuration.
    pub fn embedded_default() -> Self {
        // The embedded file is checked by a unit test; fall back to the code defaults anyway.
        Self::from_yaml_str(DEFAULT_CONFIG_YAML).unwrap_or_default()
    }

    /// Checks every value; all problems are reported at once, each naming its key.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let mut issues = Vec::new();
        if let Err(reason) = parse_listen_address(&self.web.listen_address) {
            issues.push(Issue::new("web.listen_address", reason));
        }
        if !self.web.telemetry_path.starts_with('/') {
            issues.push(Issue::new("web.telemetry_path", "must start with '/'"));
        } else if ["/", "/-/healthy", "/-/ready"].contains(&self.web.telemetry_path.as_str()) {
            issues.push(Issue::new(
                "web.telemetry_path",
                "collides with a built-in endpoint",
            ));
        }
        positive(
            &mut issues,
            "web.read_header_timeout_seconds",
            self.web.read_header_timeout_seconds,
        );
        if let Err(e) = tracing_subscriber::EnvFilter::try_new(&self.log.level) {
            issues.push(Issue::new("log.level", format!("invalid filter: {e}")));
        }
        for (key, p) in [
            ("paths.procfs", &self.paths.procfs),
            ("paths.sysfs", &self.paths.sysfs),
            ("paths.rootfs", &self.paths.rootfs),
        ] {
            if p.as_os_str().is_empty() {
                issues.push(Issue::new(key, "must not be empty"));
            }
        }
        if !(self.scrape.min_interval_seconds >= 0.0 && self.scrape.min_interval_seconds <= 3600.0)
        {
            issues.push(Issue::new(
                "scrape.min_interval_seconds",
                "must be between 0 and 3600",
            ));
        }
        positive(
            &mut issues,
            "scrape.collector_timeout_seconds",
            self.scrape.collector_timeout_seconds,
        );
        if !(1..=9).contains(&self.scrape.gzip_level) {
            issues.push(Issue::new("scrape.gzip_level", "must be between 1 and 9"));
        }
        self.collectors.validate(&mut issues);
        self.ingest.check(&mut issues);
        self.services.check(&mut issues);
        self.kube.check("kube", &mut issues);
        if issues.is_empty() {
            Ok(())
        } else {
            Err(ConfigError::Invalid(issues))
        }
    }

    /// The host root built from `paths`.
    pub fn host_root(&self) -> crate::host::HostRoot {
        crate::host::HostRoot::new(&self.paths.procfs, &self.paths.sysfs, &self.paths.rootfs)
    }
}

/// Pushes an issue unless `v` is a finite number above zero.
pub fn positive(issues: &mut Vec<Issue>, key: &str, v: f64) {
    if !(v.is_finite() && v > 0.0) {
        issues.push(Issue::new(
            key,
            format!("must be a number above 0, got {v}"),
        ));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_documented_example_is_the_embedded_default() {
        let parsed =
            Config::from_yaml_str(DEFAULT_CONFIG_YAML).expect("config/sonde.yaml must parse");
        assert_eq!(parsed, Config::default());
    }

    #[test]
    fn an_empty_document_gives_the_defaults() {
        assert_eq!(Config::from_yaml_str("").expect("empty"), Config::default());
        assert_eq!(
            Config::from_yaml_str("# nothing\n").expect("comment"),
            Config::default()
        );
    }

    #[test]
    fn unknown_keys_are_named() {
        let err = Config::from_yaml_str("collectors:\n  cpu:\n    enabled: true\n    bogus: 3\n")
            .expect_err("unknown key");
        let msg = err.to_string();
        assert!(
            msg.starts_with("collectors.cpu.bogus: line 4 column 5: unknown field `bogus`"),
            "{msg}"
        );
    }

    #[test]
    fn bad_values_are_named() {
        let err = Config::from_yaml_str("scrape:\n  collector_timeout_seconds: abc\n")
            .expect_err("bad float");
        assert_eq!(
            err.to_string(),
            "scrape.collector_timeout_seconds: line 2 column 30: invalid floating point"
        );
        let err = Config::from_yaml_str("scrape:\n  collector_timeout_seconds: 0\n  gzip_level: 12\nweb:\n  listen_address: nope\n").expect_err("invalid");
        assert_eq!(
            err.to_string(),
            "web.listen_address: expected host:port or :port, got \"nope\"\n\
             scrape.collector_timeout_seconds: must be a number above 0, got 0\n\
             scrape.gzip_level: must be between 1 and 9"
        );
    }
}
