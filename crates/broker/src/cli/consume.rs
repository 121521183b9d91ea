//! `gregor consume TOPIC`: records to stdout, one Fetch per partition leader per round.
//!
//! Starts at `-o` (default: the beginning) or, with `-g GROUP`, at the group's committed
//! offsets; follows until Ctrl-C, or with `-e` stops once every partition reached its high
//! watermark. Decompresses every codec and skips control batches. With `-g` the consumed
//! positions are committed for GROUP (OffsetCommit with generation -1 and no member id, as
//! admin tools do: the CLI never joins the group).

use super::client::{Client, Target, TopicMeta};
use super::groups::{commit_offsets, committed_offsets};
use super::topics::relabel;
use super::{Common, Error};
use bytes::Bytes;
use clap::Args;
use gregor_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use gregor_protocol::messages::FetchRequest;
use gregor_protocol::{ErrorCode, Record, RecordBatch};
use serde_json::json;
use std::collections::BTreeMap;
use std::io::Write;

/// Decompressed size cap per batch.
const MAX_UNCOMPRESSED: usize = 256 * 1024 * 1024;

#[derive(Debug, Args)]
pub struct ConsumeArgs {
    #[command(flatten)]
    common: Common,
    /// Topic to consume.
    topic: String,
    /// Partitions to consume (repeatable or comma-separated; default: all).
    #[arg(short = 'p', long = "partition", value_delimiter = ',')]
    partitions: Vec<i32>,
    /// Start offset: beginning, end, an absolute OFFSET, or -N (N records before the end).
    #[arg(short = 'o', long, default_value = "beginning", allow_hyphen_values = true, value_parser = parse_offset)]
    offset: StartOffset,
    /// Stop after this many records.
    #[arg(short = 'n', long = "num")]
    num: Option<u64>,
    /// Output format: %t topic, %p partition, %o offset, %k key, %v value, %d timestamp (ms),
    /// %h headers, %K / %V key / value length, %% a percent sign; \n \t \r \\ escapes.
    #[arg(short = 'f', long, default_value = "%v\\n")]
    format: String,
    /// Exit once every partition reached its end (like kcat -e) instead of following.
    #[arg(short = 'e', long = "exit")]
    exit: bool,
    /// Start from GROUP's committed offsets and commit consumed offsets for it (the CLI does not
    /// join the group: it commits with generation -1, so the group must have no active members).
    #[arg(short = 'g', long)]
    group: Option<String>,
}

/// Where to start.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StartOffset {
    Beginning,
    End,
    At(i64),
    BeforeEnd(i64),
}

pub fn parse_offset(s: &str) -> Result<StartOffset, String> {
    match s {
        "beginning" | "start" | "oldest" | "earliest" => Ok(StartOffset::Beginning),
        "end" | "newest" | "latest" => Ok(StartOffset::End),
        _ => match s.parse::<i64>() {
            Ok(n) if n >= 0 => Ok(StartOffset::At(n)),
            Ok(n) if n > i64::MIN => Ok(StartOffset::BeforeEnd(-n)),
            _ => Err(format!(
                "invalid offset {s:?} (beginning, end, OFFSET or -N)"
            )),
        },
    }
}

/// One piece of a `-f` format.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Tok {
    Lit(Vec<u8>),
    Topic,
    Partition,
    Offset,
    Key,
    Value,
    Timestamp,
    Headers,
    KeyLen,
    ValueLen,
}

/// Parse a `-f` format string.
pub fn parse_format(f: &str) -> Result<Vec<Tok>, String> {
    let mut out = Vec::new();
    let mut lit = Vec::new();
    let mut chars = f.chars();
    let push = |out: &mut Vec<Tok>, lit: &mut Vec<u8>, t: Tok| {
        if !lit.is_empty() {
            out.push(Tok::Lit(std::mem::take(lit)));
        }
        out.push(t);
    };
    while let Some(c) = chars.next() {
        match c {
            '%' => {
                let t = match chars.next() {
                    Some('t') => Tok::Topic,
                    Some('p') => Tok::Partition,
                    Some('o') => Tok::Offset,
                    Some('k') => Tok::Key,
                    Some('v') | Some('s') => Tok::Value,
                    Some('d') | Some('T') => Tok::Timestamp,
                    Some('h') => Tok::Headers,
                    Some('K') => Tok::KeyLen,
                    Some('V') | Some('S') => Tok::ValueLen,
                    Some('%') => {
                        lit.push(b'%');
                        continue;
                    }
                    Some(other) => return Err(format!("unknown format directive %{other}")),
                    None => return Err("format ends with a lone %".into()),
                };
                push(&mut out, &mut lit, t);
            }
            '\\' => match chars.next() {
                Some('n') => lit.push(b'\n'),
                Some('t') => lit.push(b'\t'),
                Some('r') => lit.push(b'\r'),
                Some('\\') => lit.push(b'\\'),
                Some(other) => {
                    lit.push(b'\\');
                    let mut b = [0; 4];
                    lit.extend_from_slice(other.encode_utf8(&mut b).as_bytes());
                }
                None => lit.push(b'\\'),
            },
            c => {
                let mut b = [0; 4];
                lit.extend_from_slice(c.encode_utf8(&mut b).as_bytes());
            }
        }
    }
    if !lit.is_empty() {
        out.push(Tok::Lit(lit));
    }
    Ok(out)
}

