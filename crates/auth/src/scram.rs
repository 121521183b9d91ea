//! SCRAM-SHA-256 and SCRAM-SHA-512 (RFC 5802, RFC 7677), server side, as Kafka's `ScramSaslServer` does it.
//!
//! * [`ScramMechanism`]: the two mechanisms with Kafka's type bytes, names and iteration bounds.
//! * [`ScramCredential`]: what Kafka stores per (user, mechanism): salt, StoredKey, ServerKey, iterations
//!   (never the password or the salted password); [`salted_password`] is `Hi()` (PBKDF2).
//! * [`ScramServer`]: the two-step server state machine
//!   (client-first → server-first, client-final → server-final), with Kafka's grammar and failure classes.
//! * [`ScramClient`]: the client side (a broker authenticating to another broker).
//! * [`ScramError`]: separates failures whose text reaches the client verbatim from the generic
//!   "invalid credentials" class; [`ScramError::client_message`] gives Kafka's exact client-visible text.
//!
//! Where this implementation is stricter than Kafka it follows RFC 5802 in ways that no real client
//! notices: the client-final nonce must *equal* the combined nonce (Kafka checks `endsWith`), the
//! channel binding `c=` must decode to the gs2 header the client sent (Kafka ignores it), and the
//! AuthMessage is built from the raw bytes the client sent (Kafka re-serializes the parsed fields,
//! which is byte-identical for conforming clients). An `a=` authzid is compared with the username after
//! decoding `=2C`/`=3D` in both (Kafka compares the raw authzid with the decoded username).
//! Like Kafka, the reserved `m=` attribute is accepted and ignored, and unknown extensions are ignored.

use std::collections::BTreeMap;
use std::fmt;

use base64::alphabet;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use base64::Engine as _;
use hmac::{Hmac, Mac};
use rand::Rng as _;
use sha2::{Digest, Sha256, Sha512};
use subtle::ConstantTimeEq;

/// Standard base64 with padding; like Java's `Base64.getDecoder()` it ignores non-zero trailing bits.
const B64: GeneralPurpose = GeneralPurpose::new(
    &alphabet::STANDARD,
    GeneralPurposeConfig::new()
        .with_encode_padding(true)
        .with_decode_allow_trailing_bits(true)
        .with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// The SCRAM extension (KIP-48/KIP-342) that asks for delegation-token authentication.
const TOKEN_AUTH_EXTENSION: &str = "tokenauth";

/// A SCRAM mechanism Kafka supports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ScramMechanism {
    /// `SCRAM-SHA-256` (type byte 1): SHA-256 / HmacSHA256.
    Sha256,
    /// `SCRAM-SHA-512` (type byte 2): SHA-512 / HmacSHA512.
    Sha512,
}

impl ScramMechanism {
    /// Both mechanisms, in type-byte order.
    pub const ALL: [ScramMechanism; 2] = [ScramMechanism::Sha256, ScramMechanism::Sha512];

    /// The SASL mechanism name: `"SCRAM-SHA-256"` or `"SCRAM-SHA-512"`.
    pub const fn name(self) -> &'static str {
        match self {
            ScramMechanism::Sha256 => "SCRAM-SHA-256",
            ScramMechanism::Sha512 => "SCRAM-SHA-512",
        }
    }

    /// Kafka's type byte, used on the wire (Alter/DescribeUserScramCredentials) and in metadata
    /// records: 1 for SHA-256, 2 for SHA-512 (0 is `UNKNOWN` in the admin API).
    pub const fn type_byte(self) -> i8 {
        match self {
            ScramMechanism::Sha256 => 1,
            ScramMechanism::Sha512 => 2,
        }
    }

    /// The mechanism with this exact (case-sensitive) SASL name.
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|m| m.name() == name)
    }

    /// The mechanism with this type byte; `None` for 0 (`UNKNOWN`) and anything else.
    pub const fn from_type(type_byte: i8) -> Option<Self> {
        match type_byte {
            1 => Some(ScramMechanism::Sha256),
            2 => Some(ScramMechanism::Sha512),
            _ => None,
        }
    }

    /// Fewest iterations Kafka accepts: 4096 for both mechanisms. The controller rejects upserts
    /// below it ("Too few iterations") and the SASL server refuses stored credentials below it.
    pub const fn min_iterations(self) -> i32 {
        4096
    }

    /// Most iterations the Kafka controller accepts in an upsert: 16384 ("Too many iterations").
    pub const fn max_iterations(self) -> i32 {
        16384
    }

    fn hmac(self, key: &[u8], parts: &[&[u8]]) -> Vec<u8> {
        fn run<M: Mac + hmac::digest::KeyInit>(key: &[u8], parts: &[&[u8]]) -> Vec<u8> {
            // HMAC takes keys of any length (long ones are hashed), so this cannot fail.
            let mut mac = <M as Mac>::new_from_slice(key).expect("HMAC accepts keys of any length");
            for part in parts {
                mac.update(part);
            }
            mac.finalize().into_bytes().to_vec()
        }
        match self {
            ScramMechanism::Sha256 => run::<Hmac<Sha256>>(key, parts),
            ScramMechanism::Sha512 => run::<Hmac<Sha512>>(key, parts),
        }
    }

    fn hash(self, data: &[u8]) -> Vec<u8> {
        match self {
            ScramMechanism::Sha256 => Sha256::digest(data).to_vec(),
            ScramMechanism::Sha512 => Sha512::digest(data).to_vec(),
        }
    }
}

impl fmt::Display for ScramMechanism {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// `SaltedPassword = Hi(password, salt, iterations)`, i.e. PBKDF2-HMAC with the mechanism's hash and
/// one output block. The password is used as its UTF-8 bytes, without SASLprep, as Kafka's clients do.
/// As in Kafka's `ScramFormatter.hi`, an iteration count below 1 computes a single iteration.
pub fn salted_password(
    mechanism: ScramMechanism,
    password: &str,
    salt: &[u8],
    iterations: i32,
) -> Vec<u8> {
    let rounds = iterations.max(1).unsigned_abs();
    match mechanism {
        ScramMechanism::Sha256 => {
            pbkdf2::pbkdf2_hmac_array::<Sha256, 32>(password.as_bytes(), salt, rounds).to_vec()
        }
        ScramMechanism::Sha512 => {
            pbkdf2::pbkdf2_hmac_array::<Sha512, 64>(password.as_bytes(), salt, rounds).to_vec()
        }
    }
}

/// A stored SCRAM credential, as in Kafka's `UserScramCredentialRecord`: the salted password itself
/// is never kept. `Debug` does not print the keys.
#[derive(Clone, PartialEq, Eq)]
pub struct ScramCredential {
    /// The salt the client must use (Kafka's admin client makes ~26 random ASCII bytes).
    pub salt: Vec<u8>,
    /// `H(HMAC(SaltedPassword, "Client Key"))`.
    pub stored_key: Vec<u8>,
    /// `HMAC(SaltedPassword, "Server Key")`.
    pub server_key: Vec<u8>,
    /// The PBKDF2 iteration count.
    pub iterations: i32,
}

impl ScramCredential {
    /// Derives StoredKey and ServerKey from a salted password, as Kafka's controller does for an
    /// AlterUserScramCredentials upsertion (the client sends salt and salted password). The iteration
    /// count is stored as given; bound checks are the caller's (see [`ScramMechanism::min_iterations`]).
    pub fn from_salted_password(
        mechanism: ScramMechanism,
        salt: &[u8],
        salted_password: &[u8],
        iterations: i32,
    ) -> Self {
        let client_key = mechanism.hmac(salted_password, &[b"Client Key"]);
        ScramCredential {
            salt: salt.to_vec(),
            stored_key: mechanism.hash(&client_key),
            server_key: mechanism.hmac(salted_password, &[b"Server Key"]),
            iterations,
        }
    }

