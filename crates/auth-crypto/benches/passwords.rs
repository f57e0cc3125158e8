//! Raw password hashing cost: argon2id with OWASP's parameters (what hass-auth writes) and
//! Home Assistant's bcrypt at cost 12 (what an existing HA store holds). The login-flow benches
//! of auth-host show the same costs through a whole sign-in.

use auth_crypto::{PasswordPolicy, ha_bcrypt_hash, hash_password, verify_password};
use criterion::{Criterion, criterion_group, criterion_main};

fn bench(c: &mut Criterion) {
    let policy = PasswordPolicy::owasp();
    let argon2 = hash_password("correct horse", &policy).expect("hash");
    let bcrypt = ha_bcrypt_hash("correct horse", 12).expect("hash");
    let mut group = c.benchmark_group("password");
    group.sample_size(10);
    group.bench_function("argon2id_owasp/hash", |b| {
        b.iter(|| hash_password("correct horse", &policy).expect("hash"))
    });
    group.bench_function("argon2id_owasp/verify", |b| {
        b.iter(|| assert!(verify_password("correct horse", &argon2).expect("verify")))
    });
    group.bench_function("bcrypt_12/verify", |b| {
        b.iter(|| assert!(verify_password("correct horse", &bcrypt).expect("verify")))
    });
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
