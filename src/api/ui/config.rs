//! GET `/ui/api/config`: the effective configuration (file, flags and environment merged),
//! secrets masked, for the dashboard's config page.

use super::super::answer::Answer;
use super::super::context::Api;
use super::array;
use crate::error::Result;
use crate::json;

/// Handles the config view: `[[key, value], ...]` in the file's order.
pub(crate) fn handle<'a>(api: &Api, _: ()) -> Result<Answer<'a>> {
    let mut out = Vec::with_capacity(2048);
    array(&mut out, api.effective_config.iter(), |out, (k, v)| {
        out.push(b'[');
        json::write_str(out, k);
        out.push(b',');
        json::write_str(out, v);
        out.push(b']');
    });
    Ok(Answer::Data(out))
}
