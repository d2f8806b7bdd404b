//! TLS material of a provider from its config: the certificate authorities of `ca_file`, read
//! and checked here so a bad file is a config error with its reason, never a panic later.

use pingora::utils::tls::{parse_x509, WrappedX509};
use std::path::Path;

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
