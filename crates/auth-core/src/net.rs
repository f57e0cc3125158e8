//! Which IPs count as local (HA's `is_local`), and the "allowed to authenticate" rule.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use crate::models::User;

/// Whether `ip` is loopback, private or link-local as Home Assistant counts them (tokens.md §6).
pub fn is_local(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => is_local_v4(v4),
        IpAddr::V6(v6) => {
            if v6.is_loopback() {
                return true;
            }
            let seg = v6.segments();
            if seg[0] & 0xff00 == 0xfd00 || seg[0] & 0xffc0 == 0xfe80 {
                return true;
            }
            // IPv4-mapped: loopback and private ranges count, link-local does not.
            if let Some(v4) = v6.to_ipv4_mapped() {
                return v4.is_loopback() || v4.is_private();
            }
            false
        }
    }
}

fn is_local_v4(ip: Ipv4Addr) -> bool {
    ip.is_loopback() || ip.is_private() || ip.is_link_local()
}

/// The client a request counts as for per-client shares (open login flows): an IPv4 address
/// (also written as IPv4-mapped IPv6) is one client; an IPv6 address counts as its /64, which
/// one host can fill with addresses of its own.
pub fn client_key(ip: IpAddr) -> String {
    match ip {
        IpAddr::V4(v4) => v4.to_string(),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => v4.to_string(),
            None => {
                let prefix = u128::from(v6) & !((1u128 << 64) - 1);
                format!("{}/64", Ipv6Addr::from(prefix))
            }
        },
    }
}

/// Whether `ip` is a loopback address (v4, v6 or v4-mapped).
pub fn is_loopback(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => v4.is_loopback(),
        IpAddr::V6(v6) => {
            v6 == Ipv6Addr::LOCALHOST || v6.to_ipv4_mapped().is_some_and(|v4| v4.is_loopback())
        }
    }
}

/// HA's `user_not_allowed_do_auth` for a request from `remote`: `Some(reason)` when the user may
/// not authenticate. `remote` is `None` when the request's remote address is not an IP (HA's
/// "Invalid remote IP"); every check is made for a request, so HA's "No request available to
/// validate local access" cannot happen here.
pub fn user_not_allowed_reason(user: &User, remote: Option<IpAddr>) -> Option<&'static str> {
    if !user.is_active {
        return Some("User is not active");
    }
    if !user.local_only {
        return None;
    }
    let Some(ip) = remote else {
        return Some("Invalid remote IP");
    };
    if is_local(ip) {
        None
    } else {
        Some("User cannot authenticate remotely")
    }
}
