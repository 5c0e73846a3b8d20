//! cgroup v1 cpu.shares <-> cgroup v2 cpu.weight.
//!
//! The OCI spec speaks shares (2..=262144, default 1024); v2 has weight
//! (1..=10000, default 100). We convert as current crun does (its
//! `convert_shares_to_weight`, whose tests expect 1024 -> ~100) and as runc
//! does through opencontainers/cgroups' `ConvertCPUSharesToCgroupV2Value`: a
//! quadratic in log2(shares) through the three points (2 -> 1),
//! (1024 -> 100) and (262144 -> 10000), so the defaults meet. The older
//! linear formula `1 + ((shares - 2) * 9999) / 262142` mapped the default
//! 1024 shares to weight 39, which is why both replaced it.

/// cpu.weight for `shares` (0 means unset and stays 0).
pub fn shares_to_weight(shares: u64) -> u64 {
    if shares == 0 {
        return 0;
    }
    if shares <= 2 {
        return 1;
    }
    if shares >= 262_144 {
        return 10_000;
    }
    let l = (shares as f64).log2();
    let exponent = (l * l + 125.0 * l) / 612.0 - 7.0 / 34.0;
    10f64.powf(exponent).ceil() as u64
}

/// The largest shares value that converts to `weight`: how a v2 group's
/// weight is reported in the shares the API speaks when the request on record
/// does not explain it (an adopted group). Taking the largest preimage maps
/// the three fitted points back exactly (1 -> 2, 100 -> 1024, 10000 -> 262144).
/// Round-trips: shares_to_weight(weight_to_shares(w)) == w.
pub fn weight_to_shares(weight: u64) -> u64 {
    let weight = weight.clamp(1, 10_000);
    // shares_to_weight is monotonic: binary search for the first shares
    // value past `weight`'s preimage.
    let (mut lo, mut hi) = (2u64, 262_145u64);
    while lo < hi {
        let mid = lo + (hi - lo) / 2;
        if shares_to_weight(mid) > weight {
            hi = mid;
        } else {
            lo = mid + 1;
        }
    }
    (lo - 1).min(262_144)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fits_the_three_points() {
        assert_eq!(shares_to_weight(0), 0);
        assert_eq!(shares_to_weight(1), 1);
        assert_eq!(shares_to_weight(2), 1);
        assert_eq!(shares_to_weight(1024), 100);
        assert_eq!(shares_to_weight(262_144), 10_000);
        assert_eq!(shares_to_weight(500_000), 10_000);
    }

    #[test]
    fn monotonic_and_in_range() {
        let mut last = 1;
        for s in (2..=262_144).step_by(97) {
            let w = shares_to_weight(s);
            assert!((1..=10_000).contains(&w) && w >= last, "{s} -> {w}");
            last = w;
        }
        // Values of the quadratic computed independently (python math).
        assert_eq!(shares_to_weight(512), 59);
        assert_eq!(shares_to_weight(2048), 174);
        assert_eq!(shares_to_weight(100), 17);
    }

    #[test]
    fn reverse_round_trips() {
        for w in [1, 2, 39, 59, 100, 174, 5000, 9999, 10_000] {
            assert_eq!(shares_to_weight(weight_to_shares(w)), w, "{w}");
        }
        assert_eq!(weight_to_shares(1), 2);
        assert_eq!(weight_to_shares(100), 1024);
        assert_eq!(weight_to_shares(10_000), 262_144);
    }
}
