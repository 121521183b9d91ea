//! The zero-copy writer: protocol bytes with `write_all`, record data straight from the page
//! cache to the socket with `sendfile(2)` (rustix). The socket is corked while a response is
//! written so the pieces leave as full segments.

use bytes::Bytes;
use gregor_protocol::fetch::Chunk;
use gregor_storage::FileRegion;
use std::io;
use tokio::io::{AsyncWriteExt, Interest};
use tokio::net::tcp::OwnedWriteHalf;

/// Sends one file region with `sendfile`, waiting for socket writability as needed.
pub async fn send_region(writer: &OwnedWriteHalf, region: &FileRegion) -> io::Result<()> {
    let sock = writer.as_ref();
    let end = region.position + region.len;
    let mut offset = region.position;
    while offset < end {
        sock.writable().await?;
        let result = sock.try_io(Interest::WRITABLE, || {
            let mut off = offset;
            let n =
                rustix::fs::sendfile(sock, &*region.file, Some(&mut off), (end - offset) as usize)
                    .map_err(io::Error::from)?;
            Ok(n)
        });
        match result {
            Ok(0) => {
                // The file is shorter than the region promised: the frame cannot be completed.
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "segment file ended inside a fetch region",
                ));
            }
            Ok(n) => offset += n as u64,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

fn cork(writer: &OwnedWriteHalf, on: bool) {
    // Best effort: corking only batches segments.
    let _ = rustix::net::sockopt::set_tcp_cork(writer.as_ref(), on);
}

/// Writes a response made of protocol bytes and file regions.
pub async fn write_chunks(
    writer: &mut OwnedWriteHalf,
    chunks: Vec<Chunk<FileRegion>>,
) -> io::Result<()> {
    let has_regions = chunks.iter().any(|c| matches!(c, Chunk::Records(_)));
    if has_regions {
        cork(writer, true);
    }
    let result = async {
        for chunk in &chunks {
            match chunk {
                Chunk::Bytes(b) => writer.write_all(b).await?,
                Chunk::Records(region) => send_region(writer, region).await?,
            }
        }
        Ok::<(), io::Error>(())
    }
    .await;
    if has_regions {
        cork(writer, false);
    }
    result
}

/// Writes one encoded frame.
pub async fn write_frame(writer: &mut OwnedWriteHalf, frame: Bytes) -> io::Result<()> {
    writer.write_all(&frame).await
}

/// The write side of a connection: a plain TCP socket (zero-copy `sendfile` for record data)
/// or a TLS stream (record data read from the file and encrypted: one copy, as Kafka's
/// `SslTransportLayer`).
pub enum Writer {
    /// PLAINTEXT / SASL_PLAINTEXT.
    Plain(OwnedWriteHalf),
    /// SSL / SASL_SSL.
    Tls(tokio::io::WriteHalf<tokio_rustls::server::TlsStream<tokio::net::TcpStream>>),
}

/// How much of a file region a TLS connection reads at once.
const TLS_COPY_CHUNK: u64 = 1 << 20;

impl Writer {
    /// Writes one encoded frame.
    pub async fn write_frame(&mut self, frame: Bytes) -> io::Result<()> {
        match self {
            Writer::Plain(w) => write_frame(w, frame).await,
            Writer::Tls(w) => {
                w.write_all(&frame).await?;
                w.flush().await
            }
        }
    }

    /// Writes a response made of protocol bytes and file regions.
    pub async fn write_chunks(&mut self, chunks: Vec<Chunk<FileRegion>>) -> io::Result<()> {
        match self {
            Writer::Plain(w) => write_chunks(w, chunks).await,
            Writer::Tls(w) => {
                for chunk in chunks {
                    match chunk {
                        Chunk::Bytes(b) => w.write_all(&b).await?,
                        Chunk::Records(region) => {
                            // Double-buffered: the next piece is read from the file while the
                            // current one is encrypted and written.
                            let read = |offset: u64| {
                                let piece = FileRegion {
                                    file: region.file.clone(),
                                    position: region.position + offset,
                                    len: (region.len - offset).min(TLS_COPY_CHUNK),
                                };
                                tokio::task::spawn_blocking(move || piece.read_to_vec())
                            };
                            let mut offset = 0;
                            let mut next = (region.len > 0).then(|| read(0));
                            while let Some(reading) = next.take() {
                                let data = reading.await.map_err(io::Error::other)??;
                                offset += data.len() as u64;
                                if offset < region.len {
                                    next = Some(read(offset));
                                }
                                w.write_all(&data).await?;
                            }
                        }
                    }
                }
                w.flush().await
            }
        }
    }
}
