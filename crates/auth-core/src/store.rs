//! `.storage/auth`: the persisted users, groups, credentials and refresh tokens, with indexes.
//!
//! The on-disk format is Home Assistant's (`spec/storage.md` §2.1), key order included, so a file
//! written here loads in Home Assistant and vice versa. In memory every lookup that sits on a hot
//! path is indexed: refresh tokens by id and by secret value, credentials by id.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration as StdDuration;

use indexmap::IndexMap;
use parking_lot::{Mutex, RwLock};
use serde_json::{Map, Value, json};
use time::Duration;

use crate::clock::SharedClock;
use crate::journal::Journal;
use crate::models::{Credentials, Group, RefreshToken, TokenType, User};
use crate::permissions::Policy;
use crate::storage::{
    SaveOptions, Storage, StorageError, StoreChange, StoredDocument, check_version,
};
use crate::timefmt::{parse_iso, to_iso};

/// Store key of the auth data.
pub const STORAGE_KEY: &str = "auth";
/// Major version of the auth data this build reads and writes.
pub const STORAGE_VERSION: u32 = 1;
/// Minor version written.
pub const STORAGE_MINOR_VERSION: u32 = 1;
/// Delay of a debounced save after a usage-metadata change.
pub const SAVE_DELAY: StdDuration = StdDuration::from_secs(1);
/// Delay of the save scheduled right after loading (persists soft migrations).
pub const INITIAL_LOAD_SAVE_DELAY: StdDuration = StdDuration::from_secs(300);

/// In-memory auth data plus its indexes.
#[derive(Debug, Default, Clone)]
pub struct AuthData {
    /// Users in creation order (credentials inside).
    pub users: IndexMap<String, User>,
    /// Groups in order (the three system groups always present).
    pub groups: IndexMap<String, Group>,
    /// Refresh tokens by id (in no particular order: a removal swaps the last entry into its
    /// place, O(1); [`AuthData::token_ids_of`] gives each user's in creation order).
    pub tokens: IndexMap<String, Arc<RefreshToken>>,
    /// Refresh token id by secret value.
    token_by_value: HashMap<String, String>,
    /// Owning user id by credential id.
    cred_owner: HashMap<String, String>,
    /// Ids of the credentials whose data `username` is the key, in the order they were linked.
    creds_by_username: HashMap<String, Vec<String>>,
    /// Token ids per user, by their creation sequence number.
    user_tokens: HashMap<String, BTreeMap<u64, String>>,
    /// Creation sequence number of every token (its key in `user_tokens`).
    token_seq: HashMap<String, u64>,
    /// The sequence number the next inserted token gets.
    next_seq: u64,
    /// Ids of tokens added, replaced or removed since the last journal record.
    changed_tokens: HashSet<String>,
}

impl AuthData {
    /// Fresh data: no users, the three system groups.
    pub fn empty() -> Self {
        let mut data = AuthData::default();
        for group in Group::system_groups() {
            data.groups.insert(group.id.clone(), group);
        }
        data
    }

    /// Adds a token and indexes it (a token of the same id is replaced, and goes last).
    pub fn insert_token(&mut self, token: RefreshToken) {
        self.unindex_token(&token.id);
        self.token_by_value
            .insert(token.token.clone(), token.id.clone());
        let seq = self.next_seq;
        self.next_seq += 1;
        self.token_seq.insert(token.id.clone(), seq);
        self.user_tokens
            .entry(token.user_id.clone())
            .or_default()
            .insert(seq, token.id.clone());
        self.changed_tokens.insert(token.id.clone());
        self.tokens.insert(token.id.clone(), Arc::new(token));
    }

    /// Drops token `id` from the indexes and the map: O(1) in the number of tokens
    /// (O(log n) in its user's).
    fn unindex_token(&mut self, id: &str) -> Option<Arc<RefreshToken>> {
        let token = self.tokens.swap_remove(id)?;
        self.token_by_value.remove(&token.token);
        if let Some(seq) = self.token_seq.remove(id)
            && let Some(ids) = self.user_tokens.get_mut(&token.user_id)
        {
            ids.remove(&seq);
            if ids.is_empty() {
                self.user_tokens.remove(&token.user_id);
            }
        }
        Some(token)
    }

    /// Removes a token and its index entries.
    pub fn remove_token(&mut self, id: &str) -> Option<Arc<RefreshToken>> {
        let token = self.unindex_token(id)?;
        self.changed_tokens.insert(id.to_owned());
        Some(token)
    }

    /// Replaces a token (same id and secret) after a metadata change.
    pub fn replace_token(&mut self, token: RefreshToken) {
        if let Some(slot) = self.tokens.get_mut(&token.id) {
            self.changed_tokens.insert(token.id.clone());
            *slot = Arc::new(token);
        }
    }

    /// Takes the ids of tokens changed since the last call (what the next journal record holds).
    pub fn take_changed_tokens(&mut self) -> HashSet<String> {
        std::mem::take(&mut self.changed_tokens)
    }

    /// Marks tokens changed again (their journal record could not be written).
    pub fn mark_tokens_changed(&mut self, ids: impl IntoIterator<Item = String>) {
        self.changed_tokens.extend(ids);
    }

    /// The token whose secret is `value` (indexed; the match is confirmed in constant time).
    pub fn token_by_value(&self, value: &str) -> Option<&Arc<RefreshToken>> {
        let id = self.token_by_value.get(value)?;
        let token = self.tokens.get(id)?;
        auth_crypto::constant_time_eq(token.token.as_bytes(), value.as_bytes()).then_some(token)
    }