    /// Builds a credential from a clear-text password (bootstrap credentials, tests).
    /// Use [`secure_random_string`] for a Kafka-style salt.
    pub fn new(mechanism: ScramMechanism, password: &str, salt: &[u8], iterations: i32) -> Self {
        let salted = salted_password(mechanism, password, salt, iterations);
        Self::from_salted_password(mechanism, salt, &salted, iterations)
    }
}

impl fmt::Debug for ScramCredential {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ScramCredential")
            .field("salt", &B64.encode(&self.salt))
            .field("stored_key", &"<redacted>")
            .field("server_key", &"<redacted>")
            .field("iterations", &self.iterations)
            .finish()
    }
}

/// A random string of 26 characters from `[0-9a-z]` (≈134 bits) from the operating system's CSPRNG,
/// like Kafka's `ScramFormatter.secureRandomString()` (`new BigInteger(130, SecureRandom).toString(36)`).
/// Used for server nonces; Kafka's admin client also uses its UTF-8 bytes as the salt.
pub fn secure_random_string() -> String {
    const ALPHABET: &[u8; 36] = b"0123456789abcdefghijklmnopqrstuvwxyz";
    let mut rng = rand::rngs::OsRng;
    (0..26)
        .map(|_| char::from(ALPHABET[rng.gen_range(0..ALPHABET.len())]))
        .collect()
}

/// Where a [`ScramServer`] gets its server nonce.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum NonceSource {
    /// A fresh [`secure_random_string`] per exchange (production).
    #[default]
    Random,
    /// This exact nonce (deterministic tests). It must be non-empty printable ASCII
    /// (`0x21..=0x7E`) without `,`, otherwise the exchange fails at client-first.
    Fixed(String),
}

/// The result of a successful SCRAM exchange.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthOutcome {
    /// The authenticated name (decoded from the client's `n=`): the principal name `User:<username>`,
    /// or the token id when [`AuthOutcome::token_auth`] is set (the principal is then the token's owner).
    pub username: String,
    /// The client sent the extension `tokenauth=true` (case-insensitive, as Java's
    /// `Boolean.parseBoolean`): this was delegation-token authentication. Only possible when enabled
    /// with [`ScramServer::with_token_auth`].
    pub token_auth: bool,
    /// All extensions from client-first (`key=value` after the nonce; the last of a repeated key wins).
    pub extensions: BTreeMap<String, String>,
}

/// Why a SCRAM exchange failed, in the two classes Kafka's `SaslServerAuthenticator` distinguishes.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ScramError {
    /// Kafka's `SaslAuthenticationException`: the message is sent to the client verbatim
    /// (e.g. "Authentication failed: Client requested an authorization id that is different from username").
    #[error("{0}")]
    Authentication(String),
    /// Any other Kafka `SaslException`: unknown user, wrong password, malformed message, too few
    /// iterations, wrong nonce. The text (Kafka's internal message) is for the broker's log only; the
    /// client gets the fixed text of [`ScramError::client_message`].
    #[error("{0}")]
    InvalidCredentials(String),
    /// A message arrived in a state that expects none (Kafka's `IllegalSaslStateException`: Kafka
    /// closes the connection without a response). The payload is Kafka's state name.
    #[error("Unexpected challenge in Sasl server state {0}")]
    IllegalState(&'static str),
}

impl ScramError {
    /// The error message Kafka puts in the SaslAuthenticate response (error code
    /// SASL_AUTHENTICATION_FAILED, 58) during authentication: an [`ScramError::Authentication`] text
    /// verbatim, otherwise "Authentication failed during authentication due to invalid credentials with
    /// SASL mechanism SCRAM-SHA-256" (or SCRAM-SHA-512).
    pub fn client_message(&self, mechanism: ScramMechanism) -> String {
        self.message_for(mechanism, "authentication")
    }

    /// Like [`ScramError::client_message`], but for a failed KIP-368 re-authentication
    /// ("... during re-authentication due to invalid credentials ...").
    pub fn reauthentication_client_message(&self, mechanism: ScramMechanism) -> String {
        self.message_for(mechanism, "re-authentication")
    }

    fn message_for(&self, mechanism: ScramMechanism, phase: &str) -> String {
        match self {
            ScramError::Authentication(message) => message.clone(),
            ScramError::InvalidCredentials(_) | ScramError::IllegalState(_) => format!(
                "Authentication failed during {phase} due to invalid credentials with SASL mechanism {}",
                mechanism.name()
            ),
        }
    }
}

/// The parsed, validated client-first message.
struct ClientFirst<'a> {
    /// `n,` [`a=` authzid] `,` as received.
    gs2_header: &'a [u8],
    /// The raw (still escaped) authzid, if any.
    authzid: Option<&'a str>,
    /// The decoded username.
    username: String,
    nonce: &'a str,
    /// client-first-bare as received (everything after the gs2 header).
    bare: &'a [u8],
    extensions: BTreeMap<String, String>,
}

/// The parsed, validated client-final message.
struct ClientFinal<'a> {
    channel_binding: Vec<u8>,
    nonce: &'a str,
    proof: Vec<u8>,
    /// client-final-message-without-proof as received.
    without_proof: &'a [u8],
}

/// Text whose bytes are all in `0x01..=0x7F` (the `[\x01-\x7F]` of Kafka's regexes).
fn ascii_text(message: &[u8]) -> Option<&str> {
    if message.iter().all(|&b| (0x01..=0x7F).contains(&b)) {
        std::str::from_utf8(message).ok()
    } else {
        None
    }
}

/// `SASLNAME = (?:[\x01-\x7F&&[^=,]]|=2C|=3D)+` (the caller has checked ASCII and split on commas).
fn is_saslname(s: &str) -> bool {
    let b = s.as_bytes();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'=' {
            match b.get(i + 1..i + 3) {
                Some(b"2C") | Some(b"3D") => i += 3,
                _ => return false,
            }
        } else {
            i += 1;
        }
    }
    !b.is_empty()
}

/// Decodes `=2C` → `,` and `=3D` → `=`; `None` for any other `=` (Kafka: "Invalid username").
fn decode_saslname(s: &str) -> Option<String> {
    if !is_saslname(s) {
        return None;
    }
    Some(s.replace("=2C", ",").replace("=3D", "="))
}

/// `PRINTABLE = [\x21-\x7E&&[^,]]+`.
fn is_printable(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| (0x21..=0x7E).contains(&b) && b != b',')
}

