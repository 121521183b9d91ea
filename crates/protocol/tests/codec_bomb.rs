//! Decompression bombs: 100 MB of zeros must be refused under a 1 MB cap quickly and without
//! allocating anywhere near 100 MB. A counting global allocator measures the peak; this binary
//! holds a single test so nothing else allocates concurrently.

// A global allocator can only be written with `unsafe`; it forwards to `System`.
#![allow(unsafe_code)]

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use bytes::Bytes;
use gregor_protocol::compression::{Compression, CompressionError};
use gregor_protocol::{BatchError, RecordBatch};

struct Counting;
static CURRENT: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let p = System.alloc(layout);
        if !p.is_null() {
            let now = CURRENT.fetch_add(layout.size(), Ordering::Relaxed) + layout.size();
            PEAK.fetch_max(now, Ordering::Relaxed);
        }
        p
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        System.dealloc(ptr, layout);
        CURRENT.fetch_sub(layout.size(), Ordering::Relaxed);
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

const MB: usize = 1 << 20;
const CAP: usize = MB;

/// Peak bytes allocated (above the level at entry) while running `f`.
fn peak_during<T>(f: impl FnOnce() -> T) -> (T, usize) {
    let base = CURRENT.load(Ordering::Relaxed);
    PEAK.store(base, Ordering::Relaxed);
    let out = f();
    (out, PEAK.load(Ordering::Relaxed) - base)
}

/// A hand-made zstd frame: content size claimed as 2^40, 1 MiB window, `blocks` RLE blocks of
/// 128 KiB zeros each.
fn zstd_rle_bomb(blocks: usize) -> Vec<u8> {
    let mut f = 0xFD2FB528u32.to_le_bytes().to_vec();
    f.push(0b1100_0000); // FCS field 8 bytes, not single segment, no checksum, no dict
    f.push(10 << 3); // window descriptor: 2^(10+10) = 1 MiB
    f.extend_from_slice(&(1u64 << 40).to_le_bytes());
    for i in 0..blocks {
        let last = (i + 1 == blocks) as u32;
        let header = last | (1 << 1) | ((128 * 1024) << 3); // RLE block
        f.extend_from_slice(&header.to_le_bytes()[..3]);
        f.push(0);
    }
    f
}

/// Wrap a compressed payload into a batch claiming one record, with a valid CRC.
fn batch_with_payload(c: Compression, payload: &[u8]) -> RecordBatch {
    let mut b = Vec::new();
    b.extend_from_slice(&0i64.to_be_bytes());
    b.extend_from_slice(&((49 + payload.len()) as i32).to_be_bytes());
    b.extend_from_slice(&(-1i32).to_be_bytes());
    b.push(2);
    b.extend_from_slice(&0u32.to_be_bytes());
    b.extend_from_slice(&(c.id() as i16).to_be_bytes());
    b.extend_from_slice(&0i32.to_be_bytes());
    b.extend_from_slice(&[0; 16]);
    b.extend_from_slice(&(-1i64).to_be_bytes());
    b.extend_from_slice(&(-1i16).to_be_bytes());
    b.extend_from_slice(&(-1i32).to_be_bytes());
    b.extend_from_slice(&1i32.to_be_bytes());
    b.extend_from_slice(payload);
    let crc = crc32c::crc32c(&b[21..]);
    b[17..21].copy_from_slice(&crc.to_be_bytes());
    RecordBatch::parse(Bytes::from(b)).unwrap()
}

#[test]
fn bombs_are_capped() {
    let zeros = vec![0u8; MB];
    let mut bombs: Vec<(Compression, Vec<u8>)> = Vec::new();
    // gzip: 100 members of 1 MiB zeros (MultiGz decodes all members) = 100 MiB.
    let member = Compression::Gzip.compress(&zeros).unwrap();
    bombs.push((Compression::Gzip, member.repeat(100)));
    // zstd: streaming frames without content size, 100 x 1 MiB.
    let frame = Compression::Zstd.compress(&zeros).unwrap();
    bombs.push((Compression::Zstd, frame.repeat(100)));
    // zstd: one frame lying about a 1 TiB content size, 100 MiB of RLE blocks.
    bombs.push((Compression::Zstd, zstd_rle_bomb(800)));
    // lz4: frames of 1 MiB zeros.
    let frame = Compression::Lz4.compress(&zeros).unwrap();
    bombs.push((Compression::Lz4, frame.repeat(100)));
    // snappy: xerial stream of 100 MiB in 32 KiB blocks (header + blocks repeated).
    let x = Compression::Snappy.compress(&zeros).unwrap();
    let mut xs = x.clone();
    for _ in 1..100 {
        xs.extend_from_slice(&x[16..]);
    }
    bombs.push((Compression::Snappy, xs));
    drop(zeros);

    for (c, bomb) in &bombs {
        let start = Instant::now();
        let (res, peak) = peak_during(|| c.decompress(bomb, CAP));
        assert!(
            matches!(res, Err(CompressionError::TooLarge { limit: CAP })),
            "{c}: {:?}",
            res.map(|v| v.len())
        );
        assert!(peak < 16 * MB, "{c}: peak allocation {peak}");
        assert!(start.elapsed().as_secs() < 10, "{c}: too slow");

        let batch = batch_with_payload(*c, bomb);
        let (res, peak) = peak_during(|| batch.validate(CAP));
        assert_eq!(res.unwrap_err(), BatchError::TooLarge(CAP), "{c}");
        assert!(peak < 16 * MB, "{c}: validate peak allocation {peak}");
        let (res, peak) = peak_during(|| batch.records(CAP));
        assert!(
            matches!(res, Err(BatchError::TooLarge(CAP))),
            "{c}: {:?}",
            res.map(|v| v.len())
        );
        assert!(peak < 16 * MB, "{c}: records peak allocation {peak}");
    }

    // A frame declaring a 128 MiB window and no content size is refused before the decoder
    // allocates its window.
    let mut wide = zstd_rle_bomb(1);
    wide[5] = 17 << 3; // window 2^27
    let (res, peak) = peak_during(|| Compression::Zstd.decompress(&wide, CAP));
    assert!(
        matches!(res, Err(CompressionError::Corrupt(_))),
        "{:?}",
        res.map(|v| v.len())
    );
    assert!(peak < 16 * MB, "peak {peak}");

    // Within the cap the decompressed output is exact and the allocation stays near it.
    let (res, peak) = peak_during(|| Compression::Zstd.decompress(&zstd_rle_bomb(4), MB));
    assert!(
        res.is_err(),
        "content size lie must be detected: {:?}",
        res.map(|v| v.len())
    );
    assert!(peak < 16 * MB, "peak {peak}");
}
