//! Record batch compression codecs, wire-compatible with the Apache Kafka Java client.
//!
//! Decompression is streaming and capped: no codec ever holds more than `limit` bytes of output,
//! and size claims made by the compressed data itself (zstd content size, snappy block lengths)
//! are checked against the cap before anything is allocated.

use std::io::{self, Read, Write};

/// Xerial snappy stream magic (`\x82SNAPPY\x00`), as written by the Java client's `SnappyOutputStream`.
pub const XERIAL_MAGIC: [u8; 8] = [0x82, b'S', b'N', b'A', b'P', b'P', b'Y', 0];
/// Xerial header length: magic + version i32 + compatible version i32.
pub const XERIAL_HEADER_LEN: usize = 16;
/// Uncompressed chunk size used by the Java client's xerial `SnappyOutputStream` (32 KiB).
const XERIAL_BLOCK_SIZE: usize = 32 * 1024;

/// Compression codec of a record batch (attribute bits 0-2).
#[repr(u8)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Compression {
    #[default]
    None = 0,
    Gzip = 1,
    Snappy = 2,
    Lz4 = 3,
    Zstd = 4,
}

/// Errors from compressing or decompressing.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CompressionError {
    /// Compression codec id not known (attribute bits 0-2 equal to 5, 6 or 7).
    #[error("unsupported compression codec id {0}")]
    Unsupported(u8),
    /// Decompressed output would exceed the caller's limit.
    #[error("decompressed data exceeds limit of {limit} bytes")]
    TooLarge { limit: usize },
    /// The compressed data is malformed.
    #[error("corrupt compressed data: {0}")]
    Corrupt(String),
}

impl Compression {
    /// Every codec.
    pub const ALL: [Compression; 5] = [
        Compression::None,
        Compression::Gzip,
        Compression::Snappy,
        Compression::Lz4,
        Compression::Zstd,
    ];

    /// Codec from its numeric id (0..=4).
    pub const fn from_id(id: u8) -> Result<Compression, CompressionError> {
        match id {
            0 => Ok(Compression::None),
            1 => Ok(Compression::Gzip),
            2 => Ok(Compression::Snappy),
            3 => Ok(Compression::Lz4),
            4 => Ok(Compression::Zstd),
            other => Err(CompressionError::Unsupported(other)),
        }
    }

    /// Codec from record batch attributes (bits 0-2).
    pub const fn from_attributes(attributes: i16) -> Result<Compression, CompressionError> {
        Self::from_id((attributes & 0x07) as u8)
    }

