//! Service telemetry computed from application events: request-duration histograms, per-service
//! error budgets (persisted), circuit breakers and deprecated-call counters. Knows nothing about
//! transports: ingest paths hand it validated [`event::Event`]s.

pub mod budget_store;
pub mod circuit_breaker;
pub mod error_budget;
pub mod event;
pub mod hub;
pub mod request_metrics;
