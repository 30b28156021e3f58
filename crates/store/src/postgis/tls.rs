//! TLS to PostgreSQL: this module owns how a `postgres://` URL's `sslmode` and
//! `sslrootcert` (spelt as libpq spells them) become a `tokio-postgres` configuration and a
//! rustls connector. Everything that connects to PostgreSQL goes through [`PgTarget`]: the
//! store's pool ([`super::PostgisStore::connect`]) and the change follower's LISTEN
//! connection.
//!
//! `tokio-postgres` itself knows only `disable`, `prefer` and `require`, and it refuses
//! options it does not know, so [`PgTarget::parse`] takes both options out of the URL
//! before handing the rest to it, and decides the verification itself:
//!
//! | `sslmode` | encrypted | certificate checked |
//! |---|---|---|
//! | `disable` | never | — |
//! | `prefer` (default) | if the server offers it | no |
//! | `require` | always | no; with `sslrootcert` given, as `verify-ca` (libpq does the same) |
//! | `verify-ca` | always | chain up to the `sslrootcert` CA, any host name |
//! | `verify-full` | always | chain and host name |
//!
//! Without `sslrootcert`, `verify-ca` and `verify-full` read `~/.postgresql/root.crt`, as
//! libpq does. The crypto provider is rustls' `ring` one (the one reqwest already builds),
//! chosen explicitly so that no process-wide default is needed.

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::WebPkiServerVerifier;
use rustls::crypto::{verify_tls12_signature, verify_tls13_signature, CryptoProvider};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{CertificateError, DigitallySignedStruct, RootCertStore, SignatureScheme};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use tokio_postgres::tls::MakeTlsConnect;
use tokio_postgres_rustls::MakeRustlsConnect;

/// The connection future of [`PgTarget::connect`] (the TLS stream type of
/// `tokio-postgres-rustls` cannot be named otherwise).
pub type PgConnection = tokio_postgres::Connection<
    tokio_postgres::Socket,
    <MakeRustlsConnect as MakeTlsConnect<tokio_postgres::Socket>>::Stream,
>;

/// The connector handed to `tokio-postgres`: `tokio-postgres-rustls`' one, except that a
/// connection without a host name (a unix socket, or `hostaddr` alone) gets a placeholder
/// name instead of failing, as rustls refuses an empty one. PostgreSQL never speaks TLS on
/// a unix socket, and tokio-postgres refuses a TLS handshake without a host name itself,
/// so the placeholder is never verified against.
#[derive(Clone)]
pub struct PgTls(MakeRustlsConnect);

impl<S> MakeTlsConnect<S> for PgTls
where
    MakeRustlsConnect: MakeTlsConnect<S>,
{
    type Stream = <MakeRustlsConnect as MakeTlsConnect<S>>::Stream;
    type TlsConnect = <MakeRustlsConnect as MakeTlsConnect<S>>::TlsConnect;
    type Error = <MakeRustlsConnect as MakeTlsConnect<S>>::Error;

    fn make_tls_connect(&mut self, hostname: &str) -> Result<Self::TlsConnect, Self::Error> {
        let name = if hostname.is_empty() {
            "localhost"
        } else {
            hostname
        };
        self.0.make_tls_connect(name)
    }
}

