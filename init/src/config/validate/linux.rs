//! The `linux` section: namespaces, user namespace mappings, sysctl,
//! devices, masked/readonly paths, rootfs propagation, seccomp syntax and
//! the smaller objects.

use std::os::unix::fs::MetadataExt;
use std::path::Path;

use oci_spec::runtime::{
    Linux, LinuxDevice, LinuxDeviceType, LinuxNamespace, LinuxNamespaceType, LinuxSeccomp,
    LinuxSeccompAction, Spec,
};

use super::{absolute_paths, err, mappings, resources, Check};
use crate::config::error::{field, index, key, ConfigError};
use crate::config::syntax;

/// The spec's name of a namespace type (oci-spec's Display says mnt/net).
pub(crate) fn ns_name(t: LinuxNamespaceType) -> &'static str {
    match t {
        LinuxNamespaceType::Mount => "mount",
        LinuxNamespaceType::Cgroup => "cgroup",
        LinuxNamespaceType::Uts => "uts",
        LinuxNamespaceType::Ipc => "ipc",
        LinuxNamespaceType::User => "user",
        LinuxNamespaceType::Pid => "pid",
        LinuxNamespaceType::Network => "network",
        LinuxNamespaceType::Time => "time",
    }
}

/// The name of a namespace's file under /proc/PID/ns/.
fn proc_ns_file(t: LinuxNamespaceType) -> &'static str {
    match t {
        LinuxNamespaceType::Mount => "mnt",
        LinuxNamespaceType::Network => "net",
        other => ns_name(other),
    }
}

/// `linux.namespaces`, looked up by the spec's type names.
pub(crate) struct Namespaces<'a>(&'a [LinuxNamespace]);

impl<'a> Namespaces<'a> {
    pub(crate) fn of(spec: &'a Spec) -> Self {
        let list = spec
            .linux()
            .as_ref()
            .and_then(|l| l.namespaces().as_deref());
        Namespaces(list.unwrap_or(&[]))
    }

    /// The entry of that type and its index.
    fn entry(&self, name: &str) -> Option<(usize, &LinuxNamespace)> {
        self.0
            .iter()
            .enumerate()
            .find(|(_, n)| ns_name(n.typ()) == name)
    }

    /// The container gets a namespace of that type (new or joined).
    pub(crate) fn has(&self, name: &str) -> bool {
        self.entry(name).is_some()
    }

    /// The container gets a new namespace of that type (no `path`).
    pub(crate) fn creates(&self, name: &str) -> bool {
        self.entry(name)
            .is_some_and(|(_, n)| join_path(n).is_none())
    }
}

/// The path to join, if any (an empty path means "create", as in runc).
fn join_path(n: &LinuxNamespace) -> Option<&Path> {
    n.path().as_deref().filter(|p| !p.as_os_str().is_empty())
}

fn missing_ns(name: &str) -> String {
    format!("linux.namespaces has no {name:?} entry")
}

pub(super) fn linux(spec: &Spec, ns: &Namespaces) -> Check {
    let Some(l) = spec.linux() else {
        return Ok(());
    };
    namespaces(ns)?;
    user_namespace(spec, l, ns)?;
    sysctl(l, ns)?;
    devices(l)?;
    absolute_paths(l.masked_paths().as_deref(), "linux.maskedPaths")?;
    absolute_paths(l.readonly_paths().as_deref(), "linux.readonlyPaths")?;
    propagation(l)?;
    if let Some(r) = l.resources() {
        resources::resources(r)?;
    }
    if let Some(s) = l.seccomp() {
        seccomp(s)?;
    }
    time_offsets(l, ns)?;
    net_devices(l)?;
    intel_rdt(l)?;
    memory_policy(l)?;
    cgroups_path(l)?;
    personality(l)
}

/// `cgroupsPath`: the form the controllers accept (see
/// `protocol::cgroup::cgroups_path_parts`); where it leads is theirs to check.
fn cgroups_path(l: &Linux) -> Check {
    let Some(p) = l.cgroups_path() else {
        return Ok(());
    };
    let p = p.to_string_lossy();
    match protocol::cgroup::cgroups_path_parts(&p) {
        Ok(_) => Ok(()),
        Err(e) => {
            let reason = e
                .message
                .strip_prefix("linux.cgroupsPath ")
                .unwrap_or(&e.message);
            err("linux.cgroupsPath", reason)
        }
    }
}

