//! GET `/discovery/nodes`: the discovery nodes of this zone and their status.

use super::envelope::Envelope;
use crate::http::response::Framing;
use crate::node::Node;
use crate::registry::json;

/// Handles nodes.
pub fn handle(node: &Node, out: &mut Vec<u8>, framing: Framing) {
    let mut e = Envelope::begin(out, framing, 200, 0, "0");
    let data = e.field("data");
    data.push(b'[');
    for (n, info) in node.nodes().iter().enumerate() {
        if n > 0 {
            data.push(b',');
        }
        data.extend_from_slice(b"{\"addr\":");
        json::write_str(data, &info.addr);
        data.extend_from_slice(b",\"status\":");
        json::write_int(data, info.status);
        data.extend_from_slice(b",\"zone\":");
        json::write_str(data, &info.zone);
        data.push(b'}');
    }
    data.push(b']');
    e.end();
}
