//! The append-only journal kept next to a `.storage/<key>` file: `<key>.journal.<n>` segments.
//!
//! Each durable change batch is one line `<fnv1a-64 hex> <compact JSON>\n`, appended and fsynced
//! before the batch is acknowledged. At start the segments are replayed in order on top of the
//! main file; compaction writes the main file (Home Assistant's format) and deletes the segments
//! it covers. A damaged tail of a segment (a write cut short by a crash, never acknowledged) is
//! dropped; a damaged record followed by good ones is refused with the file and byte offset.

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;

use async_trait::async_trait;
use parking_lot::Mutex;
use serde_json::Value;

use crate::storage::StorageError;

/// An append-only log of change records for one stored document (see the module docs).
#[async_trait]
pub trait Journal: Send + Sync + std::fmt::Debug {
    /// Every intact record of every segment, oldest first; later appends go to a new segment.
    async fn replay(&self) -> Result<Vec<Value>, StorageError>;
    /// Appends one record durably: when this returns `Ok`, the record survives a crash.
    async fn append(&self, record: &Value) -> Result<(), StorageError>;
    /// Ends the current segment; returns a mark for [`Journal::discard_sealed`].
    fn seal(&self) -> u64;
    /// Deletes every segment sealed at or before `mark` (the main document now holds them).
    async fn discard_sealed(&self, mark: u64) -> Result<(), StorageError>;
    /// Bytes appended since the journal was last emptied by [`Journal::discard_sealed`].
    fn len(&self) -> u64;
    /// Whether no segment holds any record.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// Whether records pile up until a compaction rewrites the document (a file journal), rather
    /// than being applied in place (a database's rows).
    fn compacts(&self) -> bool {
        true
    }
}

/// The file journal of one key in a `.storage` directory. Cheap to clone (clones share it).
#[derive(Debug, Clone)]
pub struct FileJournal {
    inner: Arc<JournalFiles>,
}

#[derive(Debug)]
struct JournalFiles {
    dir: PathBuf,
    key: String,
    state: Mutex<JournalState>,
}

#[derive(Debug, Default)]
struct JournalState {
    /// Number of the segment appends go to.
    segment: u64,
    /// Length of that segment on disk (0: not created yet).
    segment_len: u64,
    /// Bytes in all segments not yet discarded.
    total: u64,
    /// Bytes in segments sealed at each mark (for `total` after a discard).
    sealed_bytes: Vec<(u64, u64)>,
}

impl FileJournal {
    /// The journal of `key` in `dir`.
    pub fn new(dir: impl Into<PathBuf>, key: &str) -> Self {
        let inner = JournalFiles {
            dir: dir.into(),
            key: key.to_owned(),
            state: Mutex::new(JournalState::default()),
        };
        Self {
            inner: Arc::new(inner),
        }
    }
}

impl JournalFiles {
    fn segment_path(&self, n: u64) -> PathBuf {
        self.dir.join(format!("{}.journal.{n}", self.key))
    }

    /// The numbers of the segments on disk, ascending.
    fn segments(&self) -> Result<Vec<u64>, StorageError> {
        let entries = match fs::read_dir(&self.dir) {
            Ok(entries) => entries,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(source) => {
                return Err(StorageError::Read {
                    location: self.dir.display().to_string(),
                    source,
                });
            }
        };
        let prefix = format!("{}.journal.", self.key);
        let mut numbers: Vec<u64> = entries
            .flatten()
            .filter_map(|e| {
                let name = e.file_name().into_string().ok()?;
                let n = name.strip_prefix(&prefix)?;
                (!n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
                    .then(|| n.parse().ok())
                    .flatten()
            })
            .collect();
        numbers.sort_unstable();
        Ok(numbers)
    }

    fn replay_blocking(&self) -> Result<Vec<Value>, StorageError> {
        let segments = self.segments()?;
        let mut records = Vec::new();
        let mut total = 0;
        for &n in &segments {
            let path = self.segment_path(n);
            let location = path.display().to_string();
            let bytes = fs::read(&path).map_err(|source| StorageError::Read {
                location: location.clone(),
                source,
            })?;
            total += bytes.len() as u64;
            records.extend(parse_segment(&location, &bytes)?);
        }
        let mut state = self.state.lock();
        // Never append after a possibly torn tail: continue in a fresh segment.
        state.segment = segments.last().map_or(0, |n| n + 1);
        state.segment_len = 0;
        state.total = total;
        state.sealed_bytes = vec![(state.segment, total)];
        Ok(records)
    }

    fn append_blocking(&self, line: &[u8]) -> Result<(), StorageError> {
        let (segment, offset) = {
            let state = self.state.lock();
            (state.segment, state.segment_len)
        };
        let path = self.segment_path(segment);
        let location = path.display().to_string();
        let werr = |source| StorageError::Write {
            location: location.clone(),
            source,
        };
        let mut file = if offset == 0 {
            let file = create_private(&path).map_err(werr)?;
            sync_dir(&self.dir).map_err(werr)?;
            file
        } else {
            // Opened per append: a directory moved away or replaced fails here, as a rewrite would.
            OpenOptions::new().append(true).open(&path).map_err(werr)?
        };
        let written = file.write_all(line).and_then(|()| file.sync_data());
        let mut state = self.state.lock();
        match written {
            Ok(()) => {
                state.segment_len += line.len() as u64;
                state.total += line.len() as u64;
                Ok(())
            }
            Err(source) => {
                // Take the partial record back (best effort: a damaged record is a tail anyway),
                // and append the next record to a new segment, never after a failed region.
                if offset == 0 {
                    drop(file);
                    let _ = fs::remove_file(&path);
                } else {
                    let _ = file.set_len(offset).and_then(|()| file.sync_data());
                }
                state.segment += 1;
                state.segment_len = 0;
                Err(werr(source))
            }
        }
    }

    fn discard_blocking(&self, mark: u64) -> Result<(), StorageError> {
        for n in self.segments()?.into_iter().filter(|n| *n < mark) {
            let path = self.segment_path(n);
            if let Err(source) = fs::remove_file(&path)
                && source.kind() != std::io::ErrorKind::NotFound
            {
                return Err(StorageError::Write {
                    location: path.display().to_string(),
                    source,
                });
            }
        }
        let _ = sync_dir(&self.dir);
        let mut state = self.state.lock();
        if let Some(pos) = state.sealed_bytes.iter().position(|(m, _)| *m == mark) {
            let (_, bytes) = state.sealed_bytes[pos];
            state.sealed_bytes.drain(..=pos);
            for (_, b) in &mut state.sealed_bytes {
                *b = b.saturating_sub(bytes);
            }
            state.total = state.total.saturating_sub(bytes);
        }
        Ok(())
    }
}

#[async_trait]
impl Journal for FileJournal {
    async fn replay(&self) -> Result<Vec<Value>, StorageError> {
        let this = self.inner.clone();
        blocking(&self.inner.dir, move || this.replay_blocking()).await
    }