    /// Codec from its configuration name (`compression.type`), case-insensitive.
    /// `"uncompressed"` (the topic-level spelling) maps to [`Compression::None`].
    /// `"producer"` is not a codec and returns `None`.
    pub fn from_name(name: &str) -> Option<Compression> {
        let n = name.trim();
        [
            ("none", Compression::None),
            ("uncompressed", Compression::None),
            ("gzip", Compression::Gzip),
            ("snappy", Compression::Snappy),
            ("lz4", Compression::Lz4),
            ("zstd", Compression::Zstd),
        ]
        .into_iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(n))
        .map(|(_, c)| c)
    }

    /// Numeric id as stored in attribute bits 0-2.
    #[inline]
    pub const fn id(self) -> u8 {
        self as u8
    }

    /// Kafka's name for the codec (`"none"`, `"gzip"`, `"snappy"`, `"lz4"`, `"zstd"`).
    pub const fn name(self) -> &'static str {
        match self {
            Compression::None => "none",
            Compression::Gzip => "gzip",
            Compression::Snappy => "snappy",
            Compression::Lz4 => "lz4",
            Compression::Zstd => "zstd",
        }
    }

    /// Decompress `input`, failing with [`CompressionError::TooLarge`] rather than producing
    /// (or allocating) more than `limit` bytes of output.
    ///
    /// Snappy accepts both raw snappy blocks (librdkafka) and xerial framing (Java client).
    pub fn decompress(&self, input: &[u8], limit: usize) -> Result<Vec<u8>, CompressionError> {
        match self {
            Compression::None => {
                if input.len() > limit {
                    return Err(CompressionError::TooLarge { limit });
                }
                Ok(input.to_vec())
            }
            Compression::Gzip => {
                read_capped(flate2::read::MultiGzDecoder::new(input), limit, input.len())
            }
            Compression::Snappy => snappy_decompress(input, limit),
            Compression::Lz4 => {
                // lz4_flex treats input ending at a block boundary as a clean EOF; walk the
                // frame structure first so truncated frames are rejected.
                lz4_check_frames(input)?;
                // Frames without block/content checksums (what librdkafka and the Java client
                // write) decode block by block straight into the output.
                if let Some(out) = lz4_decode_direct(input, limit)? {
                    return Ok(out);
                }
                // FrameDecoder reports EOF at each frame's end mark; keep going while input
                // remains so concatenated frames decode.
                let mut rest = input;
                let mut out = initial_buffer(limit, input.len());
                let mut dec = lz4_flex::frame::FrameDecoder::new(&mut rest);
                loop {
                    drain_capped(&mut dec, &mut out, limit)?;
                    if dec.get_ref().is_empty() {
                        break;
                    }
                }
                Ok(out)
            }
            Compression::Zstd => {
                let mut dec = zstd::stream::read::Decoder::with_buffer(input).map_err(corrupt)?;
                // The window buffer is allocated from the frame header's claim; bound it. 2^23
                // (8 MiB) covers every level <= 19 regardless of `limit`; larger windows are only
                // admitted when the caller's limit could actually need them.
                let wlog = ceil_log2(limit).clamp(23, 27);
                dec.window_log_max(wlog).map_err(corrupt)?;
                read_capped(dec, limit, input.len())
            }
        }
    }

    /// Compress `input` the way the Java client does: gzip stream, xerial-framed snappy,
    /// LZ4 frame (64 KiB independent blocks), zstd frame (level 3, no content size).
    pub fn compress(&self, input: &[u8]) -> Result<Vec<u8>, CompressionError> {
        match self {
            Compression::None => Ok(input.to_vec()),
            Compression::Gzip => {
                let mut enc = flate2::write::GzEncoder::new(
                    Vec::with_capacity(input.len() / 2 + 64),
                    flate2::Compression::default(),
                );
                enc.write_all(input).map_err(corrupt)?;
                enc.finish().map_err(corrupt)
            }
            Compression::Snappy => xerial_compress(input),
            Compression::Lz4 => {
                let info = lz4_flex::frame::FrameInfo::new()
                    .block_size(lz4_flex::frame::BlockSize::Max64KB)
                    .block_mode(lz4_flex::frame::BlockMode::Independent);
                let mut enc = lz4_flex::frame::FrameEncoder::with_frame_info(
                    info,
                    Vec::with_capacity(input.len() / 2 + 64),
                );
                enc.write_all(input).map_err(corrupt)?;
                enc.finish()
                    .map_err(|e| CompressionError::Corrupt(e.to_string()))
            }
            Compression::Zstd => {
                let mut enc =
                    zstd::stream::write::Encoder::new(Vec::with_capacity(input.len() / 2 + 64), 3)
                        .map_err(corrupt)?;
                enc.write_all(input).map_err(corrupt)?;
                enc.finish().map_err(corrupt)
            }
        }
    }
}

