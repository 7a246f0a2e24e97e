//! Durations as written in manifests: `500ms`, `3s`, `2m`, `1h`, and sums such as `1m30s`.

use std::time::Duration;

/// The finest unit a field keeps, so that the hint for a number without a unit offers only
/// forms the field takes (`900ms` is no help for a kernel timeout counted in seconds).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Resolution {
    Millis,
    /// Whole seconds, where a bare integer is also seconds.
    Seconds,
}

impl Resolution {
    /// What to write instead of the number `n` that has no unit; `quoted`: it was written as
    /// a string (`"900"`).
    pub(crate) fn unit_hint(self, n: &str, quoted: bool) -> String {
        match (self, quoted) {
            (Resolution::Millis, _) => format!("write e.g. {n}s or {n}ms"),
            (Resolution::Seconds, true) => format!("write {n}s, or {n} without quotes"),
            (Resolution::Seconds, false) => format!("write {n}s"),
        }
    }
}

/// Parses `500ms`, `3s`, `2m`, `1h`, `1h30m`. Every number needs a unit.
pub(crate) fn parse(s: &str) -> Result<Duration, String> {
    parse_in(s, Resolution::Millis)
}

/// [`parse`], for a field of resolution `res` (which shapes the hint for a missing unit).
pub(crate) fn parse_in(s: &str, res: Resolution) -> Result<Duration, String> {
    let bad = || {
        format!(
            "{} is not a duration (write e.g. 500ms, 3s, 2m, 1h or 1m30s)",
            super::yaml::quote(s)
        )
    };
    if s.is_empty() {
        return Err(bad());
    }
    let mut total: u128 = 0;
    // Units largest first, each once: `30s1m` or `1m1m` is more likely a slip than a sum.
    let mut last_factor = u128::MAX;
    let mut rest = s;
    while !rest.is_empty() {
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return Err(bad());
        }
        let n: u128 = rest[..digits].parse().map_err(|_| bad())?;
        rest = &rest[digits..];
        let unit_len = rest.bytes().take_while(u8::is_ascii_alphabetic).count();
        let factor_ms: u128 = match &rest[..unit_len] {
            "ms" => 1,
            "s" => 1_000,
            "m" => 60_000,
            "h" => 3_600_000,
            "" if rest.is_empty() && total == 0 => {
                return Err(format!(
                    "{} needs a unit ({})",
                    super::yaml::quote(s),
                    res.unit_hint(&n.to_string(), true)
                ));
            }
            _ => return Err(bad()),
        };
        if factor_ms >= last_factor {
            return Err(format!(
                "{} repeats a unit or puts a smaller one first (write units largest first, each \
                 once, e.g. 1h30m or 1m30s)",
                super::yaml::quote(s)
            ));
        }
        last_factor = factor_ms;
        rest = &rest[unit_len..];
        total = n
            .checked_mul(factor_ms)
            .and_then(|v| total.checked_add(v))
            .ok_or_else(bad)?;
    }
    let ms = u64::try_from(total).map_err(|_| bad())?;
    Ok(Duration::from_millis(ms))
}

/// The shortest exact form: `1h`, `90s`, `1500ms`.
pub(crate) fn format(d: Duration) -> String {
    let ms = d.as_millis();
    if ms == 0 {
        return "0s".to_owned();
    }
    if ms.is_multiple_of(3_600_000) {
        format!("{}h", ms / 3_600_000)
    } else if ms.is_multiple_of(60_000) {
        format!("{}m", ms / 60_000)
    } else if ms.is_multiple_of(1_000) {
        format!("{}s", ms / 1_000)
    } else {
        format!("{ms}ms")
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn parses_units_and_sums() {
        assert_eq!(parse("3s").unwrap(), Duration::from_secs(3));
        assert_eq!(parse("500ms").unwrap(), Duration::from_millis(500));
        assert_eq!(parse("2m").unwrap(), Duration::from_secs(120));
        assert_eq!(parse("1h").unwrap(), Duration::from_secs(3600));
        assert_eq!(parse("1m30s").unwrap(), Duration::from_secs(90));
        assert!(parse("3").unwrap_err().contains("needs a unit"));
        assert!(parse("3 s").unwrap_err().contains("is not a duration"));
        assert!(parse("30 days").unwrap_err().contains("is not a duration"));
        assert!(parse("1m30").unwrap_err().contains("is not a duration"));
        assert_eq!(
            parse("1h2m3s4ms").unwrap(),
            Duration::from_millis(3_723_004)
        );
        for slip in ["30s1m", "1m1m", "500ms1s"] {
            assert!(
                parse(slip)
                    .unwrap_err()
                    .contains("repeats a unit or puts a smaller one first"),
                "{slip}"
            );
        }
        assert!(parse("s").is_err());
        assert!(parse("3d").is_err());
        assert!(parse("99999999999999999999999h").is_err());
    }

    #[test]
    fn the_hint_for_a_missing_unit_offers_only_what_the_field_takes() {
        assert_eq!(
            parse("900").unwrap_err(),
            "\"900\" needs a unit (write e.g. 900s or 900ms)"
        );
        assert_eq!(
            parse_in("900", Resolution::Seconds).unwrap_err(),
            "\"900\" needs a unit (write 900s, or 900 without quotes)"
        );
    }

    #[test]
    fn formats_round_trip() {
        for ms in [
            0u64, 1, 999, 1000, 1500, 60_000, 90_000, 3_600_000, 5_400_000,
        ] {
            let d = Duration::from_millis(ms);
            assert_eq!(parse(&format(d)).unwrap(), d, "{}", format(d));
        }
    }
}