/// Why a PostgreSQL URL or its TLS settings are unusable.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// `sslmode` names no mode we know.
    #[error("unknown sslmode '{0}': use disable, prefer, require, verify-ca or verify-full")]
    UnknownMode(String),
    /// The rest of the URL is not a valid PostgreSQL URL (the message never echoes it, so
    /// a password stays out of logs).
    #[error("invalid PostgreSQL URL: {0}")]
    Url(#[source] tokio_postgres::Error),
    /// Verification was asked for but there is no CA certificate to verify against.
    #[error("sslmode={mode} needs the CA certificate: give sslrootcert=PATH in the URL (or put it in ~/.postgresql/root.crt)")]
    NoRootCert { mode: &'static str },
    /// `sslrootcert=system` (libpq 16's system store) is not supported.
    #[error("sslrootcert=system is not supported: give the path of the CA certificate file")]
    SystemRoots,
    /// The CA file cannot be read or holds no usable certificate.
    #[error("sslrootcert {path}: {message}")]
    RootCert { path: PathBuf, message: String },
    /// rustls refused to build the configuration.
    #[error("cannot set up TLS: {0}")]
    Rustls(#[source] rustls::Error),
    /// rustls refused to build the certificate verifier.
    #[error("cannot set up certificate verification: {0}")]
    Verifier(#[source] rustls::client::VerifierBuilderError),
}

/// libpq's `sslmode`, parsed; see the module docs for what each mode does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SslMode {
    Disable,
    Prefer,
    Require,
    VerifyCa,
    VerifyFull,
}

impl SslMode {
    /// The mode as the URL spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            SslMode::Disable => "disable",
            SslMode::Prefer => "prefer",
            SslMode::Require => "require",
            SslMode::VerifyCa => "verify-ca",
            SslMode::VerifyFull => "verify-full",
        }
    }
}

impl std::str::FromStr for SslMode {
    type Err = TlsError;

    fn from_str(s: &str) -> Result<Self, TlsError> {
        Ok(match s {
            "disable" => SslMode::Disable,
            "prefer" => SslMode::Prefer,
            "require" => SslMode::Require,
            "verify-ca" => SslMode::VerifyCa,
            "verify-full" => SslMode::VerifyFull,
            other => return Err(TlsError::UnknownMode(other.chars().take(40).collect())),
        })
    }
}

/// A PostgreSQL server to connect to: the `tokio-postgres` configuration of a URL and the
/// TLS connector its `sslmode`/`sslrootcert` ask for. Built only by [`PgTarget::parse`], so
/// holding one means the URL and the CA file were good.
#[derive(Clone)]
pub struct PgTarget {
    config: tokio_postgres::Config,
    mode: SslMode,
    root_cert: Option<PathBuf>,
    tls: PgTls,
}

impl std::fmt::Debug for PgTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The config holds the password: show only what locates the server.
        f.debug_struct("PgTarget")
            .field("hosts", &self.config.get_hosts())
            .field("dbname", &self.config.get_dbname())
            .field("sslmode", &self.mode)
            .field("sslrootcert", &self.root_cert)
            .finish_non_exhaustive()
    }
}

impl PgTarget {
    /// Parses a `postgres://` URL (or libpq key=value string, which gets the `disable`,
    /// `prefer`, `require` of tokio-postgres only), reads the CA file if verification asks
    /// for one, and builds the connector. Sets a 10 s connect timeout and the application
    /// name `lifeline` unless the URL sets them.
    pub fn parse(url: &str) -> Result<PgTarget, TlsError> {
        let (rest, mode, root_cert) = split_tls_options(url)?;
        let mut config: tokio_postgres::Config = rest.parse().map_err(TlsError::Url)?;
        let mode = match mode {
            Some(m) => m,
            // A key=value string keeps its sslmode inside `rest`; tokio-postgres parsed it.
            None => match config.get_ssl_mode() {
                tokio_postgres::config::SslMode::Disable => SslMode::Disable,
                tokio_postgres::config::SslMode::Require => SslMode::Require,
                _ => SslMode::Prefer,
            },
        };
        config.ssl_mode(match mode {
            SslMode::Disable => tokio_postgres::config::SslMode::Disable,
            SslMode::Prefer => tokio_postgres::config::SslMode::Prefer,
            SslMode::Require | SslMode::VerifyCa | SslMode::VerifyFull => {
                tokio_postgres::config::SslMode::Require
            }
        });
        if config.get_connect_timeout().is_none() {
            // Without a timeout an unreachable host hangs start-up instead of failing it.
            config.connect_timeout(Duration::from_secs(10));
        }
        if config.get_application_name().is_none() {
            config.application_name("lifeline");
        }
        let tls = PgTls(MakeRustlsConnect::new(client_config(
            mode,
            root_cert.as_deref(),
        )?));
        Ok(PgTarget {
            config,
            mode,
            root_cert,
            tls,
        })
    }

