//! Regression tests for hostile request bytes: none may panic, abort, or allocate from a count
//! read off the wire. Upstream `kafka-protocol` 0.18 panicked on frames under four bytes and
//! preallocated arrays from the wire count (a five-byte Metadata body asked for gigabytes; a
//! count near i32::MAX aborted the process).

use bytes::{BufMut, Bytes, BytesMut};
use gregor_protocol::messages::ApiKey;
use gregor_protocol::request::{decode_body, decode_header, DecodeError};

fn header(api: i16, version: i16, flexible: bool) -> BytesMut {
    let mut b = BytesMut::new();
    b.put_i16(api);
    b.put_i16(version);
    b.put_i32(7);
    b.put_i16(1);
    b.put_u8(b'c');
    if flexible {
        b.put_u8(0); // no tagged fields
    }
    b
}

#[test]
fn frames_shorter_than_a_header_are_errors() {
    for len in 0..8 {
        let mut b = Bytes::from(vec![0u8; len]);
        assert!(
            matches!(decode_header(&mut b), Err(DecodeError::TooShort(_))),
            "len {len}"
        );
    }
}

#[test]
fn unknown_api_key_is_an_error() {
    let mut b = header(999, 0, false).freeze();
    assert!(matches!(
        decode_header(&mut b),
        Err(DecodeError::UnknownApiKey(999))
    ));
    let mut b = header(-1, 0, false).freeze();
    assert!(decode_header(&mut b).is_err());
}

#[test]
fn metadata_array_count_near_i32_max_is_rejected_without_allocating() {
    // Metadata v1: topics is a non-compact nullable array; count i32::MAX then one byte.
    let mut b = header(3, 1, false);
    b.put_i32(i32::MAX);
    b.put_u8(0);
    let mut frame = b.freeze();
    let (api, h) = decode_header(&mut frame).unwrap();
    assert_eq!(api, ApiKey::Metadata);
    let err = decode_body(api, h.request_api_version, &mut frame).unwrap_err();
    assert!(err.to_string().contains("exceeds remaining"), "{err}");
}

#[test]
fn five_byte_metadata_body_asking_for_gigabytes_is_rejected() {
    let mut b = header(3, 4, false);
    b.put_slice(&[0x10, 0x00, 0x00, 0x00, 0x01]);
    let mut frame = b.freeze();
    let (api, h) = decode_header(&mut frame).unwrap();
    assert!(decode_body(api, h.request_api_version, &mut frame).is_err());
}

#[test]
fn compact_array_count_near_u32_max_is_rejected() {
    // Metadata v12 (flexible): topics is a compact array, length as unsigned varint + 1.
    let mut b = header(3, 12, true);
    b.put_slice(&[0xff, 0xff, 0xff, 0xff, 0x0f]); // u32::MAX
    let mut frame = b.freeze();
    let (api, h) = decode_header(&mut frame).unwrap();
    assert!(decode_body(api, h.request_api_version, &mut frame).is_err());
    // Produce v9: topic_data compact array with a huge count.
    let mut b = header(0, 9, true);
    b.put_u8(0); // transactional id: null compact string
    b.put_i16(1); // acks
    b.put_i32(1000); // timeout
    b.put_slice(&[0xfe, 0xff, 0xff, 0xff, 0x0f]);
    let mut frame = b.freeze();
    let (api, h) = decode_header(&mut frame).unwrap();
    assert!(decode_body(api, h.request_api_version, &mut frame).is_err());
}

/// xorshift64*: deterministic pseudo-random bytes without extra dependencies.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
}

#[test]
fn random_bodies_for_every_api_and_version_never_panic() {
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    for api in ApiKey::iter() {
        let range = api.valid_versions();
        for version in range.min..=range.max {
            for round in 0..40 {
                let len = (rng.next() % 64) as usize;
                let mut body: Vec<u8> = (0..len).map(|_| rng.next() as u8).collect();
                // Bias some rounds toward huge counts at the start of the body.
                if round % 4 == 0 && len >= 4 {
                    body[..4].copy_from_slice(&[0x7f, 0xff, 0xff, 0xff]);
                }
                let mut b = Bytes::from(body);
                let _ = decode_body(api, version, &mut b);
            }
        }
    }
}
