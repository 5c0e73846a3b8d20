//! `ipc features`: the runtime-spec Features structure (features.md,
//! features-linux.md), telling what this runtime implements, not what the
//! host has. Everything not built yet says so (`enabled: false`) rather
//! than being left out, so that a caller can tell "no" from "unknown".

use serde::Serialize;

use super::validate::{OCI_VERSION_MAX, OCI_VERSION_MIN};

/// Every hook phase of config.md; the hook runner implements all six.
pub const HOOKS: &[&str] = &[
    "prestart",
    "createRuntime",
    "createContainer",
    "startContainer",
    "poststart",
    "poststop",
];

/// The mount options the launcher implements: mount(8)'s
/// filesystem-independent flags, bind/rbind and the propagation types.
/// Left out until implemented: the recursive mount_setattr(2) attributes
/// (`rro`, `rnosuid`, ...), `tmpcopyup`, and `mand`/`nomand`
/// (deprecated since Linux 5.15). Other strings are filesystem data, passed
/// to mount(2) as config.md says.
pub const MOUNT_OPTIONS: &[&str] = &[
    "async",
    "atime",
    "bind",
    "defaults",
    "dev",
    "diratime",
    "dirsync",
    "exec",
    "idmap",
    "iversion",
    "lazytime",
    "loud",
    "noatime",
    "nodev",
    "nodiratime",
    "noexec",
    "noiversion",
    "nolazytime",
    "norelatime",
    "nostrictatime",
    "nosuid",
    "nosymfollow",
    "private",
    "rbind",
    "relatime",
    "remount",
    "ridmap",
    "ro",
    "rprivate",
    "rshared",
    "rslave",
    "runbindable",
    "rw",
    "shared",
    "silent",
    "slave",
    "strictatime",
    "suid",
    "symfollow",
    "sync",
    "unbindable",
];

/// The namespaces the launcher creates or joins (all eight of the spec).
pub const NAMESPACES: &[&str] = &[
    "cgroup", "ipc", "mount", "network", "pid", "time", "user", "uts",
];

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Features {
    oci_version_min: &'static str,
    oci_version_max: &'static str,
    hooks: &'static [&'static str],
    mount_options: &'static [&'static str],
    linux: LinuxFeatures,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct LinuxFeatures {
    namespaces: &'static [&'static str],
    capabilities: Vec<String>,
    cgroup: Cgroup,
    seccomp: SeccompFeatures,
    apparmor: Enabled,
    selinux: Enabled,
    intel_rdt: Enabled,
    mount_extensions: MountExtensions,
    net_devices: Enabled,
    memory_policy: MemoryPolicy,
}

/// features-linux.md "memoryPolicy": the modes and flags the launcher
/// passes to set_mempolicy(2) (the host may still refuse some).
#[derive(Serialize)]
struct MemoryPolicy {
    modes: &'static [&'static str],
    flags: &'static [&'static str],
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Cgroup {
    v1: bool,
    v2: bool,
    systemd: bool,
    systemd_user: bool,
    rdma: bool,
}

#[derive(Serialize)]
struct Enabled {
    enabled: bool,
}

/// features-linux.md "Seccomp": what seccomp-monitor's compiler and the
/// launcher handle.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct SeccompFeatures {
    enabled: bool,
    actions: &'static [&'static str],
    operators: &'static [&'static str],
    /// The architectures a filter can be built for on x86_64 or aarch64 hosts
    /// (the native one and its companions).
    archs: &'static [&'static str],
    known_flags: &'static [&'static str],
    supported_flags: Vec<&'static str>,
}

const SECCOMP_ACTIONS: &[&str] = &[
    "SCMP_ACT_ALLOW",
    "SCMP_ACT_ERRNO",
    "SCMP_ACT_KILL",
    "SCMP_ACT_KILL_PROCESS",
    "SCMP_ACT_KILL_THREAD",
    "SCMP_ACT_LOG",
    "SCMP_ACT_NOTIFY",
    "SCMP_ACT_TRACE",
    "SCMP_ACT_TRAP",
];
const SECCOMP_OPERATORS: &[&str] = &[
    "SCMP_CMP_EQ",
    "SCMP_CMP_GE",
    "SCMP_CMP_GT",
    "SCMP_CMP_LE",
    "SCMP_CMP_LT",
    "SCMP_CMP_MASKED_EQ",
    "SCMP_CMP_NE",
];
const SECCOMP_ARCHS: &[&str] = &[
    "SCMP_ARCH_AARCH64",
    "SCMP_ARCH_ARM",
    "SCMP_ARCH_X32",
    "SCMP_ARCH_X86",
    "SCMP_ARCH_X86_64",
];
const SECCOMP_FLAGS: &[&str] = &[
    "SECCOMP_FILTER_FLAG_LOG",
    "SECCOMP_FILTER_FLAG_SPEC_ALLOW",
    "SECCOMP_FILTER_FLAG_TSYNC",
    "SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV",
];

/// The flags this kernel supports: LOG (4.14), SPEC_ALLOW (4.17), TSYNC
/// (3.17), WAIT_KILLABLE_RECV (5.19).
fn supported_seccomp_flags() -> Vec<&'static str> {
    let release = rustix::system::uname()
        .release()
        .to_string_lossy()
        .into_owned();
    let mut nums = release
        .split(|c: char| !c.is_ascii_digit())
        .filter_map(|n| n.parse::<u32>().ok());
    let version = (nums.next().unwrap_or(0), nums.next().unwrap_or(0));
    let mut out = vec![];
    for (flag, since) in [
        ("SECCOMP_FILTER_FLAG_LOG", (4, 14)),
        ("SECCOMP_FILTER_FLAG_SPEC_ALLOW", (4, 17)),
        ("SECCOMP_FILTER_FLAG_TSYNC", (3, 17)),
        ("SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV", (5, 19)),
    ] {
        if version >= since {
            out.push(flag);
        }
    }
    out
}