    /// The `tokio-postgres` configuration (TLS options taken out).
    pub fn config(&self) -> &tokio_postgres::Config {
        &self.config
    }

    /// The same configuration with another application name (so `pg_stat_activity` tells
    /// connections apart).
    pub fn with_application_name(&self, name: &str) -> PgTarget {
        let mut t = self.clone();
        t.config.application_name(name);
        t
    }

    /// The `sslmode` in force.
    pub fn ssl_mode(&self) -> SslMode {
        self.mode
    }

    /// The connector for `tokio-postgres` (used by every mode; `disable` never calls it).
    pub fn tls(&self) -> PgTls {
        self.tls.clone()
    }

    /// Opens one connection; the caller drives the returned connection future.
    pub async fn connect(
        &self,
    ) -> Result<(tokio_postgres::Client, PgConnection), tokio_postgres::Error> {
        self.config.connect(self.tls()).await
    }
}

/// Takes `sslmode` and `sslrootcert` out of a URL's query string; what remains is for
/// tokio-postgres. Strings that are not URLs are returned untouched.
fn split_tls_options(url: &str) -> Result<(String, Option<SslMode>, Option<PathBuf>), TlsError> {
    let is_url = url.starts_with("postgres://") || url.starts_with("postgresql://");
    let Some((base, query)) = url.split_once('?').filter(|_| is_url) else {
        return Ok((url.to_string(), None, None));
    };
    let mut mode = None;
    let mut root = None;
    let mut kept = url::form_urlencoded::Serializer::new(String::new());
    for (k, v) in url::form_urlencoded::parse(query.as_bytes()) {
        match &*k {
            "sslmode" => mode = Some(v.parse::<SslMode>()?),
            "sslrootcert" => root = Some(PathBuf::from(&*v)),
            _ => {
                kept.append_pair(&k, &v);
            }
        }
    }
    let kept = kept.finish();
    let rest = if kept.is_empty() {
        base.to_string()
    } else {
        format!("{base}?{kept}")
    };
    Ok((rest, mode, root))
}

/// The rustls client configuration for a mode.
fn client_config(
    mode: SslMode,
    root_cert: Option<&Path>,
) -> Result<rustls::ClientConfig, TlsError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    // libpq: `require` with a CA file given verifies the chain like `verify-ca`.
    let mode = match (mode, root_cert) {
        (SslMode::Require, Some(_)) => SslMode::VerifyCa,
        (m, _) => m,
    };
    let verifier: Arc<dyn ServerCertVerifier> = match mode {
        SslMode::Disable | SslMode::Prefer | SslMode::Require => Arc::new(EncryptOnly {
            provider: provider.clone(),
        }),
        SslMode::VerifyCa | SslMode::VerifyFull => {
            let roots = load_roots(mode, root_cert)?;
            let webpki =
                WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider.clone())
                    .build()
                    .map_err(TlsError::Verifier)?;
            if mode == SslMode::VerifyFull {
                webpki
            } else {
                Arc::new(ChainOnly { inner: webpki })
            }
        }
    };
    Ok(rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(TlsError::Rustls)?
        .dangerous()
        .with_custom_certificate_verifier(verifier)
        .with_no_client_auth())
}

