//! One module per Kafka API, each declaring the version range it serves (`VERSIONS`) and an
//! async `handle`. The [`apis!`] table below is the only list of APIs: it builds both
//! [`SUPPORTED`] (what ApiVersions advertises) and the dispatch `match`, so the two cannot
//! drift apart. [`dispatch`] checks the version, then the handler decodes the body.
//!
//! Handlers see the broker only through their [`Ctx`]: the request header and connection
//! facts plus the service handles ([`Services`]: metadata image, controller channel, replica
//! manager, group and transaction coordinators, metrics). None of them assumes this broker
//! leads a partition: they ask the replica manager, which answers NOT_LEADER_OR_FOLLOWER.

use crate::config::{Config, Listener};
use crate::controller::ControllerChannel;
use crate::coordinator_runtime::CoordinatorError;
use crate::errors::HandlerError;
use crate::group_service::{CallError, GroupCoordinatorService};
use crate::metadata_cache::MetadataCache;
use crate::metrics::Metrics;
use crate::replica_manager::ReplicaManager;
use crate::services::Services;
use crate::txn_service::TxnCoordinatorService;
use bytes::{Bytes, BytesMut};
use gregor_protocol::fetch::Chunk;
use gregor_protocol::messages::{ApiKey, RequestHeader};
use gregor_protocol::protocol::{Decodable, Encodable};
use gregor_protocol::request::decode_as;
use gregor_protocol::throttle::ThrottleTime;
use gregor_protocol::ErrorCode;
use gregor_storage::FileRegion;
use tokio::sync::watch;

pub mod acls;
pub mod add_offsets_to_txn;
pub mod add_partitions_to_txn;
pub mod allocate_producer_ids;
pub mod alter_configs;
pub mod alter_partition;
pub mod alter_replica_log_dirs;
pub mod alter_user_scram_credentials;
pub mod api_versions;
pub mod broker_heartbeat;
pub mod broker_registration;
pub mod client_quotas;
pub mod consumer_group_describe;
pub mod consumer_group_heartbeat;
pub mod create_partitions;
pub mod create_topics;
pub mod delete_groups;
pub mod delete_records;
pub mod delete_topics;
pub mod describe_cluster;
pub mod describe_configs;
pub mod describe_groups;
pub mod describe_log_dirs;
pub mod describe_producers;
pub mod describe_quorum;
pub mod describe_topic_partitions;
pub mod describe_transactions;
pub mod describe_user_scram_credentials;
pub mod elect_leaders;
pub mod end_txn;
pub mod fetch;
pub mod find_coordinator;
pub mod heartbeat;
pub mod init_producer_id;
pub mod internal;
pub mod join_group;
pub mod leave_group;
pub mod list_config_resources;
pub mod list_groups;
pub mod list_offsets;
pub mod list_transactions;
pub mod metadata;
pub mod offset_commit;
pub mod offset_delete;
pub mod offset_fetch;
pub mod offset_for_leader_epoch;
pub mod partition_reassignments;
pub mod produce;
pub mod sasl;
pub mod sync_group;
pub mod txn_offset_commit;
pub mod write_txn_markers;

/// An API and the version range Gregor serves (and advertises in ApiVersions).
#[derive(Debug, Clone, Copy)]
pub struct ApiSupport {
    /// API.
    pub key: ApiKey,
    /// Lowest version advertised.
    pub min: i16,
    /// Highest version.
    pub max: i16,
}

const fn api(key: ApiKey, v: (i16, i16)) -> ApiSupport {
    ApiSupport {
        key,
        min: v.0,
        max: v.1,
    }
}

