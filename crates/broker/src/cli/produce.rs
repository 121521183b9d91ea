//! `gregor produce TOPIC`: one record per stdin line.
//!
//! Lines are batched per partition (flushed after a few ms without input or at 1 MiB) and each
//! batch is sent to its partition's leader. Keyed records are partitioned like the Java client
//! (`toPositive(murmur2(key)) % partitions`), unkeyed ones stick to one partition per flush and
//! move round-robin to the next.

use super::client::{topic_name, Client, Target, TopicMeta};
use super::topics::{parse_kv, relabel};
use super::{out_json, Common, Error};
use clap::Args;
use gregor_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use gregor_protocol::messages::ProduceRequest;
use gregor_protocol::{Compression, ErrorCode, RecordBatchBuilder};
use serde_json::json;
use std::collections::BTreeMap;
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, AsyncRead, BufReader};

/// Flush a partition's batch once its records add up to this many bytes.
const MAX_BATCH_BYTES: usize = 1024 * 1024;

#[derive(Debug, Args)]
pub struct ProduceArgs {
    #[command(flatten)]
    common: Common,
    /// Topic to produce to.
    topic: String,
    /// A fixed key for every record.
    #[arg(short = 'k', long, conflicts_with = "key_separator")]
    key: Option<String>,
    /// Split each line into key and value at the first SEP (a line without it has a null key).
    #[arg(long = "key-separator", value_name = "SEP")]
    key_separator: Option<String>,
    /// Partition to produce to (default: murmur2 of the key, or sticky round-robin if unkeyed).
    #[arg(short = 'p', long)]
    partition: Option<i32>,
    /// Acks: -1 (all), 0 (none: no response, no offsets) or 1 (leader).
    #[arg(long, default_value_t = -1, allow_negative_numbers = true, value_parser = clap::value_parser!(i16).range(-1..=1))]
    acks: i16,
    /// Compression codec: none, gzip, snappy, lz4, zstd.
    #[arg(short = 'z', long, default_value = "none", value_parser = parse_compression)]
    compression: Compression,
    /// Record header key=value (repeatable).
    #[arg(short = 'H', long = "header", value_parser = parse_kv)]
    headers: Vec<(String, String)>,
    /// How long to wait for more lines before sending a batch.
    #[arg(long, default_value = "5ms", value_parser = super::parse_duration)]
    linger: Duration,
}

fn parse_compression(s: &str) -> Result<Compression, String> {
    match Compression::from_name(s) {
        Some(c) if !s.eq_ignore_ascii_case("uncompressed") => Ok(c),
        _ => Err(format!(
            "unknown compression {s:?} (none, gzip, snappy, lz4, zstd)"
        )),
    }
}

/// Kafka's murmur2 (`org.apache.kafka.common.utils.Utils.murmur2`).
pub fn murmur2(data: &[u8]) -> i32 {
    let seed: u32 = 0x9747_b28c;
    let m: u32 = 0x5bd1_e995;
    let r = 24;
    let len = data.len();
    let mut h: u32 = seed ^ (len as u32);
    let chunks = data.chunks_exact(4);
    let tail = chunks.remainder();
    for c in chunks {
        let mut k = u32::from_le_bytes([c[0], c[1], c[2], c[3]]);
        k = k.wrapping_mul(m);
        k ^= k >> r;
        k = k.wrapping_mul(m);
        h = h.wrapping_mul(m);
        h ^= k;
    }
    match tail.len() {
        3 => {
            h ^= (tail[2] as u32) << 16;
            h ^= (tail[1] as u32) << 8;
            h ^= tail[0] as u32;
            h = h.wrapping_mul(m);
        }
        2 => {
            h ^= (tail[1] as u32) << 8;
            h ^= tail[0] as u32;
            h = h.wrapping_mul(m);
        }
        1 => {
            h ^= tail[0] as u32;
            h = h.wrapping_mul(m);
        }
        _ => {}
    }
    h ^= h >> 13;
    h = h.wrapping_mul(m);
    h ^= h >> 15;
    h as i32
}

