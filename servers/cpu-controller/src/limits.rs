//! Checking requested CPU limits before anything touches the kernel.
//!
//! Every error names the setting, the flag a person typed and the value, so
//! "cpu period 5 (--period): must be 1000..=1000000 microseconds" reaches the
//! user instead of the kernel's bare EINVAL.

use protocol::cpu::CpuLimits;
use protocol::memory::Limit;
use protocol::Error;

/// CFS period bounds the kernel accepts (1 ms ..= 1 s), in microseconds.
pub const PERIOD_MIN_US: u64 = 1_000;
pub const PERIOD_MAX_US: u64 = 1_000_000;
/// The kernel refuses a CFS quota below 1 ms.
pub const QUOTA_MIN_US: u64 = 1_000;
/// cpu.shares bounds (v1 clamps silently; we refuse instead, as the OCI spec's range).
pub const SHARES_MIN: u64 = 2;
pub const SHARES_MAX: u64 = 262_144;
/// The kernel's default CFS period, used to check burst <= quota when no period is given.
pub const DEFAULT_PERIOD_US: u64 = 100_000;

/// Checks each limit on its own and the combinations the kernel refuses.
pub fn validate(l: &CpuLimits) -> Result<(), Error> {
    if let Some(s) = l.shares {
        if !(SHARES_MIN..=SHARES_MAX).contains(&s) {
            return Err(Error::invalid(format!(
                "cpu shares {s} (--shares) is out of range: must be {SHARES_MIN}..={SHARES_MAX}"
            )));
        }
    }
    if let Some(p) = l.period_us {
        if !(PERIOD_MIN_US..=PERIOD_MAX_US).contains(&p) {
            return Err(Error::invalid(format!(
                "cpu period {p} (--period) is out of range: must be {PERIOD_MIN_US}..={PERIOD_MAX_US} microseconds"
            )));
        }
    }
    if let Some(Limit::Value(q)) = l.quota_us {
        if q < QUOTA_MIN_US {
            return Err(Error::invalid(format!(
                "cpu quota {q} (--quota) is too small: must be at least {QUOTA_MIN_US} microseconds, or max"
            )));
        }
    }
    if let (Some(b), Some(Limit::Value(q))) = (l.burst_us, l.quota_us) {
        if b > q {
            return Err(Error::invalid(format!(
                "cpu burst {b} (--burst) is larger than the quota {q} (--quota); the kernel requires burst <= quota"
            )));
        }
    }
    if l.idle == Some(true) && l.shares.is_some() {
        return Err(Error::invalid(
            "--idle and --shares cannot be combined: an idle group has no weight (the kernel refuses cpu.shares/cpu.weight while cpu.idle is 1)",
        ));
    }
    if let Some(c) = &l.cpus {
        check_list("cpus", c, &online("/sys/devices/system/cpu/online"))?;
    }
    if let Some(m) = &l.mems {
        check_list("mems", m, &online("/sys/devices/system/node/online"))?;
    }
    if let Some(Limit::Value(n)) = l.pids_max {
        if n > i64::MAX as u64 {
            return Err(Error::invalid(format!(
                "pids max {n} (--pids-max) is too large"
            )));
        }
    }
    Ok(())
}

/// Checks a `Set` against what the group already has: shares on an idle
/// group (the kernel refuses them) and a burst above the resulting quota.
pub fn validate_set(old: &CpuLimits, new: &CpuLimits) -> Result<(), Error> {
    validate(new)?;
    let merged = merge(old, new);
    if new.shares.is_some() && merged.idle == Some(true) {
        return Err(Error::invalid(
            "the group is idle (cpu.idle 1), which has no weight: pass --idle=false together with --shares",
        ));
    }
    if let (Some(b), Some(Limit::Value(q))) = (merged.burst_us, merged.quota_us) {
        if (new.burst_us.is_some() || new.quota_us.is_some()) && b > q {
            return Err(Error::invalid(format!(
                "cpu burst {b} (--burst) would be larger than the quota {q} (--quota); the kernel requires burst <= quota"
            )));
        }
    }
    Ok(())
}

