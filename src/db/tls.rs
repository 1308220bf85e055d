//! TLS to PostgreSQL with rustls, following libpq's `sslmode`/`sslrootcert` (parsed in
//! `config::DatabaseUrl`):
//!
//! | sslmode | encrypts | checks the chain | checks the host name |
//! | --- | --- | --- | --- |
//! | disable | no | – | – |
//! | prefer (default) | when the server offers it | only with `sslrootcert` | no |
//! | require | yes | only with `sslrootcert` (libpq: then as verify-ca) | no |
//! | verify-ca | yes | yes | no |
//! | verify-full | yes | yes | yes |
//!
//! The chain is checked against `sslrootcert` (a PEM bundle) or, without one, the system's
//! roots (libpq would read `~/.postgresql/root.crt`; a container has none). A verification
//! failure is reported with the mode and what to change, because it surfaces as the text of
//! the first connection's error at start (the migrations).
//!
//! Unlike libpq, `prefer` does not retry in plain text when a handshake fails: that only
//! happens here when `sslrootcert` is set and the certificate does not match it.

use std::sync::Arc;

use anyhow::{Context as _, bail};
use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{CertificateError, DigitallySignedStruct, RootCertStore, SignatureScheme};
use tokio_postgres_rustls::MakeRustlsConnect;

use crate::config::{DatabaseUrl, RootCerts, SslMode};

/// The connector for the pool. Loading `sslrootcert` (or the system's roots) happens here,
/// at start: a missing or empty bundle fails with its path.
pub fn connector(url: &DatabaseUrl) -> anyhow::Result<MakeRustlsConnect> {
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let check = match (url.ssl_mode, &url.root_certs) {
        (SslMode::Disable, _) | (SslMode::Prefer | SslMode::Require, None) => None,
        (SslMode::Prefer | SslMode::Require | SslMode::VerifyCa, Some(_)) | (SslMode::VerifyCa, None) => Some(false),
        (SslMode::VerifyFull, _) => Some(true),
    };
    let (chain, roots) = match check {
        None => (None, String::new()),
        Some(_) => {
            let roots = url.root_certs.clone().unwrap_or(RootCerts::System);
            let store = root_store(&roots)?;
            let webpki = WebPkiServerVerifier::builder_with_provider(Arc::new(store), provider.clone()).build()?;
            let describe = match &roots {
                RootCerts::System => "the system's root certificates".to_owned(),
                RootCerts::File(path) => format!("sslrootcert={}", path.display()),
            };
            (Some(webpki), describe)
        }
    };
    let verifier = Verifier { mode: url.ssl_mode, chain, check_name: check == Some(true), roots, provider };
    let mut config = rustls::ClientConfig::builder_with_provider(verifier.provider.clone())
        .with_safe_default_protocol_versions()?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(verifier))
        .with_no_client_auth();
    // What libpq ≥ 17 sends; PostgreSQL 17 checks it if present, older servers ignore it.
    config.alpn_protocols = vec![b"postgresql".to_vec()];
    Ok(MakeRustlsConnect::new(config))
}

fn root_store(roots: &RootCerts) -> anyhow::Result<RootCertStore> {
    let mut store = RootCertStore::empty();
    match roots {
        RootCerts::File(path) => {
            let certs = CertificateDer::pem_file_iter(path)
                .and_then(Iterator::collect::<Result<Vec<_>, _>>)
                .with_context(|| format!("sslrootcert={}: cannot read PEM certificates", path.display()))?;
            let (added, _) = store.add_parsable_certificates(certs);
            if added == 0 {
                bail!("sslrootcert={}: no CA certificate in the file", path.display());
            }
        }
        RootCerts::System => {
            let found = rustls_native_certs::load_native_certs();
            store.add_parsable_certificates(found.certs);
            if store.is_empty() {
                bail!(
                    "no system root certificates found (install ca-certificates, or set sslrootcert to \
                     your provider's CA bundle); {:?}",
                    found.errors
                );
            }
        }
    }
    Ok(store)
}

/// Checks the chain (when `chain` is set) and the host name (when `check_name`), and always
/// the handshake's signatures, so the session is with whoever holds the certificate's key.
#[derive(Debug)]
struct Verifier {
    mode: SslMode,
    chain: Option<Arc<WebPkiServerVerifier>>,
    check_name: bool,
    /// What the chain is checked against, for error messages.
    roots: String,
    provider: Arc<CryptoProvider>,
}

impl ServerCertVerifier for Verifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let Some(chain) = &self.chain else { return Ok(ServerCertVerified::assertion()) };
        // webpki checks the chain first, then the name: a name error means the chain is good.
        match chain.verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now) {
            Ok(verified) => Ok(verified),
            Err(rustls::Error::InvalidCertificate(
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
            )) if !self.check_name => Ok(ServerCertVerified::assertion()),
            Err(e) => Err(self.explain(e, server_name)),
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.provider.signature_verification_algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.provider.signature_verification_algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider.signature_verification_algorithms.supported_schemes()
    }
}

impl Verifier {
    /// rustls' reason with the mode and what to change.
    fn explain(&self, e: rustls::Error, server_name: &ServerName<'_>) -> rustls::Error {
        let (mode, host, roots) = (self.mode, server_name.to_str(), &self.roots);
        let hint = match &e {
            rustls::Error::InvalidCertificate(
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
            ) => format!(
                "the server's certificate is not valid for the host name {host:?} in DATABASE_URL: connect \
                 by a name the certificate holds, or use sslmode=verify-ca to check the chain only"
            ),
            rustls::Error::InvalidCertificate(CertificateError::UnknownIssuer | CertificateError::BadSignature) => {
                format!(
                    "the server's certificate is not signed by {roots}: set sslrootcert to your provider's \
                     CA bundle"
                )
            }
            _ => format!("the server's certificate was refused (checked against {roots})"),
        };
        rustls::Error::General(format!("sslmode={mode}: {hint} ({e})"))
    }
}
