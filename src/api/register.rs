//! POST `/discovery/register`: add or replace an instance, and forward it.

use super::answer::Answer;
use super::context::Api;
use crate::clock;
use crate::cluster::op::Op;
use crate::error::Result;
use crate::wire::register::Register;

/// Handles a register.
pub(crate) fn handle<'a>(api: &Api, req: Register) -> Result<Answer<'a>> {
    let inst = api.registry.register(&req.reg, clock::now_ns())?;
    api.cluster.forward(Op::Register(inst), req.origin);
    Ok(Answer::Ok)
}
