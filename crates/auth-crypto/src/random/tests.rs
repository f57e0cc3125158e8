use super::*;

fn is_lower_hex(s: &str) -> bool {
    s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

#[test]
fn random_hex_has_requested_length_and_charset() {
    for n in [0usize, 1, 16, 32, 64] {
        let h = random_hex(n);
        assert_eq!(h.len(), 2 * n);
        assert!(is_lower_hex(&h), "{h}");
    }
}

#[test]
fn secret_token_is_128_lower_hex_and_fresh() {
    let a = new_secret_token();
    let b = new_secret_token();
    assert_eq!(a.len(), 128);
    assert!(is_lower_hex(&a));
    assert_ne!(a, b);
}

#[test]
fn uuid_hex_is_version_4_rfc_variant() {
    for _ in 0..32 {
        let id = new_uuid_hex();
        assert_eq!(id.len(), 32);
        assert!(is_lower_hex(&id), "{id}");
        // xxxxxxxx-xxxx-4xxx-Nxxx-xxxxxxxxxxxx with N in 8..=b
        assert_eq!(&id[12..13], "4", "{id}");
        assert!(matches!(&id[16..17], "8" | "9" | "a" | "b"), "{id}");
        let parsed = uuid::Uuid::parse_str(&id).unwrap();
        assert_eq!(parsed.get_version_num(), 4);
    }
    assert_ne!(new_uuid_hex(), new_uuid_hex());
}

#[test]
fn fill_random_overwrites_the_buffer() {
    // 64 zero bytes staying zero has probability 2^-512.
    let mut buf = [0u8; 64];
    fill_random(&mut buf);
    assert_ne!(buf, [0u8; 64]);
    let mut empty: [u8; 0] = [];
    fill_random(&mut empty);
}