/// A record as printed.
pub struct Printed<'a> {
    pub topic: &'a str,
    pub partition: i32,
    pub offset: i64,
    pub timestamp: i64,
    pub record: &'a Record,
}

/// Render a record with a parsed format.
pub fn render(toks: &[Tok], r: &Printed<'_>, out: &mut Vec<u8>) {
    for t in toks {
        match t {
            Tok::Lit(l) => out.extend_from_slice(l),
            Tok::Topic => out.extend_from_slice(r.topic.as_bytes()),
            Tok::Partition => out.extend_from_slice(r.partition.to_string().as_bytes()),
            Tok::Offset => out.extend_from_slice(r.offset.to_string().as_bytes()),
            Tok::Timestamp => out.extend_from_slice(r.timestamp.to_string().as_bytes()),
            Tok::Key => out.extend_from_slice(r.record.key.as_deref().unwrap_or_default()),
            Tok::Value => out.extend_from_slice(r.record.value.as_deref().unwrap_or_default()),
            Tok::KeyLen => out.extend_from_slice(
                r.record
                    .key
                    .as_ref()
                    .map_or(-1, |k| k.len() as i64)
                    .to_string()
                    .as_bytes(),
            ),
            Tok::ValueLen => out.extend_from_slice(
                r.record
                    .value
                    .as_ref()
                    .map_or(-1, |v| v.len() as i64)
                    .to_string()
                    .as_bytes(),
            ),
            Tok::Headers => {
                for (i, h) in r.record.headers.iter().enumerate() {
                    if i > 0 {
                        out.push(b',');
                    }
                    out.extend_from_slice(h.key.as_bytes());
                    out.push(b'=');
                    out.extend_from_slice(h.value.as_deref().unwrap_or_default());
                }
            }
        }
    }
}

fn lossy(b: &Option<Bytes>) -> serde_json::Value {
    match b {
        None => serde_json::Value::Null,
        Some(b) => serde_json::Value::String(String::from_utf8_lossy(b).into_owned()),
    }
}

/// The `--json` object of a record.
pub fn to_json(r: &Printed<'_>) -> serde_json::Value {
    let headers: Vec<_> = r
        .record
        .headers
        .iter()
        .map(|h| json!({"key": h.key, "value": lossy(&h.value)}))
        .collect();
    json!({
        "topic": r.topic,
        "partition": r.partition,
        "offset": r.offset,
        "timestamp": r.timestamp,
        "key": lossy(&r.record.key),
        "value": lossy(&r.record.value),
        "headers": headers,
    })
}

/// The complete v2 batches at the front of a Fetch `records` field (a trailing partial batch,
/// cut by the size limit, is left out).
fn batches(records: &Bytes) -> Result<Vec<RecordBatch>, Error> {
    let mut out = Vec::new();
    let mut pos = 0;
    while records.len() - pos >= 17 {
        let len = i32::from_be_bytes([
            records[pos + 8],
            records[pos + 9],
            records[pos + 10],
            records[pos + 11],
        ]);
        if len < 0 {
            return Err(Error::Protocol(format!("negative batch length {len}")));
        }
        let total = len as usize + 12;
        if pos + total > records.len() {
            break;
        }
        let magic = records[pos + 16] as i8;
        if magic != 2 {
            return Err(Error::Protocol(format!(
                "record batch with magic {magic}: only the v2 format is supported"
            )));
        }
        let b = RecordBatch::parse(records.slice(pos..pos + total))
            .map_err(|e| Error::Protocol(format!("corrupt record batch: {e}")))?;
        out.push(b);
        pos += total;
    }
    Ok(out)
}