    /// Ids of a user's tokens, in creation order.
    pub fn token_ids_of(&self, user_id: &str) -> impl Iterator<Item = &String> + '_ {
        self.user_tokens
            .get(user_id)
            .into_iter()
            .flat_map(BTreeMap::values)
    }

    /// The user owning credential `cred_id`.
    pub fn owner_of_credential(&self, cred_id: &str) -> Option<&User> {
        self.cred_owner.get(cred_id).and_then(|u| self.users.get(u))
    }

    /// Links a credential to a user (indexing it).
    pub fn attach_credential(&mut self, user_id: &str, mut cred: Credentials) -> bool {
        let Some(user) = self.users.get_mut(user_id) else {
            return false;
        };
        cred.is_new = false;
        let (id, name) = (
            cred.id.clone(),
            cred.data_str("username").map(str::to_owned),
        );
        user.credentials.push(cred);
        self.cred_owner.insert(id.clone(), user_id.to_owned());
        if let Some(name) = name {
            self.index_username(&name, &id);
        }
        true
    }

    /// Adds credential `cred_id` under `name` to the username index.
    fn index_username(&mut self, name: &str, cred_id: &str) {
        self.creds_by_username
            .entry(name.to_owned())
            .or_default()
            .push(cred_id.to_owned());
    }

    /// Drops credential `cred_id` from the username index's entry for `name`.
    fn unindex_username(&mut self, name: &str, cred_id: &str) {
        if let Some(ids) = self.creds_by_username.get_mut(name) {
            ids.retain(|id| id != cred_id);
            if ids.is_empty() {
                self.creds_by_username.remove(name);
            }
        }
    }

    /// Unlinks a credential; returns it and its former owner's id.
    pub fn detach_credential(&mut self, cred_id: &str) -> Option<(String, Credentials)> {
        let user_id = self.cred_owner.remove(cred_id)?;
        let user = self.users.get_mut(&user_id)?;
        let pos = user.credentials.iter().position(|c| c.id == cred_id)?;
        let cred = user.credentials.remove(pos);
        if let Some(name) = cred.data_str("username") {
            self.unindex_username(name, &cred.id);
        }
        Some((user_id, cred))
    }

    /// Updates a linked credential's data in place.
    pub fn set_credential_data(&mut self, cred_id: &str, data: Map<String, Value>) -> bool {
        let Some(user_id) = self.cred_owner.get(cred_id) else {
            return false;
        };
        let Some(user) = self.users.get_mut(user_id) else {
            return false;
        };
        let Some(cred) = user.credentials.iter_mut().find(|c| c.id == cred_id) else {
            return false;
        };
        let before = std::mem::replace(&mut cred.data, data);
        let old = before.get("username").and_then(Value::as_str);
        let new = cred.data_str("username").map(str::to_owned);
        if old != new.as_deref() {
            if let Some(old) = old {
                self.unindex_username(old, cred_id);
            }
            if let Some(new) = new {
                self.index_username(&new, cred_id);
            }
        }
        true
    }

    /// Linked credentials whose data `username` is exactly `username`, with their owners, in
    /// user order (as a scan of every user would find them). Indexed: O(matches), not O(users).
    pub fn credentials_with_username(&self, username: &str) -> Vec<(&User, &Credentials)> {
        let Some(ids) = self.creds_by_username.get(username) else {
            return Vec::new();
        };
        // (user's place, credential's place within it): the order a scan meets them in.
        let mut found: Vec<((usize, usize), &User)> = ids
            .iter()
            .filter_map(|id| {
                let (index, _, user) = self.users.get_full(self.cred_owner.get(id)?)?;
                let position = user.credentials.iter().position(|c| c.id == *id)?;
                Some(((index, position), user))
            })
            .collect();
        found.sort_unstable_by_key(|(place, _)| *place);
        found
            .into_iter()
            .map(|((_, position), user)| (user, &user.credentials[position]))
            .collect()
    }

    /// Removes a user and its tokens from the indexes (credentials go with it).
    pub fn remove_user(&mut self, user_id: &str) -> Option<User> {
        let user = self.users.shift_remove(user_id)?;
        for cred in &user.credentials {
            self.cred_owner.remove(&cred.id);
            if let Some(name) = cred.data_str("username") {
                self.unindex_username(name, &cred.id);
            }
        }
        let ids: Vec<String> = self.token_ids_of(user_id).cloned().collect();
        for id in ids {
            if self.unindex_token(&id).is_some() {
                self.changed_tokens.insert(id);
            }
        }
        Some(user)
    }

    /// Parses HA's `data` object, applying HA's soft migrations (`spec/storage.md` §2.1).
    pub fn from_json(location: &str, data: &Value) -> Result<Self, StorageError> {
        let bad = |problem: String| StorageError::Corrupt {
            location: location.to_owned(),
            problem,
        };
        let Value::Object(root) = data else {
            return Err(bad("'data' is not a JSON object".to_owned()));
        };
        // `groups` may be absent (data from before groups existed); HA always writes the other
        // three lists and fails to load without them. A file lacking one is not read as "no
        // users": that would reopen onboarding.
        let list = |name: &str| -> Result<Vec<Value>, StorageError> {
            match root.get(name) {
                None if name == "groups" => Ok(Vec::new()),
                None => Err(bad(format!("data.{name} is missing"))),
                Some(Value::Array(items)) => Ok(items.clone()),
                Some(_) => Err(bad(format!("data.{name} is not a list"))),
            }
        };
        let mut out = AuthData::default();

        // Groups.
        let mut policyless_group: Option<String> = None;
        for (i, group) in list("groups")?.iter().enumerate() {
            let obj = group
                .as_object()
                .ok_or_else(|| bad(format!("data.groups[{i}] is not an object")))?;
            let id = str_field(obj, "id")
                .ok_or_else(|| bad(format!("data.groups[{i}].id is missing or not a string")))?;
            if Group::is_system_id(id) {
                out.groups.insert(id.to_owned(), Group::system(id));
                continue;
            }
            let policy = match obj.get("policy") {
                None | Some(Value::Null) => {
                    policyless_group = Some(id.to_owned());
                    continue;
                }
                Some(policy @ Value::Object(_)) => {
                    Policy::from_value(policy.clone()).unwrap_or_default()
                }
                Some(other) => {
                    // HA keeps such a group unvalidated; we keep it granting nothing.
                    tracing::warn!(
                        location,
                        group = id,
                        policy = %other,
                        "group policy is not an object; the group grants nothing"
                    );
                    Policy::default()
                }
            };
            let name = opt_str(obj, "name")
                .map_err(|k| bad(format!("data.groups[{i}].{k} is not a string")))?;
            out.groups.insert(
                id.to_owned(),
                Group {
                    id: id.to_owned(),
                    name,
                    policy,
                    system_generated: false,
                },
            );
        }
        let migrate_all_to_admin = out.groups.is_empty() && policyless_group.is_none();
        if !out.groups.is_empty() && policyless_group.is_some() {
            // Only pre-policy data (that one group and nothing else) maps it to admin; next to
            // other groups its members keep what those give (the reference is dropped below).
            policyless_group = None;
        }
        for id in [
            crate::models::GROUP_ID_ADMIN,
            crate::models::GROUP_ID_READ_ONLY,
            crate::models::GROUP_ID_USER,
        ] {
            if !out.groups.contains_key(id) {
                out.groups.insert(id.to_owned(), Group::system(id));
            }
        }

        // Users.
        for (i, user) in list("users")?.iter().enumerate() {
            let obj = user
                .as_object()
                .ok_or_else(|| bad(format!("data.users[{i}] is not an object")))?;
            let field = |k: &str| format!("data.users[{i}].{k}");
            let id = str_field(obj, "id")
                .ok_or_else(|| bad(format!("{} is missing or not a string", field("id"))))?;
            let name = match obj.get("name") {
                Some(Value::String(s)) => Some(s.clone()),
                Some(Value::Null) => None,
                Some(_) => return Err(bad(format!("{} is not a string", field("name")))),
                None => return Err(bad(format!("{} is missing", field("name")))),
            };
            let flag = |k: &str| -> Result<bool, StorageError> {
                match obj.get(k) {
                    Some(Value::Bool(b)) => Ok(*b),
                    Some(_) => Err(bad(format!("{} is not a boolean", field(k)))),
                    None => Err(bad(format!("{} is missing", field(k)))),
                }
            };
            let (is_owner, is_active, system_generated) = (
                flag("is_owner")?,
                flag("is_active")?,
                flag("system_generated")?,
            );
            let local_only = match obj.get("local_only") {
                None | Some(Value::Null) => false,
                Some(Value::Bool(b)) => *b,
                Some(_) => return Err(bad(format!("{} is not a boolean", field("local_only")))),
            };
            let mut group_ids = Vec::new();
            match obj.get("group_ids") {
                None | Some(Value::Null) => {}
                Some(Value::Array(ids)) => {
                    for gid in ids {
                        let gid = gid.as_str().ok_or_else(|| {
                            bad(format!("{} holds a non-string", field("group_ids")))
                        })?;
                        let gid = if Some(gid) == policyless_group.as_deref() {
                            crate::models::GROUP_ID_ADMIN
                        } else {
                            gid
                        };
                        if out.groups.contains_key(gid) {
                            if !group_ids.iter().any(|g| g == gid) {
                                group_ids.push(gid.to_owned());
                            }
                        } else {
                            tracing::warn!(
                                location,
                                user = id,
                                group = gid,
                                "dropping a reference to an unknown group"
                            );
                        }
                    }
                }
                Some(_) => return Err(bad(format!("{} is not a list", field("group_ids")))),
            }
            if migrate_all_to_admin
                && !system_generated
                && !group_ids.iter().any(|g| g == crate::models::GROUP_ID_ADMIN)
            {
                group_ids.push(crate::models::GROUP_ID_ADMIN.to_owned());
            }
            if out.users.contains_key(id) {
                return Err(bad(format!("{}: duplicate user id {id}", field("id"))));
            }
            out.users.insert(
                id.to_owned(),
                User {
                    id: id.to_owned(),
                    name,
                    is_owner,
                    is_active,
                    system_generated,
                    local_only,
                    group_ids,
                    credentials: Vec::new(),
                },
            );
        }

        // Credentials.
        for (i, cred) in list("credentials")?.iter().enumerate() {
            let obj = cred
                .as_object()
                .ok_or_else(|| bad(format!("data.credentials[{i}] is not an object")))?;
            let field = |k: &str| format!("data.credentials[{i}].{k}");
            let id = str_field(obj, "id")
                .ok_or_else(|| bad(format!("{} is missing or not a string", field("id"))))?;
            let user_id = str_field(obj, "user_id")
                .ok_or_else(|| bad(format!("{} is missing or not a string", field("user_id"))))?;
            let provider_type = str_field(obj, "auth_provider_type").ok_or_else(|| {
                bad(format!(
                    "{} is missing or not a string",
                    field("auth_provider_type")
                ))
            })?;
            let provider_id = match obj.get("auth_provider_id") {
                Some(Value::String(s)) => Some(s.clone()),
                Some(Value::Null) => None,
                _ => {
                    return Err(bad(format!(
                        "{} is missing or not a string",
                        field("auth_provider_id")
                    )));
                }
            };
            let data = match obj.get("data") {
                Some(Value::Object(map)) => map.clone(),
                _ => {
                    return Err(bad(format!(
                        "{} is missing or not an object",
                        field("data")
                    )));
                }
            };
            if !out.users.contains_key(user_id) {
                return Err(bad(format!(
                    "{} names unknown user {user_id}",
                    field("user_id")
                )));
            }
            if out.cred_owner.contains_key(id) {
                return Err(bad(format!(
                    "{}: duplicate credential id {id}",
                    field("id")
                )));
            }
            let cred = Credentials {
                id: id.to_owned(),
                auth_provider_type: provider_type.to_owned(),
                auth_provider_id: provider_id,
                data,
                is_new: false,
            };
            out.attach_credential(user_id, cred);
        }

        // Refresh tokens.
        for (i, token) in list("refresh_tokens")?.iter().enumerate() {
            let path = format!("data.refresh_tokens[{i}]");
            let Some(token) = out.token_from_json(location, &path, token)? else {
                continue;
            };
            if out.tokens.contains_key(&token.id) {
                return Err(bad(format!(
                    "{path}.id: duplicate refresh token id {}",
                    token.id
                )));
            }
            out.insert_token(token);
        }
        Ok(out)
    }

    /// Parses one refresh token of HA's `data.refresh_tokens` (`path` names it in messages)
    /// against this data's users and credentials; `None` for one HA skips too.
    fn token_from_json(
        &self,
        location: &str,
        path: &str,
        token: &Value,
    ) -> Result<Option<RefreshToken>, StorageError> {
        let bad = |problem: String| StorageError::Corrupt {
            location: location.to_owned(),
            problem,
        };
        let obj = token
            .as_object()
            .ok_or_else(|| bad(format!("{path} is not an object")))?;
        let field = |k: &str| format!("{path}.{k}");
        let Some(jwt_key) = str_field(obj, "jwt_key") else {
            return Ok(None); // pre-0.76 data: skipped like HA does
        };
        let id = str_field(obj, "id")
            .ok_or_else(|| bad(format!("{} is missing or not a string", field("id"))))?;
        let user_id = str_field(obj, "user_id")
            .ok_or_else(|| bad(format!("{} is missing or not a string", field("user_id"))))?;
        if !self.users.contains_key(user_id) {
            return Err(bad(format!(
                "{} names unknown user {user_id}",
                field("user_id")
            )));
        }
        let Some(created_at) = str_field(obj, "created_at").and_then(parse_iso) else {
            tracing::error!(
                location,
                token = id,
                "skipping a refresh token whose created_at does not parse"
            );
            return Ok(None);
        };
        let opt =
            |k: &str| opt_str(obj, k).map_err(|k| bad(format!("{} is not a string", field(&k))));
        let client_id = opt("client_id")?;
        let token_type = match obj.get("token_type") {
            Some(Value::String(s)) => TokenType::parse(s)
                .ok_or_else(|| bad(format!("{} has unknown value {s:?}", field("token_type"))))?,
            None | Some(Value::Null) if client_id.is_none() => TokenType::System,
            None | Some(Value::Null) => TokenType::Normal,
            Some(_) => return Err(bad(format!("{} is not a string", field("token_type")))),
        };
        let access_token_expiration = match obj.get("access_token_expiration") {
            Some(Value::Number(n)) => n.as_f64().map(Duration::seconds_f64),
            _ => None,
        }
        .ok_or_else(|| {
            bad(format!(
                "{} is missing or not a number",
                field("access_token_expiration")
            ))
        })?;
        let secret = str_field(obj, "token")
            .ok_or_else(|| bad(format!("{} is missing or not a string", field("token"))))?;
        let last_used_at = str_field(obj, "last_used_at")
            .filter(|s| !s.is_empty())
            .and_then(parse_iso);
        let expire_at = match obj.get("expire_at") {
            None | Some(Value::Null) => None,
            Some(Value::Number(n)) => n.as_f64(),
            Some(_) => return Err(bad(format!("{} is not a number", field("expire_at")))),
        };
        let credential_id = opt("credential_id")?.filter(|c| self.cred_owner.contains_key(c));
        Ok(Some(RefreshToken {
            id: id.to_owned(),
            user_id: user_id.to_owned(),
            client_id,
            client_name: opt("client_name")?,
            client_icon: opt("client_icon")?,
            token_type,
            created_at,
            access_token_expiration,
            token: secret.to_owned(),
            jwt_key: jwt_key.to_owned(),
            last_used_at,
            last_used_ip: opt("last_used_ip")?,
            expire_at,
            credential_id,
            version: opt("version")?,
        }))
    }

    /// Applies a change record another instance made (see [`StoreChange`]): its `rows` (users,
    /// groups and credentials added, changed or removed), `put` and `del` (refresh tokens). This
    /// instance's own pending changes stay pending; a token removed here and not yet saved, or
    /// named in `removed_here`, is not brought back by a `put`.
    pub fn apply_remote(
        &mut self,
        location: &str,
        record: &Value,
        removed_here: &HashSet<String>,
    ) -> Result<(), StorageError> {
        let changed = std::mem::take(&mut self.changed_tokens);
        let applied = self.apply_remote_inner(location, record, &changed, removed_here);
        self.changed_tokens = changed;
        applied
    }

    fn apply_remote_inner(
        &mut self,
        location: &str,
        record: &Value,
        changed: &HashSet<String>,
        removed_here: &HashSet<String>,
    ) -> Result<(), StorageError> {
        if let Some(rows) = record.get("rows") {
            let mut rest = self.rest_json();
            apply_rows(&mut rest, rows);
            let parsed = AuthData::from_json(location, &rest)?;
            self.users = parsed.users;
            self.groups = parsed.groups;
            self.cred_owner = parsed.cred_owner;
            self.creds_by_username = parsed.creds_by_username;
            let gone: Vec<String> = self
                .user_tokens
                .keys()
                .filter(|u| !self.users.contains_key(*u))
                .cloned()
                .collect();
            for user in gone {
                let ids: Vec<String> = self.token_ids_of(&user).cloned().collect();
                for id in ids {
                    self.unindex_token(&id);
                }
            }
        }
        let list = |k: &str| {
            record
                .get(k)
                .and_then(Value::as_array)
                .map(Vec::as_slice)
                .unwrap_or_default()
        };
        for (i, token) in list("put").iter().enumerate() {
            let id = token.get("id").and_then(Value::as_str).unwrap_or_default();
            if removed_here.contains(id) || (changed.contains(id) && !self.tokens.contains_key(id))
            {
                continue;
            }
            let Some(token) =
                self.token_from_json(location, &format!("change record put[{i}]"), token)?
            else {
                continue;
            };
            match self.tokens.get(&token.id) {
                Some(old) if old.token == token.token && old.user_id == token.user_id => {
                    self.replace_token(token);
                }
                Some(_) => {
                    self.remove_token(&token.id.clone());
                    self.insert_token(token);
                }
                None => self.insert_token(token),
            }
        }
        for id in list("del").iter().filter_map(Value::as_str) {
            self.remove_token(id);
        }
        Ok(())
    }

    /// HA's `data` object for this state, key order included.
    pub fn to_json(&self) -> Value {
        let mut data = self.rest_json();
        let tokens = self.tokens_in_file_order();
        data["refresh_tokens"] = tokens.iter().map(|t| token_json(t)).collect();
        data
    }

    /// Whether [`AuthData::to_json`] would equal `json` (HA's `data` object as read), without
    /// building a JSON tree of every token next to the one just read: rows are compared one
    /// token at a time.
    pub fn is_exactly(&self, json: &Value) -> bool {
        let Some(object) = json.as_object() else {
            return false;
        };
        let rest = self.rest_json();
        let lists = ["users", "groups", "credentials", "refresh_tokens"];
        if object.len() != lists.len() || !lists.iter().all(|k| object.contains_key(*k)) {
            return false;
        }
        if ROW_LISTS.iter().any(|k| rest.get(*k) != object.get(*k)) {
            return false;
        }
        let Some(stored) = object.get("refresh_tokens").and_then(Value::as_array) else {
            return false;
        };
        let tokens = self.tokens_in_file_order();
        tokens.len() == stored.len()
            && tokens
                .iter()
                .zip(stored)
                .all(|(token, row)| token_json(token) == *row)
    }

    /// The refresh tokens in the order `.storage/auth` lists them: by user, each user's in
    /// creation order. Cheap (shared pointers), so that a snapshot to serialise off the lock
    /// costs O(tokens) pointer copies, not a copy of every token.
    pub fn tokens_in_file_order(&self) -> Vec<Arc<RefreshToken>> {
        let mut tokens = Vec::with_capacity(self.tokens.len());
        for user in self.users.values() {
            for id in self.token_ids_of(&user.id) {
                if let Some(t) = self.tokens.get(id) {
                    tokens.push(t.clone());
                }
            }
        }
        tokens
    }

    /// HA's `data` object without the refresh tokens: users, groups and credentials.
    pub fn rest_json(&self) -> Value {
        let users: Vec<Value> = self
            .users
            .values()
            .map(|u| {
                json!({
                    "id": u.id,
                    "group_ids": u.group_ids,
                    "is_owner": u.is_owner,
                    "is_active": u.is_active,
                    "name": u.name,
                    "system_generated": u.system_generated,
                    "local_only": u.local_only,
                })
            })
            .collect();
        let groups: Vec<Value> = self
            .groups
            .values()
            .map(|g| {
                if g.system_generated {
                    json!({"id": g.id, "name": g.name})
                } else {
                    json!({"id": g.id, "name": g.name, "policy": g.policy.to_value()})
                }
            })
            .collect();
        let mut credentials = Vec::new();
        for user in self.users.values() {
            for c in &user.credentials {
                credentials.push(json!({
                    "id": c.id,
                    "user_id": user.id,
                    "auth_provider_type": c.auth_provider_type,
                    "auth_provider_id": c.auth_provider_id,
                    "data": c.data,
                }));
            }
        }
        json!({"users": users, "groups": groups, "credentials": credentials, "refresh_tokens": []})
    }

    /// The journal record for the tokens in `changed`: their current state, or their removal.
    pub fn token_changes(&self, changed: &HashSet<String>) -> (Vec<Value>, Vec<Value>) {
        let mut put = Vec::new();
        let mut del = Vec::new();
        // Creation order, so that replay appends new tokens in the order they were made.
        let mut present: Vec<(u64, &Arc<RefreshToken>)> = Vec::new();
        for id in changed {
            match (self.tokens.get(id), self.token_seq.get(id)) {
                (Some(token), Some(seq)) => present.push((*seq, token)),
                _ => del.push(Value::String(id.clone())),
            }
        }
        present.sort_by_key(|(index, _)| *index);
        put.extend(present.into_iter().map(|(_, t)| token_json(t)));
        (put, del)
    }
}

