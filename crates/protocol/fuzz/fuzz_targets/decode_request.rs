//! Fuzz the request path exactly as a connection runs it: frame check, header, body; and the
//! record-batch validator that Produce runs on the body's records.
#![no_main]

use bytes::Bytes;
use gregor_protocol::request::{decode_body, decode_header};
use gregor_protocol::RecordBatch;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = gregor_protocol::frame::check(data, 1 << 20);
    let mut frame = Bytes::copy_from_slice(data);
    if let Ok((api, header)) = decode_header(&mut frame) {
        let _ = decode_body(api, header.request_api_version, &mut frame);
    }
    if let Ok(batches) = RecordBatch::split(Bytes::copy_from_slice(data)) {
        for b in batches {
            let _ = b.validate(1 << 20);
        }
    }
});
