//! Instance metadata as it arrives: a JSON object in a form value (register, set) or inside a
//! peer's instance JSON (start-up sync, conflict answers). One decoder for both, so a node keeps
//! exactly what a client sent whichever way it reached it: string values as they are, other
//! values as their JSON text.

use simd_json::prelude::*;
use simd_json::OwnedValue;

use super::json_value;
use crate::error::{Error, Result};
use crate::registry::instance::Metadata;

/// Parses a metadata form value. `null` means no metadata.
pub fn from_text(text: &str) -> Result<Option<Metadata>> {
    let value = json_value(text.as_bytes())
        .map_err(|e| Error::bad_param(format!("metadata is not valid JSON: {e}")))?;
    if value.is_null() {
        return Ok(None);
    }
    from_value(&value)
        .map(Some)
        .ok_or_else(|| Error::bad_param("metadata must be a JSON object"))
}

/// Reads a metadata JSON object; `None` when `value` is not an object.
pub(crate) fn from_value(value: &OwnedValue) -> Option<Metadata> {
    let obj = value.as_object()?;
    let mut pairs: Metadata = obj
        .iter()
        .map(|(k, v)| {
            let v = match v.as_str() {
                Some(s) => s.into(),
                None => simd_json::to_string(v).unwrap_or_default().into(),
            };
            (k.as_str().into(), v)
        })
        .collect();
    pairs.sort_by(|a, b| a.0.cmp(&b.0));
    Some(pairs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_commas_and_non_string_values() {
        let m = from_text(r#"{"b":"x,y","a":1,"c":{"d":true}}"#)
            .unwrap()
            .unwrap();
        let flat: Vec<(&str, &str)> = m.iter().map(|(k, v)| (k.as_ref(), v.as_ref())).collect();
        assert_eq!(flat, [("a", "1"), ("b", "x,y"), ("c", r#"{"d":true}"#)]);
        assert!(from_text("null").unwrap().is_none());
        assert_eq!(from_text("[1]").unwrap_err().ecode(), -400);
        assert_eq!(from_text("{oops").unwrap_err().ecode(), -400);
    }

    #[test]
    fn text_and_json_decoders_agree() {
        let text = r#"{"w":"10","n":5,"o":{"x":[1,"a"]}}"#;
        let from_json = from_value(&json_value(text.as_bytes()).unwrap());
        assert_eq!(from_text(text).unwrap(), from_json);
    }
}
