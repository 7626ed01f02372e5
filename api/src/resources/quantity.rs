//! Kubernetes resource quantities ("500m", "1", "1.5k", "2Ki"), as TrafficSplit
//! v1alpha1 weights are written.

/// A quantity in thousandths of a unit ("500m" -> 500, "1" -> 1000), so
/// weights written at different scales keep their ratios.
pub fn to_milli(text: &str) -> Result<u64, String> {
    let bad = || format!("{text:?} is not a non-negative quantity (e.g. 1, 500m, 1.5)");
    let s = text.trim();
    let split = s
        .find(|c: char| !(c.is_ascii_digit() || c == '.' || c == '+'))
        .unwrap_or(s.len());
    let (number, suffix) = s.split_at(split);
    if number.is_empty() || number.starts_with('.') && number.len() == 1 {
        return Err(bad());
    }
    let number = number.strip_prefix('+').unwrap_or(number);
    let (whole, frac) = number.split_once('.').unwrap_or((number, ""));
    if whole.is_empty() && frac.is_empty() || frac.contains('.') {
        return Err(bad());
    }
    // Value = digits * 10^-frac_len * multiplier, in milli-units.
    let digits: u128 = format!("{whole}{frac}").parse().map_err(|_| bad())?;
    let (num, den): (u128, u128) = match suffix {
        "" => (1000, 1),
        "m" => (1, 1),
        "k" => (1_000_000, 1),
        "M" => (1_000_000_000, 1),
        "G" => (1_000_000_000_000, 1),
        "Ki" => (1024 * 1000, 1),
        "Mi" => (1024 * 1024 * 1000, 1),
        "Gi" => (1024 * 1024 * 1024 * 1000, 1),
        _ => return Err(bad()),
    };
    let scale = 10u128.checked_pow(frac.len() as u32).ok_or_else(bad)?;
    let milli = digits.checked_mul(num).ok_or_else(bad)? / (den * scale);
    u64::try_from(milli).map_err(|_| bad())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantities_scale_to_milli_units() {
        let cases = [
            ("1", 1000),
            ("500m", 500),
            ("1.5", 1500),
            ("0", 0),
            ("10m", 10),
            ("2k", 2_000_000),
            ("1Ki", 1_024_000),
            ("+3", 3000),
            ("0.001", 1),
        ];
        for (text, want) in cases {
            assert_eq!(to_milli(text), Ok(want), "{text}");
        }
    }

    #[test]
    fn malformed_quantities_are_refused() {
        for text in ["", "-1", "1x", "m", ".", "1.2.3", "abc"] {
            assert_eq!(
                to_milli(text),
                Err(format!(
                    "{text:?} is not a non-negative quantity (e.g. 1, 500m, 1.5)"
                )),
                "{text}"
            );
        }
    }
}
