//! Request parameters: the form decoding every message in `wire` starts from.
//!
//! `api` hands over the raw query string and the decoded body; this module owns turning them
//! into named values the handlers read: merging both sources, splitting lists, and parsing bools
//! and integers the way the Go server's clients expect. Every failure is a
//! [`Kind::BadParam`](crate::error::Kind::BadParam) error naming the parameter.

use std::borrow::Cow;

use crate::error::{Error, Result};

/// The decoded `key=value` pairs of one request, in wire order. A pair that needs no decoding
/// borrows the request's bytes: the common request allocates nothing but the list itself.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Params<'a> {
    pairs: Vec<(Cow<'a, str>, Cow<'a, str>)>,
}

impl<'a> Params<'a> {
    /// Decodes `query` and an `application/x-www-form-urlencoded` `body` (pass an empty body
    /// for GET or other content types).
    ///
    /// Clients send POST parameters in the body, the URL or both, so both are kept. Body pairs
    /// come first, as in Go's `Request.Form`, so a key sent in both places reads as the body's.
    /// Decoding is lenient where clients are: values such as `grpc://1.2.3.4:9000` are often
    /// sent unescaped. An invalid `%` escape (`%ZZ`, a trailing `%`) is refused with -400, as
    /// the Go original's `url.ParseQuery` refuses it.
    pub fn parse(query: &'a [u8], body: &'a [u8]) -> Result<Params<'a>> {
        check_escapes(body)?;
        check_escapes(query)?;
        let pairs = form_urlencoded::parse(body)
            .chain(form_urlencoded::parse(query))
            .collect();
        Ok(Params { pairs })
    }

    fn values<'s, 'k>(&'s self, key: &'k str) -> impl Iterator<Item = &'s str> + use<'s, 'k, 'a> {
        self.pairs
            .iter()
            .filter(move |(k, _)| k == key)
            .map(|(_, v)| v.as_ref())
    }

    /// First value of `key`, None if absent or empty string.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.values(key).next().filter(|v| !v.is_empty())
    }

    /// Like get, but missing/empty → Err(bad_param("<key> is required")).
    pub fn required(&self, key: &str) -> Result<&str> {
        self.get(key)
            .ok_or_else(|| Error::bad_param(format!("{key} is required")))
    }

    /// Every value of `key` over repeated keys, each split on ',', trimmed of spaces, empty
    /// pieces dropped; clients send lists either way.
    pub fn list(&self, key: &str) -> Vec<&str> {
        self.values(key)
            .flat_map(|v| v.split(','))
            .map(str::trim)
            .filter(|v| !v.is_empty())
            .collect()
    }

    /// Like [`Params::list`] with repeats removed (first one kept), plus the index each kept
    /// value had in the full list, so a parallel list can be matched up.
    pub fn unique_list(&self, key: &str) -> Vec<(usize, &str)> {
        let mut seen = std::collections::HashSet::new();
        self.list(key)
            .into_iter()
            .enumerate()
            .filter(|(_, v)| seen.insert(*v))
            .collect()
    }

    /// Every value of `key` over repeated keys, as sent (empty ones included) and NOT split, for
    /// JSON values such as set's `metadata`, which contain commas.
    pub fn all(&self, key: &str) -> Vec<&str> {
        self.values(key).collect()
    }

    /// Parses `key` like Go's `strconv.ParseBool`; absent or empty → Ok(false).
    pub fn bool(&self, key: &str) -> Result<bool> {
        match self.get(key) {
            None => Ok(false),
            Some("1" | "t" | "T" | "true" | "TRUE" | "True") => Ok(true),
            Some("0" | "f" | "F" | "false" | "FALSE" | "False") => Ok(false),
            Some(v) => Err(invalid(key, "boolean", v)),
        }
    }

    /// Absent or empty → Ok(None); else the decimal i64 or an error.
    pub fn i64(&self, key: &str) -> Result<Option<i64>> {
        self.get(key).map(|v| parse_i64(key, v)).transpose()
    }

    /// Like `list` but each piece parsed as a decimal i64.
    pub fn i64_list(&self, key: &str) -> Result<Vec<i64>> {
        self.list(key)
            .into_iter()
            .map(|v| parse_i64(key, v))
            .collect()
    }
}

