//! One module per Kafka API, each declaring the version range it serves (`VERSIONS`) and an
//! async `handle`. [`dispatch`] checks the version against [`SUPPORTED`] (the table ApiVersions
//! advertises), decodes the body and calls the handler.

use crate::broker::Broker;
use crate::config::Listener;
use crate::errors::HandlerError;
use bytes::{Bytes, BytesMut};
use gregor_protocol::fetch::Chunk;
use gregor_protocol::messages::{ApiKey, RequestHeader};
use gregor_protocol::protocol::{Decodable, Encodable};
use gregor_protocol::request::decode_as;
use gregor_storage::FileRegion;
use std::sync::Arc;
use tokio::sync::watch;

pub mod acls;
pub mod add_offsets_to_txn;
pub mod add_partitions_to_txn;
pub mod alter_configs;
pub mod alter_replica_log_dirs;
pub mod api_versions;
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
pub mod sync_group;
pub mod txn_offset_commit;

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

/// Every API Gregor implements, with its advertised versions.
pub const SUPPORTED: &[ApiSupport] = &[
    api(ApiKey::Produce, produce::VERSIONS),
    api(ApiKey::Fetch, fetch::VERSIONS),
    api(ApiKey::ListOffsets, list_offsets::VERSIONS),
    api(ApiKey::Metadata, metadata::VERSIONS),
    api(ApiKey::ApiVersions, api_versions::VERSIONS),
    api(ApiKey::CreateTopics, create_topics::VERSIONS),
    api(ApiKey::DeleteTopics, delete_topics::VERSIONS),
    api(ApiKey::InitProducerId, init_producer_id::VERSIONS),
    api(ApiKey::AddPartitionsToTxn, add_partitions_to_txn::VERSIONS),
    api(ApiKey::AddOffsetsToTxn, add_offsets_to_txn::VERSIONS),
    api(ApiKey::EndTxn, end_txn::VERSIONS),
    api(
        ApiKey::DescribeTransactions,
        describe_transactions::VERSIONS,
    ),
    api(ApiKey::ListTransactions, list_transactions::VERSIONS),
    api(ApiKey::DescribeProducers, describe_producers::VERSIONS),
    api(ApiKey::TxnOffsetCommit, txn_offset_commit::VERSIONS),
    api(
        ApiKey::OffsetForLeaderEpoch,
        offset_for_leader_epoch::VERSIONS,
    ),
    api(ApiKey::CreatePartitions, create_partitions::VERSIONS),
    api(ApiKey::DescribeConfigs, describe_configs::VERSIONS),
    api(ApiKey::DescribeCluster, describe_cluster::VERSIONS),
    api(ApiKey::FindCoordinator, find_coordinator::VERSIONS),
    api(ApiKey::JoinGroup, join_group::VERSIONS),
    api(ApiKey::SyncGroup, sync_group::VERSIONS),
    api(ApiKey::Heartbeat, heartbeat::VERSIONS),
    api(ApiKey::LeaveGroup, leave_group::VERSIONS),
    api(ApiKey::OffsetCommit, offset_commit::VERSIONS),
    api(ApiKey::OffsetFetch, offset_fetch::VERSIONS),
    api(ApiKey::DescribeGroups, describe_groups::VERSIONS),
    api(ApiKey::ListGroups, list_groups::VERSIONS),
    api(ApiKey::DeleteGroups, delete_groups::VERSIONS),
    api(ApiKey::OffsetDelete, offset_delete::VERSIONS),
    api(
        ApiKey::ConsumerGroupHeartbeat,
        consumer_group_heartbeat::VERSIONS,
    ),
    api(
        ApiKey::ConsumerGroupDescribe,
        consumer_group_describe::VERSIONS,
    ),
    api(ApiKey::DescribeAcls, acls::VERSIONS),
    api(ApiKey::CreateAcls, acls::VERSIONS),
    api(ApiKey::DeleteAcls, acls::VERSIONS),
    api(
        ApiKey::AlterPartitionReassignments,
        partition_reassignments::ALTER_VERSIONS,
    ),
    api(
        ApiKey::ListPartitionReassignments,
        partition_reassignments::LIST_VERSIONS,
    ),
    api(ApiKey::DescribeQuorum, describe_quorum::VERSIONS),
    api(ApiKey::ListConfigResources, list_config_resources::VERSIONS),
    api(ApiKey::AlterConfigs, alter_configs::VERSIONS),
    api(
        ApiKey::IncrementalAlterConfigs,
        alter_configs::INCREMENTAL_VERSIONS,
    ),
    api(ApiKey::DeleteRecords, delete_records::VERSIONS),
    api(ApiKey::DescribeLogDirs, describe_log_dirs::VERSIONS),
    api(
        ApiKey::AlterReplicaLogDirs,
        alter_replica_log_dirs::VERSIONS,
    ),
    api(
        ApiKey::DescribeTopicPartitions,
        describe_topic_partitions::VERSIONS,
    ),
    api(ApiKey::ElectLeaders, elect_leaders::VERSIONS),
    api(ApiKey::DescribeClientQuotas, client_quotas::VERSIONS),
    api(ApiKey::AlterClientQuotas, client_quotas::VERSIONS),
    api(
        ApiKey::DescribeUserScramCredentials,
        describe_user_scram_credentials::VERSIONS,
    ),
];

