//! Every JSON a peer sends us: a `fetch/all` answer (start-up sync), one instance object (a
//! -409 answer's data), a batch answer, a single op's answer envelope. No panic on any input,
//! and what is accepted passes the checks the registry relies on.

#![no_main]

use discovery::wire::answer;
use discovery::wire::instance::{decode_fetch_all, from_json};
use discovery::wire::replicate::decode_answer;
use libfuzzer_sys::fuzz_target;

fn check(r: &discovery::registry::instance::Registration) {
    assert!(!r.zone.is_empty() && !r.env.is_empty() && !r.appid.is_empty());
    assert!(!r.hostname.is_empty());
    assert!((1..=2).contains(&r.status));
}

fuzz_target!(|data: &[u8]| {
    if let Ok(regs) = decode_fetch_all(data) {
        regs.iter().for_each(check);
    }
    if let Ok(r) = from_json(data) {
        check(&r);
    }
    for (_, data) in decode_answer(data) {
        if let Some(d) = data {
            let _ = from_json(&d);
        }
    }
    let (_, d) = answer::decode(data);
    if let Some(d) = d {
        let _ = from_json(&d);
    }
});
