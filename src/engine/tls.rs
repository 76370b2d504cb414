//! TLS for stream endpoints, with rustls and its ring provider: client and
//! server configurations from the endpoint's settings, certificates that just
//! work for testing (a self-signed one made on start, `--ca` that also takes a
//! server's own self-signed certificate), the handshake described for the log,
//! and every failure explained in plain words.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{CryptoProvider, verify_tls12_signature, verify_tls13_signature};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{
    CertificateError, ClientConfig, DigitallySignedStruct, RootCertStore, ServerConfig,
    SignatureScheme,
};

use super::{NetError, Operation};
use crate::model::{ErrorKind, TlsClientSettings, TlsServerSettings};

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn config_error(message: impl Into<String>) -> NetError {
    NetError::new(ErrorKind::Tls, Operation::Configure, message)
}

/// `AB:CD:…`: the SHA-256 fingerprint of a certificate, as browsers and openssl show it.
pub fn fingerprint(der: &[u8]) -> String {
    let digest = ring::digest::digest(&ring::digest::SHA256, der);
    digest
        .as_ref()
        .iter()
        .map(|b| format!("{b:02X}"))
        .collect::<Vec<_>>()
        .join(":")
}

/// What a certificate says, for the log.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CertInfo {
    pub subject: String,
    pub issuer: String,
    pub not_before: String,
    pub not_after: String,
    pub names: Vec<String>,
    pub sha256: String,
}

impl CertInfo {
    pub fn of(der: &[u8]) -> Option<CertInfo> {
        let (_, cert) = x509_parser::parse_x509_certificate(der).ok()?;
        let day = |t: &x509_parser::time::ASN1Time| {
            chrono::DateTime::from_timestamp(t.timestamp(), 0)
                .map(|d| d.format("%Y-%m-%d %H:%M UTC").to_string())
                .unwrap_or_default()
        };
        let names = cert
            .subject_alternative_name()
            .ok()
            .flatten()
            .map(|san| {
                san.value
                    .general_names
                    .iter()
                    .map(|n| match n {
                        x509_parser::extensions::GeneralName::DNSName(d) => d.to_string(),
                        x509_parser::extensions::GeneralName::IPAddress(ip) => match ip.len() {
                            4 => std::net::Ipv4Addr::new(ip[0], ip[1], ip[2], ip[3]).to_string(),
                            16 => {
                                let mut b = [0u8; 16];
                                b.copy_from_slice(ip);
                                std::net::Ipv6Addr::from(b).to_string()
                            }
                            _ => format!("{ip:?}"),
                        },
                        other => other.to_string(),
                    })
                    .collect()
            })
            .unwrap_or_default();
        Some(CertInfo {
            subject: cert.subject().to_string(),
            issuer: cert.issuer().to_string(),
            not_before: day(&cert.validity().not_before),
            not_after: day(&cert.validity().not_after),
            names,
            sha256: fingerprint(der),
        })
    }

    /// One line: `subject CN=x, issuer CN=y, valid … to …, names …, SHA-256 …`.
    pub fn line(&self) -> String {
        let names = if self.names.is_empty() {
            String::new()
        } else {
            format!(", for {}", self.names.join(" "))
        };
        format!(
            "subject {}, issuer {}, valid {} to {}{names}, SHA-256 {}",
            empty_as(&self.subject),
            empty_as(&self.issuer),
            self.not_before,
            self.not_after,
            self.sha256
        )
    }
}

fn empty_as(s: &str) -> &str {
    if s.is_empty() { "(none)" } else { s }
}

fn read_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, NetError> {
    let iter = CertificateDer::pem_file_iter(path).map_err(|e| {
        config_error(format!(
            "cannot read the certificate file {}: {e}",
            path.display()
        ))
    })?;
    let certs: Vec<_> = iter.collect::<Result<_, _>>().map_err(|e| {
        config_error(format!(
            "{}: not a PEM certificate file: {e}",
            path.display()
        ))
    })?;
    if certs.is_empty() {
        return Err(config_error(format!(
            "{}: no certificate in it (expected -----BEGIN CERTIFICATE-----)",
            path.display()
        )));
    }
    Ok(certs)
}

/// Reads every `--ca` file as the client will, so bad input is found before
/// anything starts (without loading the system's trust store twice).
pub(crate) fn check_ca_files(paths: &[std::path::PathBuf]) -> Result<(), NetError> {
    paths.iter().try_for_each(|p| read_certs(p).map(drop))
}

