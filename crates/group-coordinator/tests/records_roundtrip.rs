//! `__consumer_offsets` record formats: byte layout and roundtrips.

use gregor_group_coordinator::records::*;

#[test]
fn offset_commit_key_layout() {
    let k = offset_commit_key("g", "t", 7);
    assert_eq!(k, vec![0, 1, 0, 1, b'g', 0, 1, b't', 0, 0, 0, 7]);
    assert_eq!(
        decode_key(&k).unwrap(),
        RecordKey::OffsetCommit {
            group: "g".into(),
            topic: "t".into(),
            partition: 7
        }
    );
    // Key version 0 (old brokers) decodes the same way.
    let mut k0 = k.clone();
    k0[1] = 0;
    assert!(matches!(
        decode_key(&k0).unwrap(),
        RecordKey::OffsetCommit { .. }
    ));
}

#[test]
fn group_metadata_key_layout() {
    let k = group_metadata_key("grp");
    assert_eq!(k, vec![0, 2, 0, 3, b'g', b'r', b'p']);
    assert_eq!(
        decode_key(&k).unwrap(),
        RecordKey::GroupMetadata {
            group: "grp".into()
        }
    );
    assert_eq!(decode_key(&[0, 5, 1, 2, 3]).unwrap(), RecordKey::Other(5));
}

#[test]
fn offset_commit_value_v3_layout_and_versions() {
    let v = OffsetCommitValue {
        offset: 42,
        leader_epoch: 3,
        metadata: "md".into(),
        commit_timestamp: 1000,
        expire_timestamp: -1,
    };
    let bytes = v.encode();
    let mut expected = vec![0, 3];
    expected.extend_from_slice(&42i64.to_be_bytes());
    expected.extend_from_slice(&3i32.to_be_bytes());
    expected.extend_from_slice(&[0, 2, b'm', b'd']);
    expected.extend_from_slice(&1000i64.to_be_bytes());
    assert_eq!(bytes, expected);
    assert_eq!(OffsetCommitValue::decode(&bytes).unwrap(), v);
    for version in 0..=4 {
        let b = v.encode_version(version);
        let d = OffsetCommitValue::decode(&b).unwrap();
        assert_eq!(d.offset, 42);
        assert_eq!(d.metadata, "md");
        assert_eq!(d.commit_timestamp, 1000);
        assert_eq!(d.leader_epoch, if version >= 3 { 3 } else { -1 });
    }
    // v4 is flexible: compact string and an empty tagged-field section.
    let b4 = v.encode_version(4);
    assert_eq!(&b4[14..17], &[3, b'm', b'd']);
    assert_eq!(*b4.last().unwrap(), 0);
    // Explicit expiry is written as v1.
    let v1 = OffsetCommitValue {
        expire_timestamp: 5000,
        ..v.clone()
    };
    let b1 = v1.encode();
    assert_eq!(&b1[..2], &[0, 1]);
    // v1 has no leader epoch.
    assert_eq!(
        OffsetCommitValue::decode(&b1).unwrap(),
        OffsetCommitValue {
            leader_epoch: -1,
            ..v1
        }
    );
}

fn sample_group() -> GroupMetadataValue {
    GroupMetadataValue {
        protocol_type: "consumer".into(),
        generation: 5,
        protocol: Some("range".into()),
        leader: Some("m1".into()),
        current_state_timestamp: 1234,
        members: vec![
            MemberMetadata {
                member_id: "m1".into(),
                group_instance_id: Some("i1".into()),
                client_id: "c".into(),
                client_host: "/127.0.0.1".into(),
                rebalance_timeout: 300000,
                session_timeout: 45000,
                subscription: vec![1, 2, 3],
                assignment: vec![4, 5],
            },
            MemberMetadata {
                member_id: "m2".into(),
                group_instance_id: None,
                client_id: "c2".into(),
                client_host: "/10.0.0.1".into(),
                rebalance_timeout: 1000,
                session_timeout: 6000,
                subscription: vec![],
                assignment: vec![],
            },
        ],
    }
}

