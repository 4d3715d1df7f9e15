//! The wire messages: one file per message, each owning every form of it — decoding a client's
//! or peer's form ([`Params`]), encoding it as a form for a peer, decoding it from a peer's JSON
//! answer — and its validation, so a rule or a limit about a message is written once. It sits
//! between `api`/`cluster` (which act on messages) and `registry` (whose types they carry).

pub mod answer;
pub mod cancel;
pub mod fetch;
pub mod instance;
pub mod metadata;
pub mod params;
pub mod poll;
pub mod register;
pub mod renew;
pub mod replicate;
pub mod scheduler;
pub mod set;

use form_urlencoded::Serializer;
use simd_json::OwnedValue;

use crate::error::{Error, Result};
use crate::registry::instance::{STATUS_UP, STATUS_WAITING};
use params::Params;

/// Where a write came from, read from the original's `replication` and `from_zone` flags; it
/// decides where the write is forwarded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    /// A client: forward to this zone's nodes and to one node of each other zone.
    Client,
    /// A node of another zone (`from_zone`): forward inside this zone only.
    OtherZone,
    /// A node of this zone (`replication`): apply, never forward.
    Peer,
}

impl Origin {
    /// Reads `replication` and `from_zone`.
    pub fn from_params(p: &Params) -> Result<Origin> {
        let replication = p.bool("replication")?;
        let from_zone = p.bool("from_zone")?;
        Ok(match (replication, from_zone) {
            (true, _) => Origin::Peer,
            (false, true) => Origin::OtherZone,
            (false, false) => Origin::Client,
        })
    }
}

/// Which kind of peer a forwarded write goes to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Hop {
    /// A node of this zone: it applies the write and does not forward it.
    InZone,
    /// A node of another zone: it applies the write and forwards it inside its zone.
    OtherZone,
}

/// A peer form's start: inside the zone a forwarded write says `replication=true` (apply,
/// don't forward); to another zone `replication=false` (apply and forward inside that zone),
/// and always `from_zone=true` (never forward to further zones). Then the app's identity.
fn peer_form(
    hop: Hop,
    region: &str,
    zone: &str,
    env: &str,
    appid: &str,
) -> Serializer<'static, String> {
    let mut f = Serializer::new(String::with_capacity(256));
    f.append_pair(
        "replication",
        if hop == Hop::OtherZone {
            "false"
        } else {
            "true"
        },
    );
    f.append_pair("from_zone", "true");
    f.append_pair("region", region);
    f.append_pair("zone", zone);
    f.append_pair("env", env);
    f.append_pair("appid", appid);
    f
}

/// A decimal integer as a form value.
fn int(n: i64) -> String {
    itoa::Buffer::new().format(n).to_owned()
}

/// Parses a status that must be 1 (UP) or 2 (WAITING).
pub fn parse_status(text: &str) -> Result<u32> {
    match text.parse::<u32>() {
        Ok(s @ (STATUS_UP | STATUS_WAITING)) => Ok(s),
        _ => Err(Error::bad_param(format!(
            "status must be 1 (up) or 2 (waiting), got {text:?}"
        ))),
    }
}

/// A timestamp parameter; only positive values count (0 means "not sent" in the original's
/// clients).
pub fn timestamp(p: &Params, key: &str) -> Result<Option<i64>> {
    Ok(p.i64(key)?.filter(|t| *t > 0))
}

/// Parses JSON text (simd-json parses in place, so it works on a copy).
pub fn json_value(text: &[u8]) -> std::result::Result<OwnedValue, simd_json::Error> {
    let mut bytes = text.to_vec();
    simd_json::to_owned_value(&mut bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origin_follows_the_flags() {
        let o = |q: &str| Origin::from_params(&Params::parse(q.as_bytes(), b""));
        assert_eq!(o("").unwrap(), Origin::Client);
        assert_eq!(o("from_zone=true").unwrap(), Origin::OtherZone);
        assert_eq!(o("replication=1&from_zone=true").unwrap(), Origin::Peer);
        assert_eq!(o("replication=true").unwrap(), Origin::Peer);
        assert_eq!(o("replication=yes").unwrap_err().ecode(), -400);
    }

    #[test]
    fn status_must_be_up_or_waiting() {
        assert_eq!(parse_status("1").unwrap(), 1);
        assert_eq!(parse_status("2").unwrap(), 2);
        for bad in ["0", "3", "-1", "x"] {
            assert_eq!(parse_status(bad).unwrap_err().ecode(), -400);
        }
    }
}