/// The Java client's partition for a key: `toPositive(murmur2(key)) % partitions`.
pub fn partition_for_key(key: &[u8], partitions: i32) -> i32 {
    (murmur2(key) & 0x7fff_ffff) % partitions.max(1)
}

struct Pending {
    key: Option<Vec<u8>>,
    value: Vec<u8>,
    timestamp: i64,
}

/// Per-partition outcome for the summary.
#[derive(Default)]
struct Produced {
    records: u64,
    first: Option<i64>,
    last: Option<i64>,
}

struct Producer {
    client: Client,
    topic: TopicMeta,
    acks: i16,
    compression: Compression,
    headers: Vec<(String, String)>,
    pending: BTreeMap<i32, Vec<Pending>>,
    pending_bytes: usize,
    produced: BTreeMap<i32, Produced>,
}

pub async fn run(args: ProduceArgs) -> Result<(), Error> {
    let mut client = args.common.client()?;
    let topic = client
        .topic(&args.topic)
        .await
        .map_err(|e| relabel(e, &format!("producing to topic {}", args.topic)))?;
    let count = topic.partitions.len() as i32;
    if count == 0 {
        return Err(Error::Usage(format!(
            "topic {} has no partitions",
            args.topic
        )));
    }
    if let Some(p) = args.partition {
        if !topic.partitions.iter().any(|m| m.partition == p) {
            return Err(Error::kafka(
                &format!("producing to {}[{p}]", args.topic),
                ErrorCode::UnknownTopicOrPartition.code(),
                None,
            ));
        }
    }
    let mut producer = Producer {
        client,
        topic,
        acks: args.acks,
        compression: args.compression,
        headers: args.headers,
        pending: BTreeMap::new(),
        pending_bytes: 0,
        produced: BTreeMap::new(),
    };
    let mut sticky = 0i32;
    let mut lines = BufReader::new(tokio::io::stdin());
    let result = async {
        loop {
            let line = match read_line(&mut lines, args.linger).await? {
                Line::Data(l) => l,
                Line::Idle => {
                    if producer.flush().await? {
                        sticky = (sticky + 1) % count;
                    }
                    continue;
                }
                Line::Eof => break,
            };
            let (key, value) = split_line(line, args.key.as_deref(), args.key_separator.as_deref());
            let partition = match (args.partition, &key) {
                (Some(p), _) => p,
                (None, Some(k)) => partition_for_key(k, count),
                (None, None) => sticky,
            };
            producer.pending_bytes += value.len() + key.as_ref().map_or(0, Vec::len) + 16;
            producer
                .pending
                .entry(partition)
                .or_default()
                .push(Pending {
                    key,
                    value,
                    timestamp: now_ms(),
                });
            if producer.pending_bytes >= MAX_BATCH_BYTES && producer.flush().await? {
                sticky = (sticky + 1) % count;
            }
        }
        producer.flush().await?;
        Ok::<(), Error>(())
    }
    .await;
    producer.summary(args.common.json)?;
    result
}

enum Line {
    Data(Vec<u8>),
    Idle,
    Eof,
}

/// The next line (without its `\n`), `Idle` if none came within `linger`.
async fn read_line<R: AsyncRead + Unpin>(
    r: &mut BufReader<R>,
    linger: Duration,
) -> Result<Line, Error> {
    let mut buf = Vec::new();
    // Wait for the first byte with a timeout; once a line has started, read it to its end.
    match tokio::time::timeout(linger, r.fill_buf()).await {
        Err(_) => return Ok(Line::Idle),
        Ok(Err(e)) => return Err(Error::Local(e)),
        Ok(Ok([])) => return Ok(Line::Eof),
        Ok(Ok(_)) => {}
    }
    let n = r.read_until(b'\n', &mut buf).await?;
    if n == 0 {
        return Ok(Line::Eof);
    }
    if buf.last() == Some(&b'\n') {
        buf.pop();
    }
    Ok(Line::Data(buf))
}

