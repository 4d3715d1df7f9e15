//! POST `/discovery/renew`: the heartbeat, the hottest write. Answers the instance.

use super::answer::Answer;
use super::answer::Standing;
use super::context::Api;
use crate::clock;
use crate::cluster::op::Op;
use crate::error::{Error, Result};
use crate::wire::renew::Renew;
use crate::wire::Origin;

/// Handles a renew (and forwards it when it came from a client or another zone).
pub(crate) fn handle<'a>(api: &Api, req: Renew<'_>) -> Result<Answer<'a>> {
    let key = &req.key;
    let Some(inst) = api.registry.renew(key, clock::now_ns()) else {
        return Err(Error::not_found(format!(
            "{} {} not found",
            key.appid, key.hostname
        )));
    };
    if req.origin != Origin::Peer {
        api.cluster.forward(Op::Renew(inst.clone()), req.origin);
    }
    // A node's renew (of this zone, or forwarded from another) also compares versions: a newer
    // copy there asks for its register (-404), an older one is told ours (-409 with our
    // instance). Without this across zones, a change made on one side of a partition would
    // never reach the other.
    if req.origin == Origin::Client || req.dirty_ts == 0 {
        return Ok(Answer::Renewed(inst, Standing::Current));
    }
    if req.dirty_ts > inst.dirty_ts {
        return Err(Error::not_found(format!(
            "{} {} is newer on the peer",
            key.appid, key.hostname
        )));
    }
    let standing = if req.dirty_ts < inst.dirty_ts {
        Standing::Newer
    } else {
        Standing::Current
    };
    Ok(Answer::Renewed(inst, standing))
}
