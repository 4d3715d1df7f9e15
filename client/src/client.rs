//! The [`Client`]: shared state of one process's connection to the registry (configuration,
//! HTTP pool, known nodes, live registrations), the failover loop every call goes through, the
//! background task that learns the nodes from `infra.discovery`, and shutdown.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::answer;
use crate::config::Config;
use crate::error::{Error, Result};
use crate::nodes::{Nodes, COOLDOWN, SELF_APPID};
use crate::transport::Transport;

/// How many different nodes one call tries before it gives up with the last error.
pub(crate) const MAX_TRIES: usize = 3;

/// A connection to a discovery cluster: cheap to clone, every clone shares the nodes, the HTTP
/// connections and the registrations. Must be created and used inside a tokio runtime.
#[derive(Debug, Clone)]
pub struct Client {
    pub(crate) shared: Arc<Shared>,
    /// Ends the node-learning task when the last clone (registrations and watches hold one)
    /// goes away.
    _life: Arc<Background>,
}

/// What every clone, registration and watch of one client shares.
#[derive(Debug)]
pub(crate) struct Shared {
    pub config: Config,
    pub transport: Transport,
    nodes: Mutex<Nodes>,
    /// appid → the end signal of its renew task (true once it has cancelled and stopped).
    pub registrations: Mutex<HashMap<String, watch::Receiver<bool>>>,
    /// True once [`Client::shutdown`] started; every background loop watches it.
    closed: watch::Sender<bool>,
}

#[derive(Debug)]
struct Background(Option<JoinHandle<()>>);

impl Drop for Background {
    fn drop(&mut self) {
        if let Some(task) = &self.0 {
            task.abort();
        }
    }
}

/// One request to whichever node is picked.
pub(crate) struct Call<'a> {
    pub post: bool,
    pub path: &'a str,
    pub params: &'a [(&'a str, &'a str)],
}

impl Client {
    /// A client for the nodes of `config`. Starts learning the live nodes from
    /// `infra.discovery` in the background (unless turned off); until then, and whenever the
    /// learnt ones fail, the seeds are used. Fails on an unusable configuration or outside a
    /// tokio runtime.
    pub fn new(config: Config) -> Result<Client> {
        config.validate()?;
        let runtime = tokio::runtime::Handle::try_current().map_err(|_| {
            Error::Config("Client::new must be called inside a tokio runtime".into())
        })?;
        let transport = Transport::new(config.connect_timeout, config.token.as_deref())?;
        let nodes = Nodes::new(&config.zone, &config.nodes, fastrand::u64(..), COOLDOWN);
        let shared = Arc::new(Shared {
            transport,
            nodes: Mutex::new(nodes),
            registrations: Mutex::new(HashMap::new()),
            closed: watch::Sender::new(false),
            config,
        });
        let task = shared
            .config
            .self_discovery
            .then(|| runtime.spawn(learn_nodes(shared.clone())));
        Ok(Client {
            shared,
            _life: Arc::new(Background(task)),
        })
    }

    /// The nodes this client knows, in the order it would try them now: the one in use first.
    pub fn nodes(&self) -> Vec<String> {
        self.shared.nodes().order(Instant::now())
    }

    /// Cancels every registration of this client (each waits for its renew in flight), stops
    /// the background tasks and ends every [`Watch`](crate::Watch); later calls fail with
    /// [`Error::Closed`]. Call it before the runtime ends: a registration dropped while the
    /// runtime shuts down may not get its cancel out.
    pub async fn shutdown(&self) {
        self.shared.closed.send_replace(true);
        let running: Vec<watch::Receiver<bool>> = self
            .shared
            .registrations
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .values()
            .cloned()
            .collect();
        for mut done in running {
            // An error means the task is gone already.
            let _ = done.wait_for(|d| *d).await;
        }
    }
}

impl Shared {
    pub fn nodes(&self) -> MutexGuard<'_, Nodes> {
        // A holder that panicked leaves at worst an outdated node list, still a usable one.
        self.nodes.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn is_closed(&self) -> bool {
        *self.closed.borrow()
    }

    /// Resolves when the client is shut down.
    pub async fn closed(&self) {
        let mut rx = self.closed.subscribe();
        // The sender lives as long as `self`.
        let _ = rx.wait_for(|c| *c).await;
    }

    /// Sleeps `d`, or less if the client is shut down meanwhile; says whether it was.
    pub async fn sleep_unless_closed(&self, d: Duration) -> bool {
        tokio::select! {
            _ = tokio::time::sleep(d) => self.is_closed(),
            _ = self.closed() => true,
        }
    }

    pub fn node_failed(&self, node: &str) {
        self.nodes().failed(node, Instant::now());
    }

    pub fn node_answered(&self, node: &str) {
        self.nodes().succeeded(node);
    }

    /// Sends `call` to the preferred node and, while the failure is the node's (unreachable,
    /// timed out, 503, -500, an answer that does not decode), to the next ones, up to
    /// [`MAX_TRIES`] nodes. `decode` turns a 200 body into the result.
    pub async fn call<T>(
        &self,
        call: &Call<'_>,
        decode: impl Fn(&str, &[u8]) -> Result<T>,
    ) -> Result<T> {
        let order = self.nodes().order(Instant::now());
        let timeout = self.config.request_timeout;
        let mut last = Error::Config("no node to call".into());
        for node in order.into_iter().take(MAX_TRIES) {
            let sent = if call.post {
                self.transport
                    .post(&node, call.path, call.params, timeout)
                    .await
            } else {
                self.transport
                    .get(&node, call.path, call.params, timeout)
                    .await
            };
            let result = sent.and_then(|body| decode(&node, &body));
            match result {
                Err(e) if e.is_node_failure() => {
                    tracing::warn!(node = %node, error = %e, "discovery: {} failed, trying another node", call.path);
                    self.node_failed(&node);
                    last = e;
                }
                other => {
                    self.node_answered(&node);
                    return other;
                }
            }
        }
        Err(last)
    }
}

/// Long-polls `infra.discovery` for as long as the client lives, as the Go SDK does, and
/// keeps the known nodes in step with it; resumes after failures with backoff.
async fn learn_nodes(shared: Arc<Shared>) {
    let config = &shared.config;
    let mut since = 0i64;
    let mut polled: Option<String> = None;
    let mut failures = 0u32;
    while !shared.is_closed() {
        let Some(node) = shared.nodes().pick(Instant::now()) else {
            return;
        };
        // Timestamps are per node: on another node, ask for everything.
        if polled.as_deref() != Some(node.as_str()) {
            since = 0;
            polled = Some(node.clone());
        }
        let since_text = since.to_string();
        let params = [
            ("appid", SELF_APPID),
            ("env", config.env.as_str()),
            ("hostname", config.hostname.as_str()),
            ("latest_timestamp", since_text.as_str()),
        ];
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
        };
        let progressed = match result {
            Ok(None) => true,
            Ok(Some(polled)) => match polled.apps.get(SELF_APPID) {
                Some(info) if info.latest_timestamp > since => {
                    since = info.latest_timestamp;
                    if shared.nodes().learn(info) {
                        tracing::info!(nodes = ?shared.nodes().known(), "discovery: nodes learnt from {SELF_APPID}");
                    }
                    true
                }
                // An answer that is not newer would be asked again at once: back off instead.
                _ => false,
            },
            Err(e) => {
                tracing::warn!(node = %node, error = %e, "discovery: polling {SELF_APPID} failed");
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
