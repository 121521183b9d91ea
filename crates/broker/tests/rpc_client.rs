//! The inter-node RPC client (`gregor_broker::rpc_client`) against the real `gregor` binary:
//! ApiVersions negotiation, CreateTopics (typed and relayed as a raw body) and Metadata, and 50
//! concurrent calls pipelined on one connection.

mod common;

use bytes::{Bytes, BytesMut};
use common::Gregor;
use gregor_broker::rpc_client::{ChannelConfig, ChannelPool, NodeChannel, RpcError};
use gregor_protocol::messages::create_topics_request::{CreatableTopic, CreateTopicsRequest};
use gregor_protocol::messages::metadata_request::MetadataRequestTopic;
use gregor_protocol::messages::{
    ApiKey, CreateTopicsResponse, MetadataRequest, MetadataResponse, TopicName,
};
use gregor_protocol::protocol::{Decodable, Encodable, StrBytes};
use std::time::Duration;

const T: Duration = Duration::from_secs(10);
const TOPICS: usize = 5;

fn topic_name(s: &str) -> TopicName {
    TopicName(StrBytes::from_string(s.to_string()))
}

fn create_topic_request(name: &str) -> CreateTopicsRequest {
    CreateTopicsRequest::default()
        .with_timeout_ms(10_000)
        .with_topics(vec![CreatableTopic::default()
            .with_name(topic_name(name))
            .with_num_partitions(2)
            .with_replication_factor(1)])
}

fn metadata_request(topic: &str) -> MetadataRequest {
    MetadataRequest::default().with_topics(Some(vec![
        MetadataRequestTopic::default().with_name(Some(topic_name(topic)))
    ]))
}