/// No type twice (MUST); a `path` MUST be absolute and name a namespace file.
fn namespaces(ns: &Namespaces) -> Check {
    for (i, n) in ns.0.iter().enumerate() {
        let at = index("linux.namespaces", i);
        let name = ns_name(n.typ());
        if ns.0[..i].iter().any(|o| o.typ() == n.typ()) {
            return err(at, format!("duplicate namespace type {name:?}"));
        }
        // A new namespace of a kind this kernel lacks is named by the
        // launcher when creating it fails (launcher::namespaces::
        // missing_kind): checking here cost every create a listing of
        // /proc/self/ns.
        if let Some(p) = join_path(n) {
            namespace_file(p, n.typ(), &field(&at, "path"))?;
        }
    }
    Ok(())
}

/// A joined namespace's file exists and lives on nsfs. (Its type is checked
/// by setns(2) in the launcher, which fails with EINVAL on a mismatch.)
fn namespace_file(p: &Path, t: LinuxNamespaceType, at: &str) -> Check {
    if !p.is_absolute() {
        return err(at, format!("{} must be an absolute path", p.display()));
    }
    let example = format!("/proc/PID/ns/{}", proc_ns_file(t));
    match nix::sys::statfs::statfs(p) {
        Ok(fs) if fs.filesystem_type() == nix::sys::statfs::NSFS_MAGIC => Ok(()),
        Ok(_) => err(
            at,
            format!("{} is not a namespace file (like {example})", p.display()),
        ),
        Err(nix::errno::Errno::ENOENT) => err(at, format!("{} does not exist", p.display())),
        Err(e) => err(at, format!("{}: {}", p.display(), e.desc())),
    }
}

/// runc's rules: a new user namespace needs uid and gid mappings; mappings
/// without a user namespace are refused; and (so that setuid/setgid cannot
/// fail later) the process's ids must be mapped.
fn user_namespace(spec: &Spec, l: &Linux, ns: &Namespaces) -> Check {
    let uids = l.uid_mappings().as_deref().unwrap_or(&[]);
    let gids = l.gid_mappings().as_deref().unwrap_or(&[]);
    mappings(uids, "linux.uidMappings")?;
    mappings(gids, "linux.gidMappings")?;
    if !ns.has("user") {
        for (name, list) in [("linux.uidMappings", uids), ("linux.gidMappings", gids)] {
            if !list.is_empty() {
                return err(name, format!("mappings are set but {}", missing_ns("user")));
            }
        }
        return Ok(());
    }
    if !ns.creates("user") {
        return Ok(());
    }
    for (name, list) in [("linux.uidMappings", uids), ("linux.gidMappings", gids)] {
        if list.is_empty() {
            return err(name, "a new user namespace needs mappings (none are set)");
        }
    }
    ids_mapped(spec, uids, gids)
}

fn ids_mapped(
    spec: &Spec,
    uids: &[oci_spec::runtime::LinuxIdMapping],
    gids: &[oci_spec::runtime::LinuxIdMapping],
) -> Check {
    let Some(p) = spec.process() else {
        return Ok(());
    };
    let mapped = |list: &[oci_spec::runtime::LinuxIdMapping], id: u32| {
        list.iter().any(|m| {
            let start = u64::from(m.container_id());
            (start..start + u64::from(m.size())).contains(&u64::from(id))
        })
    };
    let user = p.user();
    if !mapped(uids, user.uid()) {
        return err(
            "process.user.uid",
            format!("{} is not mapped by linux.uidMappings", user.uid()),
        );
    }
    if !mapped(gids, user.gid()) {
        return err(
            "process.user.gid",
            format!("{} is not mapped by linux.gidMappings", user.gid()),
        );
    }
    for (i, g) in user.additional_gids().iter().flatten().enumerate() {
        if !mapped(gids, *g) {
            return err(
                index("process.user.additionalGids", i),
                format!("{g} is not mapped by linux.gidMappings"),
            );
        }
    }
    Ok(())
}

