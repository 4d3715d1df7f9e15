//! Every JSON a peer sends us: a `fetch/all` answer (start-up sync), one instance object (a
//! -409 answer's data), a batch answer, a single op's answer envelope. No panic on any input,
//! and what is accepted passes the checks the registry relies on.

#![no_main]

use discovery::wire::answer;
use discovery::wire::instance::{decode_fetch_all, from_json};
use discovery::wire::replicate::decode_answer;
use discovery::wire::{Limits, Rules};
use libfuzzer_sys::fuzz_target;

/// The rules peer input is checked against; a fixed clock far from any limit.
const RULES: Rules = Rules {
    now_ns: 1_700_000_000_000_000_000,
    max_skew_ns: 300_000_000_000,
    limits: Limits::DEFAULT,
};

fn check(r: &discovery::registry::instance::Registration) {
    // Nothing accepted is far in the future.
    for ts in [r.reg_ts, r.up_ts, r.renew_ts, r.dirty_ts, r.latest_ts]
        .into_iter()
        .flatten()
    {
        assert!(ts <= RULES.now_ns + RULES.max_skew_ns);
    }
    assert!(!r.zone.is_empty() && !r.env.is_empty() && !r.appid.is_empty());
    assert!(!r.hostname.is_empty());
    assert!((1..=2).contains(&r.status));
}

fuzz_target!(|data: &[u8]| {
    if let Ok(regs) = decode_fetch_all(data, &RULES) {
        regs.flatten().for_each(|r| check(&r));
    }
    if let Ok(r) = from_json(data, &RULES) {
        check(&r);
    }
    for (_, data) in decode_answer(data) {
        if let Some(d) = data {
            let _ = from_json(&d, &RULES);
        }
    }
    let (_, d) = answer::decode(data);
    if let Some(d) = d {
        let _ = from_json(&d, &RULES);
    }
});