/// Write access to the refresh tokens of [`AuthData`] and nothing else (see
/// [`AuthStore::write_tokens`]).
#[derive(Debug)]
pub struct TokensMut<'a> {
    data: &'a mut AuthData,
}

impl TokensMut<'_> {
    /// The refresh token `id`.
    pub fn get(&self, id: &str) -> Option<&Arc<RefreshToken>> {
        self.data.tokens.get(id)
    }

    /// Adds a token and indexes it ([`AuthData::insert_token`]).
    pub fn insert(&mut self, token: RefreshToken) {
        self.data.insert_token(token);
    }

    /// Removes a token and its index entries ([`AuthData::remove_token`]).
    pub fn remove(&mut self, id: &str) -> Option<Arc<RefreshToken>> {
        self.data.remove_token(id)
    }

    /// Replaces a token after a metadata change ([`AuthData::replace_token`]).
    pub fn replace(&mut self, token: RefreshToken) {
        self.data.replace_token(token);
    }
}

/// Lists of HA's `data` object that [`rest_rows_diff`] compares row by row (by `id`).
const ROW_LISTS: [&str; 3] = ["users", "groups", "credentials"];

/// What changed between two [`AuthData::rest_json`] values, row by row: for each of `users`,
/// `groups` and `credentials` that changed, `{"put": [rows added or changed], "del": [ids
/// removed]}`. `None` when nothing changed. A database applies this instead of replacing every
/// row, so an instance can never drop a row it did not know about.
pub fn rest_rows_diff(before: &Value, after: &Value) -> Option<Value> {
    let rows = |v: &Value, k: &str| -> IndexMap<String, Value> {
        v.get(k)
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(|r| Some((r.get("id")?.as_str()?.to_owned(), r.clone())))
            .collect()
    };
    let mut diff = Map::new();
    for list in ROW_LISTS {
        let (old, new) = (rows(before, list), rows(after, list));
        let put: Vec<Value> = new
            .iter()
            .filter(|(id, row)| old.get(*id) != Some(*row))
            .map(|(_, row)| row.clone())
            .collect();
        let del: Vec<Value> = old
            .keys()
            .filter(|id| !new.contains_key(*id))
            .map(|id| Value::String(id.clone()))
            .collect();
        if !put.is_empty() || !del.is_empty() {
            diff.insert(list.to_owned(), json!({"put": put, "del": del}));
        }
    }
    (!diff.is_empty()).then_some(Value::Object(diff))
}

