//! Response framing: `i32` size, response header (v0, or v1 with tagged fields for flexible
//! versions; ApiVersions always uses v0), then the body.

use bytes::{BufMut, BytesMut};
use kafka_protocol::messages::{ApiKey, ResponseHeader};
use kafka_protocol::protocol::Encodable;
use thiserror::Error;

/// A response could not be encoded (a bug on our side, e.g. a field set that the version lacks).
#[derive(Debug, Error)]
#[error("cannot encode {api:?} v{version} response: {msg}")]
pub struct EncodeError {
    /// API of the response.
    pub api: ApiKey,
    /// Version being encoded.
    pub version: i16,
    /// What went wrong.
    pub msg: String,
}

/// Encodes a complete response frame, size prefix included.
pub fn encode_response<R: Encodable>(
    api: ApiKey,
    version: i16,
    correlation_id: i32,
    body: &R,
) -> Result<BytesMut, EncodeError> {
    let err = |e: &dyn std::fmt::Display| EncodeError {
        api,
        version,
        msg: e.to_string(),
    };
    let mut buf = BytesMut::with_capacity(256);
    buf.put_i32(0);
    let header_version = api.response_header_version(version);
    ResponseHeader::default()
        .with_correlation_id(correlation_id)
        .encode(&mut buf, header_version)
        .map_err(|e| err(&e))?;
    body.encode(&mut buf, version).map_err(|e| err(&e))?;
    let len = (buf.len() - 4) as i32;
    buf[..4].copy_from_slice(&len.to_be_bytes());
    Ok(buf)
}