impl std::fmt::Display for Compression {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl TryFrom<u8> for Compression {
    type Error = CompressionError;
    fn try_from(id: u8) -> Result<Self, Self::Error> {
        Compression::from_id(id)
    }
}

fn corrupt(e: io::Error) -> CompressionError {
    CompressionError::Corrupt(e.to_string())
}

fn ceil_log2(n: usize) -> u32 {
    if n <= 1 {
        0
    } else {
        usize::BITS - (n - 1).leading_zeros()
    }
}

fn initial_buffer(limit: usize, input_len: usize) -> Vec<u8> {
    Vec::with_capacity(input_len.saturating_mul(2).clamp(256, 1 << 20).min(limit))
}

/// Drain `r` into a vector, never holding (or reserving) more than `limit` bytes.
fn read_capped<R: Read>(r: R, limit: usize, hint: usize) -> Result<Vec<u8>, CompressionError> {
    let mut out = initial_buffer(limit, hint);
    drain_capped(r, &mut out, limit)?;
    Ok(out)
}

/// Append everything `r` yields (until it reports EOF) to `out`, failing once `out` would
/// exceed `limit`.
fn drain_capped<R: Read>(
    mut r: R,
    out: &mut Vec<u8>,
    limit: usize,
) -> Result<(), CompressionError> {
    let mut buf = [0u8; 16 * 1024];
    loop {
        let n = match r.read(&mut buf) {
            Ok(0) => return Ok(()),
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(corrupt(e)),
        };
        if n > limit - out.len() {
            return Err(CompressionError::TooLarge { limit });
        }
        reserve_capped(out, n, limit);
        out.extend_from_slice(&buf[..n]);
    }
}

/// Make room for `additional` more bytes (caller guarantees `len + additional <= limit`),
/// growing geometrically but never past `limit`.
fn reserve_capped(out: &mut Vec<u8>, additional: usize, limit: usize) {
    let needed = out.len() + additional;
    if needed > out.capacity() {
        let target = (out.capacity().saturating_mul(2))
            .max(needed)
            .max(4096)
            .min(limit);
        out.reserve_exact(target - out.len());
    }
}

/// Check that `input` is a sequence of complete LZ4 frames (skippable frames allowed) without
/// decompressing anything.
fn lz4_check_frames(input: &[u8]) -> Result<(), CompressionError> {
    fn bad(what: &str) -> CompressionError {
        CompressionError::Corrupt(format!("lz4: {what}"))
    }
    fn take<'a>(input: &'a [u8], pos: &mut usize, n: usize) -> Result<&'a [u8], CompressionError> {
        let end = pos
            .checked_add(n)
            .filter(|&e| e <= input.len())
            .ok_or_else(|| bad("truncated frame"))?;
        let s = &input[*pos..end];
        *pos = end;
        Ok(s)
    }
    fn u32_at(input: &[u8], pos: &mut usize) -> Result<u32, CompressionError> {
        let b = take(input, pos, 4)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }
    if input.is_empty() {
        return Err(bad("empty input"));
    }
    let mut pos = 0;
    while pos < input.len() {
        let magic = u32_at(input, &mut pos)?;
        if magic & 0xFFFF_FFF0 == 0x184D_2A50 {
            let len = u32_at(input, &mut pos)? as usize;
            take(input, &mut pos, len)?;
            continue;
        }
        if magic != 0x184D_2204 {
            return Err(bad("bad frame magic"));
        }
        let flg = take(input, &mut pos, 2)?[0];
        if flg >> 6 != 1 {
            return Err(bad("unsupported frame version"));
        }
        let block_checksum = flg & 0x10 != 0;
        let content_size = flg & 0x08 != 0;
        let content_checksum = flg & 0x04 != 0;
        let dict_id = flg & 0x01 != 0;
        take(
            input,
            &mut pos,
            if content_size { 8 } else { 0 } + if dict_id { 4 } else { 0 } + 1,
        )?;
        loop {
            let block = u32_at(input, &mut pos)?;
            if block == 0 {
                break;
            }
            let len = (block & 0x7FFF_FFFF) as usize + if block_checksum { 4 } else { 0 };
            take(input, &mut pos, len)?;
        }
        if content_checksum {
            take(input, &mut pos, 4)?;
        }
    }
    Ok(())
}

