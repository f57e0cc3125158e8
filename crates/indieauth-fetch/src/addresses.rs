//! Which addresses a fetch may connect to.
//!
//! The policy keeps the intent of a home server: a client's page may live on this machine
//! (loopback) or on the home network (the private ranges 10/8, 172.16/12, 192.168/16 and IPv6
//! unique-local fc00::/7), or anywhere on the public internet. Everything IANA's IPv4 and IPv6
//! Special-Purpose Address Registries set aside for another use is refused, and so are
//! multicast, the deprecated site-local range, and the cloud instance-metadata services that sit
//! inside otherwise allowed ranges (AWS's `fd00:ec2::/32`). An IPv4 address written as IPv6
//! (`::ffff:a.b.c.d`, or NAT64's `64:ff9b::/96`) is judged as the IPv4 address it reaches.
//! IPv6 outside the global unicast (2000::/3) and unique-local blocks is not assigned and refused.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// One refused block: first address, prefix length, and why it is refused.
struct Block<A> {
    network: A,
    prefix: u8,
    reason: &'static str,
}

const fn v4(a: u8, b: u8, c: u8, d: u8, prefix: u8, reason: &'static str) -> Block<u32> {
    Block {
        network: u32::from_be_bytes([a, b, c, d]),
        prefix,
        reason,
    }
}

const fn v6(segments: [u16; 8], prefix: u8, reason: &'static str) -> Block<u128> {
    let mut network = 0u128;
    let mut i = 0;
    while i < 8 {
        network = (network << 16) | segments[i] as u128;
        i += 1;
    }
    Block {
        network,
        prefix,
        reason,
    }
}

/// Refused IPv4 blocks (IANA IPv4 Special-Purpose Address Registry, minus the private-use
/// blocks and loopback, which home clients use; plus multicast and the shared address space).
const REFUSED_V4: &[Block<u32>] = &[
    v4(
        0,
        0,
        0,
        0,
        8,
        "\"this network\" (0.0.0.0/8, reaches this host)",
    ),
    v4(
        100,
        64,
        0,
        0,
        10,
        "shared address space (100.64.0.0/10, carrier NAT; cloud metadata such as 100.100.100.200)",
    ),
    v4(
        169,
        254,
        0,
        0,
        16,
        "link-local (169.254.0.0/16, cloud metadata 169.254.169.254)",
    ),
    v4(
        192,
        0,
        0,
        0,
        24,
        "IETF protocol assignments (192.0.0.0/24, incl. Oracle cloud metadata 192.0.0.192)",
    ),
    v4(192, 0, 2, 0, 24, "documentation (192.0.2.0/24)"),
    v4(192, 31, 196, 0, 24, "AS112 (192.31.196.0/24)"),
    v4(192, 52, 193, 0, 24, "AMT (192.52.193.0/24)"),
    v4(
        192,
        88,
        99,
        0,
        24,
        "deprecated 6to4 relay anycast (192.88.99.0/24)",
    ),
    v4(
        192,
        175,
        48,
        0,
        24,
        "AS112 direct delegation (192.175.48.0/24)",
    ),
    v4(198, 18, 0, 0, 15, "benchmarking (198.18.0.0/15)"),
    v4(198, 51, 100, 0, 24, "documentation (198.51.100.0/24)"),
    v4(203, 0, 113, 0, 24, "documentation (203.0.113.0/24)"),
    v4(224, 0, 0, 0, 4, "multicast (224.0.0.0/4)"),
    v4(
        240,
        0,
        0,
        0,
        4,
        "reserved (240.0.0.0/4) and limited broadcast (255.255.255.255)",
    ),
];

