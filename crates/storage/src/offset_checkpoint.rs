//! Kafka's `OffsetCheckpointFile`: per-partition offsets of a whole log directory, such as
//! the high watermarks in `replication-offset-checkpoint` (written by the replica manager
//! every `replica.high.watermark.checkpoint.interval.ms` and read back at startup to restore
//! each [`Log`](crate::Log)'s high watermark with
//! [`Log::update_high_watermark`](crate::Log::update_high_watermark)).
//!
//! The format, byte for byte as Kafka's `CheckpointFile`:
//!
//! ```text
//! 0                 <- version
//! 2                 <- number of entries
//! orders 0 1200     <- topic partition offset
//! my.topic-v2_x 3 17
//! ```
//!
//! [`write()`] is atomic and durable (`<path>.tmp`, fsync, rename, fsync of the directory).
//! [`read()`] parses as strictly as Kafka's `CheckpointReadBuffer`: a missing or empty file,
//! or one without the count line, is empty; a version other than 0, a non-numeric line, an
//! entry that is not exactly three whitespace-separated fields (split like Java's
//! `split("\\s+")`) or a wrong number of entries is
//! [`StorageError::MalformedCheckpoint`], never a panic. When a partition is listed twice
//! the last entry wins (Kafka builds a map).

use std::collections::BTreeMap;
use std::path::Path;

use crate::checkpoint;
use crate::StorageError;

/// Name of the high watermark checkpoint file in each log directory.
pub const REPLICATION_OFFSET_CHECKPOINT: &str = "replication-offset-checkpoint";
/// The only version of the format (Kafka's `OffsetCheckpointFile.CURRENT_VERSION`).
pub const VERSION: i32 = 0;
/// Kafka's maximum topic name length.
const MAX_TOPIC_LEN: usize = 249;

/// A topic-partition, the key of a checkpoint entry.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct TopicPartition {
    /// Topic name.
    pub topic: String,
    /// Partition index.
    pub partition: i32,
}

impl TopicPartition {
    /// `topic`-`partition`.
    pub fn new(topic: impl Into<String>, partition: i32) -> Self {
        TopicPartition {
            topic: topic.into(),
            partition,
        }
    }
}

/// Reads the checkpoint at `path` (a missing file is empty, as Kafka creates it empty).
pub fn read(path: &Path) -> Result<BTreeMap<TopicPartition, i64>, StorageError> {
    let bytes = match std::fs::read(path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(BTreeMap::new()),
        Err(e) => return Err(StorageError::io(path, e)),
    };
    let text = String::from_utf8(bytes).map_err(|_| StorageError::MalformedCheckpoint {
        path: path.to_path_buf(),
        reason: "not valid UTF-8".into(),
    })?;
    parse(&text).map_err(|reason| StorageError::MalformedCheckpoint {
        path: path.to_path_buf(),
        reason,
    })
}

/// Writes `offsets` to `path` atomically and durably. Fails with
/// [`StorageError::InvalidArgument`] (writing nothing) for a topic name that is not a legal
/// Kafka topic name (1 to 249 of `[a-zA-Z0-9._-]`, not `.` or `..`) or a negative partition.
pub fn write(path: &Path, offsets: &BTreeMap<TopicPartition, i64>) -> Result<(), StorageError> {
    let mut lines = Vec::with_capacity(offsets.len());
    for (tp, offset) in offsets {
        if !legal_topic(&tp.topic) {
            return Err(StorageError::InvalidArgument(format!(
                "topic name {:?} cannot be written to a checkpoint file",
                tp.topic
            )));
        }
        if tp.partition < 0 {
            return Err(StorageError::InvalidArgument(format!(
                "negative partition {} of topic {}",
                tp.partition, tp.topic
            )));
        }
        lines.push(format!("{} {} {}", tp.topic, tp.partition, offset));
    }
    checkpoint::write_lines_at(path, &lines)
}

fn legal_topic(topic: &str) -> bool {
    !topic.is_empty()
        && topic.len() <= MAX_TOPIC_LEN
        && topic != "."
        && topic != ".."
        && topic
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'_' || b == b'-')
}

/// Java's `\s`.
fn is_java_space(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\n' | '\u{0B}' | '\u{0C}' | '\r')
}

/// Java's `BufferedReader.readLine` split: lines end with `\n`, `\r` or `\r\n`; a final
/// terminator does not start another line.
fn java_lines(text: &str) -> Vec<&str> {
    let mut lines = Vec::new();
    let mut rest = text;
    while !rest.is_empty() {
        match rest.find(['\n', '\r']) {
            None => {
                lines.push(rest);
                break;
            }
            Some(i) => {
                lines.push(&rest[..i]);
                let skip = if rest[i..].starts_with("\r\n") { 2 } else { 1 };
                rest = &rest[i + skip..];
            }
        }
    }
    lines
}

/// Java's `line.split("\\s+")`: a leading separator yields an empty first field, trailing
/// empty fields are dropped.
fn java_split_whitespace(line: &str) -> Vec<&str> {
    let mut parts = Vec::new();
    let mut rest = line;
    loop {
        match rest.find(is_java_space) {
            None => {
                parts.push(rest);
                break;
            }
            Some(i) => {
                parts.push(&rest[..i]);
                rest = rest[i..].trim_start_matches(is_java_space);
            }
        }
    }
    while parts.len() > 1 && parts.last().is_some_and(|p| p.is_empty()) {
        parts.pop();
    }
    parts
}

