//! Memory limits: validation, merging and the conversions between the OCI
//! view (swap = memory + swap) and what each cgroup version wants written.

use protocol::memory::{Limit, MemoryLimits};
use protocol::Error;

/// How a limit is written to a v1 file: "-1" means unlimited.
pub fn v1_value(l: Limit) -> String {
    match l {
        Limit::Max => "-1".to_string(),
        Limit::Value(n) => n.to_string(),
    }
}

/// How a limit is written to a v2 file: "max" means unlimited.
pub fn v2_value(l: Limit) -> String {
    match l {
        Limit::Max => "max".to_string(),
        Limit::Value(n) => n.to_string(),
    }
}

/// A limit as read back by `CgroupDir::read_limit` (None = unlimited).
pub fn from_read(v: Option<u64>) -> Limit {
    v.map(Limit::Value).unwrap_or(Limit::Max)
}

/// Human form for messages and the CLI: "max" or bytes.
pub fn show(l: Limit) -> String {
    match l {
        Limit::Max => "max".to_string(),
        Limit::Value(n) => format!("{n} bytes"),
    }
}

/// Checks that hold on every backend, before anything is touched.
/// `group` names the group in the messages.
pub fn validate(group: &str, l: &MemoryLimits) -> Result<(), Error> {
    if l.limit == Some(Limit::Value(0)) {
        return Err(Error::invalid(format!(
            "memory limit of group {group} is 0 bytes, which would kill every process in it at once; use \"max\" for no limit"
        )));
    }
    if let Some(s) = l.swappiness {
        if s > 100 {
            return Err(Error::invalid(format!(
                "swappiness {s} for group {group} is out of range; it must be 0..=100"
            )));
        }
    }
    if let Some(Limit::Value(swap)) = l.swap {
        match l.limit {
            Some(Limit::Value(mem)) if swap < mem => {
                return Err(Error::invalid(format!(
                    "swap limit {swap} bytes for group {group} is below its memory limit {mem} bytes; \
                     swap is memory plus swap (as in the OCI spec), so it must be at least the memory limit"
                )))
            }
            Some(Limit::Max) => {
                return Err(Error::invalid(format!(
                    "group {group}: a memory+swap limit ({swap} bytes) needs a memory limit, but the memory limit is \"max\""
                )))
            }
            _ => {}
        }
    }
    Ok(())
}

/// `base` with every field that `update` sets replaced (Set semantics).
pub fn merge(base: &MemoryLimits, update: &MemoryLimits) -> MemoryLimits {
    MemoryLimits {
        limit: update.limit.or(base.limit),
        reservation: update.reservation.or(base.reservation),
        swap: update.swap.or(base.swap),
        swappiness: update.swappiness.or(base.swappiness),
        disable_oom_killer: update.disable_oom_killer.or(base.disable_oom_killer),
    }
}

/// The value for v2 memory.swap.max from the OCI swap (memory + swap) and the
/// memory limit in force, as runc's ConvertMemorySwapToCgroupV2Value does.
/// `swap_requested`/`limit_requested` are what the request sets (None = not
/// set); `limit_now` is the memory limit that will be in force afterwards.
/// Returns None when memory.swap.max must not be written.
pub fn v2_swap_max(
    group: &str,
    swap_requested: Option<Limit>,
    limit_requested: Option<Limit>,
    limit_now: Limit,
) -> Result<Option<Limit>, Error> {
    match (swap_requested, limit_requested) {
        // "memory unlimited, swap unset" means both unlimited (runc).
        (None, Some(Limit::Max)) => Ok(Some(Limit::Max)),
        (None, _) => Ok(None),
        (Some(Limit::Max), _) => Ok(Some(Limit::Max)),
        (Some(Limit::Value(swap)), _) => match limit_now {
            Limit::Max => Err(Error::invalid(format!(
                "group {group}: cannot set a memory+swap limit ({swap} bytes) without a memory limit"
            ))),
            Limit::Value(mem) if swap < mem => Err(Error::invalid(format!(
                "swap limit {swap} bytes for group {group} is below its memory limit {mem} bytes; \
                 swap is memory plus swap (as in the OCI spec)"
            ))),
            Limit::Value(mem) => Ok(Some(Limit::Value(swap - mem))),
        },
    }
}