    async fn append(&self, record: &Value) -> Result<(), StorageError> {
        let line = encode(record);
        let this = self.inner.clone();
        blocking(&self.inner.dir, move || this.append_blocking(&line)).await
    }

    fn seal(&self) -> u64 {
        let mut state = self.inner.state.lock();
        if state.segment_len > 0 {
            state.segment += 1;
            state.segment_len = 0;
        }
        let (mark, total) = (state.segment, state.total);
        state.sealed_bytes.retain(|(m, _)| *m != mark);
        state.sealed_bytes.push((mark, total));
        mark
    }

    async fn discard_sealed(&self, mark: u64) -> Result<(), StorageError> {
        let this = self.inner.clone();
        blocking(&self.inner.dir, move || this.discard_blocking(mark)).await
    }

    fn len(&self) -> u64 {
        self.inner.state.lock().total
    }
}

async fn blocking<T: Send + 'static>(
    dir: &std::path::Path,
    f: impl FnOnce() -> Result<T, StorageError> + Send + 'static,
) -> Result<T, StorageError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| StorageError::Write {
            location: dir.display().to_string(),
            source: std::io::Error::other(e.to_string()),
        })?
}

/// One journal line: checksum, space, compact JSON, newline.
pub fn encode(record: &Value) -> Vec<u8> {
    let json = serde_json::to_vec(record).expect("a JSON value always serialises");
    let mut line = format!("{:016x} ", fnv1a(&json)).into_bytes();
    line.extend_from_slice(&json);
    line.push(b'\n');
    line
}

/// The records of one segment file. A damaged tail is dropped (with a warning); a damaged
/// record with intact records after it is an error naming `location` and its byte offset.
pub fn parse_segment(location: &str, bytes: &[u8]) -> Result<Vec<Value>, StorageError> {
    let mut records = Vec::new();
    let mut damaged: Option<(usize, &'static str)> = None;
    let mut offset = 0;
    while offset < bytes.len() {
        let rest = &bytes[offset..];
        let (line, next) = match rest.iter().position(|b| *b == b'\n') {
            Some(end) => (Some(&rest[..end]), offset + end + 1),
            None => (None, bytes.len()),
        };
        match line.map(decode) {
            Some(Ok(record)) => {
                if let Some((at, problem)) = damaged {
                    return Err(StorageError::Corrupt {
                        location: location.to_owned(),
                        problem: format!(
                            "journal record at byte offset {at} is damaged ({problem}) and intact records follow it; \
                             move the file away to start without the changes from offset {at} on"
                        ),
                    });
                }
                records.push(record);
            }
            Some(Err(problem)) => {
                damaged.get_or_insert((offset, problem));
            }
            None => {
                damaged.get_or_insert((offset, "cut short"));
            }
        }
        offset = next;
    }
    if let Some((at, problem)) = damaged {
        tracing::warn!(
            location,
            offset = at,
            problem,
            "dropping the damaged tail of a journal (a write cut short; it was never acknowledged)"
        );
    }
    Ok(records)
}

fn decode(line: &[u8]) -> Result<Value, &'static str> {
    if line.len() < 17 || line[16] != b' ' {
        return Err("no checksum");
    }
    let sum = std::str::from_utf8(&line[..16])
        .ok()
        .and_then(|s| u64::from_str_radix(s, 16).ok())
        .ok_or("no checksum")?;
    let json = &line[17..];
    if fnv1a(json) != sum {
        return Err("checksum mismatch");
    }
    serde_json::from_slice(json).map_err(|_| "not JSON")
}

/// FNV-1a, 64 bit: detects torn and damaged records (not an integrity check against attackers).
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3)
    })
}

#[cfg(unix)]
fn create_private(path: &std::path::Path) -> std::io::Result<File> {
    use std::os::unix::fs::OpenOptionsExt;
    OpenOptions::new()
        .append(true)
        .create(true)
        .truncate(false)
        .mode(0o600)
        .open(path)
}

#[cfg(not(unix))]
fn create_private(path: &std::path::Path) -> std::io::Result<File> {
    OpenOptions::new()
        .append(true)
        .create(true)
        .truncate(false)
        .open(path)
}

#[cfg(unix)]
fn sync_dir(dir: &std::path::Path) -> std::io::Result<()> {
    File::open(dir)?.sync_all()
}

#[cfg(not(unix))]
fn sync_dir(_dir: &std::path::Path) -> std::io::Result<()> {
    Ok(())
}
