//! `fetch`, `fetchs` and `fetch/all` requests: reads of one app, several apps, or everything.

use super::params::Params;
use super::Limits;
use crate::error::{Error, Result};

/// A fetch of one app.
#[derive(Debug, Clone, Copy)]
pub struct Fetch<'a> {
    pub(crate) env: &'a str,
    pub(crate) appid: &'a str,
    pub(crate) zone: Option<&'a str>,
    /// Status mask: 1 (up), 2 (waiting) or 3 (both).
    pub(crate) mask: u32,
}

/// A fetch of several apps.
#[derive(Debug, Clone)]
pub struct Fetchs<'a> {
    pub(crate) env: &'a str,
    /// Each app once, in the order first named.
    pub(crate) appids: Vec<&'a str>,
    pub(crate) zone: Option<&'a str>,
    pub(crate) mask: u32,
}

/// Reads the status mask of a fetch: 1 (up), 2 (waiting) or 3 (both).
fn mask(p: &Params) -> Result<u32> {
    let text = p.required("status")?;
    match text.parse::<u32>() {
        Ok(m) if m & 3 != 0 => Ok(m & 3),
        _ => Err(Error::bad_param(format!(
            "status must be a mask of 1 (up) and 2 (waiting), got {text:?}"
        ))),
    }
}

impl<'a> Fetch<'a> {
    /// Reads a fetch query.
    pub fn from_params(p: &'a Params) -> Result<Fetch<'a>> {
        let (appid, env) = (p.required("appid")?, p.required("env")?);
        Ok(Fetch {
            env,
            appid,
            mask: mask(p)?,
            zone: p.get("zone"),
        })
    }
}

impl<'a> Fetchs<'a> {
    /// Reads a fetchs query of at most `limits.max_appids` apps.
    pub fn from_params(p: &'a Params, limits: &Limits) -> Result<Fetchs<'a>> {
        limits.appids(p.list("appid").len())?;
        // An app named twice is answered once, as the original's map does.
        let appids: Vec<&str> = p.unique_list("appid").into_iter().map(|(_, a)| a).collect();
        if appids.is_empty() {
            return Err(Error::bad_param("appid is required"));
        }
        let env = p.required("env")?;
        Ok(Fetchs {
            env,
            appids,
            mask: mask(p)?,
            zone: p.get("zone"),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masks_and_repeats() {
        let p = Params::parse(b"appid=a,b,a&env=dev&status=7", b"").unwrap();
        let f = Fetchs::from_params(&p, &Limits::DEFAULT).unwrap();
        assert_eq!((f.appids.as_slice(), f.mask), (&["a", "b"][..], 3));
        let p = Params::parse(b"appid=a&env=dev&status=4", b"").unwrap();
        assert_eq!(Fetch::from_params(&p).unwrap_err().ecode(), -400);
    }
}
