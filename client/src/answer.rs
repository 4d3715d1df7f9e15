//! Decoding of the answer envelope `{"code","message","ttl","data","error"}` every
//! `/discovery/*` endpoint sends: a non-zero `code` becomes [`Error::Code`], `data` is decoded
//! only on success, and the long-poll's -304 and `error: {"-404": [...]}` are read out.

use std::collections::BTreeMap;

use serde::de::{DeserializeOwned, IgnoredAny};
use serde::Deserialize;
use serde_json::value::RawValue;

use crate::error::{ecode, Error, Result};
use crate::model::InstanceInfo;

/// The envelope with `data` left undecoded until the code says what it holds.
#[derive(Deserialize)]
struct Envelope<'a> {
    code: i64,
    #[serde(default)]
    message: String,
    #[serde(borrow, default)]
    data: Option<&'a RawValue>,
    #[serde(default)]
    error: Option<serde_json::Value>,
}

fn envelope<'a>(node: &str, body: &'a [u8]) -> Result<Envelope<'a>> {
    serde_json::from_slice(body).map_err(|e| decode_error(node, &e, body))
}

fn decode_error(node: &str, e: &serde_json::Error, body: &[u8]) -> Error {
    const SHOWN: usize = 200;
    let start = String::from_utf8_lossy(&body[..body.len().min(SHOWN)]).into_owned();
    Error::Decode {
        node: node.to_string(),
        detail: format!("{e} in {start:?}"),
    }
}

fn code_error(node: &str, env: Envelope<'_>) -> Error {
    Error::Code {
        node: node.to_string(),
        code: env.code,
        message: env.message,
    }
}

fn data<T: DeserializeOwned>(node: &str, env: &Envelope<'_>, body: &[u8]) -> Result<T> {
    let raw = env.data.map_or("null", RawValue::get);
    serde_json::from_str(raw).map_err(|e| decode_error(node, &e, body))
}

/// A code-0 answer's `data` as `T`; any other code is an error.
pub(crate) fn ok<T: DeserializeOwned>(node: &str, body: &[u8]) -> Result<T> {
    let env = envelope(node, body)?;
    if env.code != 0 {
        return Err(code_error(node, env));
    }
    data(node, &env, body)
}

/// A code-0 answer whose `data`, if any, does not matter (register, cancel, set).
pub(crate) fn done(node: &str, body: &[u8]) -> Result<()> {
    ok::<Option<IgnoredAny>>(node, body).map(drop)
}

/// What a long-poll brought.
#[derive(Debug)]
pub(crate) struct Polled {
    /// The watched apps that changed, with their UP instances.
    pub apps: BTreeMap<String, InstanceInfo>,
    /// Watched apps the node does not know (`error: {"-404": [...]}`).
    pub missing: Vec<String>,
}