/// `BASE64 = (?:[a-zA-Z0-9/+]{4})*(?:[a-zA-Z0-9/+]{3}=|[a-zA-Z0-9/+]{2}==)?` (may be empty).
fn is_base64(s: &str) -> bool {
    let b = s.as_bytes();
    if b.len() % 4 != 0 {
        return false;
    }
    let data = b
        .strip_suffix(b"==")
        .or_else(|| b.strip_suffix(b"="))
        .unwrap_or(b);
    data.iter()
        .all(|&c| c.is_ascii_alphanumeric() || c == b'+' || c == b'/')
}

/// One `[A-Za-z]+=VALUE` extension (VALUE non-empty; commas already split off).
fn parse_extension(part: &str) -> Option<(&str, &str)> {
    let (key, value) = part.split_once('=')?;
    (!key.is_empty() && key.bytes().all(|b| b.is_ascii_alphabetic()) && !value.is_empty())
        .then_some((key, value))
}

/// `n,(a=SASLNAME)?,(m=VALUE,)?n=SASLNAME,r=PRINTABLE(,[A-Za-z]+=VALUE)*`, matched whole.
fn parse_client_first(message: &[u8]) -> Result<ClientFirst<'_>, ScramError> {
    let invalid = || {
        ScramError::InvalidCredentials(format!(
            "Invalid SCRAM client first message format: {}",
            String::from_utf8_lossy(message)
        ))
    };
    let text = ascii_text(message).ok_or_else(invalid)?;
    let mut parts = text.split(',');
    if parts.next() != Some("n") {
        return Err(invalid());
    }
    let authz = parts.next().ok_or_else(invalid)?;
    let authzid = if authz.is_empty() {
        None
    } else {
        Some(
            authz
                .strip_prefix("a=")
                .filter(|a| is_saslname(a))
                .ok_or_else(invalid)?,
        )
    };
    // "n," + authz + ","
    let gs2_len = 2 + authz.len() + 1;
    let (gs2_header, bare) = (
        text.as_bytes().get(..gs2_len).ok_or_else(invalid)?,
        text.as_bytes().get(gs2_len..).ok_or_else(invalid)?,
    );
    let mut part = parts.next().ok_or_else(invalid)?;
    if let Some(reserved) = part.strip_prefix("m=") {
        if reserved.is_empty() {
            return Err(invalid());
        }
        part = parts.next().ok_or_else(invalid)?;
    }
    let saslname = part.strip_prefix("n=").ok_or_else(invalid)?;
    let username = decode_saslname(saslname).ok_or_else(invalid)?;
    let nonce = parts
        .next()
        .and_then(|p| p.strip_prefix("r="))
        .filter(|n| is_printable(n))
        .ok_or_else(invalid)?;
    let mut extensions = BTreeMap::new();
    for part in parts {
        let (key, value) = parse_extension(part).ok_or_else(invalid)?;
        extensions.insert(key.to_owned(), value.to_owned());
    }
    Ok(ClientFirst {
        gs2_header,
        authzid,
        username,
        nonce,
        bare,
        extensions,
    })
}

/// `c=BASE64,r=PRINTABLE(,[A-Za-z]+=VALUE)*,p=BASE64`, matched whole.
fn parse_client_final(message: &[u8]) -> Result<ClientFinal<'_>, ScramError> {
    let invalid = || {
        ScramError::InvalidCredentials(format!(
            "Invalid SCRAM client final message format: {}",
            String::from_utf8_lossy(message)
        ))
    };
    let text = ascii_text(message).ok_or_else(invalid)?;
    let (without_proof, proof) = text.rsplit_once(',').ok_or_else(invalid)?;
    let proof = proof
        .strip_prefix("p=")
        .filter(|p| is_base64(p))
        .ok_or_else(invalid)?;
    let mut parts = without_proof.split(',');
    let channel_binding = parts
        .next()
        .and_then(|p| p.strip_prefix("c="))
        .filter(|c| is_base64(c))
        .ok_or_else(invalid)?;
    let nonce = parts
        .next()
        .and_then(|p| p.strip_prefix("r="))
        .filter(|n| is_printable(n))
        .ok_or_else(invalid)?;
    for part in parts {
        // Extensions in client-final are allowed by the grammar and ignored (as in Kafka).
        parse_extension(part).ok_or_else(invalid)?;
    }
    Ok(ClientFinal {
        channel_binding: B64.decode(channel_binding).map_err(|_| invalid())?,
        nonce,
        proof: B64.decode(proof).map_err(|_| invalid())?,
        without_proof: without_proof.as_bytes(),
    })
}

/// What the server keeps between server-first and client-final.
struct Pending {
    gs2_header: Vec<u8>,
    client_first_bare: Vec<u8>,
    server_first: Vec<u8>,
    nonce: String,
    credential: ScramCredential,
    outcome: AuthOutcome,
}

enum State {
    ClientFirst,
    ClientFinal(Box<Pending>),
    Complete,
    Failed,
}

impl State {
    /// Kafka's `ScramSaslServer.State` names.
    fn name(&self) -> &'static str {
        match self {
            State::ClientFirst => "RECEIVE_CLIENT_FIRST_MESSAGE",
            State::ClientFinal(_) => "RECEIVE_CLIENT_FINAL_MESSAGE",
            State::Complete => "COMPLETE",
            State::Failed => "FAILED",
        }
    }
}

/// The server side of one SCRAM exchange: [`ScramServer::handle_client_first`] then
/// [`ScramServer::handle_client_final`]. Any error moves it to a failed state for good; a call out of
/// order returns [`ScramError::IllegalState`].
pub struct ScramServer {
    mechanism: ScramMechanism,
    nonce_source: NonceSource,
    token_auth: bool,
    state: State,
}

impl fmt::Debug for ScramServer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ScramServer")
            .field("mechanism", &self.mechanism)
            .field("token_auth", &self.token_auth)
            .field("state", &self.state.name())
            .finish()
    }
}

impl ScramServer {
    /// A server for one exchange with `mechanism`, taking its server nonce from `nonce_source`.
    /// Delegation-token authentication is off (see [`ScramServer::with_token_auth`]).
    pub fn new(mechanism: ScramMechanism, nonce_source: NonceSource) -> Self {
        ScramServer {
            mechanism,
            nonce_source,
            token_auth: false,
            state: State::ClientFirst,
        }
    }

    /// Whether a client-first with `tokenauth=true` is accepted. When enabled, the credential lookup
    /// is called with the token id and must return the token's credential, and the outcome has
    /// `token_auth` set. When disabled (the default), such a client fails at client-first as in Kafka
    /// for an unknown token: "Token Authentication failed: Invalid tokenId : `id`" (invalid credentials).
    pub fn with_token_auth(mut self, enabled: bool) -> Self {
        self.token_auth = enabled;
        self
    }

    /// The mechanism this server runs.
    pub fn mechanism(&self) -> ScramMechanism {
        self.mechanism
    }

