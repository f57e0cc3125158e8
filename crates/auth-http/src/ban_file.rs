//! `<config>/ip_bans.yaml` in Home Assistant's format (storage.md §2.7): a mapping
//! `IP: {banned_at: ISO-8601}`, appended on each ban, rewritten (temp file, fsync, rename) when
//! it has to shrink.

use std::io::Write;
use std::net::IpAddr;
use std::path::Path;

use time::OffsetDateTime;

/// One entry of the file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BanEntry {
    /// The banned address, as written.
    pub ip: IpAddr,
    /// When it was banned (`None`: absent or null, which Home Assistant reads as "now").
    pub banned_at: Option<OffsetDateTime>,
}

/// Why the file could not be used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BanFileError {
    /// Reading or writing failed.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The file is not a YAML mapping.
    #[error("{path}: not a YAML mapping of IP addresses to {{banned_at: ...}}")]
    NotAMapping {
        /// The file.
        path: String,
    },
}

/// Reads the entries; a missing or empty file has none. Entries with an invalid IP or
/// `banned_at` are skipped with an error log, as Home Assistant does; they are returned in
/// `skipped` (as text) so callers can say so.
pub fn read(path: &Path) -> Result<(Vec<BanEntry>, Vec<String>), BanFileError> {
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
            return Ok((Vec::new(), Vec::new()));
        }
        Err(source) => {
            return Err(BanFileError::Io {
                path: path.display().to_string(),
                source,
            });
        }
    };
    if text.trim().is_empty() {
        return Ok((Vec::new(), Vec::new()));
    }
    let parsed: Result<serde_yaml::Value, _> = serde_yaml::from_str(&text);
    let Ok(serde_yaml::Value::Mapping(map)) = parsed else {
        return Err(BanFileError::NotAMapping {
            path: path.display().to_string(),
        });
    };
    let mut entries = Vec::with_capacity(map.len());
    let mut skipped = Vec::new();
    for (key, value) in map {
        let Some(ip) = key.as_str().and_then(|s| s.trim().parse::<IpAddr>().ok()) else {
            tracing::error!(file = %path.display(), entry = ?key, "skipping an invalid IP in ip_bans.yaml");
            skipped.push(format!("{key:?}"));
            continue;
        };
        let banned_at = match value.get("banned_at") {
            None | Some(serde_yaml::Value::Null) => None,
            Some(serde_yaml::Value::String(s)) => match auth_core::timefmt::parse_iso(s) {
                Some(at) => Some(at),
                None => {
                    tracing::error!(file = %path.display(), %ip, "skipping a ban with an invalid banned_at in ip_bans.yaml");
                    skipped.push(ip.to_string());
                    continue;
                }
            },
            Some(_) => {
                tracing::error!(file = %path.display(), %ip, "skipping a ban with an invalid banned_at in ip_bans.yaml");
                skipped.push(ip.to_string());
                continue;
            }
        };
        entries.push(BanEntry { ip, banned_at });
    }
    Ok((entries, skipped))
}

fn entry_text(ip: IpAddr, at: OffsetDateTime) -> String {
    format!(
        "\n{ip}:\n  banned_at: '{}'\n",
        auth_core::timefmt::to_iso(at)
    )
}

/// Appends one ban, as Home Assistant does (and fsyncs it).
pub fn append(path: &Path, ip: IpAddr, at: OffsetDateTime) -> Result<(), BanFileError> {
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .and_then(|mut f| {
            f.write_all(entry_text(ip, at).as_bytes())
                .and_then(|()| f.sync_all())
        })
        .map_err(|source| BanFileError::Io {
            path: path.display().to_string(),
            source,
        })
}

/// Replaces the file with exactly `entries` (temp file, fsync, rename, directory fsync).
pub fn rewrite(path: &Path, entries: &[(IpAddr, OffsetDateTime)]) -> Result<(), BanFileError> {
    let io = |source| BanFileError::Io {
        path: path.display().to_string(),
        source,
    };
    let text: String = entries
        .iter()
        .map(|(ip, at)| entry_text(*ip, *at))
        .collect();
    let temp = path.with_extension("yaml.tmp");
    let written = std::fs::File::create(&temp).and_then(|mut f| {
        f.write_all(text.as_bytes())?;
        f.sync_all()
    });
    if let Err(error) = written {
        let _ = std::fs::remove_file(&temp);
        return Err(io(error));
    }
    std::fs::rename(&temp, path).map_err(io)?;
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::File::open(dir)
            .and_then(|d| d.sync_all())
            .map_err(io)?;
    }
    Ok(())
}
