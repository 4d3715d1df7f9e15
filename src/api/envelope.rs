//! The JSON envelope every `/discovery/*` answer wears: `{"code","message","ttl":1,"data"...}`,
//! written straight into the connection's output buffer.

use crate::error::Error;
use crate::http::response::{self, Framing, Open};
use crate::json;

const JSON: &str = "application/json; charset=utf-8";

/// An envelope being written; add fields, then [`Envelope::end`].
pub(crate) struct Envelope<'a> {
    out: &'a mut Vec<u8>,
    open: Open,
}

impl<'a> Envelope<'a> {
    /// Writes the HTTP head and `{"code":..,"message":..,"ttl":1`.
    pub(crate) fn begin(
        out: &'a mut Vec<u8>,
        framing: Framing,
        status: u16,
        code: i32,
        message: &str,
    ) -> Self {
        let open = response::begin(out, status, JSON, framing);
        out.extend_from_slice(b"{\"code\":");
        json::write_int(out, code);
        out.extend_from_slice(b",\"message\":");
        json::write_str(out, message);
        out.extend_from_slice(b",\"ttl\":1");
        Envelope { out, open }
    }

    /// Starts field `name`; the caller writes its JSON value into the returned buffer.
    pub(crate) fn field(&mut self, name: &str) -> &mut Vec<u8> {
        self.out.push(b',');
        json::write_str(self.out, name);
        self.out.push(b':');
        self.out
    }

    /// Closes the object and fills in the Content-Length.
    pub(crate) fn end(self) {
        self.out.push(b'}');
        self.open.finish(self.out);
    }
}

/// `{"code":0,"message":"0","ttl":1}`.
pub(crate) fn ok(out: &mut Vec<u8>, framing: Framing) {
    Envelope::begin(out, framing, 200, 0, "0").end();
}

/// `{"code":0,...,"data":<data>}` with already encoded `data`.
pub fn ok_data(out: &mut Vec<u8>, framing: Framing, data: &[u8]) {
    // Head and envelope take about 220 bytes: one allocation for the whole answer.
    out.reserve(data.len() + 256);
    let mut e = Envelope::begin(out, framing, 200, 0, "0");
    e.field("data").extend_from_slice(data);
    e.end();
}

/// The answer for an error: its ecode and message, HTTP 200 (or 503 under protection).
pub(crate) fn error(out: &mut Vec<u8>, framing: Framing, err: &Error) {
    Envelope::begin(out, framing, err.http_status(), err.ecode(), &err.context).end();
}