    /// Handles the client-first message and returns the server-first message
    /// (`r=<client nonce><server nonce>,s=<base64 salt>,i=<iterations>`).
    ///
    /// `lookup` gets the decoded username (or token id) and returns the stored credential for this
    /// mechanism. Checks, in Kafka's order: grammar, credential exists ("Authentication failed: Invalid
    /// user credentials"), authzid equals username ([`ScramError::Authentication`]), iterations ≥ 4096.
    pub fn handle_client_first(
        &mut self,
        message: &[u8],
        lookup: impl FnOnce(&str) -> Option<ScramCredential>,
    ) -> Result<Vec<u8>, ScramError> {
        if !matches!(self.state, State::ClientFirst) {
            let name = self.state.name();
            self.state = State::Failed;
            return Err(ScramError::IllegalState(name));
        }
        self.state = State::Failed;
        let pending = self.client_first(message, lookup)?;
        let reply = pending.server_first.clone();
        self.state = State::ClientFinal(Box::new(pending));
        Ok(reply)
    }

    fn client_first(
        &self,
        message: &[u8],
        lookup: impl FnOnce(&str) -> Option<ScramCredential>,
    ) -> Result<Pending, ScramError> {
        let first = parse_client_first(message)?;
        let server_nonce = match &self.nonce_source {
            NonceSource::Random => secure_random_string(),
            NonceSource::Fixed(nonce) => nonce.clone(),
        };
        if !is_printable(&server_nonce) {
            return Err(ScramError::InvalidCredentials(
                "Authentication failed: the configured server nonce is not printable".to_owned(),
            ));
        }
        let token_auth = first
            .extensions
            .get(TOKEN_AUTH_EXTENSION)
            .is_some_and(|v| v.eq_ignore_ascii_case("true"));
        let token_failure = || {
            ScramError::InvalidCredentials(format!(
                "Token Authentication failed: Invalid tokenId : {}",
                first.username
            ))
        };
        if token_auth && !self.token_auth {
            return Err(token_failure());
        }
        let credential = match lookup(&first.username) {
            Some(credential) => credential,
            None if token_auth => return Err(token_failure()),
            None => {
                return Err(ScramError::InvalidCredentials(
                    "Authentication failed: Invalid user credentials".to_owned(),
                ))
            }
        };
        if let Some(authzid) = first.authzid {
            if decode_saslname(authzid).as_deref() != Some(first.username.as_str()) {
                return Err(ScramError::Authentication(
                    "Authentication failed: Client requested an authorization id that is different from username"
                        .to_owned(),
                ));
            }
        }
        let min = self.mechanism.min_iterations();
        if credential.iterations < min {
            return Err(ScramError::InvalidCredentials(format!(
                "Iterations {} is less than the minimum {min} for {}",
                credential.iterations, self.mechanism
            )));
        }
        let nonce = format!("{}{server_nonce}", first.nonce);
        let server_first = format!(
            "r={nonce},s={},i={}",
            B64.encode(&credential.salt),
            credential.iterations
        )
        .into_bytes();
        Ok(Pending {
            gs2_header: first.gs2_header.to_vec(),
            client_first_bare: first.bare.to_vec(),
            server_first,
            nonce,
            credential,
            outcome: AuthOutcome {
                username: first.username,
                token_auth,
                extensions: first.extensions,
            },
        })
    }

    /// Handles the client-final message: checks the nonce, the channel binding and the client proof
    /// (constant-time), and returns the server-final message (`v=<base64 server signature>`) with the
    /// outcome. Every failure here is [`ScramError::InvalidCredentials`]; a wrong password gives
    /// "Invalid client credentials".
    pub fn handle_client_final(
        &mut self,
        message: &[u8],
    ) -> Result<(Vec<u8>, AuthOutcome), ScramError> {
        let name = self.state.name();
        let State::ClientFinal(pending) = std::mem::replace(&mut self.state, State::Failed) else {
            return Err(ScramError::IllegalState(name));
        };
        let reply = self.client_final(&pending, message)?;
        self.state = State::Complete;
        Ok((reply, pending.outcome))
    }

    fn client_final(&self, pending: &Pending, message: &[u8]) -> Result<Vec<u8>, ScramError> {
        let fin = parse_client_final(message)?;
        if fin.nonce != pending.nonce {
            return Err(ScramError::InvalidCredentials(
                "Invalid client nonce in the final client message.".to_owned(),
            ));
        }
        if fin.channel_binding != pending.gs2_header {
            return Err(ScramError::InvalidCredentials(
                "Invalid channel binding in the final client message.".to_owned(),
            ));
        }
        let mech = self.mechanism;
        let credential = &pending.credential;
        let auth_message: [&[u8]; 5] = [
            &pending.client_first_bare,
            b",",
            &pending.server_first,
            b",",
            fin.without_proof,
        ];
        let client_signature = mech.hmac(&credential.stored_key, &auth_message);
        let invalid_proof =
            || ScramError::InvalidCredentials("Invalid client credentials".to_owned());
        if fin.proof.len() != client_signature.len() {
            return Err(invalid_proof());
        }
        let client_key: Vec<u8> = fin
            .proof
            .iter()
            .zip(&client_signature)
            .map(|(p, s)| p ^ s)
            .collect();
        let computed_stored_key = mech.hash(&client_key);
        if !bool::from(computed_stored_key.ct_eq(&credential.stored_key)) {
            return Err(invalid_proof());
        }
        let server_signature = mech.hmac(&credential.server_key, &auth_message);
        Ok(format!("v={}", B64.encode(server_signature)).into_bytes())
    }
}

/// The client side of a SCRAM exchange (RFC 5802), as Kafka's `ScramSaslClient`: what a broker
/// uses to authenticate to another broker's SASL listener. No channel binding (`n,,`), the
/// username escaped (`=` → `=2C`/`=3D`), the password used as its UTF-8 bytes.
#[derive(Debug)]
pub struct ScramClient {
    mechanism: ScramMechanism,
    username: String,
    password: String,
    nonce: String,
    client_first_bare: String,
    server_signature: Option<Vec<u8>>,
}

impl ScramClient {
    /// A client for `username` / `password` with a fresh random nonce.
    pub fn new(mechanism: ScramMechanism, username: &str, password: &str) -> ScramClient {
        Self::with_nonce(mechanism, username, password, &secure_random_string())
    }

    /// A client with a given nonce (tests).
    pub fn with_nonce(
        mechanism: ScramMechanism,
        username: &str,
        password: &str,
        nonce: &str,
    ) -> ScramClient {
        let escaped = username.replace('=', "=3D").replace(',', "=2C");
        ScramClient {
            mechanism,
            username: username.to_string(),
            password: password.to_string(),
            nonce: nonce.to_string(),
            client_first_bare: format!("n={escaped},r={nonce}"),
            server_signature: None,
        }
    }

    /// The username this client authenticates as.
    pub fn username(&self) -> &str {
        &self.username
    }

    /// The client-first message (`n,,n=<user>,r=<nonce>`).
    pub fn client_first(&self) -> Vec<u8> {
        format!("n,,{}", self.client_first_bare).into_bytes()
    }

