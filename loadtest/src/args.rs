//! A small `--flag value` parser. Every flag has a default supplied by the
//! caller; unknown flags are an error so that typos do not silently change a run.

use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet};
use std::str::FromStr;
use std::time::Duration;

/// The flags of one command line, with what was read from them.
pub struct Args {
    values: BTreeMap<String, String>,
    used: RefCell<BTreeSet<String>>,
    /// Flags read so far with the value that was in force (given or default),
    /// recorded into the JSON report as the run's parameters.
    seen: RefCell<BTreeMap<String, String>>,
}

impl Args {
    /// Parses `--name value`, `--name=value` and, for names in `switches`,
    /// a bare `--name` (meaning true).
    pub fn parse(tokens: &[String], switches: &[&str]) -> Result<Args, String> {
        let mut values = BTreeMap::new();
        let mut i = 0;
        while i < tokens.len() {
            let tok = &tokens[i];
            let Some(name) = tok.strip_prefix("--") else {
                return Err(format!(
                    "unexpected argument `{tok}` (flags look like --name value)"
                ));
            };
            if let Some((n, v)) = name.split_once('=') {
                values.insert(n.to_string(), v.to_string());
                i += 1;
                continue;
            }
            if switches.contains(&name) {
                let next_is_bool = tokens
                    .get(i + 1)
                    .map(|v| matches!(v.as_str(), "true" | "false"))
                    .unwrap_or(false);
                if next_is_bool {
                    values.insert(name.to_string(), tokens[i + 1].clone());
                    i += 2;
                } else {
                    values.insert(name.to_string(), "true".to_string());
                    i += 1;
                }
                continue;
            }
            match tokens.get(i + 1) {
                Some(v) => {
                    values.insert(name.to_string(), v.clone());
                    i += 2;
                }
                None => return Err(format!("flag --{name} needs a value")),
            }
        }
        Ok(Args {
            values,
            used: RefCell::new(BTreeSet::new()),
            seen: RefCell::new(BTreeMap::new()),
        })
    }

    fn raw(&self, name: &str) -> Option<&String> {
        self.used.borrow_mut().insert(name.to_string());
        self.values.get(name)
    }

    fn note(&self, name: &str, v: String) {
        self.seen.borrow_mut().insert(name.to_string(), v);
    }

    /// Whether `--name` was given.
    pub fn has(&self, name: &str) -> bool {
        self.raw(name).is_some()
    }

    /// `--name` parsed as T, or `default` when absent.
    pub fn get<T: FromStr + ToString>(&self, name: &str, default: T) -> Result<T, String> {
        let v = match self.raw(name) {
            None => default,
            Some(s) => s
                .parse::<T>()
                .map_err(|_| format!("--{name}: cannot parse `{s}`"))?,
        };
        self.note(name, v.to_string());
        Ok(v)
    }

    /// `--name` parsed as T, when given.
    pub fn opt<T: FromStr + ToString>(&self, name: &str) -> Result<Option<T>, String> {
        match self.raw(name) {
            None => Ok(None),
            Some(s) => {
                let v = s
                    .parse::<T>()
                    .map_err(|_| format!("--{name}: cannot parse `{s}`"))?;
                self.note(name, v.to_string());
                Ok(Some(v))
            }
        }
    }

    /// `--name` as text, or `default` when absent.
    pub fn string(&self, name: &str, default: &str) -> String {
        let v = self
            .raw(name)
            .cloned()
            .unwrap_or_else(|| default.to_string());
        self.note(name, v.clone());
        v
    }

    /// A switch: true when given bare or as `true`.
    pub fn switch(&self, name: &str) -> Result<bool, String> {
        let v = match self.raw(name).map(|s| s.as_str()) {
            None | Some("false") => false,
            Some("true") => true,
            Some(other) => return Err(format!("--{name}: expected true or false, got `{other}`")),
        };
        self.note(name, v.to_string());
        Ok(v)
    }

    /// Durations: `10` (seconds), `10s`, `500ms`, `2m`, `1.5s`.
    pub fn duration(&self, name: &str, default: Duration) -> Result<Duration, String> {
        let d = match self.raw(name) {
            None => default,
            Some(s) => parse_duration(s).ok_or_else(|| format!("--{name}: bad duration `{s}`"))?,
        };
        self.note(name, format_duration(d));
        Ok(d)
    }

