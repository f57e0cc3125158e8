//! Failed-login counting and IP bans (http-api.md §9), safer than Home Assistant's: the counter
//! decays (half-life), bans expire, the ban list (in memory and `ip_bans.yaml`) is bounded, and
//! IPv6 clients are counted and banned by /64 (one subscriber's prefix).

use std::collections::HashMap;
use std::net::{IpAddr, Ipv6Addr};
use std::path::PathBuf;
use std::time::Duration;

use auth_core::SharedClock;
use parking_lot::Mutex;
use time::OffsetDateTime;

use crate::net::canonical;

/// Most IPs tracked at once; beyond that the weakest counters are dropped.
const MAX_TRACKED: usize = 65_536;

/// Default bound of the ban list, in memory and in `ip_bans.yaml`.
pub const DEFAULT_MAX_BANS: usize = 65_536;

/// What a client is counted and banned as: its address (IPv4-mapped IPv6 as IPv4), or for IPv6
/// its /64 network, since one subscriber usually holds a whole /64 and could rotate through it.
pub fn ban_key(ip: IpAddr) -> IpAddr {
    match canonical(ip) {
        IpAddr::V6(v6) => IpAddr::V6(Ipv6Addr::from(
            u128::from(v6) & 0xffff_ffff_ffff_ffff_0000_0000_0000_0000,
        )),
        v4 => v4,
    }
}

#[derive(Clone, Copy, Debug)]
struct Attempts {
    score: f64,
    updated: OffsetDateTime,
}

/// The ban list and failed-attempt counters.
#[derive(Debug)]
pub struct Bans {
    enabled: bool,
    threshold: i64,
    ban_duration: Option<Duration>,
    half_life: Duration,
    max_bans: usize,
    file: Option<PathBuf>,
    /// Entries in `ip_bans.yaml` (expired and unreadable ones included); held while writing it.
    file_entries: Mutex<usize>,
    clock: SharedClock,
    attempts: Mutex<HashMap<IpAddr, Attempts>>,
    /// Ban keys ([`ban_key`]) and when they were banned.
    banned: Mutex<HashMap<IpAddr, OffsetDateTime>>,
    /// Login attempts being evaluated right now, per IP (see [`Bans::begin_attempt`]).
    in_flight: Mutex<HashMap<IpAddr, u32>>,
}

/// Why [`Bans::begin_attempt`] refused an attempt.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Refused {
    /// The IP is banned.
    Banned,
    /// Enough attempts from the IP are being evaluated to reach the threshold if they fail.
    Busy,
}

/// A login attempt being evaluated; it counts against its IP's threshold until dropped (by then
/// a failure has been recorded with [`Bans::record_failure`]).
#[derive(Debug)]
pub struct Attempt<'a> {
    bans: &'a Bans,
    ip: Option<IpAddr>,
}

impl Drop for Attempt<'_> {
    fn drop(&mut self) {
        let Some(ip) = self.ip else { return };
        let mut in_flight = self.bans.in_flight.lock();
        if let Some(count) = in_flight.get_mut(&ip) {
            *count = count.saturating_sub(1);
            if *count == 0 {
                in_flight.remove(&ip);
            }
        }
    }
}

impl Bans {
    /// A ban manager from `options`; `file` is `<config>/ip_bans.yaml` (loaded now, appended on
    /// each ban, rewritten when it reaches `options.max_bans` entries).
    pub fn new(options: &crate::HttpOptions, file: Option<PathBuf>, clock: SharedClock) -> Self {
        let this = Self {
            enabled: options.ip_ban_enabled,
            threshold: options.login_attempts_threshold,
            ban_duration: options.ban_duration,
            half_life: options.failed_attempt_half_life,
            max_bans: options.max_bans.max(1),
            file,
            file_entries: Mutex::new(0),
            clock,
            attempts: Mutex::new(HashMap::new()),
            banned: Mutex::new(HashMap::new()),
            in_flight: Mutex::new(HashMap::new()),
        };
        this.load();
        this
    }

