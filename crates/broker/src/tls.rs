//! TLS for SSL and SASL_SSL listeners, on rustls (ring provider): the server configuration of
//! a listener built from its PEM key store and trust store ([`TlsListener::new`]), the
//! handshake of an accepted connection, and the principal of an SSL connection from its client
//! certificate: the subject DN in RFC 2253 form (most specific first, as Java's
//! `X500Principal.getName()`), mapped by `ssl.principal.mapping.rules`.
//!
//! [`inter_broker_client`] is the other side: the TLS client a broker uses towards the
//! inter-broker listener of the others.
//!
//! Fetch over TLS cannot use `sendfile` (the bytes must be encrypted in user space, as in
//! Kafka's `SslTransportLayer`): the connection copies file regions through a buffer instead
//! (see `connection.rs`).

use crate::config::{ClientAuth, TlsListenerConfig};
use gregor_auth::principal::SslPrincipalMapper;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::WebPkiClientVerifier;
use rustls::{RootCertStore, ServerConfig};
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpStream;
use tokio_rustls::server::TlsStream;
use tokio_rustls::TlsAcceptor;

/// How long a client may take to complete the TLS handshake.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// A listener's TLS acceptor and principal mapping.
pub struct TlsListener {
    acceptor: TlsAcceptor,
    mapper: SslPrincipalMapper,
}

impl std::fmt::Debug for TlsListener {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsListener").finish_non_exhaustive()
    }
}

fn certificates(pem: &str, what: &str) -> Result<Vec<CertificateDer<'static>>, String> {
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(pem.as_bytes())
        .collect::<Result<_, _>>()
        .map_err(|e| format!("{what}: {e}"))?;
    if certs.is_empty() {
        return Err(format!("{what}: no PEM certificate found"));
    }
    Ok(certs)
}

impl TlsListener {
    /// Builds the server side of TLS for one listener.
    pub fn new(listener: &str, cfg: &TlsListenerConfig) -> Result<TlsListener, String> {
        let chain = certificates(
            &cfg.certificate_chain,
            &format!("listener {listener} key store"),
        )?;
        let key = PrivateKeyDer::from_pem_slice(cfg.private_key.as_bytes()).map_err(|e| {
            format!("listener {listener} key store: no usable unencrypted PEM private key ({e})")
        })?;
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let versions: Vec<&'static rustls::SupportedProtocolVersion> = cfg
            .protocols
            .iter()
            .filter_map(|p| match p.as_str() {
                "TLSv1.2" => Some(&rustls::version::TLS12),
                "TLSv1.3" => Some(&rustls::version::TLS13),
                _ => None,
            })
            .collect();
        let builder = ServerConfig::builder_with_provider(provider.clone())
            .with_protocol_versions(&versions)
            .map_err(|e| format!("listener {listener}: {e}"))?;
        let builder = match (cfg.client_auth, &cfg.trusted) {
            (ClientAuth::None, _) | (_, None) => builder.with_no_client_auth(),
            (auth, Some(trusted)) => {
                let mut roots = RootCertStore::empty();
                for c in certificates(trusted, &format!("listener {listener} trust store"))? {
                    roots
                        .add(c)
                        .map_err(|e| format!("listener {listener} trust store: {e}"))?;
                }
                let verifier =
                    WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider);
                let verifier = if auth == ClientAuth::Requested {
                    verifier.allow_unauthenticated()
                } else {
                    verifier
                };
                let verifier = verifier
                    .build()
                    .map_err(|e| format!("listener {listener} trust store: {e}"))?;
                builder.with_client_cert_verifier(verifier)
            }
        };
        let server = builder
            .with_single_cert(chain, key)
            .map_err(|e| format!("listener {listener} key store: {e}"))?;
        let mapper = SslPrincipalMapper::from_rules(&cfg.principal_mapping_rules)
            .map_err(|e| format!("listener {listener} ssl.principal.mapping.rules: {e}"))?;
        Ok(TlsListener {
            acceptor: TlsAcceptor::from(Arc::new(server)),
            mapper,
        })
    }

    /// Runs the TLS handshake of an accepted connection.
    pub async fn accept(&self, stream: TcpStream) -> std::io::Result<TlsStream<TcpStream>> {
        match tokio::time::timeout(HANDSHAKE_TIMEOUT, self.acceptor.accept(stream)).await {
            Ok(r) => r,
            Err(_) => Err(std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                "TLS handshake timed out",
            )),
        }
    }

    /// The principal of an SSL connection: `User:<mapped subject DN>` of the client
    /// certificate, `User:ANONYMOUS` without one.
    pub fn principal(&self, stream: &TlsStream<TcpStream>) -> String {
        let dn = stream
            .get_ref()
            .1
            .peer_certificates()
            .and_then(|c| c.first())
            .and_then(|c| subject_dn(c.as_ref()));
        match dn {
            Some(dn) => match self.mapper.map(&dn) {
                Ok(name) => format!("User:{name}"),
                Err(e) => {
                    tracing::warn!(%dn, error = %e, "no ssl.principal.mapping.rules rule matched");
                    format!("User:{dn}")
                }
            },
            None => "User:ANONYMOUS".into(),
        }
    }
}

