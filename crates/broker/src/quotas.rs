//! Client quotas enforced as Kafka's `ClientQuotaManager` (KIP-13, KIP-55, KIP-219): produce
//! and fetch byte rates (`producer_byte_rate`, `consumer_byte_rate`) per user / client-id,
//! from the quotas stored with AlterClientQuotas (`kafka-configs.sh --entity-type users|clients`).
//!
//! - The quota of a request is the most specific entity that has one, in Kafka's order:
//!   user+client-id, user+default client-id, user, default user+client-id, default
//!   user+default client-id, default user, client-id, default client-id.
//! - Usage is a rate over `quota.window.num` windows of `quota.window.size.seconds` (11 × 1 s),
//!   measured per matched entity (a default quota applies to each user / client-id on its own,
//!   as Kafka's metric tags do); the span never counts as shorter than `num - 1` windows, so a
//!   first burst is not punished.
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
}

impl QuotaKind {
    fn key(self) -> &'static str {
        match self {
            QuotaKind::Produce => "producer_byte_rate",
            QuotaKind::Fetch => "consumer_byte_rate",
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
        if quotas.is_empty() {
            return None;
        }
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

    /// Records `bytes` of `kind` for a client and returns the throttle time in ms (0 when
    /// within its quota or without one). A throttled Fetch is answered without data, so its
    /// bytes are taken back (Kafka's `unrecordQuotaSensor`).
    pub fn record(
        &self,
        image: &ClusterState,
        kind: QuotaKind,
        principal: &str,
        client_id: &str,
        bytes: u64,
        now_ms: i64,
    ) -> u64 {
        let user = principal.strip_prefix("User:").unwrap_or(principal);
        let Some(((ku, kc), quota)) = Self::quota_for(image, kind, user, client_id) else {
            return 0;
        };
        if quota <= 0.0 {
            return 0;
        }
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
                *b += bytes as f64;
                *s
            }
            _ => {
                rate.windows.push((now_ms, bytes as f64));
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
                *b -= bytes as f64;
            }
        }
        // Not capped (Kafka 4.1 answers multi-second throttles to large produce requests).
        let throttle = ((value - quota) / quota * span as f64).round() as i64;
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
        let t = q.record(&img, QuotaKind::Produce, "User:ANONYMOUS", "c", 20_000, 500);
        assert!(t > 0, "{t}");
        // Another client id has no quota.
        assert_eq!(
            q.record(
                &img,
                QuotaKind::Produce,
                "User:ANONYMOUS",
                "d",
                1 << 30,
                500
            ),
            0
        );
        // Fetch has no quota here.
        assert_eq!(
            q.record(&img, QuotaKind::Fetch, "User:x", "c", 1 << 30, 500),
            0
        );
        // Within the quota: 5 KB over ~10 s.
        let q = QuotaManager::new(11, 1);
        assert_eq!(
            q.record(&img, QuotaKind::Produce, "User:x", "c", 5_000, 500),
            0
        );
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
