//! Timestamps the way Home Assistant writes them: Python `isoformat()` of UTC and float Unix seconds.

use time::format_description::well_known::Rfc3339;
use time::{OffsetDateTime, PrimitiveDateTime, UtcOffset};

/// Formats like Python's `datetime.isoformat()` for an aware UTC datetime:
/// `2026-11-21T22:18:03.049983+00:00`, without the fraction when microseconds are zero.
pub fn to_iso(dt: OffsetDateTime) -> String {
    let dt = dt.to_offset(UtcOffset::UTC);
    let micros = dt.microsecond();
    let base = format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}",
        dt.year(),
        u8::from(dt.month()),
        dt.day(),
        dt.hour(),
        dt.minute(),
        dt.second()
    );
    if micros == 0 {
        format!("{base}+00:00")
    } else {
        format!("{base}.{micros:06}+00:00")
    }
}

/// Parses an ISO-8601 timestamp leniently: with or without fraction, `Z` or any offset,
/// or no offset at all (taken as UTC). Returns `None` when the text is not a timestamp.
pub fn parse_iso(text: &str) -> Option<OffsetDateTime> {
    let text = text.trim();
    if let Ok(dt) = OffsetDateTime::parse(text, &Rfc3339) {
        return Some(dt.to_offset(UtcOffset::UTC));
    }
    // Python isoformat may use a space separator and may omit the offset.
    let normalised = text.replacen(' ', "T", 1);
    if let Ok(dt) = OffsetDateTime::parse(&normalised, &Rfc3339) {
        return Some(dt.to_offset(UtcOffset::UTC));
    }
    let naive = time::macros::format_description!(
        version = 2,
        "[year]-[month]-[day]T[hour]:[minute]:[second][optional [.[subsecond]]]"
    );
    PrimitiveDateTime::parse(&normalised, &naive)
        .ok()
        .map(PrimitiveDateTime::assume_utc)
}

/// A datetime as float Unix seconds with microsecond precision (`expire_at`).
pub fn to_unix_f64(dt: OffsetDateTime) -> f64 {
    let micros = dt.unix_timestamp_nanos() / 1_000;
    micros as f64 / 1_000_000.0
}

/// Float Unix seconds back to a datetime (rounded to the microsecond). `None` if out of range.
pub fn from_unix_f64(seconds: f64) -> Option<OffsetDateTime> {
    if !seconds.is_finite() {
        return None;
    }
    let micros = (seconds * 1_000_000.0).round() as i128;
    OffsetDateTime::from_unix_timestamp_nanos(micros * 1_000).ok()
}

/// Truncates a datetime to whole microseconds (what HA can store).
pub fn truncate_micros(dt: OffsetDateTime) -> OffsetDateTime {
    let nanos = dt.nanosecond();
    dt.replace_nanosecond(nanos - nanos % 1_000).unwrap_or(dt)
}
