//! Which discovery node to call: the seeds from the configuration, the nodes learnt from the
//! registry's own app `infra.discovery` (as the Go SDK does), the own zone first, nodes that just
//! failed set aside for a while, and a per-client order so that clients spread over the nodes.
//!
//! Pure bookkeeping with the time passed in: the client keeps one [`Nodes`] behind a lock and
//! never holds it across an await.

use std::collections::HashMap;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::time::{Duration, Instant};

use crate::model::InstanceInfo;

/// The app under which discovery nodes register themselves.
pub(crate) const SELF_APPID: &str = "infra.discovery";

/// How long a node that failed is tried only after all others.
pub(crate) const COOLDOWN: Duration = Duration::from_secs(10);

/// The nodes a client knows and how it ranks them.
#[derive(Debug)]
pub(crate) struct Nodes {
    zone: String,
    seeds: Vec<String>,
    /// Learnt nodes of the client's own zone, in this client's order.
    own: Vec<String>,
    /// Learnt nodes of other zones, in this client's order.
    other: Vec<String>,
    /// Node → until when it is set aside after a failure.
    cooling: HashMap<String, Instant>,
    /// Mixed into the ranking so that each client has its own order of the same nodes.
    salt: u64,
    cooldown: Duration,
}

impl Nodes {
    /// `seeds` as `host:port`; `salt` makes this client's order (random in production).
    pub fn new(zone: &str, seeds: &[String], salt: u64, cooldown: Duration) -> Nodes {
        let mut nodes = Nodes {
            zone: zone.to_string(),
            seeds: Vec::new(),
            own: Vec::new(),
            other: Vec::new(),
            cooling: HashMap::new(),
            salt,
            cooldown,
        };
        let mut seeds = seeds.to_vec();
        seeds.sort();
        seeds.dedup();
        nodes.rank(&mut seeds);
        nodes.seeds = seeds;
        nodes
    }

    /// Sorts by this client's rank of each address: stable across updates of the list, and a
    /// different order for each client.
    fn rank(&self, list: &mut [String]) {
        list.sort_by_key(|addr| {
            let mut h = DefaultHasher::new();
            self.salt.hash(&mut h);
            addr.hash(&mut h);
            h.finish()
        });
    }

    /// Every known node, most preferred first: own zone, other zones, then seeds not learnt.
    pub fn known(&self) -> Vec<String> {
        let mut all: Vec<String> = self.own.iter().chain(&self.other).cloned().collect();
        for seed in &self.seeds {
            if !all.contains(seed) {
                all.push(seed.clone());
            }
        }
        all
    }

    /// The order to try nodes in now: as [`Nodes::known`], with the nodes set aside after a
    /// recent failure moved to the end, the one that comes back soonest first.
    pub fn order(&self, now: Instant) -> Vec<String> {
        let known = self.known();
        let until = |addr: &String| self.cooling.get(addr).copied().filter(|t| *t > now);
        let (mut cooling, mut ready): (Vec<String>, Vec<String>) =
            known.into_iter().partition(|a| until(a).is_some());
        cooling.sort_by_key(|a| until(a));
        ready.append(&mut cooling);
        ready
    }

    /// The node to call now.
    pub fn pick(&self, now: Instant) -> Option<String> {
        self.order(now).into_iter().next()
    }

    /// `addr` failed (unreachable, timed out, broken answer): try the others first for a while.
    pub fn failed(&mut self, addr: &str, now: Instant) {
        self.cooling.insert(addr.to_string(), now + self.cooldown);
    }

    /// `addr` answered: it is good again.
    pub fn succeeded(&mut self, addr: &str) {
        self.cooling.remove(addr);
    }

    /// Takes the nodes listed in an answer for `infra.discovery` (their `http://` addresses).
    /// An answer without any such address changes nothing: a node that restarted and has not
    /// yet registered itself must not leave the client with no nodes. Says whether the learnt
    /// nodes changed.
    pub fn learn(&mut self, info: &InstanceInfo) -> bool {
        let mut own = Vec::new();
        let mut other = Vec::new();
        for instance in info.iter() {
            for addr in &instance.addrs {
                let Some(host) = http_host(addr) else {
                    continue;
                };
                let list = if instance.zone == self.zone {
                    &mut own
                } else {
                    &mut other
                };
                if !list.contains(&host) {
                    list.push(host);
                }
            }
        }
        if own.is_empty() && other.is_empty() {
            return false;
        }
        other.retain(|a| !own.contains(a));
        self.rank(&mut own);
        self.rank(&mut other);
        let changed = own != self.own || other != self.other;
        self.own = own;
        self.other = other;
        let known = self.known();
        self.cooling.retain(|a, _| known.contains(a));
        changed
    }
}

