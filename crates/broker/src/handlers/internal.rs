//! Gregor's private APIs on the controller listener (`gregor_protocol::internal`): raft
//! messages of the controller quorum, brokers fetching committed metadata, and metadata changes
//! forwarded to the active controller. They are not Kafka APIs: no ApiVersions entry, request
//! header v2, response header v1, bodies owned by the modules that produce them.

use super::Response;
use crate::controller::serve_command;
use crate::errors::HandlerError;
use crate::metadata_follower::{serve_fetch, FetchMetadataRequest};
use crate::quorum_controller::decode_command;
use crate::services::Services;
use bytes::Bytes;
use gregor_protocol::internal::{self, CONTROLLER_COMMAND, FETCH_METADATA, RAFT};

/// Answers one private request (`api_key` from `internal::KEYS`).
pub async fn handle(
    services: &Services,
    api_key: i16,
    correlation_id: i32,
    body: Bytes,
) -> Result<Response, HandlerError> {
    let Some(controller) = services.controller.local() else {
        return Err(HandlerError::Unsupported(format!(
            "private API {api_key} needs a controller; this node is a broker only"
        )));
    };
    let reply: Vec<u8> = match api_key {
        RAFT => match controller.quorum().handle_rpc(body).await {
            Ok(bytes) => bytes.to_vec(),
            Err(e) => {
                tracing::debug!(error = %e, "refused a raft message");
                e.to_reply().to_vec()
            }
        },
        FETCH_METADATA => {
            let req: FetchMetadataRequest = serde_json::from_slice(&body)
                .map_err(|e| HandlerError::Malformed(format!("FETCH_METADATA body: {e}")))?;
            let resp = serve_fetch(controller.log(), req).await;
            serde_json::to_vec(&resp).map_err(|e| HandlerError::Internal(e.to_string()))?
        }
        CONTROLLER_COMMAND => {
            let command = decode_command(&body).map_err(HandlerError::Malformed)?;
            let resp = serve_command(controller, &command).await;
            serde_json::to_vec(&resp).map_err(|e| HandlerError::Internal(e.to_string()))?
        }
        other => {
            return Err(HandlerError::Unsupported(format!(
                "unknown private API {other}"
            )))
        }
    };
    Ok(Response::Frame(internal::encode_response(
        correlation_id,
        &reply,
    )))
}