/// Looks up the supported range of an API.
pub fn supported(key: ApiKey) -> Option<ApiSupport> {
    SUPPORTED.iter().copied().find(|a| a.key == key)
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

/// Everything a handler needs to know about the request it serves.
#[derive(Debug)]
pub struct Ctx<'a> {
    /// Broker state.
    pub broker: &'a Arc<Broker>,
    /// The listener the connection arrived on.
    pub listener: &'a Listener,
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
}

impl Ctx<'_> {
    /// Encodes a response body for this request.
    pub fn respond<R: Encodable>(&self, body: &R) -> Result<Response, HandlerError> {
        let frame = gregor_protocol::response::encode_response(
            self.api,
            self.version,
            self.header.correlation_id,
            body,
        )?;
        Ok(Response::Frame(frame))
    }

    /// Decodes the body as `T`.
    pub fn decode<T: Decodable>(&self, body: &mut Bytes) -> Result<T, HandlerError> {
        Ok(decode_as::<T>(self.api, self.version, body)?)
    }
}

/// Runs a group request whose answer may be deferred (JoinGroup, SyncGroup, Heartbeat,
/// LeaveGroup): loads the coordinator if needed, waits for the answer and encodes it.
/// `unavailable` builds the COORDINATOR_NOT_AVAILABLE answer; `pick` extracts this API's
/// response from the coordinator's.
pub(crate) async fn deferred_group_call<R: Encodable>(
    ctx: &Ctx<'_>,
    unavailable: impl Fn() -> R,
    pick: impl FnOnce(gregor_group_coordinator::Response) -> Option<R>,
    call: impl FnOnce(
        &mut gregor_group_coordinator::GroupCoordinator,
        gregor_group_coordinator::RequestId,
        i64,
    ) -> gregor_group_coordinator::Output,
) -> Result<Response, HandlerError> {
    use crate::groups::{now_ms, GroupsError};
    let groups = &ctx.broker.groups;
    if groups.ensure_loaded(ctx.broker).await.is_err() {
        return ctx.respond(&unavailable());
    }
    let now = now_ms();
    let answer = groups
        .call(ctx.broker, ctx.shutdown.clone(), |c, id, _| {
            call(c, id, now)
        })
        .await;
    match answer {
        Ok(r) => match pick(r) {
            Some(r) => ctx.respond(&r),
            None => Err(HandlerError::Internal(format!(
                "{:?} answered with another API's response",
                ctx.api
            ))),
        },
        Err(GroupsError::ShuttingDown) => Err(HandlerError::ShuttingDown),
        Err(GroupsError::NotAvailable(_)) => ctx.respond(&unavailable()),
    }
}

