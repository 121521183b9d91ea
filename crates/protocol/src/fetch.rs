//! The Fetch response, encoded by hand so that record data never passes through user space.
//!
//! `kafka-protocol` wants the records of each partition as `Bytes`; Gregor instead sends them
//! from the segment file with `sendfile`. [`encode_fetch_response`] therefore produces a list of
//! [`Chunk`]s: encoded protocol bytes interleaved with opaque record regions (of known length)
//! that the connection writer streams from disk. Supports Fetch v4–v18 (flexible from v12,
//! topic ids instead of names from v13). Tests check byte equality with `kafka-protocol`.

use bytes::{BufMut, Bytes, BytesMut};
use uuid::Uuid;

/// One piece of an encoded Fetch response.
#[derive(Debug)]
pub enum Chunk<R> {
    /// Protocol bytes.
    Bytes(Bytes),
    /// Record data of the given length, supplied by the caller (e.g. a file region).
    Records(R),
}

/// An aborted transaction in a partition's fetched range.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AbortedTransaction {
    /// Producer id of the aborted transaction.
    pub producer_id: i64,
    /// First offset of the aborted transaction.
    pub first_offset: i64,
}

/// A fetched partition.
#[derive(Debug)]
pub struct PartitionData<R> {
    /// Partition index.
    pub partition_index: i32,
    /// Error code.
    pub error_code: i16,
    /// High watermark.
    pub high_watermark: i64,
    /// Last stable offset.
    pub last_stable_offset: i64,
    /// Log start offset.
    pub log_start_offset: i64,
    /// Aborted transactions (`None` encodes as null).
    pub aborted_transactions: Option<Vec<AbortedTransaction>>,
    /// Preferred read replica (-1: none).
    pub preferred_read_replica: i32,
    /// Record data and its length; `None` encodes an empty (not null) records field.
    pub records: Option<(R, u64)>,
    /// v12+ tagged field 0: the follower's log diverged from the leader's at this
    /// (epoch, end offset) (KIP-320 truncation on fetch).
    pub diverging_epoch: Option<(i32, i64)>,
    /// v12+ tagged field 1: the current leader (id, epoch), sent with NOT_LEADER_OR_FOLLOWER
    /// and FENCED_LEADER_EPOCH (KIP-951).
    pub current_leader: Option<(i32, i32)>,
}

/// A broker's endpoint in a Fetch response (v16+ `NodeEndpoints`, KIP-951).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeEndpoint {
    /// Node id.
    pub node_id: i32,
    /// Host.
    pub host: String,
    /// Port.
    pub port: i32,
    /// Rack.
    pub rack: Option<String>,
}

/// A fetched topic.
#[derive(Debug)]
pub struct TopicData<R> {
    /// Topic name (used up to v12).
    pub name: String,
    /// Topic id (used from v13).
    pub topic_id: Uuid,
    /// Partitions.
    pub partitions: Vec<PartitionData<R>>,
}

/// A whole Fetch response.
#[derive(Debug)]
pub struct FetchResponseData<R> {
    /// Throttle time.
    pub throttle_time_ms: i32,
    /// Top-level error code.
    pub error_code: i16,
    /// Fetch session id (0: no session).
    pub session_id: i32,
    /// Topics.
    pub topics: Vec<TopicData<R>>,
    /// v16+ tagged field 0: endpoints of the leaders named in `current_leader` fields.
    pub node_endpoints: Vec<NodeEndpoint>,
}

/// Lowest Fetch version this encoder supports.
pub const MIN_VERSION: i16 = 4;
/// Highest Fetch version this encoder supports.
pub const MAX_VERSION: i16 = 18;

struct Writer<R> {
    flexible: bool,
    buf: BytesMut,
    chunks: Vec<Chunk<R>>,
    total: u64,
}

impl<R> Writer<R> {
    fn array_len(&mut self, n: usize) {
        if self.flexible {
            put_uvarint(&mut self.buf, n as u32 + 1);
        } else {
            self.buf.put_i32(n as i32);
        }
    }
    fn string(&mut self, s: &str) {
        if self.flexible {
            put_uvarint(&mut self.buf, s.len() as u32 + 1);
        } else {
            self.buf.put_i16(s.len() as i16);
        }
        self.buf.put_slice(s.as_bytes());
    }
    fn tags(&mut self) {
        if self.flexible {
            self.buf.put_u8(0);
        }
    }
    fn compact_nullable_string(buf: &mut BytesMut, s: Option<&str>) {
        match s {
            None => buf.put_u8(0),
            Some(s) => {
                put_uvarint(buf, s.len() as u32 + 1);
                buf.put_slice(s.as_bytes());
            }
        }
    }
    /// Writes tagged fields `(tag, payload)` (in tag order), or the empty tag section.
    fn tagged(&mut self, fields: &[(u32, BytesMut)]) {
        if !self.flexible {
            return;
        }
        put_uvarint(&mut self.buf, fields.len() as u32);
        for (tag, payload) in fields {
            put_uvarint(&mut self.buf, *tag);
            put_uvarint(&mut self.buf, payload.len() as u32);
            self.buf.put_slice(payload);
        }
    }
    fn flush(&mut self) {
        if !self.buf.is_empty() {
            let b = self.buf.split().freeze();
            self.total += b.len() as u64;
            self.chunks.push(Chunk::Bytes(b));
        }
    }
}

