//! The container contract, against the real binary: `gregor healthcheck` and configuration from
//! `KAFKA_*` environment variables (as the apache/kafka Docker image reads them).

mod common;

use common::Gregor;
use std::net::{TcpListener, TcpStream};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn gregor() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_gregor"));
    // Whatever KAFKA_* the developer's shell has must not leak into these tests.
    for (k, _) in std::env::vars_os() {
        if k.to_string_lossy().starts_with("KAFKA_") {
            c.env_remove(k);
        }
    }
    c
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn healthcheck(cmd: &mut Command) -> (i32, String) {
    let out = cmd.output().unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.code().unwrap_or(-1), text)
}

#[test]
fn healthcheck_is_0_against_a_running_broker_and_1_against_a_closed_port() {
    let g = Gregor::start(&[]);
    let (code, out) = healthcheck(gregor().args([
        "healthcheck",
        "--bootstrap",
        &format!("127.0.0.1:{}", g.port),
    ]));
    assert_eq!(code, 0, "{out}");
    assert!(out.starts_with("healthy:"), "{out}");

    let closed = free_port();
    let started = Instant::now();
    let (code, out) =
        healthcheck(gregor().args(["healthcheck", "--bootstrap", &format!("127.0.0.1:{closed}")]));
    assert_eq!(code, 1, "{out}");
    assert!(out.starts_with("unhealthy:"), "{out}");
    assert!(started.elapsed() < Duration::from_secs(5));
}

#[test]
fn healthcheck_times_out_on_a_silent_peer() {
    // Accepts the connection but never answers: must fail within the timeout.
    let silent = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = silent.local_addr().unwrap().port();
    let started = Instant::now();
    let (code, out) = healthcheck(gregor().args([
        "healthcheck",
        "--timeout-ms",
        "300",
        "--bootstrap",
        &format!("127.0.0.1:{port}"),
    ]));
    assert_eq!(code, 1, "{out}");
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
    drop(silent);
}

#[test]
fn healthcheck_defaults_to_the_first_listener_from_the_environment() {
    let g = Gregor::start(&[]);
    let (code, out) = healthcheck(
        gregor()
            .arg("healthcheck")
            .env(
                "KAFKA_LISTENERS",
                format!("CONTROLLER://:1,PLAINTEXT://:{}", g.port),
            )
            .env("KAFKA_CONTROLLER_LISTENER_NAMES", "CONTROLLER"),
    );
    assert_eq!(code, 0, "{out}");
    assert!(out.contains(&format!("127.0.0.1:{}", g.port)), "{out}");
    let (code, out) = healthcheck(gregor().arg("healthcheck").env(
        "KAFKA_LISTENERS",
        format!("PLAINTEXT://127.0.0.1:{}", free_port()),
    ));
    assert_eq!(code, 1, "{out}");
}

#[test]
fn healthcheck_rejects_bad_arguments() {
    let (code, out) = healthcheck(gregor().args(["healthcheck", "--frobnicate"]));
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("unknown argument"), "{out}");
}

/// Starts the broker configured only by a typical apache/kafka KRaft compose environment (plus
/// whatever `args` add) and waits until `port` accepts connections.
fn start_from_env(dir: &std::path::Path, port: u16, args: &[&str]) -> std::process::Child {
    let controller = free_port();
    let mut child = gregor()
        .args(args)
        .env("CLUSTER_ID", "4L6g3nShT-eMCtK--X86sw")
        .env("KAFKA_HEAP_OPTS", "-Xmx1G")
        .env("KAFKA_NODE_ID", "1")
        .env("KAFKA_PROCESS_ROLES", "broker,controller")
        .env(
            "KAFKA_LISTENERS",
            format!("PLAINTEXT://127.0.0.1:{port},CONTROLLER://127.0.0.1:{controller}"),
        )
        .env(
            "KAFKA_ADVERTISED_LISTENERS",
            format!("PLAINTEXT://127.0.0.1:{port}"),
        )
        .env(
            "KAFKA_LISTENER_SECURITY_PROTOCOL_MAP",
            "CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT",
        )
        .env("KAFKA_CONTROLLER_LISTENER_NAMES", "CONTROLLER")
        .env(
            "KAFKA_CONTROLLER_QUORUM_VOTERS",
            format!("1@127.0.0.1:{controller}"),
        )
        .env("KAFKA_INTER_BROKER_LISTENER_NAME", "PLAINTEXT")
        .env("KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR", "1")
        .env("KAFKA_TRANSACTION_STATE_LOG_REPLICATION_FACTOR", "1")
        .env("KAFKA_TRANSACTION_STATE_LOG_MIN_ISR", "1")
        .env("KAFKA_GROUP_INITIAL_REBALANCE_DELAY_MS", "0")
        .env("KAFKA_LOG_DIRS", dir.join("from-env"))
        .env("KAFKA_METRICS_LISTENER", "")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        if let Some(status) = child.try_wait().unwrap() {
            let mut err = String::new();
            use std::io::Read;
            child
                .stderr
                .take()
                .unwrap()
                .read_to_string(&mut err)
                .unwrap();
            panic!("gregor exited ({status}): {err}");
        }
        assert!(Instant::now() < deadline, "gregor did not start");
        std::thread::sleep(Duration::from_millis(20));
    }
    // The controller listener serves the one-voter quorum named by the voters setting.
    assert!(TcpStream::connect(("127.0.0.1", controller)).is_ok());
    child
}

#[test]
fn a_kraft_compose_environment_configures_the_broker() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let mut child = start_from_env(dir.path(), port, &[]);
    let (code, out) =
        healthcheck(gregor().args(["healthcheck", "--bootstrap", &format!("127.0.0.1:{port}")]));
    child.kill().unwrap();
    child.wait().unwrap();
    assert_eq!(code, 0, "{out}");
    // KAFKA_LOG_DIRS was used.
    assert!(dir.path().join("from-env/meta.properties").exists());
}

#[test]
fn override_beats_environment() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let other = dir.path().join("from-override");
    let mut child = start_from_env(
        dir.path(),
        port,
        &["--override", &format!("log.dirs={}", other.display())],
    );
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(other.join("meta.properties").exists());
    assert!(!dir.path().join("from-env").exists());
}

#[test]
fn environment_beats_properties_file() {
    let dir = tempfile::tempdir().unwrap();
    let props = dir.path().join("server.properties");
    std::fs::write(&props, "num.partitions=2\nlog.dirs=/nonexistent/never\n").unwrap();
    let port = free_port();
    let props = props.display().to_string();
    let mut child = start_from_env(dir.path(), port, &[&props]);
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(dir.path().join("from-env/meta.properties").exists());
}

#[test]
fn a_bad_value_from_the_environment_names_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let out = gregor()
        .env("KAFKA_LOG_DIRS", dir.path())
        .env("KAFKA_NUM_PARTITIONS", "lots")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("num.partitions") && err.contains("lots"),
        "{err}"
    );
}