/// Applies a [`rest_rows_diff`] to a `data`-shaped object: changed rows in place, new rows
/// appended, removed rows dropped.
pub fn apply_rows(data: &mut Value, diff: &Value) {
    for list in ROW_LISTS {
        let Some(change) = diff.get(list) else {
            continue;
        };
        let mut rows: IndexMap<String, Value> = data
            .get(list)
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(|r| Some((r.get("id")?.as_str()?.to_owned(), r.clone())))
            .collect();
        for row in change
            .get("put")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            if let Some(id) = row.get("id").and_then(Value::as_str) {
                rows.insert(id.to_owned(), row.clone());
            }
        }
        for id in change
            .get("del")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            if let Some(id) = id.as_str() {
                rows.shift_remove(id);
            }
        }
        data[list] = Value::Array(rows.into_values().collect());
    }
}

/// Applies journal records to HA's `data` object (`spec/storage.md` §2.1 shape): each record
/// holds `rest` (users, groups, credentials; replaced whole), `put` (tokens added or replaced)
/// and `del` (ids of removed tokens). Every record states absolute values, so replaying one
/// twice changes nothing.
pub fn apply_journal(
    location: &str,
    data: &mut Value,
    records: &[Value],
) -> Result<(), StorageError> {
    if records.is_empty() {
        return Ok(());
    }
    let bad = |problem: String| StorageError::Corrupt {
        location: location.to_owned(),
        problem,
    };
    let Value::Object(root) = data else {
        return Err(bad("'data' is not a JSON object".to_owned()));
    };
    let mut tokens: IndexMap<String, Option<Value>> = IndexMap::new();
    if let Some(Value::Array(list)) = root.get("refresh_tokens") {
        for (i, token) in list.iter().enumerate() {
            let id = token
                .get("id")
                .and_then(Value::as_str)
                .map_or_else(|| format!("\u{0}unnamed-{i}"), str::to_owned);
            tokens.insert(id, Some(token.clone()));
        }
    }
    for (n, record) in records.iter().enumerate() {
        let field = |k: &str| format!("journal record {n}: '{k}'");
        if let Some(rest) = record.get("rest") {
            let Value::Object(rest) = rest else {
                return Err(bad(format!("{} is not an object", field("rest"))));
            };
            for (k, v) in rest {
                if k != "refresh_tokens" {
                    root.insert(k.clone(), v.clone());
                }
            }
        }
        for token in record
            .get("put")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let id = token
                .get("id")
                .and_then(Value::as_str)
                .ok_or_else(|| bad(format!("{} holds a token without an id", field("put"))))?;
            match tokens.get_mut(id) {
                Some(slot @ Some(_)) => *slot = Some(token.clone()),
                Some(None) => {
                    tokens.shift_remove(id);
                    tokens.insert(id.to_owned(), Some(token.clone()));
                }
                None => {
                    tokens.insert(id.to_owned(), Some(token.clone()));
                }
            }
        }
        for id in record
            .get("del")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let id = id
                .as_str()
                .ok_or_else(|| bad(format!("{} holds a non-string", field("del"))))?;
            if let Some(slot) = tokens.get_mut(id) {
                *slot = None;
            }
        }
    }
    root.insert(
        "refresh_tokens".to_owned(),
        Value::Array(tokens.into_values().flatten().collect()),
    );
    Ok(())
}

