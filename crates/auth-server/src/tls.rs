//! HTTPS for `hass-auth serve` (`http: ssl_certificate` / `ssl_key` / `ssl_peer_certificate`):
//! rustls with the ring provider, the certificate reloaded on SIGHUP. A certificate that cannot
//! be used at start stops the server with the file named; at a reload, the old one stays.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use parking_lot::RwLock;
use rustls::ServerConfig;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::TlsAcceptor;

/// Where the certificate, key and client CAs are.
#[derive(Clone, Debug)]
pub struct TlsFiles {
    /// PEM certificate chain (server certificate first).
    pub certificate: PathBuf,
    /// PEM private key; `None`: the key is in the certificate file.
    pub key: Option<PathBuf>,
    /// PEM CA certificates that must have signed the client's certificate.
    pub peer_certificate: Option<PathBuf>,
}

/// Why a TLS configuration cannot be used; each names the file.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// A file could not be read.
    #[error("{}: cannot read: {source}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// A file holds no usable PEM item of the kind needed.
    #[error("{}: {what}", path.display())]
    Pem {
        /// The file.
        path: PathBuf,
        /// What is missing or wrong.
        what: String,
    },
    /// rustls refused the certificate and key (e.g. they do not belong together).
    #[error("{}: {message}", path.display())]
    Rejected {
        /// The certificate file.
        path: PathBuf,
        /// rustls's reason.
        message: String,
    },
}

fn read(path: &Path) -> Result<Vec<u8>, TlsError> {
    std::fs::read(path).map_err(|source| TlsError::Read {
        path: path.to_owned(),
        source,
    })
}

fn certificates(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let bytes = read(path)?;
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(&bytes)
        .collect::<Result<_, _>>()
        .map_err(|e| TlsError::Pem {
            path: path.to_owned(),
            what: format!("not a valid PEM certificate file: {e}"),
        })?;
    if certs.is_empty() {
        return Err(TlsError::Pem {
            path: path.to_owned(),
            what: "no certificate (-----BEGIN CERTIFICATE-----) in the file".into(),
        });
    }
    Ok(certs)
}

fn private_key(path: &Path) -> Result<PrivateKeyDer<'static>, TlsError> {
    let bytes = read(path)?;
    PrivateKeyDer::from_pem_slice(&bytes).map_err(|e| TlsError::Pem {
        path: path.to_owned(),
        what: format!("no usable private key (PKCS#8, PKCS#1 or SEC1 PEM): {e}"),
    })
}

/// Builds the rustls configuration from `files` (HTTP/1.1 only, TLS 1.2 and 1.3).
pub fn server_config(files: &TlsFiles) -> Result<Arc<ServerConfig>, TlsError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let chain = certificates(&files.certificate)?;
    let key_file = files.key.as_deref().unwrap_or(&files.certificate);
    let key = private_key(key_file)?;
    let rejected = |message: String| TlsError::Rejected {
        path: files.certificate.clone(),
        message,
    };
    let builder = ServerConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| rejected(e.to_string()))?;
    let builder = match &files.peer_certificate {
        None => builder.with_no_client_auth(),
        Some(path) => {
            let mut roots = rustls::RootCertStore::empty();
            for cert in certificates(path)? {
                roots.add(cert).map_err(|e| TlsError::Pem {
                    path: path.clone(),
                    what: format!("not a usable CA certificate: {e}"),
                })?;
            }
            let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
                Arc::new(roots),
                provider,
            )
            .build()
            .map_err(|e| TlsError::Pem {
                path: path.clone(),
                what: format!("cannot verify clients with these certificates: {e}"),
            })?;
            builder.with_client_cert_verifier(verifier)
        }
    };
    let mut config = builder
        .with_single_cert(chain, key)
        .map_err(|e| rejected(format!("certificate and key cannot be used together: {e}")))?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// The TLS configuration in use, replaced on reload.
#[derive(Debug)]
pub struct ReloadableTls {
    files: TlsFiles,
    current: RwLock<Arc<ServerConfig>>,
}

impl ReloadableTls {
    /// Loads `files`; an error names the file.
    pub fn load(files: TlsFiles) -> Result<Arc<Self>, TlsError> {
        let config = server_config(&files)?;
        Ok(Arc::new(Self {
            files,
            current: RwLock::new(config),
        }))
    }

    /// An acceptor with the configuration in use now.
    pub fn acceptor(&self) -> TlsAcceptor {
        TlsAcceptor::from(self.current.read().clone())
    }

    /// Reads the files again; on error the configuration in use stays.
    pub fn reload(&self) -> Result<(), TlsError> {
        let config = server_config(&self.files)?;
        *self.current.write() = config;
        Ok(())
    }

    /// Reloads on every SIGHUP (installed now, so a SIGHUP right after start is not lost).
    pub fn reload_on_sighup(self: &Arc<Self>) -> std::io::Result<()> {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{SignalKind, signal};
            let mut hangups = signal(SignalKind::hangup())?;
            let this = self.clone();
            tokio::spawn(async move {
                while hangups.recv().await.is_some() {
                    let files = this.files.clone();
                    let reloaded = {
                        let this = this.clone();
                        tokio::task::spawn_blocking(move || this.reload()).await
                    };
                    match reloaded {
                        Ok(Ok(())) => tracing::info!(
                            certificate = %files.certificate.display(),
                            "SIGHUP: TLS certificate reloaded"
                        ),
                        Ok(Err(error)) => tracing::error!(
                            %error,
                            "SIGHUP: the new TLS certificate cannot be used; still serving the previous one"
                        ),
                        Err(error) => tracing::error!(%error, "SIGHUP: reloading failed"),
                    }
                }
            });
        }
        Ok(())
    }
}