    /// Takes the server-first message and returns the client-final message with the proof.
    pub fn client_final(&mut self, server_first: &[u8]) -> Result<Vec<u8>, ScramError> {
        let bad =
            |why: &str| ScramError::Authentication(format!("Invalid server-first message: {why}"));
        let text = std::str::from_utf8(server_first).map_err(|_| bad("not UTF-8"))?;
        let mut nonce = None;
        let mut salt = None;
        let mut iterations = None;
        for attr in text.split(',') {
            match attr.split_once('=') {
                Some(("r", v)) => nonce = Some(v),
                Some(("s", v)) => salt = Some(v),
                Some(("i", v)) => iterations = v.parse::<i32>().ok(),
                _ => {}
            }
        }
        let nonce = nonce.ok_or_else(|| bad("no nonce"))?;
        if !nonce.starts_with(&self.nonce) || nonce.len() == self.nonce.len() {
            return Err(bad("the server nonce does not extend the client's"));
        }
        let salt = B64
            .decode(salt.ok_or_else(|| bad("no salt"))?)
            .map_err(|_| bad("invalid salt"))?;
        let iterations = iterations.ok_or_else(|| bad("no iteration count"))?;
        if iterations < self.mechanism.min_iterations() {
            return Err(bad("too few iterations"));
        }
        let salted = salted_password(self.mechanism, &self.password, &salt, iterations);
        let client_key = self.mechanism.hmac(&salted, &[b"Client Key"]);
        let stored_key = self.mechanism.hash(&client_key);
        let without_proof = format!("c=biws,r={nonce}");
        let auth_message = format!("{},{text},{without_proof}", self.client_first_bare);
        let signature = self.mechanism.hmac(&stored_key, &[auth_message.as_bytes()]);
        let proof: Vec<u8> = client_key
            .iter()
            .zip(&signature)
            .map(|(k, s)| k ^ s)
            .collect();
        let server_key = self.mechanism.hmac(&salted, &[b"Server Key"]);
        self.server_signature = Some(self.mechanism.hmac(&server_key, &[auth_message.as_bytes()]));
        Ok(format!("{without_proof},p={}", B64.encode(proof)).into_bytes())
    }

