//! Home Assistant's store documents <-> rows. `auth` is split into users, groups, credentials and
//! refresh tokens; `auth_provider.homeassistant` into provider passwords; `auth_module.<m>` with a
//! `users` map into MFA enrolments; `onboarding` into steps. Any other store (or a document whose
//! shape is not the expected one) is kept whole in `documents`. Loading rebuilds the document with
//! Home Assistant's key order, so `export` writes what Home Assistant reads.

use auth_core::StoredDocument;
use serde_json::{Map, Value, json};
use tokio_postgres::types::{Json, ToSql};
use tokio_postgres::{Client, Error, Transaction};

use crate::prepared::Prepared;

const AUTH: &str = "auth";
const PASSWORDS: &str = "auth_provider.homeassistant";
const ONBOARDING: &str = "onboarding";
const MFA_PREFIX: &str = "auth_module.";
/// Per-user stores kept in `user_documents`, one row per user.
const USER_DOCUMENTS: [&str; 2] = ["hass_auth.recovery_codes", "hass_auth.sign_in_history"];

/// `(version, minor_version, data)` of store `key`, or `None` when it was never saved.
pub async fn load(client: &Client, key: &str) -> Result<Option<(u32, u32, Value)>, Error> {
    let Some(row) = client
        .query_opt(
            "SELECT version, minor_version FROM stores WHERE key = $1",
            &[&key],
        )
        .await?
    else {
        return Ok(None);
    };
    let version = row.get::<_, i32>(0).unsigned_abs();
    let minor = row.get::<_, i32>(1).unsigned_abs();
    let whole = client
        .query_opt("SELECT data FROM documents WHERE key = $1", &[&key])
        .await?;
    if let Some(row) = whole {
        let Json(data): Json<Value> = row.get(0);
        return Ok(Some((version, minor, data)));
    }
    let data = match key {
        AUTH => load_auth(client).await?,
        PASSWORDS => {
            let users: Vec<Value> = client
                .query(
                    "SELECT username, password FROM provider_passwords ORDER BY pos",
                    &[],
                )
                .await?
                .iter()
                .map(|r| {
                    json!({"username": r.get::<_, String>(0), "password": r.get::<_, String>(1)})
                })
                .collect();
            json!({ "users": users })
        }
        ONBOARDING => {
            let done: Vec<String> = client
                .query("SELECT step FROM onboarding_steps ORDER BY pos", &[])
                .await?
                .iter()
                .map(|r| r.get(0))
                .collect();
            json!({ "done": done })
        }
        _ => match users_table(key) {
            Some((table, column, owner)) => {
                let mut users = Map::new();
                for r in client
                    .query(
                        &format!(
                            "SELECT user_id, data FROM {table} WHERE {column} = $1 ORDER BY pos"
                        ),
                        &[&owner],
                    )
                    .await?
                {
                    let Json(data): Json<Value> = r.get(1);
                    users.insert(r.get(0), data);
                }
                json!({ "users": users })
            }
            None => Value::Object(Map::new()),
        },
    };
    Ok(Some((version, minor, data)))
}

