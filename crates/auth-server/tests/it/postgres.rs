//! `hass-auth serve --database-url`: the stores live in PostgreSQL (a throwaway cluster), nothing
//! in `.storage`, and a restarted server (even after `kill -9`) has every acknowledged change.

use auth_testkit::TempConfig;
use auth_testkit::http::Request;
use auth_testkit::postgres::PgCluster;
use serde_json::json;

use crate::client;
use crate::support::{BASIC_CONFIG, serve, write_config};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_database_url_keeps_every_store_in_postgres() {
    let cluster = PgCluster::start();
    let url = cluster.create_database("serve");
    let config = TempConfig::empty();
    write_config(config.path(), BASIC_CONFIG);
    let dir = config.path().to_str().unwrap().to_owned();
    let args = ["-c", dir.as_str(), "--database-url", url.as_str()];
    let server = serve(config.path(), &args)
        .await
        .unwrap_or_else(|o| panic!("{}", o.stderr));
    let owner = client::onboard(server.addr, "owner", "owner-pw").await;
    let owner_refresh = owner["refresh_token"].as_str().unwrap().to_owned();
    let demo = client::login(
        server.addr,
        json!(["insecure_example", null]),
        "demo",
        "demo",
    )
    .await
    .unwrap();
    let revoked = client::login(
        server.addr,
        json!(["insecure_example", null]),
        "demo",
        "demo",
    )
    .await
    .unwrap();
    let revoked = revoked["refresh_token"].as_str().unwrap().to_owned();
    client::revoke(server.addr, &revoked).await.unwrap();
    // Killed, not stopped: what was acknowledged is committed rows, not a pending flush.
    server.kill().await;
    let files: Vec<String> = std::fs::read_dir(config.storage_dir())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n != ".hass-auth.lock")
        .collect();
    assert!(files.is_empty(), "nothing is kept in .storage: {files:?}");

    let server = serve(config.path(), &args)
        .await
        .unwrap_or_else(|o| panic!("{}", o.stderr));
    for refresh in [&owner_refresh, demo["refresh_token"].as_str().unwrap()] {
        assert_eq!(
            client::refresh(server.addr, refresh).await.unwrap().status,
            200
        );
    }
    assert_eq!(
        client::refresh(server.addr, &revoked).await.unwrap().status,
        400
    );
    // The owner's password (provider_passwords) came back, and onboarding stays closed
    // (onboarding_steps): nobody else can make themselves owner.
    client::login(
        server.addr,
        json!(["homeassistant", null]),
        "owner",
        "owner-pw",
    )
    .await
    .unwrap();
    let again = Request::post("/api/onboarding/users")
        .json(&json!({"client_id": client::CLIENT_ID, "name": "Intruder",
            "username": "intruder", "password": "pw", "language": "en"}))
        .send(server.addr)
        .await;
    assert_ne!(again.status, 200, "{}", again.text());
    assert_eq!(server.stop().await, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn storage_import_and_export_round_trip_home_assistants_files() {
    let cluster = PgCluster::start();
    let url = cluster.create_database("transfer");
    let source = TempConfig::from_fixture("ha-2026.2.3");
    let source_dir = source.path().to_str().unwrap().to_owned();
    let imported = crate::support::run(
        source.path(),
        &[
            "storage",
            "-c",
            &source_dir,
            "import",
            "--database-url",
            &url,
        ],
    )
    .await;
    assert_eq!(imported.code, 0, "{}", imported.stderr);
    let target = TempConfig::empty();
    let target_dir = target.path().to_str().unwrap().to_owned();
    let exported = crate::support::run(
        target.path(),
        &[
            "storage",
            "-c",
            &target_dir,
            "export",
            "--database-url",
            &url,
        ],
    )
    .await;
    assert_eq!(exported.code, 0, "{}", exported.stderr);
    let mut keys = Vec::new();
    for entry in std::fs::read_dir(source.storage_dir()).unwrap() {
        let key = entry.unwrap().file_name().into_string().unwrap();
        if key.starts_with('.') {
            continue; // the lock the import took
        }
        let read = |dir: &std::path::Path| {
            let path = dir.join(&key);
            let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("{key}: {e}"));
            auth_core::StoredDocument::from_file_bytes(&key, &path.display().to_string(), &bytes)
                .unwrap()
                .unwrap()
                .to_bytes()
        };
        assert_eq!(
            String::from_utf8(read(&target.storage_dir())).unwrap(),
            String::from_utf8(read(&source.storage_dir())).unwrap(),
            "{key}"
        );
        keys.push(key);
    }
    assert!(keys.len() >= 4, "{keys:?}");
    // The exported directory serves: the fixture's owner signs in.
    write_config(target.path(), BASIC_CONFIG);
    let server = serve(target.path(), &["-c", &target_dir])
        .await
        .unwrap_or_else(|o| panic!("{}", o.stderr));
    assert!(
        client::api_status(server.addr, "not.a.token")
            .await
            .unwrap()
            == 401
    );
    assert_eq!(server.stop().await, 0);
}

