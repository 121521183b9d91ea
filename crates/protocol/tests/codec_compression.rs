//! Compression codecs and varints.

use gregor_protocol::compression::{Compression, CompressionError};
use gregor_protocol::varint::{self, Cursor, VarintError};

fn corpus() -> Vec<Vec<u8>> {
    let mut text = Vec::new();
    for i in 0..5000 {
        text.extend_from_slice(format!("record-{i} payload with some repetition; ").as_bytes());
    }
    let mut x = 88172645463325252u64;
    let noise: Vec<u8> = (0..100_000)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect();
    vec![Vec::new(), b"a".to_vec(), text, noise, vec![0u8; 200_000]]
}

#[test]
fn roundtrip_every_codec() {
    for c in Compression::ALL {
        for input in corpus() {
            let z = c.compress(&input).unwrap();
            let back = c.decompress(&z, input.len()).unwrap();
            assert_eq!(back, input, "{c} len {}", input.len());
            if !input.is_empty() {
                assert!(matches!(
                    c.decompress(&z, input.len() - 1),
                    Err(CompressionError::TooLarge { .. })
                ));
            }
        }
    }
}

#[test]
fn java_compatible_framing() {
    let input = vec![7u8; 100_000];
    // xerial snappy header and 32 KiB blocks
    let s = Compression::Snappy.compress(&input).unwrap();
    assert_eq!(&s[..8], b"\x82SNAPPY\x00");
    assert_eq!(&s[8..16], &[0, 0, 0, 1, 0, 0, 0, 1]);
    // gzip magic
    let g = Compression::Gzip.compress(&input).unwrap();
    assert_eq!(&g[..2], &[0x1f, 0x8b]);
    // LZ4 frame magic
    let l = Compression::Lz4.compress(&input).unwrap();
    assert_eq!(&l[..4], &0x184D2204u32.to_le_bytes());
    // zstd frame magic
    let z = Compression::Zstd.compress(&input).unwrap();
    assert_eq!(&z[..4], &0xFD2FB528u32.to_le_bytes());
}

#[test]
fn snappy_raw_and_xerial() {
    let input: Vec<u8> = (0..100_000u32).map(|i| (i % 251) as u8).collect();
    // raw block, as librdkafka writes it
    let raw = snap::raw::Encoder::new().compress_vec(&input).unwrap();
    assert_eq!(
        Compression::Snappy.decompress(&raw, 1 << 20).unwrap(),
        input
    );
    // hand-built xerial stream with uneven blocks
    let mut x = b"\x82SNAPPY\x00\x00\x00\x00\x01\x00\x00\x00\x01".to_vec();
    for chunk in input.chunks(10_000) {
        let b = snap::raw::Encoder::new().compress_vec(chunk).unwrap();
        x.extend_from_slice(&(b.len() as i32).to_be_bytes());
        x.extend_from_slice(&b);
    }
    assert_eq!(Compression::Snappy.decompress(&x, 1 << 20).unwrap(), input);
    // two concatenated xerial streams
    let ours = Compression::Snappy.compress(&input).unwrap();
    let double = [ours.clone(), ours].concat();
    assert_eq!(
        Compression::Snappy.decompress(&double, 1 << 20).unwrap(),
        [input.clone(), input.clone()].concat()
    );
    // header only = empty
    assert!(Compression::Snappy
        .decompress(&x[..16], 10)
        .unwrap()
        .is_empty());
    // truncated xerial block / bad lengths
    assert!(Compression::Snappy
        .decompress(&x[..x.len() - 1], 1 << 20)
        .is_err());
    assert!(Compression::Snappy.decompress(&x[..18], 1 << 20).is_err());
    let mut neg = x[..16].to_vec();
    neg.extend_from_slice(&(-1i32).to_be_bytes());
    assert!(Compression::Snappy.decompress(&neg, 1 << 20).is_err());
    // raw block claiming a huge length is refused before allocating
    let mut huge = Vec::new();
    varint::put_unsigned_varint(&mut huge, u32::MAX);
    huge.extend_from_slice(&[0; 8]);
    assert!(matches!(
        Compression::Snappy.decompress(&huge, 1 << 20),
        Err(CompressionError::TooLarge { .. })
    ));
}

#[test]
fn gzip_multi_member() {
    let a = Compression::Gzip.compress(b"hello ").unwrap();
    let b = Compression::Gzip.compress(b"world").unwrap();
    let both = [a, b].concat();
    assert_eq!(
        Compression::Gzip.decompress(&both, 100).unwrap(),
        b"hello world"
    );
}