/// Decodes LZ4 frames (already walked by [`lz4_check_frames`]) block by block directly into
/// one output buffer — no intermediate window buffer and no copy through a reader — with linked
/// blocks using the preceding 64 KiB of output as their dictionary. Verifies the frame
/// descriptor checksum as Kafka does. Returns `None` (the caller falls back to lz4_flex's
/// `FrameDecoder`, which verifies them) when a frame carries block or content checksums or a
/// dictionary id.
fn lz4_decode_direct(input: &[u8], limit: usize) -> Result<Option<Vec<u8>>, CompressionError> {
    fn bad(what: &str) -> CompressionError {
        CompressionError::Corrupt(format!("lz4: {what}"))
    }
    fn u32_at(input: &[u8], pos: usize) -> Result<u32, CompressionError> {
        input
            .get(pos..pos + 4)
            .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            .ok_or_else(|| bad("truncated frame"))
    }
    const WINDOW: usize = 64 * 1024;
    // `buf[..len]` is the output so far; `buf[len..]` is zeroed room for the next block.
    let mut buf: Vec<u8> = Vec::new();
    let mut len = 0usize;
    let mut pos = 0usize;
    while pos < input.len() {
        let magic = u32_at(input, pos)?;
        pos += 4;
        if magic & 0xFFFF_FFF0 == 0x184D_2A50 {
            pos += 4 + u32_at(input, pos)? as usize;
            continue;
        }
        if magic != 0x184D_2204 {
            return Err(bad("bad frame magic"));
        }
        let desc_start = pos;
        let (flg, bd) = match input.get(pos..pos + 2) {
            Some(b) => (b[0], b[1]),
            None => return Err(bad("truncated frame")),
        };
        if flg & (0x10 | 0x04 | 0x01) != 0 {
            return Ok(None);
        }
        let independent = flg & 0x20 != 0;
        let desc_len = 2 + if flg & 0x08 != 0 { 8 } else { 0 };
        let desc = input
            .get(desc_start..desc_start + desc_len)
            .ok_or_else(|| bad("truncated frame"))?;
        let hc = *input
            .get(desc_start + desc_len)
            .ok_or_else(|| bad("truncated frame"))?;
        if (twox_hash::XxHash32::oneshot(0, desc) >> 8) as u8 != hc {
            return Err(bad("frame descriptor checksum mismatch"));
        }
        pos = desc_start + desc_len + 1;
        let max_block = match (bd >> 4) & 0x07 {
            4 => 64 * 1024,
            5 => 256 * 1024,
            6 => 1024 * 1024,
            7 => 4 * 1024 * 1024,
            _ => return Err(bad("invalid maximum block size")),
        };
        let frame_start = len;
        loop {
            let block = u32_at(input, pos)?;
            pos += 4;
            if block == 0 {
                break;
            }
            let size = (block & 0x7FFF_FFFF) as usize;
            let data = input
                .get(pos..pos + size)
                .ok_or_else(|| bad("truncated frame"))?;
            pos += size;
            if size > max_block {
                return Err(bad("block larger than the frame's maximum block size"));
            }
            // Room for a whole block, never past the limit.
            let room = max_block.min(limit - len);
            if buf.len() < len + room {
                let target = (buf.len().saturating_mul(2)).max(len + room).min(limit);
                buf.resize(target, 0);
            }
            if block & 0x8000_0000 != 0 {
                if size > limit - len {
                    return Err(CompressionError::TooLarge { limit });
                }
                buf[len..len + size].copy_from_slice(data);
                len += size;
                continue;
            }
            let dict_start = if independent {
                len
            } else {
                len.saturating_sub(WINDOW).max(frame_start)
            };
            let (before, after) = buf.split_at_mut(len);
            let out = &mut after[..room];
            match lz4_flex::block::decompress_into_with_dict(data, out, &before[dict_start..]) {
                Ok(n) => len += n,
                Err(lz4_flex::block::DecompressError::OutputTooSmall { .. })
                    if room < max_block =>
                {
                    return Err(CompressionError::TooLarge { limit })
                }
                Err(e) => return Err(bad(&e.to_string())),
            }
        }
    }
    buf.truncate(len);
    Ok(Some(buf))
}

fn snappy_decompress(input: &[u8], limit: usize) -> Result<Vec<u8>, CompressionError> {
    if input.len() >= XERIAL_HEADER_LEN && input[..8] == XERIAL_MAGIC {
        xerial_decompress(input, limit)
    } else {
        let mut out = Vec::new();
        snappy_block_into(input, &mut out, limit)?;
        Ok(out)
    }
}

