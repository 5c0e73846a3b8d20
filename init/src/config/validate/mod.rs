//! The MUST rules of config.md and config-linux.md that a Linux runtime
//! checks before it creates anything, on the parsed `Spec`.
//!
//! Only validity is judged here: a valid value this runtime does not
//! implement (seccomp until issue 4, intelRdt, ...) passes, and the lifecycle
//! refuses it as "unsupported". Where runc 1.1 is stricter than the spec in
//! a way engines rely on (hostname needs a uts namespace, sysctls must be
//! namespaced, user namespace mappings), runc's rule is followed.

mod linux;
mod process;
mod resources;

use std::path::{Path, PathBuf};

use oci_spec::runtime::{Hook, LinuxIdMapping, Mount, Spec};

use super::error::{field, index, ConfigError};
use super::syntax;

pub(crate) use linux::Namespaces;
pub(crate) use process::process;

/// The newest runtime-spec version whose fields this runtime knows.
pub const OCI_VERSION_MAX: &str = "1.3.0";
/// The oldest release it was written against.
pub const OCI_VERSION_MIN: &str = "1.0.0";

type Check = Result<(), ConfigError>;

fn err<T>(path: impl Into<String>, reason: impl Into<String>) -> Result<T, ConfigError> {
    Err(ConfigError::new(path, reason))
}

/// Every rule, in document order; the first broken one is returned.
pub fn validate(spec: &Spec, bundle: &Path) -> Check {
    version(spec.version())?;
    root(spec, bundle)?;
    let ns = Namespaces::of(spec);
    if let Some(p) = spec.process() {
        process(p, "process")?;
    }
    names(spec, &ns)?;
    mounts(spec, &ns)?;
    hooks(spec)?;
    annotations(spec)?;
    linux::linux(spec, &ns)
}

/// `ociVersion`: SemVer (the spec's MUST) of major version 0 or 1. 0.x are
/// the drafts the spec's own examples still carry (and runc runs them);
/// 1.x newer than `OCI_VERSION_MAX` are accepted because minor versions only
/// add properties, which are ignored as config.md's "Extensibility" says.
fn version(v: &str) -> Check {
    if v.is_empty() {
        return err("ociVersion", "is required");
    }
    let major = syntax::semver(v).map_err(|r| ConfigError::new("ociVersion", r))?;
    if major > 1 {
        return err(
            "ociVersion",
            format!(
                "version {v} is not supported: this runtime implements runtime-spec 1.x \
                 (up to {OCI_VERSION_MAX}), and other major versions are incompatible"
            ),
        );
    }
    Ok(())
}

/// The host path of the rootfs: `root.path`, relative to the bundle unless
/// absolute.
pub fn rootfs_path(spec: &Spec, bundle: &Path) -> Option<PathBuf> {
    spec.root().as_ref().map(|r| bundle.join(r.path()))
}

/// `root` is REQUIRED on Linux and a directory MUST exist at `root.path`.
fn root(spec: &Spec, bundle: &Path) -> Check {
    let Some(root) = spec.root() else {
        return err("root", "is required on Linux");
    };
    if root.path().as_os_str().is_empty() {
        return err("root.path", "must not be empty");
    }
    let rootfs = bundle.join(root.path());
    match std::fs::metadata(&rootfs) {
        Ok(m) if m.is_dir() => Ok(()),
        Ok(_) => err(
            "root.path",
            format!("rootfs {} is not a directory", rootfs.display()),
        ),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => err(
            "root.path",
            format!("rootfs {} does not exist", rootfs.display()),
        ),
        Err(e) => err("root.path", format!("rootfs {}: {e}", rootfs.display())),
    }
}

/// `hostname` and `domainname` (sethostname(2): at most 64 bytes) change the
/// uts namespace, so runc refuses them without one: they would rename the host.
fn names(spec: &Spec, ns: &Namespaces) -> Check {
    for (name, value) in [
        ("hostname", spec.hostname()),
        ("domainname", spec.domainname()),
    ] {
        let Some(value) = value.as_deref().filter(|v| !v.is_empty()) else {
            continue;
        };
        if value.len() > 64 {
            return err(name, "is longer than 64 bytes (HOST_NAME_MAX)");
        }
        if !ns.has("uts") {
            return err(
                name,
                format!(
                    "setting a {name} needs a uts namespace, and linux.namespaces has no \
                     \"uts\" entry (it would change the host's)"
                ),
            );
        }
    }
    Ok(())
}

fn mounts(spec: &Spec, ns: &Namespaces) -> Check {
    let Some(mounts) = spec.mounts() else {
        return Ok(());
    };
    for (i, m) in mounts.iter().enumerate() {
        mount(m, &index("mounts", i), ns)?;
    }
    Ok(())
}

/// One mount. A relative destination is allowed (config.md 1.3: "MAY be a
/// relative path ... interpreted as relative to /", deprecated).
fn mount(m: &Mount, path: &str, ns: &Namespaces) -> Check {
    if m.destination().as_os_str().is_empty() {
        return err(field(path, "destination"), "must not be empty");
    }
    let options = m.options().as_deref().unwrap_or(&[]);
    let has = |o: &str| options.iter().any(|x| x == o);
    let no_source = m
        .source()
        .as_ref()
        .filter(|s| !s.as_os_str().is_empty())
        .is_none();
    if (has("bind") || has("rbind")) && no_source {
        return err(field(path, "source"), "a bind mount needs a source");
    }
    let (uids, gids) = (m.uid_mappings().as_deref(), m.gid_mappings().as_deref());
    match (uids, gids) {
        (Some(_), None) => return err(field(path, "gidMappings"), "must be set with uidMappings"),
        (None, Some(_)) => return err(field(path, "uidMappings"), "must be set with gidMappings"),
        (Some(u), Some(g)) => {
            mappings(u, &field(path, "uidMappings"))?;
            mappings(g, &field(path, "gidMappings"))?;
        }
        (None, None) => {
            let idmap = has("idmap") || has("ridmap");
            if idmap && !ns.has("user") {
                return err(
                    field(path, "options"),
                    "\"idmap\" needs uidMappings and gidMappings on the mount, or a user \
                     namespace to take them from",
                );
            }
        }
    }
    Ok(())
}

