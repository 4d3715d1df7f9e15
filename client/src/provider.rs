//! The provider side: [`Client::register`] registers a [`Service`] and returns a
//! [`Registration`] whose background task renews it, registers it again when a node answers
//! a renew with -404 (the instance was evicted, cancelled or never reached that node), and
//! cancels it when the handle is cancelled or dropped or the client shuts down.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use tokio::sync::{oneshot, watch};
use tokio::task::JoinHandle;

use crate::answer;
use crate::client::{Call, Client, Shared};
use crate::error::{Error, Result};
use crate::model::{Service, Status};

/// A registered instance, kept alive by a background renew task until [`Registration::cancel`],
/// drop, or [`Client::shutdown`].
#[derive(Debug)]
pub struct Registration {
    client: Client,
    service: Arc<Mutex<Service>>,
    /// Tells the renew task to cancel and stop; taken by `cancel` or drop.
    stop: Option<oneshot::Sender<()>>,
    /// The renew task; its output is the outcome of the final cancel.
    task: Option<JoinHandle<Result<()>>>,
}

impl Client {
    /// Registers `service` as this client's instance (zone, env and hostname from the
    /// [`Config`](crate::Config)) and keeps it registered: renewed every `renew_interval`,
    /// registered again after a -404, retried on another node after a failure. One
    /// registration per appid per client.
    pub async fn register(&self, service: Service) -> Result<Registration> {
        let shared = &self.shared;
        if shared.is_closed() {
            return Err(Error::Closed);
        }
        if shared.config.zone.is_empty() {
            return Err(Error::Config("zone is empty (set it or ZONE)".into()));
        }
        if service.appid.is_empty() || service.addrs.is_empty() {
            return Err(Error::Config(
                "a service needs an appid and at least one address".into(),
            ));
        }
        let (done_tx, done_rx) = watch::channel(false);
        {
            let mut live = shared
                .registrations
                .lock()
                .unwrap_or_else(|p| p.into_inner());
            if live.get(&service.appid).is_some_and(|done| !*done.borrow()) {
                return Err(Error::AlreadyRegistered(service.appid));
            }
            live.insert(service.appid.clone(), done_rx);
        }
        if let Err(e) = register(shared, &service).await {
            forget(shared, &service.appid, &done_tx);
            return Err(e);
        }
        let service = Arc::new(Mutex::new(service));
        let (stop_tx, stop_rx) = oneshot::channel();
        let task = tokio::spawn(keep_alive(self.clone(), service.clone(), stop_rx, done_tx));
        Ok(Registration {
            client: self.clone(),
            service,
            stop: Some(stop_tx),
            task: Some(task),
        })
    }
}

impl Registration {
    /// The service as registered now (with the changes made by `set_*`).
    pub fn service(&self) -> Service {
        lock(&self.service).clone()
    }

    /// Changes the status (take traffic or not). Kept for later registrations too.
    pub async fn set_status(&self, status: Status) -> Result<()> {
        lock(&self.service).status = status;
        let code = status.code().to_string();
        self.set(&[("status", code.as_str())]).await
    }

    /// Adds or replaces metadata keys (other keys stay, as the server merges them). Kept for
    /// later registrations too.
    pub async fn set_metadata(&self, metadata: BTreeMap<String, String>) -> Result<()> {
        let json = serde_json::to_string(&metadata)
            .map_err(|e| Error::Config(format!("metadata: {e}")))?;
        lock(&self.service).metadata.extend(metadata);
        self.set(&[("metadata", json.as_str())]).await
    }

    async fn set(&self, change: &[(&str, &str)]) -> Result<()> {
        let shared = &self.client.shared;
        if shared.is_closed() {
            return Err(Error::Closed);
        }
        let service = self.service();
        let config = &shared.config;
        let mut params = identity(config, &service.appid);
        params.extend_from_slice(change);
        let call = Call {
            post: true,
            path: "set",
            params: &params,
        };
        match shared.call(&call, answer::done).await {
            // The node does not have the instance (-400 unknown hostname, -404): a register
            // carries the new state as well.
            Err(Error::Code { code, .. }) if code == -400 || code == -404 => {
                register(shared, &service).await
            }
            other => other,
        }
    }

    /// Stops renewing and cancels the instance; waits for a renew in flight first. An
    /// instance the node no longer has counts as cancelled.
    pub async fn cancel(mut self) -> Result<()> {
        self.finish().await
    }

