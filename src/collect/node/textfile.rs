//! `textfile` collector (placeholder until implemented: writes nothing).

use std::path::PathBuf;

use serde::Deserialize;

use crate::collect::registry::CollectorModule;
use crate::collect::{CollectError, Collector, Sink};
use crate::config::Issue;
use crate::host::HostRoot;

/// Registry entry.
pub struct Module;

/// `collectors.textfile`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Whether the collector runs.
    pub enabled: bool,
    /// Directory of `*.prom` files; none disables reading.
    pub directory: Option<PathBuf>,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            enabled: true,
            directory: None,
        }
    }
}

impl Config {
    fn check(&self, _key: &str, _issues: &mut Vec<Issue>) {}
}

crate::collector_config!(Config);

impl CollectorModule for Module {
    type Config = Config;
    fn build(_: &Config, _host: &HostRoot) -> Box<dyn Collector> {
        Box::new(Placeholder)
    }
}

struct Placeholder;

impl Collector for Placeholder {
    fn name(&self) -> &'static str {
        "textfile"
    }

    fn collect(&mut self, _sink: &mut Sink) -> Result<(), CollectError> {
        Ok(())
    }
}
