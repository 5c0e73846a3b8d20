//! Human sizes for the CLI: `64M`, `1G`, `512k`, `1048576`.

use crate::Error;

/// Parses a byte size: a decimal integer with an optional binary suffix
/// (k/K, m/M, g/G, t/T; an optional trailing `B` or `iB`), as docker and
/// podman accept. Negative numbers, fractions and unknown suffixes are refused.
pub fn parse_size(text: &str) -> Result<u64, Error> {
    let t = text.trim();
    let digits_end = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (num, suffix) = t.split_at(digits_end);
    if num.is_empty() {
        return Err(Error::invalid(format!(
            "size {text:?} must start with a non-negative whole number (like 64M, 1G or 1048576)"
        )));
    }
    let n: u64 = num
        .parse()
        .map_err(|_| Error::invalid(format!("size {text:?} is too large")))?;
    let shift = match suffix.to_ascii_lowercase().as_str() {
        "" | "b" => 0,
        "k" | "kb" | "kib" => 10,
        "m" | "mb" | "mib" => 20,
        "g" | "gb" | "gib" => 30,
        "t" | "tb" | "tib" => 40,
        _ => {
            return Err(Error::invalid(format!(
                "size {text:?} has unknown unit {suffix:?}; use K, M, G or T (powers of 1024) or plain bytes"
            )))
        }
    };
    n.checked_mul(1u64 << shift)
        .ok_or_else(|| Error::invalid(format!("size {text:?} overflows 64 bits")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses() {
        assert_eq!(parse_size("64M").unwrap(), 64 << 20);
        assert_eq!(parse_size("1G").unwrap(), 1 << 30);
        assert_eq!(parse_size("1048576").unwrap(), 1048576);
        assert_eq!(parse_size("4kB").unwrap(), 4096);
        assert_eq!(parse_size("2MiB").unwrap(), 2 << 20);
    }

    #[test]
    fn refuses() {
        for bad in [
            "12Q",
            "-1",
            "",
            "M",
            "1.5G",
            "99999999999999999999",
            "20000000000T",
        ] {
            assert!(parse_size(bad).is_err(), "{bad} accepted");
        }
    }
}
