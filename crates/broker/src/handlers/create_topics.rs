//! CreateTopics (key 19), v2–v7. `-1` partitions / replication factor take the broker defaults
//! (`num.partitions`, `default.replication.factor`); manual assignments, configs and
//! `validate_only` are honoured; v7 returns the new topic id.

use super::{Ctx, Response};
use crate::authorizer::{op, resource};
use crate::errors::{controller_code, HandlerError};
use bytes::Bytes;
use gregor_controller::state::CreateTopic;
use gregor_protocol::messages::create_topics_request::CreateTopicsRequest;
use gregor_protocol::messages::create_topics_response::{
    CreatableTopicConfigs, CreatableTopicResult, CreateTopicsResponse,
};
use gregor_protocol::protocol::StrBytes;
use gregor_protocol::ErrorCode;
use std::collections::BTreeMap;

/// Served versions.
pub const VERSIONS: (i16, i16) = (2, 7);

/// Config source TOPIC_CONFIG in CreateTopics / DescribeConfigs responses.
const SOURCE_TOPIC: i8 = 1;

/// Handles CreateTopics.
pub async fn handle(ctx: &Ctx<'_>, body: &mut Bytes) -> Result<Response, HandlerError> {
    let req: CreateTopicsRequest = ctx.decode(body)?;
    let duplicates = super::duplicate_names(req.topics.iter().map(|t| t.name.0.as_str()));
    let mut results = Vec::new();
    for t in &req.topics {
        let name = t.name.0.as_str().to_string();
        let mut result = CreatableTopicResult::default()
            .with_name(t.name.clone())
            .with_num_partitions(-1)
            .with_replication_factor(-1);
        let fail = |mut r: CreatableTopicResult, code: ErrorCode, msg: String| {
            r.error_code = code.code();
            r.error_message = Some(StrBytes::from_string(msg));
            r
        };
        if !ctx.cluster_allowed(op::CREATE) && !ctx.allowed(op::CREATE, resource::TOPIC, &name) {
            results.push(fail(
                result,
                ErrorCode::TopicAuthorizationFailed,
                "Authorization failed.".into(),
            ));
            continue;
        }
        if duplicates.contains(&name) {
            results.push(fail(
                result,
                ErrorCode::InvalidRequest,
                format!("Create topics request from client `{}` contains multiple entries for the following topics: {name}", ctx.header.client_id.as_ref().map(|c| c.as_str()).unwrap_or("")),
            ));
            continue;
        }
        if !t.assignments.is_empty() && (t.num_partitions != -1 || t.replication_factor != -1) {
            results.push(fail(
                result,
                ErrorCode::InvalidRequest,
                "Both numPartitions or replicationFactor and replicasAssignments were set. Both cannot be used at the same time.".into(),
            ));
            continue;
        }
        let mut configs = BTreeMap::new();
        let mut bad_config = None;
        for c in &t.configs {
            match &c.value {
                Some(v) => {
                    configs.insert(c.name.as_str().to_string(), v.as_str().to_string());
                }
                None => {
                    bad_config = Some(format!(
                        "Null value not supported for topic configs: {}",
                        c.name.as_str()
                    ));
                }
            }
        }
        if let Some(msg) = bad_config {
            results.push(fail(result, ErrorCode::InvalidConfig, msg));
            continue;
        }
        let create = CreateTopic {
            name: name.clone(),
            partitions: if t.num_partitions == -1 {
                ctx.config().num_partitions
            } else {
                t.num_partitions
            },
            replication_factor: if t.replication_factor == -1 {
                ctx.config().default_replication_factor
            } else {
                t.replication_factor
            },
            assignments: t
                .assignments
                .iter()
                .map(|a| {
                    (
                        a.partition_index,
                        a.broker_ids.iter().map(|b| b.0).collect(),
                    )
                })
                .collect(),
            configs: configs.clone(),
        };
        let outcome = if req.validate_only {
            ctx.controller().validate_create_topic(&create).map(|()| {
                (
                    uuid::Uuid::nil(),
                    create.partitions,
                    create.replication_factor,
                )
            })
        } else {
            ctx.controller()
                .create_topic(create.clone())
                .await
                .map(|m| (m.id, m.partitions, m.replication_factor))
        };
        match outcome {
            Ok((id, partitions, rf)) => {
                result.error_code = 0;
                if ctx.version >= 7 {
                    result.topic_id = id;
                }
                result.num_partitions = if create.assignments.is_empty() {
                    partitions
                } else {
                    create.assignments.len() as i32
                };
                result.replication_factor = rf;
                if ctx.version < 5 {
                    result.num_partitions = -1;
                    result.replication_factor = -1;
                    results.push(result);
                    continue;
                }
                result.configs = Some(
                    configs
                        .iter()
                        .map(|(k, v)| {
                            CreatableTopicConfigs::default()
                                .with_name(StrBytes::from_string(k.clone()))
                                .with_value(Some(StrBytes::from_string(v.clone())))
                                .with_read_only(false)
                                .with_config_source(SOURCE_TOPIC)
                                .with_is_sensitive(false)
                        })
                        .collect(),
                );
                results.push(result);
            }
            Err(e) => {
                let code = controller_code(&e);
                results.push(fail(result, code, e.to_string()));
            }
        }
    }
    ctx.respond(
        &CreateTopicsResponse::default()
            .with_throttle_time_ms(0)
            .with_topics(results),
    )
}
