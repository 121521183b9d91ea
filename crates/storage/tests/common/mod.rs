//! Helpers shared by the integration tests.

use gregor_storage::{AppendInfo, Log, StorageError};

/// What the broker's replica manager does for a partition with a single replica: the
/// high watermark follows the log end offset after every append.
pub trait SingleNode {
    /// [`Log::append`], then the high watermark to the log end offset.
    fn append_and_commit(
        &mut self,
        batch: &mut [u8],
        leader_epoch: i32,
    ) -> Result<AppendInfo, StorageError>;

    /// [`Log::append_control`], then the high watermark to the log end offset.
    fn append_control_and_commit(
        &mut self,
        producer_id: i64,
        producer_epoch: i16,
        commit: bool,
        coordinator_epoch: i32,
        leader_epoch: i32,
        timestamp_ms: i64,
    ) -> Result<AppendInfo, StorageError>;

    /// The high watermark restored to the log end offset (after an open).
    fn commit_all(self) -> Self;
}

impl SingleNode for Log {
    fn append_and_commit(
        &mut self,
        batch: &mut [u8],
        leader_epoch: i32,
    ) -> Result<AppendInfo, StorageError> {
        let info = self.append(batch, leader_epoch)?;
        self.maybe_increment_high_watermark(self.log_end_offset());
        Ok(info)
    }

    fn append_control_and_commit(
        &mut self,
        producer_id: i64,
        producer_epoch: i16,
        commit: bool,
        coordinator_epoch: i32,
        leader_epoch: i32,
        timestamp_ms: i64,
    ) -> Result<AppendInfo, StorageError> {
        let info = self.append_control(
            producer_id,
            producer_epoch,
            commit,
            coordinator_epoch,
            leader_epoch,
            timestamp_ms,
        )?;
        self.maybe_increment_high_watermark(self.log_end_offset());
        Ok(info)
    }

    fn commit_all(mut self) -> Self {
        self.update_high_watermark(self.log_end_offset());
        self
    }
}
