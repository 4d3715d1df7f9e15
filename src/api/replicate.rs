//! POST `/discovery/replicate`: our extension for replication between two nodes of this
//! implementation — many replicated writes in one request. The body is one op per line, each
//! line the form an op would be sent with on its own plus `op=register|renew|cancel|set`. The
//! answer's `data` is an array with one `{"code":N[,"data":instance]}` per line, in order, so the
//! sender handles -404 and -409 per op exactly as with single requests. Go nodes never receive
//! it: a node sends it only to peers that named themselves `discovery-rs` in an answer.

use super::envelope::Envelope;
use super::params::Params;
use super::{cancel, register, renew, set};
use crate::error::{Error, Result};
use crate::http::response::Framing;
use crate::node::Node;
use crate::registry::json;

/// Handles a batch of replicated ops.
pub fn handle(node: &Node, body: &[u8], now: i64, out: &mut Vec<u8>, framing: Framing) {
    let mut e = Envelope::begin(out, framing, 200, 0, "0");
    let data = e.field("data");
    data.push(b'[');
    let lines = body.split(|b| *b == b'\n').filter(|l| !l.is_empty());
    for (n, line) in lines.enumerate() {
        if n > 0 {
            data.push(b',');
        }
        let p = Params::parse(b"", line);
        let result: Result<Option<renew::Renewed>> = match p.get("op") {
            Some("register") => register::handle(node, &p, now).map(|()| None),
            Some("renew") => renew::apply(node, &p, now).map(Some),
            Some("cancel") => cancel::handle(node, &p, now).map(|()| None),
            Some("set") => set::handle(node, &p, now).map(|()| None),
            _ => Err(Error::bad_param(
                "op must be register, renew, cancel or set",
            )),
        };
        data.extend_from_slice(b"{\"code\":");
        match result {
            Ok(None) => data.push(b'0'),
            Ok(Some(r)) => {
                json::write_int(data, renew::code(&r).0);
                data.extend_from_slice(b",\"data\":");
                json::write_instance(data, &r.inst);
            }
            Err(err) => json::write_int(data, err.ecode()),
        }
        data.push(b'}');
    }
    data.push(b']');
    e.end();
}