/// Starts `n` servers on the database at `url`, each with its own directory holding
/// `configuration` (the directories are returned: they live as long as the servers).
async fn servers_on(
    url: &str,
    n: usize,
    configuration: &str,
) -> (Vec<TempConfig>, Vec<crate::support::ServerProcess>) {
    let configs: Vec<TempConfig> = (0..n).map(|_| TempConfig::empty()).collect();
    let mut servers = Vec::new();
    for config in &configs {
        write_config(config.path(), configuration);
        let dir = config.path().to_str().unwrap().to_owned();
        servers.push(
            serve(config.path(), &["-c", &dir, "--database-url", url])
                .await
                .unwrap_or_else(|o| panic!("{}", o.stderr)),
        );
    }
    (configs, servers)
}

/// Polls `check` (every 5 ms, up to 10 s) until it holds.
async fn eventually<F, Fut>(what: &str, check: F)
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while !check().await {
        assert!(
            std::time::Instant::now() < deadline,
            "{what}: not after 10 s"
        );
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_servers_on_one_database_agree_on_sign_ins_and_revocations() {
    let cluster = PgCluster::start();
    let url = cluster.create_database("three");
    let configs: Vec<TempConfig> = (0..3).map(|_| TempConfig::empty()).collect();
    let mut servers = Vec::new();
    for (i, config) in configs.iter().enumerate() {
        write_config(config.path(), BASIC_CONFIG);
        let dir = config.path().to_str().unwrap().to_owned();
        let server = serve(config.path(), &["-c", &dir, "--database-url", &url])
            .await
            .unwrap_or_else(|o| panic!("{}", o.stderr));
        if i == 0 {
            // Onboarding is read once per process: finish it before the others start.
            let owner = client::onboard(server.addr, "owner", "owner-pw").await;
            let first = client::login(
                server.addr,
                json!(["insecure_example", null]),
                "demo",
                "demo",
            )
            .await
            .unwrap();
            servers.push((server, owner, first));
        } else {
            servers.push((server, json!(null), json!(null)));
        }
    }
    let addrs: Vec<_> = servers.iter().map(|(s, _, _)| s.addr).collect();
    let owner_access = servers[0].1["access_token"].as_str().unwrap().to_owned();
    // The owner's access token works on every instance (the user and token are shared).
    for addr in &addrs {
        assert_eq!(client::api_status(*addr, &owner_access).await.unwrap(), 200);
    }
    // Round robin: each whole sign-in on the next server, each refresh on the one after.
    let mut refresh_tokens = vec![servers[0].2["refresh_token"].as_str().unwrap().to_owned()];
    for i in 0..6 {
        let tokens = client::login(
            addrs[i % 3],
            json!(["insecure_example", null]),
            "demo",
            "demo",
        )
        .await
        .unwrap();
        refresh_tokens.push(tokens["refresh_token"].as_str().unwrap().to_owned());
    }
    for (i, refresh) in refresh_tokens.iter().enumerate() {
        let addr = addrs[(i + 1) % 3];
        eventually("a refresh token made on another server", || async move {
            client::refresh(addr, refresh).await.unwrap().status == 200
        })
        .await;
    }
    // One revocation, and every server refuses the token and its access tokens.
    let victim = refresh_tokens[2].clone();
    let access = client::refresh(addrs[0], &victim).await.unwrap().json()["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    client::revoke(addrs[1], &victim).await.unwrap();
    for &addr in &addrs {
        let (victim, access) = (&victim, &access);
        eventually("a revocation made on another server", || async move {
            client::refresh(addr, victim).await.unwrap().status == 400
                && client::api_status(addr, access).await.unwrap() == 401
        })
        .await;
    }
    // The other tokens still work everywhere.
    for (i, refresh) in refresh_tokens.iter().enumerate().filter(|(i, _)| *i != 2) {
        assert_eq!(
            client::refresh(addrs[i % 3], refresh).await.unwrap().status,
            200
        );
    }
    for (server, _, _) in servers {
        assert_eq!(server.stop().await, 0);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn onboarding_users_passwords_and_codes_made_on_one_server_work_on_another() {
    let cluster = PgCluster::start();
    let url = cluster.create_database("shared");
    let with_totp = format!("{BASIC_CONFIG}  auth_mfa_modules:\n    - type: totp\n");
    // Both start before onboarding: B must learn of it from A, not at start.
    let (_configs, servers) = servers_on(&url, 2, &with_totp).await;
    let (a, b) = (servers[0].addr, servers[1].addr);
    let owner = client::onboard(a, "owner", "owner-pw").await;
    eventually("onboarding finished on the other server", || async move {
        let status = Request::get("/api/onboarding").send(b).await;
        status.status == 200
            && status.json().as_array().is_some_and(|steps| {
                steps
                    .iter()
                    .any(|s| s["step"] == "user" && s["done"] == json!(true))
            })
    })
    .await;
    let intruder = Request::post("/api/onboarding/users")
        .json(&json!({"client_id": client::CLIENT_ID, "name": "Intruder",
            "username": "intruder", "password": "pw", "language": "en"}))
        .send(b)
        .await;
    assert_ne!(intruder.status, 200, "{}", intruder.text());
    // A user and a password added on A sign in on B.
    let access = owner["access_token"].as_str().unwrap();
    let mut ws = client::Ws::connect(a, access).await.unwrap();
    let created = ws
        .ok(json!({"type": "config/auth/create", "name": "Paula", "group_ids": ["system-users"]}))
        .await
        .unwrap();
    ws.ok(json!({"type": "config/auth_provider/homeassistant/create",
        "user_id": created["user"]["id"], "username": "paula", "password": "paula-pw"}))
        .await
        .unwrap();
    eventually("a password added on the other server", || async move {
        client::login(b, json!(["homeassistant", null]), "paula", "paula-pw")
            .await
            .is_ok()
    })
    .await;
    // Login flows stay on the instance that started them (sticky routing, docs/reliability.md):
    // another instance answers a foreign flow id as Home Assistant answers an unknown one.
    let started = Request::post("/auth/login_flow")
        .json(&json!({"client_id": client::CLIENT_ID,
            "handler": ["homeassistant", null], "redirect_uri": client::REDIRECT_URI}))
        .send(a)
        .await;
    let flow_id = started.json()["flow_id"].as_str().unwrap().to_owned();
    let foreign = Request::post(&format!("/auth/login_flow/{flow_id}"))
        .json(&json!({"client_id": client::CLIENT_ID, "username": "paula", "password": "paula-pw"}))
        .send(b)
        .await;
    assert_eq!(foreign.status, 404, "{}", foreign.text());
    assert_eq!(foreign.json(), json!({"message": "Invalid flow specified"}));
    // An authorization code made on B is redeemed on A.
    let code = client::login_code(b, json!(["homeassistant", null]), "paula", "paula-pw", None)
        .await
        .unwrap()
        .expect("a code");
    let tokens = client::exchange(a, &code).await;
    assert!(tokens.is_ok(), "a code made on B redeems on A: {tokens:?}");
    let tokens = tokens.unwrap();
    // Presented again, on B: refused, and what A issued for it is revoked (RFC 9700 §4.2.4).
    assert!(client::exchange(b, &code).await.is_err());
    let issued = tokens["refresh_token"].as_str().unwrap();
    eventually("the reused code's token revoked on A", || async move {
        client::refresh(a, issued).await.unwrap().status == 400
    })
    .await;
    // TOTP enabled on A: B asks Paula for the code.
    let paula = client::login(a, json!(["homeassistant", null]), "paula", "paula-pw")
        .await
        .unwrap();
    let mut ws = client::Ws::connect(a, paula["access_token"].as_str().unwrap())
        .await
        .unwrap();
    let form = ws
        .ok(json!({"type": "auth/setup_mfa", "mfa_module_id": "totp"}))
        .await
        .unwrap();
    let secret = form["description_placeholders"]["code"].as_str().unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let code = mfa_totp::code_at(secret, i64::try_from(now).unwrap()).unwrap();
    let done = ws
        .ok(json!({"type": "auth/setup_mfa", "flow_id": form["flow_id"],
            "user_input": {"code": code}}))
        .await
        .unwrap();
    assert_eq!(done["type"], "create_entry", "{done}");
    eventually("TOTP enabled on the other server", || async move {
        let started = Request::post("/auth/login_flow")
            .json(&json!({"client_id": client::CLIENT_ID,
                "handler": ["homeassistant", null], "redirect_uri": client::REDIRECT_URI}))
            .send(b)
            .await;
        let flow_id = started.json()["flow_id"].as_str().unwrap().to_owned();
        let step = Request::post(&format!("/auth/login_flow/{flow_id}"))
            .json(&json!({"client_id": client::CLIENT_ID,
                "username": "paula", "password": "paula-pw"}))
            .send(b)
            .await;
        step.json()["step_id"] == "mfa"
    })
    .await;
    for server in servers {
        assert_eq!(server.stop().await, 0);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_logins_spread_over_three_servers_ban_everywhere_and_one_command_lifts_it() {
    let cluster = PgCluster::start();
    let url = cluster.create_database("bans");
    let config_text =
        format!("{BASIC_CONFIG}http:\n  ip_ban_enabled: true\n  login_attempts_threshold: 3\n");
    let (configs, servers) = servers_on(&url, 3, &config_text).await;
    let addrs: Vec<_> = servers.iter().map(|s| s.addr).collect();
    let attacker = "127.0.0.77";
    let status = |addr, ip: &'static str| async move {
        Request::get("/auth/providers")
            .from_ip(ip)
            .send(addr)
            .await
            .status
    };
    // One wrong password per server: no server alone sees the threshold, together they do.
    for &addr in &addrs {
        let refused = client::login_code(
            addr,
            json!(["insecure_example", null]),
            "demo",
            "wrong",
            Some(attacker),
        )
        .await
        .unwrap();
        assert!(refused.is_none());
    }
    for &addr in &addrs {
        eventually("the attacker banned on every server", || async move {
            status(addr, attacker).await == 403
        })
        .await;
        assert_ne!(status(addr, "127.0.0.78").await, 403, "others are not");
    }
    let dir = configs[0].path().to_str().unwrap().to_owned();
    let listed = crate::support::run(
        configs[0].path(),
        &["ban", "-c", &dir, "list", "--database-url", &url],
    )
    .await;
    assert_eq!(listed.code, 0, "{}", listed.stderr);
    assert!(listed.stdout.contains(attacker), "{}", listed.stdout);
    let removed = crate::support::run(
        configs[0].path(),
        &[
            "ban",
            "-c",
            &dir,
            "remove",
            attacker,
            "--database-url",
            &url,
        ],
    )
    .await;
    assert_eq!(removed.code, 0, "{}", removed.stderr);
    for &addr in &addrs {
        eventually("the ban lifted on every server", || async move {
            status(addr, attacker).await != 403
        })
        .await;
    }
    for server in servers {
        assert_eq!(server.stop().await, 0);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn racing_onboardings_and_usernames_on_two_servers_leave_one_owner_and_one_user_per_name() {
    let cluster = PgCluster::start();
    let url = cluster.create_database("races");
    let (_configs, servers) = servers_on(&url, 2, BASIC_CONFIG).await;
    let (a, b) = (servers[0].addr, servers[1].addr);
    let onboard = |addr, username: &'static str| async move {
        Request::post("/api/onboarding/users")
            .json(&json!({"client_id": client::CLIENT_ID, "name": username,
                "username": username, "password": "pw", "language": "en"}))
            .send(addr)
            .await
    };
    // Both servers see onboarding open, both try to make their user the owner.
    let (on_a, on_b) = tokio::join!(onboard(a, "alice"), onboard(b, "bob"));
    let winners: Vec<&str> = [("alice", &on_a), ("bob", &on_b)]
        .iter()
        .filter(|(_, r)| r.status == 200)
        .map(|(name, _)| *name)
        .collect();
    assert_eq!(winners.len(), 1, "{} / {}", on_a.text(), on_b.text());
    let loser = if winners[0] == "alice" {
        "bob"
    } else {
        "alice"
    };
    for addr in [a, b] {
        let (winner, loser) = (winners[0], loser);
        eventually("the owner signs in on both servers", || async move {
            client::login(addr, json!(["homeassistant", null]), winner, "pw")
                .await
                .is_ok()
        })
        .await;
        assert!(
            client::login(addr, json!(["homeassistant", null]), loser, "pw")
                .await
                .is_err(),
            "the refused onboarding left no user {loser}"
        );
    }
    // Two admins add the same username at once, one on each server: one gets it.
    let owner = client::login(a, json!(["homeassistant", null]), winners[0], "pw")
        .await
        .unwrap();
    let access = owner["access_token"].as_str().unwrap();
    let mut sockets = Vec::new();
    for addr in [a, b] {
        let mut ws = client::Ws::connect(addr, access).await.unwrap();
        let user = ws
            .ok(json!({"type": "config/auth/create", "name": "Sam", "group_ids": ["system-users"]}))
            .await
            .unwrap();
        sockets.push((ws, user["user"]["id"].clone()));
    }
    let (mut ws_b, id_b) = sockets.pop().unwrap();
    let (mut ws_a, id_a) = sockets.pop().unwrap();
    let (made_a, made_b) = tokio::join!(
        ws_a.ok(json!({"type": "config/auth_provider/homeassistant/create",
            "user_id": id_a, "username": "sam", "password": "sam-a"})),
        ws_b.ok(json!({"type": "config/auth_provider/homeassistant/create",
            "user_id": id_b, "username": "sam", "password": "sam-b"}))
    );
    let made: Vec<&str> = [("sam-a", &made_a), ("sam-b", &made_b)]
        .iter()
        .filter(|(_, r)| r.is_ok())
        .map(|(pw, _)| *pw)
        .collect();
    assert_eq!(made.len(), 1, "{made_a:?} / {made_b:?}");
    for addr in [a, b] {
        let password = made[0];
        eventually("sam signs in with the password that won", || async move {
            client::login(addr, json!(["homeassistant", null]), "sam", password)
                .await
                .is_ok()
        })
        .await;
    }
    for server in servers {
        assert_eq!(server.stop().await, 0);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_storage_key_of_configuration_yaml_picks_the_database() {
    let cluster = PgCluster::start();
    let url = cluster.create_database("configured");
    let config = TempConfig::empty();
    let dir = config.path().to_str().unwrap().to_owned();
    write_config(config.path(), &format!("{BASIC_CONFIG}storage: {url}\n"));
    let server = serve(config.path(), &["-c", &dir])
        .await
        .unwrap_or_else(|o| panic!("{}", o.stderr));
    client::onboard(server.addr, "owner", "owner-pw").await;
    assert_eq!(server.stop().await, 0);
    let files: Vec<String> = std::fs::read_dir(config.storage_dir())
        .map(|d| {
            d.map(|e| e.unwrap().file_name().into_string().unwrap())
                .filter(|n| !n.starts_with('.'))
                .collect()
        })
        .unwrap_or_default();
    assert!(
        files.is_empty(),
        "the stores went to the database: {files:?}"
    );
    // --database-url wins: the configured database does not even exist.
    let missing = url.replace("/configured", "/no_such_database");
    write_config(
        config.path(),
        &format!("{BASIC_CONFIG}storage: {missing}\n"),
    );
    let server = serve(config.path(), &["-c", &dir, "--database-url", &url])
        .await
        .unwrap_or_else(|o| panic!("{}", o.stderr));
    client::login(
        server.addr,
        json!(["homeassistant", null]),
        "owner",
        "owner-pw",
    )
    .await
    .unwrap();
    assert_eq!(server.stop().await, 0);
    // A value that is no PostgreSQL URL: refused, naming the key and its line.
    write_config(
        config.path(),
        &format!("{BASIC_CONFIG}storage: /var/lib/hass-auth\n"),
    );
    let Err(refused) = serve(config.path(), &["-c", &dir]).await else {
        panic!("a bad storage URL is refused");
    };
    assert!(
        refused
            .stderr
            .contains("storage: expected a PostgreSQL URL")
            && refused.stderr.contains("configuration.yaml:8:"),
        "{}",
        refused.stderr
    );
}
