//! TLS material of a provider from its config: the certificate authorities of `ca_file`, and
//! the client certificate and key of mutual TLS (`client_cert_file`, `client_key_file`), read
//! and checked here so a bad file is a config error with its reason, never a panic later.

use pingora::utils::tls::{parse_x509, CertKey, WrappedX509};
use std::path::Path;

/// The client certificate chain and key a provider presents (mutual TLS), as Pingora takes
/// them for a peer.
pub fn client_cert_key(cert: &Path, key: &Path) -> Result<CertKey, String> {
    let chain: Vec<Vec<u8>> = ca_certificates(cert)?
        .iter()
        .map(|c| c.borrow_raw_cert().clone())
        .collect();
    let pem = std::fs::read(key).map_err(|e| format!("cannot read {}: {e}", key.display()))?;
    let der = rustls_pemfile::private_key(&mut pem.as_slice())
        .map_err(|e| format!("{} is not PEM: {e}", key.display()))?
        .ok_or_else(|| format!("{} holds no PRIVATE KEY block", key.display()))?;
    let bytes = der.secret_der().to_vec();
    // Pingora reads the key back with an `unwrap`: check it reads first.
    pingora::tls::PrivateKeyDer::try_from(bytes.clone())
        .map_err(|e| format!("{}: the key cannot be used ({e})", key.display()))?;
    Ok(CertKey::new(chain, bytes))
}

/// The certificates of a PEM file, as Pingora takes them for a peer's `ca`.
pub fn ca_certificates(path: &Path) -> Result<Box<[WrappedX509]>, String> {
    let pem = std::fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let ders = rustls_pemfile::certs(&mut pem.as_slice())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("{} is not PEM: {e}", path.display()))?;
    if ders.is_empty() {
        return Err(format!("{} holds no CERTIFICATE block", path.display()));
    }
    ders.into_iter()
        .enumerate()
        .map(|(i, der)| {
            // Pingora parses each certificate with an `expect`: check it first.
            x509_parser::parse_x509_certificate(der.as_ref())
                .map_err(|e| format!("certificate {} of {}: {e}", i + 1, path.display()))?;
            Ok(WrappedX509::new(der.to_vec(), parse_x509))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn files_that_are_not_certificates_are_refused_with_a_reason() {
        let dir = tempfile::tempdir().unwrap();
        let cases: [(&str, &str, &str); 3] = [
            ("empty.pem", "", "no CERTIFICATE block"),
            (
                "key.pem",
                "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n",
                "no CERTIFICATE block",
            ),
            (
                "junk.pem",
                "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
                "certificate 1 of",
            ),
        ];
        for (name, text, want) in cases {
            let path = dir.path().join(name);
            std::fs::write(&path, text).unwrap();
            let e = ca_certificates(&path).expect_err("refused");
            assert!(e.contains(want), "{name}: {e}");
        }
        let e = ca_certificates(&dir.path().join("missing.pem")).expect_err("refused");
        assert!(e.contains("cannot read"), "{e}");
    }
}