/// An API table: `Key: versions => handler;` builds the advertised list (what ApiVersions
/// answers on that listener) and the dispatch `match`. Every handler is
/// `async fn(&Ctx<'_>, &mut Bytes) -> Result<Response, HandlerError>`.
macro_rules! apis {
    ($(#[$doc:meta])* $table:ident, $route:ident; $($key:ident: $versions:expr => $handler:path;)*) => {
        $(#[$doc])*
        pub const $table: &[ApiSupport] = &[$(api(ApiKey::$key, $versions)),*];

        async fn $route(ctx: &Ctx<'_>, body: &mut Bytes) -> Result<Response, HandlerError> {
            match ctx.api {
                $(ApiKey::$key => $handler(ctx, body).await,)*
                other => Err(HandlerError::Unsupported(format!("{other:?} is not implemented"))),
            }
        }
    };
}

apis! {
    /// The APIs of client listeners, with their advertised versions.
    SUPPORTED, route_client;
    Produce: produce::VERSIONS => produce::handle;
    Fetch: fetch::VERSIONS => fetch::handle;
    ListOffsets: list_offsets::VERSIONS => list_offsets::handle;
    Metadata: metadata::VERSIONS => metadata::handle;
    ApiVersions: api_versions::VERSIONS => api_versions::handle;
    SaslHandshake: sasl::HANDSHAKE_VERSIONS => sasl::handshake_illegal;
    SaslAuthenticate: sasl::AUTHENTICATE_VERSIONS => sasl::authenticate_illegal;
    CreateTopics: create_topics::VERSIONS => create_topics::handle;
    DeleteTopics: delete_topics::VERSIONS => delete_topics::handle;
    InitProducerId: init_producer_id::VERSIONS => init_producer_id::handle;
    AddPartitionsToTxn: add_partitions_to_txn::VERSIONS => add_partitions_to_txn::handle;
    AddOffsetsToTxn: add_offsets_to_txn::VERSIONS => add_offsets_to_txn::handle;
    EndTxn: end_txn::VERSIONS => end_txn::handle;
    WriteTxnMarkers: write_txn_markers::VERSIONS => write_txn_markers::handle;
    DescribeTransactions: describe_transactions::VERSIONS => describe_transactions::handle;
    ListTransactions: list_transactions::VERSIONS => list_transactions::handle;
    DescribeProducers: describe_producers::VERSIONS => describe_producers::handle;
    TxnOffsetCommit: txn_offset_commit::VERSIONS => txn_offset_commit::handle;
    OffsetForLeaderEpoch: offset_for_leader_epoch::VERSIONS => offset_for_leader_epoch::handle;
    CreatePartitions: create_partitions::VERSIONS => create_partitions::handle;
    DescribeConfigs: describe_configs::VERSIONS => describe_configs::handle;
    DescribeCluster: describe_cluster::VERSIONS => describe_cluster::handle;
    FindCoordinator: find_coordinator::VERSIONS => find_coordinator::handle;
    JoinGroup: join_group::VERSIONS => join_group::handle;
    SyncGroup: sync_group::VERSIONS => sync_group::handle;
    Heartbeat: heartbeat::VERSIONS => heartbeat::handle;
    LeaveGroup: leave_group::VERSIONS => leave_group::handle;
    OffsetCommit: offset_commit::VERSIONS => offset_commit::handle;
    OffsetFetch: offset_fetch::VERSIONS => offset_fetch::handle;
    DescribeGroups: describe_groups::VERSIONS => describe_groups::handle;
    ListGroups: list_groups::VERSIONS => list_groups::handle;
    DeleteGroups: delete_groups::VERSIONS => delete_groups::handle;
    OffsetDelete: offset_delete::VERSIONS => offset_delete::handle;
    ConsumerGroupHeartbeat: consumer_group_heartbeat::VERSIONS => consumer_group_heartbeat::handle;
    ConsumerGroupDescribe: consumer_group_describe::VERSIONS => consumer_group_describe::handle;
    DescribeAcls: acls::VERSIONS => acls::describe;
    CreateAcls: acls::VERSIONS => acls::create;
    DeleteAcls: acls::VERSIONS => acls::delete;
    AlterPartitionReassignments: partition_reassignments::ALTER_VERSIONS => partition_reassignments::alter;
    ListPartitionReassignments: partition_reassignments::LIST_VERSIONS => partition_reassignments::list;
    DescribeQuorum: describe_quorum::VERSIONS => describe_quorum::handle;
    ListConfigResources: list_config_resources::VERSIONS => list_config_resources::handle;
    AlterConfigs: alter_configs::VERSIONS => alter_configs::handle;
    IncrementalAlterConfigs: alter_configs::INCREMENTAL_VERSIONS => alter_configs::handle_incremental;
    DeleteRecords: delete_records::VERSIONS => delete_records::handle;
    DescribeLogDirs: describe_log_dirs::VERSIONS => describe_log_dirs::handle;
    AlterReplicaLogDirs: alter_replica_log_dirs::VERSIONS => alter_replica_log_dirs::handle;
    DescribeTopicPartitions: describe_topic_partitions::VERSIONS => describe_topic_partitions::handle;
    ElectLeaders: elect_leaders::VERSIONS => elect_leaders::handle;
    DescribeClientQuotas: client_quotas::VERSIONS => client_quotas::describe;
    AlterClientQuotas: client_quotas::VERSIONS => client_quotas::alter;
    DescribeUserScramCredentials: describe_user_scram_credentials::VERSIONS => describe_user_scram_credentials::handle;
    AlterUserScramCredentials: alter_user_scram_credentials::VERSIONS => alter_user_scram_credentials::handle;
}

apis! {
    /// The APIs of the controller listener (Kafka's `ListenerType.CONTROLLER`), with their
    /// versions; Gregor's private inter-node APIs are served there too ([`internal`]).
    CONTROLLER_SUPPORTED, route_controller;
    ApiVersions: api_versions::VERSIONS => api_versions::handle;
    BrokerRegistration: broker_registration::VERSIONS => broker_registration::handle;
    BrokerHeartbeat: broker_heartbeat::VERSIONS => broker_heartbeat::handle;
    AlterPartition: alter_partition::VERSIONS => alter_partition::handle;
    AllocateProducerIds: allocate_producer_ids::VERSIONS => allocate_producer_ids::handle;
    DescribeQuorum: describe_quorum::VERSIONS => describe_quorum::handle;
    DescribeCluster: describe_cluster::VERSIONS => describe_cluster::handle;
}

/// Which kind of listener a connection arrived on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Plane {
    /// A client listener (`listeners` minus the controller listeners).
    Client,
    /// The controller listener (`controller.listener.names`).
    Controller,
}

impl Plane {
    /// The APIs served on this plane.
    pub fn apis(self) -> &'static [ApiSupport] {
        match self {
            Plane::Client => SUPPORTED,
            Plane::Controller => CONTROLLER_SUPPORTED,
        }
    }
}