struct PartState {
    position: i64,
    done: bool,
    committed: Option<i64>,
}

pub async fn run(args: ConsumeArgs) -> Result<(), Error> {
    let toks = parse_format(&args.format).map_err(Error::Usage)?;
    let mut client = args.common.client()?;
    let topic = client
        .topic(&args.topic)
        .await
        .map_err(|e| relabel(e, &format!("consuming topic {}", args.topic)))?;
    let mut wanted: Vec<i32> = topic.partitions.iter().map(|p| p.partition).collect();
    if !args.partitions.is_empty() {
        for p in &args.partitions {
            if !wanted.contains(p) {
                return Err(Error::kafka(
                    &format!("consuming {}[{p}]", topic.name),
                    ErrorCode::UnknownTopicOrPartition.code(),
                    None,
                ));
            }
        }
        wanted = args.partitions.clone();
        wanted.sort_unstable();
        wanted.dedup();
    }
    let coordinator = match &args.group {
        Some(g) => Some(client.coordinator(g).await?),
        None => None,
    };
    let committed = match (&args.group, coordinator) {
        (Some(g), Some(c)) => {
            committed_offsets(
                &mut client,
                c,
                g,
                Some(&[(topic.name.clone(), wanted.clone())]),
            )
            .await?
        }
        _ => BTreeMap::new(),
    };
    let parts: Vec<(String, i32, i32)> = wanted
        .iter()
        .map(|p| (topic.name.clone(), *p, topic.leader(*p)))
        .collect();
    let earliest = client.list_offsets(&parts, -2).await?;
    let latest = client.list_offsets(&parts, -1).await?;
    let mut state: BTreeMap<i32, PartState> = BTreeMap::new();
    for p in &wanted {
        let key = (topic.name.clone(), *p);
        let lookup = |m: &std::collections::HashMap<(String, i32), (i16, i64)>| {
            let (code, off) = m.get(&key).copied().unwrap_or((3, -1));
            Error::check(
                &format!("listing offsets of {}[{p}]", topic.name),
                code,
                None,
            )
            .map(|_| off)
        };
        let (lo, hi) = (lookup(&earliest)?, lookup(&latest)?);
        let position = match committed.get(&key) {
            Some(c) if *c >= 0 => *c,
            _ => match args.offset {
                StartOffset::Beginning => lo,
                StartOffset::End => hi,
                StartOffset::At(n) => n,
                StartOffset::BeforeEnd(n) => hi.saturating_sub(n).max(lo),
            },
        };
        state.insert(
            *p,
            PartState {
                position,
                done: false,
                committed: committed.get(&key).copied().filter(|c| *c >= 0),
            },
        );
    }
    let mut c = Consumer {
        client,
        topic,
        toks,
        json: args.common.json,
        exit: args.exit,
        remaining: args.num,
        state,
        stdout: std::io::BufWriter::new(std::io::stdout()),
    };
    let result = tokio::select! {
        r = c.run() => r,
        _ = tokio::signal::ctrl_c() => Ok(()),
    };
    let flushed = c.stdout.flush().map_err(Error::Local);
    if let (Some(g), Some(coord)) = (&args.group, coordinator) {
        // Commit what was consumed even after Ctrl-C or an error.
        c.commit(coord, g).await?;
    }
    result?;
    flushed
}

struct Consumer {
    client: Client,
    topic: TopicMeta,
    toks: Vec<Tok>,
    json: bool,
    exit: bool,
    remaining: Option<u64>,
    state: BTreeMap<i32, PartState>,
    stdout: std::io::BufWriter<std::io::Stdout>,
}

impl Consumer {
    async fn run(&mut self) -> Result<(), Error> {
        let mut refresh = false;
        loop {
            if self.remaining == Some(0) {
                return Ok(());
            }
            if self.exit && self.state.values().all(|s| s.done) {
                return Ok(());
            }
            if refresh {
                tokio::time::sleep(std::time::Duration::from_millis(200)).await;
                self.topic = self.client.topic(&self.topic.name).await?;
                refresh = false;
            }
            let mut by_leader: BTreeMap<i32, Vec<i32>> = BTreeMap::new();
            for (p, s) in &self.state {
                if !s.done {
                    by_leader.entry(self.topic.leader(*p)).or_default().push(*p);
                }
            }
            let got_any_leader = by_leader.keys().any(|l| *l >= 0);
            if !got_any_leader {
                refresh = true;
                continue;
            }
            for (leader, parts) in by_leader {
                if leader < 0 {
                    refresh = true;
                    continue;
                }
                refresh |= self.fetch(leader, &parts).await?;
                if self.remaining == Some(0) {
                    return Ok(());
                }
            }
        }
    }

