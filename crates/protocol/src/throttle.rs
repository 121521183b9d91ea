//! `throttle_time_ms` of every response type (generated from the `kafka-protocol` message
//! definitions): the broker raises it when a client-quota throttle applies to a response that is
//! already built (KIP-124 request quotas apply to every API).

use crate::messages::*;

/// A response that may carry `throttle_time_ms`.
pub trait ThrottleTime {
    /// Raises `throttle_time_ms` to at least `ms` when `version` has the field (no-op otherwise).
    fn raise_throttle_time(&mut self, version: i16, ms: i32);
}

macro_rules! with_field {
    ($($t:ty => $min:expr),* $(,)?) => {$(
        impl ThrottleTime for $t {
            fn raise_throttle_time(&mut self, version: i16, ms: i32) {
                if version >= $min {
                    self.throttle_time_ms = self.throttle_time_ms.max(ms);
                }
            }
        }
    )*};
}

macro_rules! without_field {
    ($($t:ty),* $(,)?) => {$(
        impl ThrottleTime for $t {
            fn raise_throttle_time(&mut self, _version: i16, _ms: i32) {}
        }
    )*};
}

with_field! {
    add_offsets_to_txn_response::AddOffsetsToTxnResponse => 0,
    add_partitions_to_txn_response::AddPartitionsToTxnResponse => 0,
    add_raft_voter_response::AddRaftVoterResponse => 0,
    allocate_producer_ids_response::AllocateProducerIdsResponse => 0,
    alter_client_quotas_response::AlterClientQuotasResponse => 0,
    alter_configs_response::AlterConfigsResponse => 0,
    alter_partition_reassignments_response::AlterPartitionReassignmentsResponse => 0,
    alter_partition_response::AlterPartitionResponse => 2,
    alter_replica_log_dirs_response::AlterReplicaLogDirsResponse => 1,
    alter_share_group_offsets_response::AlterShareGroupOffsetsResponse => 0,
    alter_user_scram_credentials_response::AlterUserScramCredentialsResponse => 0,
    api_versions_response::ApiVersionsResponse => 1,
    assign_replicas_to_dirs_response::AssignReplicasToDirsResponse => 0,
    broker_heartbeat_response::BrokerHeartbeatResponse => 0,
    broker_registration_response::BrokerRegistrationResponse => 0,
    consumer_group_describe_response::ConsumerGroupDescribeResponse => 0,
    consumer_group_heartbeat_response::ConsumerGroupHeartbeatResponse => 0,
    controller_registration_response::ControllerRegistrationResponse => 0,
    create_acls_response::CreateAclsResponse => 1,
    create_delegation_token_response::CreateDelegationTokenResponse => 1,
    create_partitions_response::CreatePartitionsResponse => 0,
    create_topics_response::CreateTopicsResponse => 2,
    delete_acls_response::DeleteAclsResponse => 1,
    delete_groups_response::DeleteGroupsResponse => 0,
    delete_records_response::DeleteRecordsResponse => 0,
    delete_share_group_offsets_response::DeleteShareGroupOffsetsResponse => 0,
    delete_topics_response::DeleteTopicsResponse => 1,
    describe_acls_response::DescribeAclsResponse => 1,
    describe_client_quotas_response::DescribeClientQuotasResponse => 0,
    describe_cluster_response::DescribeClusterResponse => 0,
    describe_configs_response::DescribeConfigsResponse => 1,
    describe_delegation_token_response::DescribeDelegationTokenResponse => 1,
    describe_groups_response::DescribeGroupsResponse => 1,
    describe_log_dirs_response::DescribeLogDirsResponse => 1,
    describe_producers_response::DescribeProducersResponse => 0,
    describe_share_group_offsets_response::DescribeShareGroupOffsetsResponse => 0,
    describe_topic_partitions_response::DescribeTopicPartitionsResponse => 0,
    describe_transactions_response::DescribeTransactionsResponse => 0,
    describe_user_scram_credentials_response::DescribeUserScramCredentialsResponse => 0,
    elect_leaders_response::ElectLeadersResponse => 0,
    end_txn_response::EndTxnResponse => 0,
    expire_delegation_token_response::ExpireDelegationTokenResponse => 1,
    fetch_response::FetchResponse => 4,
    fetch_snapshot_response::FetchSnapshotResponse => 0,
    find_coordinator_response::FindCoordinatorResponse => 1,
    get_telemetry_subscriptions_response::GetTelemetrySubscriptionsResponse => 0,
    heartbeat_response::HeartbeatResponse => 1,
    incremental_alter_configs_response::IncrementalAlterConfigsResponse => 0,
    init_producer_id_response::InitProducerIdResponse => 0,
    join_group_response::JoinGroupResponse => 2,
    leave_group_response::LeaveGroupResponse => 1,
    list_config_resources_response::ListConfigResourcesResponse => 0,
    list_groups_response::ListGroupsResponse => 1,
    list_offsets_response::ListOffsetsResponse => 2,
    list_partition_reassignments_response::ListPartitionReassignmentsResponse => 0,
    list_transactions_response::ListTransactionsResponse => 0,
    metadata_response::MetadataResponse => 3,
    offset_commit_response::OffsetCommitResponse => 3,
    offset_delete_response::OffsetDeleteResponse => 0,
    offset_fetch_response::OffsetFetchResponse => 3,
    offset_for_leader_epoch_response::OffsetForLeaderEpochResponse => 2,
    produce_response::ProduceResponse => 3,
    push_telemetry_response::PushTelemetryResponse => 0,
    remove_raft_voter_response::RemoveRaftVoterResponse => 0,
    renew_delegation_token_response::RenewDelegationTokenResponse => 1,
    share_acknowledge_response::ShareAcknowledgeResponse => 1,
    share_fetch_response::ShareFetchResponse => 1,
    share_group_describe_response::ShareGroupDescribeResponse => 1,
    share_group_heartbeat_response::ShareGroupHeartbeatResponse => 1,
    sync_group_response::SyncGroupResponse => 1,
    txn_offset_commit_response::TxnOffsetCommitResponse => 0,
    unregister_broker_response::UnregisterBrokerResponse => 0,
    update_features_response::UpdateFeaturesResponse => 0,
    update_raft_voter_response::UpdateRaftVoterResponse => 0,
}

without_field! {
    begin_quorum_epoch_response::BeginQuorumEpochResponse,
    delete_share_group_state_response::DeleteShareGroupStateResponse,
    describe_quorum_response::DescribeQuorumResponse,
    end_quorum_epoch_response::EndQuorumEpochResponse,
    envelope_response::EnvelopeResponse,
    initialize_share_group_state_response::InitializeShareGroupStateResponse,
    read_share_group_state_response::ReadShareGroupStateResponse,
    read_share_group_state_summary_response::ReadShareGroupStateSummaryResponse,
    sasl_authenticate_response::SaslAuthenticateResponse,
    sasl_handshake_response::SaslHandshakeResponse,
    vote_response::VoteResponse,
    write_share_group_state_response::WriteShareGroupStateResponse,
    write_txn_markers_response::WriteTxnMarkersResponse,
}
