//! A small Kafka wire client for the CLI: one TCP connection per broker, ApiVersions
//! negotiation on connect, typed request/response round trips on the `kafka-protocol` crate, and
//! a metadata cache used to route partition requests to leaders and group requests to
//! coordinators.

use super::Error;
use bytes::{BufMut, Bytes, BytesMut};
use gregor_protocol::messages::{
    ApiKey, ApiVersionsRequest, ApiVersionsResponse, BrokerId, FindCoordinatorRequest,
    MetadataRequest, MetadataResponse, RequestHeader, ResponseHeader, TopicName,
};
use gregor_protocol::protocol::{Decodable, Encodable, Request, StrBytes};
use gregor_protocol::ErrorCode;
use std::collections::{BTreeMap, HashMap};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Largest response frame the CLI accepts (a Fetch response is capped well below this).
const MAX_RESPONSE: usize = 256 * 1024 * 1024;

/// Which broker a request goes to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    /// Any broker (the bootstrap connection).
    Any,
    /// A broker by node id (from Metadata or FindCoordinator).
    Node(i32),
}

/// One connection to one broker, with the API versions it advertised.
struct Conn {
    addr: String,
    stream: TcpStream,
    correlation: i32,
    versions: HashMap<i16, (i16, i16)>,
    /// A request was sent whose response was not read (the call was cancelled): the stream
    /// is out of step and must be replaced.
    dirty: bool,
}

impl Conn {
    async fn open(addr: &str, client_id: &str, timeout: Duration) -> Result<Conn, Error> {
        let stream = tokio::time::timeout(timeout, TcpStream::connect(addr))
            .await
            .map_err(|_| Error::Connect(addr.to_string(), "timed out".into()))?
            .map_err(|e| Error::Connect(addr.to_string(), e.to_string()))?;
        let _ = stream.set_nodelay(true);
        let mut conn = Conn {
            addr: addr.to_string(),
            stream,
            correlation: 0,
            versions: HashMap::new(),
            dirty: false,
        };
        conn.negotiate(client_id, timeout).await?;
        Ok(conn)
    }

    /// ApiVersions: try v3 (flexible, what Kafka 2.4+ speaks); a broker that does not know it
    /// answers UNSUPPORTED_VERSION with a v0 body listing its ranges, so fall back to v0.
    async fn negotiate(&mut self, client_id: &str, timeout: Duration) -> Result<(), Error> {
        let req = ApiVersionsRequest::default()
            .with_client_software_name(StrBytes::from_static_str("gregor-cli"))
            .with_client_software_version(StrBytes::from_static_str(env!("CARGO_PKG_VERSION")));
        let body = self
            .round_trip(ApiKey::ApiVersions, 3, client_id, &req, timeout)
            .await?;
        let err = if body.len() >= 2 {
            i16::from_be_bytes([body[0], body[1]])
        } else {
            return Err(self.protocol("short ApiVersions response"));
        };
        let resp = if err == ErrorCode::UnsupportedVersion.code() {
            let mut b = body.clone();
            ApiVersionsResponse::decode(&mut b, 0).map_err(|e| self.protocol(e))?
        } else {
            let mut b = body.clone();
            ApiVersionsResponse::decode(&mut b, 3).map_err(|e| self.protocol(e))?
        };
        if resp.error_code != 0 && resp.api_keys.is_empty() {
            return Err(Error::kafka("ApiVersions", resp.error_code, None));
        }
        for k in resp.api_keys {
            self.versions
                .insert(k.api_key, (k.min_version, k.max_version));
        }
        Ok(())
    }

    fn protocol(&self, e: impl std::fmt::Display) -> Error {
        Error::Protocol(format!("{}: {e}", self.addr))
    }

    /// The version to use for `R`: the highest both sides support.
    fn version<R: Request>(&self) -> Result<i16, Error> {
        let api = ApiKey::try_from(R::KEY).map_err(|_| self.protocol("unknown API key"))?;
        let (bmin, bmax) = self
            .versions
            .get(&R::KEY)
            .copied()
            .ok_or_else(|| Error::Unsupported(format!("{api:?}"), self.addr.clone()))?;
        let ours = R::VERSIONS;
        let v = bmax.min(ours.max);
        if v < bmin.max(ours.min) {
            return Err(Error::Unsupported(format!("{api:?}"), self.addr.clone()));
        }
        Ok(v)
    }