/// `new` laid over `old`: what a `Set` leaves the group with.
pub fn merge(old: &CpuLimits, new: &CpuLimits) -> CpuLimits {
    CpuLimits {
        shares: new.shares.or(old.shares),
        quota_us: new.quota_us.or(old.quota_us),
        period_us: new.period_us.or(old.period_us),
        burst_us: new.burst_us.or(old.burst_us),
        cpus: new.cpus.clone().or_else(|| old.cpus.clone()),
        mems: new.mems.clone().or_else(|| old.mems.clone()),
        idle: new.idle.or(old.idle),
        pids_max: new.pids_max.or(old.pids_max),
    }
}

/// Highest cpu or memory node number accepted (the kernel's NR_CPUS tops out
/// at 8192); also bounds the work a hostile list like "0-9999999" can cause.
pub const LIST_MAX: u32 = 16_383;

/// Parses a cpuset list such as "0-1,3" into its sorted members. `what` is
/// "cpus" or "mems" and names the flag in errors.
pub fn parse_list(what: &str, text: &str) -> Result<Vec<u32>, Error> {
    let bad = |why: String| Error::invalid(format!("{what} list {text:?} (--{what}) {why}"));
    if text.trim().is_empty() {
        return Err(bad("is empty; give members like \"0-1,3\"".into()));
    }
    if text.len() > 4096 {
        return Err(bad(format!(
            "is {} bytes long; the kernel takes at most a page (4096)",
            text.len()
        )));
    }
    let mut member = vec![false; LIST_MAX as usize + 1];
    for item in text.trim().split(',') {
        let num = |s: &str| -> Result<u32, Error> {
            if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
                return Err(bad(format!("has {item:?}, which is not N or N-M")));
            }
            match s.parse::<u32>() {
                Ok(n) if n <= LIST_MAX => Ok(n),
                _ => Err(bad(format!("has {s}, above the largest id {LIST_MAX}"))),
            }
        };
        let (a, b) = match item.split_once('-') {
            Some((a, b)) => (num(a)?, num(b)?),
            None => (num(item)?, num(item)?),
        };
        if a > b {
            return Err(bad(format!("has the range {item:?}, which runs backwards")));
        }
        member[a as usize..=b as usize]
            .iter_mut()
            .for_each(|m| *m = true);
    }
    Ok((0..=LIST_MAX).filter(|i| member[*i as usize]).collect())
}

/// Checks syntax and that every member is online (when we know what is).
fn check_list(what: &str, text: &str, online: &Option<Vec<u32>>) -> Result<(), Error> {
    let members = parse_list(what, text)?;
    if let Some(on) = online {
        if let Some(m) = members.iter().find(|m| !on.contains(m)) {
            let kind = if what == "cpus" { "cpu" } else { "memory node" };
            return Err(Error::invalid(format!(
                "{what} list {text:?} (--{what}) names {kind} {m}, which is not online on this host (online: {})",
                format_list(on)
            )));
        }
    }
    Ok(())
}

/// The online cpus or memory nodes; None when the host does not say.
fn online(file: &str) -> Option<Vec<u32>> {
    let text = std::fs::read_to_string(file).ok()?;
    parse_list("online", text.trim()).ok()
}

