//! StatsD / DogStatsD ingest: the line parser, the statsd_exporter-compatible mapping and the
//! registry of the metrics they produce.

pub mod listener;
pub mod mapping;
pub mod parse;
pub mod registry;
