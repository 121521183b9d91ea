//! Client quotas enforced as Kafka's `ClientQuotaManager` (KIP-13, KIP-55, KIP-124, KIP-219):
//! produce and fetch byte rates (`producer_byte_rate`, `consumer_byte_rate`) and the share of
//! request-handling time (`request_percentage`: 100 = one thread's worth) per user /
//! client-id, from the quotas stored with AlterClientQuotas (`kafka-configs.sh --entity-type
//! users|clients`).
//!
//! - The quota of a request is the most specific entity that has one, in Kafka's order:
//!   user+client-id, user+default client-id, user, default user+client-id, default
//!   user+default client-id, default user, client-id, default client-id.
//! - Usage is a rate over `quota.window.num` windows of `quota.window.size.seconds` (11 × 1 s),
//!   measured per matched entity (a default quota applies to each user / client-id on its own,
//!   as Kafka's metric tags do); the span never counts as shorter than `num - 1` windows, so a
//!   first burst is not punished.
//! - `connection_creation_rate` of an ip (or the default ip) limits new connections per second
//!   from one address (KIP-612): a connection over the rate is accepted and closed after the
//!   throttle time, as Kafka's acceptor does.
//! - Over the quota the broker answers at once with `throttle_time_ms` =
//!   `(rate - quota) / quota * span` and then does not read from the
//!   connection for that long (KIP-219: the channel is muted), which is what slows the client.
//!   Follower fetches are not client traffic and are never throttled.

use gregor_controller::state::{ClusterState, QuotaEntity};
use parking_lot::Mutex;
use std::collections::HashMap;

/// What a quota limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum QuotaKind {
    /// `producer_byte_rate`: bytes of Produce requests.
    Produce,
    /// `consumer_byte_rate`: bytes of Fetch responses.
    Fetch,
    /// `request_percentage`: request-handling time, in percent-seconds of one thread.
    Request,
    /// `connection_creation_rate`: new connections from an ip.
    Connection,
}

impl QuotaKind {
    fn key(self) -> &'static str {
        match self {
            QuotaKind::Produce => "producer_byte_rate",
            QuotaKind::Fetch => "consumer_byte_rate",
            QuotaKind::Request => "request_percentage",
            QuotaKind::Connection => "connection_creation_rate",
        }
    }
}

/// A windowed rate (Kafka's `Rate` over `SampledStat`).
#[derive(Debug)]
struct Rate {
    /// (window start ms, bytes) of the last `samples` windows, oldest first.
    windows: Vec<(i64, f64)>,
}

/// The quota manager of this broker.
#[derive(Debug)]
pub struct QuotaManager {
    samples: usize,
    window_ms: i64,
    sensors: Mutex<HashMap<(QuotaKind, String, String), Rate>>,
}

impl QuotaManager {
    /// A manager with `quota.window.num` samples of `quota.window.size.seconds`.
    pub fn new(samples: usize, window_seconds: u64) -> QuotaManager {
        QuotaManager {
            samples: samples.max(2),
            window_ms: (window_seconds.max(1) * 1000) as i64,
            sensors: Mutex::new(HashMap::new()),
        }
    }

    /// The quota that applies to `user` (principal name without `User:`) and `client_id`,
    /// with the sensor key it is measured under.
    fn quota_for(
        image: &ClusterState,
        kind: QuotaKind,
        user: &str,
        client_id: &str,
    ) -> Option<((String, String), f64)> {
        // Most requests find no quota of their kind at all: answer that before allocating.
        if !image.quotas().any(|(_, m)| m.contains_key(kind.key())) {
            return None;
        }
        let u = |n: Option<&str>| ("user".to_string(), n.map(str::to_string));
        let c = |n: Option<&str>| ("client-id".to_string(), n.map(str::to_string));
        // Entities are stored sorted by type: client-id before user.
        let candidates: [(QuotaEntity, (bool, bool)); 8] = [
            (vec![c(Some(client_id)), u(Some(user))], (true, true)),
            (vec![c(None), u(Some(user))], (true, true)),
            (vec![u(Some(user))], (true, false)),
            (vec![c(Some(client_id)), u(None)], (true, true)),
            (vec![c(None), u(None)], (true, true)),
            (vec![u(None)], (true, false)),
            (vec![c(Some(client_id))], (false, true)),
            (vec![c(None)], (false, true)),
        ];
        let quotas: HashMap<&QuotaEntity, &std::collections::BTreeMap<String, f64>> =
            image.quotas().collect();
        for (entity, (by_user, by_client)) in candidates {
            if let Some(v) = quotas.get(&entity).and_then(|m| m.get(kind.key())) {
                let key = (
                    if by_user {
                        user.to_string()
                    } else {
                        String::new()
                    },
                    if by_client {
                        client_id.to_string()
                    } else {
                        String::new()
                    },
                );
                return Some((key, *v));
            }
        }
        None
    }