#[test]
fn garbage_is_corrupt_not_panic() {
    let mut x = 0x1234_5678_9abc_def1u64;
    for len in [0usize, 1, 3, 4, 8, 16, 17, 64, 1000] {
        for _ in 0..50 {
            let v: Vec<u8> = (0..len)
                .map(|_| {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    x as u8
                })
                .collect();
            for c in Compression::ALL {
                let _ = c.decompress(&v, 1 << 16);
            }
            // Plausible headers followed by garbage.
            for magic in [
                &b"\x82SNAPPY\x00\x00\x00\x00\x01\x00\x00\x00\x01"[..],
                &[0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0xff][..],
                &[0x04, 0x22, 0x4d, 0x18, 0x64, 0x40, 0xa7][..],
                &[0x28, 0xb5, 0x2f, 0xfd][..],
            ] {
                let v = [magic, &v].concat();
                for c in Compression::ALL {
                    let _ = c.decompress(&v, 1 << 16);
                }
            }
        }
    }
    assert!(matches!(
        Compression::Gzip.decompress(b"not gzip at all", 100),
        Err(CompressionError::Corrupt(_))
    ));
    assert!(Compression::Lz4.decompress(b"not lz4 at all", 100).is_err());
    assert!(Compression::Zstd
        .decompress(b"not zstd at all", 100)
        .is_err());
    // Truncated valid streams.
    let data = vec![3u8; 50_000];
    for c in [
        Compression::Gzip,
        Compression::Lz4,
        Compression::Zstd,
        Compression::Snappy,
    ] {
        let z = c.compress(&data).unwrap();
        for cut in [1, z.len() / 2, z.len() - 1] {
            assert!(c.decompress(&z[..cut], 1 << 20).is_err(), "{c} cut {cut}");
        }
    }
}

#[test]
fn varint_roundtrip_and_errors() {
    let mut vals: Vec<i64> = vec![0, 1, -1, 63, -64, 64, -65, 8191, 8192, i64::MAX, i64::MIN];
    for s in 0..64 {
        vals.push(1i64 << s);
        vals.push((1i64 << s).wrapping_neg());
        vals.push((1i64 << s).wrapping_sub(1));
    }
    for &v in &vals {
        let mut out = Vec::new();
        varint::put_varlong(&mut out, v);
        assert_eq!(out.len(), varint::varlong_len(v));
        let mut pos = 0;
        assert_eq!(varint::read_varlong(&out, &mut pos), Ok(v));
        assert_eq!(pos, out.len());
        for cut in 0..out.len() {
            let mut p = 0;
            assert_eq!(
                varint::read_varlong(&out[..cut], &mut p),
                Err(VarintError::Truncated)
            );
            assert_eq!(p, 0);
        }
        let v32 = v as i32;
        let mut out = Vec::new();
        varint::put_varint(&mut out, v32);
        assert_eq!(out.len(), varint::varint_len(v32));
        let mut c = Cursor::new(&out);
        assert_eq!(c.read_varint(), Ok(v32));
        assert!(c.is_empty());
        let u = v as u32;
        let mut out = Vec::new();
        varint::put_unsigned_varint(&mut out, u);
        assert_eq!(out.len(), varint::unsigned_varint_len(u));
        let mut p = 0;
        assert_eq!(varint::read_unsigned_varint(&out, &mut p), Ok(u));
    }
    // overlong: 6-byte varint, 5th byte with high bits, 11-byte varlong
    let mut p = 0;
    assert_eq!(
        varint::read_varint(&[0x80, 0x80, 0x80, 0x80, 0x80, 0x00], &mut p),
        Err(VarintError::Overlong)
    );
    assert_eq!(
        varint::read_unsigned_varint(&[0xff, 0xff, 0xff, 0xff, 0x1f], &mut p),
        Err(VarintError::Overlong)
    );
    assert_eq!(
        varint::read_varlong(&[0x80; 11], &mut p),
        Err(VarintError::Overlong)
    );
    assert_eq!(
        varint::read_varlong(
            &[0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02],
            &mut p
        ),
        Err(VarintError::Overlong)
    );
    assert_eq!(p, 0);
    assert_eq!(
        varint::read_varint(&[], &mut p),
        Err(VarintError::Truncated)
    );
    // Cursor primitives
    let data = [1u8, 0, 2, 0, 0, 0, 3, 0xff];
    let mut c = Cursor::new(&data);
    assert_eq!(c.read_i8(), Ok(1));
    assert_eq!(c.read_i16(), Ok(2));
    assert_eq!(c.read_i32(), Ok(3));
    assert_eq!(c.read_i16(), Err(VarintError::Truncated));
    assert_eq!(c.position(), 7);
    assert_eq!(c.read_bytes(1), Ok(&[0xff][..]));
    assert!(c.is_empty());
    assert_eq!(c.read_i64(), Err(VarintError::Truncated));
}
