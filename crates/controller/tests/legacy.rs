//! A metadata log written by the single-node code before partition records existed must open
//! unchanged: partitions are synthesized, led by the lowest registered broker.

use gregor_controller::{ClusterState, Controller, CreateTopic, MetadataLog, MetadataRecord};
use std::collections::BTreeMap;
use std::io::Write;
use uuid::Uuid;

const ORDERS: &str = "3f1f8e2a-5b7c-4d2e-9a41-0c6f0e1d2b3a";
const GONE: &str = "0b1c2d3e-4f50-4617-8293-a4b5c6d7e8f9";

/// The records exactly as the old code serialized them.
fn legacy_lines() -> Vec<String> {
    vec![
        r#"{"type":"RegisterBroker","node_id":1,"host":"localhost","port":9092,"rack":null}"#.into(),
        format!(
            r#"{{"type":"Topic","name":"orders","id":"{ORDERS}","internal":false,"replication_factor":1,"configs":{{"retention.ms":"1000"}}}}"#
        ),
        format!(r#"{{"type":"PartitionCount","topic_id":"{ORDERS}","count":2}}"#),
        format!(
            r#"{{"type":"Topic","name":"gone","id":"{GONE}","internal":false,"replication_factor":1,"configs":{{}}}}"#
        ),
        format!(r#"{{"type":"PartitionCount","topic_id":"{GONE}","count":1}}"#),
        format!(r#"{{"type":"PartitionCount","topic_id":"{ORDERS}","count":3}}"#),
        format!(
            r#"{{"type":"TopicConfig","topic_id":"{ORDERS}","key":"cleanup.policy","value":"compact"}}"#
        ),
        format!(r#"{{"type":"RemoveTopic","topic_id":"{GONE}"}}"#),
        r#"{"type":"BrokerConfig","resource_name":"","key":"log.retention.ms","value":"5000"}"#
            .into(),
        r#"{"type":"ClientQuota","entity":[["user","alice"]],"key":"producer_byte_rate","value":"1024"}"#
            .into(),
        r#"{"type":"ProducerIds","next_block_start":1000}"#.into(),
    ]
}

fn write_legacy_log(path: &std::path::Path) {
    let mut f = std::fs::File::create(path).unwrap();
    for line in legacy_lines() {
        let body = line.as_bytes();
        f.write_all(&(body.len() as u32).to_be_bytes()).unwrap();
        f.write_all(&crc32c::crc32c(body).to_be_bytes()).unwrap();
        f.write_all(body).unwrap();
    }
    f.sync_all().unwrap();
}

#[test]
fn legacy_log_opens_with_synthesized_partitions() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("metadata.log");
    write_legacy_log(&path);
    let orders: Uuid = ORDERS.parse().unwrap();
    let mut c = Controller::open(&path).unwrap();
    let s = c.state();
    assert_eq!(s.last_offset(), 11);
    let b = s.broker(1).unwrap();
    assert!(!b.fenced && b.is_active());
    assert_eq!(b.epoch, 1);
    assert_eq!(
        (
            b.endpoints[0].name.as_str(),
            b.endpoints[0].host.as_str(),
            b.endpoints[0].port
        ),
        ("PLAINTEXT", "localhost", 9092)
    );
    let t = s.topic("orders").unwrap();
    assert_eq!(t.partitions, 3);
    assert_eq!(
        t.configs.get("cleanup.policy").map(String::as_str),
        Some("compact")
    );
    for p in 0..3 {
        let reg = s.partition(&orders, p).unwrap();
        assert_eq!(
            (reg.replicas.as_slice(), reg.isr.as_slice(), reg.leader),
            (&[1][..], &[1][..], 1)
        );
        assert_eq!((reg.leader_epoch, reg.partition_epoch), (0, 0));
    }
    assert!(s.topic("gone").is_none());
    assert_eq!(s.partitions_led_by(1).count(), 3);
    assert_eq!(s.next_producer_id_block(), 1000);
    assert_eq!(
        s.broker_configs("")
            .unwrap()
            .get("log.retention.ms")
            .map(String::as_str),
        Some("5000")
    );
    assert_eq!(s.quotas().count(), 1);
    let rebuilt = ClusterState::from_snapshot(s.last_offset(), &s.snapshot_records());
    assert_eq!(&rebuilt, s);

    // The embedded controller carries on: same registration, no new record.
    c.register_broker(1, "localhost", 9092, None).unwrap();
    assert_eq!(c.state().last_offset(), 11);
    assert!(c.next_producer_id().unwrap() >= 1000);
    // Growing a legacy topic writes partition records.
    c.create_partitions("orders", 4).unwrap();
    assert_eq!(c.state().partition(&orders, 3).unwrap().leader, 1);
    let t = c
        .create_topic(&CreateTopic {
            name: "fresh".into(),
            partitions: 2,
            replication_factor: 1,
            assignments: BTreeMap::new(),
            configs: BTreeMap::new(),
        })
        .unwrap();
    assert_eq!(t.partitions, 2);
    let after = c.state().clone();
    drop(c);

    // The log now mixes legacy and new records; both replay identically.
    let (_, records) = MetadataLog::open(&path).unwrap();
    assert!(records[11..]
        .iter()
        .all(|r| !matches!(r, MetadataRecord::PartitionCount { .. })));
    assert!(records[11..]
        .iter()
        .any(|r| matches!(r, MetadataRecord::Partition { .. })));
    let c = Controller::open(&path).unwrap();
    assert_eq!(c.state(), &after);
}
