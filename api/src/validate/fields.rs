//! Checks of single field values the validators share: durations, CIDRs,
//! ports, DNS names.

use super::Problems;

pub(super) fn duration(p: &mut Problems, field: &str, value: &str) {
    if humantime::parse_duration(value).is_err() {
        p.reject(
            field,
            format!("{value:?} is not a duration (e.g. 24h, 90m, 30s, 250ms)"),
        );
    }
}

pub(super) fn cidr(p: &mut Problems, field: String, value: &str) {
    if value.parse::<ipnet::IpNet>().is_err() {
        p.reject(field, format!("{value:?} is not a CIDR (e.g. 10.0.0.0/8)"));
    }
}

pub(super) fn port(p: &mut Problems, field: String, value: u32) {
    if !(1..=65535).contains(&value) {
        p.reject(field, format!("{value} is not a port (1-65535)"));
    }
}

/// A DNS name: dot-separated labels of letters, digits and inner dashes,
/// each 1-63 bytes, 253 in all.
pub(super) fn is_dns_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 253
        && name.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-')
                && !label.starts_with('-')
                && !label.ends_with('-')
        })
}
