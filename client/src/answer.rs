//! Decoding of the answer envelope `{"code","message","ttl","data","error"}` every
//! `/discovery/*` endpoint sends: a non-zero `code` becomes [`Error::Code`], `data` is decoded
//! only on success, and the long-poll's -304 and `error: {"-404": [...]}` are read out.

use std::collections::BTreeMap;

use serde::de::{DeserializeOwned, IgnoredAny};
use serde::Deserialize;
use serde_json::value::RawValue;

use crate::error::{ecode, Error, Result};
use crate::model::InstanceInfo;

/// The envelope with `data` left undecoded until the code says what it holds.
#[derive(Deserialize)]
struct Envelope<'a> {
    code: i64,
    #[serde(default)]
    message: String,
    #[serde(borrow, default)]
    data: Option<&'a RawValue>,
    #[serde(default)]
    error: Option<serde_json::Value>,
}

fn envelope<'a>(node: &str, body: &'a [u8]) -> Result<Envelope<'a>> {
    serde_json::from_slice(body).map_err(|e| decode_error(node, &e, body))
}

fn decode_error(node: &str, e: &serde_json::Error, body: &[u8]) -> Error {
    const SHOWN: usize = 200;
    let start = String::from_utf8_lossy(&body[..body.len().min(SHOWN)]).into_owned();
    Error::Decode {
        node: node.to_string(),
        detail: format!("{e} in {start:?}"),
    }
}

fn code_error(node: &str, env: Envelope<'_>) -> Error {
    Error::Code {
        node: node.to_string(),
        code: env.code,
        message: env.message,
    }
}

fn data<T: DeserializeOwned>(node: &str, env: &Envelope<'_>, body: &[u8]) -> Result<T> {
    let raw = env.data.map_or("null", RawValue::get);
    serde_json::from_str(raw).map_err(|e| decode_error(node, &e, body))
}

/// A code-0 answer's `data` as `T`; any other code is an error.
pub(crate) fn ok<T: DeserializeOwned>(node: &str, body: &[u8]) -> Result<T> {
    let env = envelope(node, body)?;
    if env.code != 0 {
        return Err(code_error(node, env));
    }
    data(node, &env, body)
}

/// A code-0 answer whose `data`, if any, does not matter (register, cancel, set).
pub(crate) fn done(node: &str, body: &[u8]) -> Result<()> {
    ok::<Option<IgnoredAny>>(node, body).map(drop)
}

/// What a long-poll brought.
#[derive(Debug)]
pub(crate) struct Polled {
    /// The watched apps that changed, with their UP instances.
    pub apps: BTreeMap<String, InstanceInfo>,
    /// Watched apps the node does not know (`error: {"-404": [...]}`).
    pub missing: Vec<String>,
}

/// A `polls` answer: `None` for -304 (the hold ended without a change).
pub(crate) fn polls(node: &str, body: &[u8]) -> Result<Option<Polled>> {
    let env = envelope(node, body)?;
    match env.code {
        0 => {}
        ecode::NOT_MODIFIED => return Ok(None),
        _ => return Err(code_error(node, env)),
    }
    let apps: Option<BTreeMap<String, InstanceInfo>> = data(node, &env, body)?;
    // The Go original sends `"-404": null` when every app is known.
    let missing = env
        .error
        .as_ref()
        .and_then(|e| e.get("-404"))
        .and_then(|list| list.as_array())
        .map(|list| {
            list.iter()
                .filter_map(|a| a.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default();
    Ok(Some(Polled {
        apps: apps.unwrap_or_default(),
        missing,
    }))
}