/// Refused IPv6 blocks inside the otherwise allowed 2000::/3 and fc00::/7 (IANA IPv6
/// Special-Purpose Address Registry), plus AWS's instance services.
const REFUSED_V6: &[Block<u128>] = &[
    v6(
        [0x2001, 0, 0, 0, 0, 0, 0, 0],
        23,
        "IETF protocol assignments (2001::/23: Teredo, benchmarking, ORCHID, anycast services)",
    ),
    v6(
        [0x2001, 0xdb8, 0, 0, 0, 0, 0, 0],
        32,
        "documentation (2001:db8::/32)",
    ),
    v6(
        [0x2002, 0, 0, 0, 0, 0, 0, 0],
        16,
        "6to4 (2002::/16, a tunnel to an embedded IPv4 address)",
    ),
    v6(
        [0x2620, 0x4f, 0x8000, 0, 0, 0, 0, 0],
        48,
        "AS112 direct delegation (2620:4f:8000::/48)",
    ),
    v6(
        [0x3fff, 0, 0, 0, 0, 0, 0, 0],
        20,
        "documentation (3fff::/20)",
    ),
    v6(
        [0xfd00, 0x0ec2, 0, 0, 0, 0, 0, 0],
        32,
        "AWS instance services (fd00:ec2::/32: metadata fd00:ec2::254, DNS, time)",
    ),
];

fn matches<A: Into<u128> + Copy>(block: &Block<A>, address: A, bits: u8) -> bool {
    let shift = u32::from(bits - block.prefix);
    let address: u128 = address.into();
    let network: u128 = block.network.into();
    address.checked_shr(shift).unwrap_or(0) == network.checked_shr(shift).unwrap_or(0)
}

/// Why a fetch may not connect to `ip`, or `None` when it may (see the module docs).
pub fn refusal(ip: IpAddr) -> Option<&'static str> {
    match ip {
        IpAddr::V4(v4) => refusal_v4(v4),
        IpAddr::V6(v6) => refusal_v6(v6),
    }
}

/// Whether a fetch may connect to `ip`.
pub fn may_connect(ip: IpAddr) -> bool {
    refusal(ip).is_none()
}

fn refusal_v4(ip: Ipv4Addr) -> Option<&'static str> {
    let address = u32::from(ip);
    REFUSED_V4
        .iter()
        .find(|block| matches(block, address, 32))
        .map(|block| block.reason)
}

fn refusal_v6(ip: Ipv6Addr) -> Option<&'static str> {
    if let Some(v4) = ip.to_ipv4_mapped() {
        return refusal_v4(v4);
    }
    let address = u128::from(ip);
    let segments = ip.segments();
    // NAT64's well-known prefix reaches the IPv4 address in its last 32 bits.
    if segments[..6] == [0x64, 0xff9b, 0, 0, 0, 0] {
        return refusal_v4(Ipv4Addr::from(address as u32));
    }
    if ip == Ipv6Addr::LOCALHOST {
        return None;
    }
    let global_unicast = segments[0] & 0xe000 == 0x2000;
    let unique_local = segments[0] & 0xfe00 == 0xfc00;
    if !(global_unicast || unique_local) {
        return Some(match segments[0] {
            0 if ip.is_unspecified() => "unspecified (::, reaches this host)",
            0x0000..=0x00ff => {
                "reserved (::/8: IPv4-compatible, IPv4-translated, NAT64 local-use, discard-only)"
            }
            0x0100 => {
                "discard-only and dummy prefixes (100::/64, 100:0:0:1::/64; reserved 100::/8)"
            }
            0x5f00 => "segment routing SIDs (5f00::/16)",
            0xfe80..=0xfebf => "link-local (fe80::/10)",
            0xfec0..=0xfeff => "deprecated site-local (fec0::/10)",
            0xff00..=0xffff => "multicast (ff00::/8)",
            _ => "not assigned for unicast (outside 2000::/3 and fc00::/7)",
        });
    }
    REFUSED_V6
        .iter()
        .find(|block| matches(block, address, 128))
        .map(|block| block.reason)
}

#[cfg(test)]
mod tests {
    use super::{REFUSED_V4, REFUSED_V6, may_connect, refusal};

    /// Addresses a home server's clients live on, and public ones: all allowed.
    const ALLOWED: &[&str] = &[
        "127.0.0.1",
        "127.255.255.254",
        "10.0.0.2",
        "172.16.0.1",
        "172.31.255.254",
        "192.168.1.10",
        "1.1.1.1",
        "8.8.8.8",
        "100.63.255.255",
        "100.128.0.0",
        "192.0.1.1",
        "198.17.255.255",
        "198.20.0.0",
        "223.255.255.255",
        "::1",
        "fd00::1",
        "fc00::1",
        "fd00:ec3::254",
        "2606:4700:4700::1111",
        "2001:200::1",
        "2003::1",
        "::ffff:192.168.1.10",
        "::ffff:8.8.8.8",
        "64:ff9b::808:808",
    ];

