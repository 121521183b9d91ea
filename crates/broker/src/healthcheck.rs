//! `gregor healthcheck`: does a broker answer ApiVersions? Exit 0 if it does, 1 if not.
//!
//! Made for container health checks (the image has no shell, so no `nc` or `kcat`): Docker's
//! `HEALTHCHECK CMD ["gregor", "healthcheck"]` runs it inside the container with the
//! container's environment, so by default it checks the first client listener configured by
//! `KAFKA_LISTENERS` (a wildcard host such as `0.0.0.0` means `127.0.0.1`), or
//! `localhost:9092` when nothing is configured.

use crate::config::{Config, Listener};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::time::{Duration, Instant};

/// Usage of the subcommand.
pub const USAGE: &str = "\
USAGE:
    gregor healthcheck [--bootstrap host:port] [--timeout-ms N]

Connects to the broker, sends an ApiVersions request and exits 0 if it answers without error,
1 otherwise (including bad arguments). Prints one line saying which.

OPTIONS:
    --bootstrap host:port    Broker to check. Default: the first client listener of the
                             configuration from the KAFKA_* environment (0.0.0.0 -> 127.0.0.1),
                             else localhost:9092.
    --timeout-ms N           Overall time limit in milliseconds (default 2000).
";

/// Default overall time limit.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_millis(2000);

/// Why a broker is not healthy.
#[derive(Debug, thiserror::Error)]
pub enum Unhealthy {
    /// The address does not resolve.
    #[error("cannot resolve {0}: {1}")]
    Resolve(String, String),
    /// No connection could be made, or the exchange failed.
    #[error("{addr}: {source}")]
    Io {
        /// Address tried.
        addr: String,
        /// Cause.
        source: std::io::Error,
    },
    /// The broker answered, but not with a successful ApiVersions response.
    #[error("{0}: {1}")]
    BadResponse(String, String),
}

/// The address to check when `--bootstrap` is not given: the first client listener of `config`
/// (wildcard hosts are reached on the loopback address).
pub fn default_bootstrap(config: Option<&Config>) -> String {
    match config.and_then(|c| c.listeners.first()) {
        Some(l) => listener_address(l),
        None => "localhost:9092".to_string(),
    }
}

fn listener_address(l: &Listener) -> String {
    let host = match l.host.as_str() {
        "" | "0.0.0.0" => "127.0.0.1",
        "::" | "[::]" => "::1",
        h => h,
    };
    if host.contains(':') {
        format!("[{host}]:{}", l.port)
    } else {
        format!("{host}:{}", l.port)
    }
}

/// An ApiVersions v0 request frame (request header v1, client id `gregor-healthcheck`).
fn api_versions_request(correlation_id: i32) -> Vec<u8> {
    const CLIENT_ID: &[u8] = b"gregor-healthcheck";
    let mut body = Vec::with_capacity(10 + CLIENT_ID.len());
    body.extend_from_slice(&18i16.to_be_bytes()); // ApiVersions
    body.extend_from_slice(&0i16.to_be_bytes()); // version 0
    body.extend_from_slice(&correlation_id.to_be_bytes());
    body.extend_from_slice(&(CLIENT_ID.len() as i16).to_be_bytes());
    body.extend_from_slice(CLIENT_ID);
    let mut frame = (body.len() as i32).to_be_bytes().to_vec();
    frame.extend_from_slice(&body);
    frame
}

/// Checks a v0 ApiVersions response body: correlation id, error code 0, and the number of APIs.
fn check_response(body: &[u8], correlation_id: i32) -> Result<usize, String> {
    if body.len() < 10 {
        return Err(format!("short ApiVersions response ({} bytes)", body.len()));
    }
    let corr = i32::from_be_bytes([body[0], body[1], body[2], body[3]]);
    if corr != correlation_id {
        return Err(format!(
            "correlation id {corr} in the response, expected {correlation_id}"
        ));
    }
    let error = i16::from_be_bytes([body[4], body[5]]);
    if error != 0 {
        return Err(format!("ApiVersions error code {error}"));
    }
    let count = i32::from_be_bytes([body[6], body[7], body[8], body[9]]);
    if count <= 0 {
        return Err(format!("ApiVersions lists {count} APIs"));
    }
    Ok(count as usize)
}

/// Sends ApiVersions to `bootstrap` (`host:port`) within `timeout`; `Ok(number of APIs)`.
pub fn check(bootstrap: &str, timeout: Duration) -> Result<usize, Unhealthy> {
    let deadline = Instant::now() + timeout;
    let addrs: Vec<SocketAddr> = bootstrap
        .to_socket_addrs()
        .map_err(|e| Unhealthy::Resolve(bootstrap.to_string(), e.to_string()))?
        .collect();
    let io = |source| Unhealthy::Io {
        addr: bootstrap.to_string(),
        source,
    };
    let mut last = None;
    for addr in addrs {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            break;
        }
        match TcpStream::connect_timeout(&addr, left) {
            Ok(stream) => return exchange(stream, bootstrap, deadline),
            Err(e) => last = Some(e),
        }
    }
    Err(io(last.unwrap_or_else(|| {
        std::io::Error::new(std::io::ErrorKind::TimedOut, "no address answered in time")
    })))
}

