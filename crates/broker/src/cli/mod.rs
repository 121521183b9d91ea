//! `gregor topics|produce|consume|groups`: an rpk-like command line client that talks to any
//! Kafka-compatible broker over the wire (no JVM needed).
//!
//! - [`client`]: the wire client (ApiVersions negotiation, leader/coordinator routing).
//! - [`topics`]: create, list, describe, delete topics.
//! - [`produce`]: stdin lines to records (murmur2 keyed partitioning, batching, compression).
//! - [`consume`]: records to stdout (`-f` format strings, `--json`, optional group commits).
//! - [`groups`]: list, describe (with lag), delete consumer groups.
//!
//! Entry point: [`dispatch`], called first thing by the `gregor` binary.

pub mod client;
pub mod consume;
pub mod groups;
pub mod produce;
pub mod topics;

use clap::{Args, Parser, Subcommand};
use gregor_protocol::ErrorCode;
use std::ffi::OsString;
use std::io::Write;
use std::time::Duration;

/// The subcommands handled here; anything else is the broker's own command line.
pub const COMMANDS: &[&str] = &["topics", "produce", "consume", "groups"];

/// Errors of the CLI commands.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A Kafka error code returned by the broker.
    #[error("{context}: {name}: {message}")]
    Kafka {
        context: String,
        name: String,
        message: String,
        code: i16,
    },
    /// Could not connect to a broker.
    #[error("cannot connect to {0}: {1}")]
    Connect(String, String),
    /// I/O error on an established connection.
    #[error("connection to {0} failed: {1}")]
    Io(String, std::io::Error),
    /// A request did not complete in time.
    #[error("{0} timed out after {1:?}")]
    Timeout(String, Duration),
    /// The broker does not support an API this command needs.
    #[error("the broker at {1} does not support {0} in a version this client speaks")]
    Unsupported(String, String),
    /// The broker sent something this client cannot decode.
    #[error("protocol error: {0}")]
    Protocol(String),
    /// Bad command-line input.
    #[error("{0}")]
    Usage(String),
    /// Writing output or reading input failed.
    #[error("{0}")]
    Local(#[from] std::io::Error),
}

impl Error {
    /// A Kafka error with its name and message (`msg` from the response if it has one, else
    /// Kafka's default message for the code).
    pub fn kafka(context: &str, code: i16, msg: Option<String>) -> Error {
        let (name, default) = match ErrorCode::from_code(code) {
            Some(c) => (c.name().to_string(), c.message().to_string()),
            None => (format!("UNKNOWN_ERROR_CODE_{code}"), String::new()),
        };
        let message = msg.filter(|m| !m.is_empty()).unwrap_or(default);
        Error::Kafka {
            context: context.to_string(),
            name,
            message,
            code,
        }
    }

    /// `Ok(())` for code 0, else the error.
    pub fn check(context: &str, code: i16, msg: Option<String>) -> Result<(), Error> {
        if code == 0 {
            Ok(())
        } else {
            Err(Error::kafka(context, code, msg))
        }
    }
}

/// Name and message of an error code, for tables (`-` for none).
pub fn error_text(code: i16, msg: Option<&str>) -> String {
    if code == 0 {
        return "OK".into();
    }
    match Error::kafka("", code, msg.map(str::to_string)) {
        Error::Kafka { name, message, .. } => format!("{name}: {message}"),
        other => other.to_string(),
    }
}

#[derive(Debug, Parser)]
#[command(
    name = "gregor",
    version,
    about = "Kafka command line client: topics, produce, consume, groups (any Kafka-compatible broker)",
    disable_help_subcommand = true
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Create, list, describe and delete topics.
    Topics(topics::TopicsArgs),
    /// Produce lines from stdin, one record per line.
    Produce(produce::ProduceArgs),
    /// Consume records to stdout.
    Consume(consume::ConsumeArgs),
    /// List, describe (with lag) and delete consumer groups.
    Groups(groups::GroupsArgs),
}

/// Flags shared by every subcommand.
#[derive(Debug, Clone, Args)]
pub struct Common {
    /// Bootstrap brokers, host:port[,host:port...].
    #[arg(
        short = 'b',
        long = "brokers",
        env = "GREGOR_BROKERS",
        default_value = "localhost:9092",
        global = true
    )]
    pub brokers: String,
    /// Client id sent with every request.
    #[arg(long = "client-id", default_value = "gregor-cli", global = true)]
    pub client_id: String,
    /// Timeout of each request and connection attempt (e.g. 10s, 500ms, 1m; a bare number is ms).
    #[arg(long, default_value = "10s", value_parser = parse_duration, global = true)]
    pub timeout: Duration,
    /// Machine-readable JSON output.
    #[arg(long, global = true)]
    pub json: bool,
}

impl Common {
    /// A client for these flags.
    pub fn client(&self) -> Result<client::Client, Error> {
        let brokers: Vec<String> = self
            .brokers
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_string)
            .collect();
        if brokers.is_empty() {
            return Err(Error::Usage("--brokers is empty".into()));
        }
        Ok(client::Client::new(
            brokers,
            self.client_id.clone(),
            self.timeout,
        ))
    }
}