fn token_json(t: &RefreshToken) -> Value {
    serde_json::to_value(TokenRow(t)).expect("a token row always serialises")
}

/// A refresh token as one entry of HA's `refresh_tokens` list (key order included): the one
/// definition of that row, for the journal's records and for the whole file.
struct TokenRow<'a>(&'a RefreshToken);

impl serde::Serialize for TokenRow<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let t = self.0;
        let mut map = serializer.serialize_map(Some(15))?;
        map.serialize_entry("id", &t.id)?;
        map.serialize_entry("user_id", &t.user_id)?;
        map.serialize_entry("client_id", &t.client_id)?;
        map.serialize_entry("client_name", &t.client_name)?;
        map.serialize_entry("client_icon", &t.client_icon)?;
        map.serialize_entry("token_type", t.token_type.as_str())?;
        map.serialize_entry("created_at", &to_iso(t.created_at))?;
        map.serialize_entry(
            "access_token_expiration",
            &t.access_token_expiration.as_seconds_f64(),
        )?;
        map.serialize_entry("token", &t.token)?;
        map.serialize_entry("jwt_key", &t.jwt_key)?;
        map.serialize_entry("last_used_at", &t.last_used_at.map(to_iso))?;
        map.serialize_entry("last_used_ip", &t.last_used_ip)?;
        map.serialize_entry("expire_at", &t.expire_at)?;
        map.serialize_entry("credential_id", &t.credential_id)?;
        map.serialize_entry("version", &t.version)?;
        map.end()
    }
}

