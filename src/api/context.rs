//! What every handler is given: [`Api`], one core's handles to the shared state and its
//! parked polls. The service around the handlers is in `api/mod.rs`.

use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;

use crate::cluster::Cluster;
use crate::identity::Identity;
use crate::metrics::Metrics;
use crate::park::CoreWaiters;
use crate::registry::Registry;
use crate::shutdown::ShutdownWatch;

/// One core's API service: handles to the shared state, and this core's parked polls.
pub(crate) struct Api {
    pub(crate) registry: Arc<Registry>,
    pub(crate) cluster: Arc<Cluster>,
    pub(crate) identity: Arc<Identity>,
    pub(crate) metrics: Arc<Metrics>,
    /// This core's parked polls; `Rc` because only this core's tasks touch them.
    pub(crate) waiters: Rc<CoreWaiters>,
    /// How long a poll is held before -304.
    pub(crate) poll_hold: Duration,
    /// Polls parked at once, all cores together; one more is answered 503.
    pub(crate) max_parked_polls: usize,
    pub(crate) shutdown: ShutdownWatch,
}
