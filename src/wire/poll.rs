//! `poll` and `polls` requests: long-polls on one app or several, each with the
//! `latest_timestamp` the client last saw. Owned, because a parked poll outlives its request.

use super::params::Params;
use super::Limits;
use crate::error::{Error, Result};

/// Which of the two endpoints asked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PollKind {
    /// `poll`: one app, answered with its InstanceInfo.
    One,
    /// `polls`: several apps, answered with a map of them.
    Many,
}

/// A validated poll request.
#[derive(Debug, Clone)]
pub struct Poll {
    pub(crate) env: Box<str>,
    pub(crate) zone: Option<Box<str>>,
    /// Each watched app with the client's latest_timestamp for it.
    pub(crate) apps: Vec<(Box<str>, i64)>,
    pub(crate) kind: PollKind,
}

impl Poll {
    /// Reads a poll or polls query.
    pub fn from_params(p: &Params, kind: PollKind, limits: &Limits) -> Result<Poll> {
        let listed = p.list("appid").len();
        limits.appids(listed)?;
        if listed == 0 {
            return Err(Error::bad_param("appid is required"));
        }
        let env = p.required("env")?;
        p.required("hostname")?;
        let mut all_since = p.i64_list("latest_timestamp")?;
        if kind == PollKind::One {
            all_since.resize(1, 0);
        } else if all_since.len() != listed {
            return Err(Error::bad_param(format!(
                "latest_timestamp has {} values for {listed} appids",
                all_since.len()
            )));
        }
        // An app named twice is watched (and answered) once, with its first timestamp.
        let mut unique = p.unique_list("appid");
        if kind == PollKind::One {
            unique.truncate(1);
        }
        Ok(Poll {
            env: env.into(),
            zone: p.get("zone").map(Into::into),
            apps: unique
                .into_iter()
                .map(|(i, a)| (a.into(), all_since[i]))
                .collect(),
            kind,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_pair_with_first_naming() {
        let p = Params::parse(
            b"appid=a,b,a&env=dev&hostname=c&latest_timestamp=1,2,3",
            b"",
        )
        .unwrap();
        let poll = Poll::from_params(&p, PollKind::Many, &Limits::DEFAULT).unwrap();
        let apps: Vec<(&str, i64)> = poll.apps.iter().map(|(a, t)| (&**a, *t)).collect();
        assert_eq!(apps, [("a", 1), ("b", 2)]);
        let one = Poll::from_params(&p, PollKind::One, &Limits::DEFAULT).unwrap();
        assert_eq!(one.apps.len(), 1);
        let bad = Params::parse(b"appid=a,b&env=dev&hostname=c&latest_timestamp=1", b"").unwrap();
        assert_eq!(
            Poll::from_params(&bad, PollKind::Many, &Limits::DEFAULT)
                .unwrap_err()
                .ecode(),
            -400
        );
    }
}
