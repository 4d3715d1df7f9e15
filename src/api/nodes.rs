//! GET `/discovery/nodes`: the discovery nodes of this zone and their status.

use super::answer::Answer;
use super::answer::NodeInfo;
use super::context::Api;
use crate::cluster::peer::PeerStatus;
use crate::error::Result;

/// Handles nodes: this node first and up, then its peers of this zone with their status.
pub(crate) fn handle<'a>(api: &Api, _: ()) -> Result<Answer<'a>> {
    let me = &api.identity;
    let mut list = vec![NodeInfo {
        addr: me.addr.to_string(),
        status: PeerStatus::Up,
        zone: me.zone.clone(),
    }];
    list.extend(api.cluster.peers().own.iter().map(|p| NodeInfo {
        addr: p.addr.clone(),
        status: p.status(),
        zone: p.zone.clone(),
    }));
    Ok(Answer::Nodes(list))
}