/// The sysctls an ipc namespace owns (runc's list).
const IPC_SYSCTLS: &[&str] = &[
    "kernel.msgmax",
    "kernel.msgmnb",
    "kernel.msgmni",
    "kernel.sem",
    "kernel.shmall",
    "kernel.shmmax",
    "kernel.shmmni",
    "kernel.shm_rmid_forced",
];

/// runc's rule: only namespaced sysctls, and only with their namespace,
/// since any other write would change the host: ipc ones with an ipc
/// namespace, net.* with a network namespace that is not the host's,
/// kernel.domainname with a uts namespace (kernel.hostname is refused:
/// `hostname` is the field for it). Names are checked so that none can
/// escape /proc/sys.
fn sysctl(l: &Linux, ns: &Namespaces) -> Check {
    let Some(map) = l.sysctl() else {
        return Ok(());
    };
    let mut names: Vec<&String> = map.keys().collect();
    names.sort();
    for name in names {
        let at = key("linux.sysctl", name);
        syntax::sysctl_name(name).map_err(|r| ConfigError::new(&at, r))?;
        sysctl_namespace(name, ns).map_err(|r| ConfigError::new(&at, r))?;
    }
    Ok(())
}

fn sysctl_namespace(name: &str, ns: &Namespaces) -> Result<(), String> {
    let dotted = name.replace('/', ".");
    let needs = |t: &str| {
        if ns.has(t) {
            Ok(())
        } else {
            Err(format!(
                "needs a new {t} namespace: {} (it would change the host's)",
                missing_ns(t)
            ))
        }
    };
    if IPC_SYSCTLS.contains(&dotted.as_str()) || dotted.starts_with("fs.mqueue.") {
        return needs("ipc");
    }
    if dotted.starts_with("net.") {
        needs("network")?;
        return not_host_netns(ns);
    }
    match dotted.as_str() {
        "kernel.domainname" => needs("uts"),
        "kernel.hostname" => Err("conflicts with the \"hostname\" field: set that instead".into()),
        _ => Err(
            "is not namespaced: setting it in a container would change the host (runc refuses it too)"
                .into(),
        ),
    }
}

/// A joined network namespace must not be the host's own (runc compares it
/// with /proc/self/ns/net).
fn not_host_netns(ns: &Namespaces) -> Result<(), String> {
    let Some((i, n)) = ns.entry("network") else {
        return Ok(());
    };
    let Some(p) = join_path(n) else {
        return Ok(());
    };
    let same =
        |a: &std::fs::Metadata, b: &std::fs::Metadata| a.dev() == b.dev() && a.ino() == b.ino();
    match (std::fs::metadata(p), std::fs::metadata("/proc/self/ns/net")) {
        (Ok(a), Ok(b)) if same(&a, &b) => Err(format!(
            "is not allowed in the host's network namespace (linux.namespaces[{i}].path is the host's)"
        )),
        _ => Ok(()),
    }
}

/// Device major/minor limits of the kernel's dev_t (12 and 20 bits).
const MAX_MAJOR: i64 = (1 << 12) - 1;
const MAX_MINOR: i64 = (1 << 20) - 1;

/// `linux.devices`: absolute paths, each once, numbers in the kernel's range.
/// (Presence of major/minor, REQUIRED unless type is p, is checked on the
/// raw JSON, where "absent" is still visible.)
fn devices(l: &Linux) -> Check {
    let list = l.devices().as_deref().unwrap_or(&[]);
    for (i, d) in list.iter().enumerate() {
        let at = index("linux.devices", i);
        device(d, &at)?;
        if let Some(j) = list[..i].iter().position(|o| o.path() == d.path()) {
            return err(
                field(&at, "path"),
                format!(
                    "duplicate device path {} (also at {})",
                    d.path().display(),
                    index("linux.devices", j)
                ),
            );
        }
    }
    Ok(())
}