/// The OCI swap (memory + swap) from v2's memory.swap.max and memory.max.
pub fn v2_swap_oci(swap_max: Limit, mem_max: Limit) -> Limit {
    match (swap_max, mem_max) {
        (Limit::Value(s), Limit::Value(m)) => Limit::Value(s.saturating_add(m)),
        _ => Limit::Max,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use Limit::{Max, Value};

    #[test]
    fn values_per_version() {
        assert_eq!(v1_value(Max), "-1");
        assert_eq!(v2_value(Max), "max");
        assert_eq!(v1_value(Value(4096)), "4096");
        assert_eq!(from_read(None), Max);
        assert_eq!(from_read(Some(7)), Value(7));
    }

    #[test]
    fn swap_conversion_like_runc() {
        let m = 64 << 20;
        assert_eq!(
            v2_swap_max("g", Some(Value(2 * m)), Some(Value(m)), Value(m)).unwrap(),
            Some(Value(m))
        );
        assert_eq!(
            v2_swap_max("g", Some(Value(m)), Some(Value(m)), Value(m)).unwrap(),
            Some(Value(0))
        );
        assert_eq!(v2_swap_max("g", None, Some(Max), Max).unwrap(), Some(Max));
        assert_eq!(
            v2_swap_max("g", None, Some(Value(m)), Value(m)).unwrap(),
            None
        );
        assert_eq!(
            v2_swap_max("g", Some(Max), None, Value(m)).unwrap(),
            Some(Max)
        );
        // swap only: converted against the limit already in force
        assert_eq!(
            v2_swap_max("g", Some(Value(3 * m)), None, Value(m)).unwrap(),
            Some(Value(2 * m))
        );
        let e = v2_swap_max("g", Some(Value(m)), None, Max).unwrap_err();
        assert!(e.message.contains("without a memory limit"), "{e}");
        let e = v2_swap_max("g", Some(Value(m)), Some(Value(2 * m)), Value(2 * m)).unwrap_err();
        assert!(e.message.contains("below its memory limit"), "{e}");
        assert_eq!(v2_swap_oci(Value(m), Value(m)), Value(2 * m));
        assert_eq!(v2_swap_oci(Max, Value(m)), Max);
    }

    #[test]
    fn validation_names_the_group() {
        let ok = MemoryLimits {
            limit: Some(Value(1 << 20)),
            swap: Some(Value(2 << 20)),
            ..Default::default()
        };
        validate("g", &ok).unwrap();
        for bad in [
            MemoryLimits {
                limit: Some(Value(0)),
                ..Default::default()
            },
            MemoryLimits {
                swappiness: Some(101),
                ..Default::default()
            },
            MemoryLimits {
                limit: Some(Value(2 << 20)),
                swap: Some(Value(1 << 20)),
                ..Default::default()
            },
            MemoryLimits {
                limit: Some(Max),
                swap: Some(Value(1 << 20)),
                ..Default::default()
            },
        ] {
            let e = validate("web", &bad).unwrap_err();
            assert!(e.message.contains("web"), "{e}");
        }
    }

    #[test]
    fn merge_keeps_unset_fields() {
        let a = MemoryLimits {
            limit: Some(Value(1)),
            swappiness: Some(10),
            ..Default::default()
        };
        let b = MemoryLimits {
            limit: Some(Value(2)),
            reservation: Some(Max),
            ..Default::default()
        };
        let m = merge(&a, &b);
        assert_eq!(m.limit, Some(Value(2)));
        assert_eq!(m.swappiness, Some(10));
        assert_eq!(m.reservation, Some(Max));
    }
}