/// `host:port` of an `http://host:port[/path]` address.
fn http_host(addr: &str) -> Option<String> {
    let rest = addr.strip_prefix("http://")?;
    let host = rest.split('/').next().unwrap_or_default();
    (!host.is_empty()).then(|| host.to_string())
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::model::{Instance, Status};

    fn node(zone: &str, addrs: &[&str]) -> Instance {
        Instance {
            region: "sh".into(),
            zone: zone.into(),
            env: "dev".into(),
            appid: SELF_APPID.into(),
            hostname: format!("{zone}-{}", addrs.join(",")),
            addrs: addrs.iter().map(|a| a.to_string()).collect(),
            version: String::new(),
            metadata: BTreeMap::new(),
            status: Status::Up,
            reg_timestamp: 1,
            up_timestamp: 1,
            renew_timestamp: 1,
            dirty_timestamp: 1,
            latest_timestamp: 1,
        }
    }

    fn info(nodes: Vec<Instance>) -> InstanceInfo {
        let mut instances: BTreeMap<String, Vec<Instance>> = BTreeMap::new();
        for n in nodes {
            instances.entry(n.zone.clone()).or_default().push(n);
        }
        InstanceInfo {
            instances,
            scheduler: None,
            latest_timestamp: 1,
        }
    }

    fn seeds(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    fn three_zones() -> InstanceInfo {
        info(vec![
            node("sh002", &["http://b1:7171"]),
            node("sh001", &["http://a1:7171"]),
            node("sh001", &["http://a2:7171", "grpc://a2:9000"]),
            node("sh003", &["http://c1:7171/discovery"]),
            node("sh001", &["http://a3:7171"]),
        ])
    }

    #[test]
    fn seeds_until_nodes_are_learnt_then_own_zone_first_then_other_zones_then_seeds() {
        let now = Instant::now();
        let mut n = Nodes::new("sh001", &seeds(&["seed:1", "a1:7171"]), 1, COOLDOWN);
        let mut before = n.order(now);
        before.sort();
        assert_eq!(before, ["a1:7171", "seed:1"]);
        assert!(n.learn(&three_zones()));
        let order = n.order(now);
        assert_eq!(order.len(), 6, "{order:?}");
        let mut own = order[..3].to_vec();
        own.sort();
        assert_eq!(own, ["a1:7171", "a2:7171", "a3:7171"], "{order:?}");
        let mut other = order[3..5].to_vec();
        other.sort();
        assert_eq!(other, ["b1:7171", "c1:7171"], "path dropped: {order:?}");
        assert_eq!(order[5], "seed:1", "a seed already learnt is listed once");
        assert!(!n.learn(&three_zones()), "the same nodes are no change");
    }

    #[test]
    fn a_zone_without_nodes_of_its_own_uses_the_others() {
        let mut n = Nodes::new("sh009", &seeds(&["seed:1"]), 1, COOLDOWN);
        n.learn(&three_zones());
        assert_eq!(n.order(Instant::now()).len(), 6);
    }

    #[test]
    fn an_answer_without_http_nodes_keeps_what_was_learnt() {
        let mut n = Nodes::new("sh001", &seeds(&["seed:1"]), 1, COOLDOWN);
        n.learn(&three_zones());
        let known = n.known();
        assert!(!n.learn(&info(vec![])));
        assert!(!n.learn(&info(vec![node("sh001", &["grpc://x:1"])])));
        assert_eq!(n.known(), known);
    }

    #[test]
    fn a_failed_node_goes_last_until_its_cooldown_passes_or_it_answers() {
        let t0 = Instant::now();
        let mut n = Nodes::new("sh001", &[], 3, COOLDOWN);
        n.learn(&three_zones());
        let order = n.order(t0);
        let first = order[0].clone();
        n.failed(&first, t0);
        let after = n.order(t0);
        assert_eq!(after[0], order[1], "fail over to the next preferred node");
        assert_eq!(after.last(), Some(&first));
        assert_eq!(n.pick(t0 + COOLDOWN / 2), Some(order[1].clone()));
        // Back to the preferred node once its cooldown is over.
        assert_eq!(n.pick(t0 + COOLDOWN), Some(first.clone()));
        // Or as soon as it answers.
        n.failed(&first, t0);
        n.succeeded(&first);
        assert_eq!(n.pick(t0), Some(first));
    }

    #[test]
    fn when_every_node_failed_the_one_back_soonest_is_tried_first() {
        let t0 = Instant::now();
        let mut n = Nodes::new("sh001", &seeds(&["x:1", "y:1", "z:1"]), 3, COOLDOWN);
        let order = n.order(t0);
        n.failed(&order[1], t0);
        n.failed(&order[0], t0 + Duration::from_secs(1));
        n.failed(&order[2], t0 + Duration::from_secs(2));
        let now = t0 + Duration::from_secs(3);
        assert_eq!(
            n.order(now),
            [order[1].clone(), order[0].clone(), order[2].clone()]
        );
    }

    #[test]
    fn each_client_has_its_own_stable_order_and_clients_spread_over_the_zone() {
        let mut firsts: HashMap<String, usize> = HashMap::new();
        for salt in 0..300 {
            let mut n = Nodes::new("sh001", &[], salt, COOLDOWN);
            n.learn(&three_zones());
            let order = n.order(Instant::now());
            // The same nodes in another order, or with one more node of another zone, do not
            // move this client off its node.
            let mut shuffled = three_zones();
            shuffled.instances.get_mut("sh001").unwrap().reverse();
            shuffled
                .instances
                .insert("sh004".into(), vec![node("sh004", &["http://d1:7171"])]);
            n.learn(&shuffled);
            assert_eq!(n.order(Instant::now())[..3], order[..3]);
            *firsts.entry(order[0].clone()).or_default() += 1;
        }
        assert_eq!(firsts.len(), 3, "{firsts:?}");
        for (node, count) in &firsts {
            assert!(*count >= 60, "{node} first for only {count} of 300 clients");
        }
    }
}
