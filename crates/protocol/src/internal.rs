//! Gregor's private APIs: the messages nodes of one Gregor cluster exchange that Kafka has no
//! API for (the controller quorum's raft messages, brokers following the metadata log, commands
//! forwarded to the active controller). They travel in Kafka framing on the controller listener
//! — request header v2 (api key, version, correlation id, client id, tagged fields), response
//! header v1 (correlation id, tagged fields) — under API keys far above Kafka's, and are never
//! advertised in ApiVersions. Their bodies are opaque bytes here; the broker encodes them.

use crate::request::{peek_prefix, DecodeError};
use bytes::{BufMut, Bytes, BytesMut};
use kafka_protocol::messages::{RequestHeader, ResponseHeader};
use kafka_protocol::protocol::{Decodable, Encodable};

/// Raft messages of the controller quorum (`gregor-quorum` frames).
pub const RAFT: i16 = 32_000;
/// A broker pulls committed metadata records from a controller.
pub const FETCH_METADATA: i16 = 32_001;
/// A metadata change forwarded to the active controller.
pub const CONTROLLER_COMMAND: i16 = 32_002;

/// Every private API key.
pub const KEYS: &[i16] = &[RAFT, FETCH_METADATA, CONTROLLER_COMMAND];

/// Request header version of the private APIs.
pub const REQUEST_HEADER_VERSION: i16 = 2;
/// Response header version of the private APIs.
pub const RESPONSE_HEADER_VERSION: i16 = 1;

/// Whether `api_key` is one of Gregor's private APIs.
pub fn is_internal(api_key: i16) -> bool {
    KEYS.contains(&api_key)
}

/// Decodes the header of a private request, leaving `frame` at the body.
pub fn decode_header(frame: &mut Bytes) -> Result<(i16, RequestHeader), DecodeError> {
    let prefix = peek_prefix(frame)?;
    if !is_internal(prefix.api_key) {
        return Err(DecodeError::UnknownApiKey(prefix.api_key));
    }
    let header = RequestHeader::decode(frame, REQUEST_HEADER_VERSION)
        .map_err(|e| DecodeError::Header(format!("{e:#}")))?;
    Ok((prefix.api_key, header))
}

/// A complete response frame (size prefix, header v1, `body`).
pub fn encode_response(correlation_id: i32, body: &[u8]) -> BytesMut {
    let mut buf = BytesMut::with_capacity(body.len() + 16);
    buf.put_i32(0);
    // Encoding a header into a BytesMut cannot fail: it only writes fixed fields.
    let _ = ResponseHeader::default()
        .with_correlation_id(correlation_id)
        .encode(&mut buf, RESPONSE_HEADER_VERSION);
    buf.put_slice(body);
    let len = (buf.len() - 4) as i32;
    buf[..4].copy_from_slice(&len.to_be_bytes());
    buf
}

#[cfg(test)]
mod tests {
    use super::*;
    use kafka_protocol::protocol::StrBytes;

    #[test]
    fn header_round_trip_and_refusals() {
        let mut buf = BytesMut::new();
        RequestHeader::default()
            .with_request_api_key(FETCH_METADATA)
            .with_request_api_version(0)
            .with_correlation_id(7)
            .with_client_id(Some(StrBytes::from_static_str("node-2")))
            .encode(&mut buf, REQUEST_HEADER_VERSION)
            .unwrap();
        buf.put_slice(b"body");
        let mut frame = buf.freeze();
        let (key, header) = decode_header(&mut frame).unwrap();
        assert_eq!((key, header.correlation_id), (FETCH_METADATA, 7));
        assert_eq!(&frame[..], b"body");
        // A Kafka API key is not private; a short frame is refused.
        let mut kafka = Bytes::from_static(&[0, 3, 0, 12, 0, 0, 0, 1, 0, 0]);
        assert!(decode_header(&mut kafka).is_err());
        assert!(decode_header(&mut Bytes::from_static(&[0x7d])).is_err());
        let resp = encode_response(7, b"ok");
        assert_eq!(&resp[..], &[0, 0, 0, 7, 0, 0, 0, 7, 0, b'o', b'k']);
    }
}
