//! Metadata JSON: parse ⇄ encode round trip. Whatever `wire::metadata::from_text` accepts,
//! `registry::encode::write_metadata` writes as JSON that parses back to the same metadata.

#![no_main]

use discovery::registry::encode::write_metadata;
use discovery::wire::metadata::from_text;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(parsed) = from_text(text) else {
        return;
    };
    let mut out = Vec::new();
    write_metadata(&mut out, parsed.as_ref());
    let encoded = std::str::from_utf8(&out).expect("the encoder writes UTF-8");
    let again = from_text(encoded).expect("the encoder's output parses");
    assert_eq!(parsed, again, "round trip through {encoded}");
    // And the encoding is stable: encoding again gives the same bytes.
    let mut twice = Vec::new();
    write_metadata(&mut twice, again.as_ref());
    assert_eq!(out, twice);
});
