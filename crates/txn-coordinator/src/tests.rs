use super::*;

const T: &str = "txn-1";

struct Ids(i64);
impl Ids {
    fn alloc(&mut self) -> impl FnMut() -> Result<i64, ErrorCode> + '_ {
        move || {
            self.0 += 1;
            Ok(self.0 - 1)
        }
    }
}

fn coord() -> TxnCoordinator {
    TxnCoordinator::new(TxnConfig {
        max_timeout_ms: 900_000,
        transactional_id_expiration_ms: 1_000_000,
        coordinator_epoch: 3,
    })
}

fn tp(t: &str, p: i32) -> (String, i32) {
    (t.to_string(), p)
}

/// Replays every record of `out` into a fresh coordinator and checks it agrees.
fn replayed(records: &[Record]) -> TxnCoordinator {
    let mut c = coord();
    for r in records {
        c.replay(&r.key, r.value.as_deref()).unwrap();
    }
    c
}

fn init(c: &mut TxnCoordinator, ids: &mut Ids, now: i64) -> Output<ProducerIdAndEpoch> {
    c.init_producer_id(T, 60_000, None, &mut ids.alloc(), now)
}

#[test]
fn init_allocates_then_bumps_epoch() {
    let mut c = coord();
    let mut ids = Ids(1000);
    let out = init(&mut c, &mut ids, 10);
    assert_eq!(
        out.response,
        ProducerIdAndEpoch {
            error: ErrorCode::None,
            producer_id: 1000,
            producer_epoch: 0
        }
    );
    assert_eq!(out.records.len(), 1);
    let v = records::decode_value(out.records[0].value.as_deref().unwrap()).unwrap();
    assert_eq!(v.state, TxnState::Empty);
    assert_eq!(v.partitions, None);
    assert_eq!(v.timeout_ms, 60_000);
    let out = init(&mut c, &mut ids, 20);
    assert_eq!(out.response.producer_id, 1000);
    assert_eq!(out.response.producer_epoch, 1);
    assert_eq!(ids.0, 1001, "no second id allocated");
}

#[test]
fn invalid_init_requests() {
    let mut c = coord();
    let mut ids = Ids(0);
    let r = c.init_producer_id("", 1000, None, &mut ids.alloc(), 0);
    assert_eq!(r.response.error, ErrorCode::InvalidRequest);
    let r = c.init_producer_id(T, 0, None, &mut ids.alloc(), 0);
    assert_eq!(r.response.error, ErrorCode::InvalidTransactionTimeout);
    let r = c.init_producer_id(T, 900_001, None, &mut ids.alloc(), 0);
    assert_eq!(r.response.error, ErrorCode::InvalidTransactionTimeout);
    let r = c.init_producer_id(
        T,
        1000,
        None,
        &mut || Err(ErrorCode::CoordinatorNotAvailable),
        0,
    );
    assert_eq!(r.response.error, ErrorCode::CoordinatorNotAvailable);
    assert!(r.records.is_empty());
    assert!(c.is_empty());
}

