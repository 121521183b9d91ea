//! Kafka variable-length integers.
//!
//! * `varint` / `varlong`: zig-zag encoded signed 32/64-bit values (protobuf style), as used in
//!   record batch v2 records.
//! * `unsigned_varint` / `unsigned_varlong`: plain base-128 encodings, as used by flexible
//!   (compact) protocol versions.
//!
//! Decoding works over a `&[u8]` with a `usize` cursor that is advanced only on success. Encodings
//! longer than the maximum (5 bytes for 32-bit, 10 bytes for 64-bit), or whose final byte carries
//! bits that do not fit the target width, are rejected as [`VarintError::Overlong`]. Nothing here
//! allocates.

use bytes::BufMut;

/// Decoding error for varints and the primitive reads of [`Cursor`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum VarintError {
    /// The input ended before the value was complete.
    #[error("truncated input")]
    Truncated,
    /// The encoding is longer than allowed for the target width.
    #[error("overlong or out-of-range varint")]
    Overlong,
}

/// Maximum encoded length of a 32-bit varint.
pub const MAX_VARINT_LEN: usize = 5;
/// Maximum encoded length of a 64-bit varlong.
pub const MAX_VARLONG_LEN: usize = 10;

/// Decode an unsigned base-128 32-bit integer at `buf[*pos..]`, advancing `pos` on success.
#[inline]
pub fn read_unsigned_varint(buf: &[u8], pos: &mut usize) -> Result<u32, VarintError> {
    let start = *pos;
    let b0 = *buf.get(start).ok_or(VarintError::Truncated)?;
    if b0 < 0x80 {
        *pos = start + 1;
        return Ok(b0 as u32);
    }
    let mut value = (b0 & 0x7f) as u32;
    let mut i = 1;
    loop {
        let b = *buf.get(start + i).ok_or(VarintError::Truncated)?;
        if i == MAX_VARINT_LEN - 1 {
            // 5th byte: only 4 value bits left, no continuation.
            if b > 0x0f {
                return Err(VarintError::Overlong);
            }
            value |= (b as u32) << 28;
            *pos = start + MAX_VARINT_LEN;
            return Ok(value);
        }
        value |= ((b & 0x7f) as u32) << (7 * i);
        i += 1;
        if b < 0x80 {
            *pos = start + i;
            return Ok(value);
        }
    }
}

/// Decode an unsigned base-128 64-bit integer at `buf[*pos..]`, advancing `pos` on success.
#[inline]
pub fn read_unsigned_varlong(buf: &[u8], pos: &mut usize) -> Result<u64, VarintError> {
    let start = *pos;
    let b0 = *buf.get(start).ok_or(VarintError::Truncated)?;
    if b0 < 0x80 {
        *pos = start + 1;
        return Ok(b0 as u64);
    }
    let mut value = (b0 & 0x7f) as u64;
    let mut i = 1;
    loop {
        let b = *buf.get(start + i).ok_or(VarintError::Truncated)?;
        if i == MAX_VARLONG_LEN - 1 {
            // 10th byte: only 1 value bit left, no continuation.
            if b > 0x01 {
                return Err(VarintError::Overlong);
            }
            value |= (b as u64) << 63;
            *pos = start + MAX_VARLONG_LEN;
            return Ok(value);
        }
        value |= ((b & 0x7f) as u64) << (7 * i);
        i += 1;
        if b < 0x80 {
            *pos = start + i;
            return Ok(value);
        }
    }
}

/// Decode a zig-zag signed 32-bit varint at `buf[*pos..]`, advancing `pos` on success.
#[inline]
pub fn read_varint(buf: &[u8], pos: &mut usize) -> Result<i32, VarintError> {
    let raw = read_unsigned_varint(buf, pos)?;
    Ok(((raw >> 1) as i32) ^ -((raw & 1) as i32))
}

/// Decode a zig-zag signed 64-bit varlong at `buf[*pos..]`, advancing `pos` on success.
#[inline]
pub fn read_varlong(buf: &[u8], pos: &mut usize) -> Result<i64, VarintError> {
    let raw = read_unsigned_varlong(buf, pos)?;
    Ok(((raw >> 1) as i64) ^ -((raw & 1) as i64))
}

#[inline]
const fn zigzag32(v: i32) -> u32 {
    ((v << 1) ^ (v >> 31)) as u32
}

#[inline]
const fn zigzag64(v: i64) -> u64 {
    ((v << 1) ^ (v >> 63)) as u64
}

/// Encoded length of an unsigned 32-bit varint.
#[inline]
pub const fn unsigned_varint_len(v: u32) -> usize {
    let bits = 32 - (v | 1).leading_zeros() as usize;
    bits.div_ceil(7)
}

/// Encoded length of an unsigned 64-bit varlong.
#[inline]
pub const fn unsigned_varlong_len(v: u64) -> usize {
    let bits = 64 - (v | 1).leading_zeros() as usize;
    bits.div_ceil(7)
}

/// Encoded length of a zig-zag 32-bit varint.
#[inline]
pub const fn varint_len(v: i32) -> usize {
    unsigned_varint_len(zigzag32(v))
}

/// Encoded length of a zig-zag 64-bit varlong.
#[inline]
pub const fn varlong_len(v: i64) -> usize {
    unsigned_varlong_len(zigzag64(v))
}

/// Append an unsigned 32-bit varint.
#[inline]
pub fn put_unsigned_varint<B: BufMut + ?Sized>(out: &mut B, mut v: u32) {
    while v >= 0x80 {
        out.put_u8((v as u8) | 0x80);
        v >>= 7;
    }
    out.put_u8(v as u8);
}

