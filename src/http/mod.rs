//! HTTP/1.1 on top of raw sockets: request framing ([`request`]), response writing
//! ([`response`]) and the per-connection loop ([`conn`]) that feeds requests to a [`conn::Service`].
//! Nothing here knows the discovery API.

pub mod conn;
pub mod request;
pub mod response;
