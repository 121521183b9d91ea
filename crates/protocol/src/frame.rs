//! Length-prefixed framing: every Kafka request and response is an `i32` size followed by
//! that many bytes. Modelled on mini-redis: [`check`] tells whether a complete frame is buffered
//! (without copying), then the caller splits it off.

use thiserror::Error;

/// Kafka's default `socket.request.max.bytes` (100 MiB).
pub const DEFAULT_MAX_REQUEST_BYTES: usize = 104_857_600;

/// Size of the length prefix.
pub const LENGTH_PREFIX: usize = 4;

/// Why a frame cannot be accepted. Either closes the connection.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum FrameError {
    /// The size prefix is negative.
    #[error("negative frame size {0}")]
    Negative(i32),
    /// The size prefix exceeds the configured maximum (`socket.request.max.bytes`).
    #[error("frame of {size} bytes exceeds socket.request.max.bytes ({max})")]
    TooLarge {
        /// Announced size.
        size: usize,
        /// Configured maximum.
        max: usize,
    },
}

/// Checks whether `buf` starts with a complete frame.
///
/// Returns `Ok(Some(n))` when the first `4 + n` bytes hold a frame of `n` bytes, `Ok(None)` when
/// more bytes are needed, and an error when the announced size is unacceptable (detected as
/// soon as the four prefix bytes are in, before any body is buffered).
pub fn check(buf: &[u8], max: usize) -> Result<Option<usize>, FrameError> {
    if buf.len() < LENGTH_PREFIX {
        return Ok(None);
    }
    let size = i32::from_be_bytes([buf[0], buf[1], buf[2], buf[3]]);
    if size < 0 {
        return Err(FrameError::Negative(size));
    }
    let size = size as usize;
    if size > max {
        return Err(FrameError::TooLarge { size, max });
    }
    if buf.len() - LENGTH_PREFIX >= size {
        Ok(Some(size))
    } else {
        Ok(None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn incomplete_and_complete() {
        assert_eq!(check(&[0, 0], 10), Ok(None));
        assert_eq!(check(&[0, 0, 0, 3, 1, 2], 10), Ok(None));
        assert_eq!(check(&[0, 0, 0, 3, 1, 2, 3, 9], 10), Ok(Some(3)));
        assert_eq!(check(&[0, 0, 0, 0], 10), Ok(Some(0)));
    }

    #[test]
    fn rejects_negative_and_oversized() {
        assert_eq!(
            check(&[0xff, 0xff, 0xff, 0xff], 10),
            Err(FrameError::Negative(-1))
        );
        assert_eq!(
            check(&[0, 0, 1, 0], 10),
            Err(FrameError::TooLarge { size: 256, max: 10 })
        );
    }
}
