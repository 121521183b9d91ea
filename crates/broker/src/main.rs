//! `gregor`: start a Kafka-compatible broker.

use anyhow::Context;
use gregor_broker::config::{Config, KEYS};
use gregor_broker::server::Server;
use std::path::PathBuf;

const HELP: &str = "\
gregor — a Kafka-wire-compatible event-streaming broker

USAGE:
    gregor [server.properties] [--override key=value]...
    gregor topics|produce|consume|groups ...      (a client: see CLIENT COMMANDS)
    gregor healthcheck [--bootstrap host:port] [--timeout-ms N]   (exit 0 if the broker answers)

With no arguments, starts a single-node broker for local development:
    listeners=PLAINTEXT://0.0.0.0:9092
    advertised.listeners=PLAINTEXT://localhost:9092
    log.dirs=./gregor-data  node.id=1  auto.create.topics.enable=true  num.partitions=1

ARGUMENTS:
    server.properties        A Kafka-style properties file (same keys as Apache Kafka).
    --override key=value     Set any config key; repeatable; wins over the file.
    --help                   Show this help and the supported config keys.
    --version                Print the version.

CLIENT COMMANDS (talk to any Kafka-compatible broker over the wire; docs/cli.md):
    gregor topics create|list|describe|delete    Manage topics.
    gregor produce TOPIC                         One record per stdin line.
    gregor consume TOPIC                         Records to stdout (-e: stop at the end).
    gregor groups list|describe|delete           Consumer groups, with lag.
    Common flags: -b/--brokers host:port[,...] (default $GREGOR_BROKERS, else localhost:9092),
    --client-id, --timeout, --json. `gregor <command> --help` lists each command's flags.
ENVIRONMENT:
    KAFKA_*                  Config keys, mapped as the apache/kafka Docker image does
                             (KAFKA_LOG_DIRS -> log.dirs, __ -> _, ___ -> -); wins over the
                             file, loses to --override. See docs/docker.md.

Logging goes to stderr; filter with RUST_LOG (e.g. RUST_LOG=info,gregor_broker=debug).
SIGINT/SIGTERM stop accepting connections, finish in-flight requests, flush and close
the logs, and exit 0.
";

fn usage_keys() -> String {
    let mut s = String::from(
        "\nCONFIG KEYS (Kafka names; * = accepted for compatibility, no effect yet):\n",
    );
    for k in KEYS {
        s.push_str(&format!(
            "    {}{:<40} default: {}\n        {}\n",
            if k.used { " " } else { "*" },
            k.name,
            k.default.unwrap_or("null"),
            k.doc
        ));
    }
    s
}

fn parse_args() -> anyhow::Result<Option<(Option<PathBuf>, Vec<String>)>> {
    let mut file = None;
    let mut overrides = Vec::new();
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "-h" | "--help" => {
                print!("{HELP}{}", usage_keys());
                return Ok(None);
            }
            "-V" | "--version" => {
                println!("gregor {}", env!("CARGO_PKG_VERSION"));
                return Ok(None);
            }
            "--override" => {
                let kv = args.next().context("--override needs key=value")?;
                overrides.push(kv);
            }
            s if s.starts_with("--override=") => {
                overrides.push(s["--override=".len()..].to_string())
            }
            s if s.starts_with('-') => anyhow::bail!("unknown option {s} (see --help)"),
            s => {
                if file.is_some() {
                    anyhow::bail!("only one properties file may be given (got another: {s})");
                }
                file = Some(PathBuf::from(s));
            }
        }
    }
    Ok(Some((file, overrides)))
}

fn main() -> std::process::ExitCode {
    // `gregor topics|produce|consume|groups ...`: the command line client, not the broker.
    if let Some(code) = gregor_broker::cli::dispatch(std::env::args_os().collect()) {
        return code;
    }
    // `gregor healthcheck`: the container health check (no logging, exit 0/1).
    if std::env::args_os()
        .nth(1)
        .is_some_and(|a| a == "healthcheck")
    {
        let args = std::env::args_os()
            .skip(2)
            .map(|a| a.to_string_lossy().into_owned());
        return gregor_broker::healthcheck::main(args).into();
    }
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,openraft=warn"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    match real_main() {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("gregor: error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

fn real_main() -> anyhow::Result<()> {
    let Some((file, overrides)) = parse_args()? else {
        return Ok(());
    };
    let config = Config::load(file.as_deref(), &overrides)?;
    for key in &config.unknown {
        tracing::warn!(key = %key, "unknown configuration key (ignored)");
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("gregor")
        .build()?;
    runtime.block_on(async move {
        let server = Server::bind(config).await?;
        server.run(shutdown_signal()).await
    })
}

async fn shutdown_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = match signal(SignalKind::terminate()) {
        Ok(s) => s,
        Err(_) => return std::future::pending().await,
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => tracing::info!("SIGINT received"),
        _ = term.recv() => tracing::info!("SIGTERM received"),
    }
}