    /// A rate such as `10`, `10/s` or `600/m`, returned per second.
    pub fn rate(&self, name: &str, default: f64) -> Result<f64, String> {
        let r = match self.raw(name) {
            None => default,
            Some(s) => parse_rate(s).ok_or_else(|| format!("--{name}: bad rate `{s}`"))?,
        };
        self.note(name, format!("{r}/s"));
        Ok(r)
    }

    /// Fails on flags that were given but never read.
    pub fn finish(&self) -> Result<(), String> {
        let used = self.used.borrow();
        let unknown: Vec<String> = self
            .values
            .keys()
            .filter(|k| !used.contains(*k))
            .map(|k| format!("--{k}"))
            .collect();
        if unknown.is_empty() {
            Ok(())
        } else {
            Err(format!("unknown flag(s): {}", unknown.join(", ")))
        }
    }

    /// Every flag read, with the value in force, for the report.
    pub fn params_json(&self) -> serde_json::Value {
        let m: serde_json::Map<String, serde_json::Value> = self
            .seen
            .borrow()
            .iter()
            .map(|(k, v)| (k.clone(), serde_json::Value::String(v.clone())))
            .collect();
        serde_json::Value::Object(m)
    }
}

/// `10`, `10s`, `500ms`, `2m` or `1h` as a duration.
pub fn parse_duration(s: &str) -> Option<Duration> {
    let s = s.trim();
    let (num, mult) = if let Some(n) = s.strip_suffix("ms") {
        (n, 0.001)
    } else if let Some(n) = s.strip_suffix('s') {
        (n, 1.0)
    } else if let Some(n) = s.strip_suffix('m') {
        (n, 60.0)
    } else if let Some(n) = s.strip_suffix('h') {
        (n, 3600.0)
    } else {
        (s, 1.0)
    };
    let v: f64 = num.trim().parse().ok()?;
    if !v.is_finite() || v < 0.0 {
        return None;
    }
    Some(Duration::from_secs_f64(v * mult))
}

/// A duration as the flags write it (`1500ms`, `30s`).
pub fn format_duration(d: Duration) -> String {
    let ms = d.as_millis();
    if ms.is_multiple_of(1000) {
        format!("{}s", ms / 1000)
    } else {
        format!("{ms}ms")
    }
}

/// `10`, `10/s` or `600/m` as a rate per second.
pub fn parse_rate(s: &str) -> Option<f64> {
    let s = s.trim();
    let (num, div) = if let Some(n) = s.strip_suffix("/s") {
        (n, 1.0)
    } else if let Some(n) = s.strip_suffix("/m") {
        (n, 60.0)
    } else {
        (s, 1.0)
    };
    let v: f64 = num.trim().parse().ok()?;
    if !v.is_finite() || v < 0.0 {
        return None;
    }
    Some(v / div)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn toks(s: &str) -> Vec<String> {
        s.split_whitespace().map(String::from).collect()
    }

    #[test]
    fn parses_flags() {
        let a = Args::parse(
            &toks("--conns 8 --multi --duration=5s --churn 10/s"),
            &["multi"],
        )
        .expect("parse");
        assert_eq!(a.get("conns", 1usize).expect("conns"), 8);
        assert!(a.switch("multi").expect("multi"));
        assert_eq!(
            a.duration("duration", Duration::from_secs(1)).expect("d"),
            Duration::from_secs(5)
        );
        assert_eq!(a.rate("churn", 0.0).expect("rate"), 10.0);
        assert!(a.finish().is_ok());
    }

    #[test]
    fn rejects_unknown() {
        let a = Args::parse(&toks("--bogus 1"), &[]).expect("parse");
        assert!(a.finish().is_err());
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("500ms"), Some(Duration::from_millis(500)));
        assert_eq!(parse_duration("2m"), Some(Duration::from_secs(120)));
        assert_eq!(parse_duration("7"), Some(Duration::from_secs(7)));
        assert_eq!(parse_duration("x"), None);
        assert_eq!(parse_rate("600/m"), Some(10.0));
    }
}
