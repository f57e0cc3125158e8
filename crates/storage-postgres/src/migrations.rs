//! Schema migrations: the `.sql` files under `migrations/`, applied in order, each in its own
//! transaction, recorded in `schema_version`. Instances starting at once take an advisory lock,
//! so each migration runs exactly once.

use auth_core::StorageError;
use tokio_postgres::Client;

/// Every migration this build knows: `(version, SQL)`, ascending.
pub const MIGRATIONS: &[(i32, &str)] = &[
    (1, include_str!("../migrations/0001_tables.sql")),
    (2, include_str!("../migrations/0002_revoked_tokens.sql")),
    (3, include_str!("../migrations/0003_row_changes.sql")),
];

/// Key of the advisory lock held while migrating ("hass-auth" in ASCII).
const LOCK_KEY: i64 = 0x6861_7373_2d61_7574;

/// Applies the migrations `client`'s database lacks. A database newer than this build is refused.
pub async fn apply(client: &mut Client, location: &str) -> Result<(), StorageError> {
    let fail = |e: tokio_postgres::Error| StorageError::Write {
        location: format!("{location} (schema migration)"),
        source: std::io::Error::other(e.to_string()),
    };
    let tx = client.transaction().await.map_err(fail)?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&LOCK_KEY])
        .await
        .map_err(fail)?;
    tx.batch_execute(
        "CREATE TABLE IF NOT EXISTS schema_version (
            version integer PRIMARY KEY,
            applied_at timestamptz NOT NULL DEFAULT now()
        )",
    )
    .await
    .map_err(fail)?;
    let current: i32 = tx
        .query_one("SELECT coalesce(max(version), 0) FROM schema_version", &[])
        .await
        .map_err(fail)?
        .get(0);
    let newest = MIGRATIONS.last().map_or(0, |(v, _)| *v);
    if current > newest {
        return Err(StorageError::UnsupportedVersion {
            location: format!("{location} (schema_version)"),
            found: current.unsigned_abs(),
            supported: newest.unsigned_abs(),
        });
    }
    for (version, sql) in MIGRATIONS.iter().filter(|(v, _)| *v > current) {
        tx.batch_execute(sql).await.map_err(fail)?;
        tx.execute(
            "INSERT INTO schema_version (version) VALUES ($1)",
            &[version],
        )
        .await
        .map_err(fail)?;
        tracing::info!(location, version, "applied a schema migration");
    }
    tx.commit().await.map_err(fail)
}
