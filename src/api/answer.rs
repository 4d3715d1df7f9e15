//! The typed answers handlers return, and their one writer: each becomes a JSON envelope in the
//! connection's output buffer. Errors are written by [`envelope::error`].

use std::sync::Arc;

use bytes::Bytes;

use super::envelope::{self, Envelope};
use crate::cluster::peer::PeerStatus;
use crate::error::{Error, Kind};
use crate::http::response::{self, Framing};
use crate::json;
use crate::registry::encode::write_instance;
use crate::registry::instance::Instance;

/// The content type of `/metrics`, which Prometheus negotiates for and parses as OpenMetrics.
const OPENMETRICS: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// How a renewed instance compares with the sender's copy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Standing {
    /// Ours is the same version, or the renew came from a client.
    Current,
    /// Ours is newer than the peer's: answer -409 with it, so the peer adopts it.
    Newer,
}

/// One row of the `nodes` answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct NodeInfo {
    pub(crate) addr: String,
    pub(crate) status: PeerStatus,
    pub(crate) zone: String,
}

/// The outcome of one line of a replicate batch.
pub(crate) enum LineResult {
    /// Applied: code 0.
    Done,
    /// A renew whose sender holds an older copy: -409 with ours.
    Conflict(Arc<Instance>),
    /// Refused with this ecode.
    Failed(i32),
}

/// What a handler answers.
pub(crate) enum Answer<'a> {
    /// `{"code":0,"message":"0","ttl":1}`.
    Ok,
    /// Prepared `data` bytes: one app's InstanceInfo (fetch, poll).
    Info(Bytes),
    /// `data` is a map of appid to InstanceInfo (fetchs).
    Infos(Vec<(&'a str, Bytes)>),
    /// polls: the newer apps, and `error: {"-404": [missing apps]}`.
    Polls {
        newer: Vec<(Box<str>, Bytes)>,
        missing: Vec<Box<str>>,
    },
    /// renew: the instance with its new renew time.
    Renewed(Arc<Instance>, Standing),
    Nodes(Vec<NodeInfo>),
    /// replicate: one result per line, echoing instances up to `echo_budget` bytes.
    Batch {
        lines: Vec<LineResult>,
        echo_budget: usize,
    },
    /// `/metrics`: OpenMetrics text.
    Metrics(String),
    /// A dashboard file embedded in the binary, and its content type.
    Asset(&'static str, &'static [u8]),
    /// A dashboard JSON answer: the encoded `data` of an envelope.
    Data(Vec<u8>),
    /// A long-poll that saw no change in time (or at shutdown): ecode -304.
    NotModified,
}

impl Answer<'_> {
    /// Writes the whole response into `out`.
    pub(crate) fn write(self, out: &mut Vec<u8>, framing: Framing) {
        match self {
            Answer::Ok => envelope::ok(out, framing),
            Answer::Info(info) => envelope::ok_data(out, framing, &info),
            Answer::Infos(infos) => {
                let mut e = Envelope::begin(out, framing, 200, 0, "0");
                write_map(e.field("data"), infos.iter().map(|(a, i)| (*a, i)));
                e.end();
            }
            Answer::Polls { newer, missing } => {
                let size: usize = newer.iter().map(|(a, i)| a.len() + i.len() + 4).sum();
                out.reserve(size + 512);
                let mut e = Envelope::begin(out, framing, 200, 0, "0");
                write_map(e.field("data"), newer.iter().map(|(a, i)| (&**a, i)));
                let errors = e.field("error");
                errors.extend_from_slice(b"{\"-404\":[");
                for (n, appid) in missing.iter().enumerate() {
                    if n > 0 {
                        errors.push(b',');
                    }
                    json::write_str(errors, appid);
                }
                errors.extend_from_slice(b"]}");
                e.end();
            }
            Answer::Renewed(inst, standing) => {
                let (code, message) = renew_code(standing);
                let mut e = Envelope::begin(out, framing, 200, code, message);
                write_instance(e.field("data"), &inst);
                e.end();
            }
            Answer::Nodes(nodes) => write_nodes(out, framing, &nodes),
            Answer::Batch { lines, echo_budget } => write_batch(out, framing, &lines, echo_budget),
            Answer::NotModified => {
                envelope::error(out, framing, &Error::new(Kind::NotModified, "-304"))
            }
            Answer::Metrics(text) => {
                let open = response::begin(out, 200, OPENMETRICS, framing);
                out.extend_from_slice(text.as_bytes());
                open.finish(out);
            }
            Answer::Asset(content_type, body) => {
                let open = response::begin(out, 200, content_type, framing);
                out.extend_from_slice(body);
                open.finish(out);
            }
            Answer::Data(data) => envelope::ok_data(out, framing, &data),
        }
    }
}

/// The `code` and `message` of a renew's answer.
fn renew_code(standing: Standing) -> (i32, &'static str) {
    match standing {
        Standing::Current => (0, "0"),
        Standing::Newer => (-409, "conflict: this node has a newer instance"),
    }
}

/// `{"appid":info,...}` from prepared InstanceInfo bytes.
fn write_map<'b>(data: &mut Vec<u8>, apps: impl Iterator<Item = (&'b str, &'b Bytes)>) {
    data.push(b'{');
    for (n, (appid, info)) in apps.enumerate() {
        if n > 0 {
            data.push(b',');
        }
        json::write_str(data, appid);
        data.push(b':');
        data.extend_from_slice(info);
    }
    data.push(b'}');
}

fn write_nodes(out: &mut Vec<u8>, framing: Framing, nodes: &[NodeInfo]) {
    let mut e = Envelope::begin(out, framing, 200, 0, "0");
    let data = e.field("data");
    data.push(b'[');
    for (n, info) in nodes.iter().enumerate() {
        if n > 0 {
            data.push(b',');
        }
        data.extend_from_slice(b"{\"addr\":");
        json::write_str(data, &info.addr);
        data.extend_from_slice(b",\"status\":");
        json::write_int(data, info.status.code());
        data.extend_from_slice(b",\"zone\":");
        json::write_str(data, &info.zone);
        data.push(b'}');
    }
    data.push(b']');
    e.end();
}

fn write_batch(out: &mut Vec<u8>, framing: Framing, lines: &[LineResult], echo_budget: usize) {
    let mut e = Envelope::begin(out, framing, 200, 0, "0");
    let data = e.field("data");
    let start = data.len();
    data.push(b'[');
    for (n, line) in lines.iter().enumerate() {
        if n > 0 {
            data.push(b',');
        }
        data.extend_from_slice(b"{\"code\":");
        match line {
            LineResult::Done => data.push(b'0'),
            LineResult::Conflict(inst) => {
                json::write_int(data, renew_code(Standing::Newer).0);
                // Past the budget the code goes alone: the sender renews again later.
                if data.len() - start < echo_budget {
                    data.extend_from_slice(b",\"data\":");
                    write_instance(data, inst);
                }
            }
            LineResult::Failed(ecode) => json::write_int(data, *ecode),
        }
        data.push(b'}');
    }
    data.push(b']');
    e.end();
}
