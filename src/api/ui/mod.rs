//! The dashboard: its page and assets, embedded in the binary from `ui/` at the repository's
//! root (plain HTML, CSS and JavaScript: no build step, no external asset), and the small JSON
//! endpoints under `/ui/api/` the page reads, one file each. They read what the API reads and
//! change nothing; a status change from the page goes through `/discovery/set`.

pub(super) mod app;
pub(super) mod apps;
pub(super) mod cluster;
pub(super) mod config;
pub(super) mod overview;

use super::answer::Answer;
use super::context::Api;
use crate::error::Result;
use crate::json;

/// A file of the dashboard.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Asset {
    Page,
    Script,
    Style,
}

/// Handles `/`, `/ui/app.js` and `/ui/style.css`.
pub(crate) fn asset<'a>(_: &Api, asset: Asset) -> Result<Answer<'a>> {
    Ok(match asset {
        Asset::Page => Answer::Asset(
            "text/html; charset=utf-8",
            include_bytes!("../../../ui/index.html"),
        ),
        Asset::Script => Answer::Asset(
            "text/javascript; charset=utf-8",
            include_bytes!("../../../ui/app.js"),
        ),
        Asset::Style => Answer::Asset(
            "text/css; charset=utf-8",
            include_bytes!("../../../ui/style.css"),
        ),
    })
}

/// A JSON object being written field by field.
pub(super) struct Obj<'a> {
    out: &'a mut Vec<u8>,
    empty: bool,
}

impl<'a> Obj<'a> {
    /// Opens an object at the end of `out`.
    pub(super) fn new(out: &'a mut Vec<u8>) -> Obj<'a> {
        out.push(b'{');
        Obj { out, empty: true }
    }

    /// Starts field `key`; the caller writes its value into the returned buffer.
    pub(super) fn field(&mut self, key: &str) -> &mut Vec<u8> {
        if !self.empty {
            self.out.push(b',');
        }
        self.empty = false;
        json::write_str(self.out, key);
        self.out.push(b':');
        self.out
    }

    /// Field `key` with a string value.
    pub(super) fn str(&mut self, key: &str, value: &str) -> &mut Self {
        json::write_str(self.field(key), value);
        self
    }

    /// Field `key` with an integer value.
    pub(super) fn int(&mut self, key: &str, value: impl itoa::Integer) -> &mut Self {
        json::write_int(self.field(key), value);
        self
    }

    /// Field `key` with a boolean value.
    pub(super) fn bool(&mut self, key: &str, value: bool) -> &mut Self {
        let v: &[u8] = if value { b"true" } else { b"false" };
        self.field(key).extend_from_slice(v);
        self
    }

    /// Closes the object.
    pub(super) fn end(self) {
        self.out.push(b'}');
    }
}

/// Writes `[item, item, ...]`, each item by `write`.
pub(super) fn array<T>(
    out: &mut Vec<u8>,
    items: impl IntoIterator<Item = T>,
    mut write: impl FnMut(&mut Vec<u8>, T),
) {
    out.push(b'[');
    for (n, item) in items.into_iter().enumerate() {
        if n > 0 {
            out.push(b',');
        }
        write(out, item);
    }
    out.push(b']');
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn objects_and_arrays_are_json() {
        let mut out = Vec::new();
        let mut o = Obj::new(&mut out);
        o.str("a", "x\"y").int("n", -3).bool("t", true);
        array(o.field("l"), [1, 2], json::write_int);
        o.end();
        let v: serde_json::Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(
            v,
            serde_json::json!({"a": "x\"y", "n": -3, "t": true, "l": [1, 2]})
        );
    }
}