fn read_key(path: &Path) -> Result<PrivateKeyDer<'static>, NetError> {
    PrivateKeyDer::from_pem_file(path).map_err(|e| {
        let text = std::fs::read_to_string(path).unwrap_or_default();
        let why = if text.contains("ENCRYPTED") {
            "the key is encrypted with a passphrase; write it out unencrypted for testing \
             (openssl pkey -in KEY.pem -out plain-key.pem)"
                .to_owned()
        } else if matches!(e, rustls::pki_types::pem::Error::NoItemsFound) {
            "no private key in it (expected -----BEGIN PRIVATE KEY-----, \
             -----BEGIN RSA PRIVATE KEY----- or -----BEGIN EC PRIVATE KEY-----)"
                .to_owned()
        } else {
            e.to_string()
        };
        config_error(format!("the private key {}: {why}", path.display()))
    })
}

/// Everything a TLS client needs for one connection.
#[derive(Clone)]
pub(crate) struct ClientTls {
    pub config: Arc<ClientConfig>,
    pub server_name: ServerName<'static>,
    pub insecure: bool,
}

/// Builds the client configuration for connecting to `host`.
pub(crate) fn client(settings: &TlsClientSettings, host: &str) -> Result<ClientTls, NetError> {
    let provider = provider();
    let verifier: Arc<dyn ServerCertVerifier> = if settings.insecure {
        Arc::new(AcceptAnything(provider.clone()))
    } else {
        let mut roots = RootCertStore::empty();
        // The system's trust store; certificates it cannot parse are skipped.
        let native = rustls_native_certs::load_native_certs();
        roots.add_parsable_certificates(native.certs);
        let mut given = Vec::new();
        for path in &settings.ca {
            for cert in read_certs(path)? {
                // A server's own certificate (not a CA) is not a trust anchor for
                // webpki, and is trusted by exact match below instead.
                let _ = roots.add(cert.clone());
                given.push(cert);
            }
        }
        let webpki = rustls::client::WebPkiServerVerifier::builder_with_provider(
            Arc::new(roots),
            provider.clone(),
        )
        .build()
        .map_err(|e| config_error(format!("no certificate to trust: {e}")))?;
        Arc::new(TrustGiven {
            inner: webpki,
            given,
        })
    };
    let mut config = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| config_error(e.to_string()))?
        .dangerous()
        .with_custom_certificate_verifier(verifier)
        .with_no_client_auth();
    config.alpn_protocols = settings
        .alpn
        .iter()
        .map(|p| p.as_bytes().to_vec())
        .collect();
    let name = settings.sni.as_deref().unwrap_or(host);
    let server_name = ServerName::try_from(name.to_owned())
        .map_err(|_| config_error(format!("\"{name}\" cannot be a TLS server name (SNI)")))?;
    Ok(ClientTls {
        config: Arc::new(config),
        server_name,
        insecure: settings.insecure,
    })
}

