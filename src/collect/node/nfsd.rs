//! `nfsd` collector: `node_nfsd_*` from /proc/net/rpc/nfsd. (Placeholder until implemented: writes nothing.)

use crate::collect::registry::{CollectorModule, Switch};
use crate::collect::{CollectError, Collector, Sink};
use crate::host::HostRoot;

/// Registry entry.
pub struct Module;

impl CollectorModule for Module {
    type Config = Switch;
    fn build(_: &Switch, _host: &HostRoot) -> Box<dyn Collector> {
        Box::new(Placeholder)
    }
}

struct Placeholder;

impl Collector for Placeholder {
    fn name(&self) -> &'static str {
        "nfsd"
    }

    fn collect(&mut self, _sink: &mut Sink) -> Result<(), CollectError> {
        Ok(())
    }
}