#[test]
fn commit_flow_writes_markers_then_completes() {
    let mut c = coord();
    let mut ids = Ids(5);
    init(&mut c, &mut ids, 0);
    let out = c.add_partitions(T, 5, 0, &[tp("a", 1), tp("a", 0), tp("b", 2)], 100);
    assert_eq!(out.response, ErrorCode::None);
    assert_eq!(c.get(T).unwrap().state, TxnState::Ongoing);
    assert_eq!(c.get(T).unwrap().start_ms, 100);
    let v = records::decode_value(out.records[0].value.as_deref().unwrap()).unwrap();
    assert_eq!(
        v.partitions.unwrap(),
        vec![
            records::TxnPartitions {
                topic: "a".into(),
                partition_ids: vec![0, 1]
            },
            records::TxnPartitions {
                topic: "b".into(),
                partition_ids: vec![2]
            }
        ]
    );
    // Re-adding known partitions writes nothing.
    let again = c.add_partitions(T, 5, 0, &[tp("a", 1)], 150);
    assert_eq!(again.response, ErrorCode::None);
    assert!(again.records.is_empty());
    // Later adds keep the start time.
    c.add_partitions(T, 5, 0, &[tp("c", 0)], 160);
    assert_eq!(c.get(T).unwrap().start_ms, 100);

    let out = c.end_txn(T, 5, 0, true, false, &mut ids.alloc(), 200);
    assert_eq!(out.response.error, ErrorCode::None);
    assert_eq!(c.get(T).unwrap().state, TxnState::PrepareCommit);
    assert_eq!(
        out.markers,
        vec![MarkerRequest {
            transactional_id: T.into(),
            producer_id: 5,
            producer_epoch: 0,
            commit: true,
            coordinator_epoch: 3,
            partitions: vec![tp("a", 0), tp("a", 1), tp("b", 2), tp("c", 0)],
        }]
    );
    // While the markers are pending: retries and new adds must wait.
    assert_eq!(
        c.end_txn(T, 5, 0, true, false, &mut ids.alloc(), 201)
            .response
            .error,
        ErrorCode::ConcurrentTransactions
    );
    assert_eq!(
        c.add_partitions(T, 5, 0, &[tp("a", 0)], 201).response,
        ErrorCode::ConcurrentTransactions
    );
    assert_eq!(
        init(&mut c, &mut ids, 201).response.error,
        ErrorCode::ConcurrentTransactions
    );
    // Abort while committing: invalid.
    assert_eq!(
        c.end_txn(T, 5, 0, false, false, &mut ids.alloc(), 201)
            .response
            .error,
        ErrorCode::InvalidTxnState
    );
    // Wrong epoch does not complete it.
    assert!(c.markers_written(T, 5, 1, 250).is_empty());
    let recs = c.markers_written(T, 5, 0, 300);
    assert_eq!(recs.len(), 1);
    let m = c.get(T).unwrap();
    assert_eq!(m.state, TxnState::CompleteCommit);
    assert!(m.partitions.is_empty());
    let v = records::decode_value(recs[0].value.as_deref().unwrap()).unwrap();
    assert_eq!(v.partitions, Some(vec![]));
    // Idempotent retry of the completed commit.
    let retry = c.end_txn(T, 5, 0, true, false, &mut ids.alloc(), 310);
    assert_eq!(retry.response.error, ErrorCode::None);
    assert!(retry.records.is_empty() && retry.markers.is_empty());
    // ... but aborting a committed transaction is not.
    assert_eq!(
        c.end_txn(T, 5, 0, false, false, &mut ids.alloc(), 310)
            .response
            .error,
        ErrorCode::InvalidTxnState
    );
    // A new transaction starts from CompleteCommit.
    assert_eq!(
        c.add_partitions(T, 5, 0, &[tp("z", 0)], 400).response,
        ErrorCode::None
    );
    let m = c.get(T).unwrap();
    assert_eq!(m.start_ms, 400);
    assert_eq!(m.partitions.len(), 1);
}

#[test]
fn end_txn_errors() {
    let mut c = coord();
    let mut ids = Ids(5);
    assert_eq!(
        c.end_txn(T, 5, 0, true, false, &mut ids.alloc(), 0)
            .response
            .error,
        ErrorCode::InvalidProducerIdMapping
    );
    init(&mut c, &mut ids, 0);
    assert_eq!(
        c.end_txn(T, 6, 0, true, false, &mut ids.alloc(), 0)
            .response
            .error,
        ErrorCode::InvalidProducerIdMapping
    );
    assert_eq!(
        c.end_txn(T, 5, 1, true, false, &mut ids.alloc(), 0)
            .response
            .error,
        ErrorCode::ProducerFenced
    );
    // Nothing ongoing (TV0/1): INVALID_TXN_STATE.
    assert_eq!(
        c.end_txn(T, 5, 0, true, false, &mut ids.alloc(), 0)
            .response
            .error,
        ErrorCode::InvalidTxnState
    );
    assert_eq!(
        c.end_txn("", 5, 0, true, false, &mut ids.alloc(), 0)
            .response
            .error,
        ErrorCode::InvalidRequest
    );
    assert_eq!(
        c.add_partitions(T, 5, 7, &[tp("a", 0)], 0).response,
        ErrorCode::ProducerFenced
    );
    assert_eq!(
        c.add_partitions(T, 9, 0, &[tp("a", 0)], 0).response,
        ErrorCode::InvalidProducerIdMapping
    );
    assert_eq!(
        c.add_partitions("other", 5, 0, &[tp("a", 0)], 0).response,
        ErrorCode::InvalidProducerIdMapping
    );
}