    fn supports(&self, key: ApiKey) -> bool {
        self.versions.contains_key(&(key as i16))
    }

    /// Send one request and read its response body (after the response header).
    async fn round_trip<R: Encodable>(
        &mut self,
        api: ApiKey,
        version: i16,
        client_id: &str,
        req: &R,
        timeout: Duration,
    ) -> Result<Bytes, Error> {
        let buf = self.encode(api, version, client_id, req)?;
        let correlation = self.correlation;
        self.dirty = true;
        let io = async {
            self.stream.write_all(&buf).await?;
            self.read_frame().await
        };
        let mut frame = tokio::time::timeout(timeout, io)
            .await
            .map_err(|_| Error::Timeout(format!("{api:?} request to {}", self.addr), timeout))?
            .map_err(|e| Error::Io(self.addr.clone(), e))?;
        self.dirty = false;
        let header = ResponseHeader::decode(&mut frame, api.response_header_version(version))
            .map_err(|e| self.protocol(e))?;
        if header.correlation_id != correlation {
            return Err(self.protocol(format!(
                "correlation id {} does not match request {correlation}",
                header.correlation_id
            )));
        }
        Ok(frame)
    }

    /// Send without waiting for a response (Produce with acks=0).
    async fn send_only<R: Encodable>(
        &mut self,
        api: ApiKey,
        version: i16,
        client_id: &str,
        req: &R,
        timeout: Duration,
    ) -> Result<(), Error> {
        let buf = self.encode(api, version, client_id, req)?;
        tokio::time::timeout(timeout, self.stream.write_all(&buf))
            .await
            .map_err(|_| Error::Timeout(format!("{api:?} request to {}", self.addr), timeout))?
            .map_err(|e| Error::Io(self.addr.clone(), e))
    }

    fn encode<R: Encodable>(
        &mut self,
        api: ApiKey,
        version: i16,
        client_id: &str,
        req: &R,
    ) -> Result<BytesMut, Error> {
        self.correlation = self.correlation.wrapping_add(1);
        let header = RequestHeader::default()
            .with_request_api_key(api as i16)
            .with_request_api_version(version)
            .with_correlation_id(self.correlation)
            .with_client_id(Some(StrBytes::from_string(client_id.to_string())));
        let mut buf = BytesMut::with_capacity(256);
        buf.put_i32(0);
        header
            .encode(&mut buf, api.request_header_version(version))
            .map_err(|e| self.protocol(format!("encoding {api:?} v{version} header: {e}")))?;
        req.encode(&mut buf, version)
            .map_err(|e| self.protocol(format!("encoding {api:?} v{version}: {e}")))?;
        let len = (buf.len() - 4) as i32;
        buf[..4].copy_from_slice(&len.to_be_bytes());
        Ok(buf)
    }

    async fn read_frame(&mut self) -> std::io::Result<Bytes> {
        let len = self.stream.read_i32().await?;
        if len < 0 || len as usize > MAX_RESPONSE {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                format!("response size {len} out of range"),
            ));
        }
        let mut buf = vec![0u8; len as usize];
        self.stream.read_exact(&mut buf).await?;
        Ok(Bytes::from(buf))
    }
}

/// A broker from Metadata.
#[derive(Debug, Clone)]
pub struct BrokerInfo {
    pub host: String,
    pub port: i32,
}

/// A client over a set of bootstrap brokers.
pub struct Client {
    bootstrap: Vec<String>,
    client_id: String,
    timeout: Duration,
    any: Option<Conn>,
    nodes: HashMap<i32, Conn>,
    /// Brokers from the last Metadata response, by node id.
    pub brokers: BTreeMap<i32, BrokerInfo>,
}

impl Client {
    /// A client; connects lazily.
    pub fn new(bootstrap: Vec<String>, client_id: String, timeout: Duration) -> Client {
        Client {
            bootstrap,
            client_id,
            timeout,
            any: None,
            nodes: HashMap::new(),
            brokers: BTreeMap::new(),
        }
    }

