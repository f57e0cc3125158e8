//! Challenges handed out and not answered yet: bounded, expiring, each usable once.

use indexmap::IndexMap;
use time::OffsetDateTime;

/// Most challenges kept for one user (older ones are forgotten first).
pub const MAX_PER_USER: usize = 8;
/// Most challenges kept for everyone together.
pub const MAX_TOTAL: usize = 1024;
/// How long a challenge can be answered (a login flow's own lifetime).
pub const LIFETIME: time::Duration = time::Duration::minutes(5);

struct Entry<T> {
    user_id: String,
    issued_at: OffsetDateTime,
    state: T,
}

/// Challenge (base64url, as the browser echoes it in `clientDataJSON`) -> what answering needs.
pub(crate) struct Pending<T> {
    entries: IndexMap<String, Entry<T>>,
}

impl<T> Default for Pending<T> {
    fn default() -> Self {
        Self {
            entries: IndexMap::new(),
        }
    }
}

impl<T> Pending<T> {
    /// Remembers `state` for `challenge`, forgetting expired, and the oldest over the limits.
    pub(crate) fn insert(
        &mut self,
        challenge: String,
        user_id: &str,
        now: OffsetDateTime,
        state: T,
    ) {
        self.entries.retain(|_, e| now - e.issued_at < LIFETIME);
        let of_user: Vec<String> = self
            .entries
            .iter()
            .filter(|(_, e)| e.user_id == user_id)
            .map(|(c, _)| c.clone())
            .collect();
        let surplus = (of_user.len() + 1).saturating_sub(MAX_PER_USER);
        for challenge in of_user.into_iter().take(surplus) {
            self.entries.shift_remove(&challenge);
        }
        while self.entries.len() >= MAX_TOTAL {
            self.entries.shift_remove_index(0);
        }
        self.entries.insert(
            challenge,
            Entry {
                user_id: user_id.to_owned(),
                issued_at: now,
                state,
            },
        );
    }

    /// Takes the state of `challenge` if it was issued to `user_id` and has not expired.
    /// A challenge of another user is left alone.
    pub(crate) fn take(
        &mut self,
        challenge: &str,
        user_id: &str,
        now: OffsetDateTime,
    ) -> Option<T> {
        let entry = self.entries.get(challenge)?;
        if entry.user_id != user_id {
            return None;
        }
        let entry = self.entries.shift_remove(challenge)?;
        (now - entry.issued_at < LIFETIME).then_some(entry.state)
    }

    /// How many are kept.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.entries.len()
    }
}
