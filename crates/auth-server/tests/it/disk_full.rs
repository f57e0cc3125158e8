//! Write errors: the server runs under a file-size limit (`ulimit -f`), so that once the auth
//! journal's segment would outgrow it the write fails with EFBIG, as on a full disk. The request
//! that needed the write fails with a clear error, what is on disk stays intact, and the server
//! keeps serving what it can (the next write goes to a new segment). Then the storage directory
//! is swapped for a plain file, so that every write fails.

use std::collections::BTreeSet;

use auth_testkit::TempConfig;
use auth_testkit::http::Request;
use serde_json::{Value, json};

use crate::client::{self, Ws};
use crate::support::{BASIC_CONFIG, serve, serve_under, write_config};

/// The limit in 512-byte blocks (dash's unit); `.storage/auth` starts well below it.
const LIMIT_BLOCKS: u64 = 24;

fn file_size_limit(pid: u32) -> u64 {
    let limits = std::fs::read_to_string(format!("/proc/{pid}/limits")).unwrap();
    let line = limits
        .lines()
        .find(|l| l.starts_with("Max file size"))
        .unwrap();
    line.split_whitespace().nth(3).unwrap().parse().unwrap()
}

/// The refresh tokens a restart would read: `.storage/auth` with the journal replayed on top.
async fn stored_tokens(storage: &std::path::Path) -> BTreeSet<String> {
    auth_testkit::stored_auth(storage).await["refresh_tokens"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["token"].as_str().unwrap().to_owned())
        .collect()
}

/// The largest of `.storage/auth` and the journal segments.
fn largest_auth_file(storage: &std::path::Path) -> u64 {
    std::fs::read_dir(storage)
        .unwrap()
        .map(|e| e.unwrap())
        .filter(|e| {
            let name = e.file_name().into_string().unwrap();
            name == "auth" || name.starts_with("auth.journal.")
        })
        .map(|e| e.metadata().unwrap().len())
        .max()
        .unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_write_fails_the_request_keeps_the_file_and_the_server() {
    let config = TempConfig::empty();
    write_config(config.path(), BASIC_CONFIG);
    let dir = config.path().to_str().unwrap().to_owned();
    let server = serve_under(
        config.path(),
        &["-c", &dir],
        Some(&format!("ulimit -f {LIMIT_BLOCKS}")),
    )
    .await
    .unwrap_or_else(|o| panic!("{}", o.stderr));
    let limit = file_size_limit(server.pid());
    assert_eq!(limit, LIMIT_BLOCKS * 512, "the limit applies to the server");
    let addr = server.addr;
    let owner = client::onboard(addr, "owner", "owner-pw").await;
    let owner_access = owner["access_token"].as_str().unwrap().to_owned();
    let storage_dir = config.storage_dir();

    // Sign in until the journal segment cannot grow any more.
    let mut acked = vec![owner["refresh_token"].as_str().unwrap().to_owned()];
    let failure = loop {
        let code = client::login_code(
            addr,
            json!(["insecure_example", null]),
            "demo",
            "demo",
            None,
        )
        .await
        .unwrap()
        .expect("the password is right");
        let response = Request::post("/auth/token")
            .form(&[
                ("grant_type", "authorization_code"),
                ("client_id", client::CLIENT_ID),
                ("code", &code),
            ])
            .send(addr)
            .await;
        if response.status != 200 {
            break response;
        }
        acked.push(
            response.json()["refresh_token"]
                .as_str()
                .unwrap()
                .to_owned(),
        );
        assert!(acked.len() < 100, "the file never reached the limit");
    };
    assert_eq!(failure.status, 503, "{}", failure.text());
    assert_eq!(
        failure.json(),
        json!({"error": "temporarily_unavailable",
            "error_description": "The auth store could not be written; nothing was changed"})
    );
    let on_disk = stored_tokens(&storage_dir).await;
    assert!(largest_auth_file(&storage_dir) <= limit);
    for token in &acked {
        assert!(on_disk.contains(token), "an acknowledged token is on disk");
    }
    assert!(
        server.stderr().contains("File too large"),
        "the log says why: {}",
        server.stderr()
    );

    // The server keeps serving everything that needs no durable write.
    assert_eq!(client::api_status(addr, &owner_access).await.unwrap(), 200);
    assert_eq!(client::refresh(addr, &acked[1]).await.unwrap().status, 200);
    assert_eq!(Request::get("/auth/providers").send(addr).await.status, 200);
    assert_eq!(
        stored_tokens(&storage_dir).await,
        on_disk,
        "what is on disk is unchanged"
    );

    // To make every write fail, the storage directory is swapped for a plain file while the
    // server runs.
    let storage = config.storage_dir();
    let moved = config.path().join(".storage-away");
    std::fs::rename(&storage, &moved).unwrap();
    std::fs::write(&storage, b"not a directory").unwrap();
    let revoke = Request::post("/auth/revoke")
        .form(&[("token", &acked[2])])
        .send(addr)
        .await;
    assert_eq!(
        revoke.status, 503,
        "a revocation that was not saved says so"
    );
    assert_eq!(
        revoke.json(),
        json!({"error": "temporarily_unavailable",
            "error_description": "The auth store could not be written; the token is still valid"})
    );
    assert_eq!(
        client::refresh(addr, &acked[2]).await.unwrap().status,
        200,
        "and the token is indeed still valid (not revoked in memory only)"
    );
    // A websocket command that needs a write says it failed.
    let mut ws = Ws::connect(addr, &owner_access).await.unwrap();
    let mut create = json!({"type": "config/auth/create", "name": "Nobody"});
    let reply = ws.command(&mut create).await.unwrap();
    assert_eq!(reply["success"], false, "{reply}");
    let listed = ws.ok(json!({"type": "config/auth/list"})).await.unwrap();
    assert!(
        listed
            .as_array()
            .unwrap()
            .iter()
            .all(|u: &Value| u["name"] != "Nobody"),
        "a failed create leaves no user behind"
    );
    std::fs::remove_file(&storage).unwrap();
    std::fs::rename(&moved, &storage).unwrap();
    client::revoke(addr, &acked[2]).await.unwrap();
    assert_eq!(client::refresh(addr, &acked[2]).await.unwrap().status, 400);
    let revoked = acked.remove(2);
    // A small record still fits (in a new journal segment): revoking works under the size limit.
    assert!(!stored_tokens(&storage_dir).await.contains(&revoked));

    // The shutdown flushes usage data if it fits, or says it could not (exit 3); the process is
    // never killed by the limit (SIGXFSZ is caught).
    let code = server.stop().await;
    assert!(code == 0 || code == 3, "exit code {code}");

    // Without the limit, everything acknowledged is there.
    let server = serve(config.path(), &["-c", &dir])
        .await
        .unwrap_or_else(|o| panic!("{}", o.stderr));
    for token in &acked {
        assert_eq!(
            client::refresh(server.addr, token).await.unwrap().status,
            200
        );
    }
    assert_eq!(server.stop().await, 0);
}
