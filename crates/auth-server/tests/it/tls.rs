//! HTTPS with `http: ssl_certificate` / `ssl_key` against the real binary: served with the
//! configured certificate, reloaded on SIGHUP, a bad certificate at reload keeps the old one,
//! bad files at start are named, and `ssl_peer_certificate` requires a client certificate.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use auth_testkit::TempConfig;
use auth_testkit::http::Request;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};

use crate::support::{BASIC_CONFIG, ServerProcess, serve, write_config};

fn certs() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/certs")
}

fn pem_cert(name: &str) -> CertificateDer<'static> {
    CertificateDer::from_pem_file(certs().join(name)).expect("test certificate")
}

/// A directory serving HTTPS with `first.pem` copied in as `ssl/cert.pem` (plus `extra` YAML).
fn tls_dir(extra: &str) -> TempConfig {
    let config = TempConfig::empty();
    let ssl = config.path().join("ssl");
    std::fs::create_dir_all(&ssl).unwrap();
    std::fs::copy(certs().join("first.pem"), ssl.join("cert.pem")).unwrap();
    std::fs::copy(certs().join("first.key"), ssl.join("key.pem")).unwrap();
    write_config(
        config.path(),
        &format!(
            "{BASIC_CONFIG}http:\n  ssl_certificate: ssl/cert.pem\n  ssl_key: ssl/key.pem\n{extra}"
        ),
    );
    config
}

fn client_config(client_cert: bool) -> Arc<rustls::ClientConfig> {
    let mut roots = rustls::RootCertStore::empty();
    roots.add(pem_cert("ca.pem")).unwrap();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots);
    let config = if client_cert {
        let key = PrivateKeyDer::from_pem_file(certs().join("client.key")).unwrap();
        builder
            .with_client_auth_cert(vec![pem_cert("client.pem")], key)
            .unwrap()
    } else {
        builder.with_no_client_auth()
    };
    Arc::new(config)
}

/// GET the authorization server metadata over HTTPS; the status and the certificate the
/// server showed. The issuer must say `https`.
async fn get(
    server: &ServerProcess,
    client_cert: bool,
) -> std::io::Result<(u16, CertificateDer<'static>)> {
    let connector = tokio_rustls::TlsConnector::from(client_config(client_cert));
    let tcp = tokio::net::TcpStream::connect(server.addr).await?;
    let name = ServerName::try_from("127.0.0.1").unwrap();
    let mut tls = tokio::time::timeout(Duration::from_secs(10), connector.connect(name, tcp))
        .await
        .map_err(|_| std::io::Error::other("handshake timed out"))??;
    let presented = tls.get_ref().1.peer_certificates().unwrap()[0].clone();
    let request =
        Request::get("/.well-known/oauth-authorization-server").to_bytes(&server.addr.to_string());
    let response = tokio::time::timeout(
        Duration::from_secs(10),
        auth_testkit::http::exchange(&mut tls, &request),
    )
    .await
    .map_err(|_| std::io::Error::other("response timed out"))??;
    if response.status == 200 {
        assert_eq!(
            response.json()["issuer"],
            format!("https://{}", server.addr),
            "{}",
            response.text()
        );
    }
    Ok((response.status, presented))
}