fn put_uvarint(buf: &mut BytesMut, mut v: u32) {
    while v >= 0x80 {
        buf.put_u8((v as u8) | 0x80);
        v >>= 7;
    }
    buf.put_u8(v as u8);
}

/// Encodes a Fetch response frame (size prefix and response header included).
///
/// Returns the chunks and the total frame length including the 4-byte size prefix.
pub fn encode_fetch_response<R>(
    version: i16,
    correlation_id: i32,
    data: FetchResponseData<R>,
) -> (Vec<Chunk<R>>, u64) {
    let flexible = version >= 12;
    let mut w = Writer {
        flexible,
        buf: BytesMut::with_capacity(512),
        chunks: Vec::new(),
        total: 0,
    };
    // Size prefix placeholder, patched below.
    w.buf.put_i32(0);
    w.buf.put_i32(correlation_id);
    w.tags();
    w.buf.put_i32(data.throttle_time_ms);
    if version >= 7 {
        w.buf.put_i16(data.error_code);
        w.buf.put_i32(data.session_id);
    }
    w.array_len(data.topics.len());
    for topic in data.topics {
        if version >= 13 {
            w.buf.put_slice(topic.topic_id.as_bytes());
        } else {
            w.string(&topic.name);
        }
        w.array_len(topic.partitions.len());
        for p in topic.partitions {
            w.buf.put_i32(p.partition_index);
            w.buf.put_i16(p.error_code);
            w.buf.put_i64(p.high_watermark);
            w.buf.put_i64(p.last_stable_offset);
            if version >= 5 {
                w.buf.put_i64(p.log_start_offset);
            }
            match &p.aborted_transactions {
                None => {
                    if flexible {
                        w.buf.put_u8(0);
                    } else {
                        w.buf.put_i32(-1);
                    }
                }
                Some(list) => {
                    w.array_len(list.len());
                    for a in list {
                        w.buf.put_i64(a.producer_id);
                        w.buf.put_i64(a.first_offset);
                        w.tags();
                    }
                }
            }
            if version >= 11 {
                w.buf.put_i32(p.preferred_read_replica);
            }
            match p.records {
                None => {
                    if flexible {
                        put_uvarint(&mut w.buf, 1);
                    } else {
                        w.buf.put_i32(0);
                    }
                }
                Some((region, len)) => {
                    if flexible {
                        put_uvarint(&mut w.buf, len as u32 + 1);
                    } else {
                        w.buf.put_i32(len as i32);
                    }
                    w.flush();
                    w.total += len;
                    w.chunks.push(Chunk::Records(region));
                }
            }
            let mut fields = Vec::new();
            if let Some((epoch, end_offset)) = p.diverging_epoch {
                let mut b = BytesMut::new();
                b.put_i32(epoch);
                b.put_i64(end_offset);
                b.put_u8(0);
                fields.push((0, b));
            }
            if let Some((leader, epoch)) = p.current_leader {
                let mut b = BytesMut::new();
                b.put_i32(leader);
                b.put_i32(epoch);
                b.put_u8(0);
                fields.push((1, b));
            }
            w.tagged(&fields);
        }
        w.tags();
    }
    let mut fields = Vec::new();
    if version >= 16 && !data.node_endpoints.is_empty() {
        let mut b = BytesMut::new();
        put_uvarint(&mut b, data.node_endpoints.len() as u32 + 1);
        for n in &data.node_endpoints {
            b.put_i32(n.node_id);
            Writer::<R>::compact_nullable_string(&mut b, Some(&n.host));
            b.put_i32(n.port);
            Writer::<R>::compact_nullable_string(&mut b, n.rack.as_deref());
            b.put_u8(0);
        }
        fields.push((0, b));
    }
    w.tagged(&fields);
    w.flush();
    let total = w.total;
    let size = (total - 4) as i32;
    if let Some(Chunk::Bytes(first)) = w.chunks.first_mut() {
        let mut patched = BytesMut::from(&first[..]);
        patched[..4].copy_from_slice(&size.to_be_bytes());
        *first = patched.freeze();
    }
    (w.chunks, total)
}

#[cfg(test)]
mod tests {
    use super::*;
    use kafka_protocol::messages::fetch_response::{
        AbortedTransaction as KAborted, FetchResponse, FetchableTopicResponse,
        PartitionData as KPart,
    };
    use kafka_protocol::messages::{ApiKey, TopicName};
    use kafka_protocol::protocol::StrBytes;

    fn ours(version: i16, records: &[Option<Vec<u8>>], aborted: bool) -> Vec<u8> {
        ours_with(version, records, aborted, false)
    }