fn topic_of(resp: &MetadataResponse) -> (String, i16, usize) {
    assert_eq!(resp.topics.len(), 1);
    let t = &resp.topics[0];
    (
        t.name.as_ref().map(|n| n.to_string()).unwrap_or_default(),
        t.error_code,
        t.partitions.len(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn negotiates_creates_topics_and_pipelines_fifty_calls_on_one_connection() {
    let g = Gregor::start(&[]);
    let addr = format!("127.0.0.1:{}", g.port);
    let pool = ChannelPool::new(ChannelConfig::new("rpc-itest"));
    let ch = pool.channel(1, &addr);

    // ApiVersions: v3 is answered; the ranges match what the broker serves.
    let versions = ch.api_versions(T).await.unwrap();
    assert_eq!(versions.version(), 3);
    assert_eq!(versions.range(ApiKey::Metadata as i16), Some((0, 13)));
    assert_eq!(
        versions.version_for(ApiKey::CreateTopics as i16, (2, 7)),
        Some(7)
    );
    assert_eq!(
        versions.version_for(ApiKey::Metadata as i16, (0, 8)),
        Some(8)
    );

    // CreateTopics, typed at the highest common version (flexible: header v2 / v1).
    for i in 0..TOPICS - 1 {
        let name = format!("rpc-{i}");
        let (version, resp) = ch
            .call_auto::<CreateTopicsRequest>((2, 7), T, |_| create_topic_request(&name))
            .await
            .unwrap();
        assert_eq!(version, 7);
        assert_eq!(resp.topics.len(), 1);
        assert_eq!(resp.topics[0].error_code, 0, "{:?}", resp.topics[0]);
    }

    // CreateTopics relayed as an encoded body, as a broker forwards a client's request.
    let last = format!("rpc-{}", TOPICS - 1);
    let mut body = BytesMut::new();
    create_topic_request(&last).encode(&mut body, 7).unwrap();
    let mut raw = ch
        .call_raw(ApiKey::CreateTopics as i16, 7, body.freeze(), T)
        .await
        .unwrap();
    let resp = CreateTopicsResponse::decode(&mut raw, 7).unwrap();
    assert_eq!(resp.topics[0].name.as_str(), last);
    assert_eq!(resp.topics[0].error_code, 0, "{:?}", resp.topics[0]);

    // Creating it again: the broker's own error comes back through the raw call.
    let mut body = BytesMut::new();
    create_topic_request(&last).encode(&mut body, 5).unwrap();
    let mut raw = ch
        .call_raw(ApiKey::CreateTopics as i16, 5, body.freeze(), T)
        .await
        .unwrap();
    let resp = CreateTopicsResponse::decode(&mut raw, 5).unwrap();
    assert_eq!(resp.topics[0].error_code, 36, "TOPIC_ALREADY_EXISTS");

    // Metadata in a non-flexible and a flexible version.
    for version in [4, 12] {
        let resp = ch
            .call(version, &metadata_request("rpc-0"), T)
            .await
            .unwrap();
        assert_eq!(topic_of(&resp), ("rpc-0".to_string(), 0, 2));
    }

    // 50 concurrent calls, all on one connection, each answered with its own topic: a mix of
    // typed Metadata at two versions and raw Metadata bodies.
    let mut set = tokio::task::JoinSet::new();
    for i in 0..50 {
        let ch = pool.get(1).unwrap();
        set.spawn(async move {
            let topic = format!("rpc-{}", i % TOPICS);
            let resp = match i % 3 {
                0 => ch.call(9, &metadata_request(&topic), T).await.unwrap(),
                1 => {
                    ch.call_auto::<MetadataRequest>((0, 13), T, |_| metadata_request(&topic))
                        .await
                        .unwrap()
                        .1
                }
                _ => {
                    let mut body = BytesMut::new();
                    metadata_request(&topic).encode(&mut body, 1).unwrap();
                    let mut raw = ch
                        .call_raw(ApiKey::Metadata as i16, 1, body.freeze(), T)
                        .await
                        .unwrap();
                    MetadataResponse::decode(&mut raw, 1).unwrap()
                }
            };
            assert_eq!(topic_of(&resp), (topic, 0, 2), "call {i}");
        });
    }
    while let Some(r) = set.join_next().await {
        r.unwrap();
    }
    assert_eq!(
        ch.connections_opened(),
        1,
        "every call shared one connection"
    );

    // A version the broker does not serve is refused locally; the connection survives.
    let e = ch
        .call_raw(ApiKey::CreateTopics as i16, 1, Bytes::new(), T)
        .await
        .unwrap_err();
    assert!(matches!(e, RpcError::UnsupportedVersion { .. }), "{e:?}");
    ch.call(12, &metadata_request("rpc-1"), T).await.unwrap();
    assert_eq!(ch.connections_opened(), 1);

    let log = g.log_text();
    assert!(
        !log.contains("closing connection"),
        "the broker closed a connection:\n{log}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reconnects_after_the_broker_restarts() {
    let g = Gregor::start(&[]);
    let port = g.port;
    let ch = NodeChannel::for_node(
        1,
        format!("127.0.0.1:{port}"),
        ChannelConfig::new("rpc-itest"),
    );
    ch.call(12, &MetadataRequest::default().with_topics(Some(vec![])), T)
        .await
        .unwrap();
    let dir = {
        let mut g = g;
        let _ = g.child.kill();
        let _ = g.child.wait();
        // Keep the data directory; `g`'s Drop only kills the (already dead) child.
        std::mem::replace(&mut g.dir, tempfile::tempdir().unwrap())
    };
    // The broker is gone: the connection is lost, and connecting fails.
    let e = ch
        .call(12, &MetadataRequest::default().with_topics(Some(vec![])), T)
        .await
        .unwrap_err();
    assert!(e.is_retriable(), "{e:?}");
    let _g = Gregor::start_in(dir, port, &[]);
    let resp = ch
        .call(12, &MetadataRequest::default().with_topics(Some(vec![])), T)
        .await
        .unwrap();
    assert_eq!(resp.brokers.len(), 1);
    assert_eq!(ch.connections_opened(), 2);
}
