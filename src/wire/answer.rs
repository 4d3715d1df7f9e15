//! A peer's answer envelope `{"code":N,...,"data":...}` read back: the code and the raw `data`,
//! for the follow-ups of the per-op protocol (-404 → register, -409 → adopt the instance).

use simd_json::prelude::*;

use super::json_value;

/// The `code` of an envelope and, when present and not null, its raw `data`. An answer that is
/// not JSON reads as code -500.
pub fn decode(body: &[u8]) -> (i64, Option<Vec<u8>>) {
    let Ok(v) = json_value(body) else {
        return (-500, None);
    };
    let code = v.get("code").and_then(|c| c.as_i64()).unwrap_or(-500);
    let data = v
        .get("data")
        .filter(|d| !d.is_null())
        .and_then(|d| simd_json::to_vec(d).ok());
    (code, data)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn code_and_data() {
        assert_eq!(decode(br#"{"code":0,"data":null}"#), (0, None));
        let (code, data) = decode(br#"{"code":-409,"data":{"a":1}}"#);
        assert_eq!((code, data.as_deref()), (-409, Some(&br#"{"a":1}"#[..])));
        assert_eq!(decode(b"<html>"), (-500, None));
    }
}
