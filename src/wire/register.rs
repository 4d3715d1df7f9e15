//! `register`: add or replace an instance. Decoded from a client's or peer's form, encoded as a
//! form for peers (the original's per-op protocol, which Go nodes and ours accept).

use super::params::Params;
use super::{int, metadata, parse_status, peer_form, Hop, Origin, Rules};
use crate::error::{Error, Result};
use crate::identity::SELF_APPID;
use crate::registry::encode::write_metadata;
use crate::registry::instance::{Instance, Registration};

/// Most addresses an `infra.discovery` instance (a discovery node) may register.
pub const MAX_NODE_ADDRS: usize = 8;

/// A register request.
#[derive(Debug, Clone)]
pub struct Register {
    pub reg: Registration,
    pub origin: Origin,
}

impl Register {
    /// Reads a register form; its timestamps must pass `rules`.
    pub fn from_params(p: &Params, rules: &Rules) -> Result<Register> {
        let addrs: Vec<String> = p.list("addrs").into_iter().map(str::to_owned).collect();
        let reg = Registration {
            region: p.get("region").unwrap_or_default().to_owned(),
            zone: p.required("zone")?.to_owned(),
            env: p.required("env")?.to_owned(),
            appid: p.required("appid")?.to_owned(),
            hostname: p.required("hostname")?.to_owned(),
            version: p.get("version").unwrap_or_default().to_owned(),
            status: parse_status(p.required("status")?)?,
            metadata: match p.get("metadata") {
                Some(m) => metadata::from_text(m)?,
                None => None,
            },
            reg_ts: rules.timestamp(p, "reg_timestamp")?,
            dirty_ts: rules.timestamp(p, "dirty_timestamp")?,
            latest_ts: rules.timestamp(p, "latest_timestamp")?,
            renew_ts: None,
            // Only our peers send it (the original does not): nodes then agree on it.
            up_ts: rules.timestamp(p, "up_timestamp")?,
            addrs,
        };
        if reg.addrs.is_empty() {
            return Err(Error::bad_param("addrs is required"));
        }
        if reg.addrs.len() > rules.limits.max_addrs {
            return Err(Error::limit(format!(
                "{} addrs, above limits.maxAddrs ({})",
                reg.addrs.len(),
                rules.limits.max_addrs
            )));
        }
        if let Some(m) = &reg.metadata {
            rules.limits.metadata.check(m)?;
        }
        let forwarded = forwarded_len(&reg, rules.now_ns, rules.limits.max_body);
        if forwarded > rules.limits.max_body {
            return Err(Error::limit(format!(
                "this register would be {forwarded} bytes once forwarded to a peer, above httpServer.maxBody ({})",
                rules.limits.max_body
            )));
        }
        // A node's addresses become peers: a few are plenty, thousands would be an attack.
        if reg.appid == SELF_APPID && reg.addrs.len() > MAX_NODE_ADDRS {
            return Err(Error::bad_param(format!(
                "{SELF_APPID} instances have at most {MAX_NODE_ADDRS} addrs"
            )));
        }
        Ok(Register {
            reg,
            origin: Origin::from_params(p)?,
        })
    }
}

/// The size of the form that would forward `reg` to a peer, where it matters: a cheap upper
/// bound when that is within `max_body`, the exact size otherwise. Escaping can triple a byte.
fn forwarded_len(reg: &Registration, now: i64, max_body: usize) -> usize {
    let fields: usize = [
        &reg.region,
        &reg.zone,
        &reg.env,
        &reg.appid,
        &reg.hostname,
        &reg.version,
    ]
    .iter()
    .map(|s| s.len())
    .chain(reg.addrs.iter().map(|a| a.len() + 8))
    .chain(
        reg.metadata
            .iter()
            .flatten()
            .map(|(k, v)| 2 * (k.len() + v.len()) + 6),
    )
    .sum();
    let bound = 3 * fields + 512;
    if bound <= max_body {
        return bound;
    }
    // The timestamps the form carries are 20 characters at most, whatever they are.
    form(&Instance::new(reg, now, None), Hop::OtherZone).len() + 64
}