fn exchange(mut stream: TcpStream, bootstrap: &str, deadline: Instant) -> Result<usize, Unhealthy> {
    let io = |source| Unhealthy::Io {
        addr: bootstrap.to_string(),
        source,
    };
    let left = || {
        let d = deadline.saturating_duration_since(Instant::now());
        // A zero timeout means "block forever" to the socket API.
        d.max(Duration::from_millis(1))
    };
    let correlation_id = 0x6772_6567; // "greg"
    stream.set_write_timeout(Some(left())).map_err(io)?;
    stream
        .write_all(&api_versions_request(correlation_id))
        .map_err(io)?;
    let mut len = [0u8; 4];
    stream.set_read_timeout(Some(left())).map_err(io)?;
    stream.read_exact(&mut len).map_err(io)?;
    let len = i32::from_be_bytes(len);
    if !(10..=1 << 20).contains(&len) {
        return Err(Unhealthy::BadResponse(
            bootstrap.to_string(),
            format!("implausible response size {len}"),
        ));
    }
    let mut body = vec![0u8; len as usize];
    stream.set_read_timeout(Some(left())).map_err(io)?;
    stream.read_exact(&mut body).map_err(io)?;
    check_response(&body, correlation_id)
        .map_err(|e| Unhealthy::BadResponse(bootstrap.to_string(), e))
}

/// Runs `gregor healthcheck ARGS...` (the arguments after the subcommand) and returns the exit
/// code: 0 healthy, 1 unhealthy or bad arguments.
pub fn main(args: impl IntoIterator<Item = String>) -> u8 {
    let mut bootstrap = None;
    let mut timeout = DEFAULT_TIMEOUT;
    let mut args = args.into_iter();
    while let Some(a) = args.next() {
        let (flag, inline) = match a.split_once('=') {
            Some((f, v)) if f.starts_with("--") => (f.to_string(), Some(v.to_string())),
            _ => (a.clone(), None),
        };
        let mut value = |name: &str| {
            inline
                .clone()
                .or_else(|| args.next())
                .ok_or(name.to_string())
        };
        match flag.as_str() {
            "-h" | "--help" => {
                print!("{USAGE}");
                return 0;
            }
            "--bootstrap" | "--bootstrap-server" => match value("--bootstrap") {
                Ok(v) => bootstrap = Some(v),
                Err(f) => return usage_error(&format!("{f} needs host:port")),
            },
            "--timeout-ms" => match value("--timeout-ms").map(|v| v.parse::<u64>()) {
                Ok(Ok(ms)) if ms > 0 => timeout = Duration::from_millis(ms),
                _ => return usage_error("--timeout-ms needs a positive number"),
            },
            other => return usage_error(&format!("unknown argument {other}")),
        }
    }
    let bootstrap = bootstrap.unwrap_or_else(|| {
        let pairs = crate::env_config::settings_from_env(crate::env_config::process_env())
            .into_iter()
            .map(|s| (s.key, s.value));
        default_bootstrap(Config::from_pairs(pairs).ok().as_ref())
    });
    let started = Instant::now();
    match check(&bootstrap, timeout) {
        Ok(apis) => {
            println!(
                "healthy: {bootstrap} answered ApiVersions ({apis} APIs) in {} ms",
                started.elapsed().as_millis()
            );
            0
        }
        Err(e) => {
            println!("unhealthy: {e}");
            1
        }
    }
}

fn usage_error(msg: &str) -> u8 {
    eprintln!("gregor healthcheck: {msg}\n\n{USAGE}");
    1
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(pairs: &[(&str, &str)]) -> Config {
        Config::from_pairs(pairs.iter().map(|(k, v)| (k.to_string(), v.to_string()))).unwrap()
    }

    #[test]
    fn default_bootstrap_is_the_first_client_listener() {
        assert_eq!(default_bootstrap(None), "localhost:9092");
        assert_eq!(default_bootstrap(Some(&cfg(&[]))), "127.0.0.1:9092");
        let c = cfg(&[
            (
                "listeners",
                "CONTROLLER://:9093,PLAINTEXT://gregor:29092,HOST://0.0.0.0:9092",
            ),
            ("controller.listener.names", "CONTROLLER"),
            (
                "listener.security.protocol.map",
                "CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT,HOST:PLAINTEXT",
            ),
        ]);
        assert_eq!(default_bootstrap(Some(&c)), "gregor:29092");
        let c = cfg(&[("listeners", "PLAINTEXT://:19092")]);
        assert_eq!(default_bootstrap(Some(&c)), "127.0.0.1:19092");
        let c = cfg(&[("listeners", "PLAINTEXT://[::]:19092")]);
        assert_eq!(default_bootstrap(Some(&c)), "[::1]:19092");
    }

    #[test]
    fn responses_are_checked() {
        let mut ok = 7i32.to_be_bytes().to_vec();
        ok.extend_from_slice(&0i16.to_be_bytes());
        ok.extend_from_slice(&1i32.to_be_bytes());
        ok.extend_from_slice(&[0, 18, 0, 0, 0, 4]);
        assert_eq!(check_response(&ok, 7), Ok(1));
        assert!(check_response(&ok, 8).unwrap_err().contains("correlation"));
        let mut err = ok.clone();
        err[4..6].copy_from_slice(&35i16.to_be_bytes());
        assert!(check_response(&err, 7).unwrap_err().contains("35"));
        assert!(check_response(&ok[..5], 7).is_err());
    }

    #[test]
    fn request_frame_is_api_versions_v0() {
        let f = api_versions_request(5);
        assert_eq!(
            i32::from_be_bytes(f[0..4].try_into().unwrap()) as usize,
            f.len() - 4
        );
        assert_eq!(&f[4..8], &[0, 18, 0, 0]);
        assert_eq!(&f[8..12], &5i32.to_be_bytes());
    }

    #[test]
    fn bad_arguments_exit_1() {
        assert_eq!(main(["--nope".to_string()]), 1);
        assert_eq!(main(["--bootstrap".to_string()]), 1);
        assert_eq!(main(["--timeout-ms=0".to_string()]), 1);
    }
}
