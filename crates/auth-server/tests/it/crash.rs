//! Crash safety: `kill -9` in the middle of a storm of user creations, token creations, password
//! changes and revocations, at seeded random moments; after each restart every acknowledged
//! change is there and every store file parses. Every other kill also tears the last record of
//! the auth journal (as a power cut mid-write would): the restart drops it and loses nothing
//! acknowledged. After the final clean stop no journal is left. The same storm runs with every
//! store in PostgreSQL.

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use auth_core::StoredDocument;
use auth_testkit::TempConfig;
use serde_json::{Value, json};

use crate::client::{self, Ws};
use crate::support::{BASIC_CONFIG, serve, write_config};

/// How many times the server is killed.
const KILL_POINTS: u64 = 8;

/// A small deterministic generator (xorshift): the kill points are random but repeatable.
struct Seeded(u64);

impl Seeded {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

/// A homeassistant login: its acknowledged password and those of changes in flight at the kill.
#[derive(Clone, Debug, Default)]
struct Login {
    user_id: String,
    acked: Option<String>,
    in_flight: Vec<String>,
}

/// Everything the server acknowledged during one storm.
#[derive(Debug, Default)]
struct Acked {
    users: BTreeSet<String>,
    logins: BTreeMap<String, Login>,
    refresh_tokens: BTreeSet<String>,
    revoked: BTreeSet<String>,
    /// Revocations sent but not answered when the server died: either outcome is right.
    revoking: BTreeSet<String>,
    long_lived: Vec<String>,
}

type Shared = Arc<Mutex<Acked>>;

/// Creates users with a homeassistant login, and changes their passwords, until the server dies.
async fn admin_worker(addr: SocketAddr, token: String, worker: usize, round: u64, acked: Shared) {
    let Ok(mut ws) = Ws::connect(addr, &token).await else {
        return;
    };
    for n in 0.. {
        let name = format!("r{round}w{worker}n{n}");
        let Ok(created) = ws
            .ok(json!({"type": "config/auth/create", "name": name, "group_ids": ["system-users"]}))
            .await
        else {
            return;
        };
        let user_id = created["user"]["id"].as_str().unwrap().to_owned();
        acked.lock().unwrap().users.insert(user_id.clone());
        let username = name.clone();
        let password = format!("{name}-pw0");
        acked.lock().unwrap().logins.insert(
            username.clone(),
            Login {
                user_id: user_id.clone(),
                acked: None,
                in_flight: vec![password.clone()],
            },
        );
        let added = ws
            .ok(json!({"type": "config/auth_provider/homeassistant/create",
                "user_id": user_id, "username": username, "password": password}))
            .await;
        if added.is_err() {
            return;
        }
        record_password(&acked, &username, &password);
        // Change the password of this user, then of an earlier one of this worker.
        for target in [n, n / 2] {
            let username = format!("r{round}w{worker}n{target}");
            let Some(login) = acked.lock().unwrap().logins.get(&username).cloned() else {
                continue;
            };
            if login.acked.is_none() {
                continue;
            }
            let password = format!("{username}-pw{}", n + 1);
            acked
                .lock()
                .unwrap()
                .logins
                .get_mut(&username)
                .unwrap()
                .in_flight
                .push(password.clone());
            let changed = ws
                .ok(
                    json!({"type": "config/auth_provider/homeassistant/admin_change_password",
                    "user_id": login.user_id, "password": password}),
                )
                .await;
            if changed.is_err() {
                return;
            }
            record_password(&acked, &username, &password);
        }
    }
}

fn record_password(acked: &Shared, username: &str, password: &str) {
    let mut acked = acked.lock().unwrap();
    let login = acked.logins.get_mut(username).unwrap();
    login.acked = Some(password.to_owned());
    login.in_flight.clear();
}

/// Signs in (refresh token creation) and revokes every third token, until the server dies.
async fn token_worker(addr: SocketAddr, acked: Shared) {
    for n in 0u64.. {
        let Ok(tokens) =
            client::login(addr, json!(["insecure_example", null]), "demo", "demo").await
        else {
            return;
        };
        let refresh = tokens["refresh_token"].as_str().unwrap().to_owned();
        acked.lock().unwrap().refresh_tokens.insert(refresh.clone());
        if n % 3 == 2 {
            acked.lock().unwrap().revoking.insert(refresh.clone());
            if client::revoke(addr, &refresh).await.is_err() {
                return;
            }
            let mut acked = acked.lock().unwrap();
            acked.revoking.remove(&refresh);
            acked.revoked.insert(refresh);
        }
    }
}

/// Creates long-lived access tokens over the websocket, until the server dies.
async fn long_lived_worker(addr: SocketAddr, token: String, round: u64, acked: Shared) {
    let Ok(mut ws) = Ws::connect(addr, &token).await else {
        return;
    };
    for n in 0.. {
        let Ok(jwt) = ws
            .ok(json!({"type": "auth/long_lived_access_token",
                "client_name": format!("r{round}-{n}"), "lifespan": 30}))
            .await
        else {
            return;
        };
        acked
            .lock()
            .unwrap()
            .long_lived
            .push(jwt.as_str().unwrap().to_owned());
    }
}

/// Every file in `.storage` (and each last good copy) parses as the store it is named for.
fn every_store_file_parses(storage: &Path) {
    for entry in std::fs::read_dir(storage).unwrap() {
        let name = entry.unwrap().file_name().into_string().unwrap();
        if name.starts_with('.') || name.starts_with("auth.journal.") {
            continue;
        }
        let key = name.strip_suffix(".bak").unwrap_or(&name);
        let path = storage.join(&name);
        let bytes = std::fs::read(&path).unwrap();
        let parsed = StoredDocument::from_file_bytes(key, &path.display().to_string(), &bytes);
        assert!(
            matches!(parsed, Ok(Some(_))),
            "{name} does not parse after a kill: {parsed:?}"
        );
    }
}

/// Appends half a record to the newest journal segment: a write torn by a power cut (never
/// acknowledged). Returns whether there was a segment to tear.
fn tear_journal_tail(storage: &Path, rng: &mut Seeded) -> bool {
    use std::io::Write;
    let Some(last) = auth_testkit::journal_segments(storage).pop() else {
        return false;
    };
    let record = format!(
        "{:016x} {{\"put\":[{{\"id\":\"torn{}\",\"user_id\":",
        rng.next(),
        rng.next()
    );
    let mut file = std::fs::OpenOptions::new().append(true).open(last).unwrap();
    file.write_all(record.as_bytes()).unwrap();
    true
}

/// Checks what `acked` says against the restarted server.
async fn verify(addr: SocketAddr, owner_token: &str, acked: &Acked) {
    let mut ws = Ws::connect(addr, owner_token)
        .await
        .expect("owner connects");
    let listed = ws.ok(json!({"type": "config/auth/list"})).await.unwrap();
    let ids: BTreeSet<&str> = listed
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["id"].as_str().unwrap())
        .collect();
    for user in &acked.users {
        assert!(
            ids.contains(user.as_str()),
            "acknowledged user {user} is lost"
        );
    }
    for (username, login) in &acked.logins {
        let Some(password) = &login.acked else {
            continue;
        };
        let mut accepted = None;
        for candidate in std::iter::once(password).chain(&login.in_flight) {
            let code = client::login_code(
                addr,
                json!(["homeassistant", null]),
                username,
                candidate,
                None,
            )
            .await
            .unwrap();
            if code.is_some() {
                accepted = Some(candidate);
                break;
            }
        }
        assert!(
            accepted.is_some(),
            "{username}: neither the acknowledged password {password} nor one in flight {:?} works",
            login.in_flight
        );
    }
    for refresh in &acked.refresh_tokens {
        if acked.revoking.contains(refresh) {
            continue;
        }
        let response = client::refresh(addr, refresh).await.unwrap();
        let expected = if acked.revoked.contains(refresh) {
            400
        } else {
            200
        };
        assert_eq!(
            response.status,
            expected,
            "refresh token (revoked: {}): {}",
            acked.revoked.contains(refresh),
            response.text()
        );
    }
    for jwt in &acked.long_lived {
        assert_eq!(
            client::api_status(addr, jwt).await.unwrap(),
            200,
            "an acknowledged long-lived token is lost"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_changes_survive_kill_9_at_random_points() {
    kill_9_storm(None).await;
}

/// The same storm with every store in PostgreSQL (`--database-url`, a throwaway cluster).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_changes_survive_kill_9_at_random_points_on_postgres() {
    let cluster = auth_testkit::postgres::PgCluster::start();
    let url = cluster.create_database("crash");
    kill_9_storm(Some(&url)).await;
}

/// Kills the server at seeded random moments of a storm; `database_url`: stores in PostgreSQL
/// (then the `.storage` checks are skipped: nothing is kept there).
async fn kill_9_storm(database_url: Option<&str>) {
    let config = TempConfig::empty();
    write_config(config.path(), BASIC_CONFIG);
    let dir = config.path().to_str().unwrap().to_owned();
    let mut args = vec!["-c", dir.as_str()];
    if let Some(url) = database_url {
        args.extend(["--database-url", url]);
    }
    let args = args;
    let on_files = database_url.is_none();
    let server = serve(config.path(), &args)
        .await
        .unwrap_or_else(|o| panic!("{}", o.stderr));
    let owner = client::onboard(server.addr, "owner", "owner-pw").await;
    let owner_token = owner["access_token"].as_str().unwrap().to_owned();
    // The demo user exists before the storm (concurrent first sign-ins are refused but one).
    client::login(
        server.addr,
        json!(["insecure_example", null]),
        "demo",
        "demo",
    )
    .await
    .unwrap();
    let mut server = Some(server);
    let mut rng = Seeded(0x9e37_79b9_7f4a_7c15);
    let mut everything = Acked::default();
    for round in 0..KILL_POINTS {
        let running = server.take().unwrap();
        let addr = running.addr;
        let acked: Shared = Arc::default();
        let mut workers = Vec::new();
        for worker in 0..2 {
            workers.push(tokio::spawn(admin_worker(
                addr,
                owner_token.clone(),
                worker,
                round,
                acked.clone(),
            )));
        }
        for _ in 0..3 {
            workers.push(tokio::spawn(token_worker(addr, acked.clone())));
        }
        workers.push(tokio::spawn(long_lived_worker(
            addr,
            owner_token.clone(),
            round,
            acked.clone(),
        )));
        let kill_after = Duration::from_millis(150 + rng.next() % 1200);
        tokio::time::sleep(kill_after).await;
        running.kill().await;
        for worker in workers {
            worker.await.unwrap();
        }
        if on_files {
            every_store_file_parses(&config.storage_dir());
        }
        let torn = on_files && round % 2 == 1 && tear_journal_tail(&config.storage_dir(), &mut rng);
        let restarted = serve(config.path(), &args)
            .await
            .unwrap_or_else(|o| panic!("round {round}: restart refused: {}", o.stderr));
        let acked = std::mem::take(&mut *acked.lock().unwrap());
        assert!(
            !acked.refresh_tokens.is_empty() || round == 0,
            "round {round}: the storm acknowledged nothing"
        );
        let leftovers: Vec<String> = std::fs::read_dir(config.storage_dir())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .filter(|n| n.starts_with('.') && n != ".hass-auth.lock")
            .collect();
        assert!(
            leftovers.is_empty(),
            "round {round}: the restart removes temp files of interrupted writes: {leftovers:?}"
        );
        eprintln!(
            "round {round}: killed after {kill_after:?} (journal tail torn: {torn}): {} users, {} logins, {} refresh tokens ({} revoked), {} long-lived tokens acknowledged",
            acked.users.len(),
            acked.logins.values().filter(|l| l.acked.is_some()).count(),
            acked.refresh_tokens.len(),
            acked.revoked.len(),
            acked.long_lived.len()
        );
        verify(restarted.addr, &owner_token, &acked).await;
        everything.users.extend(acked.users);
        everything.logins.extend(acked.logins);
        everything.refresh_tokens.extend(acked.refresh_tokens);
        everything.revoked.extend(acked.revoked);
        everything.revoking.extend(acked.revoking);
        everything.long_lived.extend(acked.long_lived);
        server = Some(restarted);
    }
    // At the end, everything from every round is still there (later writes lost nothing).
    let server = server.unwrap();
    let mut final_check = everything;
    final_check.logins.retain(|name, _| name.ends_with("n0"));
    verify(server.addr, &owner_token, &final_check).await;
    assert_eq!(server.stop().await, 0);
    if !on_files {
        return;
    }
    assert_eq!(
        auth_testkit::journal_segments(&config.storage_dir()),
        Vec::<std::path::PathBuf>::new(),
        "a clean stop folds the journal into .storage/auth"
    );
    let _: Value =
        serde_json::from_slice(&std::fs::read(config.storage_dir().join("auth")).unwrap()).unwrap();
}
