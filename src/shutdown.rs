//! Shutdown as a value: the signal thread triggers it, the housekeeping loop sleeps on it, and
//! `server::run` turns it into "stop accepting, answer parked polls, cancel self, exit".

use std::sync::{Condvar, Mutex};
use std::time::Duration;

/// A one-way switch from running to shutting down, with a wait that wakes on the switch.
#[derive(Debug, Default)]
pub struct Shutdown {
    triggered: Mutex<bool>,
    changed: Condvar,
}

impl Shutdown {
    /// A switch in the running position.
    pub fn new() -> Shutdown {
        Shutdown::default()
    }

    /// Starts the shutdown (idempotent).
    pub fn trigger(&self) {
        *self.triggered.lock().unwrap_or_else(|e| e.into_inner()) = true;
        self.changed.notify_all();
    }

    /// True once triggered.
    pub fn is_triggered(&self) -> bool {
        *self.triggered.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Sleeps up to `timeout`; returns true at once if shutdown was (or gets) triggered.
    pub fn wait(&self, timeout: Duration) -> bool {
        let guard = self.triggered.lock().unwrap_or_else(|e| e.into_inner());
        let (guard, _) = self
            .changed
            .wait_timeout_while(guard, timeout, |t| !*t)
            .unwrap_or_else(|e| e.into_inner());
        *guard
    }
}
