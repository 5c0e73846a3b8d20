//! The default config `ipc spec` writes: what runc 1.1's `runc spec` (and
//! `runc spec --rootless`) writes, byte for byte: the same values, the same
//! key order (runc's Go structs), tab indentation, no trailing newline.
//!
//! The structs below exist only to give serde runc's key order; the Spec is
//! parsed back from the same text, so the two can never disagree.

use oci_spec::runtime::Spec;
use serde::Serialize;

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Config {
    oci_version: &'static str,
    process: Process,
    root: Root,
    hostname: &'static str,
    mounts: Vec<Mount>,
    linux: Linux,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Process {
    terminal: bool,
    user: User,
    args: [&'static str; 1],
    env: [&'static str; 2],
    cwd: &'static str,
    capabilities: Capabilities,
    rlimits: [Rlimit; 1],
    no_new_privileges: bool,
}

#[derive(Serialize)]
struct User {
    uid: u32,
    gid: u32,
}

#[derive(Serialize)]
struct Capabilities {
    bounding: [&'static str; 3],
    effective: [&'static str; 3],
    permitted: [&'static str; 3],
    ambient: [&'static str; 3],
}

#[derive(Serialize)]
struct Rlimit {
    #[serde(rename = "type")]
    typ: &'static str,
    hard: u64,
    soft: u64,
}

#[derive(Serialize)]
struct Root {
    path: &'static str,
    readonly: bool,
}

#[derive(Serialize)]
struct Mount {
    destination: &'static str,
    #[serde(rename = "type")]
    typ: &'static str,
    source: &'static str,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    options: Vec<&'static str>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Linux {
    #[serde(skip_serializing_if = "Option::is_none")]
    uid_mappings: Option<[IdMapping; 1]>,
    #[serde(skip_serializing_if = "Option::is_none")]
    gid_mappings: Option<[IdMapping; 1]>,
    #[serde(skip_serializing_if = "Option::is_none")]
    resources: Option<Resources>,
    namespaces: Vec<Namespace>,
    masked_paths: [&'static str; 10],
    readonly_paths: [&'static str; 5],
}

#[derive(Serialize)]
struct IdMapping {
    #[serde(rename = "containerID")]
    container_id: u32,
    #[serde(rename = "hostID")]
    host_id: u32,
    size: u32,
}

#[derive(Serialize)]
struct Resources {
    devices: [DeviceRule; 1],
}

#[derive(Serialize)]
struct DeviceRule {
    allow: bool,
    access: &'static str,
}

#[derive(Serialize)]
struct Namespace {
    #[serde(rename = "type")]
    typ: &'static str,
}

const CAPS: [&str; 3] = ["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"];

/// runc's mounts; rootless drops uid=/gid= options and rbinds /sys instead
/// of mounting a sysfs (a user namespace may not mount sysfs without a
/// network namespace of its own).
fn mounts(rootless: bool) -> Vec<Mount> {
    let m = |destination, typ, source, options: &[&'static str]| Mount {
        destination,
        typ,
        source,
        options: options
            .iter()
            .copied()
            .filter(|o| !rootless || !(o.starts_with("uid=") || o.starts_with("gid=")))
            .collect(),
    };
    let sys = if rootless {
        m(
            "/sys",
            "none",
            "/sys",
            &["rbind", "nosuid", "noexec", "nodev", "ro"],
        )
    } else {
        m(
            "/sys",
            "sysfs",
            "sysfs",
            &["nosuid", "noexec", "nodev", "ro"],
        )
    };
    vec![
        m("/proc", "proc", "proc", &[]),
        m(
            "/dev",
            "tmpfs",
            "tmpfs",
            &["nosuid", "strictatime", "mode=755", "size=65536k"],
        ),
        m(
            "/dev/pts",
            "devpts",
            "devpts",
            &[
                "nosuid",
                "noexec",
                "newinstance",
                "ptmxmode=0666",
                "mode=0620",
                "gid=5",
            ],
        ),
        m(
            "/dev/shm",
            "tmpfs",
            "shm",
            &["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"],
        ),
        m(
            "/dev/mqueue",
            "mqueue",
            "mqueue",
            &["nosuid", "noexec", "nodev"],
        ),
        sys,
        m(
            "/sys/fs/cgroup",
            "cgroup",
            "cgroup",
            &["nosuid", "noexec", "nodev", "relatime", "ro"],
        ),
    ]
}

/// runc's namespaces; rootless drops the network namespace (an unprivileged
/// user could not connect it) and adds a user namespace.
fn namespaces(rootless: bool) -> Vec<Namespace> {
    let names: &[&'static str] = if rootless {
        &["pid", "ipc", "uts", "mount", "user"]
    } else {
        &["pid", "network", "ipc", "uts", "mount"]
    };
    names.iter().map(|&typ| Namespace { typ }).collect()
}

fn linux(rootless: bool) -> Linux {
    // runc maps container root to the caller's effective ids.
    let map = |host_id| {
        [IdMapping {
            container_id: 0,
            host_id,
            size: 1,
        }]
    };
    let deny_all = Resources {
        devices: [DeviceRule {
            allow: false,
            access: "rwm",
        }],
    };
    Linux {
        uid_mappings: rootless.then(|| map(nix::unistd::geteuid().as_raw())),
        gid_mappings: rootless.then(|| map(nix::unistd::getegid().as_raw())),
        resources: (!rootless).then_some(deny_all),
        namespaces: namespaces(rootless),
        masked_paths: [
            "/proc/acpi",
            "/proc/asound",
            "/proc/kcore",
            "/proc/keys",
            "/proc/latency_stats",
            "/proc/timer_list",
            "/proc/timer_stats",
            "/proc/sched_debug",
            "/sys/firmware",
            "/proc/scsi",
        ],
        readonly_paths: [
            "/proc/bus",
            "/proc/fs",
            "/proc/irq",
            "/proc/sys",
            "/proc/sysrq-trigger",
        ],
    }
}

fn config(rootless: bool) -> Config {
    Config {
        oci_version: "1.0.2-dev",
        process: Process {
            terminal: true,
            user: User { uid: 0, gid: 0 },
            args: ["sh"],
            env: [
                "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
                "TERM=xterm",
            ],
            cwd: "/",
            capabilities: Capabilities {
                bounding: CAPS,
                effective: CAPS,
                permitted: CAPS,
                ambient: CAPS,
            },
            rlimits: [Rlimit {
                typ: "RLIMIT_NOFILE",
                hard: 1024,
                soft: 1024,
            }],
            no_new_privileges: true,
        },
        root: Root {
            path: "rootfs",
            readonly: true,
        },
        hostname: "runc",
        mounts: mounts(rootless),
        linux: linux(rootless),
    }
}

/// The text of the default config.json, as `runc spec [--rootless]` writes it.
pub fn default_spec_json(rootless: bool) -> String {
    let mut out = Vec::new();
    let fmt = serde_json::ser::PrettyFormatter::with_indent(b"\t");
    let mut ser = serde_json::Serializer::with_formatter(&mut out, fmt);
    config(rootless)
        .serialize(&mut ser)
        .expect("serializing fixed data into memory cannot fail");
    String::from_utf8(out).expect("serde_json writes UTF-8")
}

/// The default config as a Spec (`runc spec`'s, with process.args ["sh"]).
pub fn default_spec(rootless: bool) -> Spec {
    super::from_value(serde_json::from_str(&default_spec_json(rootless)).expect("valid JSON"))
        .expect("the default config parses")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `runc spec` and `runc spec --rootless` of runc 1.1.5 (Debian 12),
    /// written as root: byte for byte what `ipc spec` must write.
    const RUNC: &str = include_str!("testdata/runc-spec.json");
    const RUNC_ROOTLESS: &str = include_str!("testdata/runc-spec-rootless.json");

    #[test]
    fn same_bytes_as_runc_spec() {
        assert_eq!(default_spec_json(false), RUNC);
    }

    #[test]
    fn same_bytes_as_runc_spec_rootless() {
        // runc maps container root to the caller's euid/egid.
        let (uid, gid) = (
            nix::unistd::geteuid().as_raw(),
            nix::unistd::getegid().as_raw(),
        );
        let ours = default_spec_json(true);
        let mut expected: serde_json::Value = serde_json::from_str(RUNC_ROOTLESS).unwrap();
        expected["linux"]["uidMappings"][0]["hostID"] = uid.into();
        expected["linux"]["gidMappings"][0]["hostID"] = gid.into();
        let parsed: serde_json::Value = serde_json::from_str(&ours).unwrap();
        assert_eq!(parsed, expected);
        if uid == 0 && gid == 0 {
            assert_eq!(ours, RUNC_ROOTLESS);
        }
    }

    #[test]
    fn spec_round_trips() {
        for rootless in [false, true] {
            let spec = default_spec(rootless);
            // oci-spec keeps capability sets in a HashSet: compare them sorted.
            let sorted = |mut v: serde_json::Value| {
                for set in v["process"]["capabilities"]
                    .as_object_mut()
                    .unwrap()
                    .values_mut()
                {
                    set.as_array_mut().unwrap().sort_by_key(|c| c.to_string());
                }
                v
            };
            let back = sorted(serde_json::to_value(&spec).unwrap());
            let ours = sorted(serde_json::from_str(&default_spec_json(rootless)).unwrap());
            assert_eq!(back, ours, "rootless={rootless}");
            assert_eq!(
                spec.process().as_ref().unwrap().args().as_deref(),
                Some(&["sh".to_string()][..])
            );
        }
    }
}
