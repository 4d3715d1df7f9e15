//! Encoding instances as the original's JSON objects, straight into the byte buffers that become
//! a snapshot's prepared answers, a renew's answer or `fetch/all`. Field order follows the
//! original's Go structs.

use super::instance::{Instance, Metadata};
use crate::json::{write_int, write_str};

fn field_str(out: &mut Vec<u8>, name: &str, value: &str) {
    write_str(out, name);
    out.push(b':');
    write_str(out, value);
    out.push(b',');
}

fn field_int(out: &mut Vec<u8>, name: &str, value: i64) {
    write_str(out, name);
    out.push(b':');
    write_int(out, value);
}

/// Appends metadata as a JSON object, or `null` when there is none.
pub fn write_metadata(out: &mut Vec<u8>, metadata: Option<&Metadata>) {
    let Some(pairs) = metadata else {
        out.extend_from_slice(b"null");
        return;
    };
    out.push(b'{');
    for (n, (k, v)) in pairs.iter().enumerate() {
        if n > 0 {
            out.push(b',');
        }
        write_str(out, k);
        out.push(b':');
        write_str(out, v);
    }
    out.push(b'}');
}

/// Appends one instance object, reading its renew time now.
pub fn write_instance(out: &mut Vec<u8>, i: &Instance) {
    out.push(b'{');
    field_str(out, "region", i.region());
    field_str(out, "zone", i.zone());
    field_str(out, "env", i.env());
    field_str(out, "appid", i.appid());
    field_str(out, "hostname", &i.hostname);
    out.extend_from_slice(b"\"addrs\":[");
    for (n, a) in i.addrs.iter().enumerate() {
        if n > 0 {
            out.push(b',');
        }
        write_str(out, a);
    }
    out.extend_from_slice(b"],");
    field_str(out, "version", &i.version);
    out.extend_from_slice(b"\"metadata\":");
    write_metadata(out, i.metadata.as_ref());
    out.push(b',');
    field_int(out, "status", i64::from(i.status));
    out.push(b',');
    field_int(out, "reg_timestamp", i.reg_ts);
    out.push(b',');
    field_int(out, "up_timestamp", i.up_ts);
    out.push(b',');
    field_int(out, "renew_timestamp", i.renew_ts());
    out.push(b',');
    field_int(out, "dirty_timestamp", i.dirty_ts);
    out.push(b',');
    field_int(out, "latest_timestamp", i.latest_ts);
    out.push(b'}');
}

/// Appends a JSON array of instances.
pub fn write_instances<'a>(out: &mut Vec<u8>, list: impl IntoIterator<Item = &'a Instance>) {
    out.push(b'[');
    for (n, i) in list.into_iter().enumerate() {
        if n > 0 {
            out.push(b',');
        }
        write_instance(out, i);
    }
    out.push(b']');
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registry::instance::Registration;

    #[test]
    fn instance_fields_in_the_original_order() {
        let reg = Registration {
            region: "sh".into(),
            zone: "sh001".into(),
            env: "dev".into(),
            appid: "demo".into(),
            hostname: "h1".into(),
            addrs: vec!["http://1.2.3.4:80".into()],
            version: "v1".into(),
            metadata: Some(vec![("a".into(), "1".into())]),
            status: 1,
            ..Default::default()
        };
        let mut out = Vec::new();
        write_instance(&mut out, &Instance::new(&reg, 7, None));
        assert_eq!(
            String::from_utf8(out).unwrap(),
            r#"{"region":"sh","zone":"sh001","env":"dev","appid":"demo","hostname":"h1","addrs":["http://1.2.3.4:80"],"version":"v1","metadata":{"a":"1"},"status":1,"reg_timestamp":7,"up_timestamp":7,"renew_timestamp":7,"dirty_timestamp":7,"latest_timestamp":7}"#
        );
    }
}
