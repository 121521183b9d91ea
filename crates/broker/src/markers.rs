//! Transaction markers (Kafka's `TransactionMarkerChannelManager` and the WriteTxnMarkers
//! handler's local half): a COMMIT or ABORT control batch in every partition of an ending
//! transaction, and — when the partition belongs to `__consumer_offsets` — the settlement of
//! the transaction's offset commits in the group shard of that partition.
//!
//! [`MarkerWriter::write_marker`] is what the transaction coordinator calls for each partition:
//! when this broker leads the partition the marker is appended here ([`MarkerWriter::write_local`],
//! also what the WriteTxnMarkers handler runs), otherwise it is sent to the leader as a
//! WriteTxnMarkers (27) request on the inter-broker listener. Either way the marker is
//! replicated to the ISR before it counts (acks=all, as Kafka writes markers), and retriable
//! failures (no leader yet, leadership moving, a leader that cannot be reached) are retried
//! with the metadata refreshed, as Kafka's coordinator does, for up to [`MARKER_RETRY_LIMIT`].

use crate::group_service::{GroupCoordinatorService, OFFSETS_TOPIC};
use crate::replica_manager::{AppendError, ReplicaManager};
use crate::rpc_client::ChannelPool;
use gregor_protocol::messages::write_txn_markers_request::{
    WritableTxnMarker, WritableTxnMarkerTopic, WriteTxnMarkersRequest,
};
use gregor_protocol::messages::{ProducerId, TopicName};
use gregor_protocol::protocol::StrBytes;
use gregor_protocol::ErrorCode;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

/// How long a marker is retried before the coordinator gives up on the partition (Kafka
/// retries until the partition accepts; a bound keeps a vanished cluster from pinning the
/// transaction forever).
pub const MARKER_RETRY_LIMIT: Duration = Duration::from_secs(120);

/// How long one attempt waits for the ISR to acknowledge a marker (Kafka's inter-broker
/// `request.timeout.ms`).
const MARKER_COMMIT_TIMEOUT: Duration = Duration::from_secs(30);

/// One transaction marker.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Marker {
    /// Producer id.
    pub producer_id: i64,
    /// Producer epoch.
    pub producer_epoch: i16,
    /// COMMIT (true) or ABORT.
    pub commit: bool,
    /// The coordinator's epoch (its partition's leader epoch).
    pub coordinator_epoch: i32,
}

/// Writes transaction markers, here or at the partitions' leaders.
#[derive(Clone)]
pub struct MarkerWriter {
    replicas: Arc<ReplicaManager>,
    groups: Arc<GroupCoordinatorService>,
    pool: Arc<OnceLock<ChannelPool>>,
}

impl std::fmt::Debug for MarkerWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MarkerWriter").finish_non_exhaustive()
    }
}

impl MarkerWriter {
    /// A writer over `replicas`, settling offsets in `groups`.
    pub fn new(replicas: Arc<ReplicaManager>, groups: Arc<GroupCoordinatorService>) -> Self {
        MarkerWriter {
            replicas,
            groups,
            pool: Arc::new(OnceLock::new()),
        }
    }

