//! Syntax rules for single string values (used by the schema tables and by
//! the semantic checks). Each returns the reason a value is wrong.

use std::str::FromStr;

/// A capability name as capabilities(7) spells it (`CAP_CHOWN`). oci-spec
/// would also take `chown` or `SYS_ADMIN`; runc and the spec do not, so
/// neither do we, but the error says what was meant.
pub(crate) fn capability_name(s: &str) -> Result<(), String> {
    if caps::Capability::from_str(s).is_ok() {
        return Ok(());
    }
    let upper = s.to_ascii_uppercase();
    let guess = if upper.starts_with("CAP_") {
        upper
    } else {
        format!("CAP_{upper}")
    };
    if guess != s && caps::Capability::from_str(&guess).is_ok() {
        Err(format!(
            "unknown capability {s:?} (capabilities(7) spells it {guess})"
        ))
    } else {
        Err(format!("unknown capability {s:?}"))
    }
}

/// SemVer 2.0.0: MAJOR.MINOR.PATCH[-PRERELEASE][+BUILD]; returns MAJOR.
pub(crate) fn semver(s: &str) -> Result<u64, String> {
    let bad = |why: &str| Err(format!("{s:?} is not a SemVer 2.0.0 version ({why})"));
    let (rest, build) = match s.split_once('+') {
        Some((r, b)) => (r, Some(b)),
        None => (s, None),
    };
    let (core, pre) = match rest.split_once('-') {
        Some((c, p)) => (c, Some(p)),
        None => (rest, None),
    };
    let nums: Vec<&str> = core.split('.').collect();
    if nums.len() != 3 || !nums.iter().all(|n| numeric_identifier(n)) {
        return bad("expected MAJOR.MINOR.PATCH, such as 1.0.2");
    }
    if let Some(pre) = pre {
        let ok = pre
            .split('.')
            .all(|id| identifier(id) && (!all_digits(id) || numeric_identifier(id)));
        if !ok {
            return bad("bad pre-release");
        }
    }
    if let Some(build) = build {
        if !build.split('.').all(identifier) {
            return bad("bad build metadata");
        }
    }
    nums[0].parse().or_else(|_| bad("major version too large"))
}

fn all_digits(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit())
}

/// Digits without a leading zero (but "0" itself).
fn numeric_identifier(s: &str) -> bool {
    all_digits(s) && (s == "0" || !s.starts_with('0'))
}

fn identifier(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
}

/// A CPU or memory-node list: `0-3,7` (comma-separated numbers and ranges).
/// The empty string means "not set", as runc reads it.
pub(crate) fn cpu_list(s: &str) -> Result<(), String> {
    if s.is_empty() {
        return Ok(());
    }
    for item in s.split(',') {
        let item = item.trim();
        let (lo, hi) = item.split_once('-').unwrap_or((item, item));
        let (lo, hi) = (lo.trim(), hi.trim());
        let ok = all_digits(lo) && all_digits(hi);
        let ordered = ok && lo.parse::<u64>().ok() <= hi.parse::<u64>().ok();
        if !ok {
            return Err(format!(
                "{s:?} is not a list like 0-3,7 (bad entry {item:?})"
            ));
        }
        if !ordered {
            return Err(format!("{s:?}: range {item:?} runs backwards"));
        }
    }
    Ok(())
}

/// `execCPUAffinity.initial`/`final`: the schema's `^[0-9, -]*$`, and a list.
pub(crate) fn cpu_affinity_chars(s: &str) -> Result<(), String> {
    if !s
        .bytes()
        .all(|b| b.is_ascii_digit() || b == b',' || b == b' ' || b == b'-')
    {
        return Err(format!(
            "{s:?} may only hold digits, ',', '-' and spaces (a list like 0-3,7)"
        ));
    }
    cpu_list(s.trim())
}

/// `hugepageLimits[].pageSize`: `^[1-9][0-9]*[KMG]B$` (64KB, 2MB, 1GB).
pub(crate) fn hugepage_size(s: &str) -> Result<(), String> {
    let digits = s
        .strip_suffix("KB")
        .or(s.strip_suffix("MB"))
        .or(s.strip_suffix("GB"));
    match digits {
        Some(d) if all_digits(d) && !d.starts_with('0') => Ok(()),
        _ => Err(format!(
            "{s:?} is not a page size like 64KB, 2MB or 1GB (<size><K|M|G>B)"
        )),
    }
}

/// `intelRdt.memBwSchema`: starts with `MB:`, no newline.
pub(crate) fn mem_bw_schema(s: &str) -> Result<(), String> {
    if s.starts_with("MB:") && !s.contains('\n') {
        Ok(())
    } else {
        Err("must start with \"MB:\" and hold no newline".into())
    }
}

