//! [`ControllerError`]: why a metadata command was refused, as a Kafka error code plus Kafka's
//! message.

use gregor_protocol::ErrorCode;

/// A refused metadata command: the Kafka error code the response carries, and the message
/// (Kafka's text where Kafka has one). `Display` is the message alone, so it can be sent to
/// clients as the error message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct ControllerError {
    /// The Kafka error code.
    pub code: ErrorCode,
    /// The error message.
    pub message: String,
}

impl ControllerError {
    /// An error with a code and message.
    pub fn new(code: ErrorCode, message: impl Into<String>) -> ControllerError {
        ControllerError {
            code,
            message: message.into(),
        }
    }

    /// An error with Kafka's default message for `code` (what `new ApiError(code)` sends).
    pub fn of(code: ErrorCode) -> ControllerError {
        ControllerError::new(code, code.message())
    }

    /// TOPIC_ALREADY_EXISTS.
    pub fn topic_already_exists(message: impl Into<String>) -> ControllerError {
        ControllerError::new(ErrorCode::TopicAlreadyExists, message)
    }

    /// INVALID_TOPIC_EXCEPTION.
    pub fn invalid_topic(message: impl Into<String>) -> ControllerError {
        ControllerError::new(ErrorCode::InvalidTopicException, message)
    }

    /// INVALID_PARTITIONS.
    pub fn invalid_partitions(message: impl Into<String>) -> ControllerError {
        ControllerError::new(ErrorCode::InvalidPartitions, message)
    }

    /// INVALID_REPLICATION_FACTOR.
    pub fn invalid_replication_factor(message: impl Into<String>) -> ControllerError {
        ControllerError::new(ErrorCode::InvalidReplicationFactor, message)
    }

    /// INVALID_REPLICA_ASSIGNMENT.
    pub fn invalid_replica_assignment(message: impl Into<String>) -> ControllerError {
        ControllerError::new(ErrorCode::InvalidReplicaAssignment, message)
    }

    /// INVALID_CONFIG.
    pub fn invalid_config(message: impl Into<String>) -> ControllerError {
        ControllerError::new(ErrorCode::InvalidConfig, message)
    }

    /// INVALID_REQUEST.
    pub fn invalid_request(message: impl Into<String>) -> ControllerError {
        ControllerError::new(ErrorCode::InvalidRequest, message)
    }

    /// UNKNOWN_TOPIC_OR_PARTITION.
    pub fn unknown_topic_or_partition(message: impl Into<String>) -> ControllerError {
        ControllerError::new(ErrorCode::UnknownTopicOrPartition, message)
    }

    /// UNKNOWN_TOPIC_ID.
    pub fn unknown_topic_id(message: impl Into<String>) -> ControllerError {
        ControllerError::new(ErrorCode::UnknownTopicId, message)
    }

    /// STALE_BROKER_EPOCH.
    pub fn stale_broker_epoch(message: impl Into<String>) -> ControllerError {
        ControllerError::new(ErrorCode::StaleBrokerEpoch, message)
    }

    /// The metadata log could not be written (KAFKA_STORAGE_ERROR).
    pub fn storage(message: impl std::fmt::Display) -> ControllerError {
        ControllerError::new(
            ErrorCode::KafkaStorageError,
            format!("metadata log: {message}"),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_is_the_message() {
        let e = ControllerError::topic_already_exists("Topic 't' already exists.");
        assert_eq!(e.to_string(), "Topic 't' already exists.");
        assert_eq!(e.code, ErrorCode::TopicAlreadyExists);
        let e = ControllerError::of(ErrorCode::ElectionNotNeeded);
        assert_eq!(e.message, ErrorCode::ElectionNotNeeded.message());
    }
}