    /// Writes one marker to `topic`-`partition` wherever its leader is, retrying retriable
    /// failures. A partition that does not exist (deleted topic) is not an error: there is
    /// nothing left to mark.
    pub async fn write_marker(
        &self,
        topic: &str,
        partition: i32,
        marker: Marker,
    ) -> Result<(), String> {
        let me = self.replicas.node_id();
        let deadline = tokio::time::Instant::now() + MARKER_RETRY_LIMIT;
        let mut backoff = Duration::from_millis(20);
        loop {
            let outcome = match self.replicas.partition_leader(topic, partition) {
                None => return Ok(()),
                Some(-1) => Err(ErrorCode::LeaderNotAvailable),
                Some(leader) if leader == me => self.write_local(topic, partition, marker).await,
                Some(leader) => self.write_remote(leader, topic, partition, marker).await,
            };
            let code = match outcome {
                Ok(()) | Err(ErrorCode::UnknownTopicOrPartition) => return Ok(()),
                Err(code) => code,
            };
            if !code.is_retriable() || tokio::time::Instant::now() >= deadline {
                return Err(format!(
                    "{topic}-{partition}: {code:?} (producer {} epoch {})",
                    marker.producer_id, marker.producer_epoch
                ));
            }
            tracing::debug!(%topic, partition, error = ?code, "retrying transaction marker");
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 2).min(Duration::from_millis(500));
        }
    }

    /// Appends one marker to a partition this broker leads and waits until the ISR has it;
    /// then settles the transaction's offsets if the partition is a `__consumer_offsets` one.
    pub async fn write_local(
        &self,
        topic: &str,
        partition: i32,
        marker: Marker,
    ) -> Result<(), ErrorCode> {
        let Some(part) = self.replicas.partition(topic, partition) else {
            return match self.replicas.partition_leader(topic, partition) {
                None => Err(ErrorCode::UnknownTopicOrPartition),
                Some(_) => Err(ErrorCode::NotLeaderOrFollower),
            };
        };
        let replicas = self.replicas.clone();
        let p = part.clone();
        let appended = tokio::task::spawn_blocking(move || {
            replicas.append_marker(
                &p,
                marker.producer_id,
                marker.producer_epoch,
                marker.commit,
                marker.coordinator_epoch,
            )
        })
        .await
        .map_err(|_| ErrorCode::UnknownServerError)?;
        let info = match appended {
            Ok(info) => info,
            Err(AppendError::Deleted) => return Err(ErrorCode::UnknownTopicOrPartition),
            Err(e) => return Err(e.code()),
        };
        self.replicas
            .wait_for_commit(&part, info.last_offset + 1, MARKER_COMMIT_TIMEOUT)
            .await?;
        if topic == OFFSETS_TOPIC {
            // Settle the transaction's offset commits (TxnOffsetCommit).
            self.groups
                .complete_txn(partition, marker.producer_id, marker.commit)
                .await;
        }
        Ok(())
    }

    /// Sends one marker to the partition's leader (WriteTxnMarkers v1).
    async fn write_remote(
        &self,
        leader: i32,
        topic: &str,
        partition: i32,
        marker: Marker,
    ) -> Result<(), ErrorCode> {
        let Some(addr) = self.replicas.inter_broker_address(leader) else {
            return Err(ErrorCode::LeaderNotAvailable);
        };
        let pool =
            self.pool.get_or_init(|| {
                ChannelPool::new(self.replicas.inter_broker_channel(format!(
                    "gregor-txn-markers-{}",
                    self.replicas.node_id()
                )))
            });
        let req =
            WriteTxnMarkersRequest::default().with_markers(vec![WritableTxnMarker::default()
                .with_producer_id(ProducerId(marker.producer_id))
                .with_producer_epoch(marker.producer_epoch)
                .with_transaction_result(marker.commit)
                .with_coordinator_epoch(marker.coordinator_epoch)
                .with_topics(vec![WritableTxnMarkerTopic::default()
                    .with_name(TopicName(StrBytes::from_string(topic.to_string())))
                    .with_partition_indexes(vec![partition])])]);
        let resp = pool
            .channel(leader, &addr)
            .call(1, &req, MARKER_COMMIT_TIMEOUT + Duration::from_secs(5))
            .await
            .map_err(|e| {
                tracing::debug!(leader, error = %e, "WriteTxnMarkers not delivered");
                ErrorCode::NetworkException
            })?;
        let code = resp
            .markers
            .iter()
            .flat_map(|m| &m.topics)
            .flat_map(|t| &t.partitions)
            .find(|p| p.partition_index == partition)
            .map_or(ErrorCode::UnknownServerError.code(), |p| p.error_code);
        match ErrorCode::from_code(code) {
            Some(ErrorCode::None) => Ok(()),
            Some(c) => Err(c),
            None => Err(ErrorCode::UnknownServerError),
        }
    }
}
