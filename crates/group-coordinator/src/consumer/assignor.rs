//! Server-side assignors of KIP-848 consumer groups: `uniform` (balanced and sticky, like
//! Kafka's `UniformAssignor`) and `range` (Kafka's sticky server-side `RangeAssignor`).

use std::collections::{BTreeMap, BTreeSet, HashMap};

use uuid::Uuid;

use super::records::Partitions;

/// `uniform`.
pub const UNIFORM: &str = "uniform";
/// `range`.
pub const RANGE: &str = "range";

/// Whether `name` is a supported server assignor.
pub fn is_supported(name: &str) -> bool {
    name == UNIFORM || name == RANGE
}

/// One member as the assignor sees it.
#[derive(Debug, Clone, Default)]
pub struct MemberSpec {
    /// Subscribed topics that exist.
    pub topics: BTreeSet<Uuid>,
    /// Previous target assignment.
    pub previous: Partitions,
}

/// Assignor input: members by id and the subscribed topics in assignment order (by name)
/// with their partition counts.
#[derive(Debug, Clone, Default)]
pub struct GroupSpec {
    /// Members by id.
    pub members: BTreeMap<String, MemberSpec>,
    /// Topics (id, partition count), ordered by topic name.
    pub topics: Vec<(Uuid, i32)>,
}

/// Runs the named assignor (unknown names run `uniform`). Every member gets an entry.
pub fn assign(name: &str, spec: &GroupSpec) -> BTreeMap<String, Partitions> {
    let mut out = if name == RANGE {
        range(spec)
    } else {
        uniform(spec)
    };
    for m in spec.members.keys() {
        out.entry(m.clone()).or_default();
    }
    for p in out.values_mut() {
        p.retain(|_, s| !s.is_empty());
    }
    out
}

/// Kafka's server-side range assignor: per topic, members subscribed to it (sorted by id)
/// keep up to their quota of previously owned partitions (lowest first), then the remaining
/// partitions are handed out in ranges.
fn range(spec: &GroupSpec) -> BTreeMap<String, Partitions> {
    let mut out: BTreeMap<String, Partitions> = BTreeMap::new();
    for &(topic, count) in &spec.topics {
        if count <= 0 {
            continue;
        }
        let members: Vec<&String> = spec
            .members
            .iter()
            .filter(|(_, m)| m.topics.contains(&topic))
            .map(|(id, _)| id)
            .collect();
        if members.is_empty() {
            continue;
        }
        let count_u = count as usize;
        let min_quota = count_u / members.len();
        let mut with_extra = count_u % members.len();
        let mut sticky: BTreeSet<i32> = BTreeSet::new();
        let mut unfilled: Vec<(&String, i64)> = Vec::new();
        for id in &members {
            let prev: Vec<i32> = spec.members[*id]
                .previous
                .get(&topic)
                .map(|s| {
                    s.iter()
                        .copied()
                        .filter(|p| *p >= 0 && *p < count && !sticky.contains(p))
                        .collect()
                })
                .unwrap_or_default();
            let retained = prev.len().min(min_quota);
            for p in &prev[..retained] {
                sticky.insert(*p);
                out.entry((*id).clone())
                    .or_default()
                    .entry(topic)
                    .or_default()
                    .insert(*p);
            }
            let remaining = min_quota as i64 - prev.len() as i64;
            if remaining < 0 && with_extra > 0 {
                with_extra -= 1;
                let p = prev[min_quota];
                sticky.insert(p);
                out.entry((*id).clone())
                    .or_default()
                    .entry(topic)
                    .or_default()
                    .insert(p);
            } else {
                unfilled.push((id, remaining));
            }
        }
        let unassigned: Vec<i32> = (0..count).filter(|p| !sticky.contains(p)).collect();
        let mut next = 0usize;
        for (id, mut remaining) in unfilled {
            if with_extra > 0 {
                remaining += 1;
                with_extra -= 1;
            }
            if remaining > 0 {
                let end = (next + remaining as usize).min(unassigned.len());
                let set = out.entry(id.clone()).or_default().entry(topic).or_default();
                set.extend(unassigned[next..end].iter().copied());
                next = end;
            }
        }
    }
    out
}