#[test]
fn init_fences_an_ongoing_transaction() {
    let mut c = coord();
    let mut ids = Ids(5);
    init(&mut c, &mut ids, 0);
    c.add_partitions(T, 5, 0, &[tp("a", 0)], 10);
    let out = init(&mut c, &mut ids, 20);
    assert_eq!(out.response.error, ErrorCode::ConcurrentTransactions);
    assert_eq!(out.records.len(), 1);
    let m = c.get(T).unwrap();
    assert_eq!(m.state, TxnState::PrepareAbort);
    assert_eq!(m.producer_epoch, 1);
    assert_eq!(
        out.markers,
        vec![MarkerRequest {
            transactional_id: T.into(),
            producer_id: 5,
            producer_epoch: 1,
            commit: false,
            coordinator_epoch: 3,
            partitions: vec![tp("a", 0)],
        }]
    );
    // The old producer is fenced.
    assert_eq!(
        c.end_txn(T, 5, 0, true, false, &mut ids.alloc(), 21)
            .response
            .error,
        ErrorCode::ProducerFenced
    );
    // Retry while the abort completes.
    assert_eq!(
        init(&mut c, &mut ids, 22).response.error,
        ErrorCode::ConcurrentTransactions
    );
    c.markers_written(T, 5, 1, 30);
    assert_eq!(c.get(T).unwrap().state, TxnState::CompleteAbort);
    let out = init(&mut c, &mut ids, 40);
    assert_eq!(out.response.error, ErrorCode::None);
    assert_eq!(out.response.producer_epoch, 2);
    assert_eq!(c.get(T).unwrap().state, TxnState::Empty);
}

#[test]
fn kip360_recovery_with_expected_epoch() {
    let mut c = coord();
    let mut ids = Ids(5);
    init(&mut c, &mut ids, 0); // epoch 0
    init(&mut c, &mut ids, 0); // epoch 1
    let r = c.init_producer_id(T, 60_000, Some((5, 1)), &mut ids.alloc(), 1);
    assert_eq!(
        (r.response.error, r.response.producer_epoch),
        (ErrorCode::None, 2)
    );
    // A retry of that call (response lost) gets the same epoch.
    let r = c.init_producer_id(T, 60_000, Some((5, 1)), &mut ids.alloc(), 2);
    assert_eq!(
        (r.response.error, r.response.producer_epoch),
        (ErrorCode::None, 2)
    );
    // A stale epoch is fenced.
    let r = c.init_producer_id(T, 60_000, Some((5, 0)), &mut ids.alloc(), 3);
    assert_eq!(r.response.error, ErrorCode::ProducerFenced);
    // Another producer id is fenced.
    let r = c.init_producer_id(T, 60_000, Some((77, 2)), &mut ids.alloc(), 3);
    assert_eq!(r.response.error, ErrorCode::ProducerFenced);
    // After a plain init (new producer instance) the old epoch can no longer recover.
    init(&mut c, &mut ids, 4); // epoch 3, last -1
    let r = c.init_producer_id(T, 60_000, Some((5, 2)), &mut ids.alloc(), 5);
    assert_eq!(r.response.error, ErrorCode::ProducerFenced);
}

#[test]
fn exhausted_epoch_rotates_the_producer_id() {
    let mut c = coord();
    let mut ids = Ids(5);
    init(&mut c, &mut ids, 0);
    c.txns.get_mut(T).unwrap().producer_epoch = i16::MAX - 1;
    let r = init(&mut c, &mut ids, 1);
    assert_eq!(
        r.response,
        ProducerIdAndEpoch {
            error: ErrorCode::None,
            producer_id: 6,
            producer_epoch: 0
        }
    );
    let m = c.get(T).unwrap();
    assert_eq!(m.prev_producer_id, 5);
    let v = records::decode_value(r.records[0].value.as_deref().unwrap()).unwrap();
    assert_eq!(v.previous_producer_id, 5);
    assert_eq!(v.producer_id, 6);
}

#[test]
fn timeout_aborts_with_epoch_bump() {
    let mut c = coord();
    let mut ids = Ids(5);
    c.init_producer_id(T, 1000, None, &mut ids.alloc(), 0);
    c.add_partitions(T, 5, 0, &[tp("a", 0)], 100);
    assert!(
        c.tick(1100).records.is_empty(),
        "not yet: start + timeout == now"
    );
    let out = c.tick(1101);
    assert_eq!(out.records.len(), 1);
    assert_eq!(out.markers.len(), 1);
    assert!(!out.markers[0].commit);
    assert_eq!(out.markers[0].producer_epoch, 1);
    assert_eq!(c.get(T).unwrap().state, TxnState::PrepareAbort);
    // The producer's commit is fenced.
    assert_eq!(
        c.end_txn(T, 5, 0, true, false, &mut ids.alloc(), 1200)
            .response
            .error,
        ErrorCode::ProducerFenced
    );
    c.markers_written(T, 5, 1, 1300);
    assert_eq!(c.get(T).unwrap().state, TxnState::CompleteAbort);
    assert!(c.tick(2000).records.is_empty());
}