async fn load_auth(client: &Client) -> Result<Value, Error> {
    let users: Vec<Value> = client
        .query(
            "SELECT id, group_ids, is_owner, is_active, name, system_generated, local_only
             FROM auth_users ORDER BY pos",
            &[],
        )
        .await?
        .iter()
        .map(|r| {
            json!({
                "id": r.get::<_, String>(0),
                "group_ids": r.get::<_, Vec<String>>(1),
                "is_owner": r.get::<_, bool>(2),
                "is_active": r.get::<_, bool>(3),
                "name": r.get::<_, Option<String>>(4),
                "system_generated": r.get::<_, bool>(5),
                "local_only": r.get::<_, bool>(6),
            })
        })
        .collect();
    let groups: Vec<Value> = client
        .query("SELECT id, name, policy FROM auth_groups ORDER BY pos", &[])
        .await?
        .iter()
        .map(|r| {
            let id: String = r.get(0);
            let name: Option<String> = r.get(1);
            match r.get::<_, Option<Json<Value>>>(2) {
                Some(Json(policy)) => json!({"id": id, "name": name, "policy": policy}),
                None => json!({"id": id, "name": name}),
            }
        })
        .collect();
    let credentials: Vec<Value> = client
        .query(
            "SELECT id, user_id, auth_provider_type, auth_provider_id, data
             FROM auth_credentials ORDER BY pos",
            &[],
        )
        .await?
        .iter()
        .map(|r| {
            let Json(data): Json<Value> = r.get(4);
            json!({
                "id": r.get::<_, String>(0),
                "user_id": r.get::<_, String>(1),
                "auth_provider_type": r.get::<_, String>(2),
                "auth_provider_id": r.get::<_, Option<String>>(3),
                "data": data,
            })
        })
        .collect();
    let tokens: Vec<Value> = client
        .query(
            "SELECT id, user_id, client_id, client_name, client_icon, token_type, created_at,
                    access_token_expiration, token, jwt_key, last_used_at, last_used_ip,
                    expire_at, credential_id, version
             FROM refresh_tokens ORDER BY pos",
            &[],
        )
        .await?
        .iter()
        .map(|r| {
            let s = |i: usize| r.get::<_, Option<String>>(i);
            json!({
                "id": r.get::<_, String>(0),
                "user_id": r.get::<_, String>(1),
                "client_id": s(2),
                "client_name": s(3),
                "client_icon": s(4),
                "token_type": r.get::<_, String>(5),
                "created_at": r.get::<_, String>(6),
                "access_token_expiration": r.get::<_, f64>(7),
                "token": r.get::<_, String>(8),
                "jwt_key": r.get::<_, String>(9),
                "last_used_at": s(10),
                "last_used_ip": s(11),
                "expire_at": r.get::<_, Option<f64>>(12),
                "credential_id": s(13),
                "version": s(14),
            })
        })
        .collect();
    Ok(
        json!({"users": users, "groups": groups, "credentials": credentials, "refresh_tokens": tokens}),
    )
}

/// The table of a per-user store: `(table, owner column, owner value)`.
fn users_table(key: &str) -> Option<(&'static str, &'static str, &str)> {
    if let Some(module) = key.strip_prefix(MFA_PREFIX) {
        return Some(("mfa_enrolments", "module", module));
    }
    USER_DOCUMENTS
        .contains(&key)
        .then_some(("user_documents", "key", key))
}

/// Saves store `doc.key` as `doc` (inside the caller's transaction). `baseline` is the data this
/// process last read or wrote for the key (`Some(Null)`: it read "no such store"): a store kept
/// in rows then writes only the rows that differ from it, so that instances changing different
/// rows never undo each other, and a row another instance added meanwhile is never dropped.
/// Without a baseline (an import) every row is replaced.
pub async fn save(
    tx: &Transaction<'_>,
    doc: &StoredDocument,
    baseline: Option<&Value>,
) -> Result<(), Error> {
    let version = i32::try_from(doc.version).unwrap_or(i32::MAX);
    let minor = i32::try_from(doc.minor_version).unwrap_or(i32::MAX);
    tx.execute(
        "INSERT INTO stores (key, version, minor_version) VALUES ($1, $2, $3)
         ON CONFLICT (key) DO UPDATE SET version = $2, minor_version = $3",
        &[&doc.key, &version, &minor],
    )
    .await?;
    let was_whole = tx
        .execute("DELETE FROM documents WHERE key = $1", &[&doc.key])
        .await?
        > 0;
    // The rows do not hold the baseline when the store was kept whole: replace them all.
    let baseline = baseline.filter(|_| !was_whole);
    let fits = match doc.key.as_str() {
        AUTH => save_auth(tx, &doc.data).await?,
        PASSWORDS => save_passwords(tx, &doc.data, baseline).await?,
        ONBOARDING => save_onboarding(tx, &doc.data, baseline).await?,
        key => match users_table(key) {
            Some(table) => save_users(tx, table, &doc.data, baseline).await?,
            None => false,
        },
    };
    if !fits {
        // Not the shape the tables hold: keep the document whole rather than lose a field.
        tx.execute(
            "INSERT INTO documents (key, data) VALUES ($1, $2)",
            &[&doc.key, &Json(&doc.data)],
        )
        .await?;
    }
    Ok(())
}