/// HA's `data` object serialised straight from users, groups and credentials (`rest`, as
/// [`AuthData::rest_json`]) and the tokens: no JSON tree of every token.
struct DataRows<'a> {
    rest: &'a Value,
    tokens: &'a [Arc<RefreshToken>],
}

impl serde::Serialize for DataRows<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut map = serializer.serialize_map(None)?;
        if let Value::Object(rest) = self.rest {
            for (key, value) in rest.iter().filter(|(k, _)| *k != "refresh_tokens") {
                map.serialize_entry(key, value)?;
            }
        }
        map.serialize_entry("refresh_tokens", &TokenRows(self.tokens))?;
        map.end()
    }
}

/// The `refresh_tokens` list, serialised row by row from the tokens.
struct TokenRows<'a>(&'a [Arc<RefreshToken>]);

impl serde::Serialize for TokenRows<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_seq(self.0.iter().map(|t| TokenRow(t)))
    }
}

/// `.storage/auth` in Home Assistant's format for `rest` (users, groups and credentials, as
/// [`AuthData::rest_json`]) and `tokens` (as [`AuthData::tokens_in_file_order`]): the same bytes
/// as [`StoredDocument::to_bytes`] of [`AuthData::to_json`], written straight from the tokens, so
/// that a compaction of 100k tokens neither builds nor copies a JSON tree of them.
pub fn auth_file_bytes(rest: &Value, tokens: &[Arc<RefreshToken>]) -> Vec<u8> {
    let data = DataRows { rest, tokens };
    // A token row is about 700 bytes pretty-printed.
    let mut bytes = Vec::with_capacity(4096 + tokens.len() * 768);
    crate::storage::write_envelope(
        &mut bytes,
        STORAGE_KEY,
        STORAGE_VERSION,
        STORAGE_MINOR_VERSION,
        &data,
    );
    bytes
}

fn str_field<'a>(obj: &'a Map<String, Value>, key: &str) -> Option<&'a str> {
    obj.get(key).and_then(Value::as_str)
}

fn opt_str(obj: &Map<String, Value>, key: &str) -> Result<Option<String>, String> {
    match obj.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err(key.to_owned()),
    }
}

/// The auth store: [`AuthData`] behind a lock, loaded lazily, saved durably or debounced.
///
/// With a journal (the file store), a durable save appends what changed since the last one
/// (group commit: every change made while the previous append ran shares the next append and its
/// fsync) and `.storage/auth` is rewritten only by compaction: in the background once the journal
/// outgrows the file, and at [`AuthStore::flush`]. Without one, every save rewrites the document.
#[derive(Debug)]
pub struct AuthStore {
    storage: Arc<dyn Storage>,
    journal: Option<Arc<dyn Journal>>,
    state: RwLock<Option<AuthData>>,
    generation: Mutex<u64>,
    writer: tokio::sync::Mutex<u64>,
    load_lock: tokio::sync::Mutex<()>,
    pending: Mutex<Option<tokio::time::Instant>>,
    wake: tokio::sync::Notify,
    /// Users, groups and credentials as last journaled (or loaded, or compacted).
    last_rest: Mutex<Value>,
    /// Whether users, groups or credentials may have changed since `last_rest` was taken (set
    /// by [`AuthStore::write`], not by [`AuthStore::write_tokens`]): a save that only carries
    /// refresh tokens costs O(its tokens), not O(users).
    rest_dirty: AtomicBool,
    /// Whether `.storage/auth` is behind memory (journal records, soft migrations).
    needs_compaction: AtomicBool,
    /// Whether a background compaction is running.
    compacting: AtomicBool,
    compact_lock: tokio::sync::Mutex<()>,
    /// Size of `.storage/auth` as last read or written.
    main_len: AtomicU64,
    /// Ids of tokens this instance removed lately (newest last, bounded): another instance's
    /// older change record must not bring them back (a shared database).
    removed_here: Mutex<RemovedHere>,
    /// How many times the whole data was read again (see [`AuthStore::reloads`]).
    reloads: AtomicU64,
    _clock: SharedClock,
}

/// The ids in [`AuthStore::removed_here`]: a set, and its insertion order for eviction.
#[derive(Debug, Default)]
struct RemovedHere {
    ids: HashSet<String>,
    order: std::collections::VecDeque<String>,
}

/// How many removed token ids an instance remembers (see [`AuthStore::apply_remote`]).
const REMOVED_HERE_MAX: usize = 8192;

/// The journal is compacted once it holds more than this and more than the main file.
pub const COMPACT_MIN_BYTES: u64 = 1 << 20;

impl AuthStore {
    /// A store over `storage`; nothing is read until first use.
    pub fn new(storage: Arc<dyn Storage>, clock: SharedClock) -> Arc<Self> {
        Arc::new(Self {
            journal: storage.journal(STORAGE_KEY),
            storage,
            state: RwLock::new(None),
            generation: Mutex::new(0),
            writer: tokio::sync::Mutex::new(0),
            load_lock: tokio::sync::Mutex::new(()),
            pending: Mutex::new(None),
            wake: tokio::sync::Notify::new(),
            last_rest: Mutex::new(Value::Null),
            rest_dirty: AtomicBool::new(true),
            needs_compaction: AtomicBool::new(false),
            compacting: AtomicBool::new(false),
            compact_lock: tokio::sync::Mutex::new(()),
            main_len: AtomicU64::new(0),
            removed_here: Mutex::new(RemovedHere::default()),
            reloads: AtomicU64::new(0),
            _clock: clock,
        })
    }

    /// The underlying storage.
    pub fn storage(&self) -> &Arc<dyn Storage> {
        &self.storage
    }

