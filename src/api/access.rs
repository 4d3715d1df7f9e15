//! Who may do what: the credentials a request brings (a bearer token, its source address) held
//! against `[auth]`. Every route needs one of four [`Need`]s; `docs/SECURITY.md` has the table.
//!
//! A peer is recognised by the peer token, or by its source address: one of `[auth] peerAddrs`,
//! or — when neither is configured, the Go-compatible default — one of the addresses the known
//! peers resolve to. Never by anything a client could simply claim (a header, a user agent).
//! Tokens are compared in constant time.

use std::net::IpAddr;

use ipnet::IpNet;
use subtle::ConstantTimeEq;

use crate::cluster::Cluster;
use crate::config::AuthConfig;
use crate::error::{Error, Kind, Result};

/// What a route asks of the caller.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Need {
    /// Anyone: the dashboard's page and assets, which hold no data.
    Open,
    /// Peer-only: replication, writes carrying `replication`/`from_zone`, `infra.discovery`.
    Peer,
    /// `set`, `fetch/all`, `/metrics`: the admin token when one is configured, else `then`.
    Admin { then: Level },
    /// One of the client levels.
    Client(Level),
}

/// The levels a client token grants; each includes the ones below it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Level {
    Read,
    Write,
}

/// What a request presents.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Credentials<'a> {
    /// From `Authorization: Bearer`, else the `token` parameter.
    pub(crate) token: Option<&'a str>,
    pub(crate) remote: IpAddr,
}

/// `[auth]`, ready to check requests against.
#[derive(Debug)]
pub(crate) struct Access {
    auth: AuthConfig,
}

fn matches(given: Option<&str>, want: Option<&String>) -> bool {
    match (given, want) {
        (Some(g), Some(w)) => bool::from(g.as_bytes().ct_eq(w.as_bytes())),
        _ => false,
    }
}

fn within(nets: &[IpNet], ip: IpAddr) -> bool {
    nets.iter().any(|n| n.contains(&ip))
}

impl Access {
    pub(crate) fn new(auth: AuthConfig) -> Access {
        Access { auth }
    }

    /// True when an admin token is configured.
    pub(crate) fn admin_configured(&self) -> bool {
        self.auth.admin_token.is_some()
    }

    /// Refuses (403, ecode -403) a request that lacks what `need` asks.
    pub(crate) fn check(&self, need: Need, c: Credentials<'_>, cluster: &Cluster) -> Result<()> {
        if self.allows(need, c, cluster) {
            return Ok(());
        }
        Err(Error::new(Kind::Forbidden, self.missing(need)))
    }

    fn allows(&self, need: Need, c: Credentials<'_>, cluster: &Cluster) -> bool {
        let a = &self.auth;
        match need {
            Need::Open => true,
            Need::Peer => self.is_peer(c, cluster),
            Need::Admin { then } => match &a.admin_token {
                Some(_) => matches(c.token, a.admin_token.as_ref()) || self.is_peer(c, cluster),
                None => self.allows(Need::Client(then), c, cluster),
            },
            Need::Client(level) => {
                let open = match level {
                    Level::Read => a.read_token.is_none(),
                    Level::Write => a.write_token.is_none() && a.write_from.is_empty(),
                };
                open || matches(c.token, a.admin_token.as_ref())
                    || matches(c.token, a.write_token.as_ref())
                    || (level == Level::Read && matches(c.token, a.read_token.as_ref()))
                    || (level == Level::Write && within(&a.write_from, c.remote))
                    || self.is_peer(c, cluster)
            }
        }
    }

    fn is_peer(&self, c: Credentials<'_>, cluster: &Cluster) -> bool {
        let a = &self.auth;
        if matches(c.token, a.peer_token.as_ref()) {
            return true;
        }
        match &a.peer_addrs {
            Some(nets) => within(nets, c.remote),
            None if a.peer_token.is_none() => cluster.is_peer_addr(c.remote),
            None => false,
        }
    }

    /// What a refused request should have brought.
    fn missing(&self, need: Need) -> String {
        let a = &self.auth;
        match need {
            Need::Open => String::new(),
            Need::Peer => match (&a.peer_token, &a.peer_addrs) {
                (Some(_), Some(_)) => "peer-only action: send the peer token (Authorization: Bearer) or call from an address in [auth] peerAddrs".into(),
                (Some(_), None) => "peer-only action: send the peer token (Authorization: Bearer)".into(),
                (None, Some(_)) => "peer-only action: call from an address in [auth] peerAddrs".into(),
                (None, None) => "peer-only action: only the cluster's known nodes may do this (see [auth] in docs/SECURITY.md)".into(),
            },
            Need::Admin { then } if a.admin_token.is_none() => self.missing(Need::Client(then)),
            Need::Admin { .. } => "admin token required (Authorization: Bearer or token=)".into(),
            Need::Client(Level::Read) => "read token required (Authorization: Bearer or token=)".into(),
            Need::Client(Level::Write) => match &a.write_token {
                Some(_) => "write token required (Authorization: Bearer or token=)".into(),
                None => "writes are only accepted from [auth] writeFrom addresses".into(),
            },
        }
    }
}