#[derive(Serialize)]
struct MountExtensions {
    idmap: Enabled,
}

const NO: Enabled = Enabled { enabled: false };

fn build() -> Features {
    Features {
        oci_version_min: OCI_VERSION_MIN,
        oci_version_max: OCI_VERSION_MAX,
        hooks: HOOKS,
        mount_options: MOUNT_OPTIONS,
        linux: LinuxFeatures {
            namespaces: NAMESPACES,
            // The names this kernel knows: the launcher sets bits by number.
            capabilities: super::caps::kernel_names(),
            // memory-controller and cpu-controller drive v1 and v2
            // hierarchies themselves; there is no systemd cgroup driver.
            cgroup: Cgroup {
                v1: true,
                v2: true,
                systemd: false,
                systemd_user: false,
                rdma: false,
            },
            seccomp: SeccompFeatures {
                enabled: true,
                actions: SECCOMP_ACTIONS,
                operators: SECCOMP_OPERATORS,
                archs: SECCOMP_ARCHS,
                known_flags: SECCOMP_FLAGS,
                supported_flags: supported_seccomp_flags(),
            },
            apparmor: NO,
            selinux: NO,
            intel_rdt: NO,
            // Id-mapped bind mounts (the launcher's idmap.rs).
            mount_extensions: MountExtensions {
                idmap: Enabled { enabled: true },
            },
            // netstack moves them into the namespace it makes.
            net_devices: Enabled { enabled: true },
            memory_policy: MemoryPolicy {
                modes: super::tables::MPOL_MODES,
                flags: super::tables::MPOL_FLAGS,
            },
        },
    }
}

/// The Features structure as JSON.
pub fn features() -> serde_json::Value {
    serde_json::to_value(build()).expect("plain data serializes")
}

/// The text `ipc features` prints: runc's layout (its key order, four-space
/// indentation).
pub fn features_json() -> String {
    let mut out = Vec::new();
    let fmt = serde_json::ser::PrettyFormatter::with_indent(b"    ");
    let mut ser = serde_json::Serializer::with_formatter(&mut out, fmt);
    build()
        .serialize(&mut ser)
        .expect("serializing into memory cannot fail");
    String::from_utf8(out).expect("serde_json writes UTF-8")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;

    /// `runc features` of runc 1.1.5, for the shape.
    const RUNC: &str = include_str!("testdata/runc-features.json");

    #[test]
    fn same_shape_as_runc_features() {
        let runc: Value = serde_json::from_str(RUNC).unwrap();
        let ours = features();
        for key in ["ociVersionMin", "ociVersionMax", "hooks", "mountOptions"] {
            assert_eq!(
                std::mem::discriminant(&ours[key]),
                std::mem::discriminant(&runc[key]),
                "{key}"
            );
        }
        for key in [
            "namespaces",
            "capabilities",
            "cgroup",
            "seccomp",
            "apparmor",
            "selinux",
        ] {
            assert_eq!(
                std::mem::discriminant(&ours["linux"][key]),
                std::mem::discriminant(&runc["linux"][key]),
                "linux.{key}"
            );
        }
        assert_eq!(ours["hooks"], runc["hooks"]);
        // Every option listed is one runc recognizes too (a subset of the
        // spec's), but for idmap and ridmap: the spec's, newer than runc 1.1.
        let runc_opts = runc["mountOptions"].as_array().unwrap();
        for o in ours["mountOptions"].as_array().unwrap() {
            let newer = o == "idmap" || o == "ridmap";
            assert!(runc_opts.contains(o) || newer, "{o}");
        }
        // On this kernel (cap_last_cap 40) the list is runc's.
        if crate::config::caps::last_cap() == 40 {
            assert_eq!(ours["linux"]["capabilities"], runc["linux"]["capabilities"]);
        }
    }

    #[test]
    fn tells_what_is_not_built() {
        let f = features();
        assert_eq!(f["linux"]["seccomp"]["enabled"], true);
        assert_eq!(
            f["linux"]["seccomp"]["operators"].as_array().unwrap().len(),
            7
        );
        assert_eq!(f["linux"]["apparmor"]["enabled"], false);
        assert_eq!(f["linux"]["selinux"]["enabled"], false);
        assert_eq!(f["linux"]["intelRdt"]["enabled"], false);
        assert_eq!(f["linux"]["mountExtensions"]["idmap"]["enabled"], true);
        assert_eq!(f["linux"]["cgroup"]["systemd"], false);
        assert_eq!(f["linux"]["cgroup"]["systemdUser"], false);
        assert_eq!(f["linux"]["namespaces"].as_array().unwrap().len(), 8);
        assert_eq!(f["linux"]["netDevices"]["enabled"], true);
        assert_eq!(
            f["linux"]["memoryPolicy"]["modes"]
                .as_array()
                .unwrap()
                .len(),
            7
        );
    }

    #[test]
    fn printed_text_is_the_same_json_in_runc_key_order() {
        let text = features_json();
        assert_eq!(serde_json::from_str::<Value>(&text).unwrap(), features());
        assert!(text.starts_with("{\n    \"ociVersionMin\": \"1.0.0\",\n    \"ociVersionMax\""));
    }
}