    /// Loads `.storage/auth` (and replays its journal) if not loaded yet. A file that cannot be
    /// read is an error, never empty data.
    pub async fn ensure_loaded(self: &Arc<Self>) -> Result<(), StorageError> {
        if self.state.read().is_some() {
            return Ok(());
        }
        let _guard = self.load_lock.lock().await;
        if self.state.read().is_some() {
            return Ok(());
        }
        let location = self.storage.location(STORAGE_KEY);
        let records = match &self.journal {
            Some(journal) => journal.replay().await?,
            None => Vec::new(),
        };
        let loaded = self.storage.load(STORAGE_KEY).await?;
        // Users, groups and credentials as stored: what the next record is computed against, so
        // that soft migrations (the system groups added to new data) are written too.
        let mut stored_rest =
            json!({"users": [], "groups": [], "credentials": [], "refresh_tokens": []});
        if let Some(doc) = &loaded {
            for list in ROW_LISTS {
                if let Some(rows) = doc.data.get(list) {
                    stored_rest[list] = rows.clone();
                }
            }
        }
        let (mut data, migrated) = match loaded {
            None if records.is_empty() => (AuthData::empty(), false),
            None => {
                let mut json = AuthData::empty().to_json();
                apply_journal(&location, &mut json, &records)?;
                (AuthData::from_json(&location, &json)?, true)
            }
            Some(doc) => {
                check_version(self.storage.as_ref(), &doc, STORAGE_VERSION)?;
                self.main_len
                    .store(doc.to_bytes().len() as u64, Ordering::Relaxed);
                let mut json = doc.data;
                apply_journal(&location, &mut json, &records)?;
                let data = AuthData::from_json(&location, &json)?;
                // Soft migrations (added system groups, remapped or dropped references, skipped
                // tokens, defaults filled in) and another minor version are saved by the
                // scheduled save below, as Home Assistant does, even if nothing else changes.
                let migrated =
                    doc.minor_version != STORAGE_MINOR_VERSION || !data.is_exactly(&json);
                (data, migrated)
            }
        };
        data.take_changed_tokens();
        if records.is_empty() {
            *self.last_rest.lock() = stored_rest;
        } else {
            *self.last_rest.lock() = data.rest_json();
        }
        *self.state.write() = Some(data);
        self.rest_dirty.store(true, Ordering::Release);
        if migrated || !records.is_empty() {
            self.needs_compaction.store(true, Ordering::Relaxed);
            self.bump();
        }
        if let Some(changes) = self.storage.changes() {
            self.spawn_reloader(changes);
        }
        self.schedule_save(INITIAL_LOAD_SAVE_DELAY);
        Ok(())
    }

    /// Follows other processes' changes (a shared database): a change that carries its record
    /// is applied row by row; one without (or a missed one) reloads the data.
    fn spawn_reloader(
        self: &Arc<Self>,
        mut changes: tokio::sync::broadcast::Receiver<StoreChange>,
    ) {
        let Ok(handle) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let weak = Arc::downgrade(self);
        handle.spawn(async move {
            use tokio::sync::broadcast::error::RecvError;
            loop {
                let record = match changes.recv().await {
                    Ok(change) if change.key != STORAGE_KEY => continue,
                    Ok(change) => change.record,
                    Err(RecvError::Lagged(_)) => None,
                    Err(RecvError::Closed) => return,
                };
                let Some(store) = weak.upgrade() else { return };
                if let Some(record) = record {
                    match store.apply_remote(&record) {
                        Ok(()) => continue,
                        Err(error) => tracing::warn!(%error, "applying another instance's change failed; reloading the auth store"),
                    }
                }
                if let Err(error) = store.reload().await {
                    tracing::error!(%error, "reloading the auth store after another process changed it failed");
                }
            }
        });
    }

    /// How many times the whole data was read again because another instance changed it
    /// without saying how (a change record is applied in place and does not count).
    pub fn reloads(&self) -> u64 {
        self.reloads.load(Ordering::Relaxed)
    }

    /// Applies another instance's change record to the data in memory (no database read).
    pub fn apply_remote(&self, record: &Value) -> Result<(), StorageError> {
        let location = self.storage.location(STORAGE_KEY);
        let mut guard = self.state.write();
        let Some(data) = guard.as_mut() else {
            return Ok(());
        };
        {
            let removed = self.removed_here.lock();
            data.apply_remote(&location, record, &removed.ids)?;
        }
        if let Some(rows) = record.get("rows") {
            apply_rows(&mut self.last_rest.lock(), rows);
        }
        Ok(())
    }

    fn remember_removed(&self, del: &[Value]) {
        let mut removed = self.removed_here.lock();
        for id in del.iter().filter_map(Value::as_str) {
            if removed.ids.insert(id.to_owned()) {
                removed.order.push_back(id.to_owned());
            }
        }
        while removed.order.len() > REMOVED_HERE_MAX {
            if let Some(id) = removed.order.pop_front() {
                removed.ids.remove(&id);
            }
        }
    }

    /// Reads the stored data again (another process changed it). Changes of this process not
    /// yet saved are saved first, so that none is lost.
    pub async fn reload(self: &Arc<Self>) -> Result<(), StorageError> {
        self.reloads.fetch_add(1, Ordering::Relaxed);
        loop {
            let saved = self.writer.lock().await;
            let data = self.read_stored().await?;
            {
                let mut state = self.state.write();
                if *self.generation.lock() == *saved {
                    *self.last_rest.lock() = data.rest_json();
                    *state = Some(data);
                    return Ok(());
                }
            }
            drop(saved);
            self.save_now().await?;
        }
    }

    /// The stored data, read again (nothing replayed: for a database, whose rows are the state).
    async fn read_stored(&self) -> Result<AuthData, StorageError> {
        let location = self.storage.location(STORAGE_KEY);
        let mut data = match self.storage.load(STORAGE_KEY).await? {
            None => AuthData::empty(),
            Some(doc) => {
                check_version(self.storage.as_ref(), &doc, STORAGE_VERSION)?;
                AuthData::from_json(&location, &doc.data)?
            }
        };
        data.take_changed_tokens();
        Ok(data)
    }

    /// Runs `f` with read access to the loaded data.
    ///
    /// Panics if called before [`AuthStore::ensure_loaded`] succeeded (a programming error).
    pub fn read<R>(&self, f: impl FnOnce(&AuthData) -> R) -> R {
        let guard = self.state.read();
        f(guard
            .as_ref()
            .expect("auth store used before it was loaded"))
    }

    /// Runs `f` with write access and marks the data changed (it still needs a save).
    pub fn write<R>(&self, f: impl FnOnce(&mut AuthData) -> R) -> R {
        let mut guard = self.state.write();
        let result = f(guard
            .as_mut()
            .expect("auth store used before it was loaded"));
        self.rest_dirty.store(true, Ordering::Release);
        self.bump();
        result
    }