    async fn finish(&mut self) -> Result<()> {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        match self.task.take() {
            Some(task) => task
                .await
                .unwrap_or_else(|e| Err(Error::Config(format!("renew task ended: {e}")))),
            None => Ok(()),
        }
    }
}

impl Drop for Registration {
    /// Best effort: the renew task sends the cancel in the background.
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

fn lock(service: &Mutex<Service>) -> std::sync::MutexGuard<'_, Service> {
    service.lock().unwrap_or_else(|p| p.into_inner())
}

/// Drops the registration of `appid` whose end signal is `mine` (not a newer one).
fn forget(shared: &Shared, appid: &str, mine: &watch::Sender<bool>) {
    let mut live = shared
        .registrations
        .lock()
        .unwrap_or_else(|p| p.into_inner());
    if live
        .get(appid)
        .is_some_and(|done| done.same_channel(&mine.subscribe()))
    {
        live.remove(appid);
    }
}

/// zone, env, appid and hostname: what names an instance in renew, cancel and set.
fn identity<'a>(config: &'a crate::Config, appid: &'a str) -> Vec<(&'a str, &'a str)> {
    vec![
        ("region", config.region.as_str()),
        ("zone", config.zone.as_str()),
        ("env", config.env.as_str()),
        ("appid", appid),
        ("hostname", config.hostname.as_str()),
    ]
}

async fn register(shared: &Shared, service: &Service) -> Result<()> {
    let config = &shared.config;
    let status = service.status.code().to_string();
    let metadata = if service.metadata.is_empty() {
        None
    } else {
        Some(
            serde_json::to_string(&service.metadata)
                .map_err(|e| Error::Config(format!("metadata: {e}")))?,
        )
    };
    let mut params = identity(config, &service.appid);
    params.extend(service.addrs.iter().map(|a| ("addrs", a.as_str())));
    params.push(("version", service.version.as_str()));
    params.push(("status", status.as_str()));
    if let Some(m) = &metadata {
        params.push(("metadata", m.as_str()));
    }
    let call = Call {
        post: true,
        path: "register",
        params: &params,
    };
    shared.call(&call, answer::done).await
}

async fn renew(shared: &Shared, appid: &str) -> Result<()> {
    let params = identity(&shared.config, appid);
    let call = Call {
        post: true,
        path: "renew",
        params: &params,
    };
    shared.call(&call, answer::done).await
}

async fn cancel(shared: &Shared, appid: &str) -> Result<()> {
    let params = identity(&shared.config, appid);
    let call = Call {
        post: true,
        path: "cancel",
        params: &params,
    };
    match shared.call(&call, answer::done).await {
        Err(e) if e.is_not_found() => Ok(()),
        other => other,
    }
}

/// The renew loop of one registration; cancels it at the end and says how that went.
async fn keep_alive(
    client: Client,
    service: Arc<Mutex<Service>>,
    mut stop: oneshot::Receiver<()>,
    done: watch::Sender<bool>,
) -> Result<()> {
    let shared = &client.shared;
    let config = &shared.config;
    let appid = lock(&service).appid.clone();
    let mut failures = 0u32;
    let mut wait = config.renew_interval;
    loop {
        tokio::select! {
            _ = tokio::time::sleep(wait) => {}
            _ = &mut stop => break,
            _ = shared.closed() => break,
        }
        let outcome = match renew(shared, &appid).await {
            Err(e) if e.is_not_found() => {
                tracing::info!(appid = %appid, "discovery: renew answered -404, registering again");
                let current = lock(&service).clone();
                register(shared, &current).await
            }
            other => other,
        };
        match outcome {
            Ok(()) => {
                failures = 0;
                wait = config.renew_interval;
            }
            Err(e) => {
                tracing::warn!(appid = %appid, error = %e, "discovery: renew failed");
                // Retry sooner than the next renew, so that one failure does not cost an
                // eviction (nodes evict after three missed renews).
                wait = config.backoff.delay(failures).min(config.renew_interval);
                failures = failures.saturating_add(1);
            }
        }
    }
    let result = cancel(shared, &appid).await;
    if let Err(e) = &result {
        tracing::warn!(appid = %appid, error = %e, "discovery: cancel failed");
    }
    forget(shared, &appid, &done);
    done.send_replace(true);
    result
}
