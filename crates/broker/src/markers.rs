//! Transaction markers (the local half of Kafka's WriteTxnMarkers): a COMMIT or ABORT control
//! batch appended to a partition this broker leads, and — when the partition belongs to
//! `__consumer_offsets` — the settlement of the transaction's offset commits in the group
//! shard of that partition. The transaction coordinator calls [`MarkerWriter::write_marker`]
//! for every partition of an ending transaction.

use crate::group_service::{GroupCoordinatorService, OFFSETS_TOPIC};
use crate::replica_manager::{AppendError, ReplicaManager};
use std::sync::Arc;

/// Writes transaction markers into this broker's partitions.
#[derive(Debug, Clone)]
pub struct MarkerWriter {
    replicas: Arc<ReplicaManager>,
    groups: Arc<GroupCoordinatorService>,
}

impl MarkerWriter {
    /// A writer over `replicas`, settling offsets in `groups`.
    pub fn new(replicas: Arc<ReplicaManager>, groups: Arc<GroupCoordinatorService>) -> Self {
        MarkerWriter { replicas, groups }
    }

    /// Appends one COMMIT/ABORT control batch to `topic`-`partition`. A missing partition
    /// (deleted topic) is not an error: there is nothing left to mark.
    pub async fn write_marker(
        &self,
        topic: &str,
        partition: i32,
        producer_id: i64,
        producer_epoch: i16,
        commit: bool,
        coordinator_epoch: i32,
    ) -> Result<(), String> {
        let Some(part) = self.replicas.partition(topic, partition) else {
            return Ok(());
        };
        let replicas = self.replicas.clone();
        let p = part.clone();
        let appended = tokio::task::spawn_blocking(move || {
            replicas.append_marker(&p, producer_id, producer_epoch, commit, coordinator_epoch)
        })
        .await
        .map_err(|e| format!("marker task: {e}"))?;
        match appended {
            Ok(_) => {}
            Err(AppendError::Deleted) => return Ok(()),
            Err(e) => return Err(e.to_string()),
        }
        if topic == OFFSETS_TOPIC {
            // Settle the transaction's offset commits (TxnOffsetCommit).
            self.groups
                .complete_txn(partition, producer_id, commit)
                .await;
        }
        Ok(())
    }
}
