//! POST `/discovery/cancel`: remove an instance, and forward the removal.

use super::answer::Answer;
use super::context::Api;
use crate::clock;
use crate::cluster::op::Op;
use crate::error::Result;
use crate::wire::cancel::Cancel;

/// Handles a cancel.
pub(crate) fn handle<'a>(api: &Api, req: Cancel<'_>) -> Result<Answer<'a>> {
    let now = clock::now_ns();
    let inst = api.registry.cancel(&req.key, req.latest_ts, now)?;
    let latest_ts = req.latest_ts.unwrap_or(now);
    api.cluster
        .forward(Op::Cancel { inst, latest_ts }, req.origin);
    Ok(Answer::Ok)
}