/// ID mappings (user namespace or id-mapped mount): each size at least 1,
/// no 32-bit overflow, no overlap (the kernel refuses both), at most 340
/// lines (the kernel's limit).
pub(crate) fn mappings(list: &[LinuxIdMapping], path: &str) -> Check {
    if list.len() > 340 {
        return err(path, "has more than 340 entries (the kernel's limit)");
    }
    let range = |m: &LinuxIdMapping, host: bool| {
        let start = u64::from(if host { m.host_id() } else { m.container_id() });
        (start, start + u64::from(m.size()))
    };
    for (i, m) in list.iter().enumerate() {
        let at = index(path, i);
        if m.size() == 0 {
            return err(field(&at, "size"), "must be at least 1");
        }
        for host in [false, true] {
            let (start, end) = range(m, host);
            let what = if host { "hostID" } else { "containerID" };
            if end > 1 << 32 {
                return err(&at, format!("{what} + size goes past 4294967295"));
            }
            for (j, other) in list[..i].iter().enumerate() {
                let (s, e) = range(other, host);
                if start < e && s < end {
                    return err(&at, format!("its {what} range overlaps {}", index(path, j)));
                }
            }
        }
    }
    Ok(())
}

fn hooks(spec: &Spec) -> Check {
    let Some(h) = spec.hooks() else {
        return Ok(());
    };
    let phases = [
        ("prestart", h.prestart()),
        ("createRuntime", h.create_runtime()),
        ("createContainer", h.create_container()),
        ("startContainer", h.start_container()),
        ("poststart", h.poststart()),
        ("poststop", h.poststop()),
    ];
    for (name, list) in phases {
        for (i, hook_) in list.iter().flatten().enumerate() {
            hook(hook_, &index(&field("hooks", name), i))?;
        }
    }
    Ok(())
}

/// A hook: `path` MUST be absolute, `timeout` MUST be greater than zero.
fn hook(h: &Hook, path: &str) -> Check {
    if !h.path().is_absolute() {
        return err(field(path, "path"), "must be an absolute path");
    }
    if let Some(t) = h.timeout().filter(|t| *t <= 0) {
        return err(
            field(path, "timeout"),
            format!("must be greater than zero, got {t}"),
        );
    }
    env(h.env().as_deref(), &field(path, "env"))
}

/// Environment entries are KEY=VALUE.
pub(crate) fn env(list: Option<&[String]>, path: &str) -> Check {
    for (i, e) in list.unwrap_or(&[]).iter().enumerate() {
        syntax::env_entry(e).map_err(|r| ConfigError::new(index(path, i), r))?;
    }
    Ok(())
}

/// Annotation keys MUST NOT be empty.
fn annotations(spec: &Spec) -> Check {
    match spec.annotations() {
        Some(a) if a.contains_key("") => err("annotations[\"\"]", "key must not be empty"),
        _ => Ok(()),
    }
}

/// Absolute-path lists (maskedPaths, readonlyPaths).
pub(crate) fn absolute_paths(list: Option<&[String]>, path: &str) -> Check {
    for (i, p) in list.unwrap_or(&[]).iter().enumerate() {
        if !syntax::is_absolute(p) {
            return err(index(path, i), format!("{p:?} must be an absolute path"));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use oci_spec::runtime::LinuxIdMappingBuilder;

    fn map(container: u32, host: u32, size: u32) -> LinuxIdMapping {
        LinuxIdMappingBuilder::default()
            .container_id(container)
            .host_id(host)
            .size(size)
            .build()
            .unwrap()
    }

    #[test]
    fn versions() {
        version("1.0.2-dev").unwrap();
        version("0.5.0-dev").unwrap();
        version(OCI_VERSION_MIN).unwrap();
        version(OCI_VERSION_MAX).unwrap();
        assert_eq!(
            version("").unwrap_err().to_string(),
            "ociVersion: is required"
        );
        assert!(version("2.0.0").is_err());
        assert!(version("1.0").is_err());
    }

    #[test]
    fn mapping_ranges() {
        mappings(&[map(0, 1000, 1), map(1, 100000, 65535)], "m").unwrap();
        // Adjacent ranges touch but do not overlap.
        mappings(&[map(0, 0, 10), map(10, 10, 10)], "m").unwrap();
        let e = mappings(&[map(0, 1000, 10), map(20, 1005, 1)], "m").unwrap_err();
        assert_eq!(e.to_string(), "m[1]: its hostID range overlaps m[0]");
        mappings(&[map(u32::MAX, 0, 1)], "m").unwrap();
        let e = mappings(&[map(u32::MAX, 0, 2)], "m").unwrap_err();
        assert_eq!(
            e.to_string(),
            "m[0]: containerID + size goes past 4294967295"
        );
        let many: Vec<LinuxIdMapping> = (0..341).map(|i| map(i, i, 1)).collect();
        assert!(mappings(&many, "m").is_err());
        assert!(mappings(&many[..340], "m").is_ok());
    }
}
