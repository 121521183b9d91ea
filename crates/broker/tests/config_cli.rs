//! The command-line contract: `--help`, bad values, unknown keys, properties files.

use std::process::Command;

fn gregor() -> Command {
    Command::new(env!("CARGO_BIN_EXE_gregor"))
}

#[test]
fn help_documents_usage_and_keys() {
    let out = gregor().arg("--help").output().unwrap();
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    for needle in [
        "--override",
        "server.properties",
        "log.dirs",
        "message.max.bytes",
        "advertised.listeners",
    ] {
        assert!(text.contains(needle), "missing {needle} in --help");
    }
}

#[test]
fn bad_value_is_a_startup_error_naming_key_and_value() {
    let dir = tempfile::tempdir().unwrap();
    let out = gregor()
        .args(["--override", &format!("log.dirs={}", dir.path().display())])
        .args(["--override", "num.partitions=lots"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("num.partitions") && err.contains("lots"),
        "{err}"
    );
}

#[test]
fn properties_file_is_read() {
    let dir = tempfile::tempdir().unwrap();
    let props = dir.path().join("server.properties");
    std::fs::write(&props, "# comment\nmessage.max.bytes = not-a-number\n").unwrap();
    let out = gregor().arg(&props).output().unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("message.max.bytes"));
}
