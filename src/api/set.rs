//! POST `/discovery/set`: change status and/or metadata of several hosts of an app at once.

use std::sync::Arc;

use super::answer::Answer;
use super::context::Api;
use crate::clock;
use crate::cluster::op::Op;
use crate::error::Result;
use crate::wire::set::Set;
use crate::wire::Origin;

/// Handles a set.
pub(crate) fn handle<'a>(api: &Api, req: Set<'_>) -> Result<Answer<'a>> {
    let set_ts = req.set_ts.unwrap_or_else(clock::now_ns);
    api.registry
        .set(&req.at, &req.changes, set_ts, api.limits.metadata)?;
    if req.origin != Origin::Peer {
        api.cluster
            .forward(Op::Set(Arc::new(req.to_op(set_ts))), req.origin);
    }
    Ok(Answer::Ok)
}