fn hang_up(server: &ServerProcess) {
    let status = std::process::Command::new("kill")
        .args(["-HUP", &server.pid().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
}

fn replace(dir: &Path, cert: &[u8], key: &[u8]) {
    // Written aside and renamed in, as certificate tools do.
    let ssl = dir.join("ssl");
    std::fs::write(ssl.join("cert.tmp"), cert).unwrap();
    std::fs::write(ssl.join("key.tmp"), key).unwrap();
    std::fs::rename(ssl.join("key.tmp"), ssl.join("key.pem")).unwrap();
    std::fs::rename(ssl.join("cert.tmp"), ssl.join("cert.pem")).unwrap();
}

#[tokio::test]
async fn https_is_served_and_the_certificate_is_reloaded_on_sighup() {
    let config = tls_dir("");
    let server = serve(config.path(), &["-c", config.path().to_str().unwrap()])
        .await
        .unwrap_or_else(|out| panic!("server did not start: {}", out.stderr));
    assert!(
        server
            .stdout_lines
            .iter()
            .any(|l| l.starts_with("hass-auth listening on https://")),
        "{:?}",
        server.stdout_lines
    );
    let (status, presented) = get(&server, false).await.unwrap();
    assert_eq!(status, 200);
    assert_eq!(presented, pem_cert("first.pem"));

    replace(
        config.path(),
        &std::fs::read(certs().join("second.pem")).unwrap(),
        &std::fs::read(certs().join("second.key")).unwrap(),
    );
    hang_up(&server);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let (status, presented) = get(&server, false).await.unwrap();
        assert_eq!(status, 200);
        if presented == pem_cert("second.pem") {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the new certificate was not served after SIGHUP"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // A broken certificate at the next reload: logged, and the previous one stays in use.
    replace(config.path(), b"not a certificate", b"not a key");
    hang_up(&server);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while !server.stderr().contains("still serving the previous one") {
        assert!(
            tokio::time::Instant::now() < deadline,
            "no reload error logged: {}",
            server.stderr()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(
        server.stderr().contains("ssl/cert.pem: no certificate"),
        "the error names the file: {}",
        server.stderr()
    );
    let (status, presented) = get(&server, false).await.unwrap();
    assert_eq!(status, 200);
    assert_eq!(presented, pem_cert("second.pem"));
    assert_eq!(server.stop().await, 0);
}

#[tokio::test]
async fn unusable_certificate_files_stop_the_start_and_are_named() {
    let dir_arg = |c: &TempConfig| c.path().to_str().unwrap().to_owned();
    // Missing file.
    let config = TempConfig::empty();
    write_config(
        config.path(),
        &format!("{BASIC_CONFIG}http:\n  ssl_certificate: ssl/missing.pem\n"),
    );
    let out = serve(config.path(), &["-c", &dir_arg(&config)])
        .await
        .err()
        .unwrap();
    assert_eq!(out.code, 3, "{}", out.stderr);
    assert!(
        out.stderr.contains("http.ssl_certificate: not a file:")
            && out.stderr.contains("ssl/missing.pem"),
        "{}",
        out.stderr
    );
    // Not PEM.
    let config = tls_dir("");
    std::fs::write(config.path().join("ssl/cert.pem"), "garbage").unwrap();
    let out = serve(config.path(), &["-c", &dir_arg(&config)])
        .await
        .err()
        .unwrap();
    assert_eq!(out.code, 3, "{}", out.stderr);
    assert!(
        out.stderr.contains("ssl/cert.pem: no certificate"),
        "{}",
        out.stderr
    );
    // A key that does not belong to the certificate.
    let config = tls_dir("");
    std::fs::copy(
        certs().join("second.key"),
        config.path().join("ssl/key.pem"),
    )
    .unwrap();
    let out = serve(config.path(), &["-c", &dir_arg(&config)])
        .await
        .err()
        .unwrap();
    assert_eq!(out.code, 3, "{}", out.stderr);
    assert!(
        out.stderr
            .contains("ssl/cert.pem: certificate and key cannot be used together"),
        "{}",
        out.stderr
    );
}

#[tokio::test]
async fn a_peer_certificate_requires_clients_to_present_one() {
    let config = tls_dir("  ssl_peer_certificate: ssl/ca.pem\n");
    std::fs::copy(certs().join("ca.pem"), config.path().join("ssl/ca.pem")).unwrap();
    let server = serve(config.path(), &["-c", config.path().to_str().unwrap()])
        .await
        .unwrap_or_else(|out| panic!("server did not start: {}", out.stderr));
    let (status, _) = get(&server, true).await.unwrap();
    assert_eq!(status, 200);
    // TLS 1.3: the refusal may surface at the handshake or at the first read.
    match get(&server, false).await {
        Err(_) => {}
        // An empty answer is an error too (no response head).
        Ok((status, _)) => panic!("served without a client certificate: {status}"),
    }
    assert_eq!(server.stop().await, 0);
}
