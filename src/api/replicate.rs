//! POST `/discovery/replicate`: a batch of replicated writes from a peer of ours (the format is
//! in `wire::replicate`). Each line goes through the same handler as the op sent alone.

use super::answer::LineResult;
use super::answer::{Answer, Standing};
use super::context::Api;
use super::{cancel, register, renew, set};
use crate::error::{Error, Result};
use crate::wire::cancel::Cancel;
use crate::wire::register::Register;
use crate::wire::renew::Renew;
use crate::wire::replicate::{lines, OpKind};
use crate::wire::set::Set;

/// The body of a batch.
pub(crate) struct Batch<'a> {
    pub(crate) body: &'a [u8],
}

/// How much of a batch's answer may be echoed instances: while its results hold fewer bytes
/// than the floor plus a few per byte of the request, a -409 carries its instance. The one that
/// crosses the line goes whole, so a sender always adopts at least one newer copy (its renew
/// alone would be answered with it too); none goes after it. An answer is therefore at most the
/// budget, one instance and 14 bytes per line, however many large instances its lines name
/// (fuzz/fuzz_targets/replicate_handler.rs checks that bound).
const ECHO_FLOOR_BYTES: usize = 64 * 1024;
const ECHO_PER_REQUEST_BYTE: usize = 4;

/// Handles a batch: one result per line, in order. Only a -409 line carries its instance (the
/// sender adopts it); the others carry their code alone.
pub(crate) fn handle<'a>(api: &Api, req: Batch<'_>) -> Result<Answer<'a>> {
    let rules = api.rules();
    let count = lines(req.body).count();
    if count > rules.limits.max_batch_lines {
        return Err(Error::limit(format!(
            "{count} lines, above limits.maxBatchLines ({})",
            rules.limits.max_batch_lines
        )));
    }
    let results = lines(req.body)
        .map(|line| {
            let answer = line.and_then(|p| match OpKind::from_params(&p)? {
                OpKind::Register => register::handle(api, Register::from_params(&p, &rules)?),
                OpKind::Renew => renew::handle(api, Renew::from_params(&p, &rules)?),
                OpKind::Cancel => cancel::handle(api, Cancel::from_params(&p, &rules)?),
                OpKind::Set => set::handle(api, Set::from_params(&p, &rules)?),
            });
            match answer {
                Ok(Answer::Renewed(inst, Standing::Newer)) => LineResult::Conflict(inst),
                Ok(_) => LineResult::Done,
                Err(e) => LineResult::Failed(e.ecode()),
            }
        })
        .collect();
    Ok(Answer::Batch {
        lines: results,
        echo_budget: ECHO_FLOOR_BYTES + ECHO_PER_REQUEST_BYTE * req.body.len(),
    })
}