    /// Loads `ip_bans.yaml`. Bans older than `ban_duration` (Home Assistant's never expire) are
    /// dropped with a warning naming them; beyond `max_bans`, the oldest are dropped.
    fn load(&self) {
        let Some(path) = &self.file else { return };
        let entries = match crate::ban_file::read(path) {
            Ok((entries, _skipped)) => entries,
            Err(error) => {
                tracing::error!(%error, "no bans loaded from ip_bans.yaml");
                return;
            }
        };
        *self.file_entries.lock() = entries.len();
        let now = self.clock.now();
        let mut expired = Vec::new();
        let mut banned = self.banned.lock();
        for entry in entries {
            let banned_at = entry.banned_at.unwrap_or(now);
            if self.expired(banned_at, now) {
                expired.push(format!(
                    "{} (banned at {})",
                    entry.ip,
                    auth_core::timefmt::to_iso(banned_at)
                ));
                continue;
            }
            let at = banned.entry(ban_key(entry.ip)).or_insert(banned_at);
            *at = (*at).max(banned_at);
        }
        if !expired.is_empty() {
            const NAMED: usize = 20;
            let more = expired.len().saturating_sub(NAMED);
            expired.truncate(NAMED);
            tracing::warn!(
                file = %path.display(),
                "not loading {} ban(s) older than ban_duration: {}{}",
                expired.len() + more,
                expired.join(", "),
                if more > 0 { format!(" and {more} more") } else { String::new() }
            );
        }
        self.evict(&mut banned, now);
    }

    /// Bounds the ban list: expired bans go first, then the oldest.
    fn evict(&self, banned: &mut HashMap<IpAddr, OffsetDateTime>, now: OffsetDateTime) {
        if banned.len() <= self.max_bans {
            return;
        }
        banned.retain(|_, at| !self.expired(*at, now));
        if banned.len() > self.max_bans {
            let mut by_age: Vec<(IpAddr, OffsetDateTime)> =
                banned.iter().map(|(k, at)| (*k, *at)).collect();
            by_age.sort_by_key(|(_, at)| *at);
            let excess = banned.len() - self.max_bans;
            for (key, at) in by_age.into_iter().take(excess) {
                tracing::warn!(ip = %key, banned_at = %auth_core::timefmt::to_iso(at), "ban list full; dropping its oldest ban");
                banned.remove(&key);
            }
        }
    }

    fn expired(&self, banned_at: OffsetDateTime, now: OffsetDateTime) -> bool {
        match self.ban_duration {
            Some(duration) => now - banned_at >= duration,
            None => false,
        }
    }

    /// Whether the ban middleware is installed.
    pub fn enabled(&self) -> bool {
        self.enabled
    }

    /// Whether `ip` is banned now (expired bans are dropped on the way).
    pub fn is_banned(&self, ip: IpAddr) -> bool {
        if !self.enabled {
            return false;
        }
        let ip = ban_key(ip);
        let now = self.clock.now();
        let mut banned = self.banned.lock();
        match banned.get(&ip) {
            Some(at) if self.expired(*at, now) => {
                banned.remove(&ip);
                false
            }
            Some(_) => true,
            None => false,
        }
    }

    /// Records a failed login or a request with invalid authentication; may ban the IP.
    pub fn record_failure(&self, ip: Option<IpAddr>, url: &str) {
        let Some(ip) = ip.map(canonical) else { return };
        // HA logs the URL as requested; ours hides flow ids and query values (issue 14 item 7).
        let url = crate::redact::loggable_url(url);
        tracing::warn!(
            "Login attempt or request with invalid authentication from {ip}. Requested URL: '{url}'."
        );
        let (ip, client) = (ban_key(ip), ip);
        if !self.enabled || self.threshold < 1 {
            return;
        }
        let now = self.clock.now();
        let score = {
            let mut attempts = self.attempts.lock();
            if attempts.len() >= MAX_TRACKED && !attempts.contains_key(&ip) {
                self.prune(&mut attempts, now);
            }
            let entry = attempts.entry(ip).or_insert(Attempts {
                score: 0.0,
                updated: now,
            });
            entry.score = decay(entry.score, now - entry.updated, self.half_life) + 1.0;
            entry.updated = now;
            entry.score
        };
        if score + 1e-3 >= self.threshold as f64 {
            self.ban(ip, client, now);
        }
    }

