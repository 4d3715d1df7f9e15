//! What a [`Client`](crate::Client) is told: seed nodes, this process's identity (region, zone,
//! env, hostname), the token, and every interval and timeout, with the Go SDK's defaults.

use std::time::Duration;

use crate::backoff::Backoff;
use crate::error::{Error, Result};

/// The settings of a [`Client`](crate::Client). Built with [`Config::new`] and the setters:
///
/// ```
/// use std::time::Duration;
/// let config = discovery_client::Config::new(["10.0.0.1:7171", "10.0.0.2:7171"])
///     .zone("sh001")
///     .env("prod")
///     .hostname("host-1")
///     .token("s3cret")
///     .renew_interval(Duration::from_secs(30));
/// ```
#[derive(Debug, Clone)]
pub struct Config {
    pub(crate) nodes: Vec<String>,
    pub(crate) region: String,
    pub(crate) zone: String,
    pub(crate) env: String,
    pub(crate) hostname: String,
    pub(crate) token: Option<String>,
    pub(crate) renew_interval: Duration,
    pub(crate) request_timeout: Duration,
    pub(crate) connect_timeout: Duration,
    pub(crate) poll_timeout: Duration,
    pub(crate) backoff: Backoff,
    pub(crate) self_discovery: bool,
}

impl Config {
    /// Seed nodes as `host:port` (an `http://` prefix is accepted). Region, zone, env and
    /// hostname start from the environment variables `REGION`, `ZONE`, `DEPLOY_ENV` and
    /// `HOSTNAME` (else the kernel's host name), as in the Go SDK.
    pub fn new<S: AsRef<str>>(nodes: impl IntoIterator<Item = S>) -> Config {
        let var = |name| std::env::var(name).unwrap_or_default();
        let mut hostname = var("HOSTNAME");
        if hostname.is_empty() {
            hostname = std::fs::read_to_string("/proc/sys/kernel/hostname")
                .unwrap_or_default()
                .trim()
                .to_string();
        }
        Config {
            nodes: nodes
                .into_iter()
                .map(|n| {
                    let n = n.as_ref().trim();
                    n.strip_prefix("http://")
                        .unwrap_or(n)
                        .trim_end_matches('/')
                        .to_string()
                })
                .filter(|n| !n.is_empty())
                .collect(),
            region: var("REGION"),
            zone: var("ZONE"),
            env: var("DEPLOY_ENV"),
            hostname,
            token: None,
            renew_interval: Duration::from_secs(30),
            request_timeout: Duration::from_secs(10),
            connect_timeout: Duration::from_secs(3),
            poll_timeout: Duration::from_secs(40),
            backoff: Backoff::default(),
            self_discovery: true,
        }
    }

    /// This process's region (sent with registrations).
    pub fn region(mut self, region: &str) -> Config {
        self.region = region.to_string();
        self
    }

    /// This process's zone: registrations are made in it and nodes of it are preferred.
    pub fn zone(mut self, zone: &str) -> Config {
        self.zone = zone.to_string();
        self
    }

    /// The deployment environment to register in and read from (`dev`, `prod`...).
    pub fn env(mut self, env: &str) -> Config {
        self.env = env.to_string();
        self
    }

    /// This process's instance name: the `hostname` of its registrations and of its polls.
    pub fn hostname(mut self, hostname: &str) -> Config {
        self.hostname = hostname.to_string();
        self
    }

    /// Sent as `Authorization: Bearer <token>` with every request.
    pub fn token(mut self, token: &str) -> Config {
        self.token = Some(token.to_string());
        self
    }

    /// How often a registration is renewed (30 s; nodes evict after 90 s without a renew).
    pub fn renew_interval(mut self, every: Duration) -> Config {
        self.renew_interval = every;
        self
    }

    /// The limit on each request other than a long-poll, connection included (10 s).
    pub fn request_timeout(mut self, timeout: Duration) -> Config {
        self.request_timeout = timeout;
        self
    }

    /// The limit on opening a connection to a node (3 s).
    pub fn connect_timeout(mut self, timeout: Duration) -> Config {
        self.connect_timeout = timeout;
        self
    }

    /// The limit on one long-poll (40 s; nodes hold a poll 30 s and then answer -304).
    pub fn poll_timeout(mut self, timeout: Duration) -> Config {
        self.poll_timeout = timeout;
        self
    }

    /// The waits between retries after failures (500 ms doubling to 30 s, jittered).
    pub fn backoff(mut self, backoff: Backoff) -> Config {
        self.backoff = backoff;
        self
    }

    /// Whether to learn the nodes from `infra.discovery` (on by default). Off, only the seeds
    /// are used: for nodes behind a load balancer whose registered addresses the client cannot
    /// reach.
    pub fn self_discovery(mut self, on: bool) -> Config {
        self.self_discovery = on;
        self
    }

    pub(crate) fn validate(&self) -> Result<()> {
        if self.nodes.is_empty() {
            return Err(Error::Config("no seed node".into()));
        }
        if self.env.is_empty() {
            return Err(Error::Config("env is empty (set it or DEPLOY_ENV)".into()));
        }
        if self.hostname.is_empty() {
            return Err(Error::Config(
                "hostname is empty (set it or HOSTNAME)".into(),
            ));
        }
        if let Some(token) = &self.token {
            if http::HeaderValue::from_str(&format!("Bearer {token}")).is_err() {
                return Err(Error::Config(
                    "the token cannot be sent in an HTTP header".into(),
                ));
            }
        }
        let zero = [
            ("renew_interval", self.renew_interval),
            ("request_timeout", self.request_timeout),
            ("connect_timeout", self.connect_timeout),
            ("poll_timeout", self.poll_timeout),
        ];
        for (name, value) in zero {
            if value.is_zero() {
                return Err(Error::Config(format!("{name} is zero")));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seeds_are_normalised_and_required() {
        let c = Config::new(["http://10.0.0.1:7171/", " 10.0.0.2:7171 ", ""])
            .env("dev")
            .hostname("h");
        assert_eq!(c.nodes, ["10.0.0.1:7171", "10.0.0.2:7171"]);
        assert!(c.validate().is_ok());
        let none: [&str; 0] = [];
        assert!(matches!(
            Config::new(none).env("dev").hostname("h").validate(),
            Err(Error::Config(_))
        ));
    }

    #[test]
    fn env_hostname_token_and_timeouts_are_checked() {
        let c = Config::new(["n:1"]).hostname("h");
        assert!(c.clone().env("").validate().is_err());
        assert!(c.clone().env("dev").hostname("").validate().is_err());
        assert!(c.clone().env("dev").token("a\nb").validate().is_err());
        assert!(c
            .clone()
            .env("dev")
            .poll_timeout(Duration::ZERO)
            .validate()
            .is_err());
        assert!(c.env("dev").token("abc").validate().is_ok());
    }
}
