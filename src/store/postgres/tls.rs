//! The rustls client configuration behind each `sslmode`, and the two certificate
//! verifiers rustls does not ship.
//!
//! rustls verifies everything by default; libpq's weaker modes need less:
//! - [`NoCertificateCheck`] (`prefer`, `allow`, and `require` without `sslrootcert`): the
//!   server's certificate is not checked at all, like libpq. The handshake signatures are
//!   still verified, so the session is bound to the key of the certificate the server sent
//!   (which keeps SCRAM channel binding meaningful), but anyone can send a certificate.
//! - [`ChainOnly`] (`verify-ca`, and `require` with `sslrootcert`): the chain must lead to a
//!   trusted root and be valid now, but the host name is not compared with the certificate.
//! - `verify-full` is rustls' own `WebPkiServerVerifier`: chain and host name.
//!
//! The crypto provider is *ring*, the one lettre and ureq already build, so the binary has
//! one TLS stack.

use std::path::Path;
use std::sync::Arc;

use anyhow::Context;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::WebPkiServerVerifier;
use rustls::crypto::WebPkiSupportedAlgorithms;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::server::ParsedCertificate;
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};

use super::url::{RootCerts, SslMode};
use crate::error::user_error;

/// The rustls configuration for `sslmode` (and `sslrootcert`); `disable` never asks.
pub fn client_config(mode: SslMode, roots: Option<&RootCerts>) -> anyhow::Result<ClientConfig> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let algorithms = provider.signature_verification_algorithms;
    let verifier: Arc<dyn ServerCertVerifier> = match (mode, roots) {
        (SslMode::Disable | SslMode::Allow | SslMode::Prefer, _) | (SslMode::Require, None) => {
            Arc::new(NoCertificateCheck { algorithms })
        }
        // libpq: "if a root CA file exists, sslmode=require behaves like verify-ca".
        (SslMode::Require, Some(roots)) | (SslMode::VerifyCa, Some(roots)) => Arc::new(ChainOnly {
            roots: Arc::new(load_roots(roots)?),
            algorithms,
        }),
        (SslMode::VerifyCa, None) => Arc::new(ChainOnly {
            roots: Arc::new(load_roots(&RootCerts::System)?),
            algorithms,
        }),
        (SslMode::VerifyFull, roots) => {
            let roots = load_roots(roots.unwrap_or(&RootCerts::System))?;
            WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider.clone())
                .build()
                .context("building the TLS certificate verifier")?
        }
    };
    let mut config = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .context("configuring TLS")?
        .dangerous()
        .with_custom_certificate_verifier(verifier)
        .with_no_client_auth();
    // PostgreSQL 17 asks for this ALPN name on direct TLS; older servers ignore it.
    config.alpn_protocols = vec![b"postgresql".to_vec()];
    Ok(config)
}

fn load_roots(source: &RootCerts) -> anyhow::Result<RootCertStore> {
    let mut store = RootCertStore::empty();
    match source {
        RootCerts::File(path) => {
            let certs = read_pem_certificates(path)?;
            let (added, _ignored) = store.add_parsable_certificates(certs);
            if added == 0 {
                return Err(user_error(format!(
                    "sslrootcert {}: no usable CA certificate in it",
                    path.display()
                )));
            }
        }
        RootCerts::System => {
            let found = rustls_native_certs::load_native_certs();
            store.add_parsable_certificates(found.certs);
            if store.is_empty() {
                return Err(user_error(
                    "no system CA certificates found to verify the PostgreSQL server \
                     (install ca-certificates, or give sslrootcert=FILE in the URL)",
                ));
            }
        }
    }
    Ok(store)
}

fn read_pem_certificates(path: &Path) -> anyhow::Result<Vec<CertificateDer<'static>>> {
    let unreadable =
        |e: &dyn std::fmt::Display| user_error(format!("cannot read sslrootcert {}: {e}", path.display()));
    let bytes = std::fs::read(path).map_err(|e| unreadable(&e))?;
    let certs = CertificateDer::pem_slice_iter(&bytes)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| unreadable(&e))?;
    if certs.is_empty() {
        return Err(user_error(format!(
            "sslrootcert {}: no PEM certificate (-----BEGIN CERTIFICATE-----) in it",
            path.display()
        )));
    }
    Ok(certs)
}

/// Accepts any certificate; verifies the handshake signatures made with its key.
#[derive(Debug)]
struct NoCertificateCheck {
    algorithms: WebPkiSupportedAlgorithms,
}

impl ServerCertVerifier for NoCertificateCheck {
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
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

/// Verifies the chain up to a trusted root, and the validity period, but not the name.
#[derive(Debug)]
struct ChainOnly {
    roots: Arc<RootCertStore>,
    algorithms: WebPkiSupportedAlgorithms,
}

impl ServerCertVerifier for ChainOnly {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let cert = ParsedCertificate::try_from(end_entity)?;
        rustls::client::verify_server_cert_signed_by_trust_anchor(
            &cert,
            &self.roots,
            intermediates,
            now,
            self.algorithms.all,
        )?;
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}
