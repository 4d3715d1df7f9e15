//! Walking a parsed TOML document the way the Go original's decoder matches it: keys ignore
//! case, unknown keys are collected rather than fatal, and a bad value is reported under the
//! key as the user spelled it.
//!
//! Owns [`Section`] and the converters from a TOML value to plain types; `config::file` uses
//! them to read the schema, and knows no TOML details beyond them.

use std::collections::BTreeMap;

use toml::{Table, Value};

use super::ConfigError;

/// One TOML table whose keys are matched case-insensitively, like the Go
/// decoder does; keys are removed as they are read so the rest can be reported.
pub(super) struct Section {
    /// The table's key path as the user spelled it; empty at top level.
    path: String,
    /// Lower-cased key → (key as written, value).
    entries: BTreeMap<String, (String, Value)>,
}

impl Section {
    pub(super) fn new(path: String, table: Table) -> Result<Section, ConfigError> {
        let mut entries: BTreeMap<String, (String, Value)> = BTreeMap::new();
        for (key, value) in table {
            let lower = key.to_lowercase();
            // Go would pick one of the two at random (map order), so refuse instead.
            if let Some((first, _)) = entries.get(&lower) {
                return Err(ConfigError::new(format!(
                    "keys `{}` and `{}` are the same key (keys ignore case)",
                    join_key(&path, first),
                    join_key(&path, &key)
                )));
            }
            entries.insert(lower, (key, value));
        }
        Ok(Section { path, entries })
    }

    /// Removes `name` (lower case) and converts its value; a failure names the key as written.
    pub(super) fn get<T>(
        &mut self,
        name: &str,
        convert: fn(Value) -> Result<T, String>,
    ) -> Result<Option<T>, ConfigError> {
        let Some((key, value)) = self.entries.remove(name) else {
            return Ok(None);
        };
        convert(value)
            .map(Some)
            .map_err(|e| ConfigError::key(&join_key(&self.path, &key), e))
    }

    /// Removes the sub-table `name`; a missing one reads as empty.
    pub(super) fn section(&mut self, name: &str) -> Result<Section, ConfigError> {
        let path = match self.entries.get(name) {
            Some((key, _)) => join_key(&self.path, key),
            None => join_key(&self.path, name),
        };
        let table = self.get(name, as_table)?.unwrap_or_default();
        Section::new(path, table)
    }

    /// Records every key nobody asked for; they are ignored, as in the original.
    pub(super) fn finish(self, warnings: &mut Vec<String>) {
        for (key, _) in self.entries.into_values() {
            warnings.push(format!(
                "unknown config key `{}` ignored",
                join_key(&self.path, &key)
            ));
        }
    }
}

fn join_key(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_string()
    } else {
        format!("{path}.{key}")
    }
}

// Converters for `Section::get`. Their errors say what is wrong with the value;
// `get` adds the key.

/// The error of a converter handed the wrong kind of value.
pub(super) fn wrong_type(want: &str, got: &Value) -> String {
    format!("expected {want}, found {}", got.type_str())
}

pub(super) fn as_table(v: Value) -> Result<Table, String> {
    match v {
        Value::Table(t) => Ok(t),
        other => Err(wrong_type("a table", &other)),
    }
}

pub(super) fn as_string(v: Value) -> Result<String, String> {
    match v {
        Value::String(s) => Ok(s),
        other => Err(wrong_type("a string", &other)),
    }
}

pub(super) fn as_bool(v: Value) -> Result<bool, String> {
    match v {
        Value::Boolean(b) => Ok(b),
        other => Err(wrong_type("true or false", &other)),
    }
}

pub(super) fn as_strings(v: Value) -> Result<Vec<String>, String> {
    let Value::Array(items) = v else {
        return Err(wrong_type("an array of strings", &v));
    };
    items
        .into_iter()
        .map(|item| match item {
            Value::String(s) => Ok(s),
            other => Err(format!(
                "expected an array of strings, found a {} in it",
                other.type_str()
            )),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn top(text: &str) -> Result<Section, ConfigError> {
        Section::new(String::new(), text.parse().unwrap())
    }

    #[test]
    fn keys_match_in_any_case_and_errors_keep_the_spelling() {
        let mut s = top("Stdout = true\n[HttpServer]\nADDR = 7\n").unwrap();
        assert_eq!(s.get("stdout", as_bool).unwrap(), Some(true));
        assert_eq!(
            s.get("stdout", as_bool).unwrap(),
            None,
            "a key is read once"
        );
        let mut sub = s.section("httpserver").unwrap();
        let e = sub.get("addr", as_string).unwrap_err().to_string();
        assert_eq!(
            e,
            "config: key `HttpServer.ADDR`: expected a string, found integer"
        );
    }

    #[test]
    fn same_key_in_two_cases_is_rejected() {
        let e = top("a = 1\nA = 2\n").err().unwrap().to_string();
        assert!(e.contains("`A`") && e.contains("`a`"), "{e}");
        let e = top("[log]\nx = 1\n[LOG]\ny = 2\n")
            .err()
            .unwrap()
            .to_string();
        assert!(e.contains("`LOG`") && e.contains("`log`"), "{e}");
        let mut s = top("[log]\nstdout = true\nStdout = false\n").unwrap();
        let e = s.section("log").err().unwrap().to_string();
        assert!(
            e.contains("`log.Stdout`") && e.contains("`log.stdout`"),
            "{e}"
        );
    }

    #[test]
    fn missing_section_reads_as_empty() {
        let mut s = top("").unwrap();
        let mut sub = s.section("registry").unwrap();
        assert_eq!(sub.get("pollhold", as_string).unwrap(), None);
        let mut w = Vec::new();
        sub.finish(&mut w);
        s.finish(&mut w);
        assert!(w.is_empty(), "{w:?}");
    }

    #[test]
    fn leftover_keys_are_warned_about_with_their_path() {
        let mut s = top("Extra = 1\n[Log]\nV = 3\nstdout = true\n").unwrap();
        let mut w = Vec::new();
        let mut log = s.section("log").unwrap();
        log.get("stdout", as_bool).unwrap();
        log.finish(&mut w);
        s.finish(&mut w);
        assert_eq!(
            w,
            [
                "unknown config key `Log.V` ignored",
                "unknown config key `Extra` ignored"
            ]
        );
    }

    #[test]
    fn string_arrays_name_the_odd_item() {
        assert_eq!(
            as_strings("a = [\"x\", \"y\"]".parse::<Table>().unwrap()["a"].clone()),
            Ok(vec!["x".to_string(), "y".to_string()])
        );
        let e = as_strings("a = [\"x\", 1]".parse::<Table>().unwrap()["a"].clone()).unwrap_err();
        assert_eq!(e, "expected an array of strings, found a integer in it");
    }
}