/// The CA certificates to verify against: `sslrootcert`, else libpq's default file.
fn load_roots(mode: SslMode, root_cert: Option<&Path>) -> Result<RootCertStore, TlsError> {
    let path = match root_cert {
        Some(p) if p == Path::new("system") => return Err(TlsError::SystemRoots),
        Some(p) => p.to_path_buf(),
        None => std::env::var_os("HOME")
            .map(|h| Path::new(&h).join(".postgresql/root.crt"))
            .filter(|p| p.is_file())
            .ok_or(TlsError::NoRootCert {
                mode: mode.as_str(),
            })?,
    };
    let bad = |message: String| TlsError::RootCert {
        path: path.clone(),
        message,
    };
    let certs = CertificateDer::pem_file_iter(&path)
        .map_err(|e| bad(e.to_string()))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| bad(e.to_string()))?;
    let mut roots = RootCertStore::empty();
    let (added, _ignored) = roots.add_parsable_certificates(certs);
    if added == 0 {
        return Err(bad("no usable PEM certificate in the file".into()));
    }
    Ok(roots)
}

/// `verify-ca`: the chain must lead to a trusted CA, but the name in the certificate need
/// not match the host connected to (as libpq). It delegates to webpki and forgives only
/// the name mismatch, which webpki reports after the chain has been verified.
#[derive(Debug)]
struct ChainOnly {
    inner: Arc<WebPkiServerVerifier>,
}

impl ServerCertVerifier for ChainOnly {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        match self.inner.verify_server_cert(
            end_entity,
            intermediates,
            server_name,
            ocsp_response,
            now,
        ) {
            Err(rustls::Error::InvalidCertificate(
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
            )) => Ok(ServerCertVerified::assertion()),
            other => other,
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

/// `prefer` and `require`: encryption without checking who the server is (libpq's
/// behaviour without a CA file). The handshake signatures are still checked, so the
/// session is bound to the certificate presented.
#[derive(Debug)]
struct EncryptOnly {
    provider: Arc<CryptoProvider>,
}

impl ServerCertVerifier for EncryptOnly {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tls_options_are_taken_out_of_the_url() {
        let (rest, mode, root) = split_tls_options(
            "postgres://u:p@db:5432/x?sslmode=verify-full&sslrootcert=%2Fetc%2Fca.pem&application_name=a",
        )
        .expect("parse");
        assert_eq!(rest, "postgres://u:p@db:5432/x?application_name=a");
        assert_eq!(mode, Some(SslMode::VerifyFull));
        assert_eq!(root, Some(PathBuf::from("/etc/ca.pem")));
        let (rest, mode, root) = split_tls_options("postgres://u@db/x?sslmode=disable").unwrap();
        assert_eq!(
            (rest.as_str(), mode, root),
            ("postgres://u@db/x", Some(SslMode::Disable), None)
        );
    }

    #[test]
    fn modes_map_onto_tokio_postgres() {
        let t = PgTarget::parse("postgres://u@db/x?sslmode=require").expect("require");
        assert_eq!(t.ssl_mode(), SslMode::Require);
        assert_eq!(
            t.config().get_ssl_mode(),
            tokio_postgres::config::SslMode::Require
        );
        assert_eq!(t.config().get_application_name(), Some("lifeline"));
        let t = PgTarget::parse("postgres://u@db/x").expect("default");
        assert_eq!(t.ssl_mode(), SslMode::Prefer);
        let t = PgTarget::parse("host=db user=u sslmode=disable").expect("key=value");
        assert_eq!(t.ssl_mode(), SslMode::Disable);
    }

    #[test]
    fn unknown_mode_and_missing_ca_are_named() {
        let e = PgTarget::parse("postgres://u@db/x?sslmode=allow").unwrap_err();
        assert!(e.to_string().contains("unknown sslmode 'allow'"), "{e}");
        let e = PgTarget::parse(
            "postgres://u@db/x?sslmode=verify-full&sslrootcert=/nonexistent/ca.pem",
        )
        .unwrap_err();
        assert!(e.to_string().contains("/nonexistent/ca.pem"), "{e}");
        let e =
            PgTarget::parse("postgres://u@db/x?sslmode=verify-ca&sslrootcert=system").unwrap_err();
        assert!(matches!(e, TlsError::SystemRoots), "{e}");
        let e = PgTarget::parse("postgres://u:secret@db/x?port=notaport").unwrap_err();
        assert!(!e.to_string().contains("secret"), "{e}");
    }
}
