//! Resident memory of init and the five servers, from /proc/PID/status
//! (VmRSS, the target's measure) and /proc/PID/smaps_rollup (Pss).

use anyhow::{Context, Result};

pub struct Rss {
    pub name: String,
    pub pid: i32,
    pub vm_rss_kib: u64,
    pub rss_anon_kib: u64,
    pub rss_file_kib: u64,
    pub threads: u64,
    /// Proportional set size: shared pages (libc, the binary) divided
    /// among the processes mapping them. Not the target's measure; shown
    /// because VmRSS counts libc once per process.
    pub pss_kib: u64,
}

/// A `Key:   N kB` or `Key: N` field of /proc/PID/status.
fn field(status: &str, key: &str) -> u64 {
    status
        .lines()
        .find_map(|l| l.strip_prefix(key)?.strip_prefix(':'))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

pub fn measure(procs: &[(String, i32)]) -> Result<Vec<Rss>> {
    procs
        .iter()
        .map(|(name, pid)| {
            let st = std::fs::read_to_string(format!("/proc/{pid}/status"))
                .with_context(|| format!("read /proc/{pid}/status ({name})"))?;
            let rollup =
                std::fs::read_to_string(format!("/proc/{pid}/smaps_rollup")).unwrap_or_default();
            Ok(Rss {
                name: name.clone(),
                pid: *pid,
                vm_rss_kib: field(&st, "VmRSS"),
                rss_anon_kib: field(&st, "RssAnon"),
                rss_file_kib: field(&st, "RssFile"),
                threads: field(&st, "Threads"),
                pss_kib: field(&rollup, "Pss"),
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    #[test]
    fn parses_status_fields() {
        let st = "Name:\tx\nVmRSS:\t    2048 kB\nRssAnon:\t  512 kB\nThreads:\t5\n";
        assert_eq!(super::field(st, "VmRSS"), 2048);
        assert_eq!(super::field(st, "RssAnon"), 512);
        assert_eq!(super::field(st, "Threads"), 5);
        assert_eq!(super::field(st, "RssFile"), 0);
    }
}