/// Looks up the supported range of an API on a plane.
pub fn supported(plane: Plane, key: ApiKey) -> Option<ApiSupport> {
    plane.apis().iter().copied().find(|a| a.key == key)
}

/// What the connection sends back.
#[derive(Debug)]
pub enum Response {
    /// A complete encoded frame.
    Frame(BytesMut),
    /// A Fetch response: protocol bytes and file regions to `sendfile`, with the total length.
    Chunks(Vec<Chunk<FileRegion>>, u64),
    /// No response (Produce with acks=0).
    None,
    /// Close the connection without answering (Produce acks=0 that failed, as Kafka does).
    Close(String),
}

/// A response body: encodable, and its `throttle_time_ms` raised when a quota throttles.
pub trait Body: Encodable + ThrottleTime + Clone {}
impl<T: Encodable + ThrottleTime + Clone> Body for T {}

/// Everything a handler needs to know about the request it serves, and the services it may use.
#[derive(Debug)]
pub struct Ctx<'a> {
    /// The broker's services.
    pub services: &'a Services,
    /// The listener the connection arrived on.
    pub listener: &'a Listener,
    /// The kind of listener.
    pub plane: Plane,
    /// The client's address.
    pub peer: std::net::SocketAddr,
    /// Request header.
    pub header: &'a RequestHeader,
    /// API.
    pub api: ApiKey,
    /// Request version.
    pub version: i16,
    /// Flips to true when the broker shuts down (long polls return early).
    pub shutdown: watch::Receiver<bool>,
    /// The authenticated principal (`User:ANONYMOUS` on a PLAINTEXT listener).
    pub principal: &'a str,
    /// Client-quota throttle of this request in ms (set by Produce/Fetch): the connection
    /// reads nothing more from the client for that long after answering.
    pub throttle_ms: &'a std::sync::atomic::AtomicU64,
    /// When the request was taken up (its handling time counts against `request_percentage`).
    pub started: std::time::Instant,
    /// Whether the handling time was already recorded against the request quota.
    pub request_time_recorded: std::sync::atomic::AtomicBool,
}

