//! SaslHandshake (key 17, v1) and SaslAuthenticate (key 36, v0–v2): SASL authentication of a
//! connection on a SASL listener, as Kafka's `SaslServerAuthenticator`.
//!
//! On a SASL listener the connection owns an [`Authenticator`] and routes these two APIs to it
//! (they need per-connection state); before the session is authenticated only ApiVersions and
//! these two are served, anything else closes the connection ("Unexpected Kafka request of type
//! ... during SASL handshake", as Kafka). Mechanisms: PLAIN (users from the listener's JAAS
//! config) and SCRAM-SHA-256/512 (credentials from the metadata image, written by
//! AlterUserScramCredentials). A failed authentication is answered SASL_AUTHENTICATION_FAILED
//! with Kafka's message, then the connection is closed after
//! `connection.failed.authentication.delay.ms`. With `connections.max.reauth.ms` (per listener
//! and mechanism) the final SaslAuthenticate (v1+) names the session lifetime; the client
//! re-authenticates on the same connection (KIP-368: SaslHandshake + SaslAuthenticate again, at
//! most once a second, same mechanism and principal — even after the session expired), and any
//! other request after the session expired closes the connection, as Kafka's `KafkaChannel`.
//!
//! On a listener without SASL (or through the dispatch table at all) both APIs answer
//! ILLEGAL_SASL_STATE, as Kafka's `KafkaApis` does.

use super::{Ctx, Response};
use crate::config::SaslListenerConfig;
use crate::errors::HandlerError;
use bytes::Bytes;
use gregor_auth::scram::{NonceSource, ScramCredential, ScramMechanism, ScramServer};
use gregor_controller::state::ClusterState;
use gregor_protocol::messages::sasl_authenticate_request::SaslAuthenticateRequest;
use gregor_protocol::messages::sasl_authenticate_response::SaslAuthenticateResponse;
use gregor_protocol::messages::sasl_handshake_request::SaslHandshakeRequest;
use gregor_protocol::messages::sasl_handshake_response::SaslHandshakeResponse;
use gregor_protocol::protocol::StrBytes;
use gregor_protocol::ErrorCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Served versions of SaslHandshake. After a v0 handshake the SASL tokens travel as raw
/// size-prefixed frames instead of SaslAuthenticate requests (Kafka 4.1 still serves it).
pub const HANDSHAKE_VERSIONS: (i16, i16) = (0, 1);

/// Served versions of SaslAuthenticate.
pub const AUTHENTICATE_VERSIONS: (i16, i16) = (0, 2);

/// SaslHandshake outside a SASL exchange (PLAINTEXT listener, or an authenticated session
/// that cannot re-authenticate): ILLEGAL_SASL_STATE, as Kafka.
pub async fn handshake_illegal(ctx: &Ctx<'_>, body: &mut Bytes) -> Result<Response, HandlerError> {
    let _req: SaslHandshakeRequest = ctx.decode(body)?;
    ctx.respond(
        &SaslHandshakeResponse::default().with_error_code(ErrorCode::IllegalSaslState.code()),
    )
}

/// SaslAuthenticate outside a SASL exchange: ILLEGAL_SASL_STATE with Kafka's message.
pub async fn authenticate_illegal(
    ctx: &Ctx<'_>,
    body: &mut Bytes,
) -> Result<Response, HandlerError> {
    let _req: SaslAuthenticateRequest = ctx.decode(body)?;
    ctx.respond(
        &SaslAuthenticateResponse::default()
            .with_error_code(ErrorCode::IllegalSaslState.code())
            .with_error_message(Some(StrBytes::from_static_str(
                "SaslAuthenticate request received after successful authentication",
            ))),
    )
}

/// Kafka starts at most one re-authentication a second on a connection (`KafkaChannel`'s
/// `MIN_REAUTH_INTERVAL_ONE_SECOND_NANOS`); a SaslHandshake sooner is served as outside an
/// exchange (ILLEGAL_SASL_STATE, the connection stays open).
const MIN_REAUTH_INTERVAL: Duration = Duration::from_secs(1);

/// The mechanism of the exchange in progress.
enum Exchange {
    Plain,
    /// The SCRAM server and whether client-first has been handled.
    Scram(Box<ScramServer>, bool),
}

