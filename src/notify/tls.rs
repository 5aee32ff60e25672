//! TLS for `https://` webhooks, with rustls (its `ring` provider) over
//! the client's own `TcpStream`. Trusted are Mozilla's roots, built in
//! (`webpki-roots`, so the host's certificate store does not matter),
//! plus the certificates of a notifier's `ca_file`, for a private CA or
//! a self-signed receiver. The server name is sent (SNI) and checked
//! against the certificate; there is deliberately no way to turn the
//! check off: a receiver whose certificate cannot be checked is given
//! in `ca_file` instead.

use std::fmt;
use std::io;
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use rustls::{CertificateError, ClientConfig, ClientConnection, RootCertStore, StreamOwned};

/// The longest `ca_file` read: a bundle of many CAs is far smaller.
const MAX_CA_FILE: u64 = 4 * 1024 * 1024;

/// A TLS connection to a receiver.
pub type TlsStream = StreamOwned<ClientConnection, TcpStream>;

/// Whom an `https://` notifier trusts, ready to connect with.
#[derive(Clone)]
pub struct Trust {
    ca_file: Option<PathBuf>,
    config: Arc<ClientConfig>,
}

impl fmt::Debug for Trust {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Trust")
            .field("ca_file", &self.ca_file)
            .finish_non_exhaustive()
    }
}

// Two notifiers trust alike when they name the same file: the config is
// made from it and nothing else.
impl PartialEq for Trust {
    fn eq(&self, other: &Trust) -> bool {
        self.ca_file == other.ca_file
    }
}

impl Eq for Trust {}

impl Trust {
    /// Mozilla's roots, and the certificates in `ca_file` when given;
    /// what is wrong with the file otherwise.
    pub fn new(ca_file: Option<&Path>) -> Result<Trust, String> {
        let mut roots = RootCertStore {
            roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
        };
        if let Some(path) = ca_file {
            for cert in read_pem(path)? {
                roots
                    .add(cert)
                    .map_err(|e| format!("{}: not a usable CA certificate: {e}", path.display()))?;
            }
        }
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| format!("TLS set-up: {e}"))?
            .with_root_certificates(roots)
            .with_no_client_auth();
        Ok(Trust {
            ca_file: ca_file.map(Path::to_path_buf),
            config: Arc::new(config),
        })
    }

    /// The `ca_file`, if one was given.
    pub fn ca_file(&self) -> Option<&Path> {
        self.ca_file.as_deref()
    }

    /// Makes `tcp` a TLS connection to `host` and finishes the handshake
    /// at once, so a certificate problem is reported as one (and not as
    /// a failed write of the request).
    pub fn connect(&self, tcp: TcpStream, host: &str) -> Result<TlsStream, String> {
        let name = ServerName::try_from(host.to_string())
            .map_err(|e| format!("'{host}' is not a valid TLS server name: {e}"))?;
        let conn = ClientConnection::new(self.config.clone(), name)
            .map_err(|e| format!("TLS handshake with {host}: {e}"))?;
        let mut stream = StreamOwned::new(conn, tcp);
        while stream.conn.is_handshaking() {
            if let Err(e) = stream.conn.complete_io(&mut stream.sock) {
                return Err(handshake_error(host, &e, self.ca_file()));
            }
        }
        Ok(stream)
    }
}

/// Every certificate in the PEM file at `path`; an error when there is
/// none, or when a certificate section is damaged.
fn read_pem(path: &Path) -> Result<Vec<CertificateDer<'static>>, String> {
    let shown = path.display();
    let meta = std::fs::metadata(path).map_err(|e| format!("read {shown}: {e}"))?;
    if !meta.is_file() {
        return Err(format!("{shown} is not a file"));
    }
    if meta.len() > MAX_CA_FILE {
        return Err(format!(
            "{shown} is {} bytes, more than a CA file's {MAX_CA_FILE}",
            meta.len()
        ));
    }
    let text = std::fs::read(path).map_err(|e| format!("read {shown}: {e}"))?;
    let certs = CertificateDer::pem_slice_iter(&text)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("{shown}: not a PEM file: {e}"))?;
    if certs.is_empty() {
        return Err(format!(
            "{shown} holds no PEM certificate (-----BEGIN CERTIFICATE-----)"
        ));
    }
    Ok(certs)
}

/// A handshake failure in words: an untrusted certificate says which
/// host and why, and how to trust it.
fn handshake_error(host: &str, e: &io::Error, ca_file: Option<&Path>) -> String {
    let tls = e.get_ref().and_then(|i| i.downcast_ref::<rustls::Error>());
    match tls {
        Some(rustls::Error::InvalidCertificate(c)) => {
            let why = match c {
                CertificateError::UnknownIssuer => match ca_file {
                    None => "issued by an authority that is not trusted (give the receiver's \
                             CA certificate in ca_file)"
                        .to_string(),
                    Some(f) => format!(
                        "issued by an authority that neither Mozilla's roots nor {} hold",
                        f.display()
                    ),
                },
                // webpki's CaUsedAsEndEntity reaches us only as text inside
                // CertificateError::Other (rustls does not re-export the
                // webpki error type). It is what a self-signed certificate
                // made by `openssl req -x509` gets: openssl marks it CA:TRUE.
                other if format!("{other:?}").contains("CaUsedAsEndEntity") => {
                    "its certificate is a CA certificate (CA:TRUE) used as the server's own; \
                     a self-signed certificate must be made with basicConstraints CA:FALSE, \
                     or signed by a CA named in ca_file"
                        .to_string()
                }
                other => other.to_string(),
            };
            format!("certificate not trusted for {host}: {why}")
        }
        Some(other) => format!("TLS handshake with {host} failed: {other}"),
        None => format!("TLS handshake with {host} failed: {e}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_built_in_roots_are_enough_without_a_file() {
        let t = Trust::new(None).expect("trust");
        assert_eq!(t.ca_file(), None);
        assert!(!webpki_roots::TLS_SERVER_ROOTS.is_empty());
    }

    #[test]
    fn a_ca_file_that_is_missing_empty_or_damaged_is_refused() {
        let dir = std::env::temp_dir().join(format!("jobmgr-tls-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        let missing = dir.join("missing.pem");
        let e = Trust::new(Some(&missing)).expect_err("missing");
        assert!(
            e.starts_with(&format!("read {}: ", missing.display())),
            "{e}"
        );

        let empty = dir.join("empty.pem");
        std::fs::write(&empty, "just words\n").expect("write");
        let e = Trust::new(Some(&empty)).expect_err("empty");
        assert!(e.contains("holds no PEM certificate"), "{e}");

        let broken = dir.join("broken.pem");
        std::fs::write(&broken, "-----BEGIN CERTIFICATE-----\nMIIB!!\n").expect("write");
        let e = Trust::new(Some(&broken)).expect_err("broken");
        assert!(e.contains("not a PEM file"), "{e}");

        let junk = dir.join("junk.pem");
        std::fs::write(
            &junk,
            "-----BEGIN CERTIFICATE-----\naGVsbG8=\n-----END CERTIFICATE-----\n",
        )
        .expect("write");
        let e = Trust::new(Some(&junk)).expect_err("junk");
        assert!(e.contains("not a usable CA certificate"), "{e}");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
