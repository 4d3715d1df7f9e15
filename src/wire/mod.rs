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
pub mod snapshot;

use percent_encoding::{utf8_percent_encode, AsciiSet, CONTROLS};
use simd_json::OwnedValue;

use crate::error::{Error, Result};
use crate::registry::instance::{MetadataLimit, STATUS_UP, STATUS_WAITING};
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
fn peer_form(hop: Hop, region: &str, zone: &str, env: &str, appid: &str) -> PeerForm {
    let mut f = PeerForm(String::with_capacity(256));
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

/// What a peer form escapes: only what would change the form's meaning (`%`, `&`, `=`, `+`,
/// `#`, space, controls — a newline separates batch lines; `;`, which Go's `ParseQuery` refuses
/// in a pair) and bytes outside ASCII. JSON
/// metadata then travels nearly as large as it is, where full form-escaping tripled it.
const FORM_ESCAPES: &AsciiSet = &CONTROLS
    .add(b' ')
    .add(b'%')
    .add(b'&')
    .add(b'=')
    .add(b'+')
    .add(b'#')
    .add(b';');

/// A form being written for a peer.
struct PeerForm(String);

impl PeerForm {
    fn append_pair(&mut self, key: &str, value: &str) {
        if !self.0.is_empty() {
            self.0.push('&');
        }
        self.0.push_str(key);
        self.0.push('=');
        self.0.extend(utf8_percent_encode(value, FORM_ESCAPES));
    }

    fn finish(self) -> String {
        self.0
    }
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

/// What a write is checked against besides its own form: this node's clock and how far ahead of
/// it a sender's timestamps may be. A timestamp from the future would otherwise win every
/// comparison (a hijacked instance) or freeze an app's `latest_timestamp` (watchers that never
/// wake).
#[derive(Debug, Clone, Copy)]
pub struct Rules {
    pub now_ns: i64,
    pub max_skew_ns: i64,
    pub limits: Limits,
}

/// The size limits of messages (`[limits]`); each refusal is a -400 naming its key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Apps named by one fetchs or polls (`maxAppids`).
    pub max_appids: usize,
    /// Addresses of one instance (`maxAddrs`).
    pub max_addrs: usize,
    /// An instance's metadata, on register and after a set's merge.
    pub metadata: MetadataLimit,
    /// Lines of one replicate batch (`maxBatchLines`).
    pub max_batch_lines: usize,
    /// The body a peer takes (`httpServer.maxBody`, the same on every node): a write whose
    /// forwarded form would be larger is refused up front rather than lost on the way.
    pub max_body: usize,
}

impl Limits {
    /// The defaults of `[limits]`.
    pub const DEFAULT: Limits = Limits {
        max_appids: 10_000,
        max_addrs: 64,
        metadata: MetadataLimit {
            bytes: 64 * 1024,
            keys: 256,
        },
        max_batch_lines: 1024,
        max_body: 1 << 20,
    };

    /// The limits `[limits]` configures.
    pub(crate) fn from_config(c: &crate::config::LimitsConfig, max_body: usize) -> Limits {
        Limits {
            max_appids: c.max_appids,
            max_addrs: c.max_addrs,
            metadata: MetadataLimit {
                bytes: c.max_metadata_bytes,
                keys: c.max_metadata_keys,
            },
            max_batch_lines: c.max_batch_lines,
            max_body,
        }
    }

    /// Refuses a list of `n` appids above the limit.
    pub fn appids(&self, n: usize) -> Result<()> {
        if n > self.max_appids {
            return Err(Error::limit(format!(
                "{n} appids, above limits.maxAppids ({})",
                self.max_appids
            )));
        }
        Ok(())
    }
}

impl Rules {
    /// Refuses `ts` (named `key`) when it is more than the allowed skew ahead of now.
    pub fn not_ahead(&self, key: &str, ts: i64) -> Result<i64> {
        let limit = self.now_ns.saturating_add(self.max_skew_ns);
        if ts > limit {
            let ahead_s = (ts as i128 - self.now_ns as i128) / 1_000_000_000;
            return Err(Error::bad_param(format!(
                "{key} is {ahead_s}s ahead of this node's clock (maxClockSkew is {}s)",
                self.max_skew_ns / 1_000_000_000
            )));
        }
        Ok(ts)
    }

    /// A timestamp parameter, checked; see [`timestamp`].
    pub fn timestamp(&self, p: &Params, key: &str) -> Result<Option<i64>> {
        timestamp(p, key)?
            .map(|t| self.not_ahead(key, t))
            .transpose()
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
        let o = |q: &str| Origin::from_params(&Params::parse(q.as_bytes(), b"").unwrap());
        assert_eq!(o("").unwrap(), Origin::Client);
        assert_eq!(o("from_zone=true").unwrap(), Origin::OtherZone);
        assert_eq!(o("replication=1&from_zone=true").unwrap(), Origin::Peer);
        assert_eq!(o("replication=true").unwrap(), Origin::Peer);
        assert_eq!(o("replication=yes").unwrap_err().ecode(), -400);
    }

    #[test]
    fn timestamps_ahead_of_the_skew_are_refused() {
        const S: i64 = 1_000_000_000;
        let rules = Rules {
            now_ns: 1_000 * S,
            max_skew_ns: 300 * S,
            limits: Limits::DEFAULT,
        };
        // Each form is leaked for the test's lifetime: Params borrows what it parses.
        let p = |v: &str| {
            let form: &'static str = format!("dirty_timestamp={v}").leak();
            Params::parse(form.as_bytes(), b"").unwrap()
        };
        assert_eq!(
            rules
                .timestamp(&p(&(1_300 * S).to_string()), "dirty_timestamp")
                .unwrap(),
            Some(1_300 * S)
        );
        let e = rules
            .timestamp(&p(&(1_301 * S).to_string()), "dirty_timestamp")
            .unwrap_err();
        assert_eq!(e.ecode(), -400);
        assert!(
            e.context.starts_with("dirty_timestamp is 301s ahead"),
            "{}",
            e.context
        );
        assert!(rules
            .timestamp(&p(&i64::MAX.to_string()), "dirty_timestamp")
            .is_err());
        assert_eq!(rules.timestamp(&p("-5"), "dirty_timestamp").unwrap(), None);
        assert!(rules.timestamp(&p("soon"), "dirty_timestamp").is_err());
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