#[derive(Default)]
enum State {
    /// Waiting for SaslHandshake.
    #[default]
    Handshake,
    /// Handshake done: SaslAuthenticate steps (raw token frames after a v0 handshake).
    Authenticate {
        mechanism: String,
        exchange: Exchange,
        raw: bool,
    },
    /// Re-authentication asked for another mechanism than the session's: Kafka accepts the
    /// handshake and fails at the next token, closing the connection without a response.
    BadMechanism { message: String, raw: bool },
    /// Authenticated.
    Complete,
}

/// What the connection does after a SASL request.
#[derive(Debug)]
pub enum After {
    /// Keep serving.
    Continue,
    /// Send the response, wait this long, close the connection (reason for the log).
    Close(Duration, String),
}

/// The SASL state of one connection on a SASL listener.
pub struct Authenticator {
    config: Arc<SaslListenerConfig>,
    state: State,
    /// The authenticated user and the mechanism it used (kept across re-authentication).
    principal: Option<(String, String)>,
    /// When the session ends (`None`: it does not; no re-authentication then).
    expires: Option<Instant>,
    /// When the last re-authentication started.
    reauth_started: Option<Instant>,
    failed_delay: Duration,
    api_versions_seen: bool,
}

impl std::fmt::Debug for Authenticator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Authenticator")
            .field("principal", &self.principal)
            .finish()
    }
}

impl Authenticator {
    /// A connection's authenticator: `failed_delay_ms` is
    /// `connection.failed.authentication.delay.ms`; the session lifetimes come with the
    /// listener's config.
    pub fn new(config: Arc<SaslListenerConfig>, failed_delay_ms: u64) -> Self {
        Authenticator {
            config,
            state: State::Handshake,
            principal: None,
            expires: None,
            reauth_started: None,
            failed_delay: Duration::from_millis(failed_delay_ms),
            api_versions_seen: false,
        }
    }

    /// The authenticated user (`None` before authentication).
    pub fn user(&self) -> Option<&str> {
        self.principal.as_ref().map(|(u, _)| u.as_str())
    }

    /// Whether the exchange is between SaslHandshake and its last SaslAuthenticate.
    pub fn in_exchange(&self) -> bool {
        matches!(self.state, State::Authenticate { .. })
    }

    /// Counts an ApiVersions before authentication; false when it is not the first, or comes
    /// after the SaslHandshake (Kafka closes the connection then).
    pub fn api_versions_allowed(&mut self) -> bool {
        match self.state {
            State::Complete => true,
            State::Handshake if self.principal.is_none() => {
                !std::mem::replace(&mut self.api_versions_seen, true)
            }
            _ => false,
        }
    }

    /// Whether requests other than ApiVersions and SASL may be served now.
    pub fn authenticated(&self) -> bool {
        matches!(self.state, State::Complete)
    }

    /// Whether the session outlived `connections.max.reauth.ms` without re-authentication.
    pub fn expired(&self, now: Instant) -> bool {
        self.expires.is_some_and(|e| now >= e)
    }

    /// Whether the next SASL request of this kind, arriving at `now`, belongs to this
    /// authenticator (else the connection closes or answers it through the dispatch table).
    pub fn expects(&self, handshake: bool, now: Instant) -> bool {
        match self.state {
            State::Handshake => handshake,
            State::Authenticate { raw: true, .. } | State::BadMechanism { raw: true, .. } => false,
            State::Authenticate { .. } | State::BadMechanism { .. } => !handshake,
            // KIP-368 re-authentication starts with a new SaslHandshake, also after the
            // session expired, but only when the session has a lifetime and not within a
            // second of the last one; otherwise the handshake is answered ILLEGAL_SASL_STATE
            // (and an expired session closed), as Kafka.
            State::Complete => {
                handshake
                    && self.expires.is_some()
                    && self
                        .reauth_started
                        .is_none_or(|t| now.saturating_duration_since(t) >= MIN_REAUTH_INTERVAL)
            }
        }
    }

    fn close(&self, reason: String) -> After {
        After::Close(self.failed_delay, reason)
    }

    /// SaslHandshake: picks the mechanism.
    pub async fn handshake(
        &mut self,
        ctx: &Ctx<'_>,
        body: &mut Bytes,
    ) -> Result<(Response, After), HandlerError> {
        let req: SaslHandshakeRequest = ctx.decode(body)?;
        let mechanism = req.mechanism.as_str().to_string();
        let (resp, after) = self.begin(mechanism, ctx.version == 0, Instant::now());
        Ok((ctx.respond(&resp)?, after))
    }

