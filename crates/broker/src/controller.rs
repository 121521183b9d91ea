//! [`ControllerChannel`]: how this broker changes cluster metadata.
//!
//! Today the controller is embedded: the channel owns it, and every change runs on a blocking
//! thread (the metadata log fsyncs), after which the new image is published to the
//! [`MetadataCache`] and its [`MetadataListener`]s (the replica manager opens or deletes partition
//! logs) before the caller is answered. So a CreateTopics answer means the topic's logs exist.
//! Images are published under the controller lock, in commit order.

use crate::metadata_cache::{MetadataCache, MetadataListener};
use gregor_controller::state::CreateTopic;
use gregor_controller::{Controller, ControllerError, MetadataRecord, TopicMeta};
use parking_lot::{Mutex, RwLock};
use std::sync::Arc;
use uuid::Uuid;

/// The broker's handle on the controller.
pub struct ControllerChannel {
    controller: Mutex<Controller>,
    metadata: Arc<MetadataCache>,
    listeners: RwLock<Vec<Arc<dyn MetadataListener>>>,
}

impl std::fmt::Debug for ControllerChannel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ControllerChannel").finish_non_exhaustive()
    }
}

impl ControllerChannel {
    /// A channel to an embedded controller; publishes its current state at once.
    pub fn new(controller: Controller, metadata: Arc<MetadataCache>) -> ControllerChannel {
        metadata.publish(Arc::new(controller.state().clone()));
        ControllerChannel {
            controller: Mutex::new(controller),
            metadata,
            listeners: RwLock::new(Vec::new()),
        }
    }

    /// Registers a listener and hands it the current image (blocking).
    pub fn add_listener(&self, listener: Arc<dyn MetadataListener>) {
        let _serialized = self.controller.lock();
        listener.on_metadata(&self.metadata.image());
        self.listeners.write().push(listener);
    }

    /// Runs `f` against the controller on the calling (blocking) thread, then publishes the new
    /// image if `f` changed the state.
    pub fn change_blocking<T>(
        &self,
        f: impl FnOnce(&mut Controller) -> Result<T, ControllerError>,
    ) -> Result<T, ControllerError> {
        let mut controller = self.controller.lock();
        let before = controller.state().records_applied();
        let result = f(&mut controller);
        if controller.state().records_applied() != before {
            let image = Arc::new(controller.state().clone());
            self.metadata.publish(image.clone());
            for l in self.listeners.read().iter() {
                l.on_metadata(&image);
            }
        }
        result
    }

    /// As [`ControllerChannel::change_blocking`], on a blocking thread.
    async fn change<T: Send + 'static>(
        self: &Arc<Self>,
        f: impl FnOnce(&mut Controller) -> Result<T, ControllerError> + Send + 'static,
    ) -> Result<T, ControllerError> {
        let this = self.clone();
        tokio::task::spawn_blocking(move || this.change_blocking(f))
            .await
            .map_err(|e| ControllerError::storage(format!("controller task failed: {e}")))?
    }

    /// Validates a topic creation against the current image without applying it.
    pub fn validate_create_topic(&self, req: &CreateTopic) -> Result<(), ControllerError> {
        self.metadata
            .image()
            .create_topic(req, Uuid::from_u128(2))
            .map(|_| ())
    }

    /// Creates a topic (metadata first, then its logs through the listeners).
    pub async fn create_topic(
        self: &Arc<Self>,
        req: CreateTopic,
    ) -> Result<TopicMeta, ControllerError> {
        let meta = self.change(move |c| c.create_topic(&req)).await?;
        tracing::info!(topic = %meta.name, id = %gregor_controller::uuid_to_base64(meta.id), partitions = meta.partitions, "created topic");
        Ok(meta)
    }

    /// Validates growing a topic against the current image without applying it.
    pub fn validate_create_partitions(
        &self,
        name: &str,
        count: i32,
    ) -> Result<(), ControllerError> {
        self.metadata
            .image()
            .create_partitions(name, count, None)
            .map(|_| ())
    }

    /// Grows a topic to `count` partitions.
    pub async fn create_partitions(
        self: &Arc<Self>,
        name: String,
        count: i32,
    ) -> Result<TopicMeta, ControllerError> {
        self.change(move |c| c.create_partitions(&name, count))
            .await
    }

    /// Deletes a topic (metadata first, then its logs through the listeners).
    pub async fn delete_topic(self: &Arc<Self>, id: Uuid) -> Result<TopicMeta, ControllerError> {
        let meta = self.change(move |c| c.delete_topic(&id)).await?;
        tracing::info!(topic = %meta.name, "deleted topic");
        Ok(meta)
    }

    /// Changes a topic's config overrides (all or nothing).
    pub async fn alter_topic_configs(
        self: &Arc<Self>,
        name: String,
        changes: Vec<(String, Option<String>)>,
    ) -> Result<TopicMeta, ControllerError> {
        let meta = self
            .change(move |c| c.alter_topic_configs(&name, &changes))
            .await?;
        tracing::info!(topic = %meta.name, "altered topic configs");
        Ok(meta)
    }

    /// Commits records (dynamic broker configs, client quotas).
    pub async fn commit(
        self: &Arc<Self>,
        records: Vec<MetadataRecord>,
    ) -> Result<(), ControllerError> {
        self.change(move |c| c.commit(records)).await
    }

    /// Allocates a block of producer ids (a durable `ProducerIds` record).
    pub async fn allocate_producer_ids(
        self: &Arc<Self>,
    ) -> Result<std::ops::Range<i64>, ControllerError> {
        self.change(|c| c.allocate_producer_ids()).await
    }
}
