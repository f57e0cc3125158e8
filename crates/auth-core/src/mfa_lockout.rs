//! Wrong MFA codes counted per login across login flows, with a lockout that ends by itself.
//!
//! A login flow aborts after a module's `max_retry` wrong codes, but whoever knows the password
//! can start flow after flow. So wrong codes are also counted per account: after
//! [`MfaLockoutPolicy::max_failures`] wrong codes within [`MfaLockoutPolicy::window`], the
//! account's code step refuses every code (right or wrong, without checking it) for
//! [`MfaLockoutPolicy::lockout`]; the login form says so (`errors.base` = [`ERROR_MFA_LOCKED`]).
//! Codes being checked right now count too, so concurrent flows cannot get more guesses
//! through than the limit. A correct code does not reset the count (an attacker must not
//! profit from the owner's sign-in); wrong codes simply age out of the window.

use std::collections::{HashMap, VecDeque};

use parking_lot::Mutex;
use time::{Duration, OffsetDateTime};

use crate::clock::SharedClock;

/// `errors.base` of a code form whose account is locked out.
pub const ERROR_MFA_LOCKED: &str = "mfa_locked";
/// Placeholder of that form: whole minutes (rounded up) until codes are checked again.
pub const PLACEHOLDER_LOCKED_MINUTES: &str = "mfa_locked_minutes";

/// When wrong codes lock an account's code step.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MfaLockoutPolicy {
    /// Wrong codes within `window` that lock the account (default 10); 0 turns the lockout off.
    pub max_failures: u32,
    /// How far back wrong codes count (default 10 minutes).
    pub window: Duration,
    /// How long the code step refuses once locked (default 15 minutes).
    pub lockout: Duration,
    /// Accounts tracked at once (default 4096); when full, the longest-quiet account that is
    /// neither locked nor being checked is forgotten first, and if there is none the code step
    /// refuses (fails closed).
    pub max_tracked: usize,
}

impl Default for MfaLockoutPolicy {
    fn default() -> Self {
        Self {
            max_failures: 10,
            window: Duration::minutes(10),
            lockout: Duration::minutes(15),
            max_tracked: 4096,
        }
    }
}

#[derive(Default)]
struct Record {
    /// Times of the wrong codes inside the window, oldest first (at most `max_failures`).
    failures: VecDeque<OffsetDateTime>,
    locked_until: Option<OffsetDateTime>,
    in_flight: u32,
    last_activity: Option<OffsetDateTime>,
}

impl Record {
    fn forget_old(&mut self, now: OffsetDateTime, policy: &MfaLockoutPolicy) {
        while self
            .failures
            .front()
            .is_some_and(|at| now - *at >= policy.window)
        {
            self.failures.pop_front();
        }
        if self.locked_until.is_some_and(|until| now >= until) {
            self.locked_until = None;
        }
    }

    fn idle(&self) -> bool {
        self.failures.is_empty() && self.locked_until.is_none() && self.in_flight == 0
    }
}

/// Why a code was not checked.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Locked {
    /// When the account's code step checks codes again (`None`: as soon as the codes being
    /// checked right now are done, or room frees in the table).
    pub until: Option<OffsetDateTime>,
}

/// The per-account counters.
pub(crate) struct MfaLockout {
    policy: MfaLockoutPolicy,
    clock: SharedClock,
    records: Mutex<HashMap<String, Record>>,
}

/// A code being checked for one account; report a wrong one with [`MfaAttempt::failed`].
pub(crate) struct MfaAttempt<'a> {
    lockout: &'a MfaLockout,
    key: Option<String>,
}

impl MfaLockout {
    pub(crate) fn new(policy: MfaLockoutPolicy, clock: SharedClock) -> Self {
        Self {
            policy,
            clock,
            records: Mutex::new(HashMap::new()),
        }
    }

    /// Starts checking a code for account `key`, or says why it may not be checked now.
    pub(crate) fn begin(&self, key: &str) -> Result<MfaAttempt<'_>, Locked> {
        if self.policy.max_failures == 0 {
            return Ok(MfaAttempt {
                lockout: self,
                key: None,
            });
        }
        let now = self.clock.now();
        let mut records = self.records.lock();
        if !records.contains_key(key) && records.len() >= self.policy.max_tracked.max(1) {
            self.make_room(&mut records, now);
            if records.len() >= self.policy.max_tracked.max(1) {
                tracing::warn!("too many accounts with wrong MFA codes are tracked; code refused");
                return Err(Locked { until: None });
            }
        }
        let record = records.entry(key.to_owned()).or_default();
        record.forget_old(now, &self.policy);
        record.last_activity = Some(now);
        if let Some(until) = record.locked_until {
            return Err(Locked { until: Some(until) });
        }
        let counted = record.failures.len() + record.in_flight as usize;
        if counted >= self.policy.max_failures as usize {
            let result = Err(Locked { until: None });
            if record.idle() {
                records.remove(key);
            }
            return result;
        }
        record.in_flight += 1;
        Ok(MfaAttempt {
            lockout: self,
            key: Some(key.to_owned()),
        })
    }

    /// Whether account `key` is locked out now.
    pub(crate) fn locked_until(&self, key: &str) -> Option<OffsetDateTime> {
        let now = self.clock.now();
        let mut records = self.records.lock();
        let record = records.get_mut(key)?;
        record.forget_old(now, &self.policy);
        record.locked_until
    }

    /// How many accounts are tracked.
    pub(crate) fn tracked(&self) -> usize {
        self.records.lock().len()
    }

    fn make_room(&self, records: &mut HashMap<String, Record>, now: OffsetDateTime) {
        for record in records.values_mut() {
            record.forget_old(now, &self.policy);
        }
        records.retain(|_, record| !record.idle());
        if records.len() < self.policy.max_tracked.max(1) {
            return;
        }
        let quietest = records
            .iter()
            .filter(|(_, r)| r.locked_until.is_none() && r.in_flight == 0)
            .min_by_key(|(_, r)| r.last_activity)
            .map(|(key, _)| key.clone());
        if let Some(key) = quietest {
            records.remove(&key);
        }
    }
}

impl MfaAttempt<'_> {
    /// Counts the code as wrong; `true` when this locked the account.
    pub(crate) fn failed(self) -> bool {
        let Some(key) = &self.key else {
            return false;
        };
        let lockout = self.lockout;
        let now = lockout.clock.now();
        let mut records = lockout.records.lock();
        let Some(record) = records.get_mut(key) else {
            return false;
        };
        record.forget_old(now, &lockout.policy);
        record.failures.push_back(now);
        record.last_activity = Some(now);
        if record.failures.len() >= lockout.policy.max_failures as usize {
            record.failures.clear();
            record.locked_until = Some(now + lockout.policy.lockout);
            return true;
        }
        false
    }
}

impl Drop for MfaAttempt<'_> {
    fn drop(&mut self) {
        let Some(key) = &self.key else { return };
        let mut records = self.lockout.records.lock();
        if let Some(record) = records.get_mut(key) {
            record.in_flight = record.in_flight.saturating_sub(1);
            if record.idle() {
                records.remove(key);
            }
        }
    }
}
