//! The crate's one error type: what went wrong on which node, with the ecode or HTTP status the
//! server answered, so a caller can tell "not registered" (-404) from "node unreachable".

use std::fmt;
use std::time::Duration;

/// Business codes (`code` of the answer envelope) the client acts on.
pub(crate) mod ecode {
    /// Not modified: a long-poll reached its deadline without a change.
    pub const NOT_MODIFIED: i64 = -304;
    /// Nothing found: unknown app or instance (a renew answered this must register again).
    pub const NOTHING_FOUND: i64 = -404;
    /// Server error.
    pub const SERVER_ERROR: i64 = -500;
}

/// Everything a call of this crate can fail with.
#[derive(Debug)]
#[non_exhaustive]
pub enum Error {
    /// The node answered HTTP 200 with a non-zero `code` in the envelope: -400 bad request,
    /// -404 nothing found, -409 conflict, -500 server error.
    Code {
        /// The node (`host:port`) that answered.
        node: String,
        /// The envelope's `code`.
        code: i64,
        /// The envelope's `message`.
        message: String,
    },
    /// The node answered an HTTP status other than 200 (503 during start-up protection, 413,
    /// 404 for a path the server does not know, 401/403 from a node that checks tokens).
    Http {
        /// The node (`host:port`) that answered.
        node: String,
        /// The HTTP status.
        status: u16,
        /// The start of the answer's body.
        body: String,
    },
    /// The node could not be reached, or the connection failed before a whole answer came.
    Transport {
        /// The node (`host:port`) that was called.
        node: String,
        /// What the HTTP client reported.
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// No whole answer came within the timeout.
    Timeout {
        /// The node (`host:port`) that was called.
        node: String,
        /// The timeout that passed.
        after: Duration,
    },
    /// The answer was not the JSON the call expects.
    Decode {
        /// The node (`host:port`) that answered.
        node: String,
        /// What did not fit.
        detail: String,
    },
    /// The configuration or the arguments of a call cannot work (no seed node, empty appid...).
    Config(String),
    /// This client already keeps a registration of this appid alive.
    AlreadyRegistered(String),
    /// The client was shut down.
    Closed,
}

/// Result of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// The envelope `code` the server answered, if it answered one.
    pub fn ecode(&self) -> Option<i64> {
        match self {
            Error::Code { code, .. } => Some(*code),
            _ => None,
        }
    }

    /// The HTTP status the server answered, if it was not 200.
    pub fn http_status(&self) -> Option<u16> {
        match self {
            Error::Http { status, .. } => Some(*status),
            _ => None,
        }
    }

    /// True for a -404 answer: unknown app, zone or instance.
    pub fn is_not_found(&self) -> bool {
        self.ecode() == Some(ecode::NOTHING_FOUND)
    }

    /// The node the failed call went to, if one was called.
    pub fn node(&self) -> Option<&str> {
        match self {
            Error::Code { node, .. }
            | Error::Http { node, .. }
            | Error::Transport { node, .. }
            | Error::Timeout { node, .. }
            | Error::Decode { node, .. } => Some(node),
            _ => None,
        }
    }

    /// Whether another node may do better: the node is unreachable, slow, broken or not ready
    /// (503 in start-up protection, -500). A business answer (-400, -404, -409) is the same on
    /// every node and is returned as it is.
    pub(crate) fn is_node_failure(&self) -> bool {
        match self {
            Error::Transport { .. } | Error::Timeout { .. } | Error::Decode { .. } => true,
            Error::Http { .. } => true,
            Error::Code { code, .. } => *code == ecode::SERVER_ERROR,
            Error::Config(_) | Error::AlreadyRegistered(_) | Error::Closed => false,
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Code {
                node,
                code,
                message,
            } => write!(f, "discovery node {node} answered code {code}: {message}"),
            Error::Http { node, status, body } => {
                write!(f, "discovery node {node} answered HTTP {status}: {body}")
            }
            Error::Transport { node, source } => {
                write!(f, "discovery node {node} unreachable: {source}")
            }
            Error::Timeout { node, after } => {
                write!(f, "discovery node {node} did not answer within {after:?}")
            }
            Error::Decode { node, detail } => {
                write!(
                    f,
                    "discovery node {node} sent an answer that does not decode: {detail}"
                )
            }
            Error::Config(what) => write!(f, "discovery client: {what}"),
            Error::AlreadyRegistered(appid) => {
                write!(
                    f,
                    "discovery client: {appid} is already registered by this client"
                )
            }
            Error::Closed => write!(f, "discovery client: shut down"),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Transport { source, .. } => Some(source.as_ref()),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn business_answers_do_not_fail_over_but_broken_nodes_do() {
        let code = |code| Error::Code {
            node: "n".into(),
            code,
            message: String::new(),
        };
        assert!(!code(-400).is_node_failure());
        assert!(!code(-404).is_node_failure());
        assert!(!code(-409).is_node_failure());
        assert!(code(-500).is_node_failure());
        let http = Error::Http {
            node: "n".into(),
            status: 503,
            body: String::new(),
        };
        assert!(http.is_node_failure());
        assert_eq!(http.http_status(), Some(503));
        assert_eq!(http.ecode(), None);
        assert!(code(-404).is_not_found());
        assert_eq!(code(-404).node(), Some("n"));
        assert!(!Error::Closed.is_node_failure());
    }
}
