//! Failed-login counting and IP bans (http-api.md §9), safer than Home Assistant's: the counter
//! decays (half-life), bans expire, and the table a client can grow is bounded.

use std::collections::HashMap;
use std::io::Write;
use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

use auth_core::SharedClock;
use parking_lot::Mutex;
use time::OffsetDateTime;

use crate::net::canonical;

/// Most IPs tracked at once; beyond that the weakest counters are dropped.
const MAX_TRACKED: usize = 65_536;

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
    file: Option<PathBuf>,
    clock: SharedClock,
    attempts: Mutex<HashMap<IpAddr, Attempts>>,
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
    /// A ban manager; `file` is `<config>/ip_bans.yaml` (loaded now, appended on each ban).
    pub fn new(
        enabled: bool,
        threshold: i64,
        ban_duration: Option<Duration>,
        half_life: Duration,
        file: Option<PathBuf>,
        clock: SharedClock,
    ) -> Self {
        let this = Self {
            enabled,
            threshold,
            ban_duration,
            half_life,
            file,
            clock,
            attempts: Mutex::new(HashMap::new()),
            banned: Mutex::new(HashMap::new()),
            in_flight: Mutex::new(HashMap::new()),
        };
        this.load();
        this
    }

    fn load(&self) {
        let Some(path) = &self.file else { return };
        let Ok(text) = std::fs::read_to_string(path) else {
            return;
        };
        let parsed: Result<serde_yaml::Value, _> = serde_yaml::from_str(&text);
        let Ok(serde_yaml::Value::Mapping(map)) = parsed else {
            if !text.trim().is_empty() {
                tracing::error!(file = %path.display(), "ip_bans.yaml is not a mapping; no bans loaded from it");
            }
            return;
        };
        let now = self.clock.now();
        let mut banned = self.banned.lock();
        for (key, value) in map {
            let ip = key.as_str().and_then(|s| s.parse::<IpAddr>().ok());
            let Some(ip) = ip else {
                tracing::error!(file = %path.display(), entry = ?key, "skipping an invalid IP in ip_bans.yaml");
                continue;
            };
            let banned_at = value
                .get("banned_at")
                .and_then(|v| v.as_str())
                .and_then(auth_core::timefmt::parse_iso)
                .unwrap_or(now);
            if !self.expired(banned_at, now) {
                banned.insert(canonical(ip), banned_at);
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
        let ip = canonical(ip);
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
            self.ban(ip, now);
        }
    }

    /// Starts evaluating a login attempt from `ip`. Refused when `ip` is banned (it may have
    /// been banned after the request passed the ban check), or when the attempts of `ip`
    /// already being evaluated could, should they all fail, reach the threshold by themselves.
    /// Without this, concurrent requests would all pass the ban check before the first failure
    /// is counted, and an attacker would get as many guesses as requests in flight.
    pub fn begin_attempt(&self, ip: Option<IpAddr>) -> Result<Attempt<'_>, Refused> {
        let ip = match ip.map(canonical) {
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

    fn ban(&self, ip: IpAddr, now: OffsetDateTime) {
        // Banned first, then the score cleared (see `begin_attempt`).
        let newly = self.banned.lock().insert(ip, now).is_none();
        self.attempts.lock().remove(&ip);
        if !newly {
            return;
        }
        tracing::warn!("Banned IP {ip} for too many login attempts");
        if let Some(path) = &self.file {
            let entry = format!(
                "\n{ip}:\n  banned_at: '{}'\n",
                auth_core::timefmt::to_iso(now)
            );
            let written = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)
                .and_then(|mut f| f.write_all(entry.as_bytes()).and_then(|_| f.sync_all()));
            if let Err(error) = written {
                tracing::error!(file = %path.display(), %error, "cannot record the ban; it applies until restart");
            }
        }
    }

    /// Forgets the failed attempts of `ip` (after a successful login).
    pub fn reset(&self, ip: Option<IpAddr>) {
        if let Some(ip) = ip {
            self.attempts.lock().remove(&canonical(ip));
        }
    }

    /// Current (decayed) failed-attempt score of `ip`.
    pub fn score(&self, ip: IpAddr) -> f64 {
        let now = self.clock.now();
        self.attempts
            .lock()
            .get(&canonical(ip))
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
