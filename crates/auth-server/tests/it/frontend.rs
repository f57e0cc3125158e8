//! `hass-auth serve --frontend-dir` (and `http: frontend_dir`): Home Assistant's login page and
//! frontend files from a directory (a small stand-in for `hass_frontend` made by the test).

use std::path::Path;

use auth_testkit::TempConfig;
use auth_testkit::http::Request;

use crate::support::{BASIC_CONFIG, serve, write_config};

fn fake_frontend(dir: &Path) {
    for (name, body) in [
        (
            "authorize.html",
            "<!DOCTYPE html><ha-authorize></ha-authorize>",
        ),
        ("frontend_latest/authorize.abc.js", "export {}"),
        ("static/icons/favicon.ico", "ico"),
    ] {
        let path = dir.join(name);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, body).unwrap();
    }
    std::fs::write(dir.join("secret.txt"), "not served").unwrap();
}

#[tokio::test]
async fn serves_home_assistants_login_page_from_the_flag_or_the_config() {
    let config = TempConfig::empty();
    fake_frontend(&config.path().join("www"));
    for (yaml, args) in [
        (BASIC_CONFIG.to_owned(), vec!["--frontend-dir", "www"]),
        (
            format!("{BASIC_CONFIG}http:\n  frontend_dir: www\n"),
            vec![],
        ),
    ] {
        write_config(config.path(), &yaml);
        let mut all = vec!["-c", config.path().to_str().unwrap()];
        all.extend(args);
        // The flag is relative to the working directory, the key to the config directory.
        let server = serve(config.path(), &all)
            .await
            .unwrap_or_else(|o| panic!("{}", o.stderr));
        let page = Request::get("/auth/authorize?client_id=x&redirect_uri=y")
            .send(server.addr)
            .await;
        assert_eq!(page.status, 200);
        assert_eq!(page.text(), "<!DOCTYPE html><ha-authorize></ha-authorize>");
        let script = Request::get("/frontend_latest/authorize.abc.js")
            .send(server.addr)
            .await;
        assert_eq!(
            (script.status, script.header("content-type")),
            (200, Some("text/javascript; charset=utf-8"))
        );
        let icon = Request::get("/static/icons/favicon.ico")
            .send(server.addr)
            .await;
        assert_eq!(
            (icon.status, icon.header("content-type")),
            (200, Some("image/x-icon"))
        );
        for path in [
            "/static/../secret.txt",
            "/static/%2e%2e/secret.txt",
            "/static/..",
        ] {
            let response = Request::get(path).send(server.addr).await;
            assert!(matches!(response.status, 400 | 404), "{path}");
            assert!(!response.text().contains("not served"), "{path}");
        }
        // Our own landing and profile page stay.
        assert_eq!(Request::get("/profile").send(server.addr).await.status, 200);
        assert_eq!(server.stop().await, 0);
    }
}

#[tokio::test]
async fn a_directory_without_authorize_html_is_refused() {
    let config = TempConfig::empty();
    write_config(config.path(), BASIC_CONFIG);
    let empty = config.path().join("empty");
    std::fs::create_dir_all(&empty).unwrap();
    let error = match serve(
        config.path(),
        &[
            "-c",
            config.path().to_str().unwrap(),
            "--frontend-dir",
            "empty",
        ],
    )
    .await
    {
        Ok(server) => {
            server.stop().await;
            panic!("a frontend dir without authorize.html must be refused");
        }
        Err(output) => output,
    };
    assert_eq!(error.code, 3, "{}", error.stderr);
    assert!(
        error.stderr.contains("frontend_dir: ")
            && error.stderr.contains("authorize.html")
            && error.stderr.contains("hass_frontend"),
        "{}",
        error.stderr
    );
}