async fn save_auth(tx: &Transaction<'_>, data: &Value) -> Result<bool, Error> {
    let (Some(users), Some(groups), Some(credentials), Some(tokens)) = (
        data.get("users").and_then(Value::as_array),
        data.get("groups").and_then(Value::as_array),
        data.get("credentials").and_then(Value::as_array),
        data.get("refresh_tokens").and_then(Value::as_array),
    ) else {
        return Ok(false);
    };
    tx.batch_execute(
        "DELETE FROM auth_users; DELETE FROM auth_groups; DELETE FROM auth_credentials;
         DELETE FROM refresh_tokens;",
    )
    .await?;
    replace_rest(tx, users, groups, credentials).await?;
    // Prepared once for the whole list (an import may hold 100k tokens).
    let mut prepared = Prepared::default();
    for token in tokens {
        upsert_token(tx, &mut prepared, token).await?;
    }
    Ok(true)
}

/// Applies one change record of the auth store (see `auth_core::store::apply_journal`; a
/// `rows` diff from `auth_core::store::rest_rows_diff`). Returns the record as applied: without
/// the tokens another instance revoked meanwhile (what other instances are told).
pub async fn apply_record(
    tx: &Transaction<'_>,
    prepared: &mut Prepared,
    record: &Value,
) -> Result<Value, Error> {
    let version = auth_core::store::STORAGE_VERSION.cast_signed();
    let minor = auth_core::store::STORAGE_MINOR_VERSION.cast_signed();
    let statement = prepared
        .get(
            tx,
            "INSERT INTO stores (key, version, minor_version) VALUES ($1, $2, $3)
             ON CONFLICT (key) DO NOTHING",
        )
        .await?;
    tx.execute(&statement, &[&AUTH, &version, &minor]).await?;
    if let Some(rest) = record.get("rest") {
        let list = |k: &str| {
            rest.get(k)
                .and_then(Value::as_array)
                .map(Vec::as_slice)
                .unwrap_or_default()
        };
        tx.batch_execute(
            "DELETE FROM auth_users; DELETE FROM auth_groups; DELETE FROM auth_credentials;",
        )
        .await?;
        replace_rest(tx, list("users"), list("groups"), list("credentials")).await?;
    }
    if let Some(rows) = record.get("rows") {
        apply_rows(tx, rows).await?;
    }
    let mut put: Vec<&str> = Vec::new();
    for token in record
        .get("put")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        upsert_token(tx, prepared, token).await?;
        put.extend(token.get("id").and_then(Value::as_str));
    }
    if !put.is_empty() {
        // An upsert that waited for another instance's revocation to commit was checked against
        // revoked_tokens before that commit and may have put the row back; this statement sees
        // the revocation (a new snapshot) and takes the token out again.
        let statement = prepared
            .get(
                tx,
                "DELETE FROM refresh_tokens r USING revoked_tokens v
                 WHERE r.id = v.id AND r.id = ANY($1) RETURNING r.id",
            )
            .await?;
        let gone: Vec<String> = tx
            .query(&statement, &[&put])
            .await?
            .iter()
            .map(|r| r.get(0))
            .collect();
        if !gone.is_empty() {
            let mut applied = record.clone();
            if let Some(Value::Array(tokens)) = applied.get_mut("put") {
                tokens.retain(|t| {
                    !t.get("id")
                        .and_then(Value::as_str)
                        .is_some_and(|id| gone.iter().any(|g| g == id))
                });
            }
            return finish_record(tx, prepared, &applied)
                .await
                .map(|()| applied);
        }
    }
    finish_record(tx, prepared, record)
        .await
        .map(|()| record.clone())
}