    /// Records `amount` of `kind` (bytes, or percent-seconds of request time) for a client and
    /// returns the throttle time in ms (0 when within its quota or without one). A throttled Fetch is answered without data, so its
    /// bytes are taken back (Kafka's `unrecordQuotaSensor`).
    pub fn record(
        &self,
        image: &ClusterState,
        kind: QuotaKind,
        principal: &str,
        client_id: &str,
        amount: f64,
        now_ms: i64,
    ) -> u64 {
        let user = principal.strip_prefix("User:").unwrap_or(principal);
        let Some((key, quota)) = Self::quota_for(image, kind, user, client_id) else {
            return 0;
        };
        self.record_against(kind, key, quota, amount, now_ms)
    }

    /// Records a new connection from `ip` against its `connection_creation_rate` (the ip's own
    /// quota, else the default ip's); returns how long to wait before closing it (0: serve it).
    pub fn record_connection(&self, image: &ClusterState, ip: &str, now_ms: i64) -> u64 {
        let key = QuotaKind::Connection.key();
        let quota = image
            .quotas()
            .filter(|(entity, _)| entity.len() == 1 && entity[0].0 == "ip")
            .filter_map(|(entity, values)| Some((entity[0].1.as_deref(), *values.get(key)?)))
            .fold(None, |found, (name, v)| match (name, found) {
                (Some(n), _) if n == ip => Some((true, v)),
                (None, None) => Some((false, v)),
                (_, found) => found,
            });
        let Some((_, quota)) = quota else {
            return 0;
        };
        self.record_against(
            QuotaKind::Connection,
            (ip.to_string(), String::new()),
            quota,
            1.0,
            now_ms,
        )
    }

