//! Capability names: capabilities(7)'s list (the `caps` crate's table) and
//! how much of it this kernel knows (/proc/sys/kernel/cap_last_cap).

use std::str::FromStr;

/// The highest capability number this kernel knows. Without procfs, the
/// highest one the table knows (the launcher will then report what fails).
pub(crate) fn last_cap() -> u8 {
    kernel_last_cap().unwrap_or_else(|| caps::all().iter().map(|c| c.index()).max().unwrap_or(0))
}

/// /proc/sys/kernel/cap_last_cap, read once per process (None without
/// procfs). The launcher's child is a fork of the process that checked the
/// config, and inherits the number: it would otherwise look it up in its
/// new /proc, where every dentry on the way is made afresh.
pub(crate) fn kernel_last_cap() -> Option<u8> {
    static LAST: std::sync::OnceLock<Option<u8>> = std::sync::OnceLock::new();
    *LAST.get_or_init(|| {
        cgroupfs::dir::read_small(std::path::Path::new("/proc/sys/kernel/cap_last_cap"))
            .ok()
            .and_then(|s| s.trim().parse().ok())
    })
}

/// The capabilities(7) number of a `CAP_*` name.
pub(crate) fn index_of(name: &str) -> Option<u8> {
    caps::Capability::from_str(name).ok().map(|c| c.index())
}

/// oci-spec's capability as config.json spells it (`CAP_SYS_ADMIN`).
pub(crate) fn oci_name(c: &oci_spec::runtime::Capability) -> String {
    match serde_json::to_value(c) {
        Ok(serde_json::Value::String(s)) => s,
        _ => format!("CAP_{c}"),
    }
}

/// Every name this kernel knows, in capability-number order (as
/// `runc features` lists them).
pub(crate) fn kernel_names() -> Vec<String> {
    let last = last_cap();
    let mut known: Vec<caps::Capability> = caps::all()
        .into_iter()
        .filter(|c| c.index() <= last)
        .collect();
    known.sort_by_key(|c| c.index());
    known.iter().map(|c| c.to_string()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_name_is_known_to_oci_spec_too() {
        // The schema accepts caps' names; oci-spec must then parse them.
        for c in caps::all() {
            let name = c.to_string();
            let parsed: oci_spec::runtime::Capability =
                serde_json::from_value(serde_json::json!(name)).unwrap();
            assert_eq!(oci_name(&parsed), name);
        }
    }

    #[test]
    fn kernel_names_follow_cap_last_cap() {
        let names = kernel_names();
        assert_eq!(names[0], "CAP_CHOWN");
        assert_eq!(names.len(), usize::from(last_cap()) + 1);
        assert_eq!(index_of("CAP_KILL"), Some(5));
    }
}
