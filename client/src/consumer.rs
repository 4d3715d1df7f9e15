//! The consumer side: one-shot reads ([`Client::fetch`], [`Client::fetchs`]) and the long-poll
//! loop behind [`Client::watch`], which yields a [`Watch`] stream of instance sets.

use std::collections::BTreeMap;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Instant;

use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use crate::answer;
use crate::client::{Call, Client};
use crate::error::{Error, Result};
use crate::model::{Apps, InstanceInfo};

/// Status mask of the reads: instances that take traffic.
const UP: &str = "1";

impl Client {
    /// The UP instances of `appid` in every zone. An app the node does not know is
    /// [`Error::Code`] -404 ([`Error::is_not_found`]).
    pub async fn fetch(&self, appid: &str) -> Result<InstanceInfo> {
        let shared = &self.shared;
        if shared.is_closed() {
            return Err(Error::Closed);
        }
        let params = [
            ("appid", appid),
            ("env", shared.config.env.as_str()),
            ("status", UP),
        ];
        let call = Call {
            post: false,
            path: "fetch",
            params: &params,
        };
        shared.call(&call, answer::ok).await
    }

    /// The UP instances of several apps in one request; apps the node does not know are left
    /// out of the answer.
    pub async fn fetchs<S: AsRef<str>>(&self, appids: impl IntoIterator<Item = S>) -> Result<Apps> {
        let shared = &self.shared;
        if shared.is_closed() {
            return Err(Error::Closed);
        }
        let appids: Vec<S> = appids.into_iter().collect();
        if appids.is_empty() {
            return Ok(Apps::new());
        }
        let mut params: Vec<(&str, &str)> = appids.iter().map(|a| ("appid", a.as_ref())).collect();
        params.push(("env", shared.config.env.as_str()));
        params.push(("status", UP));
        let call = Call {
            post: false,
            path: "fetchs",
            params: &params,
        };
        shared
            .call(&call, |node, body| {
                answer::ok::<Option<Apps>>(node, body).map(Option::unwrap_or_default)
            })
            .await
    }

    /// Watches `appids` with long-polls and yields the UP instances of every watched app that
    /// has any, each time one of them changes: at once for the apps that exist, then on every
    /// register, cancel, status or metadata change. Never yields an empty set: when a node
    /// fails, restarts empty or loses an app, the last set is kept (as the Go SDK does) and
    /// polling resumes on another node with backoff. Ends when the client shuts down.
    pub fn watch<S: AsRef<str>>(&self, appids: impl IntoIterator<Item = S>) -> Result<Watch> {
        if self.shared.is_closed() {
            return Err(Error::Closed);
        }
        let mut appids: Vec<String> = appids.into_iter().map(|a| a.as_ref().to_string()).collect();
        appids.sort();
        appids.dedup();
        if appids.is_empty() || appids.iter().any(String::is_empty) {
            return Err(Error::Config(
                "watch needs at least one non-empty appid".into(),
            ));
        }
        // One set in hand: a slow reader holds the polls back, and the poll after its read
        // brings it up to date (at once, as the timestamps it sends are then behind).
        let (tx, rx) = mpsc::channel(1);
        let task = tokio::spawn(long_poll(self.clone(), appids, tx));
        Ok(Watch { rx, task })
    }
}

/// A stream of instance sets from [`Client::watch`]. Read it with [`Watch::next`] or as a
/// [`futures_core::Stream`]; dropping it stops the polls.
#[derive(Debug)]
pub struct Watch {
    rx: mpsc::Receiver<Apps>,
    task: JoinHandle<()>,
}

impl Watch {
    /// The next set, when something changed; `None` once the client is shut down.
    pub async fn next(&mut self) -> Option<Apps> {
        self.rx.recv().await
    }
}

impl futures_core::Stream for Watch {
    type Item = Apps;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Apps>> {
        self.rx.poll_recv(cx)
    }
}

