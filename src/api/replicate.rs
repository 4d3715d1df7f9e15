//! POST `/discovery/replicate`: a batch of replicated writes from a peer of ours (the format is
//! in `wire::replicate`). Each line goes through the same handler as the op sent alone.

use super::answer::Answer;
use super::answer::LineResult;
use super::context::Api;
use super::{cancel, register, renew, set};
use crate::error::Result;
use crate::wire::cancel::Cancel;
use crate::wire::register::Register;
use crate::wire::renew::Renew;
use crate::wire::replicate::{lines, OpKind};
use crate::wire::set::Set;

/// The body of a batch.
pub(crate) struct Batch<'a> {
    pub(crate) body: &'a [u8],
}

/// Handles a batch: one result per line, in order.
pub(crate) fn handle<'a>(api: &Api, req: Batch<'_>) -> Result<Answer<'a>> {
    let rules = api.rules();
    let results = lines(req.body)
        .map(|p| {
            let answer = OpKind::from_params(&p).and_then(|kind| match kind {
                OpKind::Register => register::handle(api, Register::from_params(&p, &rules)?),
                OpKind::Renew => renew::handle(api, Renew::from_params(&p, &rules)?),
                OpKind::Cancel => cancel::handle(api, Cancel::from_params(&p, &rules)?),
                OpKind::Set => set::handle(api, Set::from_params(&p, &rules)?),
            });
            match answer {
                Ok(Answer::Renewed(inst, standing)) => LineResult::Renewed(inst, standing),
                Ok(_) => LineResult::Done,
                Err(e) => LineResult::Failed(e.ecode()),
            }
        })
        .collect();
    Ok(Answer::Batch(results))
}