/// Parses the text of a checkpoint file (Kafka's `CheckpointReadBuffer.read` with the
/// `OffsetCheckpointFile` entry formatter); the error is the reason.
pub fn parse(text: &str) -> Result<BTreeMap<TopicPartition, i64>, String> {
    let malformed = |line: &str| format!("malformed line: {line:?}");
    let lines = java_lines(text);
    let mut it = lines.into_iter();
    let Some(version) = it.next() else {
        return Ok(BTreeMap::new());
    };
    let version: i32 = version.parse().map_err(|_| malformed(version))?;
    if version != VERSION {
        return Err(format!(
            "unrecognised version {version}, expected version {VERSION}"
        ));
    }
    let Some(count) = it.next() else {
        return Ok(BTreeMap::new());
    };
    let expected: i32 = count.parse().map_err(|_| malformed(count))?;
    if expected < 0 {
        return Err(format!("negative number of entries {expected}"));
    }
    let mut found = 0usize;
    let mut offsets = BTreeMap::new();
    for line in it {
        let (topic, partition, offset) = match java_split_whitespace(line).as_slice() {
            [t, p, o] => (*t, *p, *o),
            _ => return Err(malformed(line)),
        };
        let partition: i32 = partition.parse().map_err(|_| malformed(line))?;
        let offset: i64 = offset.parse().map_err(|_| malformed(line))?;
        offsets.insert(TopicPartition::new(topic, partition), offset);
        found += 1;
    }
    if found != expected as usize {
        return Err(format!("expected {expected} entries but found {found}"));
    }
    Ok(offsets)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(entries: &[(&str, i32, i64)]) -> BTreeMap<TopicPartition, i64> {
        entries
            .iter()
            .map(|&(t, p, o)| (TopicPartition::new(t, p), o))
            .collect()
    }

    #[test]
    fn writes_kafkas_format_atomically() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join(REPLICATION_OFFSET_CHECKPOINT);
        assert_eq!(read(&path).expect("missing is empty"), BTreeMap::new());
        let offsets = map(&[
            ("orders", 0, 1200),
            ("my.topic-v2_x", 3, 17),
            ("orders", 1, 0),
        ]);
        write(&path, &offsets).expect("write");
        assert_eq!(
            std::fs::read_to_string(&path).expect("text"),
            "0\n3\nmy.topic-v2_x 3 17\norders 0 1200\norders 1 0\n"
        );
        assert_eq!(read(&path).expect("read"), offsets);
        assert!(!dir
            .path()
            .join("replication-offset-checkpoint.tmp")
            .exists());
        write(&path, &BTreeMap::new()).expect("write empty");
        assert_eq!(std::fs::read_to_string(&path).expect("text"), "0\n0\n");
        assert_eq!(read(&path).expect("read"), BTreeMap::new());
    }

    #[test]
    fn rejects_unwritable_topics() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("cp");
        for bad in ["", "a b", "a\nb", ".", "..", "a/b", &"x".repeat(250)] {
            assert!(
                matches!(
                    write(&path, &map(&[(bad, 0, 1)])),
                    Err(StorageError::InvalidArgument(_))
                ),
                "{bad:?}"
            );
        }
        assert!(write(&path, &map(&[("t", -1, 1)])).is_err());
        assert!(!path.exists());
        write(&path, &map(&[(&"x".repeat(249), 0, 1)])).expect("249 chars is legal");
    }

    #[test]
    fn parses_like_kafka() {
        assert_eq!(parse("").expect("empty file"), BTreeMap::new());
        assert_eq!(parse("0\n").expect("no count line"), BTreeMap::new());
        assert_eq!(parse("0\n0\n").expect("no entries"), BTreeMap::new());
        assert_eq!(
            parse("0\r\n2\r\na 0 5\rb\t1  -1  \n").expect("Java line endings and spaces"),
            map(&[("a", 0, 5), ("b", 1, -1)])
        );
        assert_eq!(
            parse("0\n2\na 0 5\na 0 6").expect("duplicates: last wins, no final newline"),
            map(&[("a", 0, 6)])
        );
        assert_eq!(
            parse("+0\n1\na +1 +7\n").expect("signs"),
            map(&[("a", 1, 7)])
        );
    }

    #[test]
    fn malformed_files_are_errors_not_panics() {
        for bad in [
            "1\n0\n",
            "x\n0\n",
            " 0\n0\n",
            "0\nx\n",
            "0\n-1\n",
            "0\n1\n",
            "0\n1\na 0 5\nb 0 6\n",
            "0\n2\na 0 5\n",
            "0\n1\n a 0 5\n",
            "0\n1\na 0\n",
            "0\n1\na 0 5 6\n",
            "0\n1\na x 5\n",
            "0\n1\na 0 x\n",
            "0\n1\na 99999999999 5\n",
            "0\n1\na 0 99999999999999999999\n",
            "0\n1\n\n",
            "0\n2\na 0 5\n\n",
        ] {
            assert!(parse(bad).is_err(), "{bad:?}");
        }
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("cp");
        std::fs::write(&path, [b'0', b'\n', 0xff, b'\n']).expect("write");
        let err = read(&path).expect_err("not UTF-8");
        assert!(matches!(err, StorageError::MalformedCheckpoint { .. }));
        std::fs::write(&path, "0\n1\nt 0\n").expect("write");
        let msg = read(&path).expect_err("malformed").to_string();
        assert!(
            msg.contains("malformed line") && msg.contains("t 0"),
            "{msg}"
        );
    }
}
