//! Server side of Kafka's SASL authentication for Gregor, as Apache Kafka 4.x does it: pure,
//! synchronous logic with no I/O (no tokio, network or filesystem), so the broker drives it from its
//! connection loop and tests run without sockets.
//!
//! A tour of the modules:
//! * [`scram`]: SCRAM-SHA-256/512. [`scram::ScramMechanism`] (type bytes 1/2, iteration bounds),
//!   [`scram::ScramCredential`] (salt, StoredKey, ServerKey, iterations; derived from a salted password
//!   as Kafka's controller does for AlterUserScramCredentials), and the two-step
//!   [`scram::ScramServer`] state machine with Kafka's grammar and error classes:
//!   [`scram::ScramError::client_message`] is the exact text for the SaslAuthenticate response.
//! * [`plain`]: SASL/PLAIN (`authzid \0 authcid \0 password`), checked against a user → password
//!   lookup in constant time, with Kafka's messages.
//! * [`jaas`]: parser for JAAS config values (`sasl.jaas.config`), e.g. the PLAIN module's
//!   `user_<name>="<password>"` options ([`jaas::JaasConfig::plain_users`]).
//! * [`principal`]: [`principal::KafkaPrincipal`] (`User:alice`, [`principal::ANONYMOUS`]) and
//!   `ssl.principal.mapping.rules` ([`principal::SslPrincipalMapper`]) for TLS client certificates.
//!
//! A SCRAM exchange, with the broker's SaslAuthenticate handling around it:
//! ```
//! use gregor_auth::scram::{NonceSource, ScramCredential, ScramMechanism, ScramServer};
//!
//! let mech = ScramMechanism::Sha256;
//! let stored = ScramCredential::new(mech, "pencil", b"salt", 4096);
//! let mut server = ScramServer::new(mech, NonceSource::Random);
//! let server_first = server
//!     .handle_client_first(b"n,,n=user,r=clientnonce", |user| {
//!         (user == "user").then(|| stored.clone())
//!     })
//!     .unwrap();
//! assert!(server_first.starts_with(b"r=clientnonce"));
//! // A wrong proof fails; the client is told only Kafka's fixed message.
//! let nonce = String::from_utf8(server_first).unwrap();
//! let nonce = &nonce[2..nonce.find(',').unwrap()];
//! let final_msg = format!("c=biws,r={nonce},p=AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=");
//! let err = server.handle_client_final(final_msg.as_bytes()).unwrap_err();
//! assert_eq!(
//!     err.client_message(mech),
//!     "Authentication failed during authentication due to invalid credentials with SASL mechanism SCRAM-SHA-256"
//! );
//! ```

#![warn(missing_docs)]

pub mod jaas;
pub mod plain;
pub mod principal;
pub mod scram;

#[cfg(test)]
mod robustness {
    //! Random inputs built from the characters the parsers care about: nothing may panic.

    use rand::rngs::StdRng;
    use rand::{Rng, SeedableRng};

    use crate::jaas::JaasConfig;
    use crate::principal::{KafkaPrincipal, SslPrincipalMapper};
    use crate::scram::{NonceSource, ScramCredential, ScramMechanism, ScramServer};

    const PIECES: &[&str] = &[
        "n",
        ",",
        "=",
        "a=",
        "n=",
        "r=",
        "m=",
        "c=",
        "p=",
        "biws",
        "=2C",
        "=3D",
        "=2",
        "abc",
        "\0",
        "\u{7f}",
        "é",
        "\u{fffd}",
        " ",
        "\n",
        "\"",
        "'",
        "\\",
        "/",
        "*",
        ";",
        "required",
        "RULE:",
        "DEFAULT",
        "$1",
        "${x}",
        "(",
        ")",
        ".*",
        "/L",
        "0",
        "-",
        "tokenauth=true",
        "user_a",
    ];

    fn random_input(rng: &mut StdRng) -> Vec<u8> {
        let mut out = Vec::new();
        for _ in 0..rng.gen_range(0..12) {
            if rng.gen_bool(0.1) {
                out.push(rng.gen());
            } else {
                out.extend_from_slice(PIECES[rng.gen_range(0..PIECES.len())].as_bytes());
            }
        }
        out
    }

    #[test]
    fn random_inputs_never_panic() {
        let mut rng = StdRng::seed_from_u64(0x6772_6567_6f72);
        let mech = ScramMechanism::Sha256;
        let credential = ScramCredential::from_salted_password(mech, b"s", &[1; 32], 4096);
        for _ in 0..20_000 {
            let first = random_input(&mut rng);
            let last = random_input(&mut rng);
            let text = String::from_utf8_lossy(&first);

            let mut server = ScramServer::new(mech, NonceSource::Fixed("srv".to_owned()));
            if server
                .handle_client_first(&first, |_| Some(credential.clone()))
                .is_ok()
            {
                let _ = server.handle_client_final(&last);
            }
            let mut server = ScramServer::new(mech, NonceSource::Fixed("srv".to_owned()));
            let _ = server.handle_client_first(b"n,,n=u,r=c", |_| Some(credential.clone()));
            let _ = server.handle_client_final(&first);

            let _ = crate::plain::authenticate(&first, |_| Some("pw"));
            let _ = JaasConfig::parse(&text);
            let _ = KafkaPrincipal::parse(&text);
            if let Ok(mapper) = SslPrincipalMapper::from_rules(&text) {
                let _ = mapper.map(&String::from_utf8_lossy(&last));
            }
        }
    }
}