impl Drop for Watch {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// What a watch holds between polls.
struct WatchState {
    /// appid → latest_timestamp seen from the node being polled.
    since: BTreeMap<String, i64>,
    /// The last set yielded, per app.
    seen: Apps,
}

impl WatchState {
    /// Takes a poll's answer; says whether any timestamp moved (else the node answered
    /// nothing new, and asking again at once would spin) and whether the set changed.
    fn take(&mut self, apps: Apps) -> (bool, bool) {
        let (mut advanced, mut changed) = (false, false);
        for (appid, info) in apps {
            // Apps not watched here (a node may answer more) and answers not newer (the Go
            // SDK treats a 0 timestamp as a server error) are skipped.
            let Some(since) = self.since.get_mut(&appid) else {
                continue;
            };
            if info.latest_timestamp <= *since {
                continue;
            }
            *since = info.latest_timestamp;
            advanced = true;
            if info.is_empty() {
                continue;
            }
            let same = self
                .seen
                .get(&appid)
                .is_some_and(|old| old.same_instances(&info));
            self.seen.insert(appid, info);
            changed |= !same;
        }
        (advanced, changed)
    }
}

async fn long_poll(client: Client, appids: Vec<String>, tx: mpsc::Sender<Apps>) {
    let shared = &client.shared;
    let config = &shared.config;
    let mut state = WatchState {
        since: appids.iter().map(|a| (a.clone(), 0)).collect(),
        seen: Apps::new(),
    };
    let mut polled: Option<String> = None;
    let mut failures = 0u32;
    while !shared.is_closed() {
        let Some(node) = shared.nodes().pick(Instant::now()) else {
            return;
        };
        // Timestamps are per node: on another node, ask for everything and compare.
        if polled.as_deref() != Some(node.as_str()) {
            state.since.values_mut().for_each(|t| *t = 0);
            polled = Some(node.clone());
        }
        let stamps: Vec<String> = state.since.values().map(i64::to_string).collect();
        let mut params: Vec<(&str, &str)> =
            state.since.keys().map(|a| ("appid", a.as_str())).collect();
        params.extend(stamps.iter().map(|t| ("latest_timestamp", t.as_str())));
        params.push(("env", config.env.as_str()));
        params.push(("hostname", config.hostname.as_str()));
        let poll = async {
            let body = shared
                .transport
                .get(&node, "polls", &params, config.poll_timeout)
                .await?;
            answer::polls(&node, &body)
        };
        let result = tokio::select! {
            r = poll => r,
            _ = shared.closed() => return,
            _ = tx.closed() => return,
        };
        let progressed = match result {
            Ok(None) => true,
            Ok(Some(polled)) => {
                if !polled.missing.is_empty() {
                    tracing::debug!(node = %node, apps = ?polled.missing, "discovery: watched apps unknown on the node");
                }
                let (advanced, changed) = state.take(polled.apps);
                if changed {
                    tokio::select! {
                        sent = tx.send(state.seen.clone()) => if sent.is_err() { return },
                        _ = shared.closed() => return,
                    }
                }
                advanced
            }
            Err(e) => {
                tracing::warn!(node = %node, error = %e, "discovery: watch poll failed");
                if e.is_node_failure() {
                    shared.node_failed(&node);
                }
                false
            }
        };
        if progressed {
            shared.node_answered(&node);
            failures = 0;
            continue;
        }
        let wait = config.backoff.delay(failures);
        failures = failures.saturating_add(1);
        if shared.sleep_unless_closed(wait).await {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Instance, Status};

    fn info(hosts: &[&str], latest: i64) -> InstanceInfo {
        let list = hosts
            .iter()
            .map(|h| Instance {
                region: "sh".into(),
                zone: "sh001".into(),
                env: "dev".into(),
                appid: "demo".into(),
                hostname: h.to_string(),
                addrs: vec![format!("http://{h}:80")],
                version: String::new(),
                metadata: BTreeMap::new(),
                status: Status::Up,
                reg_timestamp: latest,
                up_timestamp: latest,
                renew_timestamp: latest,
                dirty_timestamp: latest,
                latest_timestamp: latest,
            })
            .collect();
        InstanceInfo {
            instances: BTreeMap::from([("sh001".to_string(), list)]),
            scheduler: None,
            latest_timestamp: latest,
        }
    }

    fn state(apps: &[&str]) -> WatchState {
        WatchState {
            since: apps.iter().map(|a| (a.to_string(), 0)).collect(),
            seen: Apps::new(),
        }
    }

    fn one(appid: &str, i: InstanceInfo) -> Apps {
        Apps::from([(appid.to_string(), i)])
    }

    #[test]
    fn yields_on_change_only_and_never_an_empty_set() {
        let mut s = state(&["demo"]);
        assert_eq!(s.take(one("demo", info(&["h1"], 10))), (true, true));
        // The same instances again (another node after a failover, renews): no yield.
        assert_eq!(s.take(one("demo", info(&["h1"], 20))), (true, false));
        assert_eq!(s.take(one("demo", info(&["h1", "h2"], 30))), (true, true));
        // No instance left: the last set is kept.
        assert_eq!(s.take(one("demo", info(&[], 40))), (true, false));
        assert_eq!(s.seen["demo"].len(), 2);
        assert_eq!(s.since["demo"], 40);
    }

    #[test]
    fn stale_zero_and_unwatched_answers_do_not_count() {
        let mut s = state(&["demo"]);
        assert_eq!(s.take(one("demo", info(&["h1"], 10))), (true, true));
        assert_eq!(s.take(one("demo", info(&["h9"], 10))), (false, false));
        assert_eq!(s.take(one("demo", info(&["h9"], 0))), (false, false));
        assert_eq!(s.take(one("other", info(&["h9"], 99))), (false, false));
        assert_eq!(s.seen.len(), 1);
        assert_eq!(s.seen["demo"].iter().next().unwrap().hostname, "h1");
    }
}
