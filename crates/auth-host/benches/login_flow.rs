//! The cost of a whole password sign-in (login flow start, then the credentials step, up to
//! the finished flow) per provider, built from YAML like the server does: `homeassistant` with
//! an argon2id (OWASP) password, with Home Assistant's bcrypt (cost 12) password, and for an
//! unknown username (a dummy check, so it costs the same), and `insecure_example`. The raw hash
//! costs are in auth-crypto's `passwords` bench.

use std::path::Path;
use std::sync::Arc;

use auth_core::{AuthManager, LoginContext, MemoryStorage};
use auth_host::{HostOptions, auth_manager_from_config, parse_config};
use criterion::{Criterion, criterion_group, criterion_main};
use serde_json::{Map, Value, json};

const CONFIG: &str = "homeassistant:
  auth_providers:
    - type: homeassistant
      rehash_legacy_hashes: false
    - type: insecure_example
      users:
        - username: example
          password: example-pass
";

fn manager(rt: &tokio::runtime::Runtime) -> AuthManager {
    rt.block_on(async {
        let storage = Arc::new(MemoryStorage::new());
        // Home Assistant's own provider file: user `owner`, bcrypt cost 12.
        let ha_file =
            auth_testkit::fixtures_dir().join("ha-2026.2.3/.storage/auth_provider.homeassistant");
        storage.put_raw(
            "auth_provider.homeassistant",
            std::fs::read(ha_file).expect("fixture"),
        );
        let config = parse_config(CONFIG, Path::new("configuration.yaml")).expect("config");
        let manager = auth_manager_from_config(&config, storage, HostOptions::default())
            .await
            .expect("manager");
        let provider = manager
            .auth_provider("homeassistant", None)
            .expect("configured");
        provider
            .password_admin()
            .expect("the homeassistant provider keeps passwords")
            .add_auth("modern", "modern-pass")
            .await
            .expect("argon2id user");
        manager
    })
}

/// Runs one login flow to its end; whether it finished with credentials.
async fn sign_in(manager: &AuthManager, handler: &str, username: &str, password: &str) -> bool {
    let started = manager
        .start_login_flow(handler, None, LoginContext::default())
        .await
        .expect("starts")
        .expect("provider exists");
    let input: Map<String, Value> = json!({"username": username, "password": password})
        .as_object()
        .cloned()
        .expect("an object");
    let done = manager
        .login_flows()
        .configure(&started.flow_id, Some(input))
        .await
        .expect("step");
    let finished = done.result.type_name() == "create_entry";
    if !finished {
        let _ = manager.login_flows().abort(&started.flow_id);
    }
    finished
}

fn bench(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("runtime");
    let manager = manager(&rt);
    let mut group = c.benchmark_group("login_flow");
    group.sample_size(10);
    let cases = [
        (
            "homeassistant_argon2id",
            "homeassistant",
            "modern",
            "modern-pass",
            true,
        ),
        (
            "homeassistant_bcrypt_12",
            "homeassistant",
            "owner",
            "owner-pass",
            true,
        ),
        (
            "homeassistant_unknown_user",
            "homeassistant",
            "nobody",
            "x",
            false,
        ),
        (
            "insecure_example",
            "insecure_example",
            "example",
            "example-pass",
            true,
        ),
    ];
    for (name, handler, username, password, expected) in cases {
        group.bench_function(name, |b| {
            b.iter(|| {
                let finished = rt.block_on(sign_in(&manager, handler, username, password));
                assert_eq!(finished, expected);
            })
        });
    }
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(std::time::Duration::from_millis(500))
        .measurement_time(std::time::Duration::from_secs(3));
    targets = bench
}
criterion_main!(benches);