impl Ctx<'_> {
    /// Encodes a response body for this request, after recording the time spent on it against
    /// the client's request quota (whose throttle raises the response's `throttle_time_ms`).
    pub fn respond<R: Body>(&self, body: &R) -> Result<Response, HandlerError> {
        let throttle = self.record_request_time();
        let encode = |body: &R| {
            gregor_protocol::response::encode_response(
                self.api,
                self.version,
                self.header.correlation_id,
                body,
            )
        };
        let frame = if throttle > 0 {
            let mut throttled = body.clone();
            throttled.raise_throttle_time(self.version, throttle);
            encode(&throttled)?
        } else {
            encode(body)?
        };
        Ok(Response::Frame(frame))
    }

    /// Records the time this request has been handled so far (not counting waits: long
    /// polls, replication) against the client's `request_percentage` quota (KIP-124), once per
    /// request; returns the throttle time in ms, also kept for the connection to mute itself.
    /// Inter-broker traffic (the controller plane, WriteTxnMarkers) is exempt, as in Kafka.
    pub fn record_request_time(&self) -> i32 {
        use std::sync::atomic::Ordering;
        if self.plane != Plane::Client
            || self.api == ApiKey::WriteTxnMarkers
            || self.request_time_recorded.swap(true, Ordering::Relaxed)
        {
            return 0;
        }
        let worked = self
            .started
            .elapsed()
            .saturating_sub(crate::metrics::waited_so_far());
        // Kafka's unit: percent of one thread over a second (nanos * 100 / 1e9).
        let percent_seconds = worked.as_nanos() as f64 * 100.0 / 1e9;
        self.record_quota_amount(crate::quotas::QuotaKind::Request, percent_seconds)
    }

    /// Whether this request's principal may perform `operation` on a resource (always true
    /// without an authorizer).
    pub fn allowed(&self, operation: i8, resource_type: i8, name: &str) -> bool {
        let a = &self.services.config.authorizer;
        !a.enabled()
            || a.authorize(
                &self.metadata().image(),
                self.principal,
                &self.peer.ip().to_string(),
                operation,
                resource_type,
                name,
            )
    }

    /// Records client traffic against its quota; returns the throttle time (ms) to put in the
    /// response, also kept for the connection to mute itself.
    pub fn record_quota(&self, kind: crate::quotas::QuotaKind, bytes: u64) -> i32 {
        self.record_quota_amount(kind, bytes as f64)
    }

    fn record_quota_amount(&self, kind: crate::quotas::QuotaKind, amount: f64) -> i32 {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as i64);
        let t = self.services.quotas.record(
            &self.metadata().image(),
            kind,
            self.principal,
            self.client_id(),
            amount,
            now,
        );
        if t > 0 {
            self.throttle_ms
                .fetch_max(t, std::sync::atomic::Ordering::Relaxed);
        }
        t.min(i32::MAX as u64) as i32
    }

    /// Whether this request's principal may perform `operation` on the cluster.
    pub fn cluster_allowed(&self, operation: i8) -> bool {
        self.allowed(
            operation,
            crate::authorizer::resource::CLUSTER,
            crate::authorizer::CLUSTER_NAME,
        )
    }

    /// Decodes the body as `T`.
    pub fn decode<T: Decodable>(&self, body: &mut Bytes) -> Result<T, HandlerError> {
        Ok(decode_as::<T>(self.api, self.version, body)?)
    }

    /// Static configuration.
    pub fn config(&self) -> &Config {
        &self.services.config
    }

    /// This broker's `node.id`.
    pub fn node_id(&self) -> i32 {
        self.services.config.node_id
    }

    /// The metadata image.
    pub fn metadata(&self) -> &MetadataCache {
        &self.services.metadata
    }

    /// The controller channel (metadata changes).
    pub fn controller(&self) -> &std::sync::Arc<ControllerChannel> {
        &self.services.controller
    }

    /// The partitions this broker hosts.
    pub fn replicas(&self) -> &std::sync::Arc<ReplicaManager> {
        &self.services.replicas
    }

    /// The group coordinator.
    pub fn groups(&self) -> &GroupCoordinatorService {
        &self.services.groups
    }

    /// The transaction coordinator.
    pub fn txns(&self) -> &TxnCoordinatorService {
        &self.services.txns
    }

    /// Metrics.
    pub fn metrics(&self) -> &Metrics {
        &self.services.metrics
    }

    /// The `client.id` of the request header ("" if none).
    pub fn client_id(&self) -> &str {
        self.header
            .client_id
            .as_ref()
            .map(|c| c.as_str())
            .unwrap_or("")
    }
}

