//! Hostile bytes over TCP against the real `gregor` binary: each closes only its own
//! connection (or gets a Kafka error), the process stays up, and other clients keep working.

mod common;
use common::*;
use std::io::Write;

fn frame(body: &[u8]) -> Vec<u8> {
    let mut f = (body.len() as i32).to_be_bytes().to_vec();
    f.extend_from_slice(body);
    f
}

fn header(api: i16, version: i16) -> Vec<u8> {
    let mut h = Vec::new();
    h.extend_from_slice(&api.to_be_bytes());
    h.extend_from_slice(&version.to_be_bytes());
    h.extend_from_slice(&1i32.to_be_bytes());
    h.extend_from_slice(&(-1i16).to_be_bytes());
    h
}

#[test]
fn hostile_frames_close_only_their_connection() {
    let mut g = Gregor::start(&["socket.request.max.bytes=1048576"]);
    let mut metadata_huge = header(3, 1);
    metadata_huge.extend_from_slice(&i32::MAX.to_be_bytes());
    metadata_huge.push(0);
    let mut metadata_5_bytes = header(3, 4);
    metadata_5_bytes.extend_from_slice(&[0x10, 0, 0, 0, 1]);
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("2-byte frame", frame(&[0, 18])),
        ("empty frame", frame(&[])),
        ("negative size", (-5i32).to_be_bytes().to_vec()),
        ("oversized frame", (200_000_000i32).to_be_bytes().to_vec()),
        ("unknown api key", frame(&header(999, 0))),
        ("unsupported produce v1", frame(&header(0, 1))),
        ("metadata count i32::MAX", frame(&metadata_huge)),
        ("5-byte metadata body", frame(&metadata_5_bytes)),
        (
            "garbage body",
            frame(&[0, 3, 0, 9, 0, 0, 0, 1, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff]),
        ),
    ];
    for (name, bytes) in cases {
        let mut s = g.connect();
        s.write_all(&bytes).unwrap();
        assert!(
            closed_by_peer(&mut s),
            "{name}: connection should be closed"
        );
        assert!(g.alive(), "{name}: broker died\n{}", g.log_text());
        assert_serves(&g);
    }
}

#[test]
fn unknown_api_versions_version_gets_v0_unsupported_version_with_key_list() {
    let g = Gregor::start(&[]);
    let mut s = g.connect();
    // ApiVersions v127 with a flexible (v2) header: key, version, correlation, client id, tags.
    let mut body = Vec::new();
    body.extend_from_slice(&18i16.to_be_bytes());
    body.extend_from_slice(&127i16.to_be_bytes());
    body.extend_from_slice(&77i32.to_be_bytes());
    body.extend_from_slice(&(-1i16).to_be_bytes());
    body.push(0);
    body.extend_from_slice(&[0xde, 0xad]);
    s.write_all(&frame(&body)).unwrap();
    let resp = read_frame(&mut s).expect("a response, not a closed connection");
    assert_eq!(i32::from_be_bytes(resp[0..4].try_into().unwrap()), 77);
    assert_eq!(
        i16::from_be_bytes(resp[4..6].try_into().unwrap()),
        35,
        "UNSUPPORTED_VERSION"
    );
    let n = i32::from_be_bytes(resp[6..10].try_into().unwrap());
    assert!(n >= 10, "full key list expected, got {n}");
    let first_key = i16::from_be_bytes(resp[10..12].try_into().unwrap());
    assert_eq!(first_key, 0, "Produce first");
}

#[test]
fn pipelined_requests_are_answered_in_order() {
    let g = Gregor::start(&[]);
    let mut s = g.connect();
    let mut all = Vec::new();
    for id in 0..50 {
        all.extend_from_slice(&api_versions_v0(id));
    }
    s.write_all(&all).unwrap();
    for id in 0..50 {
        let resp = read_frame(&mut s).unwrap();
        assert_eq!(i32::from_be_bytes(resp[0..4].try_into().unwrap()), id);
    }
}

#[test]
fn idle_connections_are_closed() {
    let g = Gregor::start(&["connections.max.idle.ms=300"]);
    let mut s = g.connect();
    std::thread::sleep(std::time::Duration::from_millis(800));
    assert!(closed_by_peer(&mut s));
}

#[test]
fn sigterm_exits_zero_quickly() {
    let mut g = Gregor::start(&[]);
    let _idle = g.connect();
    let start = std::time::Instant::now();
    rustix_kill(g.child.id());
    let status = g.child.wait().unwrap();
    assert!(status.success(), "exit status {status}\n{}", g.log_text());
    assert!(
        start.elapsed() < std::time::Duration::from_secs(2),
        "took {:?}",
        start.elapsed()
    );
    assert!(g.log_text().contains("stopped cleanly"));
    assert!(g
        .dir
        .path()
        .join("data")
        .join(".kafka_cleanshutdown")
        .exists());
}

fn rustix_kill(pid: u32) {
    let status = std::process::Command::new("kill")
        .arg("-TERM")
        .arg(pid.to_string())
        .status()
        .unwrap();
    assert!(status.success());
}
