//! sonde: one small Prometheus exporter for a node, its processes, containers and the
//! service telemetry its applications send it.
//!
//! Module map (read in this order):
//! - [`config`]: the YAML configuration (serde, `deny_unknown_fields`) and its `validate()`;
//!   every error names the offending key.
//! - [`host`]: [`host::HostRoot`], the only code that builds `/proc`, `/sys` and rootfs paths,
//!   so tests and containers can point it at another tree.
//! - [`collect`]: the [`collect::Collector`] trait, the typed [`collect::Sink`] collectors write
//!   samples into, the registry of collectors, and [`collect::scrape`] (timeouts,
//!   single-flight sharing of one collection between concurrent scrapes, meta metrics).
//! - [`collect::node`]: node_exporter-compatible node collectors (`node_*`).
//! - [`expo`]: the Prometheus text 0.0.4 and OpenMetrics 1.0.0 encoders and `Accept`
//!   negotiation; the only code that knows the wire formats.
//! - [`server`]: the HTTP router (`/metrics`, `/-/healthy`, `/-/ready`, `/`), the
//!   exporter-toolkit web configuration (TLS, mTLS, basic auth) and the accept loop.
//! - [`services`]: service telemetry from application events (request histograms, error
//!   budgets, circuit breakers); [`services::event`] is the validated event type.
//! - [`ingest`]: the transports events arrive on (StatsD over UDP/Unix datagrams).
//! - [`app`]: wires configuration to collectors and server and owns shutdown.

pub mod app;
pub mod collect;
pub mod config;
pub mod expo;
pub mod host;
pub mod ingest;
pub mod kube;
pub mod server;
pub mod services;

/// The version string reported by `--version`, the landing page and `sonde_build_info`.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
