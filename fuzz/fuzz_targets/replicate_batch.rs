//! A `/discovery/replicate` batch body as the handler reads it: its lines, each decoded as a
//! form, its op and the op's message. No panic, one decoded line per non-empty input line, and
//! within a time budget linear in the input.

#![no_main]

use std::time::{Duration, Instant};

use discovery::wire::cancel::Cancel;
use discovery::wire::register::Register;
use discovery::wire::renew::Renew;
use discovery::wire::replicate::{lines, OpKind};
use discovery::wire::set::Set;
use discovery::wire::{Limits, Rules};
use libfuzzer_sys::fuzz_target;

/// The rules the server checks writes against; a fixed clock far from any limit.
const RULES: Rules = Rules {
    now_ns: 1_700_000_000_000_000_000,
    max_skew_ns: 300_000_000_000,
    limits: Limits::DEFAULT,
};

/// Decodes every line as the handler does; returns how many it decoded.
fn work(data: &[u8]) -> usize {
    let mut decoded = 0;
    for line in lines(data) {
        decoded += 1;
        let Ok(p) = line else { continue };
        let _ = OpKind::from_params(&p).map(|kind| match kind {
            OpKind::Register => Register::from_params(&p, &RULES).is_ok(),
            OpKind::Renew => Renew::from_params(&p, &RULES).is_ok(),
            OpKind::Cancel => Cancel::from_params(&p, &RULES).is_ok(),
            OpKind::Set => Set::from_params(&p, &RULES).is_ok(),
        });
    }
    decoded
}

fuzz_target!(|data: &[u8]| {
    let budget = Duration::from_millis(100) + Duration::from_micros(5) * data.len() as u32;
    let started = Instant::now();
    let decoded = work(data);
    let mut took = started.elapsed();
    if took >= budget {
        // A stall of a loaded machine is not twice in a row; a slow path is.
        let again = Instant::now();
        work(data);
        took = took.min(again.elapsed());
    }
    assert!(took < budget, "{} bytes took {took:?}", data.len());
    let expected = data
        .split(|b| *b == b'\n')
        .filter(|l| !l.is_empty())
        .count();
    assert_eq!(decoded, expected);
});
