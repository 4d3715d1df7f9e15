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
        return Ok(Answer::Renewed(inst, Standing::Current));
    }
    // A peer's renew also compares versions: a newer peer copy asks for its register (-404),
    // an older one is told ours (-409 with our instance).
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