/// Parse `10s`, `500ms`, `2m`, or a bare number of milliseconds.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let (num, mult) = if let Some(n) = s.strip_suffix("ms") {
        (n, 1)
    } else if let Some(n) = s.strip_suffix('s') {
        (n, 1000)
    } else if let Some(n) = s.strip_suffix('m') {
        (n, 60_000)
    } else {
        (s, 1)
    };
    let n: u64 = num
        .trim()
        .parse()
        .map_err(|_| format!("invalid duration {s:?} (use e.g. 10s, 500ms, 1m)"))?;
    Ok(Duration::from_millis(n.saturating_mul(mult)))
}

/// If `args` (including argv\[0\]) name a CLI subcommand, run it and return the exit code;
/// otherwise `None` (the caller starts the broker). Usage errors and `--help` are printed by
/// clap, which exits the process itself (2 and 0).
pub fn dispatch(args: Vec<OsString>) -> Option<std::process::ExitCode> {
    let first = args.get(1)?.to_str()?;
    if !COMMANDS.contains(&first) {
        return None;
    }
    let cli = Cli::parse_from(args);
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("gregor: error: cannot start the runtime: {e}");
            return Some(std::process::ExitCode::FAILURE);
        }
    };
    let result = runtime.block_on(async move {
        match cli.command {
            Command::Topics(a) => topics::run(a).await,
            Command::Produce(a) => produce::run(a).await,
            Command::Consume(a) => consume::run(a).await,
            Command::Groups(a) => groups::run(a).await,
        }
    });
    Some(match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(Error::Local(e)) if e.kind() == std::io::ErrorKind::BrokenPipe => {
            std::process::ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("gregor: error: {e}");
            std::process::ExitCode::FAILURE
        }
    })
}

/// An aligned text table (like rpk's): upper-case headers, columns separated by two spaces.
pub struct Table {
    rows: Vec<Vec<String>>,
}

impl Table {
    /// A table with these headers.
    pub fn new(headers: &[&str]) -> Table {
        Table {
            rows: vec![headers.iter().map(|h| h.to_string()).collect()],
        }
    }

    /// Append a row.
    pub fn row(&mut self, cells: Vec<String>) {
        self.rows.push(cells);
    }

    /// Render: every column padded to its widest cell, trailing spaces trimmed.
    pub fn render(&self) -> String {
        let cols = self.rows.iter().map(Vec::len).max().unwrap_or(0);
        let mut widths = vec![0; cols];
        for r in &self.rows {
            for (i, c) in r.iter().enumerate() {
                widths[i] = widths[i].max(c.chars().count());
            }
        }
        let mut out = String::new();
        for r in &self.rows {
            let mut line = String::new();
            for (i, c) in r.iter().enumerate() {
                line.push_str(c);
                if i + 1 < r.len() {
                    let pad = widths[i] - c.chars().count() + 2;
                    line.extend(std::iter::repeat_n(' ', pad));
                }
            }
            out.push_str(line.trim_end());
            out.push('\n');
        }
        out
    }

    /// Write to stdout.
    pub fn print(&self) -> Result<(), Error> {
        out(&self.render())
    }
}

/// Write to stdout (a closed pipe ends the command quietly).
pub fn out(s: &str) -> Result<(), Error> {
    let mut o = std::io::stdout().lock();
    o.write_all(s.as_bytes())?;
    o.flush()?;
    Ok(())
}

/// Print a JSON value on one line.
pub fn out_json(v: &serde_json::Value) -> Result<(), Error> {
    out(&format!("{v}\n"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("10s"), Ok(Duration::from_secs(10)));
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_duration("1500"), Ok(Duration::from_millis(1500)));
        assert!(parse_duration("soon").is_err());
        assert!(parse_duration("-1s").is_err());
    }

    #[test]
    fn table_aligns_columns() {
        let mut t = Table::new(&["NAME", "PARTITIONS"]);
        t.row(vec!["a-long-topic".into(), "3".into()]);
        t.row(vec!["b".into(), "12".into()]);
        assert_eq!(
            t.render(),
            "NAME          PARTITIONS\na-long-topic  3\nb             12\n"
        );
    }

    #[test]
    fn kafka_errors_have_name_and_message() {
        let e = Error::kafka("describing topic x", 3, None);
        assert_eq!(
            e.to_string(),
            "describing topic x: UNKNOWN_TOPIC_OR_PARTITION: This server does not host this topic-partition."
        );
        let e = Error::kafka(
            "creating topic x",
            36,
            Some("Topic 'x' already exists.".into()),
        );
        assert_eq!(
            e.to_string(),
            "creating topic x: TOPIC_ALREADY_EXISTS: Topic 'x' already exists."
        );
    }

    #[test]
    fn only_cli_commands_are_dispatched() {
        let args = |v: &[&str]| v.iter().map(OsString::from).collect::<Vec<_>>();
        assert!(dispatch(args(&["gregor"])).is_none());
        assert!(dispatch(args(&["gregor", "server.properties"])).is_none());
        assert!(dispatch(args(&["gregor", "--override", "a=b"])).is_none());
    }
}
