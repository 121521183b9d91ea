//! [`ProducerIdManager`]: hands out producer ids from blocks the controller allocates (Kafka's
//! `ProducerIdManager`). A block (`PRODUCER_ID_BLOCK` ids, recorded durably in the metadata log
//! as a `ProducerIds` record) is fetched before the current one runs out, so handing out an id
//! never waits for the controller on the request path of a pure state machine call.

use crate::controller::ControllerChannel;
use crate::metadata_cache::MetadataCache;
use gregor_protocol::ErrorCode;
use parking_lot::Mutex;
use std::ops::Range;
use std::sync::Arc;

/// Refill when fewer ids than this are left.
const LOW_WATER: i64 = 16;

/// Producer ids of this broker.
#[derive(Debug)]
pub struct ProducerIdManager {
    node_id: i32,
    controller: Arc<ControllerChannel>,
    metadata: Arc<MetadataCache>,
    block: Mutex<Range<i64>>,
    refill: tokio::sync::Mutex<()>,
}

impl ProducerIdManager {
    /// A manager with no block yet.
    pub fn new(
        node_id: i32,
        controller: Arc<ControllerChannel>,
        metadata: Arc<MetadataCache>,
    ) -> ProducerIdManager {
        ProducerIdManager {
            node_id,
            controller,
            metadata,
            block: Mutex::new(0..0),
            refill: tokio::sync::Mutex::new(()),
        }
    }

    /// The next id, if the current block has one (never blocks).
    pub fn try_next(&self) -> Option<i64> {
        let mut block = self.block.lock();
        if block.is_empty() {
            return None;
        }
        let id = block.start;
        block.start += 1;
        Some(id)
    }

    /// As [`ProducerIdManager::try_next`], for the allocation callbacks of the transaction
    /// coordinator: COORDINATOR_LOAD_IN_PROGRESS (retriable) when the block ran dry.
    pub fn next_or_retriable(&self) -> Result<i64, ErrorCode> {
        self.try_next().ok_or(ErrorCode::CoordinatorLoadInProgress)
    }

    /// Makes sure a few ids are available, fetching a new block from the controller if not.
    pub async fn ensure_available(&self) -> Result<(), ErrorCode> {
        let left = || {
            let b = self.block.lock();
            b.end - b.start
        };
        if left() >= LOW_WATER {
            return Ok(());
        }
        let _one_refill = self.refill.lock().await;
        if left() >= LOW_WATER {
            return Ok(());
        }
        // AllocateProducerIds names this broker by id and epoch (its registration's offset).
        let epoch = self
            .metadata
            .image()
            .broker(self.node_id)
            .map_or(-1, |b| b.epoch);
        let fresh = self
            .controller
            .allocate_producer_ids(self.node_id, epoch)
            .await
            .map_err(|e| {
                tracing::error!(error = %e, "cannot allocate a producer id block");
                crate::errors::controller_code(&e)
            })?;
        // The few ids left in the old block are abandoned; they are never handed out again.
        *self.block.lock() = fresh;
        Ok(())
    }

    /// The next id, fetching a block if needed.
    pub async fn next(&self) -> Result<i64, ErrorCode> {
        loop {
            if let Some(id) = self.try_next() {
                return Ok(id);
            }
            self.ensure_available().await?;
        }
    }
}