    /// One Fetch to `leader`; returns whether metadata should be refreshed.
    async fn fetch(&mut self, leader: i32, parts: &[i32]) -> Result<bool, Error> {
        let max_wait = if self.exit { 100 } else { 500 };
        let topic = &self.topic;
        let state = &self.state;
        let (_, resp) = self
            .client
            .call(Target::Node(leader), |_| {
                FetchRequest::default()
                    .with_max_wait_ms(max_wait)
                    .with_min_bytes(1)
                    .with_max_bytes(52_428_800)
                    .with_isolation_level(0)
                    .with_session_id(0)
                    .with_session_epoch(-1)
                    .with_topics(vec![FetchTopic::default()
                        .with_topic(super::client::topic_name(&topic.name))
                        .with_topic_id(topic.id)
                        .with_partitions(
                            parts
                                .iter()
                                .map(|p| {
                                    FetchPartition::default()
                                        .with_partition(*p)
                                        .with_fetch_offset(state[p].position)
                                        .with_partition_max_bytes(1_048_576)
                                })
                                .collect(),
                        )])
            })
            .await?;
        Error::check("fetching", resp.error_code, None)?;
        let mut refresh = false;
        for t in resp.responses {
            for pd in t.partitions {
                let p = pd.partition_index;
                let Some(st) = self.state.get(&p) else {
                    continue;
                };
                let position = st.position;
                match ErrorCode::from_code(pd.error_code) {
                    Some(ErrorCode::None) => {}
                    Some(
                        ErrorCode::NotLeaderOrFollower
                        | ErrorCode::LeaderNotAvailable
                        | ErrorCode::UnknownTopicOrPartition
                        | ErrorCode::FencedLeaderEpoch
                        | ErrorCode::UnknownLeaderEpoch
                        | ErrorCode::UnknownTopicId
                        | ErrorCode::OffsetNotAvailable
                        | ErrorCode::KafkaStorageError,
                    ) => {
                        refresh = true;
                        continue;
                    }
                    Some(ErrorCode::OffsetOutOfRange) => {
                        let to = if position < pd.log_start_offset.max(0) {
                            pd.log_start_offset
                        } else {
                            pd.high_watermark
                        };
                        eprintln!(
                            "gregor: offset {position} is out of range for {}[{p}]; resetting to {to}",
                            self.topic.name
                        );
                        if let Some(s) = self.state.get_mut(&p) {
                            s.position = to.max(0);
                        }
                        continue;
                    }
                    _ => {
                        return Err(Error::kafka(
                            &format!("fetching {}[{p}] at offset {position}", self.topic.name),
                            pd.error_code,
                            None,
                        ))
                    }
                }
                let mut next = position;
                if let Some(records) = &pd.records {
                    for batch in batches(records)? {
                        if batch.next_offset() <= next {
                            continue;
                        }
                        if !batch.is_control() {
                            let recs = batch.records(MAX_UNCOMPRESSED).map_err(|e| {
                                Error::Protocol(format!(
                                    "corrupt batch at {}[{p}] offset {}: {e}",
                                    self.topic.name,
                                    batch.base_offset()
                                ))
                            })?;
                            for r in &recs {
                                let offset = r.offset(batch.base_offset());
                                if offset < next {
                                    continue;
                                }
                                if self.remaining == Some(0) {
                                    break;
                                }
                                let timestamp = if batch.is_log_append_time() {
                                    batch.max_timestamp()
                                } else {
                                    r.timestamp(batch.base_timestamp())
                                };
                                let printed = Printed {
                                    topic: &self.topic.name,
                                    partition: p,
                                    offset,
                                    timestamp,
                                    record: r,
                                };
                                let mut line = Vec::new();
                                if self.json {
                                    line = to_json(&printed).to_string().into_bytes();
                                    line.push(b'\n');
                                } else {
                                    render(&self.toks, &printed, &mut line);
                                }
                                self.stdout.write_all(&line)?;
                                next = offset + 1;
                                if let Some(n) = &mut self.remaining {
                                    *n -= 1;
                                }
                            }
                            if self.remaining == Some(0) {
                                break;
                            }
                        }
                        next = next.max(batch.next_offset());
                    }
                }
                if let Some(s) = self.state.get_mut(&p) {
                    s.position = next;
                    if self.exit && next >= pd.high_watermark {
                        s.done = true;
                    }
                }
            }
        }
        self.stdout.flush()?;
        Ok(refresh)
    }