/// An environment entry `KEY=VALUE` (runc's rules: a `=`, a non-empty key,
/// no NUL byte anywhere).
pub(crate) fn env_entry(s: &str) -> Result<(), String> {
    let Some((name, value)) = s.split_once('=') else {
        return Err(format!("{s:?} is not KEY=VALUE (missing '=')"));
    };
    if name.is_empty() {
        return Err(format!("{s:?}: the variable name is empty"));
    }
    if name.contains('\0') || value.contains('\0') {
        return Err(format!("{s:?} contains a NUL byte"));
    }
    Ok(())
}

/// A sysctl name as written under /proc/sys with dots (`net.ipv4.ip_forward`)
/// or slashes: no empty, `.` or `..` component, so that it can never name a
/// file outside /proc/sys.
pub(crate) fn sysctl_name(s: &str) -> Result<(), String> {
    let bad_char = s.chars().any(|c| c == '\0' || c.is_whitespace());
    let bad_part = s.split(['.', '/']).any(|p| p.is_empty() || p == "..");
    if s.is_empty() || bad_char || bad_part {
        Err(format!(
            "{s:?} is not a sysctl name (like net.ipv4.ip_forward)"
        ))
    } else {
        Ok(())
    }
}

/// A network interface name (IFNAMSIZ 16: at most 15 bytes, no '/', ':' or
/// whitespace, not `.` or `..`).
pub(crate) fn interface_name(s: &str) -> Result<(), String> {
    let bad = s.is_empty()
        || s.len() > 15
        || s == "."
        || s == ".."
        || s.chars()
            .any(|c| c == '/' || c == ':' || c.is_whitespace() || c == '\0');
    if bad {
        Err(format!(
            "{s:?} is not an interface name (1 to 15 bytes, no '/', ':' or spaces)"
        ))
    } else {
        Ok(())
    }
}

/// `linux.rootfsPropagation`: the spec's four values, runc's recursive
/// spellings (engines send `rslave`), or empty for "not set" as in runc.
pub(crate) fn rootfs_propagation(s: &str) -> Result<(), String> {
    if s.is_empty() || super::tables::ROOTFS_PROPAGATIONS.contains(&s) {
        Ok(())
    } else {
        Err(format!(
            "unknown rootfs propagation {s:?} (shared, slave, private or unbindable)"
        ))
    }
}

pub(crate) fn is_absolute(s: &str) -> bool {
    s.starts_with('/')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn semver_rules() {
        assert_eq!(semver("1.0.2"), Ok(1));
        assert_eq!(semver("1.0.2-dev"), Ok(1));
        assert_eq!(semver("0.5.0-dev"), Ok(0));
        assert_eq!(semver("1.1.0-rc.2+build.7"), Ok(1));
        for bad in [
            "", "1", "1.0", "1.0.0.0", "01.0.0", "1.0.0-", "1.0.0-01", "v1.0.0", "1.0.x",
        ] {
            assert!(semver(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn cpu_lists() {
        for ok in ["", "0", "0-3,7", "0,1,2", "2-3"] {
            cpu_list(ok).unwrap();
        }
        for bad in ["a", "0-", "-1", "3-1", "0,,1", "0-3,", "1.5"] {
            assert!(cpu_list(bad).is_err(), "{bad}");
        }
        cpu_affinity_chars("0-3, 7").unwrap();
        assert!(cpu_affinity_chars("0x1").is_err());
    }

    #[test]
    fn capability_names() {
        capability_name("CAP_SYS_ADMIN").unwrap();
        assert_eq!(
            capability_name("SYS_ADMIN").unwrap_err(),
            "unknown capability \"SYS_ADMIN\" (capabilities(7) spells it CAP_SYS_ADMIN)"
        );
        assert_eq!(
            capability_name("cap_chown").unwrap_err(),
            "unknown capability \"cap_chown\" (capabilities(7) spells it CAP_CHOWN)"
        );
        assert_eq!(
            capability_name("CAP_FOO").unwrap_err(),
            "unknown capability \"CAP_FOO\""
        );
    }

    #[test]
    fn small_rules() {
        hugepage_size("2MB").unwrap();
        hugepage_size("64KB").unwrap();
        assert!(hugepage_size("64kB").is_err());
        assert!(hugepage_size("0MB").is_err());
        env_entry("A=").unwrap();
        env_entry("A=b=c").unwrap();
        assert!(env_entry("A").is_err());
        assert!(env_entry("=x").is_err());
        sysctl_name("net.ipv4.conf.eth0/100.forwarding").unwrap();
        for bad in ["", "net..x", "../etc", "net/../../x", "a b"] {
            assert!(sysctl_name(bad).is_err(), "{bad}");
        }
        interface_name("eth0").unwrap();
        interface_name("veth%d").unwrap();
        assert!(interface_name("a/b").is_err());
        assert!(interface_name("0123456789abcdef").is_err());
        mem_bw_schema("MB:0=20").unwrap();
        assert!(mem_bw_schema("L3:0=f").is_err());
    }
}