    /// The SaslHandshake of `mechanism` at `now` (`raw`: v0, tokens follow as raw frames).
    fn begin(
        &mut self,
        mechanism: String,
        raw: bool,
        now: Instant,
    ) -> (SaslHandshakeResponse, After) {
        if matches!(self.state, State::Complete) {
            self.reauth_started = Some(now);
        }
        let enabled: Vec<StrBytes> = self
            .config
            .mechanisms
            .iter()
            .map(|m| StrBytes::from_string(m.clone()))
            .collect();
        let mut resp = SaslHandshakeResponse::default().with_mechanisms(enabled);
        if !self.config.mechanisms.contains(&mechanism) {
            resp.error_code = ErrorCode::UnsupportedSaslMechanism.code();
            let reason = format!(
                "Unsupported SASL mechanism {mechanism} (enabled: {})",
                self.config.mechanisms.join(", ")
            );
            return (resp, After::Close(Duration::ZERO, reason));
        }
        if let Some((_, previous)) = &self.principal {
            if *previous != mechanism {
                // Kafka answers the handshake normally and fails the next token.
                self.state = State::BadMechanism {
                    message: format!("SASL mechanism '{mechanism}' requested by client is not supported for re-authentication of mechanism '{previous}'"),
                    raw,
                };
                return (resp, After::Continue);
            }
        }
        let exchange = match ScramMechanism::from_name(&mechanism) {
            Some(m) => Exchange::Scram(Box::new(ScramServer::new(m, NonceSource::Random)), false),
            None => Exchange::Plain,
        };
        self.state = State::Authenticate {
            mechanism,
            exchange,
            raw,
        };
        (resp, After::Continue)
    }

    /// Whether the next frame is a raw SASL token (after a v0 SaslHandshake), not a request.
    pub fn expects_raw_token(&self) -> bool {
        matches!(
            self.state,
            State::Authenticate { raw: true, .. } | State::BadMechanism { raw: true, .. }
        )
    }

    /// One raw SASL token after a v0 handshake: the raw reply to send (size-prefixed, an empty
    /// frame when PLAIN succeeds), or a close without reply when it failed, as Kafka.
    pub fn raw_token(
        &mut self,
        ctx_peer: std::net::SocketAddr,
        image: &ClusterState,
        token: &[u8],
    ) -> (Option<Vec<u8>>, After) {
        match self.step(ctx_peer, image, token) {
            Step::More(reply) => (Some(reply), After::Continue),
            Step::Done(reply, _) => (Some(reply), After::Continue),
            Step::Failed(message) | Step::Abort(message) => (None, self.close(message)),
        }
    }

    /// Runs one step of the exchange in progress.
    fn step(&mut self, peer: std::net::SocketAddr, image: &ClusterState, token: &[u8]) -> Step {
        let reauthenticating = self.principal.is_some();
        if let State::BadMechanism { message, .. } = &self.state {
            return Step::Abort(message.clone());
        }
        let State::Authenticate {
            mechanism,
            exchange,
            ..
        } = &mut self.state
        else {
            return Step::Failed("SASL token before SaslHandshake".into());
        };
        let mechanism = mechanism.clone();
        let phase = if reauthenticating {
            "re-authentication"
        } else {
            "authentication"
        };
        let (reply, outcome): (Vec<u8>, Result<Option<String>, String>) = match exchange {
            Exchange::Plain => {
                let users = &self.config.plain_users;
                match gregor_auth::plain::authenticate(token, |u| users.get(u)) {
                    Ok(user) => (Vec::new(), Ok(Some(user))),
                    Err(e) => (Vec::new(), Err(e.to_string())),
                }
            }
            Exchange::Scram(server, first_done) => {
                let m = server.mechanism();
                let stepped = if !*first_done {
                    *first_done = true;
                    let lookup = |user: &str| {
                        image
                            .scram_credential(user, m.type_byte())
                            .map(|c| ScramCredential {
                                salt: c.salt.clone(),
                                stored_key: c.stored_key.clone(),
                                server_key: c.server_key.clone(),
                                iterations: c.iterations,
                            })
                    };
                    server
                        .handle_client_first(token, lookup)
                        .map(|first| (first, None))
                } else {
                    server
                        .handle_client_final(token)
                        .map(|(last, outcome)| (last, Some(outcome.username)))
                };
                match stepped {
                    Ok((reply, user)) => (reply, Ok(user)),
                    Err(e) => {
                        tracing::info!(%peer, error = %e, "SCRAM {phase} failed");
                        (Vec::new(), Err(scram_message(&e, m, reauthenticating)))
                    }
                }
            }
        };
        match outcome {
            Ok(None) => Step::More(reply),
            Ok(Some(user)) => {
                if let Some((previous, _)) = &self.principal {
                    if *previous != user {
                        self.state = State::Handshake;
                        // Kafka's text (`KafkaPrincipal` type and name joined by a dot).
                        return Step::Failed(format!(
                            "Cannot change principals during re-authentication from User.{previous}: User.{user}"
                        ));
                    }
                }
                tracing::debug!(%peer, %user, %mechanism, phase, "authenticated");
                let lifetime = self.config.session_lifetime(&mechanism);
                self.expires = lifetime.map(|l| Instant::now() + l);
                self.principal = Some((user, mechanism));
                self.state = State::Complete;
                Step::Done(reply, lifetime)
            }
            Err(message) => {
                self.state = State::Handshake;
                Step::Failed(message)
            }
        }
    }

