//! Request bytes for the discovery endpoints and the answer bodies the
//! ceiling server replays.

use std::io::Write;

/// Metadata sent with every register, percent-encoded `{"weight":"10"}`.
const METADATA_ENC: &str = "%7B%22weight%22%3A%2210%22%7D";
const METADATA_JSON: &str = "{\"weight\":\"10\"}";

/// Fixed identity of the load generator's fake fleet.
#[derive(Clone, Debug)]
pub struct Ident {
    /// `Host` header value (`ip:port`).
    pub host: String,
    pub env: String,
    pub zone: String,
    pub region: String,
}

impl Ident {
    fn get(&self, out: &mut Vec<u8>, path_query: std::fmt::Arguments) {
        out.clear();
        let _ = out.write_all(b"GET ");
        let _ = out.write_fmt(path_query);
        let _ = write!(out, " HTTP/1.1\r\nHost: {}\r\n\r\n", self.host);
    }

    fn post(&self, out: &mut Vec<u8>, path: &str, body: std::fmt::Arguments) {
        // Format the body first to learn its length, then the head.
        let mut b = Vec::with_capacity(256);
        let _ = b.write_fmt(body);
        out.clear();
        let _ = write!(
            out,
            "POST {path} HTTP/1.1\r\nHost: {}\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n\r\n",
            self.host,
            b.len()
        );
        out.extend_from_slice(&b);
    }

    /// Address an instance advertises (a string in the payload only).
    pub fn inst_addr(i: usize) -> String {
        format!("grpc://127.0.0.1:{}", 20000 + (i % 40000))
    }

    /// `POST /discovery/register` of instance `i` with `version`.
    pub fn register(&self, out: &mut Vec<u8>, appid: &str, hostname: &str, i: usize, version: u64) {
        self.post(
            out,
            "/discovery/register",
            format_args!(
                "region={}&zone={}&env={}&appid={}&hostname={}&addrs={}&status=1&version=v{}&metadata={}",
                self.region,
                self.zone,
                self.env,
                appid,
                hostname,
                Self::inst_addr(i),
                version,
                METADATA_ENC
            ),
        );
    }

    /// `POST /discovery/renew`.
    pub fn renew(&self, out: &mut Vec<u8>, appid: &str, hostname: &str) {
        self.post(
            out,
            "/discovery/renew",
            format_args!(
                "zone={}&env={}&appid={}&hostname={}",
                self.zone, self.env, appid, hostname
            ),
        );
    }

    /// `POST /discovery/cancel`.
    pub fn cancel(&self, out: &mut Vec<u8>, appid: &str, hostname: &str) {
        self.post(
            out,
            "/discovery/cancel",
            format_args!(
                "zone={}&env={}&appid={}&hostname={}",
                self.zone, self.env, appid, hostname
            ),
        );
    }

    /// `GET /discovery/fetch` of one app.
    pub fn fetch(&self, out: &mut Vec<u8>, appid: &str) {
        self.get(
            out,
            format_args!("/discovery/fetch?appid={}&env={}&status=1", appid, self.env),
        );
    }

    /// `GET /discovery/fetchs` of several apps.
    pub fn fetchs(&self, out: &mut Vec<u8>, appids: &[String]) {
        let mut q = String::new();
        for a in appids {
            q.push_str("appid=");
            q.push_str(a);
            q.push('&');
        }
        self.get(
            out,
            format_args!("/discovery/fetchs?{}env={}&status=1", q, self.env),
        );
    }

    /// `GET /discovery/nodes` (the readiness check).
    pub fn nodes(&self, out: &mut Vec<u8>) {
        self.get(out, format_args!("/discovery/nodes"));
    }

    /// Long poll: `polls` with repeated keys (as the Go SDK sends it), or
    /// `poll` when `single` and there is exactly one app.
    pub fn polls(
        &self,
        out: &mut Vec<u8>,
        appids: &[&str],
        timestamps: &[i64],
        hostname: &str,
        single: bool,
    ) {
        let mut q = String::with_capacity(64 + appids.len() * 48);
        for a in appids {
            q.push_str("appid=");
            q.push_str(a);
            q.push('&');
        }
        for t in timestamps {
            q.push_str("latest_timestamp=");
            q.push_str(&t.to_string());
            q.push('&');
        }
        let path = if single && appids.len() == 1 {
            "poll"
        } else {
            "polls"
        };
        self.get(
            out,
            format_args!(
                "/discovery/{}?{}env={}&hostname={}",
                path, q, self.env, hostname
            ),
        );
    }

    /// One instance as the server renders it (field order of the original).
    pub fn instance_json(&self, appid: &str, hostname: &str, i: usize, ts: i64) -> String {
        format!(
            "{{\"region\":\"{}\",\"zone\":\"{}\",\"env\":\"{}\",\"appid\":\"{}\",\"hostname\":\"{}\",\"addrs\":[\"{}\"],\"version\":\"v1\",\"metadata\":{},\"status\":1,\"reg_timestamp\":{ts},\"up_timestamp\":{ts},\"renew_timestamp\":{ts},\"dirty_timestamp\":{ts},\"latest_timestamp\":{ts}}}",
            self.region,
            self.zone,
            self.env,
            appid,
            hostname,
            Self::inst_addr(i),
            METADATA_JSON
        )
    }

    /// InstanceInfo of one app holding `hosts` (hostname, index) pairs.
    pub fn instance_info_json(&self, appid: &str, hosts: &[(String, usize)], ts: i64) -> String {
        let list: Vec<String> = hosts
            .iter()
            .map(|(h, i)| self.instance_json(appid, h, *i, ts))
            .collect();
        format!(
            "{{\"instances\":{{\"{}\":[{}]}},\"latest_timestamp\":{ts}}}",
            self.zone,
            list.join(",")
        )
    }
}

/// The success envelope around `data`, as the server writes it.
pub fn envelope_ok(data: &str) -> String {
    format!("{{\"code\":0,\"message\":\"0\",\"ttl\":1,\"data\":{data}}}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ident() -> Ident {
        Ident {
            host: "127.0.0.1:7171".into(),
            env: "dev".into(),
            zone: "sh001".into(),
            region: "sh".into(),
        }
    }

    #[test]
    fn post_has_length() {
        let mut out = Vec::new();
        ident().renew(&mut out, "a.b", "h1");
        let s = String::from_utf8(out).expect("utf8");
        let (head, body) = s.split_once("\r\n\r\n").expect("head");
        assert!(head.starts_with("POST /discovery/renew HTTP/1.1\r\n"));
        assert!(head.contains(&format!("Content-Length: {}", body.len())));
        assert_eq!(body, "zone=sh001&env=dev&appid=a.b&hostname=h1");
    }

    #[test]
    fn polls_repeated_keys() {
        let mut out = Vec::new();
        ident().polls(&mut out, &["a", "b"], &[1, 2], "c1", false);
        let s = String::from_utf8(out).expect("utf8");
        assert!(s.starts_with(
            "GET /discovery/polls?appid=a&appid=b&latest_timestamp=1&latest_timestamp=2&env=dev&hostname=c1 HTTP/1.1\r\n"
        ));
    }

    #[test]
    fn bodies_are_json() {
        let id = ident();
        let info = id.instance_info_json("a", &[("h0".into(), 0), ("h1".into(), 1)], 5);
        let v: serde_json::Value = serde_json::from_str(&envelope_ok(&info)).expect("json");
        assert_eq!(v["data"]["latest_timestamp"], 5);
        assert_eq!(v["data"]["instances"]["sh001"][1]["hostname"], "h1");
    }
}