/// Key and value of a line.
fn split_line(
    line: Vec<u8>,
    key: Option<&str>,
    separator: Option<&str>,
) -> (Option<Vec<u8>>, Vec<u8>) {
    if let Some(k) = key {
        return (Some(k.as_bytes().to_vec()), line);
    }
    if let Some(sep) = separator.map(str::as_bytes).filter(|s| !s.is_empty()) {
        if let Some(i) = line.windows(sep.len()).position(|w| w == sep) {
            return (Some(line[..i].to_vec()), line[i + sep.len()..].to_vec());
        }
    }
    (None, line)
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

impl Producer {
    /// Send every pending record; `true` if anything was sent.
    async fn flush(&mut self) -> Result<bool, Error> {
        if self.pending.is_empty() {
            return Ok(false);
        }
        let pending = std::mem::take(&mut self.pending);
        self.pending_bytes = 0;
        let mut batches: BTreeMap<i32, (bytes::Bytes, u64)> = BTreeMap::new();
        for (p, recs) in pending {
            let base = recs.first().map_or(0, |r| r.timestamp);
            let mut b = RecordBatchBuilder::new(self.compression, base);
            let headers: Vec<(&str, Option<&[u8]>)> = self
                .headers
                .iter()
                .map(|(k, v)| (k.as_str(), Some(v.as_bytes())))
                .collect();
            for r in &recs {
                b.push(r.timestamp, r.key.as_deref(), Some(&r.value), &headers);
            }
            let bytes = b
                .build()
                .map_err(|e| Error::Usage(format!("cannot build a record batch: {e}")))?;
            batches.insert(p, (bytes, recs.len() as u64));
        }
        let mut attempt = 0;
        while !batches.is_empty() {
            let retry = self.send(&mut batches).await?;
            if !retry {
                break;
            }
            attempt += 1;
            if attempt > 10 {
                let p = batches.keys().next().copied().unwrap_or(0);
                return Err(Error::Usage(format!(
                    "producing to {}[{p}]: gave up after {attempt} retries",
                    self.topic.name
                )));
            }
            tokio::time::sleep(Duration::from_millis(100 * attempt)).await;
            self.topic = self.client.topic(&self.topic.name).await?;
        }
        Ok(true)
    }

    /// One round: every batch to its leader. Successful batches are removed; returns whether a
    /// retriable error left some to retry.
    async fn send(
        &mut self,
        batches: &mut BTreeMap<i32, (bytes::Bytes, u64)>,
    ) -> Result<bool, Error> {
        let mut by_leader: BTreeMap<i32, Vec<i32>> = BTreeMap::new();
        let mut retry = false;
        for p in batches.keys() {
            let leader = self.topic.leader(*p);
            if leader < 0 {
                retry = true;
                continue;
            }
            by_leader.entry(leader).or_default().push(*p);
        }
        let timeout_ms = self.client.timeout().as_millis().min(i32::MAX as u128) as i32;
        for (leader, parts) in by_leader {
            let build = |_v: i16| {
                ProduceRequest::default()
                    .with_acks(self.acks)
                    .with_timeout_ms(timeout_ms)
                    .with_topic_data(vec![TopicProduceData::default()
                        .with_name(topic_name(&self.topic.name))
                        .with_topic_id(self.topic.id)
                        .with_partition_data(
                            parts
                                .iter()
                                .map(|p| {
                                    PartitionProduceData::default()
                                        .with_index(*p)
                                        .with_records(Some(batches[p].0.clone()))
                                })
                                .collect(),
                        )])
            };
            if self.acks == 0 {
                let req = build(0);
                self.client.send_only(Target::Node(leader), |_| req).await?;
                for p in &parts {
                    if let Some((_, n)) = batches.remove(p) {
                        self.produced.entry(*p).or_default().records += n;
                    }
                }
                continue;
            }
            let req = build(0);
            let (_, resp) = self.client.call(Target::Node(leader), |_| req).await?;
            for t in resp.responses {
                for pr in t.partition_responses {
                    let p = pr.index;
                    if pr.error_code == 0 {
                        if let Some((_, n)) = batches.remove(&p) {
                            let s = self.produced.entry(p).or_default();
                            s.records += n;
                            s.first.get_or_insert(pr.base_offset);
                            s.last = Some(pr.base_offset + n as i64 - 1);
                        }
                        continue;
                    }
                    let code = ErrorCode::from_code(pr.error_code);
                    let retriable = matches!(
                        code,
                        Some(
                            ErrorCode::NotLeaderOrFollower
                                | ErrorCode::LeaderNotAvailable
                                | ErrorCode::UnknownTopicOrPartition
                                | ErrorCode::NotEnoughReplicas
                        )
                    );
                    if retriable {
                        retry = true;
                        continue;
                    }
                    let msg = pr.error_message.map(|m| m.to_string()).or_else(|| {
                        pr.record_errors
                            .first()
                            .and_then(|r| r.batch_index_error_message.as_ref())
                            .map(|m| m.to_string())
                    });
                    return Err(Error::kafka(
                        &format!("producing to {}[{p}]", self.topic.name),
                        pr.error_code,
                        msg,
                    ));
                }
            }
        }
        Ok(retry || !batches.is_empty())
    }

    fn summary(&self, json: bool) -> Result<(), Error> {
        let total: u64 = self.produced.values().map(|p| p.records).sum();
        if json {
            let parts: Vec<_> = self
                .produced
                .iter()
                .map(|(p, s)| {
                    json!({"partition": p, "records": s.records, "first_offset": s.first, "last_offset": s.last})
                })
                .collect();
            return out_json(
                &json!({"topic": self.topic.name, "records": total, "partitions": parts}),
            );
        }
        let mut s = format!(
            "produced {total} record{} to {}",
            if total == 1 { "" } else { "s" },
            self.topic.name
        );
        let parts: Vec<String> = self
            .produced
            .iter()
            .map(|(p, r)| match (r.first, r.last) {
                (Some(f), Some(l)) => format!("[{p}] {} (offsets {f}..{l})", r.records),
                _ => format!("[{p}] {}", r.records),
            })
            .collect();
        if !parts.is_empty() {
            s.push_str(": ");
            s.push_str(&parts.join(", "));
        }
        eprintln!("{s}");
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The vectors of Kafka's `UtilsTest.testMurmur2`.
    #[test]
    fn murmur2_matches_the_java_client() {
        let cases: &[(&[u8], i32)] = &[
            (b"21", -973932308),
            (b"foobar", -790332482),
            (b"a-little-bit-long-string", -985981536),
            (b"a-little-bit-longer-string", -1486304829),
            (
                b"lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8",
                -58897971,
            ),
            (b"abc", 479470107),
        ];
        for (data, want) in cases {
            assert_eq!(murmur2(data), *want, "{:?}", String::from_utf8_lossy(data));
        }
    }

    #[test]
    fn keyed_partitioning_is_positive_modulo() {
        // murmur2("21") is negative: toPositive masks the sign bit before the modulo.
        let h = -973932308i32;
        assert_eq!(partition_for_key(b"21", 7), (h & 0x7fff_ffff) % 7);
        for n in 1..20 {
            let p = partition_for_key(b"foobar", n);
            assert!((0..n).contains(&p));
        }
    }

    #[test]
    fn lines_split_into_key_and_value() {
        let l = |s: &str| s.as_bytes().to_vec();
        assert_eq!(
            split_line(l("k:v:w"), None, Some(":")),
            (Some(l("k")), l("v:w"))
        );
        assert_eq!(
            split_line(l("novalue"), None, Some(":")),
            (None, l("novalue"))
        );
        assert_eq!(
            split_line(l("a::b"), None, Some("::")),
            (Some(l("a")), l("b"))
        );
        assert_eq!(
            split_line(l("x"), Some("key"), None),
            (Some(l("key")), l("x"))
        );
        assert_eq!(split_line(l(""), None, None), (None, l("")));
    }

    #[test]
    fn compression_names() {
        assert_eq!(parse_compression("zstd"), Ok(Compression::Zstd));
        assert_eq!(parse_compression("LZ4"), Ok(Compression::Lz4));
        assert!(parse_compression("brotli").is_err());
    }
}