fn device(d: &LinuxDevice, at: &str) -> Check {
    if !d.path().is_absolute() {
        return err(field(at, "path"), "must be an absolute path");
    }
    if d.typ() == LinuxDeviceType::A {
        return err(field(at, "type"), "must be c, b, u or p");
    }
    if let Some(mode) = d.file_mode() {
        file_mode(d.typ(), mode, at)?;
    }
    if d.typ() == LinuxDeviceType::P {
        return Ok(());
    }
    for (name, value, max) in [
        ("major", d.major(), MAX_MAJOR),
        ("minor", d.minor(), MAX_MINOR),
    ] {
        if !(0..=max).contains(&value) {
            return err(
                field(at, name),
                format!("must be between 0 and {max}, got {value}"),
            );
        }
    }
    Ok(())
}

/// A device's `fileMode`: permission bits (at most 0777), and, as the
/// engines send them and runc takes them, optionally the file type bits
/// of st_mode, which must then be the device's own type.
fn file_mode(typ: LinuxDeviceType, mode: u32, at: &str) -> Check {
    const S_IFMT: u32 = 0o170000;
    let (kind, perms) = (mode & S_IFMT, mode & !S_IFMT);
    if perms > 0o777 {
        return err(
            field(at, "fileMode"),
            format!("{mode} has permission bits {perms:#o}; at most 0777 (511)"),
        );
    }
    let own = match typ {
        LinuxDeviceType::B => 0o060000,
        LinuxDeviceType::P => 0o010000,
        _ => 0o020000,
    };
    if kind != 0 && kind != own {
        return err(
            field(at, "fileMode"),
            format!(
                "{mode} has file type bits {kind:#o}, which are not a {} device's ({own:#o})",
                typ.as_str()
            ),
        );
    }
    Ok(())
}

/// `rootfsPropagation`: the spec's four values, runc's recursive spellings,
/// or empty (unset).
fn propagation(l: &Linux) -> Check {
    match l.rootfs_propagation().as_deref() {
        Some(p) => syntax::rootfs_propagation(p)
            .map_err(|r| ConfigError::new("linux.rootfsPropagation", r)),
        None => Ok(()),
    }
}

fn takes_errno(a: LinuxSeccompAction) -> bool {
    matches!(
        a,
        LinuxSeccompAction::ScmpActErrno | LinuxSeccompAction::ScmpActTrace
    )
}

/// Seccomp syntax only (the compiler is issue 4's): the spec's MUSTs on
/// errnoRet and listenerMetadata, non-empty syscall names, argument indexes
/// 0 to 5, and runc's refusal of SCMP_ACT_NOTIFY as the default action.
fn seccomp(s: &LinuxSeccomp) -> Check {
    let at = "linux.seccomp";
    if s.listener_metadata().is_some() && s.listener_path().is_none() {
        return err(
            field(at, "listenerMetadata"),
            "must not be set without listenerPath",
        );
    }
    if s.default_action() == LinuxSeccompAction::ScmpActNotify {
        return err(
            field(at, "defaultAction"),
            "SCMP_ACT_NOTIFY cannot be the default action (the agent's own syscalls would need it)",
        );
    }
    if s.default_errno_ret().is_some() && !takes_errno(s.default_action()) {
        return err(
            field(at, "defaultErrnoRet"),
            format!(
                "only SCMP_ACT_ERRNO and SCMP_ACT_TRACE take an errno (defaultAction is {})",
                s.default_action()
            ),
        );
    }
    for (i, sc) in s.syscalls().iter().flatten().enumerate() {
        let at = index(&field(at, "syscalls"), i);
        if let Some(j) = sc.names().iter().position(|n| n.is_empty()) {
            return err(index(&field(&at, "names"), j), "must not be empty");
        }
        if sc.errno_ret().is_some() && !takes_errno(sc.action()) {
            return err(
                field(&at, "errnoRet"),
                format!(
                    "only SCMP_ACT_ERRNO and SCMP_ACT_TRACE take an errno (action is {})",
                    sc.action()
                ),
            );
        }
        for (k, arg) in sc.args().iter().flatten().enumerate() {
            if arg.index() > 5 {
                return err(
                    field(&index(&field(&at, "args"), k), "index"),
                    format!("syscalls have 6 arguments (0 to 5), got {}", arg.index()),
                );
            }
        }
    }
    Ok(())
}