/// The form that forwards `inst` to a peer.
pub fn form(inst: &Instance, hop: Hop) -> String {
    let i = inst;
    let mut f = peer_form(hop, i.region(), i.zone(), i.env(), i.appid());
    f.append_pair("hostname", &i.hostname);
    // Repeated keys: a Go peer stores a comma-joined list as one address.
    for a in i.addrs.iter() {
        f.append_pair("addrs", a);
    }
    f.append_pair("status", &int(i64::from(i.status)));
    f.append_pair("version", &i.version);
    let mut meta = Vec::new();
    write_metadata(&mut meta, i.metadata.as_ref());
    f.append_pair("metadata", &String::from_utf8_lossy(&meta));
    f.append_pair("reg_timestamp", &int(i.reg_ts));
    f.append_pair("up_timestamp", &int(i.up_ts));
    f.append_pair("dirty_timestamp", &int(i.dirty_ts));
    f.append_pair("latest_timestamp", &int(i.latest_ts));
    f.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    const RULES: Rules = Rules {
        now_ns: 1_000_000_000_000,
        max_skew_ns: 300_000_000_000,
        limits: crate::wire::Limits::DEFAULT,
    };

    #[test]
    fn node_addrs_are_capped() {
        let addrs = ["addrs=http://10.0.0.1:7171"; MAX_NODE_ADDRS + 1].join("&");
        let q = format!("zone=z&env=e&appid={SELF_APPID}&hostname=h&status=1&{addrs}");
        let e =
            Register::from_params(&Params::parse(q.as_bytes(), b"").unwrap(), &RULES).unwrap_err();
        assert!(e.context.contains("at most 8 addrs"), "{}", e.context);
        let q = format!("zone=z&env=e&appid=other&hostname=h&status=1&{addrs}");
        assert!(Register::from_params(&Params::parse(q.as_bytes(), b"").unwrap(), &RULES).is_ok());
    }

    #[test]
    fn peer_form_round_trips_through_the_decoder() {
        let reg = Registration {
            region: "sh".into(),
            zone: "sh001".into(),
            env: "dev".into(),
            appid: "demo".into(),
            hostname: "h1".into(),
            addrs: vec!["http://1.2.3.4:80".into(), "grpc://1.2.3.4:90".into()],
            version: "v1".into(),
            metadata: Some(vec![("k".into(), "a,b".into())]),
            status: 1,
            ..Default::default()
        };
        let inst = Instance::new(&reg, 42, None);
        let text = form(&inst, Hop::InZone);
        let p = Params::parse(b"", text.as_bytes()).unwrap();
        assert_eq!(p.list("addrs"), ["http://1.2.3.4:80", "grpc://1.2.3.4:90"]);
        assert_eq!(p.get("metadata"), Some(r#"{"k":"a,b"}"#));
        assert_eq!(p.get("dirty_timestamp"), Some("42"));
        let back = Register::from_params(&p, &RULES).unwrap();
        assert_eq!(back.origin, Origin::Peer);
        assert_eq!(back.reg.addrs, reg.addrs);
        assert_eq!(back.reg.metadata, reg.metadata);
        assert_eq!((back.reg.appid.as_str(), back.reg.status), ("demo", 1));
        let other = Register::from_params(
            &Params::parse(b"", form(&inst, Hop::OtherZone).as_bytes()).unwrap(),
            &RULES,
        );
        assert_eq!(other.unwrap().origin, Origin::OtherZone);
    }

    #[test]
    fn addrs_and_status_are_required() {
        let p = Params::parse(b"zone=z&env=e&appid=a&hostname=h&status=1", b"").unwrap();
        assert_eq!(
            Register::from_params(&p, &RULES).unwrap_err().context,
            "addrs is required"
        );
        let p = Params::parse(b"zone=z&env=e&appid=a&hostname=h&status=3&addrs=x", b"").unwrap();
        assert_eq!(Register::from_params(&p, &RULES).unwrap_err().ecode(), -400);
    }

    mod round_trip {
        use proptest::prelude::*;

        use super::*;
        use crate::wire::Limits;

        fn text() -> impl Strategy<Value = String> {
            r#"[a-z][ -~\x01\x7fé"\\%&=+]{0,12}"#
        }

        fn registration() -> impl Strategy<Value = Registration> {
            (
                (text(), text(), text(), text(), text()),
                proptest::collection::vec("[a-z]{1,8}://[0-9.:/a-z?=&%]{1,40}", 1..4),
                proptest::collection::btree_map(
                    r#"[ -~\x01é"\\]{1,8}"#,
                    r#"[ -~\x01é"\\]{0,200}"#,
                    0..12,
                ),
                1u32..=2,
            )
                .prop_map(
                    |((zone, env, appid, hostname, version), addrs, meta, status)| Registration {
                        region: "sh".into(),
                        zone,
                        env,
                        appid,
                        hostname,
                        addrs,
                        version,
                        metadata: Some(
                            meta.into_iter()
                                .map(|(k, v)| (k.into(), v.into()))
                                .collect(),
                        ),
                        status,
                        ..Default::default()
                    },
                )
        }

        /// The form a client would send for `reg`.
        fn client_form(reg: &Registration) -> String {
            let mut f = form_urlencoded::Serializer::new(String::new());
            f.append_pair("zone", &reg.zone);
            f.append_pair("env", &reg.env);
            f.append_pair("appid", &reg.appid);
            f.append_pair("hostname", &reg.hostname);
            f.append_pair("version", &reg.version);
            f.append_pair("status", &reg.status.to_string());
            for a in &reg.addrs {
                f.append_pair("addrs", a);
            }
            let mut meta = Vec::new();
            write_metadata(&mut meta, reg.metadata.as_ref());
            f.append_pair("metadata", &String::from_utf8_lossy(&meta));
            f.finish()
        }

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(512))]

            #[test]
            fn the_peer_form_decodes_to_the_same_instance(reg in registration()) {
                let inst = Instance::new(&reg, 1_000_000_000_000, None);
                let text = form(&inst, Hop::InZone);
                let p = Params::parse(b"", text.as_bytes()).unwrap();
                let back = Register::from_params(&p, &RULES).unwrap().reg;
                prop_assert_eq!(&back.zone, &reg.zone);
                prop_assert_eq!(&back.env, &reg.env);
                prop_assert_eq!(&back.appid, &reg.appid);
                prop_assert_eq!(&back.hostname, &reg.hostname);
                prop_assert_eq!(&back.version, &reg.version);
                prop_assert_eq!(&back.addrs, &reg.addrs);
                prop_assert_eq!(&back.metadata, &reg.metadata);
                prop_assert_eq!(back.status, reg.status);
                prop_assert_eq!(back.dirty_ts, Some(inst.dirty_ts));
                prop_assert_eq!(back.up_ts, Some(inst.up_ts));
            }

            #[test]
            fn a_register_that_fits_is_forwarded_in_a_body_that_fits(reg in registration()) {
                let rules = Rules {
                    limits: Limits {
                        max_body: 2048,
                        ..Limits::DEFAULT
                    },
                    ..RULES
                };
                let sent = client_form(&reg);
                let p = Params::parse(b"", sent.as_bytes()).unwrap();
                if sent.len() <= rules.limits.max_body {
                    if let Ok(accepted) = Register::from_params(&p, &rules) {
                        let inst = Instance::new(&accepted.reg, rules.now_ns, None);
                        prop_assert!(form(&inst, Hop::OtherZone).len() <= rules.limits.max_body);
                    }
                }
            }
        }
    }
}