    /// SaslAuthenticate: one step of the exchange.
    pub async fn authenticate(
        &mut self,
        ctx: &Ctx<'_>,
        body: &mut Bytes,
    ) -> Result<(Response, After), HandlerError> {
        let req: SaslAuthenticateRequest = ctx.decode(body)?;
        if let State::BadMechanism { message, .. } = &self.state {
            return Ok((Response::None, self.close(message.clone())));
        }
        if !matches!(self.state, State::Authenticate { raw: false, .. }) {
            return Ok((
                ctx.respond(
                    &SaslAuthenticateResponse::default()
                        .with_error_code(ErrorCode::IllegalSaslState.code()),
                )?,
                self.close("SaslAuthenticate before SaslHandshake".into()),
            ));
        }
        let image = ctx.metadata().image();
        let mut resp = SaslAuthenticateResponse::default();
        match self.step(ctx.peer, &image, &req.auth_bytes) {
            Step::More(reply) => {
                resp.auth_bytes = Bytes::from(reply);
                Ok((ctx.respond(&resp)?, After::Continue))
            }
            Step::Done(reply, lifetime) => {
                resp.auth_bytes = Bytes::from(reply);
                if let (Some(l), true) = (lifetime, ctx.version >= 1) {
                    resp.session_lifetime_ms = l.as_millis() as i64;
                }
                Ok((ctx.respond(&resp)?, After::Continue))
            }
            Step::Abort(message) => Ok((Response::None, self.close(message))),
            Step::Failed(message) => {
                resp.error_code = ErrorCode::SaslAuthenticationFailed.code();
                resp.error_message = Some(StrBytes::from_string(message.clone()));
                Ok((ctx.respond(&resp)?, self.close(message)))
            }
        }
    }
}

/// The result of one exchange step.
enum Step {
    /// A challenge to send; more steps follow.
    More(Vec<u8>),
    /// Authenticated: the last reply and the session lifetime.
    Done(Vec<u8>, Option<Duration>),
    /// Failed with this client-visible message.
    Failed(String),
    /// Failed: close without a response (reason for the log).
    Abort(String),
}