    fn record_against(
        &self,
        kind: QuotaKind,
        (ku, kc): (String, String),
        quota: f64,
        amount: f64,
        now_ms: i64,
    ) -> u64 {
        let mut sensors = self.sensors.lock();
        let rate = sensors.entry((kind, ku, kc)).or_insert_with(|| Rate {
            windows: Vec::new(),
        });
        // Kafka's SampledStat: a sample starts with the first record after the previous one
        // ended (not on a clock boundary); samples older than `samples` windows are dropped.
        let expire = self.samples as i64 * self.window_ms;
        rate.windows.retain(|(s, _)| s + expire > now_ms);
        let start = match rate.windows.last_mut() {
            Some((s, b)) if now_ms - *s < self.window_ms => {
                *b += amount;
                *s
            }
            _ => {
                rate.windows.push((now_ms, amount));
                now_ms
            }
        };
        if rate.windows.len() > self.samples {
            let drop = rate.windows.len() - self.samples;
            rate.windows.drain(..drop);
        }
        let total: f64 = rate.windows.iter().map(|(_, b)| b).sum();
        let oldest = rate.windows.first().map_or(start, |(s, _)| *s);
        // Kafka's Rate.windowSize: at least samples - 1 full windows.
        let mut span = (now_ms - oldest).max(1);
        let full = span / self.window_ms;
        let min_full = self.samples as i64 - 1;
        if full < min_full {
            span += (min_full - full) * self.window_ms;
        }
        let value = total * 1000.0 / span as f64;
        if value <= quota {
            return 0;
        }
        if kind == QuotaKind::Fetch {
            if let Some((s, b)) = rate.windows.iter_mut().rev().find(|(s, _)| *s == start) {
                let _ = s;
                *b -= amount;
            }
        }
        // Byte-rate throttles are not capped (Kafka 4.1 answers multi-second throttles to large
        // produce requests); request-time throttles are bounded by one window, as Kafka's
        // ClientRequestQuotaManager.
        let mut throttle = ((value - quota) / quota * span as f64).round() as i64;
        if matches!(kind, QuotaKind::Request | QuotaKind::Connection) {
            throttle = throttle.min(self.window_ms);
        }
        throttle.max(0) as u64
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use gregor_controller::MetadataRecord;

    fn image(entity: Vec<(&str, Option<&str>)>, key: &str, v: f64) -> ClusterState {
        let mut s = ClusterState::default();
        s.replay(
            1,
            &MetadataRecord::ClientQuota {
                entity: entity
                    .into_iter()
                    .map(|(t, n)| (t.to_string(), n.map(str::to_string)))
                    .collect(),
                key: key.into(),
                value: Some(v.to_string()),
            },
        );
        s
    }

    #[test]
    fn throttles_over_the_quota_only() {
        let img = image(vec![("client-id", Some("c"))], "producer_byte_rate", 1000.0);
        let q = QuotaManager::new(11, 1);
        // 10 KB in the first second: over 1000 B/s even over the 10-window minimum span.
        let t = q.record(
            &img,
            QuotaKind::Produce,
            "User:ANONYMOUS",
            "c",
            20_000.0,
            500,
        );
        assert!(t > 0, "{t}");
        // Another client id has no quota.
        assert_eq!(
            q.record(
                &img,
                QuotaKind::Produce,
                "User:ANONYMOUS",
                "d",
                (1u64 << 30) as f64,
                500
            ),
            0
        );
        // Fetch has no quota here.
        assert_eq!(
            q.record(
                &img,
                QuotaKind::Fetch,
                "User:x",
                "c",
                (1u64 << 30) as f64,
                500
            ),
            0
        );
        // Within the quota: 5 KB over ~10 s.
        let q = QuotaManager::new(11, 1);
        assert_eq!(
            q.record(&img, QuotaKind::Produce, "User:x", "c", 5_000.0, 500),
            0
        );
    }

    #[test]
    fn request_throttle_is_bounded_by_a_window() {
        let img = image(vec![("client-id", Some("c"))], "request_percentage", 0.01);
        let q = QuotaManager::new(11, 1);
        // 50 ms of handling (5 percent-seconds) against 0.01 %: far over, but at most 1 s.
        assert_eq!(
            q.record(&img, QuotaKind::Request, "User:x", "c", 5.0, 500),
            1000
        );
        // Another client id has no quota.
        assert_eq!(
            q.record(&img, QuotaKind::Request, "User:x", "d", 5.0, 500),
            0
        );
    }

    #[test]
    fn connection_rate_of_an_ip_then_the_default_ip() {
        let mut img = image(vec![("ip", None)], "connection_creation_rate", 100.0);
        img.replay(
            2,
            &MetadataRecord::ClientQuota {
                entity: vec![("ip".into(), Some("10.0.0.1".into()))],
                key: "connection_creation_rate".into(),
                value: Some("2".into()),
            },
        );
        let q = QuotaManager::new(11, 1);
        // 10.0.0.1: 2 per second over 10 windows = 20 connections before a throttle.
        let throttled = (0..25)
            .filter(|_| q.record_connection(&img, "10.0.0.1", 500) > 0)
            .count();
        assert_eq!(throttled, 5);
        assert!(q.record_connection(&img, "10.0.0.1", 500) <= 1000);
        // Another address falls under the default ip quota (100/s): not throttled.
        assert!((0..25).all(|_| q.record_connection(&img, "10.0.0.2", 500) == 0));
    }

    #[test]
    fn most_specific_entity_wins() {
        let mut img = image(vec![("user", Some("alice"))], "producer_byte_rate", 100.0);
        img.replay(
            2,
            &MetadataRecord::ClientQuota {
                entity: vec![("client-id".into(), Some("c".into()))],
                key: "producer_byte_rate".into(),
                value: Some("1000000".into()),
            },
        );
        let (key, v) = QuotaManager::quota_for(&img, QuotaKind::Produce, "alice", "c").unwrap();
        assert_eq!((key, v), (("alice".into(), String::new()), 100.0));
        let (key, v) = QuotaManager::quota_for(&img, QuotaKind::Produce, "bob", "c").unwrap();
        assert_eq!((key, v), ((String::new(), "c".into()), 1_000_000.0));
        assert!(QuotaManager::quota_for(&img, QuotaKind::Produce, "bob", "d").is_none());
    }
}