    /// The per-request timeout.
    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    async fn conn(&mut self, target: Target) -> Result<&mut Conn, Error> {
        let dirty = match target {
            Target::Any => self.any.as_ref().is_some_and(|c| c.dirty),
            Target::Node(id) => self.nodes.get(&id).is_some_and(|c| c.dirty),
        };
        if dirty {
            self.forget(target);
        }
        match target {
            Target::Any => {
                if self.any.is_none() {
                    let mut last = None;
                    for addr in &self.bootstrap {
                        match Conn::open(addr, &self.client_id, self.timeout).await {
                            Ok(c) => {
                                self.any = Some(c);
                                break;
                            }
                            Err(e) => last = Some(e),
                        }
                    }
                    if self.any.is_none() {
                        return Err(last
                            .unwrap_or_else(|| Error::Usage("no bootstrap brokers given".into())));
                    }
                }
                Ok(self.any.as_mut().expect("connected above"))
            }
            Target::Node(id) => {
                if !self.nodes.contains_key(&id) {
                    if self.brokers.is_empty() {
                        Box::pin(self.metadata(Some(&[]), false)).await?;
                    }
                    let b = self.brokers.get(&id).cloned().ok_or_else(|| {
                        Error::Protocol(format!("broker {id} is not in the cluster metadata"))
                    })?;
                    let addr = format_addr(&b.host, b.port);
                    let c = Conn::open(&addr, &self.client_id, self.timeout).await?;
                    self.nodes.insert(id, c);
                }
                Ok(self.nodes.get_mut(&id).expect("inserted above"))
            }
        }
    }

    /// Drop a connection after an I/O error so that the next call reconnects.
    fn forget(&mut self, target: Target) {
        match target {
            Target::Any => self.any = None,
            Target::Node(id) => {
                self.nodes.remove(&id);
            }
        }
    }

    /// Whether the broker behind `target` advertises `key`.
    pub async fn supports(&mut self, target: Target, key: ApiKey) -> Result<bool, Error> {
        Ok(self.conn(target).await?.supports(key))
    }

    /// Negotiated version of `R` with the broker behind `target`.
    pub async fn version<R: Request>(&mut self, target: Target) -> Result<i16, Error> {
        self.conn(target).await?.version::<R>()
    }

    /// One request/response round trip. `build` gets the negotiated version and returns the
    /// request (fields differ between versions, e.g. topic names vs topic ids).
    pub async fn call<R: Request>(
        &mut self,
        target: Target,
        build: impl FnOnce(i16) -> R,
    ) -> Result<(i16, R::Response), Error> {
        let client_id = self.client_id.clone();
        let timeout = self.timeout;
        let conn = self.conn(target).await?;
        let version = conn.version::<R>()?;
        let api = ApiKey::try_from(R::KEY).map_err(|_| conn.protocol("unknown API key"))?;
        let req = build(version);
        match conn
            .round_trip(api, version, &client_id, &req, timeout)
            .await
        {
            Ok(mut body) => {
                let resp = R::Response::decode(&mut body, version)
                    .map_err(|e| conn.protocol(format!("decoding {api:?} v{version}: {e}")))?;
                Ok((version, resp))
            }
            Err(e) => {
                self.forget(target);
                Err(e)
            }
        }
    }

    /// Send a request that gets no response (Produce with acks=0).
    pub async fn send_only<R: Request>(
        &mut self,
        target: Target,
        build: impl FnOnce(i16) -> R,
    ) -> Result<(), Error> {
        let client_id = self.client_id.clone();
        let timeout = self.timeout;
        let conn = self.conn(target).await?;
        let version = conn.version::<R>()?;
        let api = ApiKey::try_from(R::KEY).map_err(|_| conn.protocol("unknown API key"))?;
        let req = build(version);
        conn.send_only(api, version, &client_id, &req, timeout)
            .await
    }