/// Encodes a coordinator's answer, or — when the coordinator could not serve the request —
/// the answer `error` builds for the coordinator error's Kafka code.
pub(crate) fn coordinator_answer<R: Body>(
    ctx: &Ctx<'_>,
    result: Result<R, CoordinatorError>,
    error: impl FnOnce(ErrorCode) -> R,
) -> Result<Response, HandlerError> {
    match result {
        Ok(r) => ctx.respond(&r),
        Err(e) => {
            tracing::debug!(api = ?ctx.api, error = %e, "coordinator could not serve the request");
            ctx.respond(&error(e.code()))
        }
    }
}

/// Runs a group request whose answer may be deferred (JoinGroup, SyncGroup, Heartbeat,
/// LeaveGroup) on the shard of `group_id`, waits for the answer and encodes it. `error` builds
/// the answer for a coordinator error; `pick` extracts this API's response.
pub(crate) async fn deferred_group_call<R: Body>(
    ctx: &Ctx<'_>,
    group_id: &str,
    error: impl Fn(ErrorCode) -> R,
    pick: impl FnOnce(gregor_group_coordinator::Response) -> Option<R>,
    call: impl FnOnce(
        &mut gregor_group_coordinator::GroupCoordinator,
        gregor_group_coordinator::RequestId,
        i64,
    ) -> gregor_group_coordinator::Output,
) -> Result<Response, HandlerError> {
    // Join/Sync/Heartbeat/LeaveGroup need READ on the group (with an authorizer).
    if !ctx.allowed(
        crate::authorizer::op::READ,
        crate::authorizer::resource::GROUP,
        group_id,
    ) {
        return ctx.respond(&error(ErrorCode::GroupAuthorizationFailed));
    }
    let groups: &GroupCoordinatorService = ctx.groups();
    match groups.call(group_id, ctx.shutdown.clone(), call).await {
        Ok(r) => match pick(r) {
            Some(r) => ctx.respond(&r),
            None => Err(HandlerError::Internal(format!(
                "{:?} answered with another API's response",
                ctx.api
            ))),
        },
        Err(CallError::ShuttingDown) => Err(HandlerError::ShuttingDown),
        Err(CallError::Coordinator(e)) => ctx.respond(&error(e.code())),
    }
}

