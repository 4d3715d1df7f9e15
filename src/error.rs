//! The crate's one error type. Every layer reports failures as an [`Error`] with a [`Kind`] and a
//! context message; [`Error::ecode`] and [`Error::http_status`] are the only mapping from an error
//! to what goes on the wire.

use std::borrow::Cow;
use std::fmt;

/// What went wrong, in the terms the protocol answers with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A missing or unparsable parameter: ecode -400.
    BadParam,
    /// A request over one of the configured limits (`[limits]`): ecode -400.
    Limit,
    /// The app, zone or instance does not exist: ecode -404.
    NotFound,
    /// Nothing changed since the client's timestamp: ecode -304.
    NotModified,
    /// Reads refused during start-up protection: HTTP 503, ecode -500.
    Protected,
    /// The caller lacks the token or address the action needs: HTTP 403, ecode -403.
    Forbidden,
    /// A server-wide limit is reached (the message names it): HTTP 503, ecode -503.
    Overloaded,
}

/// An error with its kind and a human-readable context (sent as the envelope's `message`).
#[derive(Debug, Clone)]
pub struct Error {
    pub kind: Kind,
    pub context: Cow<'static, str>,
}

impl Error {
    pub fn new(kind: Kind, context: impl Into<Cow<'static, str>>) -> Self {
        Error {
            kind,
            context: context.into(),
        }
    }

    pub fn bad_param(context: impl Into<Cow<'static, str>>) -> Self {
        Self::new(Kind::BadParam, context)
    }

    pub fn limit(context: impl Into<Cow<'static, str>>) -> Self {
        Self::new(Kind::Limit, context)
    }

    pub fn not_found(context: impl Into<Cow<'static, str>>) -> Self {
        Self::new(Kind::NotFound, context)
    }

    /// The `code` field of the JSON envelope.
    pub fn ecode(&self) -> i32 {
        match self.kind {
            Kind::BadParam | Kind::Limit => -400,
            Kind::NotFound => -404,
            Kind::NotModified => -304,
            Kind::Protected => -500,
            Kind::Forbidden => -403,
            Kind::Overloaded => -503,
        }
    }

    /// The HTTP status line: business outcomes are 200; start-up protection and a reached
    /// server limit are 503.
    pub fn http_status(&self) -> u16 {
        match self.kind {
            Kind::Protected | Kind::Overloaded => 503,
            Kind::Forbidden => 403,
            _ => 200,
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}: {}", self.kind, self.context)
    }
}

impl std::error::Error for Error {}

/// Result with the crate's error.
pub type Result<T> = std::result::Result<T, Error>;