    /// Checks the server-final message (`v=<server signature>`, or `e=<error>`).
    pub fn verify_server_final(&self, server_final: &[u8]) -> Result<(), ScramError> {
        let text = String::from_utf8_lossy(server_final);
        if let Some(e) = text.strip_prefix("e=") {
            return Err(ScramError::Authentication(format!(
                "Authentication failed: {e}"
            )));
        }
        let expected = self.server_signature.as_ref().ok_or_else(|| {
            ScramError::Authentication("server-final message before client-final".into())
        })?;
        let got = text
            .strip_prefix("v=")
            .and_then(|v| B64.decode(v.split(',').next().unwrap_or(v)).ok())
            .ok_or_else(|| ScramError::Authentication("Invalid server-final message".into()))?;
        if bool::from(got.ct_eq(expected)) {
            Ok(())
        } else {
            Err(ScramError::Authentication(
                "Invalid server signature in server-final message".into(),
            ))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A minimal SCRAM client (RFC 5802), written independently of the server code above.
    struct TestClient {
        mechanism: ScramMechanism,
        password: String,
        gs2_header: String,
        client_first_bare: String,
        expected_server_signature: Option<Vec<u8>>,
    }

    impl TestClient {
        fn new(mechanism: ScramMechanism, saslname: &str, password: &str, nonce: &str) -> Self {
            TestClient {
                mechanism,
                password: password.to_owned(),
                gs2_header: "n,,".to_owned(),
                client_first_bare: format!("n={saslname},r={nonce}"),
                expected_server_signature: None,
            }
        }

        fn client_first(&self) -> Vec<u8> {
            format!("{}{}", self.gs2_header, self.client_first_bare).into_bytes()
        }

        fn client_final(&mut self, server_first: &[u8]) -> Vec<u8> {
            let server_first = std::str::from_utf8(server_first).unwrap();
            let mut nonce = "";
            let mut salt = Vec::new();
            let mut iterations = 0u32;
            for attr in server_first.split(',') {
                let (k, v) = attr.split_once('=').unwrap();
                match k {
                    "r" => nonce = v,
                    "s" => salt = base64::engine::general_purpose::STANDARD.decode(v).unwrap(),
                    "i" => iterations = v.parse().unwrap(),
                    _ => panic!("unexpected attribute {k}"),
                }
            }
            let b64 = &base64::engine::general_purpose::STANDARD;
            let without_proof = format!("c={},r={nonce}", b64.encode(&self.gs2_header));
            let auth_message = format!("{},{server_first},{without_proof}", self.client_first_bare);
            let (proof, server_signature) = client_math(
                self.mechanism,
                &self.password,
                &salt,
                iterations,
                auth_message.as_bytes(),
            );
            self.expected_server_signature = Some(server_signature);
            format!("{without_proof},p={}", b64.encode(proof)).into_bytes()
        }

        fn verify_server_final(&self, server_final: &[u8]) {
            let expected = self.expected_server_signature.as_ref().unwrap();
            let b64 = &base64::engine::general_purpose::STANDARD;
            assert_eq!(
                std::str::from_utf8(server_final).unwrap(),
                format!("v={}", b64.encode(expected))
            );
        }
    }

    fn test_hmac(mechanism: ScramMechanism, key: &[u8], data: &[u8]) -> Vec<u8> {
        match mechanism {
            ScramMechanism::Sha256 => {
                let mut m = <Hmac<Sha256> as Mac>::new_from_slice(key).unwrap();
                m.update(data);
                m.finalize().into_bytes().to_vec()
            }
            ScramMechanism::Sha512 => {
                let mut m = <Hmac<Sha512> as Mac>::new_from_slice(key).unwrap();
                m.update(data);
                m.finalize().into_bytes().to_vec()
            }
        }
    }

    /// Returns (ClientProof, ServerSignature). Hi() is written out here (RFC 5802 §2.2) rather than
    /// taken from the pbkdf2 crate, so the client shares no derivation code with the server.
    fn client_math(
        mechanism: ScramMechanism,
        password: &str,
        salt: &[u8],
        iterations: u32,
        auth_message: &[u8],
    ) -> (Vec<u8>, Vec<u8>) {
        let mac = |key: &[u8], data: &[u8]| test_hmac(mechanism, key, data);
        let mut u = mac(password.as_bytes(), &[salt, &[0, 0, 0, 1]].concat());
        let mut salted = u.clone();
        for _ in 1..iterations {
            u = mac(password.as_bytes(), &u);
            salted.iter_mut().zip(&u).for_each(|(s, x)| *s ^= x);
        }
        let client_key = mac(&salted, b"Client Key");
        let stored_key = match mechanism {
            ScramMechanism::Sha256 => Sha256::digest(&client_key).to_vec(),
            ScramMechanism::Sha512 => Sha512::digest(&client_key).to_vec(),
        };
        let client_signature = mac(&stored_key, auth_message);
        let proof = client_key
            .iter()
            .zip(&client_signature)
            .map(|(a, b)| a ^ b)
            .collect();
        let server_key = mac(&salted, b"Server Key");
        (proof, mac(&server_key, auth_message))
    }

    fn fixed(nonce: &str) -> NonceSource {
        NonceSource::Fixed(nonce.to_owned())
    }

    fn lookup_one(
        user: &'static str,
        credential: ScramCredential,
    ) -> impl FnOnce(&str) -> Option<ScramCredential> {
        move |name| (name == user).then_some(credential)
    }

    const RFC_SALT: &str = "W22ZaJ0SNY7soEsUEjb6gQ==";
    const RFC_SERVER_NONCE: &str = "%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0";

    fn rfc7677_credential() -> ScramCredential {
        let salt = B64.decode(RFC_SALT).unwrap();
        ScramCredential::new(ScramMechanism::Sha256, "pencil", &salt, 4096)
    }

    #[test]
    fn mechanism_constants() {
        assert_eq!(ScramMechanism::Sha256.type_byte(), 1);
        assert_eq!(ScramMechanism::Sha512.type_byte(), 2);
        assert_eq!(
            ScramMechanism::from_name("SCRAM-SHA-256"),
            Some(ScramMechanism::Sha256)
        );
        assert_eq!(
            ScramMechanism::from_name("SCRAM-SHA-512"),
            Some(ScramMechanism::Sha512)
        );
        assert_eq!(ScramMechanism::from_name("scram-sha-256"), None);
        assert_eq!(ScramMechanism::from_name("PLAIN"), None);
        assert_eq!(ScramMechanism::from_type(1), Some(ScramMechanism::Sha256));
        assert_eq!(ScramMechanism::from_type(2), Some(ScramMechanism::Sha512));
        assert_eq!(ScramMechanism::from_type(0), None);
        assert_eq!(ScramMechanism::from_type(-1), None);
        for m in ScramMechanism::ALL {
            assert_eq!(m.min_iterations(), 4096);
            assert_eq!(m.max_iterations(), 16384);
            assert_eq!(m.to_string(), m.name());
        }
    }

    #[test]
    fn rfc7677_sha256_vector() {
        let mut server = ScramServer::new(ScramMechanism::Sha256, fixed(RFC_SERVER_NONCE));
        let server_first = server
            .handle_client_first(
                b"n,,n=user,r=rOprNGfwEbeRWgbNEkqO",
                lookup_one("user", rfc7677_credential()),
            )
            .unwrap();
        assert_eq!(
            String::from_utf8(server_first).unwrap(),
            "r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096"
        );
        let (server_final, outcome) = server
            .handle_client_final(
                b"c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=",
            )
            .unwrap();
        assert_eq!(
            String::from_utf8(server_final).unwrap(),
            "v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4="
        );
        assert_eq!(
            outcome,
            AuthOutcome {
                username: "user".to_owned(),
                token_auth: false,
                extensions: BTreeMap::new()
            }
        );
        // Done: any further message is out of order.
        assert_eq!(
            server.handle_client_final(b"c=biws,r=x,p="),
            Err(ScramError::IllegalState("COMPLETE"))
        );
    }

    #[test]
    fn credential_from_salted_password_matches_new() {
        let salt = b"some-salt";
        for m in ScramMechanism::ALL {
            let sp = salted_password(m, "secret", salt, 4096);
            assert_eq!(sp.len(), if m == ScramMechanism::Sha256 { 32 } else { 64 });
            let a = ScramCredential::from_salted_password(m, salt, &sp, 4096);
            let b = ScramCredential::new(m, "secret", salt, 4096);
            assert_eq!(a, b);
            assert_eq!(a.stored_key.len(), sp.len());
            assert_eq!(a.server_key.len(), sp.len());
            assert!(!format!("{a:?}").contains("stored_key: ["));
        }
        // Kafka's hi() computes one iteration for counts below 1.
        let m = ScramMechanism::Sha256;
        assert_eq!(
            salted_password(m, "p", salt, 0),
            salted_password(m, "p", salt, 1)
        );
        assert_eq!(
            salted_password(m, "p", salt, -5),
            salted_password(m, "p", salt, 1)
        );
    }

    fn round_trip(mechanism: ScramMechanism, saslname: &str, username: &'static str) {
        let credential = ScramCredential::new(mechanism, "alice-secret", b"salty", 4096);
        let mut client = TestClient::new(
            mechanism,
            saslname,
            "alice-secret",
            "fyko+d2lbbFgONRv9qkxdawL",
        );
        let mut server = ScramServer::new(mechanism, NonceSource::Random);
        let server_first = server
            .handle_client_first(&client.client_first(), lookup_one(username, credential))
            .unwrap();
        let text = String::from_utf8(server_first.clone()).unwrap();
        assert!(text.starts_with("r=fyko+d2lbbFgONRv9qkxdawL"));
        assert!(text.ends_with(",s=c2FsdHk=,i=4096"));
        let server_final = server
            .handle_client_final(&client.client_final(&server_first))
            .unwrap();
        client.verify_server_final(&server_final.0);
        assert_eq!(server_final.1.username, username);
        assert!(!server_final.1.token_auth);
    }

    #[test]
    fn sha512_round_trip() {
        round_trip(ScramMechanism::Sha512, "alice", "alice");
    }

    #[test]
    fn sha256_round_trip() {
        round_trip(ScramMechanism::Sha256, "alice", "alice");
    }

    #[test]
    fn escaped_usernames() {
        round_trip(ScramMechanism::Sha256, "a=2Cb=3Dc", "a,b=c");
        round_trip(ScramMechanism::Sha512, "=3D=2C", "=,");
        // "=2C3D" is ",3D", not ",=".
        round_trip(ScramMechanism::Sha256, "=2C3D", ",3D");
        for bad in ["a=b", "a=2c", "a=", "=", "a=3Db=4", "a=2"] {
            let mut server = ScramServer::new(ScramMechanism::Sha256, NonceSource::Random);
            let msg = format!("n,,n={bad},r=abc");
            let err = server
                .handle_client_first(msg.as_bytes(), |_| panic!("no lookup for {bad}"))
                .unwrap_err();
            assert_eq!(
                err,
                ScramError::InvalidCredentials(format!(
                    "Invalid SCRAM client first message format: {msg}"
                ))
            );
        }
    }

    #[test]
    fn wrong_password_fails_at_client_final() {
        let mech = ScramMechanism::Sha256;
        let credential = ScramCredential::new(mech, "right", b"salt", 4096);
        let mut client = TestClient::new(mech, "bob", "wrong", "nonce1");
        let mut server = ScramServer::new(mech, fixed("srv"));
        let server_first = server
            .handle_client_first(&client.client_first(), lookup_one("bob", credential))
            .unwrap();
        let err = server
            .handle_client_final(&client.client_final(&server_first))
            .unwrap_err();
        assert_eq!(
            err,
            ScramError::InvalidCredentials("Invalid client credentials".to_owned())
        );
        assert_eq!(
            err.client_message(mech),
            "Authentication failed during authentication due to invalid credentials with SASL mechanism SCRAM-SHA-256"
        );
        assert_eq!(
            err.reauthentication_client_message(ScramMechanism::Sha512),
            "Authentication failed during re-authentication due to invalid credentials with SASL mechanism SCRAM-SHA-512"
        );
        // Failed for good.
        assert_eq!(
            server.handle_client_final(b"c=biws,r=nonce1srv,p="),
            Err(ScramError::IllegalState("FAILED"))
        );
    }

    #[test]
    fn unknown_user_fails_at_client_first() {
        let mech = ScramMechanism::Sha512;
        let mut server = ScramServer::new(mech, NonceSource::Random);
        let mut asked = String::new();
        let err = server
            .handle_client_first(b"n,,n=nobody,r=abc", |u| {
                asked = u.to_owned();
                None
            })
            .unwrap_err();
        assert_eq!(asked, "nobody");
        assert_eq!(
            err,
            ScramError::InvalidCredentials(
                "Authentication failed: Invalid user credentials".to_owned()
            )
        );
        assert_eq!(
            err.client_message(mech),
            "Authentication failed during authentication due to invalid credentials with SASL mechanism SCRAM-SHA-512"
        );
        assert_eq!(
            server.handle_client_first(b"n,,n=nobody,r=abc", |_| None),
            Err(ScramError::IllegalState("FAILED"))
        );
    }

    #[test]
    fn authzid_must_equal_username() {
        let mech = ScramMechanism::Sha256;
        let cred = || ScramCredential::new(mech, "pw", b"salt", 4096);
        let mut server = ScramServer::new(mech, NonceSource::Random);
        let err = server
            .handle_client_first(b"n,a=admin,n=alice,r=abc", lookup_one("alice", cred()))
            .unwrap_err();
        let text = "Authentication failed: Client requested an authorization id that is different from username";
        assert_eq!(err, ScramError::Authentication(text.to_owned()));
        assert_eq!(err.client_message(mech), text);
        assert_eq!(err.to_string(), text);

        // Equal authzid is fine (escapes decoded on both sides), and the gs2 header with it must be
        // what c= carries.
        let mut server = ScramServer::new(mech, fixed("S"));
        let first = server
            .handle_client_first(b"n,a=a=2Cb,n=a=2Cb,r=abc", lookup_one("a,b", cred()))
            .unwrap();
        assert!(first.starts_with(b"r=abcS,"));
        let err = server
            .handle_client_final(b"c=biws,r=abcS,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=")
            .unwrap_err();
        assert_eq!(
            err,
            ScramError::InvalidCredentials(
                "Invalid channel binding in the final client message.".to_owned()
            )
        );
    }

    #[test]
    fn authzid_round_trip() {
        let mech = ScramMechanism::Sha256;
        let credential = ScramCredential::new(mech, "pw", b"salt", 4096);
        let mut client = TestClient::new(mech, "alice", "pw", "cn");
        client.gs2_header = "n,a=alice,".to_owned();
        let mut server = ScramServer::new(mech, fixed("sn"));
        let server_first = server
            .handle_client_first(&client.client_first(), lookup_one("alice", credential))
            .unwrap();
        let (server_final, outcome) = server
            .handle_client_final(&client.client_final(&server_first))
            .unwrap();
        client.verify_server_final(&server_final);
        assert_eq!(outcome.username, "alice");
    }

    #[test]
    fn iteration_bounds() {
        let mech = ScramMechanism::Sha256;
        let mut server = ScramServer::new(mech, NonceSource::Random);
        let low = ScramCredential::new(mech, "pw", b"salt", 4095);
        let err = server
            .handle_client_first(b"n,,n=u,r=abc", lookup_one("u", low))
            .unwrap_err();
        assert_eq!(
            err,
            ScramError::InvalidCredentials(
                "Iterations 4095 is less than the minimum 4096 for SCRAM-SHA-256".to_owned()
            )
        );
        assert_eq!(
            err.client_message(mech),
            "Authentication failed during authentication due to invalid credentials with SASL mechanism SCRAM-SHA-256"
        );
        // Exactly the minimum and above the controller's maximum are served (the server only checks
        // the minimum, as Kafka's).
        for iterations in [4096, 16385] {
            let salted = vec![7u8; 64];
            let cred = ScramCredential::from_salted_password(
                ScramMechanism::Sha512,
                b"s",
                &salted,
                iterations,
            );
            let mut server = ScramServer::new(ScramMechanism::Sha512, fixed("x"));
            let first = server
                .handle_client_first(b"n,,n=u,r=abc", lookup_one("u", cred))
                .unwrap();
            assert_eq!(
                String::from_utf8(first).unwrap(),
                format!("r=abcx,s=cw==,i={iterations}")
            );
        }
    }

    #[test]
    fn client_first_grammar() {
        let good = [
            "n,,n=u,r=abc",
            "n,a=u,n=u,r=abc",
            "n,,m=whatever=x,n=u,r=abc",
            "n,,n=u,r=abc,tokenauth=false,foo=bar=baz",
            "n,,n=u,r=!~",
        ];
        for msg in good {
            let cred = ScramCredential::new(ScramMechanism::Sha256, "pw", b"s", 4096);
            let mut server = ScramServer::new(ScramMechanism::Sha256, NonceSource::Random);
            assert!(
                server
                    .handle_client_first(msg.as_bytes(), lookup_one("u", cred))
                    .is_ok(),
                "{msg}"
            );
        }
        let bad: [&[u8]; 22] = [
            b"",
            b"n",
            b"n,",
            b"n,,",
            b"y,,n=u,r=abc",
            b"p=tls-unique,,n=u,r=abc",
            b"n,a=u",
            b"n,x=u,n=u,r=abc",
            b"n,a=,n=u,r=abc",
            b"n,,n=,r=abc",
            b"n,,n=u,r=",
            b"n,,n=u",
            b"n,,r=abc,n=u",
            b"n,,m=,n=u,r=abc",
            b"n,,n=u,r=ab c",
            b"n,,n=u,r=abc,",
            b"n,,n=u,r=abc,1x=y",
            b"n,,n=u,r=abc,x=",
            b"n,,n=u,r=abc,=y",
            b"n,,n=\xc3\xa9,r=abc",
            b"n,,n=u\0,r=abc",
            b"\xff\xfe",
        ];
        for msg in bad {
            let mut server = ScramServer::new(ScramMechanism::Sha256, NonceSource::Random);
            let err = server
                .handle_client_first(msg, |_| panic!("lookup for {msg:?}"))
                .unwrap_err();
            assert_eq!(
                err,
                ScramError::InvalidCredentials(format!(
                    "Invalid SCRAM client first message format: {}",
                    String::from_utf8_lossy(msg)
                )),
                "{msg:?}"
            );
        }
    }

    fn server_after_first(nonce: &str) -> ScramServer {
        let mut server = ScramServer::new(ScramMechanism::Sha256, fixed(RFC_SERVER_NONCE));
        let msg = format!("n,,n=user,r={nonce}");
        server
            .handle_client_first(msg.as_bytes(), lookup_one("user", rfc7677_credential()))
            .unwrap();
        server
    }

    #[test]
    fn client_final_grammar_and_checks() {
        let nonce = "rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0";
        let proof = "dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=";
        let format_error = |msg: &str| {
            ScramError::InvalidCredentials(format!(
                "Invalid SCRAM client final message format: {msg}"
            ))
        };
        let bad = [
            format!("c=biws,r={nonce}"),
            format!("c=biws,p={proof}"),
            format!("r={nonce},c=biws,p={proof}"),
            format!("c=biw,r={nonce},p={proof}"),
            format!("c=biws,r={nonce},p={proof},"),
            format!("c=biws,r={nonce},p=dHzb*apW"),
            format!("c=biws,r={nonce},1=2,p={proof}"),
            format!("c=biws,r={nonce},p={proof}x"),
            format!("c=b=ws,r={nonce},p={proof}"),
            String::new(),
        ];
        for msg in &bad {
            let mut server = server_after_first("rOprNGfwEbeRWgbNEkqO");
            assert_eq!(
                server.handle_client_final(msg.as_bytes()),
                Err(format_error(msg)),
                "{msg}"
            );
        }

        // Nonce must be exactly the combined nonce (a longer one that ends with it is refused too).
        for wrong in [
            "rOprNGfwEbeRWgbNEkqO".to_owned(),
            format!("x{nonce}"),
            format!("{nonce}x"),
        ] {
            let mut server = server_after_first("rOprNGfwEbeRWgbNEkqO");
            assert_eq!(
                server.handle_client_final(format!("c=biws,r={wrong},p={proof}").as_bytes()),
                Err(ScramError::InvalidCredentials(
                    "Invalid client nonce in the final client message.".to_owned()
                ))
            );
        }

        // Channel binding must be base64("n,,").
        for c in ["", "eSws", "bixh"] {
            let mut server = server_after_first("rOprNGfwEbeRWgbNEkqO");
            assert_eq!(
                server.handle_client_final(format!("c={c},r={nonce},p={proof}").as_bytes()),
                Err(ScramError::InvalidCredentials(
                    "Invalid channel binding in the final client message.".to_owned()
                ))
            );
        }

        // Proofs of the wrong length or empty are invalid credentials, not panics.
        for p in [
            "",
            "AAAA",
            "dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ+AA==",
        ] {
            let mut server = server_after_first("rOprNGfwEbeRWgbNEkqO");
            assert_eq!(
                server.handle_client_final(format!("c=biws,r={nonce},p={p}").as_bytes()),
                Err(ScramError::InvalidCredentials(
                    "Invalid client credentials".to_owned()
                ))
            );
        }

        // An extension in client-final is allowed by the grammar; it is part of what the client signs
        // (RFC 5802), so the RFC proof (signed without it) no longer verifies.
        let mut server = server_after_first("rOprNGfwEbeRWgbNEkqO");
        assert_eq!(
            server.handle_client_final(format!("c=biws,r={nonce},ext=1,p={proof}").as_bytes()),
            Err(ScramError::InvalidCredentials(
                "Invalid client credentials".to_owned()
            ))
        );
    }

    #[test]
    fn out_of_order_calls() {
        let mut server = ScramServer::new(ScramMechanism::Sha256, NonceSource::Random);
        assert_eq!(
            server.handle_client_final(b"c=biws,r=a,p="),
            Err(ScramError::IllegalState("RECEIVE_CLIENT_FIRST_MESSAGE"))
        );
        let mut server = server_after_first("abc");
        assert_eq!(
            server.handle_client_first(b"n,,n=user,r=abc", |_| None),
            Err(ScramError::IllegalState("RECEIVE_CLIENT_FINAL_MESSAGE"))
        );
        assert_eq!(
            ScramError::IllegalState("FAILED").to_string(),
            "Unexpected challenge in Sasl server state FAILED"
        );
    }

    #[test]
    fn token_auth_extension() {
        let mech = ScramMechanism::Sha256;
        // Disabled (default): refused at client-first without asking for a credential.
        let mut server = ScramServer::new(mech, NonceSource::Random);
        let err = server
            .handle_client_first(b"n,,n=tokenid,r=abc,tokenauth=true", |_| {
                panic!("no lookup when token auth is disabled")
            })
            .unwrap_err();
        assert_eq!(
            err,
            ScramError::InvalidCredentials(
                "Token Authentication failed: Invalid tokenId : tokenid".to_owned()
            )
        );

        // Enabled: unknown token id.
        let mut server = ScramServer::new(mech, NonceSource::Random).with_token_auth(true);
        assert_eq!(
            server.handle_client_first(b"n,,n=tokenid,r=abc,tokenauth=TRUE", |_| None),
            Err(ScramError::InvalidCredentials(
                "Token Authentication failed: Invalid tokenId : tokenid".to_owned()
            ))
        );

        // Enabled: full exchange, reported in the outcome with all extensions.
        let credential = ScramCredential::new(mech, "hmac-of-token", b"salt", 4096);
        let mut client = TestClient::new(mech, "tokenid", "hmac-of-token", "cnonce");
        client
            .client_first_bare
            .push_str(",tokenauth=true,other=x=y");
        let mut server = ScramServer::new(mech, NonceSource::Random).with_token_auth(true);
        let server_first = server
            .handle_client_first(&client.client_first(), lookup_one("tokenid", credential))
            .unwrap();
        let (server_final, outcome) = server
            .handle_client_final(&client.client_final(&server_first))
            .unwrap();
        client.verify_server_final(&server_final);
        assert!(outcome.token_auth);
        assert_eq!(outcome.username, "tokenid");
        assert_eq!(
            outcome.extensions,
            BTreeMap::from([
                ("other".to_owned(), "x=y".to_owned()),
                ("tokenauth".to_owned(), "true".to_owned()),
            ])
        );
    }

    #[test]
    fn invalid_fixed_nonce_is_an_error() {
        for nonce in ["", "a,b", "a b"] {
            let mut server = ScramServer::new(ScramMechanism::Sha256, fixed(nonce));
            let cred = ScramCredential::new(ScramMechanism::Sha256, "pw", b"s", 4096);
            assert!(matches!(
                server.handle_client_first(b"n,,n=u,r=abc", lookup_one("u", cred)),
                Err(ScramError::InvalidCredentials(_))
            ));
        }
    }

    #[test]
    fn random_strings() {
        let a = secure_random_string();
        let b = secure_random_string();
        assert_eq!(a.len(), 26);
        assert!(a
            .bytes()
            .all(|c| c.is_ascii_digit() || c.is_ascii_lowercase()));
        assert_ne!(a, b);
        // Two exchanges get different server nonces.
        let first = |_: ()| {
            let mut server = ScramServer::new(ScramMechanism::Sha256, NonceSource::Random);
            let cred = ScramCredential::new(ScramMechanism::Sha256, "pw", b"s", 4096);
            server
                .handle_client_first(b"n,,n=u,r=abc", lookup_one("u", cred))
                .unwrap()
        };
        assert_ne!(first(()), first(()));
    }

    #[test]
    fn scram_client_against_the_server() {
        for m in ScramMechanism::ALL {
            let cred = ScramCredential::new(m, "pw,=x", b"salty-salt", 4096);
            let mut client = ScramClient::new(m, "bro=ker,1", "pw,=x");
            let mut server = ScramServer::new(m, NonceSource::default());
            let first = server
                .handle_client_first(&client.client_first(), |u| {
                    (u == "bro=ker,1").then(|| cred.clone())
                })
                .unwrap();
            let fin = client.client_final(&first).unwrap();
            let (server_final, outcome) = server.handle_client_final(&fin).unwrap();
            assert_eq!(outcome.username, "bro=ker,1");
            client.verify_server_final(&server_final).unwrap();
            // A wrong password fails at the server; a forged server signature at the client.
            let mut wrong = ScramClient::new(m, "bro=ker,1", "nope");
            let mut server = ScramServer::new(m, NonceSource::default());
            let first = server
                .handle_client_first(&wrong.client_first(), |_| Some(cred.clone()))
                .unwrap();
            let fin = wrong.client_final(&first).unwrap();
            assert!(server.handle_client_final(&fin).is_err());
            assert!(wrong.verify_server_final(b"v=AAAA").is_err());
        }
    }
}