    /// Runs `f` with write access to the refresh tokens only and marks them changed: the next
    /// save records those tokens without looking at users, groups or credentials (the sign-in
    /// path, whose cost must not grow with the number of users).
    pub fn write_tokens<R>(&self, f: impl FnOnce(&mut TokensMut<'_>) -> R) -> R {
        let mut guard = self.state.write();
        let data = guard
            .as_mut()
            .expect("auth store used before it was loaded");
        let result = f(&mut TokensMut { data });
        self.bump();
        result
    }

    fn bump(&self) {
        *self.generation.lock() += 1;
    }

    /// Whether there are changes not yet on disk.
    pub fn is_dirty(&self) -> bool {
        let generation = *self.generation.lock();
        self.writer
            .try_lock()
            .map(|saved| *saved < generation)
            .unwrap_or(true)
    }

    /// Makes the current state durable; returns once it is. Group commit: callers that arrive
    /// while a write runs wait for it, and the next write covers all of them at once.
    pub async fn save_now(self: &Arc<Self>) -> Result<(), StorageError> {
        let wanted = *self.generation.lock();
        let mut saved = self.writer.lock().await;
        if *saved >= wanted {
            return Ok(());
        }
        let Some(journal) = &self.journal else {
            if let Some(data) = self.state.write().as_mut() {
                data.take_changed_tokens();
            }
            let Some((doc, generation)) = self.snapshot() else {
                return Ok(());
            };
            self.storage
                .save(&doc, SaveOptions { private: true })
                .await?;
            *saved = generation;
            return Ok(());
        };
        // What changed since the last record: O(change), not O(all tokens).
        let (record, changed, rest, generation) = {
            let mut guard = self.state.write();
            let Some(data) = guard.as_mut() else {
                return Ok(());
            };
            let generation = *self.generation.lock();
            let changed = data.take_changed_tokens();
            let (put, del) = data.token_changes(&changed);
            // Under the state lock, so that no `write` can slip between the flag and the rows.
            let rest = self
                .rest_dirty
                .swap(false, Ordering::AcqRel)
                .then(|| data.rest_json());
            let mut record = Map::new();
            let last_rest = self.last_rest.lock();
            if let Some(rest) = rest.as_ref().filter(|rest| **rest != *last_rest) {
                if journal.compacts() {
                    record.insert("rest".to_owned(), rest.clone());
                } else if let Some(rows) = rest_rows_diff(&last_rest, rest) {
                    // A shared database: only the rows that changed, never "every row is this".
                    record.insert("rows".to_owned(), rows);
                }
            }
            drop(last_rest);
            if !put.is_empty() {
                record.insert("put".to_owned(), Value::Array(put));
            }
            if !del.is_empty() {
                self.remember_removed(&del);
                record.insert("del".to_owned(), Value::Array(del));
            }
            (record, changed, rest, generation)
        };
        if record.is_empty() {
            *saved = generation;
            return Ok(());
        }
        if let Err(error) = journal.append(&Value::Object(record)).await {
            if matches!(error, StorageError::Conflict { .. }) {
                // Refused by the database (a second owner, a username taken meanwhile): this
                // instance's unsaved changes are dropped and the stored data read again.
                *self.state.write() = Some(self.read_stored().await?);
                *self.last_rest.lock() = self.read(AuthData::rest_json);
                *saved = *self.generation.lock();
                return Err(error);
            }
            if let Some(data) = self.state.write().as_mut() {
                data.mark_tokens_changed(changed);
            }
            if rest.is_some() {
                self.rest_dirty.store(true, Ordering::Release);
            }
            return Err(error);
        }
        if let Some(rest) = rest {
            *self.last_rest.lock() = rest;
        }
        *saved = generation;
        if !journal.compacts() {
            return Ok(());
        }
        self.needs_compaction.store(true, Ordering::Relaxed);
        let threshold = COMPACT_MIN_BYTES.max(self.main_len.load(Ordering::Relaxed));
        if journal.len() > threshold {
            self.spawn_compaction();
        }
        Ok(())
    }

    /// The whole document as it is in memory, and the generation it holds.
    fn snapshot(&self) -> Option<(StoredDocument, u64)> {
        let guard = self.state.read();
        let data = guard.as_ref()?;
        let generation = *self.generation.lock();
        Some((
            StoredDocument::new(
                STORAGE_KEY,
                STORAGE_VERSION,
                STORAGE_MINOR_VERSION,
                data.to_json(),
            ),
            generation,
        ))
    }

    fn spawn_compaction(self: &Arc<Self>) {
        if self.compacting.swap(true, Ordering::AcqRel) {
            return;
        }
        let Ok(handle) = tokio::runtime::Handle::try_current() else {
            self.compacting.store(false, Ordering::Release);
            return;
        };
        let store = self.clone();
        handle.spawn(async move {
            if let Err(error) = store.compact().await {
                tracing::error!(%error, "compacting the auth journal failed; will retry later");
            }
            store.compacting.store(false, Ordering::Release);
        });
    }

    /// Folds the journal into `.storage/auth`: seals the journal (later changes go to a new
    /// segment), writes the whole state in Home Assistant's format, then deletes the sealed
    /// segments. Appends go on meanwhile; a crash at any point replays to the same state.
    pub async fn compact(&self) -> Result<(), StorageError> {
        let Some(journal) = &self.journal else {
            return Ok(());
        };
        let _compacting = self.compact_lock.lock().await;
        let mark = {
            // No append in flight while sealing.
            let _writer = self.writer.lock().await;
            self.needs_compaction.store(false, Ordering::Relaxed);
            journal.seal()
        };
        // Users, groups and credentials as JSON (small) and shared pointers to the tokens: the
        // lock is held for O(tokens) pointer copies, the serialising runs off it and off the
        // async workers.
        let snapshot = self
            .state
            .read()
            .as_ref()
            .map(|data| (data.rest_json(), data.tokens_in_file_order()));
        let Some((rest, tokens)) = snapshot else {
            return Ok(());
        };
        let written = async {
            let bytes = tokio::task::spawn_blocking(move || auth_file_bytes(&rest, &tokens))
                .await
                .map_err(|e| StorageError::Write {
                    location: self.storage.location(STORAGE_KEY),
                    source: std::io::Error::other(e.to_string()),
                })?;
            let len = bytes.len() as u64;
            self.storage
                .save_bytes(STORAGE_KEY, bytes, SaveOptions { private: true })
                .await?;
            self.main_len.store(len, Ordering::Relaxed);
            journal.discard_sealed(mark).await
        }
        .await;
        if written.is_err() {
            self.needs_compaction.store(true, Ordering::Relaxed);
        }
        written
    }

    /// Schedules a debounced save within `delay` (an earlier pending save is kept).
    pub fn schedule_save(self: &Arc<Self>, delay: StdDuration) {
        let deadline = tokio::time::Instant::now() + delay;
        let mut pending = self.pending.lock();
        match *pending {
            Some(existing) if existing <= deadline => {}
            Some(_) => {
                *pending = Some(deadline);
                self.wake.notify_one();
            }
            None => {
                *pending = Some(deadline);
                let Ok(handle) = tokio::runtime::Handle::try_current() else {
                    return;
                };
                let weak = Arc::downgrade(self);
                handle.spawn(async move {
                    loop {
                        let Some(store) = weak.upgrade() else { return };
                        let Some(deadline) = *store.pending.lock() else { return };
                        if tokio::time::Instant::now() >= deadline {
                            *store.pending.lock() = None;
                            if let Err(error) = store.save_now().await {
                                tracing::error!(%error, "debounced save of the auth store failed; will retry");
                                store.schedule_save(SAVE_DELAY);
                            }
                            return;
                        }
                        let wake = store.wake.notified();
                        tokio::select! {
                            _ = tokio::time::sleep_until(deadline) => {}
                            _ = wake => {}
                        }
                    }
                });
            }
        }
    }

    /// Writes pending changes and folds the journal into `.storage/auth` (call on shutdown):
    /// afterwards the directory holds exactly Home Assistant's format.
    pub async fn flush(self: &Arc<Self>) -> Result<(), StorageError> {
        *self.pending.lock() = None;
        self.save_now().await?;
        let journaled = self.journal.as_ref().is_some_and(|j| !j.is_empty());
        if self.needs_compaction.load(Ordering::Relaxed) || journaled {
            self.compact().await?;
        }
        Ok(())
    }
}
