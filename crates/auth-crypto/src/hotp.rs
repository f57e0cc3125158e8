//! HOTP (RFC 4226: HMAC-SHA1, dynamic truncation) as Home Assistant's `notify` MFA module
//! computes it with pyotp: the counter is written big-endian in as few bytes as it needs and
//! left-padded to *at least* 8, so counters of 2^64 and more (the usual case there: a random
//! 32-digit number) are longer than RFC 4226's 8 bytes and are not truncated.

use hmac::{Hmac, Mac};
use sha1::Sha1;

/// The counter bytes pyotp feeds to HMAC.
fn counter_bytes(counter: u128) -> Vec<u8> {
    let bytes = counter.to_be_bytes();
    let first = bytes.iter().position(|b| *b != 0).unwrap_or(bytes.len());
    let minimal = &bytes[first..];
    let mut out = vec![0u8; 8usize.saturating_sub(minimal.len())];
    out.extend_from_slice(minimal);
    out
}

/// The `digits`-digit code (zero-padded) of `key` for `counter`. `digits` is at most 9.
#[must_use]
pub fn hotp_sha1(key: &[u8], counter: u128, digits: u32) -> String {
    let digits = digits.clamp(1, 9);
    let Ok(mut mac) = Hmac::<Sha1>::new_from_slice(key) else {
        unreachable!("HMAC accepts keys of any length")
    };
    mac.update(&counter_bytes(counter));
    let digest = mac.finalize().into_bytes();
    let offset = usize::from(digest[digest.len() - 1] & 0x0f);
    let binary = (u32::from(digest[offset]) & 0x7f) << 24
        | u32::from(digest[offset + 1]) << 16
        | u32::from(digest[offset + 2]) << 8
        | u32::from(digest[offset + 3]);
    let code = binary % 10u32.pow(digits);
    format!("{code:0width$}", width = digits as usize)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc_4226_appendix_d_vectors() {
        let key = b"12345678901234567890";
        let expected = [
            "755224", "287082", "359152", "969429", "338314", "254676", "287922", "162583",
            "399871", "520489",
        ];
        for (counter, code) in expected.iter().enumerate() {
            assert_eq!(hotp_sha1(key, counter as u128, 6), *code);
        }
    }

    #[test]
    fn counters_past_64_bits_are_not_truncated() {
        assert_eq!(counter_bytes(0), vec![0; 8]);
        assert_eq!(counter_bytes(1), vec![0, 0, 0, 0, 0, 0, 0, 1]);
        let big = (1u128 << 64) + 5;
        assert_eq!(counter_bytes(big), vec![1, 0, 0, 0, 0, 0, 0, 0, 5]);
        // Nine counter bytes give another code than the same value cut to eight.
        let key = b"12345678901234567890";
        assert_ne!(hotp_sha1(key, big, 6), hotp_sha1(key, 5, 6));
    }
}
