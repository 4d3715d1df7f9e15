//! POST `/discovery/set`: change status and/or metadata of several hosts of an app at once.

use super::answer::Answer;
use super::context::Api;
use crate::clock;
use crate::cluster::op::Op;
use crate::error::Result;
use crate::registry::SetVersion;
use crate::wire::set::Set;
use crate::wire::Origin;

/// Handles a set.
pub(crate) fn handle<'a>(api: &Api, req: Set<'_>) -> Result<Answer<'a>> {
    let set_ts = req.set_ts.unwrap_or_else(clock::now_ns);
    let version = match (req.origin, req.set_ts) {
        (Origin::Peer | Origin::OtherZone, Some(_)) => SetVersion::AsSent,
        _ => SetVersion::Next,
    };
    let changed = api
        .registry
        .set(&req.at, &req.changes, set_ts, version, api.limits.metadata)?;
    // Peers get the whole changed instances, not the change: a peer that missed the instance's
    // last register would otherwise apply the set to its old copy and take the set's version,
    // and no later renew would notice the difference.
    if req.origin != Origin::Peer {
        for inst in changed {
            api.cluster.forward(Op::Register(inst), req.origin);
        }
    }
    Ok(Answer::Ok)
}