#[test]
fn group_metadata_value_roundtrip_all_versions() {
    let g = sample_group();
    assert_eq!(&g.encode()[..2], &[0, 3]);
    assert_eq!(GroupMetadataValue::decode(&g.encode()).unwrap(), g);
    assert_eq!(GroupMetadataValue::decode(&g.encode_version(4)).unwrap(), g);
    let v2 = GroupMetadataValue::decode(&g.encode_version(2)).unwrap();
    assert_eq!(v2.members[0].group_instance_id, None);
    assert_eq!(v2.current_state_timestamp, 1234);
    let v0 = GroupMetadataValue::decode(&g.encode_version(0)).unwrap();
    assert_eq!(v0.current_state_timestamp, -1);
    assert_eq!(v0.members[0].rebalance_timeout, 45000);
}

#[test]
fn empty_group_metadata_v3_layout() {
    let g = GroupMetadataValue {
        protocol_type: "consumer".into(),
        generation: 1,
        protocol: None,
        leader: None,
        current_state_timestamp: 7,
        members: vec![],
    };
    let mut expected = vec![0, 3, 0, 8];
    expected.extend_from_slice(b"consumer");
    expected.extend_from_slice(&1i32.to_be_bytes());
    expected.extend_from_slice(&[0xff, 0xff, 0xff, 0xff]);
    expected.extend_from_slice(&7i64.to_be_bytes());
    expected.extend_from_slice(&0i32.to_be_bytes());
    assert_eq!(g.encode(), expected);
}

#[test]
fn garbage_never_panics() {
    let g = sample_group();
    let full = g.encode_version(4);
    for cut in 0..full.len() {
        let _ = GroupMetadataValue::decode(&full[..cut]);
    }
    let full3 = g.encode();
    for cut in 0..full3.len() {
        assert!(GroupMetadataValue::decode(&full3[..cut]).is_err());
    }
    let mut seed: u32 = 12345;
    for len in 0..200 {
        let bytes: Vec<u8> = (0..len)
            .map(|_| {
                seed = seed.wrapping_mul(1103515245).wrapping_add(12345);
                (seed >> 16) as u8
            })
            .collect();
        let _ = decode_key(&bytes);
        let _ = OffsetCommitValue::decode(&bytes);
        let _ = GroupMetadataValue::decode(&bytes);
        let _ = consumer_subscription_topics(&bytes);
    }
    assert!(decode_key(&[0xff, 0xff]).is_err());
    assert!(OffsetCommitValue::decode(&[0, 9, 0]).is_err());
    // Huge array count must not allocate.
    assert!(GroupMetadataValue::decode(&[
        0, 3, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0, 0, 0, 0, 0, 0x7f, 0xff, 0xff,
        0xff
    ])
    .is_err());
}

#[test]
fn consumer_subscription_topics_parse() {
    let b = encode_consumer_subscription(&["a", "b"]);
    assert_eq!(consumer_subscription_topics(&b).unwrap(), vec!["a", "b"]);
}

#[test]
fn coordinator_replay_rejects_garbage_without_panicking() {
    use gregor_group_coordinator::{GroupConfig, GroupCoordinator, SequentialIds};
    let mut gc = GroupCoordinator::new(GroupConfig::default(), SequentialIds::default());
    let mut seed: u32 = 99;
    let mut next = || {
        seed = seed.wrapping_mul(1103515245).wrapping_add(12345);
        (seed >> 16) as u8
    };
    for len in 0..300usize {
        let mut key: Vec<u8> = (0..len % 40).map(|_| next()).collect();
        if len % 3 == 0 && key.len() >= 2 {
            key[0] = 0;
            key[1] = (len % 4) as u8;
        }
        let value: Vec<u8> = (0..len).map(|_| next()).collect();
        let _ = gc.replay(&key, Some(&value));
        let _ = gc.replay(&key, None);
    }
    gc.finish_replay(0);
    let _ = gc.tick(1_000_000_000);
}