    /// Metadata for `topics` (`None` = all topics, `Some(&[])` = brokers only). Refreshes the
    /// broker table.
    pub async fn metadata(
        &mut self,
        topics: Option<&[String]>,
        auto_create: bool,
    ) -> Result<MetadataResponse, Error> {
        let (_, resp) = self
            .call(Target::Any, |v| {
                let topics = topics.map(|ts| {
                    ts.iter()
                        .map(|t| {
                            gregor_protocol::messages::metadata_request::MetadataRequestTopic::default()
                                .with_name(Some(topic_name(t)))
                        })
                        .collect()
                });
                // v0 has no "all topics" null: an empty list means all there.
                let topics = if v == 0 { Some(topics.unwrap_or_default()) } else { topics };
                MetadataRequest::default()
                    .with_topics(topics)
                    .with_allow_auto_topic_creation(auto_create && v >= 4)
            })
            .await?;
        self.brokers = resp
            .brokers
            .iter()
            .map(|b| {
                (
                    b.node_id.0,
                    BrokerInfo {
                        host: b.host.to_string(),
                        port: b.port,
                    },
                )
            })
            .collect();
        Ok(resp)
    }

    /// The coordinator of a consumer group (FindCoordinator, key type 0).
    pub async fn coordinator(&mut self, group: &str) -> Result<i32, Error> {
        let mut attempt = 0;
        loop {
            let (v, resp) = self
                .call(Target::Any, |v| {
                    let req = FindCoordinatorRequest::default().with_key_type(0);
                    if v >= 4 {
                        req.with_coordinator_keys(vec![StrBytes::from_string(group.to_string())])
                    } else {
                        req.with_key(StrBytes::from_string(group.to_string()))
                    }
                })
                .await?;
            let (code, msg, node, host, port) = if v >= 4 {
                let c = resp.coordinators.into_iter().next().ok_or_else(|| {
                    Error::Protocol("FindCoordinator returned no coordinator".into())
                })?;
                (c.error_code, c.error_message, c.node_id, c.host, c.port)
            } else {
                (
                    resp.error_code,
                    resp.error_message,
                    resp.node_id,
                    resp.host,
                    resp.port,
                )
            };
            if code == 0 {
                self.brokers.insert(
                    node.0,
                    BrokerInfo {
                        host: host.to_string(),
                        port,
                    },
                );
                return Ok(node.0);
            }
            let retriable = ErrorCode::from_code(code).is_some_and(|c| c.is_retriable());
            if retriable && attempt < 10 {
                attempt += 1;
                tokio::time::sleep(Duration::from_millis(200)).await;
                continue;
            }
            return Err(Error::kafka(
                &format!("finding the coordinator of group {group}"),
                code,
                msg.map(|m| m.to_string()),
            ));
        }
    }
}