/// The `del` part of a record: the tokens are revoked for good (see `revoked_tokens`).
async fn finish_record(
    tx: &Transaction<'_>,
    prepared: &mut Prepared,
    record: &Value,
) -> Result<(), Error> {
    let del: Vec<&str> = record
        .get("del")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .collect();
    if !del.is_empty() {
        let revoke = prepared
            .get(
                tx,
                "INSERT INTO revoked_tokens (id) SELECT unnest($1::text[]) ON CONFLICT DO NOTHING",
            )
            .await?;
        tx.execute(&revoke, &[&del]).await?;
        let delete = prepared
            .get(tx, "DELETE FROM refresh_tokens WHERE id = ANY($1)")
            .await?;
        tx.execute(&delete, &[&del]).await?;
    }
    Ok(())
}

/// Applies a `rows` diff: users, groups and credentials added or changed are upserted by id,
/// removed ones deleted; rows the diff does not name are left alone.
async fn apply_rows(tx: &Transaction<'_>, rows: &Value) -> Result<(), Error> {
    let part = |list: &str, k: &str| -> Vec<Value> {
        rows.get(list)
            .and_then(|c| c.get(k))
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default()
    };
    let ids = |list: &str| -> Vec<String> {
        part(list, "del")
            .iter()
            .filter_map(|v| v.as_str().map(str::to_owned))
            .collect()
    };
    let (users, groups, credentials) = (
        part("users", "put"),
        part("groups", "put"),
        part("credentials", "put"),
    );
    for (table, list) in [
        ("auth_credentials", "credentials"),
        ("auth_users", "users"),
        ("auth_groups", "groups"),
    ] {
        let gone = ids(list);
        if !gone.is_empty() {
            tx.execute(&format!("DELETE FROM {table} WHERE id = ANY($1)"), &[&gone])
                .await?;
        }
    }
    replace_rest(tx, &users, &groups, &credentials).await
}

/// Writes users, groups and credentials in list order: new rows get the next `pos`, rows that
/// exist are updated in place (keeping theirs).
async fn replace_rest(
    tx: &Transaction<'_>,
    users: &[Value],
    groups: &[Value],
    credentials: &[Value],
) -> Result<(), Error> {
    for u in users {
        let group_ids: Vec<&str> = u
            .get("group_ids")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .collect();
        let flag = |k: &str| u.get(k).and_then(Value::as_bool).unwrap_or(false);
        tx.execute(
            "INSERT INTO auth_users (id, name, is_owner, is_active, system_generated, local_only, group_ids)
             VALUES ($1, $2, $3, $4, $5, $6, $7)
             ON CONFLICT (id) DO UPDATE SET name = $2, is_owner = $3, is_active = $4,
                system_generated = $5, local_only = $6, group_ids = $7",
            &[
                &text(u, "id"),
                &text(u, "name"),
                &flag("is_owner"),
                &flag("is_active"),
                &flag("system_generated"),
                &flag("local_only"),
                &group_ids,
            ],
        )
        .await?;
    }
    for g in groups {
        let policy = g.get("policy").map(Json);
        tx.execute(
            "INSERT INTO auth_groups (id, name, policy) VALUES ($1, $2, $3)
             ON CONFLICT (id) DO UPDATE SET name = $2, policy = $3",
            &[&text(g, "id"), &text(g, "name"), &policy],
        )
        .await?;
    }
    for c in credentials {
        let data = c.get("data").cloned().unwrap_or_else(|| json!({}));
        tx.execute(
            "INSERT INTO auth_credentials (id, user_id, auth_provider_type, auth_provider_id, data)
             VALUES ($1, $2, $3, $4, $5)
             ON CONFLICT (id) DO UPDATE SET user_id = $2, auth_provider_type = $3,
                auth_provider_id = $4, data = $5",
            &[
                &text(c, "id"),
                &text(c, "user_id"),
                &text(c, "auth_provider_type"),
                &text(c, "auth_provider_id"),
                &Json(data),
            ],
        )
        .await?;
    }
    Ok(())
}