/// Decompress one raw snappy block, appending to `out`, checking the claimed length first.
fn snappy_block_into(
    block: &[u8],
    out: &mut Vec<u8>,
    limit: usize,
) -> Result<(), CompressionError> {
    let claimed =
        snap::raw::decompress_len(block).map_err(|e| CompressionError::Corrupt(e.to_string()))?;
    if claimed > limit - out.len() {
        return Err(CompressionError::TooLarge { limit });
    }
    let start = out.len();
    reserve_capped(out, claimed, limit);
    out.resize(start + claimed, 0);
    let written = snap::raw::Decoder::new()
        .decompress(block, &mut out[start..])
        .map_err(|e| CompressionError::Corrupt(e.to_string()))?;
    out.truncate(start + written);
    Ok(())
}

fn xerial_decompress(input: &[u8], limit: usize) -> Result<Vec<u8>, CompressionError> {
    let mut out = Vec::new();
    let mut pos = XERIAL_HEADER_LEN;
    while pos < input.len() {
        let rest = &input[pos..];
        // Concatenated xerial streams repeat the header.
        if rest.len() >= XERIAL_HEADER_LEN && rest[..8] == XERIAL_MAGIC {
            pos += XERIAL_HEADER_LEN;
            continue;
        }
        if rest.len() < 4 {
            return Err(CompressionError::Corrupt(
                "truncated xerial block length".into(),
            ));
        }
        let len = i32::from_be_bytes([rest[0], rest[1], rest[2], rest[3]]);
        if len < 0 || len as usize > rest.len() - 4 {
            return Err(CompressionError::Corrupt(format!(
                "bad xerial block length {len}"
            )));
        }
        let len = len as usize;
        snappy_block_into(&rest[4..4 + len], &mut out, limit)?;
        pos += 4 + len;
    }
    Ok(out)
}

