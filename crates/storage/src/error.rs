//! Error type of the storage crate.

use std::path::{Path, PathBuf};

/// Everything that can go wrong in the partition log.
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    /// An I/O error on a specific file or directory.
    #[error("I/O error on {}: {source}", path.display())]
    Io {
        /// The file or directory the operation was on.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// The requested offset is outside `[log_start, log_end]`.
    #[error("offset {requested} is out of range: log start {log_start}, log end {log_end}")]
    OffsetOutOfRange {
        /// The offset the caller asked for.
        requested: i64,
        /// The log start offset.
        log_start: i64,
        /// The log end offset.
        log_end: i64,
    },
    /// A record batch (appended or read from disk) is malformed.
    #[error("corrupt record batch: {0}")]
    CorruptBatch(String),
    /// An idempotent producer sent a batch whose sequence does not follow the previous one.
    #[error("out of order sequence number for producer {producer_id}: expected {expected}, received {received}")]
    OutOfOrderSequence {
        /// The producer id.
        producer_id: i64,
        /// The sequence number that was expected.
        expected: i32,
        /// The base sequence of the rejected batch.
        received: i32,
    },
    /// An idempotent producer sent a batch with an epoch older than the current one.
    #[error(
        "invalid producer epoch for producer {producer_id}: current {current}, received {received}"
    )]
    InvalidProducerEpoch {
        /// The producer id.
        producer_id: i64,
        /// The producer's current epoch.
        current: i16,
        /// The epoch of the rejected batch.
        received: i16,
    },
    /// A non-transactional batch from a producer with an ongoing transaction (Kafka's
    /// `InvalidTxnStateException`, error `INVALID_TXN_STATE`).
    #[error("Expected transactional write from producer {producer_id}: its transaction started at offset {first_offset} is still ongoing")]
    InvalidTxnState {
        /// The producer id.
        producer_id: i64,
        /// First offset of the ongoing transaction.
        first_offset: i64,
    },
    /// A transaction marker with a coordinator epoch older than the last marker's (Kafka's
    /// `TransactionCoordinatorFencedException`, error `TRANSACTION_COORDINATOR_FENCED`).
    #[error("coordinator epoch {received} of the marker for producer {producer_id} is older than the current coordinator epoch {current}")]
    TransactionCoordinatorFenced {
        /// The producer id.
        producer_id: i64,
        /// Coordinator epoch of the last marker.
        current: i32,
        /// Coordinator epoch of the rejected marker.
        received: i32,
    },
    /// A follower append ([`crate::Log::append_as_follower`]) whose first batch starts below
    /// the log end offset (Kafka's `UnexpectedAppendOffsetException`). Kafka's fetcher
    /// recovers from it when the follower's log is empty (the leader's log start offset
    /// lies inside a batch, after DeleteRecords) with `truncate_fully_and_start_at(first
    /// offset)` and appends again.
    #[error("unexpected offset in follower append: first offset {first_offset} (last offset {last_offset}) is below the log end offset {log_end}")]
    UnexpectedAppendOffset {
        /// Base offset of the first batch.
        first_offset: i64,
        /// Last offset of the appended batches.
        last_offset: i64,
        /// The log end offset.
        log_end: i64,
    },
    /// The batches of one follower append exceed the segment size (Kafka's
    /// `RecordBatchTooLargeException`).
    #[error("record batches of {size} bytes exceed the maximum segment size {max}")]
    RecordBatchTooLarge {
        /// Bytes of the batches.
        size: u64,
        /// `segment.bytes`.
        max: u64,
    },
    /// A checkpoint file that does not follow its format (e.g. a malformed
    /// `replication-offset-checkpoint`, [`crate::offset_checkpoint`]).
    #[error("malformed checkpoint file {}: {reason}", path.display())]
    MalformedCheckpoint {
        /// The file.
        path: PathBuf,
        /// What is wrong (with the offending line).
        reason: String,
    },
    /// An argument the storage cannot accept (e.g. a topic name that cannot be written to a
    /// checkpoint file).
    #[error("invalid argument: {0}")]
    InvalidArgument(String),
}

impl StorageError {
    /// Builds an [`StorageError::Io`] for `path`.
    pub fn io(path: impl AsRef<Path>, source: std::io::Error) -> Self {
        StorageError::Io {
            path: path.as_ref().to_path_buf(),
            source,
        }
    }
}

/// Attaches a path to `std::io::Result`s.
pub(crate) trait IoContext<T> {
    fn at(self, path: &Path) -> Result<T, StorageError>;
}

impl<T> IoContext<T> for std::io::Result<T> {
    fn at(self, path: &Path) -> Result<T, StorageError> {
        self.map_err(|source| StorageError::io(path, source))
    }
}