async fn upsert_token(
    tx: &Transaction<'_>,
    prepared: &mut Prepared,
    t: &Value,
) -> Result<(), Error> {
    let number = |k: &str| t.get(k).and_then(Value::as_f64);
    let params: [&(dyn ToSql + Sync); 15] = [
        &text(t, "id"),
        &text(t, "user_id"),
        &text(t, "client_id"),
        &text(t, "client_name"),
        &text(t, "client_icon"),
        &text(t, "token_type"),
        &text(t, "created_at"),
        &number("access_token_expiration").unwrap_or(1800.0),
        &text(t, "token"),
        &text(t, "jwt_key"),
        &text(t, "last_used_at"),
        &text(t, "last_used_ip"),
        &number("expire_at"),
        &text(t, "credential_id"),
        &text(t, "version"),
    ];
    let statement = prepared
        .get(
            tx,
        "INSERT INTO refresh_tokens (id, user_id, client_id, client_name, client_icon, token_type,
            created_at, access_token_expiration, token, jwt_key, last_used_at, last_used_ip,
            expire_at, credential_id, version)
         SELECT $1::text, $2::text, $3::text, $4::text, $5::text, coalesce($6::text, 'normal'),
            coalesce($7::text, ''), $8::float8, coalesce($9::text, ''), coalesce($10::text, ''),
            $11::text, $12::text, $13::float8, $14::text, $15::text
         WHERE NOT EXISTS (SELECT 1 FROM revoked_tokens WHERE id = $1::text)
         ON CONFLICT (id) DO UPDATE SET user_id = $2, client_id = $3, client_name = $4,
            client_icon = $5, token_type = coalesce($6, 'normal'), created_at = coalesce($7, ''),
            access_token_expiration = $8, token = coalesce($9, ''), jwt_key = coalesce($10, ''),
            last_used_at = $11, last_used_ip = $12, expire_at = $13, credential_id = $14,
            version = $15",
        )
        .await?;
    tx.execute(&statement, &params).await?;
    Ok(())
}

/// `data.users` of a provider-passwords document, by username; `None` when misshapen.
fn password_rows(data: &Value) -> Option<Vec<(&str, &str)>> {
    let users = data.get("users").and_then(Value::as_array)?;
    if data.as_object().is_none_or(|o| o.len() != 1) {
        return None;
    }
    users
        .iter()
        .map(|u| {
            let o = u.as_object().filter(|o| o.len() == 2)?;
            Some((o.get("username")?.as_str()?, o.get("password")?.as_str()?))
        })
        .collect()
}

async fn save_passwords(
    tx: &Transaction<'_>,
    data: &Value,
    baseline: Option<&Value>,
) -> Result<bool, Error> {
    let Some(users) = password_rows(data) else {
        return Ok(false);
    };
    let base: Option<Vec<(&str, &str)>> = match baseline {
        Some(Value::Null) => Some(Vec::new()),
        Some(base) => password_rows(base),
        None => None,
    };
    let Some(base) = base else {
        tx.execute("DELETE FROM provider_passwords", &[]).await?;
        for (username, password) in users {
            tx.execute(
                "INSERT INTO provider_passwords (username, password) VALUES ($1, $2)",
                &[&username, &password],
            )
            .await?;
        }
        return Ok(true);
    };
    for (username, password) in &users {
        match base.iter().find(|(u, _)| u == username) {
            // New here: an instance that added the same username meanwhile makes this fail
            // (a unique violation, reported as a conflict), never a second user of that name.
            None => {
                tx.execute(
                    "INSERT INTO provider_passwords (username, password) VALUES ($1, $2)",
                    &[username, password],
                )
                .await?;
            }
            Some((_, old)) if old != password => {
                tx.execute(
                    "UPDATE provider_passwords SET password = $2 WHERE username = $1",
                    &[username, password],
                )
                .await?;
            }
            Some(_) => {}
        }
    }
    let gone: Vec<&str> = base
        .iter()
        .filter(|(u, _)| !users.iter().any(|(n, _)| n == u))
        .map(|(u, _)| *u)
        .collect();
    if !gone.is_empty() {
        tx.execute(
            "DELETE FROM provider_passwords WHERE username = ANY($1)",
            &[&gone],
        )
        .await?;
    }
    Ok(true)
}

