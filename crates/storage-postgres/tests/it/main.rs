//! storage-postgres against a real PostgreSQL (a throwaway cluster per test, see
//! `auth_testkit::postgres`): Home Assistant's files round-trip through the tables byte for byte,
//! the auth manager's durable changes land in rows and a second connection sees them, and
//! migrations run once.

use std::sync::Arc;

use auth_core::{
    AuthManager, FileStorage, NewRefreshToken, SaveOptions, Storage, StorageError, UserUpdate,
};
use auth_testkit::TempConfig;
use auth_testkit::postgres::PgCluster;
use storage_postgres::PgStorage;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn home_assistants_files_round_trip_through_the_tables() {
    let cluster = PgCluster::start();
    for fixture in ["ha-2024.3.3", "ha-2026.2.3"] {
        let url = cluster.create_database(&fixture.replace(['.', '-'], "_"));
        let pg = PgStorage::connect(&url).await.unwrap();
        let config = TempConfig::from_fixture(fixture);
        let files = FileStorage::new(config.storage_dir());
        for entry in std::fs::read_dir(config.storage_dir()).unwrap() {
            let key = entry.unwrap().file_name().into_string().unwrap();
            let doc = files.load(&key).await.unwrap().expect("fixture store");
            pg.save(&doc, SaveOptions { private: true }).await.unwrap();
            let back = pg.load(&key).await.unwrap().expect("saved store loads");
            assert_eq!(
                String::from_utf8(back.to_bytes()).unwrap(),
                String::from_utf8(doc.to_bytes()).unwrap(),
                "{fixture}: {key}"
            );
        }
        assert!(pg.load("never_saved").await.unwrap().is_none());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn durable_changes_land_in_rows_and_another_connection_sees_them() {
    let cluster = PgCluster::start();
    let url = cluster.create_database("roundtrip");
    let manager = instance(&url).await;
    let owner = manager
        .create_user(Some("Owner".into()), vec!["system-admin".into()], false)
        .await
        .unwrap();
    let new_token = || NewRefreshToken {
        client_id: Some("http://x/".into()),
        ..Default::default()
    };
    let kept = manager
        .create_refresh_token(&owner.id, new_token())
        .await
        .unwrap();
    let revoked = manager
        .create_refresh_token(&owner.id, new_token())
        .await
        .unwrap();
    manager.remove_refresh_token(&revoked.id).await.unwrap();
    manager
        .update_user(
            &owner.id,
            UserUpdate {
                name: Some(Some("Renamed".into())),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    // Another process on the same database (no flush: the rows are already there).
    let other = instance(&url).await;
    assert_eq!(
        other.user(&owner.id).unwrap().name.as_deref(),
        Some("Renamed")
    );
    assert_eq!(
        other.refresh_token_by_value(&kept.token).unwrap().id,
        kept.id
    );
    assert!(other.refresh_token(&revoked.id).is_none());
    assert_eq!(
        other.store().read(|d| d.to_json()),
        manager.store().read(|d| d.to_json())
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn migrations_run_once_and_a_newer_schema_is_refused() {
    let cluster = PgCluster::start();
    let url = cluster.create_database("migrations");
    let first = PgStorage::connect(&url).await.unwrap();
    let second = PgStorage::connect(&url).await.unwrap();
    let newest = storage_postgres::MIGRATIONS.last().unwrap().0;
    assert_eq!(first.schema_version().await.unwrap(), newest);
    assert_eq!(second.schema_version().await.unwrap(), newest);
    let (client, connection) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
        .await
        .unwrap();
    let driver = tokio::spawn(connection);
    client
        .batch_execute("INSERT INTO schema_version (version) VALUES (9999)")
        .await
        .unwrap();
    drop(client);
    let _ = driver.await;
    let error = PgStorage::connect(&url)
        .await
        .expect_err("a newer schema is refused");
    assert!(
        matches!(error, StorageError::UnsupportedVersion { found: 9999, .. }),
        "{error}"
    );
    assert!(error.to_string().contains("schema_version"), "{error}");
}

/// Polls `seen` (every millisecond, up to 10 s) and returns how long it took to become true.
/// An auth manager over its own connection to `url` (one server's worth).
async fn instance(url: &str) -> AuthManager {
    AuthManager::builder(Arc::new(PgStorage::connect(url).await.unwrap()))
        .build()
        .await
        .unwrap()
}

async fn seen_within(what: &str, seen: impl Fn() -> bool) -> std::time::Duration {
    let started = std::time::Instant::now();
    while !seen() {
        assert!(
            started.elapsed() < std::time::Duration::from_secs(10),
            "{what}: not seen after 10 s"
        );
        tokio::time::sleep(std::time::Duration::from_millis(1)).await;
    }
    started.elapsed()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_change_on_one_instance_is_seen_by_the_others() {
    let cluster = PgCluster::start();
    let url = cluster.create_database("instances");
    let mut instances = Vec::new();
    for _ in 0..3 {
        let storage = Arc::new(PgStorage::connect(&url).await.unwrap());
        instances.push(AuthManager::builder(storage).build().await.unwrap());
    }
    let mut latencies = Vec::new();
    let user = instances[0]
        .create_user(Some("Shared".into()), vec!["system-admin".into()], false)
        .await
        .unwrap();
    for other in &instances[1..] {
        latencies.push(seen_within("a new user", || other.user(&user.id).is_some()).await);
    }
    let token = instances[1]
        .create_refresh_token(
            &user.id,
            NewRefreshToken {
                client_id: Some("http://x/".into()),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    for other in [&instances[0], &instances[2]] {
        latencies.push(
            seen_within("a new refresh token", || {
                other.refresh_token_by_value(&token.token).is_some()
            })
            .await,
        );
    }
    // An access token issued by one instance is refused by all once another revoked it.
    let access = instances[0]
        .create_access_token(&token.id, None)
        .await
        .unwrap();
    assert!(instances[1].validate_access_token(&access).is_some());
    instances[2].remove_refresh_token(&token.id).await.unwrap();
    for other in &instances[..2] {
        latencies.push(
            seen_within("a revocation", || {
                other.validate_access_token(&access).is_none()
            })
            .await,
        );
    }
    eprintln!("changes seen by the other instances after {latencies:?}");
    // Each change travelled as its record and was applied in place: no instance read the whole
    // auth data again (before, every notice reloaded it: O(all tokens) per change).
    for instance in &instances {
        assert_eq!(instance.store().reloads(), 0);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revocation_is_applied_everywhere_within_100_ms_without_a_reload() {
    let cluster = PgCluster::start();
    let url = cluster.create_database("revocation");
    let mut instances = Vec::new();
    for _ in 0..3 {
        let storage = Arc::new(PgStorage::connect(&url).await.unwrap());
        instances.push(AuthManager::builder(storage).build().await.unwrap());
    }
    let user = instances[0]
        .create_user(Some("Shared".into()), vec!["system-admin".into()], false)
        .await
        .unwrap();
    let mut tokens = Vec::new();
    for i in 0..30 {
        let maker = &instances[i % 3];
        seen_within("the user", || maker.user(&user.id).is_some()).await;
        let token = maker
            .create_refresh_token(
                &user.id,
                NewRefreshToken {
                    client_id: Some(format!("http://client-{i}/")),
                    ..Default::default()
                },
            )
            .await
            .unwrap();
        tokens.push(token);
    }
    for instance in &instances {
        for token in &tokens {
            seen_within("a token", || instance.refresh_token(&token.id).is_some()).await;
        }
    }
    for (i, victim) in tokens.iter().enumerate().step_by(7) {
        let access = instances[(i + 1) % 3]
            .create_access_token(&victim.id, None)
            .await
            .unwrap();
        instances[i % 3]
            .remove_refresh_token(&victim.id)
            .await
            .unwrap();
        let revoked_at = std::time::Instant::now();
        for instance in &instances {
            while instance.validate_access_token(&access).is_some() {
                assert!(
                    revoked_at.elapsed() < std::time::Duration::from_millis(100),
                    "a revoked token's access token still accepted after 100 ms"
                );
                tokio::time::sleep(std::time::Duration::from_millis(1)).await;
            }
        }
    }
    for instance in &instances {
        assert_eq!(instance.store().reloads(), 0);
        let live = instance.store().read(|d| d.tokens.len());
        assert_eq!(live, tokens.len() - tokens.iter().step_by(7).count());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_instances_creating_the_first_user_at_once_make_one_owner() {
    let cluster = PgCluster::start();
    let url = cluster.create_database("owners");
    let a = instance(&url).await;
    let b = instance(&url).await;
    // Both see no user yet, so each would make its user the owner.
    let (made_a, made_b) = tokio::join!(
        a.create_user(Some("A".into()), vec!["system-admin".into()], false),
        b.create_user(Some("B".into()), vec!["system-admin".into()], false)
    );
    let made: Vec<_> = [made_a, made_b].into_iter().flatten().collect();
    assert!(!made.is_empty());
    let owners = |m: &AuthManager| {
        m.store()
            .read(|d| d.users.values().filter(|u| u.is_owner).count())
    };
    for m in [&a, &b] {
        seen_within("every user made", || {
            made.iter().all(|u| m.user(&u.id).is_some())
        })
        .await;
        assert_eq!(owners(m), 1, "exactly one owner");
    }
    let third = instance(&url).await;
    assert_eq!(owners(&third), 1, "exactly one owner in the database");
    assert_eq!(third.store().read(|d| d.users.len()), made.len());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_listener_connection_comes_back_and_catches_up_on_missed_changes() {
    let cluster = PgCluster::start();
    let url = cluster.create_database("listener");
    let a = instance(&url).await;
    let b = instance(&url).await;
    let (admin, connection) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(connection);
    // Cut every LISTENing connection, as a database restart or a network cut would, and change
    // the data at once: the notice of this change goes to nobody.
    let cut = admin
        .execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity
             WHERE query LIKE 'LISTEN %' AND pid <> pg_backend_pid()",
            &[],
        )
        .await
        .unwrap();
    assert_eq!(cut, 2, "both instances' listeners");
    let missed = a
        .create_user(Some("Made while B was deaf".into()), vec![], false)
        .await
        .unwrap();
    // B reconnects and reads its data again; later changes travel as notices once more.
    seen_within("a change made while the listener was down", || {
        b.user(&missed.id).is_some()
    })
    .await;
    let later = a
        .create_user(Some("Made after".into()), vec![], false)
        .await
        .unwrap();
    seen_within("a change after the reconnection", || {
        b.user(&later.id).is_some()
    })
    .await;
    // Before, the listener ended for good: B never saw either user.
}
