//! Failed-login counting and IP bans (http-api.md §9), safer than Home Assistant's: the counter
//! decays (half-life), bans expire, the ban list (in memory and `ip_bans.yaml`) is bounded, and
//! IPv6 clients are counted and banned by /64 (one subscriber's prefix).

use std::collections::HashMap;
use std::net::{IpAddr, Ipv6Addr};
use std::path::PathBuf;
use std::sync::{Arc, OnceLock};
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
    file_entries: Arc<Mutex<usize>>,
    clock: SharedClock,
    attempts: Mutex<HashMap<IpAddr, Attempts>>,
    /// Ban keys ([`ban_key`]) and when they were banned.
    banned: Arc<Mutex<HashMap<IpAddr, OffsetDateTime>>>,
    /// Writes of `ip_bans.yaml`, done in order by one task off the request path.
    file_writes: OnceLock<tokio::sync::mpsc::UnboundedSender<FileWrite>>,
    /// With a storage several instances share: the queue of its writer task (see [`Bans::share`]).
    shared: OnceLock<tokio::sync::mpsc::Sender<SharedWrite>>,
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
            file_entries: Arc::new(Mutex::new(0)),
            clock,
            attempts: Mutex::new(HashMap::new()),
            banned: Arc::new(Mutex::new(HashMap::new())),
            file_writes: OnceLock::new(),
            shared: OnceLock::new(),
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
        self.send(SharedWrite::Failure(ip));
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
        if self.shared.get().is_some() {
            self.send(SharedWrite::Ban(key, now));
            return;
        }
        let Some(path) = self.file.clone() else {
            return;
        };
        let (entries, max_bans) = (self.file_entries.clone(), self.max_bans);
        // The list a rewrite writes, as of this ban (a later ban is appended after it).
        let mut current: Vec<(IpAddr, OffsetDateTime)> =
            self.banned.lock().iter().map(|(k, at)| (*k, *at)).collect();
        current.sort_by_key(|(_, at)| *at);
        let write = move || {
            let mut entries = entries.lock();
            let written = if *entries < max_bans {
                crate::ban_file::append(&path, client, now).map(|()| *entries += 1)
            } else {
                // Full: write the (bounded, unexpired) list instead of growing the file.
                let count = current.len();
                crate::ban_file::rewrite(&path, &current).map(|()| *entries = count)
            };
            if let Err(error) = written {
                tracing::error!(%error, "cannot record the ban; it applies until restart");
            }
        };
        self.write_file(Box::new(write));
    }

    /// Runs `write` on a blocking thread, after the writes queued before it (in order), never
    /// on the request path; outside a Tokio runtime, right away.
    fn write_file(&self, write: FileWrite) {
        let Ok(handle) = tokio::runtime::Handle::try_current() else {
            return write();
        };
        let queue = self.file_writes.get_or_init(|| {
            let (queue, mut writes) = tokio::sync::mpsc::unbounded_channel::<FileWrite>();
            handle.spawn(async move {
                while let Some(write) = writes.recv().await {
                    if let Err(error) = tokio::task::spawn_blocking(write).await {
                        tracing::error!(%error, "writing ip_bans.yaml failed");
                    }
                }
            });
            queue
        });
        if let Err(error) = queue.send(write) {
            // The writer is gone (the runtime is shutting down): write here.
            (error.0)();
        }
    }

    /// Lifts the ban of `ip` (its /64 for IPv6) in memory (and, with a shared storage, on
    /// every instance); whether there was one here.
    pub fn unban(&self, ip: IpAddr) -> bool {
        self.send(SharedWrite::Unban(ban_key(ip)));
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
            self.send(SharedWrite::Reset(ban_key(ip)));
        }
    }

    /// Queues a write for the shared storage's writer task (none without one). A full queue
    /// drops the write with a warning: the request never waits for the database.
    fn send(&self, write: SharedWrite) {
        if let Some(queue) = self.shared.get()
            && let Err(error) = queue.try_send(write)
        {
            tracing::warn!(%error, "the shared ban store is behind; dropping a ban update");
        }
    }

    /// Shares bans and failed-login counters through `storage` when it is shared by several
    /// instances (a database; see [`auth_core::Storage::shared_bans`]): loads its bans, then a
    /// writer task adds this instance's failures, bans and resets to it (never on the request
    /// path), and every instance's bans and unbans apply here as they happen. `ip_bans.yaml`
    /// is then not used. Without a shared storage, does nothing.
    pub async fn share(
        &self,
        storage: &Arc<dyn auth_core::Storage>,
    ) -> Result<(), auth_core::StorageError> {
        let Some(store) = storage.shared_bans() else {
            return Ok(());
        };
        if !self.enabled || self.shared.get().is_some() {
            return Ok(());
        }
        let changes = storage.changes();
        let now = self.clock.now();
        for (ip, at) in store.list().await? {
            let Ok(ip) = ip.parse::<IpAddr>() else {
                continue;
            };
            let at = unix(at).unwrap_or(now);
            if !self.expired(at, now) {
                self.banned.lock().insert(ip, at);
            }
        }
        let (queue, writes) = tokio::sync::mpsc::channel(4096);
        let writer = SharedWriter {
            store: store.clone(),
            banned: self.banned.clone(),
            threshold: self.threshold,
            half_life: self.half_life,
            clock: self.clock.clone(),
        };
        tokio::spawn(writer.run(writes));
        if let Some(changes) = changes {
            tokio::spawn(follow(changes, store, self.banned.clone()));
        }
        let _ = self.shared.set(queue);
        Ok(())
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

/// A write of `ip_bans.yaml` (see [`Bans::write_file`]).
type FileWrite = Box<dyn FnOnce() + Send>;

/// A change for the shared ban store (see [`Bans::share`]).
#[derive(Debug)]
enum SharedWrite {
    Failure(IpAddr),
    Reset(IpAddr),
    Ban(IpAddr, OffsetDateTime),
    Unban(IpAddr),
}

/// The task that writes this instance's ban changes to the shared store, in order.
struct SharedWriter {
    store: Arc<dyn auth_core::SharedBans>,
    banned: Arc<Mutex<HashMap<IpAddr, OffsetDateTime>>>,
    threshold: i64,
    half_life: Duration,
    clock: SharedClock,
}

impl SharedWriter {
    async fn run(self, mut writes: tokio::sync::mpsc::Receiver<SharedWrite>) {
        while let Some(write) = writes.recv().await {
            if let Err(error) = self.write(write).await {
                tracing::error!(%error, "cannot update the shared bans");
            }
        }
    }

    async fn write(&self, write: SharedWrite) -> Result<(), auth_core::StorageError> {
        match write {
            SharedWrite::Failure(ip) => {
                // Counted over every instance: failures spread over several reach the threshold.
                let score = self
                    .store
                    .add_failure(&ip.to_string(), self.half_life.as_secs_f64())
                    .await?;
                if score + 1e-3 >= self.threshold as f64 {
                    let now = self.clock.now();
                    let newly = self.banned.lock().insert(ip, now).is_none();
                    if newly {
                        tracing::warn!(
                            "Banned IP {ip} for too many login attempts (counted over every instance)"
                        );
                    }
                    self.store.ban(&ip.to_string(), seconds(now)).await?;
                }
                Ok(())
            }
            SharedWrite::Reset(ip) => self.store.reset(&ip.to_string()).await,
            SharedWrite::Ban(ip, at) => self.store.ban(&ip.to_string(), seconds(at)).await,
            SharedWrite::Unban(ip) => self.store.unban(&ip.to_string()).await.map(drop),
        }
    }
}

/// Applies other instances' bans and unbans (a missed notice reads the whole list again).
async fn follow(
    mut changes: tokio::sync::broadcast::Receiver<auth_core::StoreChange>,
    store: Arc<dyn auth_core::SharedBans>,
    banned: Arc<Mutex<HashMap<IpAddr, OffsetDateTime>>>,
) {
    use tokio::sync::broadcast::error::RecvError;
    loop {
        let record = match changes.recv().await {
            Ok(change) if change.key != auth_core::storage::BANS_KEY => continue,
            Ok(change) => change.record,
            Err(RecvError::Lagged(_)) => None,
            Err(RecvError::Closed) => return,
        };
        let ip = |k: &str| {
            record
                .as_ref()
                .and_then(|r| r.get(k))
                .and_then(serde_json::Value::as_str)
                .and_then(|s| s.parse::<IpAddr>().ok())
        };
        if let Some(ip) = ip("ban") {
            let at = record
                .as_ref()
                .and_then(|r| r.get("at"))
                .and_then(serde_json::Value::as_f64)
                .and_then(unix)
                .unwrap_or_else(OffsetDateTime::now_utc);
            banned.lock().entry(ip).or_insert(at);
        } else if let Some(ip) = ip("unban") {
            banned.lock().remove(&ip);
        } else {
            match store.list().await {
                Ok(list) => {
                    let mut banned = banned.lock();
                    banned.clear();
                    for (ip, at) in list {
                        if let (Ok(ip), Some(at)) = (ip.parse::<IpAddr>(), unix(at)) {
                            banned.insert(ip, at);
                        }
                    }
                }
                Err(error) => tracing::error!(%error, "cannot read the shared bans"),
            }
        }
    }
}

fn seconds(at: OffsetDateTime) -> f64 {
    at.unix_timestamp_nanos() as f64 / 1e9
}

fn unix(seconds: f64) -> Option<OffsetDateTime> {
    OffsetDateTime::from_unix_timestamp_nanos((seconds * 1e9) as i128).ok()
}