/// The server's configuration, and its certificate's description (for the log).
pub(crate) fn server(
    settings: &TlsServerSettings,
) -> Result<(Arc<ServerConfig>, String), NetError> {
    let (chain, key, about) = match (&settings.cert, &settings.key) {
        (Some(cert), Some(key)) => {
            let chain = read_certs(cert)?;
            let key = read_key(key)?;
            let info = CertInfo::of(&chain[0])
                .map(|i| i.line())
                .unwrap_or_default();
            (
                chain,
                key,
                format!("certificate from {}: {info}", cert.display()),
            )
        }
        (None, None) => {
            let names = vec![
                "localhost".to_owned(),
                "127.0.0.1".to_owned(),
                "::1".to_owned(),
            ];
            let made = (|| {
                let mut params = rcgen::CertificateParams::new(names)?;
                params
                    .distinguished_name
                    .push(rcgen::DnType::CommonName, "sockbench test certificate");
                // Valid from yesterday (clocks differ) for 30 days: a test certificate.
                let day = |d: chrono::NaiveDate| {
                    use chrono::Datelike;
                    rcgen::date_time_ymd(d.year(), d.month() as u8, d.day() as u8)
                };
                let today = chrono::Utc::now().date_naive();
                params.not_before = day(today - chrono::Days::new(1));
                params.not_after = day(today + chrono::Days::new(30));
                let key = rcgen::KeyPair::generate()?;
                let cert = params.self_signed(&key)?;
                Ok::<_, rcgen::Error>((cert, key))
            })()
            .map_err(|e| config_error(format!("cannot make a self-signed certificate: {e}")))?;
            let der = made.0.der().clone();
            let key = PrivateKeyDer::Pkcs8(made.1.serialize_der().into());
            let sha = fingerprint(&der);
            // The certificate (public, never the key) goes to a file, so a client
            // can be told to trust it: `--ca FILE`, `openssl s_client -CAfile FILE`.
            let file = std::env::temp_dir().join(format!(
                "sockbench-cert-{}.pem",
                sha.replace(':', "")[..16].to_ascii_lowercase()
            ));
            forget_expired_certificates();
            let saved = match crate::persist::write_atomic(&file, made.0.pem().as_bytes()) {
                Ok(()) => format!("; saved as {} (clients trust it with --ca)", file.display()),
                Err(e) => format!("; not saved for clients ({e})"),
            };
            (
                vec![der],
                key,
                format!(
                    "self-signed certificate made now for localhost, 127.0.0.1 and ::1; SHA-256 {sha}{saved}"
                ),
            )
        }
        (Some(_), None) => {
            return Err(config_error(
                "a certificate needs its private key: give the key file too",
            ));
        }
        (None, Some(_)) => {
            return Err(config_error(
                "a private key needs its certificate: give the certificate file too",
            ));
        }
    };
    let mut config = ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| config_error(e.to_string()))?
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .map_err(|e| {
            let which = match (&settings.cert, &settings.key) {
                (Some(c), Some(k)) => {
                    format!(" ({} is not the key of {})", k.display(), c.display())
                }
                _ => String::new(),
            };
            let why = match e {
                rustls::Error::InconsistentKeys(_) => String::new(),
                other => format!(": {other}"),
            };
            config_error(format!(
                "the certificate and key do not go together{which}{why}"
            ))
        })?;
    config.alpn_protocols = settings
        .alpn
        .iter()
        .map(|p| p.as_bytes().to_vec())
        .collect();
    Ok((Arc::new(config), about))
}

/// The negotiated session, for the log: version, cipher suite, ALPN, and the
/// peer's certificate.
pub(crate) fn describe(conn: &rustls::CommonState) -> String {
    let version = conn
        .protocol_version()
        .map(|v| match v {
            rustls::ProtocolVersion::TLSv1_3 => "TLS 1.3".to_owned(),
            rustls::ProtocolVersion::TLSv1_2 => "TLS 1.2".to_owned(),
            other => format!("{other:?}"),
        })
        .unwrap_or_else(|| "TLS".into());
    let suite = conn
        .negotiated_cipher_suite()
        .map(|s| format!("{:?}", s.suite()))
        .unwrap_or_default();
    let alpn = match conn.alpn_protocol() {
        Some(p) => format!("ALPN {}", String::from_utf8_lossy(p)),
        None => "no ALPN".into(),
    };
    let cert = conn
        .peer_certificates()
        .and_then(|certs| certs.first())
        .and_then(|c| CertInfo::of(c))
        .map(|i| format!("; peer certificate {}", i.line()))
        .unwrap_or_default();
    format!("{version}, {suite}, {alpn}{cert}")
}

/// Removes generated certificates from the temporary folder once they have
/// expired (they are valid for 30 days), so they do not pile up there.
fn forget_expired_certificates() {
    let Ok(entries) = std::fs::read_dir(std::env::temp_dir()) else {
        return;
    };
    let month = std::time::Duration::from_secs(31 * 24 * 3600);
    for entry in entries.flatten() {
        let name = entry.file_name();
        let name = name.to_string_lossy();
        let old = entry
            .metadata()
            .and_then(|m| m.modified())
            .ok()
            .and_then(|t| t.elapsed().ok())
            .is_some_and(|age| age > month);
        if old && name.starts_with("sockbench-cert-") && name.ends_with(".pem") {
            let _ = std::fs::remove_file(entry.path());
        }
    }
}

