//! Users, groups, credentials and refresh tokens, as Home Assistant models them.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use time::{Duration, OffsetDateTime};

use crate::permissions::Policy;

/// Id of the system group "Administrators".
pub const GROUP_ID_ADMIN: &str = "system-admin";
/// Id of the system group "Users".
pub const GROUP_ID_USER: &str = "system-users";
/// Id of the system group "Read Only".
pub const GROUP_ID_READ_ONLY: &str = "system-read-only";

/// Default lifetime of an access token (30 minutes).
pub const ACCESS_TOKEN_EXPIRATION: Duration = Duration::minutes(30);
/// Sliding lifetime of a normal refresh token (90 days).
pub const REFRESH_TOKEN_EXPIRATION: Duration = Duration::days(90);
/// How long a login flow may take to pass its MFA step (counted from the flow's start).
pub const MFA_SESSION_EXPIRATION: Duration = Duration::minutes(5);
/// Lifetime of an authorization code.
pub const AUTH_CODE_EXPIRATION: Duration = Duration::minutes(10);

/// A group of users sharing a permission policy.
#[derive(Clone, Debug, PartialEq)]
pub struct Group {
    /// Group id (`system-*` for the system groups, else UUID4 hex).
    pub id: String,
    /// Display name.
    pub name: Option<String>,
    /// Permission policy.
    pub policy: Policy,
    /// True only for the three system groups.
    pub system_generated: bool,
}

impl Group {
    /// The three system groups, in HA's order: admin, users, read-only.
    pub fn system_groups() -> Vec<Group> {
        vec![
            Self::system(GROUP_ID_ADMIN),
            Self::system(GROUP_ID_USER),
            Self::system(GROUP_ID_READ_ONLY),
        ]
    }

    /// The system group with the given id, with its fixed name and policy.
    pub fn system(id: &str) -> Group {
        let (name, policy) = match id {
            GROUP_ID_ADMIN => ("Administrators", Policy::admin()),
            GROUP_ID_USER => ("Users", Policy::user()),
            _ => ("Read Only", Policy::read_only()),
        };
        Group {
            id: id.to_owned(),
            name: Some(name.to_owned()),
            policy,
            system_generated: true,
        }
    }

    /// Whether `id` names one of the three system groups.
    pub fn is_system_id(id: &str) -> bool {
        matches!(id, GROUP_ID_ADMIN | GROUP_ID_USER | GROUP_ID_READ_ONLY)
    }
}

/// The identity a provider vouches for, linked to one user.
#[derive(Clone, Debug, PartialEq)]
pub struct Credentials {
    /// Credential id (UUID4 hex).
    pub id: String,
    /// Type of the provider that owns it.
    pub auth_provider_type: String,
    /// Config id of the provider (null when not configured).
    pub auth_provider_id: Option<String>,
    /// Provider-specific identity, e.g. `{"username": "alice"}`.
    pub data: Map<String, Value>,
    /// True until linked to a user or loaded from disk; never persisted.
    pub is_new: bool,
}

impl Credentials {
    /// Whether this credential belongs to the provider `(type, id)`.
    pub fn belongs_to(&self, provider_type: &str, provider_id: Option<&str>) -> bool {
        self.auth_provider_type == provider_type && self.auth_provider_id.as_deref() == provider_id
    }

    /// `data[key]` as a string, if it is one.
    pub fn data_str(&self, key: &str) -> Option<&str> {
        self.data.get(key).and_then(Value::as_str)
    }
}

/// A person (or service account) who can sign in.
#[derive(Clone, Debug, PartialEq)]
pub struct User {
    /// User id (UUID4 hex).
    pub id: String,
    /// Display name.
    pub name: Option<String>,
    /// The owner has every permission and cannot be deactivated or removed.
    pub is_owner: bool,
    /// Inactive users cannot authenticate.
    pub is_active: bool,
    /// Service accounts created by the system.
    pub system_generated: bool,
    /// May only authenticate from local networks.
    pub local_only: bool,
    /// Group ids, in order.
    pub group_ids: Vec<String>,
    /// Linked credentials, in order.
    pub credentials: Vec<Credentials>,
}

impl User {
    /// `is_owner` or (active and member of `system-admin`).
    pub fn is_admin(&self) -> bool {
        self.is_owner || (self.is_active && self.group_ids.iter().any(|g| g == GROUP_ID_ADMIN))
    }
}

/// The three kinds of refresh token.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TokenType {
    /// A human user's session from the OAuth flow.
    Normal,
    /// A system user's token.
    System,
    /// A long-lived access token created by a user.
    LongLivedAccessToken,
}

impl TokenType {
    /// The string HA stores.
    pub fn as_str(self) -> &'static str {
        match self {
            TokenType::Normal => "normal",
            TokenType::System => "system",
            TokenType::LongLivedAccessToken => "long_lived_access_token",
        }
    }

    /// Parses HA's string; `None` for anything else.
    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "normal" => Some(TokenType::Normal),
            "system" => Some(TokenType::System),
            "long_lived_access_token" => Some(TokenType::LongLivedAccessToken),
            _ => None,
        }
    }
}

/// A refresh token: the long-term secret behind access tokens.
#[derive(Clone, Debug, PartialEq)]
pub struct RefreshToken {
    /// Token id (UUID4 hex), the JWT `iss`.
    pub id: String,
    /// Owning user's id.
    pub user_id: String,
    /// OAuth client id (required for normal tokens, null for system and LLAT).
    pub client_id: Option<String>,
    /// Client display name (required and unique per user for LLATs).
    pub client_name: Option<String>,
    /// Client icon.
    pub client_icon: Option<String>,
    /// The token's type.
    pub token_type: TokenType,
    /// Creation time.
    pub created_at: OffsetDateTime,
    /// Lifetime of access tokens minted from it.
    pub access_token_expiration: Duration,
    /// The secret sent to clients as `refresh_token` (128 hex).
    pub token: String,
    /// HMAC key of its access tokens (128 hex, used as ASCII bytes).
    pub jwt_key: String,
    /// When an access token was last minted from it.
    pub last_used_at: Option<OffsetDateTime>,
    /// The remote IP of that mint.
    pub last_used_ip: Option<String>,
    /// Float Unix seconds after which it expires; `None` = never.
    pub expire_at: Option<f64>,
    /// Id of the credential used to sign in.
    pub credential_id: Option<String>,
    /// Version of the software that created it.
    pub version: Option<String>,
}

impl RefreshToken {
    /// Whether the token is past its `expire_at` at `now`.
    pub fn is_expired(&self, now: OffsetDateTime) -> bool {
        match self.expire_at {
            Some(at) if at != 0.0 => crate::timefmt::to_unix_f64(now) >= at,
            _ => false,
        }
    }
}

/// What a provider tells the manager about a user signing in for the first time.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct UserMeta {
    /// Display name.
    pub name: Option<String>,
    /// Whether the new user is active.
    pub is_active: bool,
    /// Group id; `None` means `system-admin`.
    pub group: Option<String>,
    /// Local-only flag; `None` means false.
    pub local_only: Option<bool>,
}