    /// `tagged`: partition 1 diverged at (4, 77) and partition 2 names leader 3 in epoch 9,
    /// whose endpoint goes in NodeEndpoints.
    fn ours_with(
        version: i16,
        records: &[Option<Vec<u8>>],
        aborted: bool,
        tagged: bool,
    ) -> Vec<u8> {
        let partitions = records
            .iter()
            .enumerate()
            .map(|(i, r)| PartitionData {
                partition_index: i as i32,
                error_code: 0,
                high_watermark: 100 + i as i64,
                last_stable_offset: 90,
                log_start_offset: 3,
                aborted_transactions: aborted.then(|| {
                    vec![AbortedTransaction {
                        producer_id: 7,
                        first_offset: 11,
                    }]
                }),
                preferred_read_replica: -1,
                records: r.as_ref().map(|v| (v.clone(), v.len() as u64)),
                diverging_epoch: (tagged && i == 1).then_some((4, 77)),
                current_leader: (tagged && i == 2).then_some((3, 9)),
            })
            .collect();
        let data = FetchResponseData {
            throttle_time_ms: 0,
            error_code: 0,
            session_id: 0,
            topics: vec![TopicData {
                name: "topic-a".into(),
                topic_id: Uuid::from_u128(0x1234_5678_9abc_def0_1122_3344_5566_7788),
                partitions,
            }],
            node_endpoints: if tagged {
                vec![NodeEndpoint {
                    node_id: 3,
                    host: "h3".into(),
                    port: 9093,
                    rack: Some("r1".into()),
                }]
            } else {
                Vec::new()
            },
        };
        let (chunks, total) = encode_fetch_response(version, 42, data);
        let mut out = Vec::new();
        for c in chunks {
            match c {
                Chunk::Bytes(b) => out.extend_from_slice(&b),
                Chunk::Records(v) => out.extend_from_slice(&v),
            }
        }
        assert_eq!(out.len() as u64, total);
        out
    }

    fn theirs(version: i16, records: &[Option<Vec<u8>>], aborted: bool) -> Vec<u8> {
        theirs_with(version, records, aborted, false)
    }

    fn theirs_with(
        version: i16,
        records: &[Option<Vec<u8>>],
        aborted: bool,
        tagged: bool,
    ) -> Vec<u8> {
        use kafka_protocol::messages::fetch_response::{
            EpochEndOffset, LeaderIdAndEpoch, NodeEndpoint as KNode,
        };
        let partitions = records
            .iter()
            .enumerate()
            .map(|(i, r)| {
                KPart::default()
                    .with_partition_index(i as i32)
                    .with_high_watermark(100 + i as i64)
                    .with_last_stable_offset(90)
                    .with_log_start_offset(3)
                    .with_aborted_transactions(aborted.then(|| {
                        vec![KAborted::default()
                            .with_producer_id(kafka_protocol::messages::ProducerId(7))
                            .with_first_offset(11)]
                    }))
                    .with_preferred_read_replica(kafka_protocol::messages::BrokerId(-1))
                    .with_records(Some(Bytes::from(r.clone().unwrap_or_default())))
                    .with_diverging_epoch(if tagged && i == 1 {
                        EpochEndOffset::default().with_epoch(4).with_end_offset(77)
                    } else {
                        EpochEndOffset::default()
                    })
                    .with_current_leader(if tagged && i == 2 {
                        LeaderIdAndEpoch::default()
                            .with_leader_id(kafka_protocol::messages::BrokerId(3))
                            .with_leader_epoch(9)
                    } else {
                        LeaderIdAndEpoch::default()
                    })
            })
            .collect();
        let mut resp =
            FetchResponse::default().with_responses(vec![FetchableTopicResponse::default()
                .with_topic(TopicName(StrBytes::from_static_str("topic-a")))
                .with_topic_id(Uuid::from_u128(0x1234_5678_9abc_def0_1122_3344_5566_7788))
                .with_partitions(partitions)]);
        if tagged && version >= 16 {
            resp.node_endpoints = vec![KNode::default()
                .with_node_id(kafka_protocol::messages::BrokerId(3))
                .with_host(StrBytes::from_static_str("h3"))
                .with_port(9093)
                .with_rack(Some(StrBytes::from_static_str("r1")))];
        }
        crate::response::encode_response(ApiKey::Fetch, version, 42, &resp)
            .unwrap()
            .to_vec()
    }

    #[test]
    fn matches_kafka_protocol_encoding_for_every_version() {
        let recs = vec![Some(vec![1u8, 2, 3, 4, 5]), None, Some(vec![9u8; 300])];
        for version in MIN_VERSION..=MAX_VERSION {
            for aborted in [false, true] {
                assert_eq!(
                    ours(version, &recs, aborted),
                    theirs(version, &recs, aborted),
                    "fetch v{version} aborted={aborted}"
                );
                if version >= 12 {
                    assert_eq!(
                        ours_with(version, &recs, aborted, true),
                        theirs_with(version, &recs, aborted, true),
                        "fetch v{version} aborted={aborted} with tagged fields"
                    );
                }
            }
        }
    }
}