#[test]
fn idle_transactional_ids_expire() {
    let mut c = coord();
    let mut ids = Ids(5);
    init(&mut c, &mut ids, 0);
    assert!(c.tick(999_999).records.is_empty());
    let out = c.tick(1_000_000);
    assert_eq!(out.records.len(), 1);
    assert_eq!(out.records[0].value, None);
    assert!(c.get(T).is_none());
    // An ongoing transaction never expires (it times out instead).
    init(&mut c, &mut ids, 0);
    c.add_partitions(T, 6, 0, &[tp("a", 0)], 0);
    c.txns.get_mut(T).unwrap().timeout_ms = i32::MAX;
    assert!(c.tick(5_000_000).records.is_empty());
}

#[test]
fn end_txn_v5_bumps_epoch_and_accepts_retries() {
    let mut c = coord();
    let mut ids = Ids(5);
    init(&mut c, &mut ids, 0);
    c.add_partitions(T, 5, 0, &[tp("a", 0)], 1);
    let out = c.end_txn(T, 5, 0, true, true, &mut ids.alloc(), 2);
    assert_eq!(
        out.response,
        ProducerIdAndEpoch {
            error: ErrorCode::None,
            producer_id: 5,
            producer_epoch: 1
        }
    );
    assert_eq!(out.markers[0].producer_epoch, 1);
    c.markers_written(T, 5, 1, 3);
    // Retry with the old epoch: same answer.
    let retry = c.end_txn(T, 5, 0, true, true, &mut ids.alloc(), 4);
    assert_eq!(retry.response.error, ErrorCode::None);
    assert_eq!(retry.response.producer_epoch, 1);
    assert!(retry.records.is_empty());
    // Abort of an empty transaction is allowed in TV2 and bumps again.
    let out = c.end_txn(T, 5, 1, false, true, &mut ids.alloc(), 5);
    assert_eq!(out.response.producer_epoch, 2);
    assert!(out.markers.is_empty());
    assert_eq!(c.get(T).unwrap().state, TxnState::CompleteAbort);
    assert_eq!(out.records.len(), 2);
}

#[test]
fn verify_only() {
    let mut c = coord();
    let mut ids = Ids(5);
    init(&mut c, &mut ids, 0);
    c.add_partitions(T, 5, 0, &[tp("a", 0)], 1);
    assert_eq!(
        c.verify_partitions(T, 5, 0, &[tp("a", 0), tp("a", 1)]),
        vec![ErrorCode::None, ErrorCode::InvalidTxnState]
    );
    assert_eq!(
        c.verify_partitions(T, 5, 3, &[tp("a", 0)]),
        vec![ErrorCode::ProducerFenced]
    );
}

#[test]
fn replay_rebuilds_state_and_resumes_markers() {
    let mut c = coord();
    let mut ids = Ids(5);
    let mut log = Vec::new();
    log.extend(init(&mut c, &mut ids, 0).records);
    log.extend(
        c.add_partitions(T, 5, 0, &[tp("a", 0), tp("b", 1)], 10)
            .records,
    );
    log.extend(
        c.end_txn(T, 5, 0, false, false, &mut ids.alloc(), 20)
            .records,
    );
    log.extend(
        c.init_producer_id("other", 5000, None, &mut ids.alloc(), 30)
            .records,
    );
    let mut r = replayed(&log);
    let m = r.get(T).unwrap().clone();
    let mut expect = c.get(T).unwrap().clone();
    expect.last_producer_epoch = NO_PRODUCER_EPOCH;
    assert_eq!(m, expect);
    assert_eq!(r.get("other").unwrap().timeout_ms, 5000);
    let markers = r.finish_replay();
    assert_eq!(markers.len(), 1);
    assert!(!markers[0].commit);
    assert_eq!(markers[0].partitions, vec![tp("a", 0), tp("b", 1)]);
    log.extend(r.markers_written(T, 5, 0, 40));
    // Expiry tombstones remove the id on replay.
    log.extend(r.tick(2_000_000).records);
    let r2 = replayed(&log);
    assert!(r2.is_empty());
    // Foreign key types are ignored; garbage is an error.
    let mut c3 = coord();
    assert!(c3.replay(&[0, 5, 0, 0], Some(&[1, 2])).is_ok());
    assert!(c3
        .replay(&records::encode_key(T), Some(&[0, 1, 2]))
        .is_err());
}