    /// `(address, a word of the reason)`: every special-purpose block, at its edges.
    const REFUSED: &[(&str, &str)] = &[
        ("0.0.0.0", "this network"),
        ("0.255.255.255", "this network"),
        ("100.64.0.0", "shared"),
        ("100.100.100.200", "shared"),
        ("100.127.255.255", "shared"),
        ("169.254.169.254", "link-local"),
        ("192.0.0.192", "IETF"),
        ("192.0.0.170", "IETF"),
        ("192.0.2.1", "documentation"),
        ("192.31.196.1", "AS112"),
        ("192.52.193.1", "AMT"),
        ("192.88.99.1", "6to4"),
        ("192.175.48.1", "AS112"),
        ("198.18.0.1", "benchmarking"),
        ("198.19.255.255", "benchmarking"),
        ("198.51.100.7", "documentation"),
        ("203.0.113.9", "documentation"),
        ("224.0.0.1", "multicast"),
        ("239.255.255.250", "multicast"),
        ("240.0.0.1", "reserved"),
        ("255.255.255.255", "broadcast"),
        ("::", "unspecified"),
        ("::127.0.0.1", "reserved"),
        ("::ffff:0:a9fe:a9fe", "reserved"),
        ("64:ff9b:1::a9fe:a9fe", "reserved"),
        ("100::1", "discard"),
        ("100:0:0:1::1", "dummy"),
        ("::ffff:169.254.169.254", "link-local"),
        ("::ffff:0.0.0.0", "this network"),
        ("::ffff:100.100.100.200", "shared"),
        ("64:ff9b::a9fe:a9fe", "link-local"),
        ("64:ff9b::6464:64c8", "shared"),
        ("fd00:ec2::254", "AWS"),
        ("fd00:ec2::253", "AWS"),
        ("fd00:ec2:ffff::1", "AWS"),
        ("2001::1", "IETF"),
        ("2001:1::1", "IETF"),
        ("2001:2::1", "IETF"),
        ("2001:1ff:ffff::1", "IETF"),
        ("2001:db8::1", "documentation"),
        ("2002:a9fe:a9fe::1", "6to4"),
        ("2620:4f:8000::1", "AS112"),
        ("3fff::1", "documentation"),
        ("3fff:fff::1", "documentation"),
        ("5f00::1", "segment routing"),
        ("fe80::1", "link-local"),
        ("febf::1", "link-local"),
        ("fec0::1", "site-local"),
        ("ff02::1", "multicast"),
        ("4000::1", "not assigned"),
        ("e000::1", "not assigned"),
    ];

    #[test]
    fn home_and_public_addresses_are_allowed() {
        for allowed in ALLOWED {
            let ip = allowed.parse().unwrap();
            assert_eq!(refusal(ip), None, "{allowed}");
            assert!(may_connect(ip), "{allowed}");
        }
    }

    #[test]
    fn special_purpose_addresses_are_refused_with_their_reason() {
        for (refused, why) in REFUSED {
            let ip = refused.parse().unwrap();
            let reason = refusal(ip).unwrap_or_else(|| panic!("{refused} allowed"));
            assert!(
                reason.to_lowercase().contains(&why.to_lowercase()),
                "{refused}: {reason}"
            );
            assert!(!may_connect(ip), "{refused}");
        }
    }

    #[test]
    fn every_block_is_aligned_to_its_prefix() {
        for block in REFUSED_V4 {
            let host_bits = 32 - u32::from(block.prefix);
            assert_eq!(
                block.network & ((1u32 << host_bits) - 1),
                0,
                "{}",
                block.reason
            );
        }
        for block in REFUSED_V6 {
            let host_bits = 128 - u32::from(block.prefix);
            assert_eq!(
                block.network & ((1u128 << host_bits) - 1),
                0,
                "{}",
                block.reason
            );
        }
    }
}
