//! Hundreds of clients at once: signing in, refreshing, calling the API and revoking. At the end
//! the store in memory and on disk holds exactly the tokens that were issued and not revoked,
//! every reference in it resolves, and concurrent first sign-ins make one user, not several.

use std::collections::BTreeSet;
use std::sync::Arc;

use auth_core::store::AuthData;
use auth_core::{Storage, StoredDocument};
use auth_testkit::http::Request;
use futures_util::future::join_all;
use serde_json::{Value, json};

use crate::harness::{Server, Setup, onboard, start, start_flow, step};

const CLIENTS: usize = 300;

/// Sends `request`. With hundreds of connections opened at once on a busy machine, loopback
/// occasionally resets one before the server read anything; such a request is sent again.
async fn send(server: &Server, request: Request) -> auth_testkit::http::Response {
    let mut attempt = 0;
    loop {
        match request.try_send(server.addr).await {
            Ok(response) => return response,
            Err(error)
                if attempt < 5
                    && matches!(
                        error.kind(),
                        std::io::ErrorKind::ConnectionReset | std::io::ErrorKind::ConnectionRefused
                    ) =>
            {
                attempt += 1;
                tokio::time::sleep(std::time::Duration::from_millis(20)).await;
            }
            Err(error) => panic!("{error}"),
        }
    }
}

/// One sign-in (flow, password, code exchange): the token response.
async fn sign_in(server: &Server, handler: Value, username: &str, password: &str) -> Value {
    let flow = send(
        server,
        Request::post("/auth/login_flow").json(&json!({
            "client_id": server.client_id(), "handler": handler, "redirect_uri": server.redirect_uri()
        })),
    )
    .await
    .json();
    let done = send(
        server,
        Request::post(&format!(
            "/auth/login_flow/{}",
            flow["flow_id"].as_str().unwrap()
        ))
        .json(
            &json!({"client_id": server.client_id(), "username": username, "password": password}),
        ),
    )
    .await
    .json();
    assert_eq!(done["type"], "create_entry", "{done}");
    let tokens = send(
        server,
        Request::post("/auth/token").form(&[
            ("grant_type", "authorization_code"),
            ("client_id", &server.client_id()),
            ("code", done["result"].as_str().unwrap()),
        ]),
    )
    .await;
    assert_eq!(tokens.status, 200, "{}", tokens.text());
    tokens.json()
}

async fn refresh(server: &Server, refresh_token: &str) -> u16 {
    send(
        server,
        Request::post("/auth/token").form(&[
            ("grant_type", "refresh_token"),
            ("client_id", &server.client_id()),
            ("refresh_token", refresh_token),
        ]),
    )
    .await
    .status
}

/// What one client did: its refresh token, and whether it revoked it.
async fn client(server: Arc<Server>, n: usize) -> (String, bool) {
    let tokens = if n.is_multiple_of(10) {
        sign_in(
            &server,
            json!(["homeassistant", null]),
            "owner",
            "owner-pass",
        )
        .await
    } else {
        sign_in(
            &server,
            json!(["insecure_example", null]),
            "demo",
            "demo-pass",
        )
        .await
    };
    let refresh_token = tokens["refresh_token"].as_str().unwrap().to_owned();
    for _ in 0..3 {
        assert_eq!(refresh(&server, &refresh_token).await, 200);
    }
    let api = send(
        &server,
        Request::get("/api/").bearer(tokens["access_token"].as_str().unwrap()),
    )
    .await;
    assert_eq!(api.status, 200);
    let revoke = n % 2 == 1;
    if revoke {
        let response = send(
            &server,
            Request::post("/auth/revoke").form(&[("token", &refresh_token)]),
        )
        .await;
        assert_eq!(response.status, 200);
        assert_eq!(refresh(&server, &refresh_token).await, 400);
    }
    (refresh_token, revoke)
}

/// The auth store as a restarted server would read it.
async fn on_disk(server: &Server) -> AuthData {
    server.manager().flush().await.unwrap();
    let storage = server.config.storage();
    let doc: StoredDocument = storage.load("auth").await.unwrap().unwrap();
    AuthData::from_json("auth", &doc.data).expect("the file loads")
}