/// A handshake failure, in plain words.
pub(crate) fn handshake_error(
    e: &std::io::Error,
    peer: impl std::fmt::Display,
    name: &str,
) -> NetError {
    let tls = |m: String| {
        NetError::new(
            ErrorKind::Tls,
            Operation::Tls,
            format!("TLS handshake with {peer}: {m}"),
        )
    };
    let Some(inner) = e.get_ref().and_then(|i| i.downcast_ref::<rustls::Error>()) else {
        return match e.kind() {
            std::io::ErrorKind::UnexpectedEof => tls(
                "the peer closed the connection during the handshake (does it speak TLS here? does it accept our certificate?)"
                    .into(),
            ),
            std::io::ErrorKind::TimedOut => NetError::new(
                ErrorKind::TimedOut,
                Operation::Tls,
                format!("TLS handshake with {peer}: no answer in time"),
            ),
            _ => NetError::from_io(Operation::Tls, format!("with {peer}"), e),
        };
    };
    tls(explain(inner, name))
}

/// A TLS failure after the handshake (an alert the peer sends late, as a TLS
/// 1.3 server that wants a client certificate does), in the same plain words.
pub(crate) fn session_error(
    e: &std::io::Error,
    op: Operation,
    remote: SocketAddr,
) -> Option<NetError> {
    let inner = e.get_ref()?.downcast_ref::<rustls::Error>()?;
    Some(NetError::new(
        ErrorKind::Tls,
        op,
        format!(
            "TLS with {remote}: {}",
            explain(inner, &remote.ip().to_string())
        ),
    ))
}

/// What a rustls error means, for a person; `name` is the server name checked.
fn explain(inner: &rustls::Error, name: &str) -> String {
    use rustls::Error as E;
    match inner {
        E::InvalidCertificate(c) => match c {
            CertificateError::UnknownIssuer => "unknown issuer: the server's certificate is not signed by an \
                authority this client trusts; trust it with --ca FILE.pem (its own certificate works too), \
                or test without checking with --insecure"
                .to_owned(),
            CertificateError::NotValidForName => format!("name mismatch: the certificate is not for \"{name}\""),
            CertificateError::NotValidForNameContext { presented, .. } => format!(
                "name mismatch: the certificate is for {}, not for \"{name}\" (choose the name with --sni)",
                if presented.is_empty() {
                    "no name at all".to_owned()
                } else {
                    presented.iter().map(|n| plain_name(n)).collect::<Vec<_>>().join(", ")
                }
            ),
            CertificateError::Expired => "expired: the certificate is no longer valid".to_owned(),
            CertificateError::ExpiredContext { not_after, .. } => format!(
                "expired: the certificate was valid until {}",
                unix_day(not_after)
            ),
            CertificateError::NotValidYet | CertificateError::NotValidYetContext { .. } => {
                "not yet valid: the certificate's validity starts later (check the clocks)".to_owned()
            }
            CertificateError::BadSignature => "bad signature: the certificate's signature does not verify".to_owned(),
            CertificateError::Revoked => "revoked: the certificate was withdrawn by its issuer".to_owned(),
            other if format!("{other:?}").contains("CaUsedAsEndEntity") => "untrusted self-signed certificate: \
                the server presents a CA certificate as its own (as openssl req -x509 makes); trust exactly \
                that certificate with --ca FILE.pem, or test without checking with --insecure"
                .to_owned(),
            other => format!("the certificate is not accepted: {other:?}"),
        },
        E::AlertReceived(alert) => {
            let why = match alert {
                rustls::AlertDescription::BadCertificate
                | rustls::AlertDescription::UnknownCA
                | rustls::AlertDescription::CertificateUnknown => {
                    " — it does not accept our certificate (a client that does not trust it)"
                }
                rustls::AlertDescription::NoApplicationProtocol => {
                    " — no application protocol (ALPN) in common"
                }
                rustls::AlertDescription::ProtocolVersion => " — no TLS version in common",
                rustls::AlertDescription::HandshakeFailure => " — no cipher suite or parameters in common",
                rustls::AlertDescription::UnrecognisedName => " — it does not serve that name (SNI)",
                rustls::AlertDescription::CertificateRequired => {
                    " — it wants a client certificate, and this client has none to give"
                }
                _ => "",
            };
            format!("the peer sent the TLS alert {alert:?}{why}")
        }
        E::NoApplicationProtocol => "no application protocol (ALPN) in common with the peer".to_owned(),
        E::InvalidMessage(_) => {
            "what the peer sent is not TLS (does it speak plain TCP here, or is it the wrong port?)".to_owned()
        }
        E::PeerIncompatible(p) => format!("the peer cannot talk TLS with us: {p:?}"),
        other => other.to_string(),
    }
}

