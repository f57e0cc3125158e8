//! Change events a host can subscribe to (HA fires these on its event bus).

/// Something changed about a user.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum AuthEvent {
    /// A user was created.
    UserAdded {
        /// The user's id.
        user_id: String,
    },
    /// A user was updated (fired even when nothing changed).
    UserUpdated {
        /// The user's id.
        user_id: String,
    },
    /// A user was removed.
    UserRemoved {
        /// The user's id.
        user_id: String,
    },
    /// A refresh token was revoked (deleted).
    RefreshTokenRevoked {
        /// The token's id.
        token_id: String,
        /// Its owner's id.
        user_id: String,
    },
}

impl AuthEvent {
    /// HA's event type name (`user_added`, ...).
    pub fn event_type(&self) -> &'static str {
        match self {
            AuthEvent::UserAdded { .. } => "user_added",
            AuthEvent::UserUpdated { .. } => "user_updated",
            AuthEvent::UserRemoved { .. } => "user_removed",
            AuthEvent::RefreshTokenRevoked { .. } => "refresh_token_revoked",
        }
    }
}
