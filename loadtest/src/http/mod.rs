//! The load tools' HTTP/1.1: one parser and the connections that use it.
//!
//! - `parse`: the only HTTP/1.1 parser in the load tools. It frames answers
//!   for `loadgen` (status line, `Content-Length`, chunked, until close,
//!   `Connection`) and requests for `ceiling` (head and `Content-Length`).
//! - `reader`: the receive buffer of one connection; it feeds `parse` and
//!   hands out one answer at a time, so pipelined answers stay in order.
//! - `conn`: keep-alive client connections on a monoio runtime.
//! - `blocking`: one-shot blocking requests for control steps.
//!
//! Nothing here panics on network input: a malformed answer is an
//! `io::Error`, and the caller drops the connection.

mod blocking;
mod conn;
pub mod parse;
mod reader;

pub use blocking::blocking_request;
pub use conn::{set_uring, uring, Conn};
pub use parse::body_code;
pub use reader::{Reader, Resp};