/// Append an unsigned 64-bit varlong.
#[inline]
pub fn put_unsigned_varlong<B: BufMut + ?Sized>(out: &mut B, mut v: u64) {
    while v >= 0x80 {
        out.put_u8((v as u8) | 0x80);
        v >>= 7;
    }
    out.put_u8(v as u8);
}

/// Append a zig-zag 32-bit varint.
#[inline]
pub fn put_varint<B: BufMut + ?Sized>(out: &mut B, v: i32) {
    put_unsigned_varint(out, zigzag32(v))
}

/// Append a zig-zag 64-bit varlong.
#[inline]
pub fn put_varlong<B: BufMut + ?Sized>(out: &mut B, v: i64) {
    put_unsigned_varlong(out, zigzag64(v))
}

/// A forward-only reader over a byte slice for big-endian primitives and varints.
///
/// Every read either succeeds and advances, or fails and leaves the position unchanged.
#[derive(Debug, Clone)]
pub struct Cursor<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Cursor<'a> {
    /// A cursor at the start of `buf`.
    #[inline]
    pub const fn new(buf: &'a [u8]) -> Self {
        Cursor { buf, pos: 0 }
    }

    /// A cursor over `buf` starting at `pos` (clamped to `buf.len()`).
    #[inline]
    pub fn at(buf: &'a [u8], pos: usize) -> Self {
        Cursor {
            buf,
            pos: pos.min(buf.len()),
        }
    }

    /// Current offset into the underlying slice.
    #[inline]
    pub const fn position(&self) -> usize {
        self.pos
    }

    /// Bytes left to read.
    #[inline]
    pub const fn remaining(&self) -> usize {
        self.buf.len() - self.pos
    }

    /// `true` when all bytes were consumed.
    #[inline]
    pub const fn is_empty(&self) -> bool {
        self.pos >= self.buf.len()
    }

    /// The underlying slice.
    #[inline]
    pub const fn get_ref(&self) -> &'a [u8] {
        self.buf
    }

    /// Take the next `n` bytes.
    #[inline]
    pub fn read_bytes(&mut self, n: usize) -> Result<&'a [u8], VarintError> {
        if n > self.remaining() {
            return Err(VarintError::Truncated);
        }
        let s = &self.buf[self.pos..self.pos + n];
        self.pos += n;
        Ok(s)
    }

    /// Skip `n` bytes.
    #[inline]
    pub fn skip(&mut self, n: usize) -> Result<(), VarintError> {
        self.read_bytes(n).map(|_| ())
    }

    #[inline]
    fn read_array<const N: usize>(&mut self) -> Result<[u8; N], VarintError> {
        let s = self.read_bytes(N)?;
        let mut a = [0u8; N];
        a.copy_from_slice(s);
        Ok(a)
    }

    /// Read one byte.
    #[inline]
    pub fn read_u8(&mut self) -> Result<u8, VarintError> {
        Ok(self.read_array::<1>()?[0])
    }

    /// Read a signed byte.
    #[inline]
    pub fn read_i8(&mut self) -> Result<i8, VarintError> {
        Ok(self.read_u8()? as i8)
    }

    /// Read a big-endian i16.
    #[inline]
    pub fn read_i16(&mut self) -> Result<i16, VarintError> {
        Ok(i16::from_be_bytes(self.read_array()?))
    }

    /// Read a big-endian i32.
    #[inline]
    pub fn read_i32(&mut self) -> Result<i32, VarintError> {
        Ok(i32::from_be_bytes(self.read_array()?))
    }

    /// Read a big-endian u32.
    #[inline]
    pub fn read_u32(&mut self) -> Result<u32, VarintError> {
        Ok(u32::from_be_bytes(self.read_array()?))
    }

    /// Read a big-endian i64.
    #[inline]
    pub fn read_i64(&mut self) -> Result<i64, VarintError> {
        Ok(i64::from_be_bytes(self.read_array()?))
    }

    /// Read a zig-zag varint.
    #[inline]
    pub fn read_varint(&mut self) -> Result<i32, VarintError> {
        read_varint(self.buf, &mut self.pos)
    }

    /// Read a zig-zag varlong.
    #[inline]
    pub fn read_varlong(&mut self) -> Result<i64, VarintError> {
        read_varlong(self.buf, &mut self.pos)
    }

    /// Read an unsigned varint.
    #[inline]
    pub fn read_unsigned_varint(&mut self) -> Result<u32, VarintError> {
        read_unsigned_varint(self.buf, &mut self.pos)
    }

    /// Read an unsigned varlong.
    #[inline]
    pub fn read_unsigned_varlong(&mut self) -> Result<u64, VarintError> {
        read_unsigned_varlong(self.buf, &mut self.pos)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_encodings() {
        let cases: &[(i32, &[u8])] = &[
            (0, &[0x00]),
            (-1, &[0x01]),
            (1, &[0x02]),
            (-64, &[0x7f]),
            (64, &[0x80, 0x01]),
            (i32::MAX, &[0xfe, 0xff, 0xff, 0xff, 0x0f]),
            (i32::MIN, &[0xff, 0xff, 0xff, 0xff, 0x0f]),
        ];
        for (v, enc) in cases {
            let mut out = Vec::new();
            put_varint(&mut out, *v);
            assert_eq!(&out[..], *enc, "{v}");
            assert_eq!(varint_len(*v), enc.len());
            let mut pos = 0;
            assert_eq!(read_varint(enc, &mut pos), Ok(*v));
            assert_eq!(pos, enc.len());
        }
    }
}
