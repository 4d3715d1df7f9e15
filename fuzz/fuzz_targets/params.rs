//! Form parameters: `Params` over a query and a body, every accessor, and every message a
//! client or peer sends built from them, within a time budget per input that grows linearly
//! with its size (a quadratic path blows it on large inputs: run with a large `-max_len`). An
//! input over budget is timed again before it counts, so a stall of the machine is no finding.
//!
//! Input: byte 0 says where the query ends and the body starts.

#![no_main]

use std::time::{Duration, Instant};

use discovery::wire::cancel::Cancel;
use discovery::wire::fetch::{Fetch, Fetchs};
use discovery::wire::params::Params;
use discovery::wire::poll::{Poll, PollKind};
use discovery::wire::register::Register;
use discovery::wire::renew::Renew;
use discovery::wire::replicate::OpKind;
use discovery::wire::set::Set;
use discovery::wire::{Limits, Rules};
use libfuzzer_sys::fuzz_target;

const KEYS: [&str; 12] = [
    "appid",
    "env",
    "zone",
    "hostname",
    "addrs",
    "metadata",
    "status",
    "latest_timestamp",
    "dirtytimestamp",
    "replication",
    "version",
    "op",
];

/// The rules the server checks writes against; a fixed clock far from any limit.
const RULES: Rules = Rules {
    now_ns: 1_700_000_000_000_000_000,
    max_skew_ns: 300_000_000_000,
    limits: Limits::DEFAULT,
};

/// Decodes the input the way the server does and reads every parameter.
fn work(data: &[u8]) {
    let Some((&cut, rest)) = data.split_first() else {
        return;
    };
    let cut = (usize::from(cut) * rest.len() / 255).min(rest.len());
    let (query, body) = rest.split_at(cut);
    let Ok(p) = Params::parse(query, body) else {
        return;
    };
    for key in KEYS {
        let _ = p.get(key);
        let _ = p.required(key);
        let _ = p.list(key);
        let _ = p.unique_list(key);
        let _ = p.all(key);
        let _ = p.bool(key);
        let _ = p.i64(key);
        let _ = p.i64_list(key);
    }
    let _ = Fetch::from_params(&p);
    let _ = Fetchs::from_params(&p, &Limits::DEFAULT);
    let _ = Poll::from_params(&p, PollKind::One, &Limits::DEFAULT);
    let _ = Poll::from_params(&p, PollKind::Many, &Limits::DEFAULT);
    let _ = Register::from_params(&p, &RULES);
    let _ = Renew::from_params(&p, &RULES);
    let _ = Cancel::from_params(&p, &RULES);
    let _ = Set::from_params(&p, &RULES);
    let _ = OpKind::from_params(&p);
}

/// How long `work` took on `data`, the faster of two runs when the first is over `budget`: a
/// stall of a loaded machine is not twice in a row, a slow path is.
fn timed(data: &[u8], budget: Duration) -> Duration {
    let first = Instant::now();
    work(data);
    let took = first.elapsed();
    if took < budget {
        return took;
    }
    let again = Instant::now();
    work(data);
    took.min(again.elapsed())
}

fuzz_target!(|data: &[u8]| {
    // Generous for a loaded machine; linear in the input.
    let budget = Duration::from_millis(100) + Duration::from_micros(5) * data.len() as u32;
    let took = timed(data, budget);
    assert!(
        took < budget,
        "{} input bytes took {took:?} (budget {budget:?})",
        data.len()
    );
});