/// `DnsName("example.org")` (as rustls presents names) → `example.org`.
fn plain_name(presented: &str) -> &str {
    presented
        .split_once("(\"")
        .and_then(|(_, rest)| rest.strip_suffix("\")"))
        .unwrap_or(presented)
}

fn unix_day(t: &UnixTime) -> String {
    chrono::DateTime::from_timestamp(t.as_secs() as i64, 0)
        .map(|d| d.format("%Y-%m-%d %H:%M UTC").to_string())
        .unwrap_or_default()
}

/// Trusts what webpki trusts, and any certificate given with `--ca` exactly
/// (a server's own self-signed certificate, as `openssl req -x509` makes, is
/// not a CA to webpki; given explicitly, it is trusted while it is valid).
#[derive(Debug)]
struct TrustGiven {
    inner: Arc<rustls::client::WebPkiServerVerifier>,
    given: Vec<CertificateDer<'static>>,
}

impl ServerCertVerifier for TrustGiven {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        match self
            .inner
            .verify_server_cert(end_entity, intermediates, server_name, ocsp, now)
        {
            Ok(v) => Ok(v),
            Err(_) if self.given.iter().any(|g| g.as_ref() == end_entity.as_ref()) => {
                // The very certificate the person gave: trusted, if it is in date.
                let (_, cert) =
                    x509_parser::parse_x509_certificate(end_entity.as_ref()).map_err(|_| {
                        rustls::Error::InvalidCertificate(CertificateError::BadEncoding)
                    })?;
                let now = now.as_secs() as i64;
                if now > cert.validity().not_after.timestamp() {
                    return Err(rustls::Error::InvalidCertificate(CertificateError::Expired));
                }
                if now < cert.validity().not_before.timestamp() {
                    return Err(rustls::Error::InvalidCertificate(
                        CertificateError::NotValidYet,
                    ));
                }
                Ok(ServerCertVerified::assertion())
            }
            Err(e) => Err(e),
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
}

/// `--insecure`: any certificate is accepted. The handshake's signatures are
/// still checked, so the connection is at least with the holder of that key.
#[derive(Debug)]
struct AcceptAnything(Arc<CryptoProvider>);

impl ServerCertVerifier for AcceptAnything {
    fn verify_server_cert(
        &self,
        _: &CertificateDer<'_>,
        _: &[CertificateDer<'_>],
        _: &ServerName<'_>,
        _: &[u8],
        _: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_made_certificate_is_described() {
        let made = rcgen::generate_simple_self_signed(vec![
            "localhost".to_owned(),
            "127.0.0.1".to_owned(),
        ])
        .unwrap();
        let info = CertInfo::of(made.cert.der()).unwrap();
        assert_eq!(info.names, ["localhost", "127.0.0.1"]);
        assert_eq!(info.sha256.len(), 32 * 3 - 1);
        assert!(
            info.line().contains(", for localhost 127.0.0.1, SHA-256 "),
            "{}",
            info.line()
        );
    }

    #[test]
    fn settings_errors_are_clear() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("none.pem");
        let e = client(
            &TlsClientSettings {
                ca: vec![missing.clone()],
                ..Default::default()
            },
            "localhost",
        )
        .err()
        .unwrap();
        assert!(
            e.message.starts_with("cannot read the certificate file"),
            "{}",
            e.message
        );
        let empty = dir.path().join("empty.pem");
        std::fs::write(&empty, "nothing here").unwrap();
        let e = client(
            &TlsClientSettings {
                ca: vec![empty],
                ..Default::default()
            },
            "localhost",
        )
        .err()
        .unwrap();
        assert!(e.message.contains("no certificate in it"), "{}", e.message);
        let e = server(&TlsServerSettings {
            cert: Some(missing),
            key: None,
            alpn: vec![],
        })
        .err()
        .unwrap();
        assert!(e.message.contains("needs its private key"), "{}", e.message);
        let (_, about) = server(&TlsServerSettings::default()).unwrap();
        assert!(about.starts_with(
            "self-signed certificate made now for localhost, 127.0.0.1 and ::1; SHA-256 "
        ));
    }
}