fn xerial_compress(input: &[u8]) -> Result<Vec<u8>, CompressionError> {
    let mut out = Vec::with_capacity(XERIAL_HEADER_LEN + input.len() / 2 + 64);
    out.extend_from_slice(&XERIAL_MAGIC);
    out.extend_from_slice(&1i32.to_be_bytes()); // version
    out.extend_from_slice(&1i32.to_be_bytes()); // minimum compatible version
    let mut enc = snap::raw::Encoder::new();
    let mut scratch = vec![0u8; snap::raw::max_compress_len(XERIAL_BLOCK_SIZE.min(input.len()))];
    for chunk in input.chunks(XERIAL_BLOCK_SIZE) {
        let n = enc
            .compress(chunk, &mut scratch)
            .map_err(|e| CompressionError::Corrupt(e.to_string()))?;
        out.extend_from_slice(&(n as i32).to_be_bytes());
        out.extend_from_slice(&scratch[..n]);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_ids() {
        for c in Compression::ALL {
            assert_eq!(Compression::from_name(c.name()), Some(c));
            assert_eq!(Compression::from_id(c.id()).unwrap(), c);
            assert_eq!(
                Compression::from_attributes(c.id() as i16 | 0x18).unwrap(),
                c
            );
        }
        assert_eq!(
            Compression::from_name("uncompressed"),
            Some(Compression::None)
        );
        assert_eq!(Compression::from_name("producer"), None);
        for id in 5..8i16 {
            assert!(matches!(
                Compression::from_attributes(id),
                Err(CompressionError::Unsupported(x)) if x as i16 == id
            ));
        }
    }

    /// Text-like data with long-range repeats, so linked blocks really reference the
    /// previous block.
    fn lz4_sample(n: usize) -> Vec<u8> {
        let mut x: u32 = 12345;
        let words: Vec<Vec<u8>> = (0..64)
            .map(|i| format!("word{i}-{}", i * 7919).into_bytes())
            .collect();
        let mut out = Vec::with_capacity(n);
        while out.len() < n {
            x = x.wrapping_mul(1_103_515_245).wrapping_add(12345);
            if x.is_multiple_of(5) {
                out.push((x >> 16) as u8);
            } else {
                out.extend_from_slice(&words[(x >> 8) as usize % words.len()]);
            }
        }
        out.truncate(n);
        out
    }

    fn lz4_frame(data: &[u8], info: lz4_flex::frame::FrameInfo) -> Vec<u8> {
        let mut enc = lz4_flex::frame::FrameEncoder::with_frame_info(info, Vec::new());
        enc.write_all(data).unwrap();
        enc.finish().unwrap()
    }

    #[test]
    fn lz4_direct_decoder_matches_frame_decoder() {
        use lz4_flex::frame::{BlockMode, BlockSize, FrameInfo};
        for size in [0usize, 1, 1000, 65_536, 65_537, 300_000, 2_500_000] {
            let data = lz4_sample(size);
            for bs in [
                BlockSize::Max64KB,
                BlockSize::Max256KB,
                BlockSize::Max1MB,
                BlockSize::Max4MB,
            ] {
                for mode in [BlockMode::Independent, BlockMode::Linked] {
                    for content_size in [false, true] {
                        let mut info = FrameInfo::new().block_size(bs).block_mode(mode);
                        if content_size {
                            info = info.content_size(Some(data.len() as u64));
                        }
                        let frame = lz4_frame(&data, info);
                        let direct = lz4_decode_direct(&frame, usize::MAX >> 1)
                            .unwrap()
                            .expect("no checksums: direct path");
                        assert_eq!(direct, data, "size {size} {bs:?} {mode:?}");
                        // Concatenated frames decode to the concatenation.
                        let two = [frame.clone(), frame].concat();
                        let out = Compression::Lz4.decompress(&two, usize::MAX >> 1).unwrap();
                        assert_eq!(out, [data.clone(), data.clone()].concat());
                    }
                }
            }
        }
    }

    #[test]
    fn lz4_direct_decoder_limits_and_corruption() {
        use lz4_flex::frame::{BlockMode, BlockSize, FrameInfo};
        let data = lz4_sample(500_000);
        let info = FrameInfo::new()
            .block_size(BlockSize::Max64KB)
            .block_mode(BlockMode::Linked);
        let frame = lz4_frame(&data, info.clone());
        // Exactly at the limit decodes; one byte less is TooLarge, never a partial result.
        assert_eq!(
            Compression::Lz4.decompress(&frame, data.len()).unwrap(),
            data
        );
        assert_eq!(
            Compression::Lz4.decompress(&frame, data.len() - 1),
            Err(CompressionError::TooLarge {
                limit: data.len() - 1
            })
        );
        // A flipped descriptor bit fails the header checksum.
        let mut bad = frame.clone();
        bad[5] ^= 0x40;
        assert!(matches!(
            Compression::Lz4.decompress(&bad, usize::MAX >> 1),
            Err(CompressionError::Corrupt(_))
        ));
        // Garbage inside a block is an error, not a panic.
        for i in [20usize, 100, 1000, frame.len() / 2] {
            let mut bad = frame.clone();
            for b in &mut bad[i..i + 8] {
                *b = 0xFF;
            }
            let _ = Compression::Lz4.decompress(&bad, 10_000_000);
        }
        // Uncompressed blocks (random bytes do not compress) are copied through.
        let mut x: u64 = 99;
        let noise: Vec<u8> = (0..200_000)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x as u8
            })
            .collect();
        let frame = lz4_frame(&noise, info.clone());
        assert_eq!(
            lz4_decode_direct(&frame, usize::MAX >> 1).unwrap().unwrap(),
            noise
        );
        // Checksummed frames take the FrameDecoder path and still decode.
        let frame = lz4_frame(&data, info.content_checksum(true));
        assert_eq!(lz4_decode_direct(&frame, usize::MAX >> 1).unwrap(), None);
        assert_eq!(
            Compression::Lz4
                .decompress(&frame, usize::MAX >> 1)
                .unwrap(),
            data
        );
    }

    #[test]
    fn ceil_log2_values() {
        assert_eq!(ceil_log2(0), 0);
        assert_eq!(ceil_log2(1), 0);
        assert_eq!(ceil_log2(2), 1);
        assert_eq!(ceil_log2(1 << 20), 20);
        assert_eq!(ceil_log2((1 << 20) + 1), 21);
    }
}
