//! Gateway API durations (GEP-2257): one to four `<number><unit>` parts,
//! numbers of at most five digits, units `h`, `m`, `s`, `ms`; "0s" is zero.

use std::time::Duration;

/// The duration, or what is wrong with it.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let bad = || format!("{text:?} is not a Gateway API duration (e.g. 10s, 1h30m, 500ms)");
    let (mut total, mut parts, mut rest) = (Duration::ZERO, 0, text);
    while !rest.is_empty() {
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 || digits > 5 {
            return Err(bad());
        }
        let number: u64 = rest[..digits].parse().map_err(|_| bad())?;
        rest = &rest[digits..];
        let (unit, len) = if rest.starts_with("ms") {
            (Duration::from_millis(number), 2)
        } else if rest.starts_with('h') {
            (Duration::from_secs(number * 3600), 1)
        } else if rest.starts_with('m') {
            (Duration::from_secs(number * 60), 1)
        } else if rest.starts_with('s') {
            (Duration::from_secs(number), 1)
        } else {
            return Err(bad());
        };
        rest = &rest[len..];
        total += unit;
        parts += 1;
    }
    if parts == 0 || parts > 4 {
        return Err(bad());
    }
    Ok(total)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gateway_durations_parse_as_the_specification_writes_them() {
        let cases = [
            ("0s", Some(0)),
            ("10s", Some(10_000)),
            ("500ms", Some(500)),
            ("1h30m", Some(5_400_000)),
            ("1h1m1s1ms", Some(3_661_001)),
            ("99999ms", Some(99_999)),
            ("", None),
            ("10", None),
            ("1.5s", None),
            ("100000s", None),
            ("1h1m1s1ms1ms", None),
            ("-1s", None),
            ("1d", None),
            ("1 s", None),
        ];
        for (text, millis) in cases {
            assert_eq!(
                parse_duration(text).ok().map(|d| d.as_millis() as u64),
                millis,
                "{text:?}"
            );
        }
    }
}
