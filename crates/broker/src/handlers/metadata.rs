//! Metadata (key 3), v0–v13: brokers (this node, at the advertised address of the listener the
//! client used), cluster id, controller id, topics with their stable topic ids and partitions
//! with the leader, leader epoch, replicas and ISR of the metadata image. Unknown topics are
//! auto-created when the request allows it and `auto.create.topics.enable` is on —
//! synchronously, so the topic is returned ready for use in the same response.

use super::{Ctx, Response};
use crate::authorizer::{op, resource};
use crate::errors::{controller_code, HandlerError};
use crate::metadata_cache::MetadataCache;
use bytes::Bytes;
use gregor_controller::TopicMeta;
use gregor_protocol::messages::metadata_request::MetadataRequest;
use gregor_protocol::messages::metadata_response::{
    MetadataResponse, MetadataResponseBroker, MetadataResponsePartition, MetadataResponseTopic,
};
use gregor_protocol::messages::{BrokerId, TopicName};
use gregor_protocol::protocol::StrBytes;
use gregor_protocol::ErrorCode;

/// Served versions.
pub const VERSIONS: (i16, i16) = (0, 13);

/// `topic_authorized_operations` when not requested.
const OPS_NOT_REQUESTED: i32 = i32::MIN;
/// Topic operations allowed without an authorizer: READ, WRITE, CREATE, DELETE, ALTER,
/// DESCRIBE, DESCRIBE_CONFIGS, ALTER_CONFIGS.
pub(crate) const TOPIC_OPS: i32 =
    (1 << 3) | (1 << 4) | (1 << 5) | (1 << 6) | (1 << 7) | (1 << 8) | (1 << 10) | (1 << 11);
/// Cluster operations allowed without an authorizer, as Kafka reports them: CREATE, ALTER,
/// DESCRIBE, CLUSTER_ACTION, DESCRIBE_CONFIGS, ALTER_CONFIGS, IDEMPOTENT_WRITE.
pub(crate) const CLUSTER_OPS: i32 =
    (1 << 5) | (1 << 7) | (1 << 8) | (1 << 9) | (1 << 10) | (1 << 11) | (1 << 12);

/// The `cluster_authorized_operations` for this request's principal.
pub(crate) fn cluster_ops(ctx: &Ctx<'_>) -> i32 {
    let a = &ctx.config().authorizer;
    if !a.enabled() {
        return CLUSTER_OPS;
    }
    a.authorized_operations(
        &ctx.metadata().image(),
        ctx.principal,
        &ctx.peer.ip().to_string(),
        resource::CLUSTER,
        crate::authorizer::CLUSTER_NAME,
    )
}

pub(crate) fn topic_entry(
    metadata: &MetadataCache,
    meta: &TopicMeta,
    ops: i32,
    version: i16,
) -> MetadataResponseTopic {
    let ids = |v: &[i32]| v.iter().map(|b| BrokerId(*b)).collect::<Vec<_>>();
    let partitions = (0..meta.partitions)
        .filter_map(|p| Some((p, metadata.partition_state(meta, p)?)))
        .map(|(p, s)| {
            MetadataResponsePartition::default()
                .with_error_code(if s.leader < 0 {
                    ErrorCode::LeaderNotAvailable.code()
                } else {
                    0
                })
                .with_partition_index(p)
                .with_leader_id(BrokerId(s.leader))
                .with_leader_epoch(if version >= 7 { s.leader_epoch } else { -1 })
                .with_replica_nodes(ids(&s.replicas))
                .with_isr_nodes(ids(&s.isr))
                .with_offline_replicas(vec![])
        })
        .collect();
    MetadataResponseTopic::default()
        .with_error_code(0)
        .with_name(Some(TopicName(StrBytes::from_string(meta.name.clone()))))
        .with_topic_id(meta.id)
        .with_is_internal(meta.internal)
        .with_partitions(partitions)
        .with_topic_authorized_operations(ops)
}

fn error_entry(name: Option<String>, id: uuid::Uuid, code: ErrorCode) -> MetadataResponseTopic {
    MetadataResponseTopic::default()
        .with_error_code(code.code())
        .with_name(name.map(|n| TopicName(StrBytes::from_string(n))))
        .with_topic_id(id)
        .with_partitions(vec![])
        .with_topic_authorized_operations(OPS_NOT_REQUESTED)
}

/// Creates a topic with the broker defaults (auto-creation).
pub(crate) async fn auto_create(
    ctx: &Ctx<'_>,
    name: &str,
) -> Result<TopicMeta, gregor_controller::ControllerError> {
    ctx.controller()
        .create_topic(gregor_controller::state::CreateTopic {
            name: name.to_string(),
            partitions: ctx.config().num_partitions,
            replication_factor: ctx.config().default_replication_factor,
            assignments: Default::default(),
            configs: Default::default(),
        })
        .await
}

/// The `topic_authorized_operations` of a topic for this request's principal.
fn topic_ops(ctx: &Ctx<'_>, requested: bool, name: &str) -> i32 {
    let a = &ctx.config().authorizer;
    match (requested, a.enabled()) {
        (false, _) => OPS_NOT_REQUESTED,
        (true, false) => TOPIC_OPS,
        (true, true) => a.authorized_operations(
            &ctx.metadata().image(),
            ctx.principal,
            &ctx.peer.ip().to_string(),
            resource::TOPIC,
            name,
        ),
    }
}

