//! File helpers: CRC frames, durable atomic replacement of small files, directory fsync.
//!
//! A frame is `u32 length (big endian) | u32 crc32c(body) (big endian) | body`, the format of
//! `gregor-controller`'s metadata log.

use crate::error::QuorumError;
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::Path;

/// Largest frame accepted when reading (guards against a corrupt length).
pub(crate) const MAX_FRAME: usize = 64 * 1024 * 1024;

/// Appends one frame holding `body` to `out`.
pub(crate) fn push_frame(out: &mut Vec<u8>, body: &[u8]) {
    out.extend_from_slice(&(body.len() as u32).to_be_bytes());
    out.extend_from_slice(&crc32c::crc32c(body).to_be_bytes());
    out.extend_from_slice(body);
}

/// The outcome of reading one frame at the start of a buffer.
pub(crate) enum Frame<'a> {
    /// A valid frame: its body and total length.
    Ok(&'a [u8], usize),
    /// The buffer is empty.
    End,
    /// The buffer holds fewer bytes than the frame needs (a torn write).
    Short,
    /// The length is impossible or the CRC does not match.
    Bad(&'static str),
}

/// Reads the frame at the start of `data`.
pub(crate) fn read_frame(data: &[u8]) -> Frame<'_> {
    if data.is_empty() {
        return Frame::End;
    }
    if data.len() < 8 {
        return Frame::Short;
    }
    let len = u32::from_be_bytes([data[0], data[1], data[2], data[3]]) as usize;
    let crc = u32::from_be_bytes([data[4], data[5], data[6], data[7]]);
    if len > MAX_FRAME {
        return Frame::Bad("frame length out of range");
    }
    if data.len() - 8 < len {
        return Frame::Short;
    }
    let body = &data[8..8 + len];
    if crc32c::crc32c(body) != crc {
        return Frame::Bad("crc mismatch");
    }
    Frame::Ok(body, 8 + len)
}

/// fsyncs a directory, so that file creations, renames and deletions in it are durable.
pub(crate) fn fsync_dir(dir: &Path) -> Result<(), QuorumError> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| QuorumError::io(dir, e))
}

/// Durably replaces `path` with `magic | frame(body)`: write a temp file, fsync it, rename it over
/// `path`, fsync the directory.
pub(crate) fn write_atomic(path: &Path, magic: &[u8], body: &[u8]) -> Result<(), QuorumError> {
    let dir = path
        .parent()
        .ok_or_else(|| QuorumError::Config(format!("{} has no parent", path.display())))?;
    let tmp = path.with_extension("tmp");
    let mut buf = Vec::with_capacity(magic.len() + 8 + body.len());
    buf.extend_from_slice(magic);
    push_frame(&mut buf, body);
    let mut f = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .open(&tmp)
        .map_err(|e| QuorumError::io(&tmp, e))?;
    f.write_all(&buf).map_err(|e| QuorumError::io(&tmp, e))?;
    f.sync_all().map_err(|e| QuorumError::io(&tmp, e))?;
    drop(f);
    std::fs::rename(&tmp, path).map_err(|e| QuorumError::io(path, e))?;
    fsync_dir(dir)
}

/// Reads a file written by [`write_atomic`]. `Ok(None)` when it does not exist; a clear
/// [`QuorumError::Corrupt`] when its magic, length or CRC is wrong.
pub(crate) fn read_atomic(path: &Path, magic: &[u8]) -> Result<Option<Vec<u8>>, QuorumError> {
    let data = match std::fs::read(path) {
        Ok(d) => d,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(QuorumError::io(path, e)),
    };
    if !data.starts_with(magic) {
        return Err(QuorumError::corrupt(path, "bad magic (not a quorum file)"));
    }
    match read_frame(&data[magic.len()..]) {
        Frame::Ok(body, n) if magic.len() + n == data.len() => Ok(Some(body.to_vec())),
        Frame::Ok(..) => Err(QuorumError::corrupt(
            path,
            "trailing bytes after the record",
        )),
        Frame::End | Frame::Short => Err(QuorumError::corrupt(path, "truncated record")),
        Frame::Bad(why) => Err(QuorumError::corrupt(path, why)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn atomic_roundtrip_and_corruption() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("f");
        assert_eq!(read_atomic(&p, b"MAGC").unwrap(), None);
        write_atomic(&p, b"MAGC", b"hello").unwrap();
        assert_eq!(read_atomic(&p, b"MAGC").unwrap().unwrap(), b"hello");
        let mut data = std::fs::read(&p).unwrap();
        let last = data.len() - 1;
        data[last] ^= 1;
        std::fs::write(&p, &data).unwrap();
        let err = read_atomic(&p, b"MAGC").unwrap_err();
        assert!(err.to_string().contains("crc mismatch"), "{err}");
        std::fs::write(&p, b"XXXX").unwrap();
        assert!(read_atomic(&p, b"MAGC")
            .unwrap_err()
            .to_string()
            .contains("magic"));
        std::fs::write(&p, &data[..6]).unwrap();
        assert!(read_atomic(&p, b"MAGC")
            .unwrap_err()
            .to_string()
            .contains("truncated"));
    }
}
