//! `/discovery/replicate`: our extension for replication between two nodes of this
//! implementation — many replicated writes in one request. The body is one op per line, each
//! line the form the op would be sent with on its own, after `op=register|renew|cancel|set&`.
//! The answer's `data` is an array with one `{"code":N[,"data":instance]}` per line, in order,
//! so the sender handles -404 and -409 per op exactly as with single requests. Go nodes never
//! receive it: a node sends it only to peers that named themselves ours in an answer.

use simd_json::prelude::*;

use super::json_value;
use super::params::Params;
use crate::error::{Error, Result};

/// The four replicated writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OpKind {
    Register,
    Renew,
    Cancel,
    Set,
}

impl OpKind {
    /// The op's name in a batch line.
    pub(crate) fn name(self) -> &'static str {
        match self {
            OpKind::Register => "register",
            OpKind::Renew => "renew",
            OpKind::Cancel => "cancel",
            OpKind::Set => "set",
        }
    }

    /// The endpoint the op is sent to on its own.
    pub(crate) fn path(self) -> &'static str {
        match self {
            OpKind::Register => "/discovery/register",
            OpKind::Renew => "/discovery/renew",
            OpKind::Cancel => "/discovery/cancel",
            OpKind::Set => "/discovery/set",
        }
    }

    /// Reads a batch line's `op`.
    pub fn from_params(p: &Params) -> Result<OpKind> {
        match p.get("op") {
            Some("register") => Ok(OpKind::Register),
            Some("renew") => Ok(OpKind::Renew),
            Some("cancel") => Ok(OpKind::Cancel),
            Some("set") => Ok(OpKind::Set),
            _ => Err(Error::bad_param(
                "op must be register, renew, cancel or set",
            )),
        }
    }
}

/// Appends one op's line (its single-request `form`) to a batch body.
pub(crate) fn push_line(body: &mut String, kind: OpKind, form: &str) {
    body.push_str("op=");
    body.push_str(kind.name());
    body.push('&');
    body.push_str(form);
    body.push('\n');
}

/// The lines of a batch body, each decoded as a form.
pub fn lines(body: &[u8]) -> impl Iterator<Item = Result<Params<'_>>> + '_ {
    body.split(|b| *b == b'\n')
        .filter(|l| !l.is_empty())
        .map(|line| Params::parse(b"", line))
}

/// The per-op results of a batch answer: each op's code and raw `data`. An answer that is not
/// JSON, or has no `data` array, yields no results.
pub fn decode_answer(body: &[u8]) -> Vec<(i64, Option<Vec<u8>>)> {
    let Ok(v) = json_value(body) else {
        return Vec::new();
    };
    v.get("data")
        .and_then(|d| d.as_array())
        .map(|items| {
            items
                .iter()
                .map(|item| {
                    let code = item.get("code").and_then(|c| c.as_i64()).unwrap_or(-500);
                    let data = item.get("data").and_then(|d| simd_json::to_vec(d).ok());
                    (code, data)
                })
                .collect()
        })
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_round_trip() {
        let mut body = String::new();
        push_line(&mut body, OpKind::Renew, "appid=a&hostname=h");
        push_line(&mut body, OpKind::Cancel, "appid=b");
        let kinds: Vec<OpKind> = lines(body.as_bytes())
            .map(|p| OpKind::from_params(&p.unwrap()).unwrap())
            .collect();
        assert_eq!(kinds, [OpKind::Renew, OpKind::Cancel]);
        let p = lines(b"op=nope\n").next().unwrap().unwrap();
        assert_eq!(OpKind::from_params(&p).unwrap_err().ecode(), -400);
    }

    #[test]
    fn answer_results_in_order() {
        let r = decode_answer(br#"{"code":0,"data":[{"code":0},{"code":-409,"data":{"x":1}}]}"#);
        assert_eq!(r.len(), 2);
        assert_eq!(r[1].0, -409);
        assert!(decode_answer(b"junk").is_empty());
    }
}
