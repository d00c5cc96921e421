//! StatsD / DogStatsD ingest: the line parser and the statsd_exporter-compatible mapping.

pub mod mapping;
pub mod parse;
