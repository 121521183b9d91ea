//! The server-side `uniform` and `range` assignors.

use std::collections::{BTreeMap, BTreeSet};

use gregor_group_coordinator::consumer::assignor::{assign, GroupSpec, MemberSpec};
use gregor_group_coordinator::consumer::records::Partitions;
use uuid::Uuid;

const T: Uuid = Uuid::from_u128(1);
const U: Uuid = Uuid::from_u128(2);

fn spec(
    members: &[(&str, &[Uuid])],
    topics: &[(Uuid, i32)],
    previous: &BTreeMap<String, Partitions>,
) -> GroupSpec {
    GroupSpec {
        members: members
            .iter()
            .map(|(id, t)| {
                (
                    id.to_string(),
                    MemberSpec {
                        topics: t.iter().copied().collect(),
                        previous: previous.get(*id).cloned().unwrap_or_default(),
                    },
                )
            })
            .collect(),
        topics: topics.to_vec(),
    }
}

fn sizes(a: &BTreeMap<String, Partitions>) -> Vec<usize> {
    a.values()
        .map(|p| p.values().map(BTreeSet::len).sum())
        .collect()
}

fn check_exclusive_and_complete(a: &BTreeMap<String, Partitions>, topics: &[(Uuid, i32)]) {
    let mut seen = BTreeSet::new();
    for p in a.values() {
        for (t, parts) in p {
            for part in parts {
                assert!(seen.insert((*t, *part)), "{t}-{part} twice");
            }
        }
    }
    let total: usize = topics.iter().map(|(_, n)| *n as usize).sum();
    assert_eq!(seen.len(), total);
}

#[test]
fn uniform_is_balanced_and_sticky() {
    let topics = [(T, 10)];
    let a = assign(
        "uniform",
        &spec(
            &[("a", &[T]), ("b", &[T]), ("c", &[T])],
            &topics,
            &BTreeMap::new(),
        ),
    );
    check_exclusive_and_complete(&a, &topics);
    let mut s = sizes(&a);
    s.sort();
    assert_eq!(s, vec![3, 3, 4]);
    // A fourth member takes only from the others' surplus: nobody loses more than needed.
    let b = assign(
        "uniform",
        &spec(
            &[("a", &[T]), ("b", &[T]), ("c", &[T]), ("d", &[T])],
            &topics,
            &a,
        ),
    );
    check_exclusive_and_complete(&b, &topics);
    let mut s = sizes(&b);
    s.sort();
    assert_eq!(s, vec![2, 2, 3, 3]);
    let kept: usize = ["a", "b", "c"]
        .iter()
        .map(|m| b[*m][&T].intersection(&a[*m][&T]).count())
        .sum();
    assert_eq!(kept, 10 - b["d"][&T].len(), "only d's partitions moved");
    // Same input, same output.
    assert_eq!(
        b,
        assign(
            "uniform",
            &spec(
                &[("a", &[T]), ("b", &[T]), ("c", &[T]), ("d", &[T])],
                &topics,
                &a
            )
        )
    );
}

#[test]
fn uniform_heterogeneous_subscriptions() {
    let topics = [(T, 6), (U, 2)];
    let a = assign(
        "uniform",
        &spec(
            &[("a", &[T]), ("b", &[T, U]), ("c", &[U])],
            &topics,
            &BTreeMap::new(),
        ),
    );
    check_exclusive_and_complete(&a, &topics);
    assert!(a["a"].keys().all(|t| *t == T));
    assert!(a["c"].keys().all(|t| *t == U));
    let s = sizes(&a);
    assert!(
        s.iter().max().unwrap() - s.iter().min().unwrap() <= 2,
        "{s:?}"
    );
    // Unsubscribed topics are dropped from previous assignments.
    let b = assign(
        "uniform",
        &spec(&[("a", &[U]), ("b", &[T, U]), ("c", &[U])], &topics, &a),
    );
    check_exclusive_and_complete(&b, &topics);
    assert!(b["a"].keys().all(|t| *t == U));
    assert_eq!(b["b"][&T].len(), 6);
}

#[test]
fn range_is_per_topic_and_co_partitioned() {
    let topics = [(T, 5), (U, 5)];
    let a = assign(
        "range",
        &spec(&[("a", &[T, U]), ("b", &[T, U])], &topics, &BTreeMap::new()),
    );
    check_exclusive_and_complete(&a, &topics);
    assert_eq!(a["a"][&T], BTreeSet::from([0, 1, 2]));
    assert_eq!(a["a"][&U], BTreeSet::from([0, 1, 2]));
    assert_eq!(a["b"][&T], BTreeSet::from([3, 4]));
    assert_eq!(a["b"][&U], BTreeSet::from([3, 4]));
    // Sticky: a third member takes partitions without reshuffling the rest.
    let b = assign(
        "range",
        &spec(
            &[("a", &[T, U]), ("b", &[T, U]), ("c", &[T, U])],
            &topics,
            &a,
        ),
    );
    check_exclusive_and_complete(&b, &topics);
    assert!(b["a"][&T].is_subset(&a["a"][&T]));
    assert!(b["b"][&T].is_subset(&a["b"][&T]));
    let mut s = sizes(&b);
    s.sort();
    assert_eq!(s, vec![2, 4, 4]);
    // Members not subscribed to a topic get nothing from it; empty groups are fine.
    let c = assign(
        "range",
        &spec(&[("a", &[T]), ("b", &[])], &topics, &BTreeMap::new()),
    );
    assert_eq!(c["a"][&T].len(), 5);
    assert!(c["b"].is_empty());
    assert!(assign("range", &spec(&[], &topics, &BTreeMap::new())).is_empty());
}