fn scram_message(
    e: &gregor_auth::scram::ScramError,
    m: ScramMechanism,
    reauthenticating: bool,
) -> String {
    if reauthenticating {
        e.reauthentication_client_message(m)
    } else {
        e.client_message(m)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn authenticator(plain_ms: i64) -> Authenticator {
        let config = SaslListenerConfig {
            mechanisms: vec!["PLAIN".into(), "SCRAM-SHA-256".into()],
            plain_users: [("alice", "a-secret"), ("admin", "b-secret")]
                .into_iter()
                .map(|(u, p)| (u.to_string(), p.to_string()))
                .collect(),
            max_reauth_ms: [("PLAIN".to_string(), plain_ms), ("SCRAM-SHA-256".into(), 0)]
                .into_iter()
                .collect(),
        };
        Authenticator::new(Arc::new(config), 100)
    }

    fn plain(a: &mut Authenticator, user: &str, password: &str, now: Instant) -> Step {
        let (resp, after) = a.begin("PLAIN".into(), false, now);
        assert_eq!(resp.error_code, 0);
        assert!(matches!(after, After::Continue), "{after:?}");
        let token = format!("\0{user}\0{password}");
        a.step(
            "127.0.0.1:1".parse().unwrap(),
            &ClusterState::new(),
            token.as_bytes(),
        )
    }

    #[test]
    fn session_lifetime_and_expiry() {
        let mut a = authenticator(3000);
        assert!(a.api_versions_allowed());
        assert!(!a.api_versions_allowed(), "a second ApiVersions");
        let t0 = Instant::now();
        let Step::Done(reply, lifetime) = plain(&mut a, "alice", "a-secret", t0) else {
            panic!("PLAIN failed")
        };
        assert!(reply.is_empty());
        assert_eq!(lifetime, Some(Duration::from_millis(3000)));
        assert!(a.authenticated() && a.api_versions_allowed());
        let now = Instant::now();
        assert!(!a.expired(now));
        assert!(a.expired(now + Duration::from_millis(3001)));
        // A re-authentication is possible, also after the session expired.
        assert!(a.expects(true, now + Duration::from_secs(10)));
        assert!(
            !a.expects(false, now),
            "SaslAuthenticate outside an exchange"
        );
    }

    #[test]
    fn no_lifetime_no_reauthentication() {
        let mut a = authenticator(0);
        let Step::Done(_, lifetime) = plain(&mut a, "alice", "a-secret", Instant::now()) else {
            panic!("PLAIN failed")
        };
        assert_eq!(lifetime, None);
        let later = Instant::now() + Duration::from_secs(3600);
        assert!(!a.expired(later));
        assert!(
            !a.expects(true, later),
            "SaslHandshake is ILLEGAL_SASL_STATE then"
        );
    }

    #[test]
    fn reauthentication_at_most_once_a_second() {
        let mut a = authenticator(3000);
        let t0 = Instant::now();
        assert!(matches!(
            plain(&mut a, "alice", "a-secret", t0),
            Step::Done(..)
        ));
        // The first re-authentication may come at once.
        assert!(a.expects(true, t0));
        let t1 = t0 + Duration::from_millis(10);
        assert!(matches!(
            plain(&mut a, "alice", "a-secret", t1),
            Step::Done(..)
        ));
        assert!(a.authenticated());
        assert!(!a.expects(true, t1 + Duration::from_millis(999)));
        assert!(a.expects(true, t1 + Duration::from_secs(1)));
        // An ApiVersions during a re-authentication exchange closes the connection.
        let _ = a.begin("PLAIN".into(), false, t1 + Duration::from_secs(1));
        assert!(a.in_exchange() && !a.api_versions_allowed());
    }

    #[test]
    fn reauthentication_cannot_change_principal() {
        let mut a = authenticator(3000);
        assert!(matches!(
            plain(&mut a, "alice", "a-secret", Instant::now()),
            Step::Done(..)
        ));
        let Step::Failed(message) = plain(&mut a, "admin", "b-secret", Instant::now()) else {
            panic!("principal change accepted")
        };
        assert_eq!(
            message,
            "Cannot change principals during re-authentication from User.alice: User.admin"
        );
        assert!(!a.authenticated());
    }

    #[test]
    fn reauthentication_cannot_change_mechanism() {
        let mut a = authenticator(3000);
        assert!(matches!(
            plain(&mut a, "alice", "a-secret", Instant::now()),
            Step::Done(..)
        ));
        // The handshake is accepted, as Kafka; the next token fails without a response.
        let (resp, after) = a.begin("SCRAM-SHA-256".into(), false, Instant::now());
        assert_eq!(resp.error_code, 0);
        assert_eq!(resp.mechanisms.len(), 2);
        assert!(matches!(after, After::Continue));
        assert!(a.expects(false, Instant::now()) && !a.in_exchange() && !a.authenticated());
        let Step::Abort(message) = a.step(
            "127.0.0.1:1".parse().unwrap(),
            &ClusterState::new(),
            b"n,,n=alice,r=x",
        ) else {
            panic!("mechanism change accepted")
        };
        assert_eq!(
            message,
            "SASL mechanism 'SCRAM-SHA-256' requested by client is not supported for re-authentication of mechanism 'PLAIN'"
        );
        // After a v0 handshake the next raw token is the one that fails.
        let mut a = authenticator(3000);
        assert!(matches!(
            plain(&mut a, "alice", "a-secret", Instant::now()),
            Step::Done(..)
        ));
        let _ = a.begin("SCRAM-SHA-256".into(), true, Instant::now());
        assert!(a.expects_raw_token());
        let (reply, after) = a.raw_token(
            "127.0.0.1:1".parse().unwrap(),
            &ClusterState::new(),
            b"n,,n=alice,r=x",
        );
        assert!(reply.is_none() && matches!(after, After::Close(..)));
    }
}
