//! Hot paths: access-token validation, refresh-token lookup by value and a token's removal, with
//! 1k / 10k / 100k stored tokens, and issuing plus redeeming an authorization code with an empty
//! and a nearly full code table. All are indexed, so the figures should stay flat as the store grows.

use std::sync::Arc;

use auth_core::{AuthManager, MemoryStorage, NewRefreshToken};
use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};

/// A manager holding `n` normal refresh tokens spread over 100 users.
fn populated(rt: &tokio::runtime::Runtime, n: usize) -> (AuthManager, String, String) {
    rt.block_on(async {
        let manager = AuthManager::builder(Arc::new(MemoryStorage::new()))
            .build()
            .await
            .expect("manager");
        let mut users = Vec::new();
        for i in 0..100 {
            users.push(
                manager
                    .create_user(Some(format!("user {i}")), vec![], false)
                    .await
                    .expect("user")
                    .id,
            );
        }
        // One real token, then synthetic ones inserted straight into the store: creating 100k
        // tokens one durable save at a time is not what is being measured.
        let first = manager
            .create_refresh_token(
                &users[0],
                NewRefreshToken {
                    client_id: Some("http://bench/".into()),
                    ..Default::default()
                },
            )
            .await
            .expect("token");
        let rng = manager.rng().clone();
        manager.store().write(|data| {
            for i in 1..n {
                let mut token = (*first).clone();
                token.id = auth_core::rng::new_uuid_hex(rng.as_ref());
                token.token = auth_core::rng::new_secret(rng.as_ref());
                token.jwt_key = auth_core::rng::new_secret(rng.as_ref());
                token.user_id = users[i % users.len()].clone();
                data.insert_token(token);
            }
        });
        let last = manager.refresh_token(&first.id).expect("stored");
        let jwt = manager
            .create_access_token(&last.id, None)
            .await
            .expect("jwt");
        (manager, jwt, last.token.clone())
    })
}

fn bench(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let mut validate = c.benchmark_group("validate_access_token");
    let mut setups = Vec::new();
    for n in [1_000usize, 10_000, 100_000] {
        setups.push((n, populated(&rt, n)));
    }
    for (n, (manager, jwt, _)) in &setups {
        validate.bench_with_input(BenchmarkId::from_parameter(n), jwt, |b, jwt| {
            b.iter(|| assert!(manager.validate_access_token(jwt).is_some()))
        });
    }
    validate.finish();
    let mut lookup = c.benchmark_group("refresh_token_by_value");
    for (n, (manager, _, value)) in &setups {
        lookup.bench_with_input(BenchmarkId::from_parameter(n), value, |b, value| {
            b.iter(|| assert!(manager.refresh_token_by_value(value).is_some()))
        });
    }
    lookup.finish();

    // Revocation's bookkeeping: the oldest token out of the store and back in (the worst case
    // for an order-keeping map that shifts every later entry). Flat as the store grows.
    let mut revoke = c.benchmark_group("remove_and_reinsert_oldest_token");
    for (n, (manager, _, _)) in &setups {
        revoke.bench_function(BenchmarkId::from_parameter(n), |b| {
            b.iter(|| {
                manager.store().write(|data| {
                    let user = data.users.keys().nth(1).cloned().expect("users");
                    let oldest = data.token_ids_of(&user).next().cloned().expect("a token");
                    let token = data.remove_token(&oldest).expect("stored");
                    data.insert_token((*token).clone());
                })
            })
        });
    }
    revoke.finish();

    let mut codes = c.benchmark_group("auth_code_issue_and_redeem");
    let now = time::OffsetDateTime::from_unix_timestamp(1_000_000).expect("valid time");
    let code = || auth_core::codes::AuthCode {
        client_id: "http://bench/".into(),
        created_at: now,
        credentials: auth_core::Credentials {
            id: "c".into(),
            auth_provider_type: "homeassistant".into(),
            auth_provider_id: None,
            data: Default::default(),
            is_new: false,
        },
        code_challenge: None,
        code_challenge_method: None,
    };
    let max = auth_core::codes::DEFAULT_MAX_CODES;
    for held in [0, max - 1] {
        let table = auth_core::codes::AuthCodes::new(max);
        for i in 0..held {
            table.insert(format!("held{i}"), code(), now);
        }
        let mut i = 0u64;
        codes.bench_function(BenchmarkId::from_parameter(held), |b| {
            b.iter(|| {
                i += 1;
                let value = format!("v{i}");
                table.insert(value.clone(), code(), now);
                assert!(table.take("http://bench/", &value, now).is_some());
            })
        });
    }
    codes.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