/// The subject of a DER certificate as RFC 2253 text, most specific RDN first (Java's
/// `X500Principal.getName()`): `CN=alice,OU=eng,O=acme,C=US`.
/// The TLS client of a secured inter-broker listener: the listener's trust store verifies the
/// other brokers' certificates (and, with `ssl.endpoint.identification.algorithm=https`, that
/// they name the host they are reached at); its key store is this broker's client certificate.
pub fn inter_broker_client(
    ib: &crate::config::InterBrokerClient,
) -> Result<crate::rpc_client::ClientSecurity, String> {
    let listener = &ib.listener;
    let tls = match &ib.tls {
        None => None,
        Some(cfg) => {
            let provider = Arc::new(rustls::crypto::ring::default_provider());
            let mut roots = RootCertStore::empty();
            let trusted = cfg.trusted.as_deref().unwrap_or_default();
            for c in certificates(trusted, &format!("listener {listener} trust store"))? {
                roots
                    .add(c)
                    .map_err(|e| format!("listener {listener} trust store: {e}"))?;
            }
            let verifier = rustls::client::WebPkiServerVerifier::builder_with_provider(
                Arc::new(roots),
                provider.clone(),
            )
            .build()
            .map_err(|e| format!("listener {listener} trust store: {e}"))?;
            let builder = rustls::ClientConfig::builder_with_provider(provider)
                .with_safe_default_protocol_versions()
                .map_err(|e| format!("listener {listener}: {e}"))?;
            let builder = if ib.verify_hostname {
                builder.with_webpki_verifier(verifier)
            } else {
                builder
                    .dangerous()
                    .with_custom_certificate_verifier(Arc::new(AnyHostname(verifier)))
            };
            let chain = certificates(
                &cfg.certificate_chain,
                &format!("listener {listener} key store"),
            )?;
            let key = PrivateKeyDer::from_pem_slice(cfg.private_key.as_bytes())
                .map_err(|e| format!("listener {listener} key store: {e}"))?;
            let config = builder
                .with_client_auth_cert(chain, key)
                .map_err(|e| format!("listener {listener} key store: {e}"))?;
            Some(Arc::new(config))
        }
    };
    Ok(crate::rpc_client::ClientSecurity {
        tls,
        sasl: ib
            .sasl
            .as_ref()
            .map(|s| (s.mechanism.clone(), s.username.clone(), s.password.clone())),
    })
}

/// `ssl.endpoint.identification.algorithm=` (empty): the chain must lead to a trusted CA, but
/// the certificate need not name the host.
#[derive(Debug)]
struct AnyHostname(Arc<rustls::client::WebPkiServerVerifier>);

impl rustls::client::danger::ServerCertVerifier for AnyHostname {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &rustls::pki_types::ServerName<'_>,
        ocsp_response: &[u8],
        now: rustls::pki_types::UnixTime,
    ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        use rustls::CertificateError::{NotValidForName, NotValidForNameContext};
        match self
            .0
            .verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now)
        {
            Err(rustls::Error::InvalidCertificate(
                NotValidForName | NotValidForNameContext { .. },
            )) => Ok(rustls::client::danger::ServerCertVerified::assertion()),
            other => other,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.0.supported_verify_schemes()
    }
}

pub fn subject_dn(der: &[u8]) -> Option<String> {
    let (_, cert) = x509_parser::parse_x509_certificate(der).ok()?;
    let rdns: Vec<String> = cert
        .subject()
        .iter()
        .map(|rdn| {
            rdn.iter()
                .map(|atv| {
                    let oid = atv.attr_type().to_id_string();
                    let name = match oid.as_str() {
                        "2.5.4.3" => "CN".to_string(),
                        "2.5.4.6" => "C".to_string(),
                        "2.5.4.7" => "L".to_string(),
                        "2.5.4.8" => "ST".to_string(),
                        "2.5.4.10" => "O".to_string(),
                        "2.5.4.11" => "OU".to_string(),
                        "2.5.4.9" => "STREET".to_string(),
                        "0.9.2342.19200300.100.1.25" => "DC".to_string(),
                        "0.9.2342.19200300.100.1.1" => "UID".to_string(),
                        other => other.to_string(),
                    };
                    let value = atv.as_str().map(escape).unwrap_or_default();
                    format!("{name}={value}")
                })
                .collect::<Vec<_>>()
                .join("+")
        })
        .collect();
    Some(rdns.into_iter().rev().collect::<Vec<_>>().join(","))
}

/// RFC 2253 escaping of an attribute value.
fn escape(v: &str) -> String {
    let mut out = String::with_capacity(v.len());
    for (i, c) in v.chars().enumerate() {
        let special = matches!(c, ',' | '+' | '"' | '\\' | '<' | '>' | ';')
            || (i == 0 && (c == '#' || c == ' '))
            || (i + 1 == v.chars().count() && c == ' ');
        if special {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn escaping() {
        assert_eq!(super::escape("a,b"), "a\\,b");
        assert_eq!(super::escape(" x "), "\\ x\\ ");
        assert_eq!(super::escape("plain"), "plain");
    }
}