/// Every token's user exists and its credential (if any) belongs to that user.
fn references_resolve(data: &AuthData) {
    for token in data.tokens.values() {
        let user = data
            .users
            .get(&token.user_id)
            .unwrap_or_else(|| panic!("token {} of a missing user", token.id));
        if let Some(credential) = &token.credential_id {
            assert!(
                user.credentials.iter().any(|c| &c.id == credential),
                "token {} names a credential of another user",
                token.id
            );
        }
        assert_eq!(
            data.token_by_value(&token.token).map(|t| t.id.as_str()),
            Some(token.id.as_str()),
            "the value index finds token {}",
            token.id
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hundreds_of_clients_leave_a_consistent_store() {
    let server = Arc::new(start(Setup::default()).await);
    onboard(&server, "owner", "owner-pass").await;
    // The demo user exists before the crowd arrives (first sign-ins are tested below).
    sign_in(
        &server,
        json!(["insecure_example", null]),
        "demo",
        "demo-pass",
    )
    .await;
    let before: BTreeSet<String> = server
        .manager()
        .store()
        .read(|d| d.tokens.values().map(|t| t.token.clone()).collect());

    let results = join_all((0..CLIENTS).map(|n| tokio::spawn(client(server.clone(), n)))).await;
    let mut expected = before;
    for result in results {
        let (token, revoked) = result.expect("a client task panicked");
        if !revoked {
            expected.insert(token);
        }
    }

    let in_memory: BTreeSet<String> = server
        .manager()
        .store()
        .read(|d| d.tokens.values().map(|t| t.token.clone()).collect());
    assert_eq!(in_memory, expected, "memory holds exactly the live tokens");
    let data = on_disk(&server).await;
    let stored: BTreeSet<String> = data.tokens.values().map(|t| t.token.clone()).collect();
    assert_eq!(stored, expected, "the file holds exactly the live tokens");
    references_resolve(&data);
    let users: Vec<_> = data
        .users
        .values()
        .filter(|u| !u.system_generated)
        .collect();
    assert_eq!(users.len(), 2, "owner and demo, once each");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_first_sign_ins_make_one_user() {
    let mut setup = Setup::default();
    setup.providers[1].1 =
        json!({"users": [{"username": "newcomer", "password": "pw", "name": "Newcomer"}]});
    let server = Arc::new(start(setup).await);
    onboard(&server, "owner", "owner-pass").await;
    // Many flows finish before any code is exchanged: each carries new credentials.
    let mut codes = Vec::new();
    for _ in 0..50 {
        let flow = start_flow(&server, json!(["insecure_example", null]))
            .await
            .json();
        let done = step(
            &server,
            flow["flow_id"].as_str().unwrap(),
            json!({"username": "newcomer", "password": "pw"}),
        )
        .await
        .json();
        codes.push(done["result"].as_str().unwrap().to_owned());
    }
    let exchanges = codes.iter().map(|code| {
        let server = server.clone();
        let code = code.clone();
        async move {
            server
                .send(Request::post("/auth/token").form(&[
                    ("grant_type", "authorization_code"),
                    ("client_id", &server.client_id()),
                    ("code", &code),
                ]))
                .await
        }
    });
    let responses = join_all(exchanges).await;
    let ok = responses.iter().filter(|r| r.status == 200).count();
    assert_eq!(ok, 1, "exactly one exchange creates the user");
    for response in responses.iter().filter(|r| r.status != 200) {
        assert_eq!(
            (response.status, response.json()),
            (
                400,
                json!({"error": "invalid_grant", "error_description": "Sign in again"})
            )
        );
    }
    let data = on_disk(&server).await;
    let newcomers = data
        .users
        .values()
        .filter(|u| u.name.as_deref() == Some("Newcomer"))
        .count();
    assert_eq!(newcomers, 1, "one user, however many first sign-ins raced");
    references_resolve(&data);
}
