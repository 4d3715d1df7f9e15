//! HTTP/1.1 on top of raw sockets: request framing ([`request`]), response writing
//! ([`response`]), the per-connection loop ([`conn`]) that feeds requests to a
//! [`conn::Service`], the connections' deadlines ([`timers`]), and the small client peers are
//! called with ([`client`]). Nothing here knows the discovery API.

pub mod client;
pub mod conn;
pub mod request;
pub mod response;
pub mod timers;