/// Runs a group request answered at once (commits, fetches, admin): loads the coordinator if
/// needed, runs `call`, and encodes its answer; `unavailable` builds COORDINATOR_NOT_AVAILABLE.
pub(crate) async fn group_call<R: Encodable>(
    ctx: &Ctx<'_>,
    unavailable: impl Fn() -> R,
    call: impl FnOnce(&crate::groups::Groups) -> Result<R, crate::groups::GroupsError>,
) -> Result<Response, HandlerError> {
    let groups = &ctx.broker.groups;
    if groups.ensure_loaded(ctx.broker).await.is_err() {
        return ctx.respond(&unavailable());
    }
    match call(groups) {
        Ok(resp) => ctx.respond(&resp),
        Err(_) => ctx.respond(&unavailable()),
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

/// Checks the version, decodes and handles one request.
pub async fn dispatch(ctx: Ctx<'_>, mut body: Bytes) -> Result<Response, HandlerError> {
    if ctx.api == ApiKey::ApiVersions {
        return api_versions::handle(&ctx, body);
    }
    let Some(support) = supported(ctx.api) else {
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
    match ctx.api {
        ApiKey::Produce => produce::handle(&ctx, &mut body).await,
        ApiKey::Fetch => fetch::handle(&ctx, &mut body).await,
        ApiKey::ListOffsets => list_offsets::handle(&ctx, &mut body),
        ApiKey::Metadata => metadata::handle(&ctx, &mut body),
        ApiKey::CreateTopics => create_topics::handle(&ctx, &mut body),
        ApiKey::DeleteTopics => delete_topics::handle(&ctx, &mut body),
        ApiKey::InitProducerId => init_producer_id::handle(&ctx, &mut body).await,
        ApiKey::AddPartitionsToTxn => add_partitions_to_txn::handle(&ctx, &mut body).await,
        ApiKey::AddOffsetsToTxn => add_offsets_to_txn::handle(&ctx, &mut body).await,
        ApiKey::EndTxn => end_txn::handle(&ctx, &mut body).await,
        ApiKey::DescribeTransactions => describe_transactions::handle(&ctx, &mut body).await,
        ApiKey::ListTransactions => list_transactions::handle(&ctx, &mut body).await,
        ApiKey::DescribeProducers => describe_producers::handle(&ctx, &mut body),
        ApiKey::TxnOffsetCommit => txn_offset_commit::handle(&ctx, &mut body).await,
        ApiKey::OffsetForLeaderEpoch => offset_for_leader_epoch::handle(&ctx, &mut body),
        ApiKey::CreatePartitions => create_partitions::handle(&ctx, &mut body),
        ApiKey::DescribeConfigs => describe_configs::handle(&ctx, &mut body),
        ApiKey::DescribeCluster => describe_cluster::handle(&ctx, &mut body),
        ApiKey::FindCoordinator => find_coordinator::handle(&ctx, &mut body).await,
        ApiKey::DescribeAcls => acls::describe(&ctx, &mut body),
        ApiKey::DescribeQuorum => describe_quorum::handle(&ctx, &mut body),
        ApiKey::ListConfigResources => list_config_resources::handle(&ctx, &mut body),
        ApiKey::CreateAcls => acls::create(&ctx, &mut body),
        ApiKey::AlterConfigs => alter_configs::handle(&ctx, &mut body),
        ApiKey::IncrementalAlterConfigs => alter_configs::handle_incremental(&ctx, &mut body),
        ApiKey::DeleteRecords => delete_records::handle(&ctx, &mut body),
        ApiKey::DescribeLogDirs => describe_log_dirs::handle(&ctx, &mut body),
        ApiKey::AlterReplicaLogDirs => alter_replica_log_dirs::handle(&ctx, &mut body),
        ApiKey::DescribeTopicPartitions => describe_topic_partitions::handle(&ctx, &mut body),
        ApiKey::ElectLeaders => elect_leaders::handle(&ctx, &mut body),
        ApiKey::DescribeClientQuotas => client_quotas::describe(&ctx, &mut body),
        ApiKey::AlterClientQuotas => client_quotas::alter(&ctx, &mut body),
        ApiKey::DescribeUserScramCredentials => {
            describe_user_scram_credentials::handle(&ctx, &mut body)
        }
        ApiKey::DeleteAcls => acls::delete(&ctx, &mut body),
        ApiKey::AlterPartitionReassignments => partition_reassignments::alter(&ctx, &mut body),
        ApiKey::ListPartitionReassignments => partition_reassignments::list(&ctx, &mut body),
        ApiKey::JoinGroup => join_group::handle(&ctx, &mut body).await,
        ApiKey::SyncGroup => sync_group::handle(&ctx, &mut body).await,
        ApiKey::Heartbeat => heartbeat::handle(&ctx, &mut body).await,
        ApiKey::LeaveGroup => leave_group::handle(&ctx, &mut body).await,
        ApiKey::OffsetCommit => offset_commit::handle(&ctx, &mut body).await,
        ApiKey::OffsetFetch => offset_fetch::handle(&ctx, &mut body).await,
        ApiKey::DescribeGroups => describe_groups::handle(&ctx, &mut body).await,
        ApiKey::ListGroups => list_groups::handle(&ctx, &mut body).await,
        ApiKey::DeleteGroups => delete_groups::handle(&ctx, &mut body).await,
        ApiKey::OffsetDelete => offset_delete::handle(&ctx, &mut body).await,
        ApiKey::ConsumerGroupHeartbeat => consumer_group_heartbeat::handle(&ctx, &mut body).await,
        ApiKey::ConsumerGroupDescribe => consumer_group_describe::handle(&ctx, &mut body).await,
        other => Err(HandlerError::Unsupported(format!(
            "{other:?} is not implemented"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::SUPPORTED;

    /// docs/compatibility.md must list exactly the advertised APIs and versions.
    #[test]
    fn docs_table_matches_supported_apis() {
        let doc = include_str!("../../../../docs/compatibility.md");
        let mut documented = Vec::new();
        for line in doc.lines() {
            let cells: Vec<&str> = line.split('|').map(str::trim).collect();
            if cells.len() < 5 {
                continue;
            }
            let (Ok(key), Some((min, max))) = (cells[1].parse::<i16>(), cells[3].split_once('–'))
            else {
                continue;
            };
            documented.push((
                key,
                min.parse::<i16>().unwrap(),
                max.parse::<i16>().unwrap(),
            ));
        }
        let mut advertised: Vec<(i16, i16, i16)> = SUPPORTED
            .iter()
            .map(|a| (a.key as i16, a.min, a.max))
            .collect();
        advertised.sort();
        documented.sort();
        assert_eq!(
            documented, advertised,
            "docs/compatibility.md is out of date"
        );
    }
}
