//! What every handler is given: [`Api`], one core's handles to the shared state and its
//! parked polls. The service around the handlers is in `api/mod.rs`.

use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;

use super::access::Access;
use super::fetch::FetchAllCache;
use crate::clock;
use crate::cluster::Cluster;
use crate::identity::Identity;
use crate::metrics::Metrics;
use crate::park::CoreWaiters;
use crate::registry::Registry;
use crate::shutdown::ShutdownWatch;
use crate::wire::{Limits, Rules};

/// One core's API service: handles to the shared state, and this core's parked polls.
pub(crate) struct Api {
    pub(crate) registry: Arc<Registry>,
    pub(crate) cluster: Arc<Cluster>,
    pub(crate) identity: Arc<Identity>,
    pub(crate) metrics: Arc<Metrics>,
    /// The effective configuration as key/value text, secrets masked (the dashboard's config
    /// page): computed once at start, as the configuration never changes while running.
    pub(crate) effective_config: Arc<[(String, String)]>,
    /// This core's parked polls; `Rc` because only this core's tasks touch them.
    pub(crate) waiters: Rc<CoreWaiters>,
    /// How long a poll is held before -304.
    pub(crate) poll_hold: Duration,
    /// Who may do what.
    pub(crate) access: Arc<Access>,
    /// How far ahead of this node's clock a write's timestamps may be.
    pub(crate) max_clock_skew: Duration,
    /// Size limits of messages.
    pub(crate) limits: Limits,
    /// The encoded `fetch/all`, shared by the cores.
    pub(crate) fetch_all: Arc<FetchAllCache>,
    /// Polls parked at once, all cores together; one more is answered 503.
    pub(crate) max_parked_polls: usize,
    pub(crate) shutdown: ShutdownWatch,
}

impl Api {
    /// The rules a write is checked against, now.
    pub(crate) fn rules(&self) -> Rules {
        Rules {
            now_ns: clock::now_ns(),
            max_skew_ns: i64::try_from(self.max_clock_skew.as_nanos()).unwrap_or(i64::MAX),
            limits: self.limits,
        }
    }

    /// True when an admin token is configured, so that the dashboard may offer to change an
    /// instance's status (with that token).
    pub(crate) fn admin_configured(&self) -> bool {
        self.access.admin_configured()
    }
}
