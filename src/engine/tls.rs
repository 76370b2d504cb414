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
use crate::model::endpoint::CertPin;
use crate::model::{ErrorKind, TlsClientSettings, TlsServerSettings};
use crate::persist::{PEM_LIMIT, read_bounded};

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

/// The certificates of a PEM file (a regular file of at most [`PEM_LIMIT`]
/// bytes); `what` names its role in errors ("CA certificate file").
fn read_certs(path: &Path, what: &'static str) -> Result<Vec<CertificateDer<'static>>, NetError> {
    let bytes = read_bounded(path, PEM_LIMIT, what).map_err(|e| config_error(e.to_string()))?;
    let certs: Vec<_> = CertificateDer::pem_slice_iter(&bytes)
        .collect::<Result<_, _>>()
        .map_err(|e| {
            config_error(format!(
                "{}: the {what} is not PEM certificates: {e}",
                path.display()
            ))
        })?;
    if certs.is_empty() {
        return Err(config_error(format!(
            "{}: no certificate in the {what} (expected -----BEGIN CERTIFICATE-----); give a PEM certificate file",
            path.display()
        )));
    }
    Ok(certs)
}

/// Reads every `--ca` file as the client will, so bad input is found before
/// anything starts (without loading the system's trust store twice).
pub fn check_ca_files(paths: &[std::path::PathBuf]) -> Result<(), NetError> {
    paths
        .iter()
        .try_for_each(|p| read_certs(p, CA_FILE).map(drop))
}

/// Reads every certificate and key file the TLS endpoints of `session` name,
/// as starting them would (bounded, parsed, a key matching its certificate),
/// so `check` and `replay` refuse a bad file before anything runs. The first
/// problem found is returned, naming the endpoint.
pub fn check_session_files(session: &crate::model::Session) -> Result<(), NetError> {
    use crate::model::EndpointKind;
    for e in &session.endpoints {
        let result = match &e.kind {
            EndpointKind::TlsClient { tls, .. } => check_ca_files(&tls.ca),
            EndpointKind::TlsServer { tls, .. } if tls.cert.is_some() || tls.key.is_some() => {
                server(tls).map(drop)
            }
            EndpointKind::Relay {
                tls_server,
                tls_client,
                ..
            } => check_ca_files(&tls_client.ca).and_then(|()| {
                if tls_server.cert.is_some() || tls_server.key.is_some() {
                    server(tls_server).map(drop)
                } else {
                    Ok(())
                }
            }),
            _ => Ok(()),
        };
        result.map_err(|mut err| {
            err.message = format!("endpoint \"{}\": {}", e.name, err.message);
            err
        })?;
    }
    Ok(())
}

const CA_FILE: &str = "CA certificate file";

fn read_key(path: &Path) -> Result<PrivateKeyDer<'static>, NetError> {
    let bytes = read_bounded(path, PEM_LIMIT, "private key file")
        .map_err(|e| config_error(e.to_string()))?;
    PrivateKeyDer::from_pem_slice(&bytes).map_err(|e| {
        let encrypted = bytes.windows(9).any(|w| w == b"ENCRYPTED");
        let why = if encrypted {
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
    /// A loud line for the log before the handshake when the usual check is
    /// loosened: `--insecure`, or a pin that ignores the name and issuer.
    pub warning: Option<String>,
}

/// Builds the client configuration for connecting to `host`.
///
/// The certificate is checked as curl and OpenSSL do: a chain to a trusted
/// authority (the system's, or one given with `--ca`), in date, and for the
/// server's name (`--sni`, else the host). A certificate given itself with
/// `--ca` (a server's self-signed one) is its own authority, and its name is
/// checked too. A pin trusts exactly one certificate whatever its name and
/// issuer; `--insecure` trusts any. Both say so in `warning`.
pub(crate) fn client(settings: &TlsClientSettings, host: &str) -> Result<ClientTls, NetError> {
    let provider = provider();
    let name = settings.sni.as_deref().unwrap_or(host);
    let server_name = ServerName::try_from(name.to_owned())
        .map_err(|_| config_error(format!("\"{name}\" cannot be a TLS server name (SNI)")))?;
    let (verifier, warning): (Arc<dyn ServerCertVerifier>, _) = if let Some(pin) = settings.pin {
        (
            Arc::new(Pinned {
                pin,
                provider: provider.clone(),
            }),
            Some(pin_warning(&pin, name)),
        )
    } else if settings.insecure {
        (
            Arc::new(AcceptAnything(provider.clone())),
            Some(
                "⚠ INSECURE: the server's certificate is NOT verified; any server is accepted, even an impostor"
                    .to_owned(),
            ),
        )
    } else {
        let mut roots = RootCertStore::empty();
        // The system's trust store; certificates it cannot parse are skipped.
        let native = rustls_native_certs::load_native_certs();
        roots.add_parsable_certificates(native.certs);
        let mut given = Vec::new();
        for path in &settings.ca {
            for cert in read_certs(path, CA_FILE)? {
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
        (
            Arc::new(TrustGiven {
                inner: webpki,
                given,
            }),
            None,
        )
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
    Ok(ClientTls {
        config: Arc::new(config),
        server_name,
        warning,
    })
}

/// The log's note for a pinned client, as loud as `--insecure`'s.
pub fn pin_warning(pin: &CertPin, name: &str) -> String {
    format!(
        "⚠ PINNED: only the certificate with SHA-256 {} is accepted, whatever its name and issuer; \
         the name \"{name}\" and the authority are NOT checked",
        pin.hex()
    )
}

/// The server's configuration, and its certificate's description (for the log).
pub(crate) fn server(
    settings: &TlsServerSettings,
) -> Result<(Arc<ServerConfig>, String), NetError> {
    let (chain, key, about) = match (&settings.cert, &settings.key) {
        (Some(cert), Some(key)) => {
            let chain = read_certs(cert, "certificate file")?;
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
            // The folder is this user's alone: in a shared temporary folder
            // another user could otherwise put their own certificate there first.
            let saved = match crate::model::spill::private_folder("certs") {
                Some(folder) => {
                    let file = folder.join(format!(
                        "sockbench-cert-{}.pem",
                        sha.replace(':', "")[..16].to_ascii_lowercase()
                    ));
                    forget_expired_certificates(&folder);
                    match crate::persist::write_atomic(&file, made.0.pem().as_bytes()) {
                        Ok(()) => {
                            format!("; saved as {} (clients trust it with --ca)", file.display())
                        }
                        Err(e) => format!("; not saved for clients ({e})"),
                    }
                }
                None => "; not saved for clients (no private folder could be made)".to_owned(),
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

/// Removes generated certificates from their folder once they have expired
/// (they are valid for 30 days), so they do not pile up there.
fn forget_expired_certificates(folder: &std::path::Path) {
    let Ok(entries) = std::fs::read_dir(folder) else {
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
                "name mismatch: the certificate is for {}, not for \"{name}\" (choose the name with --sni, \
                or trust exactly this certificate whatever its name with --pin sha256:…)",
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
            CertificateError::Other(other) if other.0.downcast_ref::<PinMismatch>().is_some() => {
                other.to_string()
            }
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

/// `DnsName("example.org")` → `example.org`, `IpAddress(0::1)` → `::1`: names
/// as rustls presents them, as a person writes them.
fn plain_name(presented: &str) -> String {
    if let Some(ip) = presented
        .strip_prefix("IpAddress(")
        .and_then(|rest| rest.strip_suffix(')'))
    {
        return ip
            .parse::<std::net::IpAddr>()
            .map_or_else(|_| ip.to_owned(), |ip| ip.to_string());
    }
    presented
        .split_once("(\"")
        .and_then(|(_, rest)| rest.strip_suffix("\")"))
        .unwrap_or(presented)
        .to_owned()
}

fn unix_day(t: &UnixTime) -> String {
    chrono::DateTime::from_timestamp(t.as_secs() as i64, 0)
        .map(|d| d.format("%Y-%m-%d %H:%M UTC").to_string())
        .unwrap_or_default()
}

/// Trusts what webpki trusts, and any certificate given with `--ca` exactly
/// (a server's own self-signed certificate, as `openssl req -x509` makes, is
/// not a CA to webpki; given explicitly, it is its own authority): in date and
/// for the server's name, as any other certificate.
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
                // The very certificate the person gave: its own authority.
                check_dates(end_entity, now)?;
                check_name(end_entity, server_name)?;
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

/// The certificate is valid at `now`.
fn check_dates(der: &CertificateDer<'_>, now: UnixTime) -> Result<(), rustls::Error> {
    let (_, cert) = x509_parser::parse_x509_certificate(der.as_ref())
        .map_err(|_| rustls::Error::InvalidCertificate(CertificateError::BadEncoding))?;
    let unix = |t: i64| UnixTime::since_unix_epoch(std::time::Duration::from_secs(t.max(0) as u64));
    let (not_before, not_after) = (
        cert.validity().not_before.timestamp(),
        cert.validity().not_after.timestamp(),
    );
    let at = now.as_secs() as i64;
    if at > not_after {
        return Err(rustls::Error::InvalidCertificate(
            CertificateError::ExpiredContext {
                time: now,
                not_after: unix(not_after),
            },
        ));
    }
    if at < not_before {
        return Err(rustls::Error::InvalidCertificate(
            CertificateError::NotValidYetContext {
                time: now,
                not_before: unix(not_before),
            },
        ));
    }
    Ok(())
}

/// The certificate is for `server_name`, as webpki checks it; and, as OpenSSL
/// (so curl and Python) does, a certificate without any subject alternative
/// name is matched by its subject's common name (`openssl req -x509 -subj
/// /CN=localhost` makes such certificates).
fn check_name(der: &CertificateDer<'_>, server_name: &ServerName<'_>) -> Result<(), rustls::Error> {
    let parsed = rustls::server::ParsedCertificate::try_from(der)?;
    let error = match rustls::client::verify_server_name(&parsed, server_name) {
        Ok(()) => return Ok(()),
        Err(e) => e,
    };
    if let ServerName::DnsName(dns) = server_name
        && let Ok((_, cert)) = x509_parser::parse_x509_certificate(der.as_ref())
        && cert.subject_alternative_name().ok().flatten().is_none()
        && cert
            .subject()
            .iter_common_name()
            .filter_map(|cn| cn.as_str().ok())
            .any(|cn| cn.eq_ignore_ascii_case(dns.as_ref()))
    {
        return Ok(());
    }
    Err(error)
}

/// A pin that the server's certificate does not match.
#[derive(Debug)]
struct PinMismatch {
    expected: CertPin,
    found: String,
}

impl std::fmt::Display for PinMismatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "pinned certificate not presented: the server's certificate has SHA-256 {}, not the pinned {}; \
             if the server's certificate was changed on purpose, pin the new one",
            self.found,
            self.expected.hex()
        )
    }
}

impl std::error::Error for PinMismatch {}

/// `--pin`: exactly one certificate is accepted, by its SHA-256, whatever its
/// name or issuer; it must be in date. The handshake's signatures are checked
/// as always, so the peer holds that certificate's key.
#[derive(Debug)]
struct Pinned {
    pin: CertPin,
    provider: Arc<CryptoProvider>,
}

impl ServerCertVerifier for Pinned {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _: &[CertificateDer<'_>],
        _: &ServerName<'_>,
        _: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let digest = ring::digest::digest(&ring::digest::SHA256, end_entity.as_ref());
        if digest.as_ref() != self.pin.0 {
            return Err(rustls::Error::InvalidCertificate(CertificateError::Other(
                rustls::OtherError(Arc::new(PinMismatch {
                    expected: self.pin,
                    found: fingerprint(end_entity.as_ref()),
                })),
            )));
        }
        check_dates(end_entity, now)?;
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
            &self.provider.signature_verification_algorithms,
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
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
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
            e.message
                .ends_with("none.pem: cannot read the CA certificate file: no such file"),
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
        assert!(
            e.message
                .contains("no certificate in the CA certificate file"),
            "{}",
            e.message
        );
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

    fn client_error(ca: &Path) -> String {
        client(
            &TlsClientSettings {
                ca: vec![ca.to_owned()],
                ..Default::default()
            },
            "localhost",
        )
        .err()
        .unwrap()
        .message
    }

    #[test]
    fn certificate_files_that_are_not_files_are_refused() {
        // Before: /dev/zero as a certificate was read until memory ran out,
        // and --ca /dev/null was called "no such file".
        let e = client_error(Path::new("/dev/null"));
        assert_eq!(
            e,
            "/dev/null: is a character device, not a regular file; give the CA certificate file as a file"
        );
        let e = server(&TlsServerSettings {
            cert: Some("/dev/zero".into()),
            key: Some("/dev/zero".into()),
            alpn: vec![],
        })
        .err()
        .unwrap();
        assert!(
            e.message.starts_with(
                "/dev/zero: is a character device, not a regular file; give the certificate file"
            ),
            "{}",
            e.message
        );
        let dir = tempfile::tempdir().unwrap();
        if let Some(fifo) = crate::persist::read::tests::make_fifo(dir.path()) {
            let (tx, rx) = std::sync::mpsc::channel();
            std::thread::spawn(move || {
                let _ = tx.send(client_error(&fifo));
            });
            let e = rx
                .recv_timeout(std::time::Duration::from_secs(10))
                .expect("a fifo must not block");
            assert!(e.contains("is a fifo (named pipe)"), "{e}");
        }
        // A key that is not a file either.
        let made = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
        let cert = dir.path().join("cert.pem");
        std::fs::write(&cert, made.cert.pem()).unwrap();
        let e = server(&TlsServerSettings {
            cert: Some(cert),
            key: Some("/dev/zero".into()),
            alpn: vec![],
        })
        .err()
        .unwrap();
        assert!(
            e.message.contains("give the private key file as a file"),
            "{}",
            e.message
        );
    }

    #[test]
    fn oversized_certificate_files_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let big = dir.path().join("big.pem");
        let file = std::fs::File::create(&big).unwrap();
        file.set_len(PEM_LIMIT + 1).unwrap();
        drop(file);
        let e = client_error(&big);
        assert!(
            e.ends_with("big.pem: the CA certificate file is larger than 4 MiB, the most sockbench reads; give a smaller file"),
            "{e}"
        );
    }

    #[test]
    fn session_files_are_checked_before_a_run() {
        use crate::model::{EndpointKind, EndpointSpec, Session};
        let mut session = Session::default();
        session.endpoints.push(EndpointSpec::new(
            "web",
            EndpointKind::TlsServer {
                listen: "127.0.0.1:0".parse().unwrap(),
                tls: TlsServerSettings::default(),
            },
        ));
        check_session_files(&session).unwrap();
        session.endpoints.push(EndpointSpec::new(
            "client",
            EndpointKind::TlsClient {
                remote: "127.0.0.1:1".parse().unwrap(),
                tls: TlsClientSettings {
                    ca: vec!["/dev/zero".into()],
                    ..Default::default()
                },
            },
        ));
        let e = check_session_files(&session).unwrap_err();
        assert!(
            e.message
                .starts_with("endpoint \"client\": /dev/zero: is a character device"),
            "{}",
            e.message
        );
        session.endpoints[1] = EndpointSpec::new(
            "server",
            EndpointKind::TlsServer {
                listen: "127.0.0.1:0".parse().unwrap(),
                tls: TlsServerSettings {
                    cert: Some("/dev/zero".into()),
                    key: Some("/dev/zero".into()),
                    alpn: vec![],
                },
            },
        );
        let e = check_session_files(&session).unwrap_err();
        assert!(
            e.message.starts_with("endpoint \"server\": /dev/zero"),
            "{}",
            e.message
        );
    }

    #[test]
    fn presented_names_read_as_written() {
        assert_eq!(plain_name("DnsName(\"example.org\")"), "example.org");
        assert_eq!(plain_name("IpAddress(127.0.0.1)"), "127.0.0.1");
        assert_eq!(plain_name("IpAddress(0::1)"), "::1");
        assert_eq!(plain_name("Other"), "Other");
    }

    #[test]
    fn pins_and_warnings() {
        let pin = CertPin([0x0F; 32]);
        let tls = client(
            &TlsClientSettings {
                pin: Some(pin),
                insecure: true,
                ..Default::default()
            },
            "example.org",
        )
        .unwrap();
        let warning = tls.warning.unwrap();
        assert!(
            warning.starts_with("⚠ PINNED: only the certificate with SHA-256 0F:0F:"),
            "{warning}"
        );
        assert!(warning.contains("\"example.org\""), "{warning}");
        let tls = client(
            &TlsClientSettings {
                insecure: true,
                ..Default::default()
            },
            "example.org",
        )
        .unwrap();
        assert!(tls.warning.unwrap().starts_with("⚠ INSECURE"));
        let tls = client(&TlsClientSettings::default(), "example.org").unwrap();
        assert!(tls.warning.is_none());
    }

    #[test]
    fn a_certificate_without_alternative_names_matches_its_common_name() {
        // As `openssl req -x509 -subj /CN=localhost` makes it.
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "localhost");
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = params.self_signed(&key).unwrap();
        let der = cert.der().clone();
        let name = |n: &str| ServerName::try_from(n.to_owned()).unwrap();
        check_name(&der, &name("localhost")).unwrap();
        check_name(&der, &name("LOCALHOST")).unwrap();
        assert!(check_name(&der, &name("other.example")).is_err());
        assert!(check_name(&der, &name("127.0.0.1")).is_err());
        // With alternative names, the common name is not looked at.
        let made = rcgen::generate_simple_self_signed(vec!["a.example".to_owned()]).unwrap();
        assert!(check_name(made.cert.der(), &name("a.example")).is_ok());
        assert!(check_name(made.cert.der(), &name("localhost")).is_err());
    }
}