/// `timeOffsets`: the kernel's two clocks, nanoseconds below a second, and
/// a new time namespace (offsets can only be set before it is entered).
fn time_offsets(l: &Linux, ns: &Namespaces) -> Check {
    let Some(map) = l.time_offsets() else {
        return Ok(());
    };
    let mut clocks: Vec<&String> = map.keys().collect();
    clocks.sort();
    for clock in clocks {
        let at = key("linux.timeOffsets", clock);
        if clock != "monotonic" && clock != "boottime" {
            return err(
                at,
                format!("unknown clock {clock:?} (monotonic or boottime)"),
            );
        }
        if let Some(n) = map[clock].nanosecs().filter(|n| *n >= 1_000_000_000) {
            return err(
                field(&at, "nanosecs"),
                format!("must be below 1000000000, got {n}"),
            );
        }
    }
    if !map.is_empty() && !ns.creates("time") {
        return err(
            "linux.timeOffsets",
            "needs a new time namespace (a \"time\" entry without path in linux.namespaces)",
        );
    }
    Ok(())
}

/// `netDevices`: host names and container names are interface names
/// (`%d` templates allowed).
fn net_devices(l: &Linux) -> Check {
    let Some(map) = l.net_devices() else {
        return Ok(());
    };
    let mut names: Vec<&String> = map.keys().collect();
    names.sort();
    for name in names {
        let at = key("linux.netDevices", name);
        syntax::interface_name(name).map_err(|r| ConfigError::new(&at, r))?;
        if let Some(new) = map[name].name() {
            syntax::interface_name(new).map_err(|r| ConfigError::new(field(&at, "name"), r))?;
        }
    }
    Ok(())
}

/// `intelRdt`: closID names one resctrl directory (or `/`, the root);
/// schemata lines MUST NOT contain newlines.
fn intel_rdt(l: &Linux) -> Check {
    let Some(rdt) = l.intel_rdt() else {
        return Ok(());
    };
    if let Some(id) = rdt.clos_id() {
        let one_dir = !id.is_empty() && !id.contains('/') && id != "." && id != "..";
        if id != "/" && !one_dir {
            return err(
                "linux.intelRdt.closID",
                format!("{id:?} must be \"/\" or one directory name"),
            );
        }
    }
    for (i, line) in rdt.schemata().iter().flatten().enumerate() {
        if line.contains('\n') {
            return err(
                index("linux.intelRdt.schemata", i),
                "must not contain a newline",
            );
        }
    }
    Ok(())
}

/// `memoryPolicy`: a node list, empty for MPOL_DEFAULT/MPOL_LOCAL and
/// non-empty for the modes that need nodes (set_mempolicy(2)).
fn memory_policy(l: &Linux) -> Check {
    use oci_spec::runtime::MemoryPolicyModeType as M;
    let Some(mp) = l.memory_policy() else {
        return Ok(());
    };
    let nodes = mp.nodes().as_deref().unwrap_or("");
    syntax::cpu_list(nodes).map_err(|r| ConfigError::new("linux.memoryPolicy.nodes", r))?;
    let mode = mp.mode();
    match mode {
        M::MpolDefault | M::MpolLocal if !nodes.is_empty() => err(
            "linux.memoryPolicy.nodes",
            format!("must be empty for {mode}"),
        ),
        M::MpolBind | M::MpolInterleave | M::MpolWeightedInterleave | M::MpolPreferredMany
            if nodes.is_empty() =>
        {
            err(
                "linux.memoryPolicy.nodes",
                format!("{mode} needs at least one node"),
            )
        }
        _ => Ok(()),
    }
}

/// `personality.flags`: the spec defines no flag values yet.
fn personality(l: &Linux) -> Check {
    let Some(p) = l.personality() else {
        return Ok(());
    };
    match p.flags().as_deref() {
        Some([first, ..]) => err(
            "linux.personality.flags[0]",
            format!("no personality flags are defined (got {first:?})"),
        ),
        _ => Ok(()),
    }
}
