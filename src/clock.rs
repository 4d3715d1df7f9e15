//! The one time source of the server. Every timestamp on the wire is Unix time in nanoseconds;
//! the registry takes `now` as an argument everywhere, so tests drive it with any value they like
//! and only the edges of the server (handlers, housekeeping) read the real clock here.

use std::time::{SystemTime, UNIX_EPOCH};

/// Unix time in nanoseconds, as the protocol's `*_timestamp` fields carry it.
pub(crate) fn now_ns() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_nanos()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}