    async fn commit(&mut self, coordinator: i32, group: &str) -> Result<(), Error> {
        let offsets: Vec<(i32, i64)> = self
            .state
            .iter()
            .filter(|(_, s)| s.committed != Some(s.position))
            .map(|(p, s)| (*p, s.position))
            .collect();
        if offsets.is_empty() {
            return Ok(());
        }
        commit_offsets(&mut self.client, coordinator, group, &self.topic, &offsets).await?;
        for (p, o) in offsets {
            if let Some(s) = self.state.get_mut(&p) {
                s.committed = Some(o);
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use gregor_protocol::RecordHeader;

    fn rec() -> Record {
        Record {
            attributes: 0,
            timestamp_delta: 0,
            offset_delta: 0,
            key: Some(Bytes::from_static(b"k1")),
            value: Some(Bytes::from_static(b"hello")),
            headers: vec![
                RecordHeader {
                    key: "a".into(),
                    value: Some(Bytes::from_static(b"1")),
                },
                RecordHeader {
                    key: "b".into(),
                    value: None,
                },
            ],
        }
    }

    fn show(f: &str, r: &Record) -> String {
        let toks = parse_format(f).unwrap();
        let mut out = Vec::new();
        render(
            &toks,
            &Printed {
                topic: "t",
                partition: 2,
                offset: 41,
                timestamp: 1700000000000,
                record: r,
            },
            &mut out,
        );
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn format_directives() {
        let r = rec();
        assert_eq!(show("%k %v %p %o %t\\n", &r), "k1 hello 2 41 t\n");
        assert_eq!(show("%s|%T|%d", &r), "hello|1700000000000|1700000000000");
        assert_eq!(show("%K:%V %h", &r), "2:5 a=1,b=");
        assert_eq!(show("100%% %v\\t\\\\", &r), "100% hello\t\\");
        assert_eq!(show("plain", &r), "plain");
        assert_eq!(show("ü%vü", &r), "ühelloü");
        let null = Record {
            key: None,
            value: None,
            headers: vec![],
            ..rec()
        };
        assert_eq!(show("[%k][%v] %K %V", &null), "[][] -1 -1");
    }

    #[test]
    fn format_errors() {
        assert!(parse_format("%x").is_err());
        assert!(parse_format("%").is_err());
        assert_eq!(
            parse_format("\\q").unwrap(),
            vec![Tok::Lit(b"\\q".to_vec())]
        );
    }

    #[test]
    fn offsets() {
        assert_eq!(parse_offset("beginning"), Ok(StartOffset::Beginning));
        assert_eq!(parse_offset("end"), Ok(StartOffset::End));
        assert_eq!(parse_offset("42"), Ok(StartOffset::At(42)));
        assert_eq!(parse_offset("-3"), Ok(StartOffset::BeforeEnd(3)));
        assert!(parse_offset("soon").is_err());
    }

    #[test]
    fn json_records() {
        let r = rec();
        let v = to_json(&Printed {
            topic: "t",
            partition: 0,
            offset: 7,
            timestamp: 5,
            record: &r,
        });
        assert_eq!(
            v,
            json!({"topic": "t", "partition": 0, "offset": 7, "timestamp": 5, "key": "k1",
                   "value": "hello", "headers": [{"key": "a", "value": "1"}, {"key": "b", "value": null}]})
        );
    }

    #[test]
    fn partial_trailing_batch_is_left_out() {
        let mut b = gregor_protocol::RecordBatchBuilder::new(gregor_protocol::Compression::None, 0);
        b.push(0, None, Some(b"x"), &[]);
        let one = b.build().unwrap();
        let mut two = one.to_vec();
        two.extend_from_slice(&one[..20]);
        let got = batches(&Bytes::from(two)).unwrap();
        assert_eq!(got.len(), 1);
        assert!(batches(&Bytes::new()).unwrap().is_empty());
    }
}
