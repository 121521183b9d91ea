//! Kafka protocol error codes (Apache Kafka 4.1, `org.apache.kafka.common.protocol.Errors`).

use std::fmt;

macro_rules! define_error_codes {
    ( $( $(#[doc = $doc:literal])* ($variant:ident, $code:literal, $name:literal, $retriable:literal), )* ) => {
        /// A Kafka protocol error code, named as in Kafka's `Errors` enum (CamelCase).
        #[repr(i16)]
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum ErrorCode {
            $( $(#[doc = $doc])* $variant = $code, )*
        }

        impl ErrorCode {
            /// Every known error code, in ascending code order.
            pub const ALL: &'static [ErrorCode] = &[ $( ErrorCode::$variant, )* ];

            /// The numeric wire value.
            #[inline]
            pub const fn code(self) -> i16 {
                self as i16
            }

            /// Look up an error code by its wire value; `None` for codes this build does not know.
            pub const fn from_code(code: i16) -> Option<ErrorCode> {
                match code {
                    $( $code => Some(ErrorCode::$variant), )*
                    _ => None,
                }
            }

            /// Kafka's SCREAMING_CASE name, e.g. `"UNKNOWN_TOPIC_OR_PARTITION"`.
            pub const fn name(self) -> &'static str {
                match self {
                    $( ErrorCode::$variant => $name, )*
                }
            }

            /// Kafka's message for the error (the exception's default message), e.g.
            /// `"This server does not host this topic-partition."`.
            pub fn message(self) -> &'static str {
                match self {
                    $( ErrorCode::$variant => concat!($($doc),*).trim(), )*
                }
            }

            /// Whether Kafka marks this error's exception as retriable (`RetriableException`).
            pub const fn is_retriable(self) -> bool {
                match self {
                    $( ErrorCode::$variant => $retriable, )*
                }
            }
        }
    };
}

define_error_codes! {
    /// The server experienced an unexpected error when processing the request.
    (UnknownServerError, -1, "UNKNOWN_SERVER_ERROR", false),
    /// No error
    (None, 0, "NONE", false),
    /// The requested offset is not within the range of offsets maintained by the server.
    (OffsetOutOfRange, 1, "OFFSET_OUT_OF_RANGE", false),
    /// This message has failed its CRC checksum, exceeds the valid size, has a null key for a compacted topic, or is otherwise corrupt.
    (CorruptMessage, 2, "CORRUPT_MESSAGE", true),
    /// This server does not host this topic-partition.
    (UnknownTopicOrPartition, 3, "UNKNOWN_TOPIC_OR_PARTITION", true),
    /// The requested fetch size is invalid.
    (InvalidFetchSize, 4, "INVALID_FETCH_SIZE", false),
    /// There is no leader for this topic-partition as we are in the middle of a leadership election.
    (LeaderNotAvailable, 5, "LEADER_NOT_AVAILABLE", true),
    /// For requests intended only for the leader, this error indicates that the broker is not the current leader. For requests intended for any replica, this error indicates that the broker is not a replica of the topic partition.
    (NotLeaderOrFollower, 6, "NOT_LEADER_OR_FOLLOWER", true),
    /// The request timed out.
    (RequestTimedOut, 7, "REQUEST_TIMED_OUT", true),
    /// The broker is not available.
    (BrokerNotAvailable, 8, "BROKER_NOT_AVAILABLE", false),
    /// The replica is not available for the requested topic-partition. Produce/Fetch requests and other requests intended only for the leader or follower return NOT_LEADER_OR_FOLLOWER if the broker is not a replica of the topic-partition.
    (ReplicaNotAvailable, 9, "REPLICA_NOT_AVAILABLE", true),
    /// The request included a message larger than the max message size the server will accept.
    (MessageTooLarge, 10, "MESSAGE_TOO_LARGE", false),
    /// The controller moved to another broker.
    (StaleControllerEpoch, 11, "STALE_CONTROLLER_EPOCH", false),
    /// The metadata field of the offset request was too large.
    (OffsetMetadataTooLarge, 12, "OFFSET_METADATA_TOO_LARGE", false),
    /// The server disconnected before a response was received.
    (NetworkException, 13, "NETWORK_EXCEPTION", true),
    /// The coordinator is loading and hence can't process requests.
    (CoordinatorLoadInProgress, 14, "COORDINATOR_LOAD_IN_PROGRESS", true),
    /// The coordinator is not available.
    (CoordinatorNotAvailable, 15, "COORDINATOR_NOT_AVAILABLE", true),
    /// This is not the correct coordinator.
    (NotCoordinator, 16, "NOT_COORDINATOR", true),
    /// The request attempted to perform an operation on an invalid topic.
    (InvalidTopicException, 17, "INVALID_TOPIC_EXCEPTION", false),
    /// The request included message batch larger than the configured segment size on the server.
    (RecordListTooLarge, 18, "RECORD_LIST_TOO_LARGE", false),
    /// Messages are rejected since there are fewer in-sync replicas than required.
    (NotEnoughReplicas, 19, "NOT_ENOUGH_REPLICAS", true),
    /// Messages are written to the log, but to fewer in-sync replicas than required.
    (NotEnoughReplicasAfterAppend, 20, "NOT_ENOUGH_REPLICAS_AFTER_APPEND", true),
    /// Produce request specified an invalid value for required acks.
    (InvalidRequiredAcks, 21, "INVALID_REQUIRED_ACKS", false),
    /// Specified group generation id is not valid.
    (IllegalGeneration, 22, "ILLEGAL_GENERATION", false),
    /// The group member's supported protocols are incompatible with those of existing members or first group member tried to join with empty protocol type or empty protocol list.
    (InconsistentGroupProtocol, 23, "INCONSISTENT_GROUP_PROTOCOL", false),
    /// The configured groupId is invalid.
    (InvalidGroupId, 24, "INVALID_GROUP_ID", false),
    /// The coordinator is not aware of this member.
    (UnknownMemberId, 25, "UNKNOWN_MEMBER_ID", false),
    /// The session timeout is not within the range allowed by the broker (as configured by group.min.session.timeout.ms and group.max.session.timeout.ms).
    (InvalidSessionTimeout, 26, "INVALID_SESSION_TIMEOUT", false),
    /// The group is rebalancing, so a rejoin is needed.
    (RebalanceInProgress, 27, "REBALANCE_IN_PROGRESS", false),
    /// The committing offset data size is not valid.
    (InvalidCommitOffsetSize, 28, "INVALID_COMMIT_OFFSET_SIZE", false),
    /// Topic authorization failed.
    (TopicAuthorizationFailed, 29, "TOPIC_AUTHORIZATION_FAILED", false),
    /// Group authorization failed.
    (GroupAuthorizationFailed, 30, "GROUP_AUTHORIZATION_FAILED", false),
    /// Cluster authorization failed.
    (ClusterAuthorizationFailed, 31, "CLUSTER_AUTHORIZATION_FAILED", false),
    /// The timestamp of the message is out of acceptable range.
    (InvalidTimestamp, 32, "INVALID_TIMESTAMP", false),
    /// The broker does not support the requested SASL mechanism.
    (UnsupportedSaslMechanism, 33, "UNSUPPORTED_SASL_MECHANISM", false),
    /// Request is not valid given the current SASL state.
    (IllegalSaslState, 34, "ILLEGAL_SASL_STATE", false),
    /// The version of API is not supported.
    (UnsupportedVersion, 35, "UNSUPPORTED_VERSION", false),
    /// Topic with this name already exists.
    (TopicAlreadyExists, 36, "TOPIC_ALREADY_EXISTS", false),
    /// Number of partitions is below 1.
    (InvalidPartitions, 37, "INVALID_PARTITIONS", false),
    /// Replication factor is below 1 or larger than the number of available brokers.
    (InvalidReplicationFactor, 38, "INVALID_REPLICATION_FACTOR", false),
    /// Replica assignment is invalid.
    (InvalidReplicaAssignment, 39, "INVALID_REPLICA_ASSIGNMENT", false),
    /// Configuration is invalid.
    (InvalidConfig, 40, "INVALID_CONFIG", false),
    /// This is not the correct controller for this cluster.
    (NotController, 41, "NOT_CONTROLLER", true),
    /// This most likely occurs because of a request being malformed by the client library or the message was sent to an incompatible broker. See the broker logs for more details.
    (InvalidRequest, 42, "INVALID_REQUEST", false),
    /// The message format version on the broker does not support the request.
    (UnsupportedForMessageFormat, 43, "UNSUPPORTED_FOR_MESSAGE_FORMAT", false),
    /// Request parameters do not satisfy the configured policy.
    (PolicyViolation, 44, "POLICY_VIOLATION", false),
    /// The broker received an out of order sequence number.
    (OutOfOrderSequenceNumber, 45, "OUT_OF_ORDER_SEQUENCE_NUMBER", false),
    /// The broker received a duplicate sequence number.
    (DuplicateSequenceNumber, 46, "DUPLICATE_SEQUENCE_NUMBER", false),
    /// Producer attempted to produce with an old epoch.
    (InvalidProducerEpoch, 47, "INVALID_PRODUCER_EPOCH", false),
    /// The producer attempted a transactional operation in an invalid state.
    (InvalidTxnState, 48, "INVALID_TXN_STATE", false),
    /// The producer attempted to use a producer id which is not currently assigned to its transactional id.
    (InvalidProducerIdMapping, 49, "INVALID_PRODUCER_ID_MAPPING", false),
    /// The transaction timeout is larger than the maximum value allowed by the broker (as configured by transaction.max.timeout.ms).
    (InvalidTransactionTimeout, 50, "INVALID_TRANSACTION_TIMEOUT", false),
    /// The producer attempted to update a transaction while another concurrent operation on the same transaction was ongoing.
    (ConcurrentTransactions, 51, "CONCURRENT_TRANSACTIONS", false),
    /// Indicates that the transaction coordinator sending a WriteTxnMarker is no longer the current coordinator for a given producer.
    (TransactionCoordinatorFenced, 52, "TRANSACTION_COORDINATOR_FENCED", false),
    /// Transactional Id authorization failed.
    (TransactionalIdAuthorizationFailed, 53, "TRANSACTIONAL_ID_AUTHORIZATION_FAILED", false),
    /// Security features are disabled.
    (SecurityDisabled, 54, "SECURITY_DISABLED", false),
    /// The broker did not attempt to execute this operation. This may happen for batched RPCs where some operations in the batch failed, causing the broker to respond without trying the rest.
    (OperationNotAttempted, 55, "OPERATION_NOT_ATTEMPTED", false),
    /// Disk error when trying to access log file on the disk.
    (KafkaStorageError, 56, "KAFKA_STORAGE_ERROR", true),
    /// The user-specified log directory is not found in the broker config.
    (LogDirNotFound, 57, "LOG_DIR_NOT_FOUND", false),
    /// SASL Authentication failed.
    (SaslAuthenticationFailed, 58, "SASL_AUTHENTICATION_FAILED", false),
    /// This exception is raised by the broker if it could not locate the producer metadata associated with the producerId in question. This could happen if, for instance, the producer's records were deleted because their retention time had elapsed. Once the last records of the producerId are removed, the producer's metadata is removed from the broker, and future appends by the producer will return this exception.
    (UnknownProducerId, 59, "UNKNOWN_PRODUCER_ID", false),
    /// A partition reassignment is in progress.
    (ReassignmentInProgress, 60, "REASSIGNMENT_IN_PROGRESS", false),
    /// Delegation Token feature is not enabled.
    (DelegationTokenAuthDisabled, 61, "DELEGATION_TOKEN_AUTH_DISABLED", false),
    /// Delegation Token is not found on server.
    (DelegationTokenNotFound, 62, "DELEGATION_TOKEN_NOT_FOUND", false),
    /// Specified Principal is not valid Owner/Renewer.
    (DelegationTokenOwnerMismatch, 63, "DELEGATION_TOKEN_OWNER_MISMATCH", false),
    /// Delegation Token requests are not allowed on PLAINTEXT/1-way SSL channels and on delegation token authenticated channels.
    (DelegationTokenRequestNotAllowed, 64, "DELEGATION_TOKEN_REQUEST_NOT_ALLOWED", false),
    /// Delegation Token authorization failed.
    (DelegationTokenAuthorizationFailed, 65, "DELEGATION_TOKEN_AUTHORIZATION_FAILED", false),
    /// Delegation Token is expired.
    (DelegationTokenExpired, 66, "DELEGATION_TOKEN_EXPIRED", false),
    /// Supplied principalType is not supported.
    (InvalidPrincipalType, 67, "INVALID_PRINCIPAL_TYPE", false),
    /// The group is not empty.
    (NonEmptyGroup, 68, "NON_EMPTY_GROUP", false),
    /// The group id does not exist.
    (GroupIdNotFound, 69, "GROUP_ID_NOT_FOUND", false),
    /// The fetch session ID was not found.
    (FetchSessionIdNotFound, 70, "FETCH_SESSION_ID_NOT_FOUND", true),
    /// The fetch session epoch is invalid.
    (InvalidFetchSessionEpoch, 71, "INVALID_FETCH_SESSION_EPOCH", true),
    /// There is no listener on the leader broker that matches the listener on which metadata request was processed.
    (ListenerNotFound, 72, "LISTENER_NOT_FOUND", true),
    /// Topic deletion is disabled.
    (TopicDeletionDisabled, 73, "TOPIC_DELETION_DISABLED", false),
    /// The leader epoch in the request is older than the epoch on the broker.
    (FencedLeaderEpoch, 74, "FENCED_LEADER_EPOCH", true),
    /// The leader epoch in the request is newer than the epoch on the broker.
    (UnknownLeaderEpoch, 75, "UNKNOWN_LEADER_EPOCH", true),
    /// The requesting client does not support the compression type of given partition.
    (UnsupportedCompressionType, 76, "UNSUPPORTED_COMPRESSION_TYPE", false),
    /// Broker epoch has changed.
    (StaleBrokerEpoch, 77, "STALE_BROKER_EPOCH", false),
    /// The leader high watermark has not caught up from a recent leader election so the offsets cannot be guaranteed to be monotonically increasing.
    (OffsetNotAvailable, 78, "OFFSET_NOT_AVAILABLE", true),
    /// The group member needs to have a valid member id before actually entering a consumer group.
    (MemberIdRequired, 79, "MEMBER_ID_REQUIRED", false),
    /// The preferred leader was not available.
    (PreferredLeaderNotAvailable, 80, "PREFERRED_LEADER_NOT_AVAILABLE", true),
    /// The consumer group has reached its max size.
    (GroupMaxSizeReached, 81, "GROUP_MAX_SIZE_REACHED", false),
    /// The broker rejected this static consumer since another consumer with the same group.instance.id has registered with a different member.id.
    (FencedInstanceId, 82, "FENCED_INSTANCE_ID", false),
    /// Eligible topic partition leaders are not available.
    (EligibleLeadersNotAvailable, 83, "ELIGIBLE_LEADERS_NOT_AVAILABLE", true),
    /// Leader election not needed for topic partition.
    (ElectionNotNeeded, 84, "ELECTION_NOT_NEEDED", true),
    /// No partition reassignment is in progress.
    (NoReassignmentInProgress, 85, "NO_REASSIGNMENT_IN_PROGRESS", false),
    /// Deleting offsets of a topic is forbidden while the consumer group is actively subscribed to it.
    (GroupSubscribedToTopic, 86, "GROUP_SUBSCRIBED_TO_TOPIC", false),
    /// This record has failed the validation on broker and hence will be rejected.
    (InvalidRecord, 87, "INVALID_RECORD", false),
    /// There are unstable offsets that need to be cleared.
    (UnstableOffsetCommit, 88, "UNSTABLE_OFFSET_COMMIT", true),
    /// The throttling quota has been exceeded.
    (ThrottlingQuotaExceeded, 89, "THROTTLING_QUOTA_EXCEEDED", true),
    /// There is a newer producer with the same transactionalId which fences the current one.
    (ProducerFenced, 90, "PRODUCER_FENCED", false),
    /// A request illegally referred to a resource that does not exist.
    (ResourceNotFound, 91, "RESOURCE_NOT_FOUND", false),
    /// A request illegally referred to the same resource twice.
    (DuplicateResource, 92, "DUPLICATE_RESOURCE", false),
    /// Requested credential would not meet criteria for acceptability.
    (UnacceptableCredential, 93, "UNACCEPTABLE_CREDENTIAL", false),
    /// Indicates that the either the sender or recipient of a voter-only request is not one of the expected voters
    (InconsistentVoterSet, 94, "INCONSISTENT_VOTER_SET", false),
    /// The given update version was invalid.
    (InvalidUpdateVersion, 95, "INVALID_UPDATE_VERSION", false),
    /// Unable to update finalized features due to an unexpected server error.
    (FeatureUpdateFailed, 96, "FEATURE_UPDATE_FAILED", false),
    /// Request principal deserialization failed during forwarding. This indicates an internal error on the broker cluster security setup.
    (PrincipalDeserializationFailure, 97, "PRINCIPAL_DESERIALIZATION_FAILURE", false),
    /// Requested snapshot was not found
    (SnapshotNotFound, 98, "SNAPSHOT_NOT_FOUND", false),
    /// Requested position is not greater than or equal to zero, and less than the size of the snapshot.
    (PositionOutOfRange, 99, "POSITION_OUT_OF_RANGE", false),
    /// This server does not host this topic ID.
    (UnknownTopicId, 100, "UNKNOWN_TOPIC_ID", true),
    /// This broker ID is already in use.
    (DuplicateBrokerRegistration, 101, "DUPLICATE_BROKER_REGISTRATION", false),
    /// The given broker ID was not registered.
    (BrokerIdNotRegistered, 102, "BROKER_ID_NOT_REGISTERED", false),
    /// The log's topic ID did not match the topic ID in the request
    (InconsistentTopicId, 103, "INCONSISTENT_TOPIC_ID", true),
    /// The clusterId in the request does not match that found on the server
    (InconsistentClusterId, 104, "INCONSISTENT_CLUSTER_ID", false),
    /// The transactionalId could not be found
    (TransactionalIdNotFound, 105, "TRANSACTIONAL_ID_NOT_FOUND", false),
    /// The fetch session encountered inconsistent topic ID usage
    (FetchSessionTopicIdError, 106, "FETCH_SESSION_TOPIC_ID_ERROR", true),
    /// The new ISR contains at least one ineligible replica.
    (IneligibleReplica, 107, "INELIGIBLE_REPLICA", false),
    /// The AlterPartition request successfully updated the partition state but the leader has changed.
    (NewLeaderElected, 108, "NEW_LEADER_ELECTED", false),
    /// The requested offset is moved to tiered storage.
    (OffsetMovedToTieredStorage, 109, "OFFSET_MOVED_TO_TIERED_STORAGE", false),
    /// The member epoch is fenced by the group coordinator. The member must abandon all its partitions and rejoin.
    (FencedMemberEpoch, 110, "FENCED_MEMBER_EPOCH", false),
    /// The instance ID is still used by another member in the consumer group. That member must leave first.
    (UnreleasedInstanceId, 111, "UNRELEASED_INSTANCE_ID", false),
    /// The assignor or its version range is not supported by the consumer group.
    (UnsupportedAssignor, 112, "UNSUPPORTED_ASSIGNOR", false),
    /// The member epoch is stale. The member must retry after receiving its updated member epoch via the ConsumerGroupHeartbeat API.
    (StaleMemberEpoch, 113, "STALE_MEMBER_EPOCH", false),
    /// The request was sent to an endpoint of the wrong type.
    (MismatchedEndpointType, 114, "MISMATCHED_ENDPOINT_TYPE", false),
    /// This endpoint type is not supported yet.
    (UnsupportedEndpointType, 115, "UNSUPPORTED_ENDPOINT_TYPE", false),
    /// This controller ID is not known.
    (UnknownControllerId, 116, "UNKNOWN_CONTROLLER_ID", false),
    /// Client sent a push telemetry request with an invalid or outdated subscription ID.
    (UnknownSubscriptionId, 117, "UNKNOWN_SUBSCRIPTION_ID", false),
    /// Client sent a push telemetry request larger than the maximum size the broker will accept.
    (TelemetryTooLarge, 118, "TELEMETRY_TOO_LARGE", false),
    /// The controller has considered the broker registration to be invalid.
    (InvalidRegistration, 119, "INVALID_REGISTRATION", false),
    /// The server encountered an error with the transaction. The client can abort the transaction to continue using this transactional ID.
    (TransactionAbortable, 120, "TRANSACTION_ABORTABLE", false),
    /// The record state is invalid. The acknowledgement of delivery could not be completed.
    (InvalidRecordState, 121, "INVALID_RECORD_STATE", false),
    /// The share session was not found.
    (ShareSessionNotFound, 122, "SHARE_SESSION_NOT_FOUND", true),
    /// The share session epoch is invalid.
    (InvalidShareSessionEpoch, 123, "INVALID_SHARE_SESSION_EPOCH", true),
    /// The share coordinator rejected the request because the share-group state epoch did not match.
    (FencedStateEpoch, 124, "FENCED_STATE_EPOCH", false),
    /// The voter key doesn't match the receiving replica's key.
    (InvalidVoterKey, 125, "INVALID_VOTER_KEY", false),
    /// The voter is already part of the set of voters.
    (DuplicateVoter, 126, "DUPLICATE_VOTER", false),
    /// The voter is not part of the set of voters.
    (VoterNotFound, 127, "VOTER_NOT_FOUND", false),
    /// The regular expression is not valid.
    (InvalidRegularExpression, 128, "INVALID_REGULAR_EXPRESSION", false),
    /// Client metadata is stale, client should rebootstrap to obtain new metadata.
    (RebootstrapRequired, 129, "REBOOTSTRAP_REQUIRED", false),
    /// The supplied topology is invalid.
    (StreamsInvalidTopology, 130, "STREAMS_INVALID_TOPOLOGY", false),
    /// The supplied topology epoch is invalid.
    (StreamsInvalidTopologyEpoch, 131, "STREAMS_INVALID_TOPOLOGY_EPOCH", false),
    /// The supplied topology epoch is outdated.
    (StreamsTopologyFenced, 132, "STREAMS_TOPOLOGY_FENCED", false),
    /// The limit of share sessions has been reached.
    (ShareSessionLimitReached, 133, "SHARE_SESSION_LIMIT_REACHED", true),
}

impl ErrorCode {
    /// Kafka's SCREAMING_CASE name lookup (inverse of [`ErrorCode::name`]).
    pub fn from_name(name: &str) -> Option<ErrorCode> {
        Self::ALL.iter().copied().find(|e| e.name() == name)
    }

    /// `true` for [`ErrorCode::None`].
    #[inline]
    pub const fn is_none(self) -> bool {
        matches!(self, ErrorCode::None)
    }
}

#[allow(clippy::derivable_impls)]
impl Default for ErrorCode {
    fn default() -> Self {
        ErrorCode::None
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.name(), self.code())
    }
}

impl From<ErrorCode> for i16 {
    #[inline]
    fn from(e: ErrorCode) -> i16 {
        e.code()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roundtrip_all() {
        assert_eq!(ErrorCode::ALL.len(), 135);
        for (i, e) in ErrorCode::ALL.iter().enumerate() {
            assert_eq!(e.code(), i as i16 - 1);
            assert_eq!(ErrorCode::from_code(e.code()), Some(*e));
            assert_eq!(ErrorCode::from_name(e.name()), Some(*e));
        }
        assert_eq!(ErrorCode::from_code(134), None);
        assert_eq!(ErrorCode::from_code(-2), None);
    }
}