/// Formats members back into the kernel's compact list syntax.
pub fn format_list(members: &[u32]) -> String {
    let mut parts: Vec<String> = vec![];
    let mut i = 0;
    while i < members.len() {
        let start = members[i];
        let mut end = start;
        while i + 1 < members.len() && members[i + 1] == end + 1 {
            i += 1;
            end = members[i];
        }
        parts.push(if start == end {
            start.to_string()
        } else {
            format!("{start}-{end}")
        });
        i += 1;
    }
    parts.join(",")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(l: CpuLimits) -> String {
        validate(&l).unwrap_err().message
    }

    #[test]
    fn accepts_good_limits() {
        validate(&CpuLimits {
            shares: Some(1024),
            quota_us: Some(Limit::Value(20_000)),
            period_us: Some(100_000),
            burst_us: Some(10_000),
            cpus: Some("0".into()),
            mems: Some("0".into()),
            idle: Some(false),
            pids_max: Some(Limit::Max),
        })
        .unwrap();
        validate(&CpuLimits {
            quota_us: Some(Limit::Max),
            ..Default::default()
        })
        .unwrap();
    }

    #[test]
    fn errors_name_the_flag_and_value() {
        let e = err(CpuLimits {
            period_us: Some(5),
            ..Default::default()
        });
        assert!(e.contains("--period") && e.contains('5'), "{e}");
        let e = err(CpuLimits {
            period_us: Some(2_000_000),
            ..Default::default()
        });
        assert!(e.contains("--period") && e.contains("2000000"), "{e}");
        let e = err(CpuLimits {
            quota_us: Some(Limit::Value(999)),
            ..Default::default()
        });
        assert!(e.contains("--quota") && e.contains("999"), "{e}");
        let e = err(CpuLimits {
            shares: Some(1),
            ..Default::default()
        });
        assert!(e.contains("--shares") && e.contains('1'), "{e}");
        let e = err(CpuLimits {
            shares: Some(262_145),
            ..Default::default()
        });
        assert!(e.contains("262145"), "{e}");
        let e = err(CpuLimits {
            burst_us: Some(50_000),
            quota_us: Some(Limit::Value(20_000)),
            ..Default::default()
        });
        assert!(e.contains("--burst") && e.contains("50000"), "{e}");
        let e = err(CpuLimits {
            idle: Some(true),
            shares: Some(100),
            ..Default::default()
        });
        assert!(e.contains("--idle") && e.contains("--shares"), "{e}");
        let e = err(CpuLimits {
            cpus: Some("99".into()),
            ..Default::default()
        });
        assert!(e.contains("--cpus") && e.contains("99"), "{e}");
        let e = err(CpuLimits {
            mems: Some("x".into()),
            ..Default::default()
        });
        assert!(e.contains("--mems") && e.contains("\"x\""), "{e}");
    }

    #[test]
    fn list_syntax() {
        assert_eq!(parse_list("cpus", "0-1,3").unwrap(), vec![0, 1, 3]);
        assert_eq!(parse_list("cpus", "2,0,1-2").unwrap(), vec![0, 1, 2]);
        let long = "0,".repeat(3000);
        for bad in [
            "",
            "a",
            "1-",
            "-1",
            "3-1",
            "1,,2",
            "0 1",
            "1--2",
            "9999999",
            "16384",
            long.as_str(),
        ] {
            let e = parse_list("cpus", bad).unwrap_err();
            assert!(e.message.contains("--cpus"), "{bad}: {e}");
        }
        assert_eq!(format_list(&[0, 1, 2, 5, 7, 8]), "0-2,5,7-8");
    }

    #[test]
    fn set_is_checked_against_the_group() {
        let idle = CpuLimits {
            idle: Some(true),
            ..Default::default()
        };
        let shares = CpuLimits {
            shares: Some(100),
            ..Default::default()
        };
        let e = validate_set(&idle, &shares).unwrap_err();
        assert!(e.message.contains("--idle=false"), "{e}");
        validate_set(
            &idle,
            &CpuLimits {
                idle: Some(false),
                ..shares.clone()
            },
        )
        .unwrap();
        // becoming idle keeps the old shares on record; the kernel accepts it
        validate_set(&shares, &idle).unwrap();
        let quota = CpuLimits {
            quota_us: Some(Limit::Value(10_000)),
            ..Default::default()
        };
        let e = validate_set(
            &quota,
            &CpuLimits {
                burst_us: Some(20_000),
                ..Default::default()
            },
        )
        .unwrap_err();
        assert!(e.message.contains("--burst"), "{e}");
    }

    #[test]
    fn merge_keeps_unset_fields() {
        let old = CpuLimits {
            shares: Some(512),
            cpus: Some("0".into()),
            ..Default::default()
        };
        let new = CpuLimits {
            shares: Some(100),
            pids_max: Some(Limit::Value(5)),
            ..Default::default()
        };
        let m = merge(&old, &new);
        assert_eq!(m.shares, Some(100));
        assert_eq!(m.cpus.as_deref(), Some("0"));
        assert_eq!(m.pids_max, Some(Limit::Value(5)));
    }
}
