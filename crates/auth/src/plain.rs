//! SASL/PLAIN (RFC 4616), server side, as Kafka's `PlainSaslServer` does it.
//!
//! The single client message is `authzid \0 authcid \0 password` in UTF-8 (invalid sequences are
//! replaced, as Java's `new String(bytes, UTF_8)` does). Every failure is a Kafka
//! `SaslAuthenticationException`, so [`PlainError`]'s `Display` text is exactly what Kafka sends to the
//! client in the SaslAuthenticate response. Passwords are compared in constant time.

use std::fmt;

use subtle::ConstantTimeEq;

/// Why a PLAIN authentication failed; the `Display` text is Kafka's client-visible message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PlainError {
    /// The message did not split into exactly three `\0`-separated tokens (the count is 1, 2 or 4:
    /// like Kafka, splitting stops after the fourth token).
    #[error("Invalid SASL/PLAIN response: expected 3 tokens, got {0}")]
    InvalidTokenCount(usize),
    /// The authcid (username) is empty.
    #[error("Authentication failed: username not specified")]
    UsernameNotSpecified,
    /// The password is empty.
    #[error("Authentication failed: password not specified")]
    PasswordNotSpecified,
    /// Unknown user or wrong password (indistinguishable on purpose).
    #[error("Authentication failed: Invalid username or password")]
    InvalidUsernameOrPassword,
    /// A non-empty authzid that differs from the username (checked after the password, as Kafka does).
    #[error(
        "Authentication failed: Client requested an authorization id that is different from username"
    )]
    AuthorizationIdMismatch,
}

/// The three tokens of a PLAIN message. `Debug` does not print the password.
#[derive(Clone, PartialEq, Eq)]
pub struct PlainMessage {
    /// The requested authorization id (empty if none).
    pub authorization_id: String,
    /// The authentication id (username).
    pub username: String,
    /// The clear-text password.
    pub password: String,
}

impl fmt::Debug for PlainMessage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PlainMessage")
            .field("authorization_id", &self.authorization_id)
            .field("username", &self.username)
            .field("password", &"<redacted>")
            .finish()
    }
}

/// Splits a PLAIN message into its three tokens (Kafka's `PlainSaslServer.extractTokens`). Only the
/// token count is checked here; [`authenticate`] does the rest.
pub fn parse(message: &[u8]) -> Result<PlainMessage, PlainError> {
    let text = String::from_utf8_lossy(message);
    // Like Kafka, stop after four tokens: only the count matters then.
    let tokens: Vec<&str> = text.splitn(4, '\0').collect();
    match tokens.as_slice() {
        [authorization_id, username, password] => Ok(PlainMessage {
            authorization_id: (*authorization_id).to_owned(),
            username: (*username).to_owned(),
            password: (*password).to_owned(),
        }),
        other => Err(PlainError::InvalidTokenCount(other.len())),
    }
}

/// Authenticates a PLAIN message and returns the authorization id (= the username).
///
/// `lookup` returns the expected password of a user, e.g. `|u| users.get(u)` over the map from
/// [`crate::jaas::JaasConfig::plain_users`]. Checks in Kafka's order: token count, username not empty,
/// password not empty, password matches (constant time; unknown users and wrong passwords give the same
/// error), authzid empty or equal to the username.
pub fn authenticate<P: AsRef<[u8]>>(
    message: &[u8],
    lookup: impl FnOnce(&str) -> Option<P>,
) -> Result<String, PlainError> {
    let PlainMessage {
        authorization_id,
        username,
        password,
    } = parse(message)?;
    if username.is_empty() {
        return Err(PlainError::UsernameNotSpecified);
    }
    if password.is_empty() {
        return Err(PlainError::PasswordNotSpecified);
    }
    let matches = lookup(&username)
        .is_some_and(|expected| bool::from(expected.as_ref().ct_eq(password.as_bytes())));
    if !matches {
        return Err(PlainError::InvalidUsernameOrPassword);
    }
    if !authorization_id.is_empty() && authorization_id != username {
        return Err(PlainError::AuthorizationIdMismatch);
    }
    Ok(username)
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn users() -> HashMap<String, String> {
        HashMap::from([
            ("admin".to_owned(), "admin-secret".to_owned()),
            ("alice".to_owned(), "alice-secret".to_owned()),
            ("ünï".to_owned(), "pässwörd".to_owned()),
        ])
    }

    fn auth(message: &[u8]) -> Result<String, PlainError> {
        let users = users();
        authenticate(message, |u| users.get(u))
    }

    #[test]
    fn success() {
        assert_eq!(auth(b"\0alice\0alice-secret"), Ok("alice".to_owned()));
        assert_eq!(auth(b"alice\0alice\0alice-secret"), Ok("alice".to_owned()));
        assert_eq!(auth("\0ünï\0pässwörd".as_bytes()), Ok("ünï".to_owned()));
    }

    #[test]
    fn token_count() {
        for (msg, n) in [
            (&b""[..], 1),
            (b"alice", 1),
            (b"\0alice", 2),
            (b"\0alice\0pw\0", 4),
            (b"\0alice\0pw\0x\0y", 4),
        ] {
            let err = auth(msg).unwrap_err();
            assert_eq!(err, PlainError::InvalidTokenCount(n), "{msg:?}");
            assert_eq!(
                err.to_string(),
                format!("Invalid SASL/PLAIN response: expected 3 tokens, got {n}")
            );
        }
    }

    #[test]
    fn kafka_messages() {
        let cases: [(&[u8], &str); 7] = [
            (b"\0\0pw", "Authentication failed: username not specified"),
            (b"\0alice\0", "Authentication failed: password not specified"),
            (b"\0\0", "Authentication failed: username not specified"),
            (b"\0alice\0wrong", "Authentication failed: Invalid username or password"),
            (b"\0alice\0alice-secreT", "Authentication failed: Invalid username or password"),
            (b"\0mallory\0alice-secret", "Authentication failed: Invalid username or password"),
            (
                b"admin\0alice\0alice-secret",
                "Authentication failed: Client requested an authorization id that is different from username",
            ),
        ];
        for (msg, text) in cases {
            assert_eq!(auth(msg).unwrap_err().to_string(), text, "{msg:?}");
        }
        // The password is checked before the authzid.
        assert_eq!(
            auth(b"admin\0alice\0wrong"),
            Err(PlainError::InvalidUsernameOrPassword)
        );
    }

    #[test]
    fn prefixes_and_invalid_utf8() {
        // Length differences and prefixes do not match.
        assert_eq!(
            auth(b"\0alice\0alice-secret-more"),
            Err(PlainError::InvalidUsernameOrPassword)
        );
        assert_eq!(
            auth(b"\0alice\0alice"),
            Err(PlainError::InvalidUsernameOrPassword)
        );
        // Invalid UTF-8 is replaced (U+FFFD), never a panic.
        assert_eq!(
            auth(b"\0alice\0\xff\xfe"),
            Err(PlainError::InvalidUsernameOrPassword)
        );
        let parsed = parse(b"\0al\xffice\0pw").unwrap();
        assert_eq!(parsed.username, "al\u{fffd}ice");
        assert!(!format!("{parsed:?}").contains("pw"));
    }
}