/// A `polls` answer: `None` for -304 (the hold ended without a change).
pub(crate) fn polls(node: &str, body: &[u8]) -> Result<Option<Polled>> {
    let env = envelope(node, body)?;
    match env.code {
        0 => {}
        ecode::NOT_MODIFIED => return Ok(None),
        _ => return Err(code_error(node, env)),
    }
    let apps: Option<BTreeMap<String, InstanceInfo>> = data(node, &env, body)?;
    // The Go original sends `"-404": null` when every app is known.
    let missing = env
        .error
        .as_ref()
        .and_then(|e| e.get("-404"))
        .and_then(|list| list.as_array())
        .map(|list| {
            list.iter()
                .filter_map(|a| a.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default();
    Ok(Some(Polled {
        apps: apps.unwrap_or_default(),
        missing,
    }))
}

#[cfg(test)]
mod tests {
    //! Answers recorded from this repository's server (`ours`) and the Go original v1.2.0
    //! (`go`) by `tests/fixtures/record.sh`.

    use super::*;
    use crate::model::{Instance, Status};
    use crate::nodes::{Nodes, COOLDOWN, SELF_APPID};

    const SERVERS: [&str; 2] = ["ours", "go"];

    fn fixture(server: &str, name: &str) -> Vec<u8> {
        let path = format!(
            "{}/tests/fixtures/{server}/{name}.json",
            env!("CARGO_MANIFEST_DIR")
        );
        std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
    }

    fn hosts(info: &InstanceInfo) -> Vec<&str> {
        let mut h: Vec<&str> = info.iter().map(|i| i.hostname.as_str()).collect();
        h.sort();
        h
    }

    #[test]
    fn writes_answer_code_zero_without_data() {
        for server in SERVERS {
            for name in ["register", "set", "cancel"] {
                done(server, &fixture(server, name))
                    .unwrap_or_else(|e| panic!("{server} {name}: {e}"));
            }
        }
    }

    #[test]
    fn renew_answers_the_instance_as_registered() {
        for server in SERVERS {
            let i: Instance = ok(server, &fixture(server, "renew")).unwrap();
            assert_eq!(i.hostname, "h1", "{server}");
            assert_eq!(i.appid, "demo.fixture");
            assert_eq!(i.addrs, ["http://10.0.0.1:8000", "grpc://10.0.0.1:9000"]);
            assert_eq!(
                i.metadata["list"], "a,b",
                "{server}: a comma in a value survives"
            );
            assert_eq!(i.metadata["weight"], "10");
            assert_eq!(i.status, Status::Up);
            assert!(i.renew_timestamp >= i.reg_timestamp && i.reg_timestamp > 0);
        }
    }

    #[test]
    fn not_found_answers_are_code_errors_that_do_not_fail_over() {
        for server in SERVERS {
            for name in ["renew_404", "fetch_404", "cancel_404"] {
                let e = ok::<Option<Instance>>(server, &fixture(server, name)).unwrap_err();
                assert!(e.is_not_found(), "{server} {name}: {e}");
                assert!(!e.is_node_failure());
                assert_eq!(e.node(), Some(server));
            }
            let e = polls(server, &fixture(server, "polls_bad")).unwrap_err();
            assert_eq!(e.ecode(), Some(-400), "{server}");
            assert!(!e.is_node_failure());
        }
    }

    #[test]
    fn fetch_and_fetchs_hold_the_up_instances() {
        for server in SERVERS {
            let info: InstanceInfo = ok(server, &fixture(server, "fetch")).unwrap();
            // h3 registered WAITING is not in a status=1 answer.
            assert_eq!(hosts(&info), ["h1", "h2"], "{server}");
            assert!(info.latest_timestamp > 0);
            let h2 = info.iter().find(|i| i.hostname == "h2").unwrap();
            assert!(
                h2.metadata.is_empty(),
                "{server}: no metadata is null or {{}}"
            );
            let apps: Option<crate::Apps> = ok(server, &fixture(server, "fetchs")).unwrap();
            let apps = apps.unwrap();
            assert_eq!(
                apps.keys().collect::<Vec<_>>(),
                ["demo.fixture"],
                "{server}"
            );
            assert!(apps["demo.fixture"].same_instances(&info));
        }
    }

    #[test]
    fn polls_answer_changed_apps_and_list_unknown_ones() {
        for server in SERVERS {
            let p = polls(server, &fixture(server, "polls")).unwrap().unwrap();
            assert_eq!(hosts(&p.apps["demo.fixture"]), ["h1", "h2"], "{server}");
            assert_eq!(p.missing, ["unknown.fixture"], "{server}");
            assert!(polls(server, &fixture(server, "polls_304"))
                .unwrap()
                .is_none());
        }
    }

    #[test]
    fn a_set_wakes_a_poll_on_ours_but_not_on_the_go_original() {
        let p = polls("ours", &fixture("ours", "polls_after_set"))
            .unwrap()
            .unwrap();
        let h1 = p.apps["demo.fixture"]
            .iter()
            .find(|i| i.hostname == "h1")
            .unwrap();
        assert_eq!(h1.metadata["weight"], "20");
        assert_eq!(h1.metadata["list"], "a,b", "set merges metadata");
        // The original bumps only a per-zone timestamp, so the poll waits out its hold.
        assert!(polls("go", &fixture("go", "polls_after_set"))
            .unwrap()
            .is_none());
    }

    #[test]
    fn the_nodes_are_learnt_from_a_poll_of_infra_discovery() {
        for server in SERVERS {
            let p = polls(server, &fixture(server, "polls_self"))
                .unwrap()
                .unwrap();
            // Nothing missing: `[]` from ours, `null` from the Go original.
            assert!(p.missing.is_empty(), "{server}");
            let mut nodes = Nodes::new("sh001", &["seed:1".to_string()], 1, COOLDOWN);
            assert!(nodes.learn(&p.apps[SELF_APPID]), "{server}");
            let known = nodes.known();
            assert_eq!(known.len(), 2, "{server}: {known:?}");
            assert!(
                known[0].starts_with("127.0.0.1:1717"),
                "{server}: {known:?}"
            );
        }
    }

    #[test]
    fn broken_answers_are_decode_errors_that_fail_over() {
        let whole = fixture("ours", "fetch");
        for cut in [0, 1, 10, whole.len() / 2, whole.len() - 3] {
            let e = ok::<InstanceInfo>("n", &whole[..cut]).unwrap_err();
            assert!(matches!(e, Error::Decode { .. }), "cut at {cut}: {e}");
            assert!(e.is_node_failure());
        }
        // The Go original answers a register with status 3 with an empty body.
        assert!(done("n", b"").unwrap_err().is_node_failure());
        // A success whose data is not what the call expects.
        let e = ok::<InstanceInfo>("n", br#"{"code":0,"data":[1,2]}"#).unwrap_err();
        assert!(matches!(e, Error::Decode { .. }), "{e}");
    }
}
