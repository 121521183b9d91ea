//! Request decoding, guarded against hostile input.
//!
//! `kafka-protocol`'s own `decode_request_header_from_buffer` panics on frames shorter than four
//! bytes and (upstream) preallocates arrays from counts read off the wire. Gregor therefore:
//! 1. checks the frame holds at least the fixed part of a header (key, version, correlation id)
//!    before reading it, and maps unknown API keys to an error instead of a panic;
//! 2. decodes bodies with the vendored, patched `kafka-protocol` whose array decoders refuse a
//!    count larger than the bytes that remain (see `vendor/kafka-protocol/PATCHED.md`).

use bytes::{Buf, Bytes};
use kafka_protocol::messages::{ApiKey, RequestHeader, RequestKind};
use kafka_protocol::protocol::Decodable;
use thiserror::Error;

/// Bytes of the fixed header prefix: api key (2), api version (2), correlation id (4).
pub const FIXED_HEADER_LEN: usize = 8;

/// Why a request could not be decoded. The broker answers these by closing the connection,
/// except where Kafka specifies an error response (ApiVersions with an unknown version).
#[derive(Debug, Error)]
pub enum DecodeError {
    /// The frame is shorter than the fixed header.
    #[error("request of {0} bytes is shorter than a request header")]
    TooShort(usize),
    /// The API key is not one Kafka defines.
    #[error("unknown api key {0}")]
    UnknownApiKey(i16),
    /// The header could not be decoded.
    #[error("malformed request header: {0}")]
    Header(String),
    /// The body could not be decoded.
    #[error("malformed {api:?} v{version} request body: {msg}")]
    Body {
        /// API of the request.
        api: ApiKey,
        /// Version of the request.
        version: i16,
        /// What went wrong.
        msg: String,
    },
}

/// The fixed prefix of every request header, readable even when the rest is not.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HeaderPrefix {
    /// Raw API key.
    pub api_key: i16,
    /// Requested API version.
    pub api_version: i16,
    /// Correlation id to echo in the response.
    pub correlation_id: i32,
}

/// Reads the fixed header prefix without consuming anything.
pub fn peek_prefix(frame: &[u8]) -> Result<HeaderPrefix, DecodeError> {
    if frame.len() < FIXED_HEADER_LEN {
        return Err(DecodeError::TooShort(frame.len()));
    }
    Ok(HeaderPrefix {
        api_key: i16::from_be_bytes([frame[0], frame[1]]),
        api_version: i16::from_be_bytes([frame[2], frame[3]]),
        correlation_id: i32::from_be_bytes([frame[4], frame[5], frame[6], frame[7]]),
    })
}

/// Decodes the request header at the start of `frame`, leaving `frame` at the body.
pub fn decode_header(frame: &mut Bytes) -> Result<(ApiKey, RequestHeader), DecodeError> {
    let prefix = peek_prefix(frame)?;
    let api_key =
        ApiKey::try_from(prefix.api_key).map_err(|_| DecodeError::UnknownApiKey(prefix.api_key))?;
    let header_version = api_key.request_header_version(prefix.api_version);
    let header = RequestHeader::decode(frame, header_version)
        .map_err(|e| DecodeError::Header(format!("{e:#}")))?;
    Ok((api_key, header))
}

/// Decodes a request body of the given API and version.
///
/// The caller must have checked that the version is one it supports.
pub fn decode_body(
    api: ApiKey,
    version: i16,
    body: &mut Bytes,
) -> Result<RequestKind, DecodeError> {
    RequestKind::decode(api, body, version).map_err(|e| DecodeError::Body {
        api,
        version,
        msg: format!("{e:#}"),
    })
}

/// Decodes a body as a concrete request type.
pub fn decode_as<T: Decodable>(
    api: ApiKey,
    version: i16,
    body: &mut Bytes,
) -> Result<T, DecodeError> {
    T::decode(body, version).map_err(|e| DecodeError::Body {
        api,
        version,
        msg: format!("{e:#}"),
    })
}

/// Whether the whole body was consumed (trailing bytes are tolerated by Kafka; exposed for tests).
pub fn fully_consumed(body: &Bytes) -> bool {
    !body.has_remaining()
}