    /// Starts evaluating a login attempt from `ip`. Refused when `ip` is banned (it may have
    /// been banned after the request passed the ban check), or when the attempts of `ip`
    /// already being evaluated could, should they all fail, reach the threshold by themselves.
    /// Without this, concurrent requests would all pass the ban check before the first failure
    /// is counted, and an attacker would get as many guesses as requests in flight.
    pub fn begin_attempt(&self, ip: Option<IpAddr>) -> Result<Attempt<'_>, Refused> {
        let ip = match ip.map(ban_key) {
            Some(ip) if self.enabled && self.threshold >= 1 => ip,
            _ => {
                return Ok(Attempt {
                    bans: self,
                    ip: None,
                });
            }
        };
        // The score is read with `in_flight` held: an attempt that has left `in_flight` has
        // recorded its failure before, so it is counted one way or the other (never neither).
        // Lock order: in_flight, then attempts; nothing takes them the other way round.
        // `ban` marks the IP banned before it clears its score, so a score read as cleared
        // is followed by a ban seen here.
        let mut in_flight = self.in_flight.lock();
        let score = self.score(ip);
        if self.is_banned(ip) {
            return Err(Refused::Banned);
        }
        let running = in_flight.get(&ip).copied().unwrap_or(0);
        if score + f64::from(running) + 1.0 > self.threshold as f64 + 1e-3 {
            return Err(Refused::Busy);
        }
        in_flight.insert(ip, running + 1);
        Ok(Attempt {
            bans: self,
            ip: Some(ip),
        })
    }

    fn prune(&self, attempts: &mut HashMap<IpAddr, Attempts>, now: OffsetDateTime) {
        attempts.retain(|_, a| decay(a.score, now - a.updated, self.half_life) >= 0.5);
        if attempts.len() >= MAX_TRACKED {
            let mut scores: Vec<(IpAddr, f64)> =
                attempts.iter().map(|(ip, a)| (*ip, a.score)).collect();
            scores.sort_by(|a, b| a.1.total_cmp(&b.1));
            for (ip, _) in scores.into_iter().take(MAX_TRACKED / 4) {
                attempts.remove(&ip);
            }
        }
    }

    /// Bans `key` (the [`ban_key`] of `client`) and records it in `ip_bans.yaml`.
    fn ban(&self, key: IpAddr, client: IpAddr, now: OffsetDateTime) {
        // Banned first, then the score cleared (see `begin_attempt`).
        let newly = {
            let mut banned = self.banned.lock();
            let newly = banned.insert(key, now).is_none();
            self.evict(&mut banned, now);
            newly
        };
        self.attempts.lock().remove(&key);
        if !newly {
            return;
        }
        if key == client {
            tracing::warn!("Banned IP {client} for too many login attempts");
        } else {
            tracing::warn!("Banned IP {client} (its network {key}/64) for too many login attempts");
        }
        let Some(path) = &self.file else { return };
        let mut entries = self.file_entries.lock();
        let written = if *entries < self.max_bans {
            crate::ban_file::append(path, client, now).map(|()| *entries += 1)
        } else {
            // Full: write the (bounded, unexpired) list instead of growing the file.
            let mut current: Vec<(IpAddr, OffsetDateTime)> =
                self.banned.lock().iter().map(|(k, at)| (*k, *at)).collect();
            current.sort_by_key(|(_, at)| *at);
            let count = current.len();
            crate::ban_file::rewrite(path, &current).map(|()| *entries = count)
        };
        if let Err(error) = written {
            tracing::error!(%error, "cannot record the ban; it applies until restart");
        }
    }

    /// Lifts the ban of `ip` (its /64 for IPv6) in memory; whether there was one.
    pub fn unban(&self, ip: IpAddr) -> bool {
        self.banned.lock().remove(&ban_key(ip)).is_some()
    }

    /// The bans in force: ban key and when it was banned, oldest first.
    pub fn list(&self) -> Vec<(IpAddr, OffsetDateTime)> {
        let now = self.clock.now();
        let mut list: Vec<(IpAddr, OffsetDateTime)> = self
            .banned
            .lock()
            .iter()
            .filter(|(_, at)| !self.expired(**at, now))
            .map(|(k, at)| (*k, *at))
            .collect();
        list.sort_by_key(|(_, at)| *at);
        list
    }

    /// Forgets the failed attempts of `ip` (after a successful login).
    pub fn reset(&self, ip: Option<IpAddr>) {
        if let Some(ip) = ip {
            self.attempts.lock().remove(&ban_key(ip));
        }
    }

    /// Current (decayed) failed-attempt score of `ip`.
    pub fn score(&self, ip: IpAddr) -> f64 {
        let now = self.clock.now();
        self.attempts
            .lock()
            .get(&ban_key(ip))
            .map(|a| decay(a.score, now - a.updated, self.half_life))
            .unwrap_or(0.0)
    }

    /// Number of IPs with a failed-attempt counter.
    pub fn tracked(&self) -> usize {
        self.attempts.lock().len()
    }
}

fn decay(score: f64, elapsed: time::Duration, half_life: Duration) -> f64 {
    let half = half_life.as_secs_f64();
    if half <= 0.0 {
        return score;
    }
    let elapsed = elapsed.as_seconds_f64().max(0.0);
    score * 0.5f64.powf(elapsed / half)
}