/// Handles Metadata. With an authorizer, topics the principal may not DESCRIBE are left out
/// of "all topics" and answer TOPIC_AUTHORIZATION_FAILED when named; auto-creation needs
/// CREATE on the cluster or the topic.
pub async fn handle(ctx: &Ctx<'_>, body: &mut Bytes) -> Result<Response, HandlerError> {
    let req: MetadataRequest = ctx.decode(body)?;
    let metadata = ctx.metadata();
    let want_ops = ctx.version >= 8 && req.include_topic_authorized_operations;
    let describe = |name: &str| ctx.allowed(op::DESCRIBE, resource::TOPIC, name);
    // v0: an empty list means all topics; v1+: null means all, empty means none.
    let all = match &req.topics {
        None => true,
        Some(t) => t.is_empty() && ctx.version == 0,
    };
    let allow_auto = if ctx.version >= 4 {
        req.allow_auto_topic_creation
    } else {
        true
    };
    let mut topics = Vec::new();
    if all {
        for meta in metadata.all_topics() {
            if describe(&meta.name) {
                let ops = topic_ops(ctx, want_ops, &meta.name);
                topics.push(topic_entry(metadata, &meta, ops, ctx.version));
            }
        }
    } else {
        for t in req.topics.as_deref().unwrap_or_default() {
            match &t.name {
                Some(name) => {
                    let name = name.0.as_str().to_string();
                    let ops = topic_ops(ctx, want_ops, &name);
                    let may_create = || {
                        ctx.cluster_allowed(op::CREATE)
                            || ctx.allowed(op::CREATE, resource::TOPIC, &name)
                    };
                    if !describe(&name) {
                        topics.push(error_entry(
                            Some(name),
                            uuid::Uuid::nil(),
                            ErrorCode::TopicAuthorizationFailed,
                        ));
                        continue;
                    }
                    match metadata.topic(&name) {
                        Some(meta) => topics.push(topic_entry(metadata, &meta, ops, ctx.version)),
                        None => {
                            if allow_auto && ctx.config().auto_create_topics && !may_create() {
                                topics.push(error_entry(
                                    Some(name),
                                    uuid::Uuid::nil(),
                                    ErrorCode::TopicAuthorizationFailed,
                                ));
                            } else if allow_auto && ctx.config().auto_create_topics {
                                match gregor_controller::topic::validate_name(&name) {
                                    Err(_) => topics.push(error_entry(
                                        Some(name),
                                        uuid::Uuid::nil(),
                                        ErrorCode::InvalidTopicException,
                                    )),
                                    Ok(()) => match auto_create(ctx, &name).await {
                                        Ok(meta) => topics.push(topic_entry(
                                            metadata,
                                            &meta,
                                            ops,
                                            ctx.version,
                                        )),
                                        Err(e) if e.code == ErrorCode::TopicAlreadyExists => {
                                            match metadata.topic(&name) {
                                                Some(meta) => topics.push(topic_entry(
                                                    metadata,
                                                    &meta,
                                                    ops,
                                                    ctx.version,
                                                )),
                                                None => topics.push(error_entry(
                                                    Some(name),
                                                    uuid::Uuid::nil(),
                                                    ErrorCode::LeaderNotAvailable,
                                                )),
                                            }
                                        }
                                        Err(e) => topics.push(error_entry(
                                            Some(name),
                                            uuid::Uuid::nil(),
                                            controller_code(&e),
                                        )),
                                    },
                                }
                            } else {
                                topics.push(error_entry(
                                    Some(name),
                                    uuid::Uuid::nil(),
                                    ErrorCode::UnknownTopicOrPartition,
                                ));
                            }
                        }
                    }
                }
                None => {
                    // Lookup by topic id (v10+).
                    match metadata.topic_by_id(&t.topic_id) {
                        Some(meta) if !describe(&meta.name) => topics.push(error_entry(
                            None,
                            t.topic_id,
                            ErrorCode::TopicAuthorizationFailed,
                        )),
                        Some(meta) => {
                            let ops = topic_ops(ctx, want_ops, &meta.name);
                            topics.push(topic_entry(metadata, &meta, ops, ctx.version))
                        }
                        None => {
                            topics.push(error_entry(None, t.topic_id, ErrorCode::UnknownTopicId))
                        }
                    }
                }
            }
        }
    }
    let brokers = ctx
        .metadata()
        .alive_brokers(&ctx.listener.name)
        .into_iter()
        .map(|b| {
            MetadataResponseBroker::default()
                .with_node_id(BrokerId(b.node_id))
                .with_host(StrBytes::from_string(b.host))
                .with_port(i32::from(b.port))
                .with_rack(b.rack.map(StrBytes::from_string))
        })
        .collect();
    let resp = MetadataResponse::default()
        .with_throttle_time_ms(0)
        .with_brokers(brokers)
        .with_cluster_id(Some(StrBytes::from_string(ctx.services.cluster_id())))
        .with_controller_id(BrokerId(ctx.metadata().controller_id_for_clients()))
        .with_topics(topics)
        .with_cluster_authorized_operations(
            if (8..=10).contains(&ctx.version) && req.include_cluster_authorized_operations {
                cluster_ops(ctx)
            } else {
                OPS_NOT_REQUESTED
            },
        );
    ctx.respond(&resp)
}