/// Balanced and sticky: members keep what they had (if still subscribed), new partitions go
/// to the least loaded eligible member, then partitions move from the most to the least
/// loaded members until no move can narrow a gap of more than one.
fn uniform(spec: &GroupSpec) -> BTreeMap<String, Partitions> {
    let counts: HashMap<Uuid, i32> = spec.topics.iter().copied().collect();
    let ids: Vec<&String> = spec.members.keys().collect();
    // Assigned partitions per member as an ordered list of (topic order, topic, partition).
    let order: HashMap<Uuid, usize> = spec
        .topics
        .iter()
        .enumerate()
        .map(|(i, (t, _))| (*t, i))
        .collect();
    let mut owned: Vec<BTreeSet<(usize, Uuid, i32)>> = vec![BTreeSet::new(); ids.len()];
    let mut taken: BTreeSet<(Uuid, i32)> = BTreeSet::new();
    for (i, id) in ids.iter().enumerate() {
        let m = &spec.members[*id];
        for (topic, parts) in &m.previous {
            let (Some(&n), Some(&o)) = (counts.get(topic), order.get(topic)) else {
                continue;
            };
            if !m.topics.contains(topic) {
                continue;
            }
            for &p in parts {
                if p >= 0 && p < n && taken.insert((*topic, p)) {
                    owned[i].insert((o, *topic, p));
                }
            }
        }
    }
    let homogeneous = ids
        .windows(2)
        .all(|w| spec.members[w[0]].topics == spec.members[w[1]].topics);
    if homogeneous && !ids.is_empty() {
        let subscribed = &spec.members[ids[0]].topics;
        let mut pool: Vec<(usize, Uuid, i32)> = Vec::new();
        for (o, &(topic, n)) in spec.topics.iter().enumerate() {
            if subscribed.contains(&topic) {
                for p in 0..n.max(0) {
                    if !taken.contains(&(topic, p)) {
                        pool.push((o, topic, p));
                    }
                }
            }
        }
        let total: usize = owned.iter().map(BTreeSet::len).sum::<usize>() + pool.len();
        let base = total / ids.len();
        let extra = total % ids.len();
        // Members with the most partitions keep the extra ones.
        let mut rank: Vec<usize> = (0..ids.len()).collect();
        rank.sort_by(|a, b| owned[*b].len().cmp(&owned[*a].len()).then(a.cmp(b)));
        let mut quota = vec![base; ids.len()];
        for &i in rank.iter().take(extra) {
            quota[i] += 1;
        }
        for i in 0..ids.len() {
            while owned[i].len() > quota[i] {
                if let Some(last) = owned[i].pop_last() {
                    pool.push(last);
                }
            }
        }
        pool.sort();
        let mut pool = pool.into_iter();
        for i in 0..ids.len() {
            while owned[i].len() < quota[i] {
                match pool.next() {
                    Some(p) => {
                        owned[i].insert(p);
                    }
                    None => break,
                }
            }
        }
    } else {
        // Unassigned partitions to the least loaded eligible member.
        for (o, &(topic, n)) in spec.topics.iter().enumerate() {
            for p in 0..n.max(0) {
                if taken.contains(&(topic, p)) {
                    continue;
                }
                let best = (0..ids.len())
                    .filter(|i| spec.members[ids[*i]].topics.contains(&topic))
                    .min_by_key(|i| (owned[*i].len(), *i));
                if let Some(i) = best {
                    owned[i].insert((o, topic, p));
                    taken.insert((topic, p));
                }
            }
        }
        // Balance: bounded number of single-partition moves.
        let limit = taken.len() * 2 + 16;
        for _ in 0..limit {
            let mut by_load: Vec<usize> = (0..ids.len()).collect();
            by_load.sort_by(|a, b| owned[*a].len().cmp(&owned[*b].len()).then(a.cmp(b)));
            let mut moved = false;
            'outer: for &from in by_load.iter().rev() {
                for &to in by_load.iter() {
                    if owned[from].len() <= owned[to].len() + 1 {
                        break;
                    }
                    let eligible = &spec.members[ids[to]].topics;
                    let candidate = owned[from]
                        .iter()
                        .rev()
                        .find(|(_, t, _)| eligible.contains(t))
                        .copied();
                    if let Some(c) = candidate {
                        owned[from].remove(&c);
                        owned[to].insert(c);
                        moved = true;
                        break 'outer;
                    }
                }
            }
            if !moved {
                break;
            }
        }
    }
    let mut out = BTreeMap::new();
    for (i, id) in ids.iter().enumerate() {
        let mut p = Partitions::new();
        for &(_, topic, part) in &owned[i] {
            p.entry(topic).or_default().insert(part);
        }
        out.insert((*id).clone(), p);
    }
    out
}
