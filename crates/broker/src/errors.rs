//! The one error-mapping table: storage, controller and record-batch errors to Kafka error
//! codes, plus [`HandlerError`] for requests that cannot be answered at all (the connection is
//! closed, as Kafka does for malformed or unsupported requests).

use gregor_controller::ControllerError;
use gregor_protocol::ErrorCode;
use gregor_storage::StorageError;

/// A request that gets no response: the connection is closed and the reason logged.
#[derive(Debug, thiserror::Error)]
pub enum HandlerError {
    /// The body did not decode.
    #[error(transparent)]
    Decode(#[from] gregor_protocol::request::DecodeError),
    /// The API or version is not served.
    #[error("unsupported request: {0}")]
    Unsupported(String),
    /// The body of a private (inter-node) request did not decode.
    #[error("malformed request: {0}")]
    Malformed(String),
    /// The broker is shutting down; the request is dropped with the connection.
    #[error("shutting down")]
    ShuttingDown,
    /// A broker-internal inconsistency (a bug).
    #[error("internal error: {0}")]
    Internal(String),
    /// The response could not be encoded (a bug).
    #[error(transparent)]
    Encode(#[from] gregor_protocol::response::EncodeError),
}

/// Kafka error code of a storage error.
pub fn storage_code(e: &StorageError) -> ErrorCode {
    match e {
        StorageError::OffsetOutOfRange { .. } => ErrorCode::OffsetOutOfRange,
        StorageError::CorruptBatch(_) => ErrorCode::CorruptMessage,
        StorageError::OutOfOrderSequence { .. } => ErrorCode::OutOfOrderSequenceNumber,
        StorageError::InvalidProducerEpoch { .. } => ErrorCode::InvalidProducerEpoch,
        StorageError::InvalidTxnState { .. } => ErrorCode::InvalidTxnState,
        StorageError::TransactionCoordinatorFenced { .. } => {
            ErrorCode::TransactionCoordinatorFenced
        }
        _ => ErrorCode::KafkaStorageError,
    }
}

/// Kafka error code of a controller error.
pub fn controller_code(e: &ControllerError) -> ErrorCode {
    e.code
}
