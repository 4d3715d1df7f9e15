//! The effective configuration as `key = value` text pairs, for the dashboard: what the node
//! runs with after the file, the flags and the environment were merged. Values of keys that
//! name a secret are masked, so a key added later is masked by its name alone.

use std::fmt::Debug;
use std::time::Duration;

use super::Config;

/// Shown instead of a secret's value.
pub(crate) const MASK: &str = "********";

/// Parts of a key's name that mark its value as secret.
const SECRET_WORDS: [&str; 4] = ["token", "secret", "password", "key"];

/// The value to show for `key`: masked when the key names a secret and the value is set.
pub(crate) fn shown(key: &str, value: String) -> String {
    let name = key.rsplit('.').next().unwrap_or(key).to_ascii_lowercase();
    if !value.is_empty() && SECRET_WORDS.iter().any(|w| name.contains(w)) {
        MASK.to_string()
    } else {
        value
    }
}

fn dur(d: Duration) -> String {
    format!("{d:?}")
}

fn list(v: &[String]) -> String {
    v.join(", ")
}

fn opt<T: Debug>(v: &Option<T>) -> String {
    v.as_ref().map(|v| format!("{v:?}")).unwrap_or_default()
}

impl Config {
    /// Every key with its effective value, secrets masked, in the file's order.
    pub(crate) fn effective(&self) -> Vec<(String, String)> {
        let h = &self.http_server;
        let c = &self.http_client;
        let r = &self.registry;
        let a = &self.auth;
        let l = &self.limits;
        let mut pairs: Vec<(String, String)> = vec![
            ("nodes".into(), list(&self.nodes)),
            ("enableprotect".into(), self.enable_protect.to_string()),
            ("env.region".into(), self.env.region.clone()),
            ("env.zone".into(), self.env.zone.clone()),
            ("env.host".into(), self.env.host.clone()),
            ("env.deployenv".into(), self.env.deploy_env.clone()),
            ("httpServer.addr".into(), h.addr.to_string()),
            ("httpServer.timeout".into(), dur(h.timeout)),
            ("httpServer.threads".into(), h.threads.to_string()),
            ("httpServer.maxBody".into(), h.max_body_bytes.to_string()),
            ("httpServer.idleTimeout".into(), dur(h.idle_timeout)),
            ("httpServer.headerTimeout".into(), dur(h.header_timeout)),
            ("httpServer.driver".into(), h.driver.name().into()),
            ("httpClient.dial".into(), dur(c.dial)),
            ("httpClient.keepAlive".into(), dur(c.keep_alive)),
            ("httpClient.timeout".into(), dur(c.timeout)),
            ("log.stdout".into(), self.log.stdout.to_string()),
            ("log.dir".into(), opt(&self.log.dir)),
            ("log.format".into(), self.log.format.name().into()),
            ("registry.pollHold".into(), dur(r.poll_hold)),
            ("registry.evictInterval".into(), dur(r.evict_interval)),
            ("registry.evictAfter".into(), dur(r.evict_after)),
            (
                "registry.evictAfterProtected".into(),
                dur(r.evict_after_protected),
            ),
            ("registry.guardRecount".into(), dur(r.guard_recount)),
            ("registry.protectTimeout".into(), dur(r.protect_timeout)),
            (
                "registry.selfRenewInterval".into(),
                dur(r.self_renew_interval),
            ),
            ("registry.schedulerReload".into(), dur(r.scheduler_reload)),
            ("registry.maxClockSkew".into(), dur(r.max_clock_skew)),
            ("registry.snapshot".into(), opt(&r.snapshot)),
            ("registry.snapshotInterval".into(), dur(r.snapshot_interval)),
            ("auth.peerToken".into(), opt(&a.peer_token)),
            ("auth.peerAddrs".into(), opt(&a.peer_addrs)),
            ("auth.writeToken".into(), opt(&a.write_token)),
            ("auth.writeFrom".into(), format!("{:?}", a.write_from)),
            ("auth.adminToken".into(), opt(&a.admin_token)),
            ("auth.readToken".into(), opt(&a.read_token)),
            (
                "cluster.maxPeers".into(),
                self.cluster.max_peers.to_string(),
            ),
            ("limits.maxAppids".into(), l.max_appids.to_string()),
            ("limits.maxAddrs".into(), l.max_addrs.to_string()),
            (
                "limits.maxMetadataBytes".into(),
                l.max_metadata_bytes.to_string(),
            ),
            (
                "limits.maxMetadataKeys".into(),
                l.max_metadata_keys.to_string(),
            ),
            ("limits.maxBatchLines".into(), l.max_batch_lines.to_string()),
            ("(directory)".into(), opt(&self.dir)),
        ];
        for (zone, addrs) in &self.zones {
            pairs.insert(1, (format!("zones.{zone}"), list(addrs)));
        }
        pairs
            .into_iter()
            .map(|(k, v)| {
                let v = shown(&k, v);
                (k, v)
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Overrides;

    #[test]
    fn secrets_are_masked_by_their_key_name() {
        assert_eq!(shown("auth.adminToken", "s3cret".into()), MASK);
        assert_eq!(shown("auth.readToken", String::new()), "");
        assert_eq!(shown("db.password", "x".into()), MASK);
        assert_eq!(shown("env.zone", "sh001".into()), "sh001");
        // Only the last part of the key counts: a section name is not a secret.
        assert_eq!(shown("token.zone", "z".into()), "z");
    }

    #[test]
    fn tokens_are_masked_in_the_effective_config() {
        let text = "[env]\nzone = \"z\"\nhost = \"h\"\ndeployenv = \"d\"\n[auth]\npeerToken = \"p-secret\"\nadminToken = \"a-secret\"\n";
        let config = crate::config::file::parse(text, None).unwrap();
        let shown: Vec<(String, String)> = config.effective();
        let get = |k: &str| {
            shown
                .iter()
                .find(|(key, _)| key == k)
                .map(|(_, v)| v.clone())
        };
        assert_eq!(get("auth.peerToken").as_deref(), Some(MASK));
        assert_eq!(get("auth.adminToken").as_deref(), Some(MASK));
        assert_eq!(get("auth.readToken").as_deref(), Some(""));
        assert!(!format!("{shown:?}").contains("secret\""));
    }

    #[test]
    fn effective_lists_the_merged_values() {
        let c = Config::load(None, &Overrides::default()).unwrap();
        let e = c.effective();
        let get = |k: &str| e.iter().find(|(key, _)| key == k).map(|(_, v)| v.as_str());
        assert_eq!(get("env.zone"), Some("sh001"));
        assert_eq!(get("httpServer.addr"), Some("127.0.0.1:7171"));
        assert_eq!(get("registry.pollHold"), Some("30s"));
        assert_eq!(get("log.format"), Some("text"));
    }
}