/// `host:port`, bracketing IPv6 literals.
pub fn format_addr(host: &str, port: i32) -> String {
    if host.contains(':') && !host.starts_with('[') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

/// A `TopicName` from a `&str`.
pub fn topic_name(s: &str) -> TopicName {
    TopicName(StrBytes::from_string(s.to_string()))
}

/// One partition of a topic, from Metadata.
#[derive(Debug, Clone)]
pub struct PartitionMeta {
    pub partition: i32,
    pub leader: i32,
    pub replicas: Vec<i32>,
    pub isr: Vec<i32>,
    pub error_code: i16,
}

/// A topic from Metadata, partitions sorted by index.
#[derive(Debug, Clone)]
pub struct TopicMeta {
    pub name: String,
    pub id: uuid::Uuid,
    pub internal: bool,
    pub partitions: Vec<PartitionMeta>,
}

impl TopicMeta {
    /// Every topic of a Metadata response (topics with an error are left out).
    pub fn all(resp: &MetadataResponse) -> Vec<TopicMeta> {
        let mut out: Vec<TopicMeta> = resp
            .topics
            .iter()
            .filter(|t| t.error_code == 0)
            .map(TopicMeta::from_response)
            .collect();
        out.sort_by(|a, b| a.name.cmp(&b.name));
        out
    }

    fn from_response(
        t: &gregor_protocol::messages::metadata_response::MetadataResponseTopic,
    ) -> TopicMeta {
        let mut partitions: Vec<PartitionMeta> = t
            .partitions
            .iter()
            .map(|p| PartitionMeta {
                partition: p.partition_index,
                leader: p.leader_id.0,
                replicas: p.replica_nodes.iter().map(|b| b.0).collect(),
                isr: p.isr_nodes.iter().map(|b| b.0).collect(),
                error_code: p.error_code,
            })
            .collect();
        partitions.sort_by_key(|p| p.partition);
        TopicMeta {
            name: t.name.as_ref().map(|n| n.to_string()).unwrap_or_default(),
            id: t.topic_id,
            internal: t.is_internal,
            partitions,
        }
    }

    /// The named topic of a Metadata response, or its error.
    pub fn find(resp: &MetadataResponse, name: &str) -> Result<TopicMeta, Error> {
        let t = resp
            .topics
            .iter()
            .find(|t| t.name.as_ref().is_some_and(|n| n.as_str() == name))
            .ok_or_else(|| Error::kafka(&format!("topic {name}"), 3, None))?;
        Error::check(&format!("topic {name}"), t.error_code, None)?;
        Ok(TopicMeta::from_response(t))
    }

    /// The leader of a partition (`-1` if unknown).
    pub fn leader(&self, partition: i32) -> i32 {
        self.partitions
            .iter()
            .find(|p| p.partition == partition)
            .map_or(-1, |p| p.leader)
    }
}

impl Client {
    /// Metadata of one topic (no auto-creation); UNKNOWN_TOPIC_OR_PARTITION if it does not exist.
    /// Retries briefly while leaders are being elected (a topic that was just created).
    pub async fn topic(&mut self, name: &str) -> Result<TopicMeta, Error> {
        let mut attempt = 0;
        loop {
            let resp = self.metadata(Some(&[name.to_string()]), false).await?;
            let t = TopicMeta::find(&resp, name);
            let retry = match &t {
                Ok(t) => t.partitions.iter().any(|p| p.leader < 0),
                Err(Error::Kafka { code, .. }) => *code == ErrorCode::LeaderNotAvailable.code(),
                Err(_) => false,
            };
            if retry && attempt < 20 {
                attempt += 1;
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
            return t;
        }
    }

    /// ListOffsets for `(topic, partition, leader)` at `timestamp` (-2 earliest, -1 latest),
    /// each partition asked of its leader. Returns `(error code, offset)` per partition.
    pub async fn list_offsets(
        &mut self,
        parts: &[(String, i32, i32)],
        timestamp: i64,
    ) -> Result<HashMap<(String, i32), (i16, i64)>, Error> {
        use gregor_protocol::messages::list_offsets_request::{
            ListOffsetsPartition, ListOffsetsTopic,
        };
        use gregor_protocol::messages::ListOffsetsRequest;
        let mut by_leader: BTreeMap<i32, BTreeMap<String, Vec<i32>>> = BTreeMap::new();
        let mut out = HashMap::new();
        for (t, p, leader) in parts {
            if *leader < 0 {
                out.insert((t.clone(), *p), (ErrorCode::LeaderNotAvailable.code(), -1));
                continue;
            }
            by_leader
                .entry(*leader)
                .or_default()
                .entry(t.clone())
                .or_default()
                .push(*p);
        }
        let timeout_ms = self_timeout_ms(self.timeout);
        for (leader, topics) in by_leader {
            let (_, resp) = self
                .call(Target::Node(leader), |_| {
                    ListOffsetsRequest::default()
                        .with_replica_id(BrokerId(-1))
                        .with_isolation_level(0)
                        .with_timeout_ms(timeout_ms)
                        .with_topics(
                            topics
                                .iter()
                                .map(|(t, ps)| {
                                    ListOffsetsTopic::default()
                                        .with_name(topic_name(t))
                                        .with_partitions(
                                            ps.iter()
                                                .map(|p| {
                                                    ListOffsetsPartition::default()
                                                        .with_partition_index(*p)
                                                        .with_current_leader_epoch(-1)
                                                        .with_timestamp(timestamp)
                                                })
                                                .collect(),
                                        )
                                })
                                .collect(),
                        )
                })
                .await?;
            for t in resp.topics {
                for p in t.partitions {
                    out.insert(
                        (t.name.to_string(), p.partition_index),
                        (p.error_code, p.offset),
                    );
                }
            }
        }
        Ok(out)
    }
}

fn self_timeout_ms(d: Duration) -> i32 {
    d.as_millis().min(i32::MAX as u128) as i32
}