#[test]
fn describe_and_list() {
    let mut c = coord();
    let mut ids = Ids(5);
    init(&mut c, &mut ids, 0);
    c.init_producer_id("b-txn", 5000, None, &mut ids.alloc(), 0);
    c.add_partitions("b-txn", 6, 0, &[tp("x", 3), tp("x", 1)], 100);
    let d = c.describe("b-txn").unwrap();
    assert_eq!(d.state, "Ongoing");
    assert_eq!(d.start_time_ms, 100);
    assert_eq!(d.timeout_ms, 5000);
    assert_eq!(d.topics.get("x"), Some(&vec![1, 3]));
    assert_eq!(c.describe("nope"), Err(ErrorCode::TransactionalIdNotFound));

    let all = c.list(
        &ListFilter {
            duration_ms: -1,
            ..Default::default()
        },
        200,
    );
    assert_eq!(
        all.transactions,
        vec![("b-txn".into(), 6, "Ongoing"), (T.into(), 5, "Empty")]
    );
    let f = ListFilter {
        states: vec!["Ongoing".into(), "Bogus".into()],
        duration_ms: -1,
        ..Default::default()
    };
    let r = c.list(&f, 200);
    assert_eq!(r.unknown_state_filters, vec!["Bogus".to_string()]);
    assert_eq!(r.transactions.len(), 1);
    let f = ListFilter {
        producer_ids: vec![5],
        duration_ms: -1,
        ..Default::default()
    };
    assert_eq!(c.list(&f, 200).transactions, vec![(T.into(), 5, "Empty")]);
    let f = ListFilter {
        duration_ms: 100,
        ..Default::default()
    };
    assert!(c.list(&f, 200).transactions.is_empty());
    assert_eq!(c.list(&f, 201).transactions.len(), 1);
    let f = ListFilter {
        pattern: Some("b-.*".into()),
        duration_ms: -1,
        ..Default::default()
    };
    assert_eq!(c.list(&f, 0).transactions.len(), 1);
    let f = ListFilter {
        pattern: Some("(".into()),
        duration_ms: -1,
        ..Default::default()
    };
    assert_eq!(c.list(&f, 0).error, ErrorCode::InvalidRegularExpression);
}

#[test]
fn state_ids_and_names_match_kafka() {
    for (i, s) in TxnState::ALL.iter().enumerate() {
        assert_eq!(s.id() as usize, i);
        assert_eq!(TxnState::from_id(i as i8), Some(*s));
        assert_eq!(TxnState::from_name(s.name()), Some(*s));
    }
    assert_eq!(TxnState::PrepareEpochFence.name(), "PrepareEpochFence");
    assert_eq!(TxnState::from_id(8), None);
}

#[test]
fn shards_list_and_merge_like_one_coordinator() {
    // One cluster-wide producer id source shared by every shard (the controller's blocks).
    let mut ids = Ids(100);
    let (mut one, mut left, mut right) = (coord(), coord(), coord());
    for (n, id) in ["a", "b", "c", "d"].iter().enumerate() {
        let shard = if n % 2 == 0 { &mut left } else { &mut right };
        let out = shard.init_producer_id(id, 60_000, None, &mut ids.alloc(), 0);
        let pid = out.response.producer_id;
        one.replay(&out.records[0].key, out.records[0].value.as_deref())
            .unwrap();
        if n == 1 {
            let out = shard.add_partitions(id, pid, 0, &[tp("x", 0)], 10);
            one.replay(&out.records[0].key, out.records[0].value.as_deref())
                .unwrap();
        }
    }
    for f in [
        ListFilter {
            duration_ms: -1,
            ..Default::default()
        },
        ListFilter {
            states: vec!["Empty".into(), "Bogus".into()],
            duration_ms: -1,
            ..Default::default()
        },
        ListFilter {
            pattern: Some("(".into()),
            duration_ms: -1,
            ..Default::default()
        },
    ] {
        let merged = left.list(&f, 20).merge(right.list(&f, 20));
        assert_eq!(merged, one.list(&f, 20), "{f:?}");
        // No shard loaded: the answer that depends on the filter alone.
        let none = TxnCoordinator::default().list(&f, 20);
        assert_eq!(none.error, merged.error);
        assert_eq!(none.unknown_state_filters, merged.unknown_state_filters);
        assert!(none.transactions.is_empty());
    }
    let all = one.list(
        &ListFilter {
            duration_ms: -1,
            ..Default::default()
        },
        20,
    );
    let pids: BTreeSet<i64> = all.transactions.iter().map(|t| t.1).collect();
    assert_eq!(pids.len(), 4, "producer ids never collide across shards");
}