/// `data.done` of an onboarding document; `None` when misshapen.
fn onboarding_steps(data: &Value) -> Option<Vec<&str>> {
    let done = data.get("done").and_then(Value::as_array)?;
    if data.as_object().is_some_and(|o| o.len() != 1) {
        return None;
    }
    done.iter().map(Value::as_str).collect()
}

async fn save_onboarding(
    tx: &Transaction<'_>,
    data: &Value,
    baseline: Option<&Value>,
) -> Result<bool, Error> {
    let Some(done) = onboarding_steps(data) else {
        return Ok(false);
    };
    let base = match baseline {
        Some(Value::Null) => Some(Vec::new()),
        Some(base) => onboarding_steps(base),
        None => None,
    };
    match &base {
        None => {
            tx.execute("DELETE FROM onboarding_steps", &[]).await?;
        }
        Some(base) => {
            let gone: Vec<&str> = base.iter().copied().filter(|s| !done.contains(s)).collect();
            if !gone.is_empty() {
                tx.execute(
                    "DELETE FROM onboarding_steps WHERE step = ANY($1)",
                    &[&gone],
                )
                .await?;
            }
        }
    }
    for step in done {
        tx.execute(
            "INSERT INTO onboarding_steps (step) VALUES ($1) ON CONFLICT DO NOTHING",
            &[&step],
        )
        .await?;
    }
    Ok(true)
}

/// `data.users` of a per-user document; `None` when misshapen.
fn users_map(data: &Value) -> Option<&Map<String, Value>> {
    let users = data.get("users").and_then(Value::as_object)?;
    data.as_object()
        .is_some_and(|o| o.len() == 1)
        .then_some(users)
}

async fn save_users(
    tx: &Transaction<'_>,
    (table, column, owner): (&str, &str, &str),
    data: &Value,
    baseline: Option<&Value>,
) -> Result<bool, Error> {
    let Some(users) = users_map(data) else {
        return Ok(false);
    };
    let empty = Map::new();
    let base = match baseline {
        Some(Value::Null) => Some(&empty),
        Some(base) => users_map(base),
        None => None,
    };
    let upsert = format!(
        "INSERT INTO {table} ({column}, user_id, data) VALUES ($1, $2, $3)
         ON CONFLICT ({column}, user_id) DO UPDATE SET data = $3"
    );
    let Some(base) = base else {
        tx.execute(
            &format!("DELETE FROM {table} WHERE {column} = $1"),
            &[&owner],
        )
        .await?;
        for (user_id, row) in users {
            tx.execute(&upsert, &[&owner, user_id, &Json(row)]).await?;
        }
        return Ok(true);
    };
    for (user_id, row) in users {
        if base.get(user_id) != Some(row) {
            tx.execute(&upsert, &[&owner, user_id, &Json(row)]).await?;
        }
    }
    let gone: Vec<&String> = base.keys().filter(|u| !users.contains_key(*u)).collect();
    if !gone.is_empty() {
        tx.execute(
            &format!("DELETE FROM {table} WHERE {column} = $1 AND user_id = ANY($2)"),
            &[&owner, &gone],
        )
        .await?;
    }
    Ok(true)
}

fn text<'a>(v: &'a Value, key: &str) -> Option<&'a str> {
    v.get(key).and_then(Value::as_str)
}