/// Collects the answers of a request naming several groups, fanned out over the group
/// shards ([`GroupCoordinatorService::by_shard`]): `answers` has one slot per group of the
/// request; `result` is one shard's answer for the groups at `indexes` (one item per index, in
/// order); groups whose shard could not answer get `error(index, code)`.
pub(crate) fn fill_shard_answers<Item>(
    answers: &mut [Option<Item>],
    indexes: &[usize],
    result: Result<Vec<Item>, CoordinatorError>,
    error: impl Fn(usize, ErrorCode) -> Item,
) {
    match result {
        Ok(items) if items.len() == indexes.len() => {
            for (i, item) in indexes.iter().zip(items) {
                answers[*i] = Some(item);
            }
        }
        Ok(items) => {
            tracing::error!(
                expected = indexes.len(),
                got = items.len(),
                "group shard answered a different number of groups"
            );
            for i in indexes {
                answers[*i] = Some(error(*i, ErrorCode::UnknownServerError));
            }
        }
        Err(e) => {
            for i in indexes {
                answers[*i] = Some(error(*i, e.code()));
            }
        }
    }
}

/// Names that occur more than once (CreateTopics/CreatePartitions reject those entries).
pub(crate) fn duplicate_names<'a>(
    names: impl Iterator<Item = &'a str>,
) -> std::collections::HashSet<String> {
    let mut seen = std::collections::HashSet::new();
    names
        .filter(|n| !seen.insert(*n))
        .map(str::to_string)
        .collect()
}

/// Checks the version and handles one request. ApiVersions answers any version (KIP-511).
pub async fn dispatch(ctx: Ctx<'_>, mut body: Bytes) -> Result<Response, HandlerError> {
    if ctx.api != ApiKey::ApiVersions {
        let Some(support) = supported(ctx.plane, ctx.api) else {
            return Err(HandlerError::Unsupported(format!(
                "{:?} is not implemented",
                ctx.api
            )));
        };
        if ctx.version < support.min || ctx.version > support.max {
            return Err(HandlerError::Unsupported(format!(
                "{:?} v{} is outside the supported range v{}-v{}",
                ctx.api, ctx.version, support.min, support.max
            )));
        }
    }
    match ctx.plane {
        Plane::Client => route_client(&ctx, &mut body).await,
        Plane::Controller => route_controller(&ctx, &mut body).await,
    }
}

#[cfg(test)]
mod tests {
    use super::{ApiSupport, CONTROLLER_SUPPORTED, SUPPORTED};

    /// docs/compatibility.md must list exactly the advertised APIs and versions.
    #[test]
    fn docs_table_matches_supported_apis() {
        let doc = include_str!("../../../../docs/compatibility.md");
        // The client listener's table, then the controller listener's (after its heading).
        let (client, controller) = doc
            .split_once("## Controller listener APIs")
            .expect("docs/compatibility.md has a controller listener section");
        let table = |text: &str| {
            let mut documented = Vec::new();
            for line in text.lines() {
                let cells: Vec<&str> = line.split('|').map(str::trim).collect();
                if cells.len() < 5 {
                    continue;
                }
                let (Ok(key), Some((min, max))) =
                    (cells[1].parse::<i16>(), cells[3].split_once('–'))
                else {
                    continue;
                };
                documented.push((
                    key,
                    min.parse::<i16>().unwrap(),
                    max.parse::<i16>().unwrap(),
                ));
            }
            documented.sort();
            documented
        };
        let advertised = |apis: &[ApiSupport]| {
            let mut v: Vec<(i16, i16, i16)> =
                apis.iter().map(|a| (a.key as i16, a.min, a.max)).collect();
            v.sort();
            v
        };
        assert_eq!(
            table(client),
            advertised(SUPPORTED),
            "docs/compatibility.md is out of date"
        );
        assert_eq!(
            table(controller),
            advertised(CONTROLLER_SUPPORTED),
            "docs/compatibility.md (controller listener) is out of date"
        );
    }
}