/// Refuses a `%` not followed by two hex digits.
fn check_escapes(text: &[u8]) -> Result<()> {
    let mut i = 0;
    while let Some(at) = text[i..].iter().position(|b| *b == b'%') {
        let start = i + at;
        let escape = text.get(start + 1..start + 3);
        if !escape.is_some_and(|e| e.iter().all(u8::is_ascii_hexdigit)) {
            let shown = String::from_utf8_lossy(&text[start..text.len().min(start + 3)]);
            return Err(Error::bad_param(format!("invalid URL escape {shown:?}")));
        }
        i = start + 3;
    }
    Ok(())
}

fn parse_i64(key: &str, value: &str) -> Result<i64> {
    value.parse().map_err(|_| invalid(key, "integer", value))
}

fn invalid(key: &str, what: &str, value: &str) -> Error {
    Error::bad_param(format!("{key}: invalid {what} {value:?}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::Kind;
    use crate::http::request::{parse_body, BodyKind};

    fn query(q: &str) -> Params<'_> {
        Params::parse(q.as_bytes(), b"").unwrap()
    }

    #[test]
    fn repeated_and_comma_joined_lists_agree() {
        let want = vec!["a", "b", "c"];
        assert_eq!(query("appid=a&appid=b&appid=c").list("appid"), want);
        assert_eq!(query("appid=a,b,c").list("appid"), want);
        assert_eq!(query("appid=a,+b&appid=,c,").list("appid"), want);
        assert_eq!(query("appid=a%2Cb&appid=c").list("appid"), want);
        assert!(query("x=1").list("appid").is_empty());
        assert_eq!(
            query("status=1,2&status=3").i64_list("status").unwrap(),
            [1, 2, 3]
        );
    }

    #[test]
    fn query_and_body_merge() {
        let p = Params::parse(b"appid=q&zone=z1", b"appid=b&env=dev").unwrap();
        assert_eq!(p.all("appid"), ["b", "q"]);
        assert_eq!(p.get("appid"), Some("b"));
        assert_eq!(p.get("zone"), Some("z1"));
        assert_eq!(p.get("env"), Some("dev"));
        // Some clients put POST parameters in the URL and send an empty body.
        assert_eq!(
            Params::parse(b"env=dev", b"").unwrap().get("env"),
            Some("dev")
        );
    }

    #[test]
    fn json_values_stay_whole() {
        let json = r#"{"weight":"10","color":"red,blue"}"#;
        let encoded: String = form_urlencoded::byte_serialize(json.as_bytes()).collect();
        let q = format!("metadata={encoded}&metadata={{}}");
        let p = query(&q);
        assert_eq!(p.get("metadata"), Some(json));
        assert_eq!(p.all("metadata"), [json, "{}"]);
    }

    #[test]
    fn unescaped_and_encoded_addrs_agree() {
        let raw = query("addrs=grpc://127.0.0.1:9000&addrs=http://[::1]:80/a?b");
        let encoded =
            query("addrs=grpc%3A%2F%2F127.0.0.1%3A9000,http%3A%2F%2F%5B%3A%3A1%5D%3A80%2Fa%3Fb");
        let want = ["grpc://127.0.0.1:9000", "http://[::1]:80/a?b"];
        assert_eq!(raw.list("addrs"), want);
        assert_eq!(encoded.list("addrs"), want);
        // An invalid escape is refused, as Go's url.ParseQuery refuses it.
        for bad in ["hostname=a%zz", "hostname=a%", "appid=%ZZ", "a%2=1", "x=%4"] {
            let e = Params::parse(bad.as_bytes(), b"").unwrap_err();
            assert_eq!(e.ecode(), -400, "{bad}");
            assert!(e.context.starts_with("invalid URL escape"), "{}", e.context);
            assert!(
                Params::parse(b"", bad.as_bytes()).is_err(),
                "{bad} in a body"
            );
        }
        assert_eq!(query("hostname=a%2Fb%25").get("hostname"), Some("a/b%"));
    }

    #[test]
    fn plus_is_space() {
        let p = query("hostname=my+host&color=%2B");
        assert_eq!(p.get("hostname"), Some("my host"));
        assert_eq!(p.get("color"), Some("+"));
    }

    #[test]
    fn long_lists_are_deduplicated_in_linear_time() {
        // 200k distinct appids: comparing each with every earlier one (the old way) is 2e10
        // string comparisons, minutes of CPU; a hash set takes milliseconds. The bound is
        // generous on purpose.
        let list: Vec<String> = (0..200_000).map(|i| format!("app{i}")).collect();
        let q = format!("appid={}&appid=app7", list.join(","));
        let p = query(&q);
        let started = std::time::Instant::now();
        let unique = p.unique_list("appid");
        assert!(started.elapsed() < std::time::Duration::from_secs(5));
        assert_eq!(unique.len(), 200_000);
        assert_eq!(unique[7], (7, "app7"));
    }

    #[test]
    fn bools_parse_like_go() {
        for v in ["1", "t", "T", "true", "TRUE", "True"] {
            assert!(query(&format!("replication={v}"))
                .bool("replication")
                .unwrap());
        }
        for v in ["0", "f", "F", "false", "FALSE", "False", ""] {
            assert!(!query(&format!("replication={v}"))
                .bool("replication")
                .unwrap());
        }
        assert!(!query("").bool("replication").unwrap());
        for v in ["yes", "tRUE", "2", " true"] {
            let e = query(&format!("replication={v}"))
                .bool("replication")
                .unwrap_err();
            assert_eq!(e.kind, Kind::BadParam);
            assert!(e.context.starts_with("replication: invalid boolean"));
        }
    }

    #[test]
    fn integers() {
        let p = query("status=2&latest_timestamp=-17&empty=");
        assert_eq!(p.i64("status").unwrap(), Some(2));
        assert_eq!(p.i64("latest_timestamp").unwrap(), Some(-17));
        assert_eq!(p.i64("empty").unwrap(), None);
        assert_eq!(p.i64("absent").unwrap(), None);
        for bad in ["x", "1.5", "0x10", "99999999999999999999", " 1"] {
            let e = query(&format!("status={bad}")).i64("status").unwrap_err();
            assert_eq!(e.kind, Kind::BadParam);
            assert_eq!(e.context, format!("status: invalid integer {bad:?}"));
        }
        let e = query("status=1,x").i64_list("status").unwrap_err();
        assert_eq!(e.context, "status: invalid integer \"x\"");
    }

    #[test]
    fn required_values() {
        let p = query("appid=a&env=");
        assert_eq!(p.required("appid").unwrap(), "a");
        for key in ["env", "zone"] {
            let e = p.required(key).unwrap_err();
            assert_eq!(e.kind, Kind::BadParam);
            assert_eq!(e.context, format!("{key} is required"));
        }
    }

    fn chunk(data: &[u8]) -> Vec<u8> {
        [
            format!("{:x};ext=1\r\n", data.len()).as_bytes(),
            data,
            b"\r\n",
        ]
        .concat()
    }

    #[test]
    fn chunked_body_decodes_like_whole_body() {
        let body = b"appid=infra.discovery&hostname=h1&addrs=grpc://127.0.0.1:9000,http%3A%2F%2F127.0.0.1%3A7171&metadata=%7B%22a%22%3A%221%2C2%22%7D&status=1";
        let want = Params::parse(b"", body).unwrap();
        for split in 1..body.len() {
            let (a, b) = body.split_at(split);
            let wire = [chunk(a), chunk(b), b"0\r\nX-Trailer: t\r\n\r\n".to_vec()].concat();
            let (decoded, used) = parse_body(&wire, BodyKind::Chunked, 1024).unwrap().unwrap();
            assert_eq!(used, wire.len());
            assert_eq!(
                Params::parse(b"", &decoded).unwrap(),
                want,
                "split at {split}"
            );
        }
        // One byte per chunk, the most a percent escape can be torn apart.
        let wire: Vec<u8> = body.iter().flat_map(|b| chunk(&[*b])).collect();
        let wire = [wire, b"0\r\n\r\n".to_vec()].concat();
        let (decoded, _) = parse_body(&wire, BodyKind::Chunked, 1024).unwrap().unwrap();
        assert_eq!(Params::parse(b"", &decoded).unwrap(), want);
        assert_eq!(want.get("metadata"), Some(r#"{"a":"1,2"}"#));
    }
}
