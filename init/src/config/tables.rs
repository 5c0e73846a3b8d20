//! The runtime-spec JSON schemas (schema/config-schema.json, config-linux.json,
//! defs*.json, config-freebsd.json, config-zos.json) as `schema::Ty` tables.
//!
//! Where the schema and the prose disagree, the prose (normative) wins:
//! `process.user.uid`/`gid`, `ioPriority.priority` and `personality.domain`
//! are REQUIRED in config.md / config-linux.md; `resources.pids.limit` is
//! OPTIONAL there. Integer ranges are also narrowed to what oci-spec stores
//! (`oomScoreAdj` i32, `hugepageLimits[].limit` i64) so that a value serde
//! would refuse is refused here, with its path.
//! `rootfsPropagation` also accepts runc's recursive spellings (`rslave`, ...)
//! because engines (containerd's CRI) send them.

use super::schema::{opt, req, Field, Ty};
use super::syntax;

/// linux.memoryPolicy's modes and flags (config-linux.md), as the schema
/// takes them and `ipc features` lists them.
pub const MPOL_MODES: &[&str] = &[
    "MPOL_DEFAULT",
    "MPOL_BIND",
    "MPOL_INTERLEAVE",
    "MPOL_WEIGHTED_INTERLEAVE",
    "MPOL_PREFERRED",
    "MPOL_PREFERRED_MANY",
    "MPOL_LOCAL",
];
pub const MPOL_FLAGS: &[&str] = &[
    "MPOL_F_NUMA_BALANCING",
    "MPOL_F_RELATIVE_NODES",
    "MPOL_F_STATIC_NODES",
];

const U8: Ty = Ty::Int(0, u8::MAX as i128, "uint8");
const U16: Ty = Ty::Int(0, u16::MAX as i128, "uint16");
const U32: Ty = Ty::Int(0, u32::MAX as i128, "uint32");
const U64: Ty = Ty::Int(0, u64::MAX as i128, "uint64");
const I32: Ty = Ty::Int(i32::MIN as i128, i32::MAX as i128, "int32");
const I64: Ty = Ty::Int(i64::MIN as i128, i64::MAX as i128, "int64");
const STR: Ty = Ty::Str;
const BOOL: Ty = Ty::Bool;
const STRINGS: Ty = Ty::Array(&STR);
const STRING_MAP: Ty = Ty::Map(&STR);
const FILE_MODE: Ty = Ty::Int(0, 0o777, "file mode, in decimal");
/// A device's fileMode: the schema says 0..511, but the engines send the
/// whole st_mode, its file type included (podman: 8630 for a character
/// device, S_IFCHR|0666), and runc takes it and drops the type. The
/// uint32 of the spec's text here; `validate::linux` checks the parts.
const DEVICE_FILE_MODE: Ty = Ty::Int(0, u32::MAX as i128, "uint32 file mode, in decimal");

pub(crate) const NAMESPACE_TYPES: &[&str] = &[
    "mount", "pid", "network", "uts", "ipc", "user", "cgroup", "time",
];

pub(crate) const RLIMIT_TYPES: &[&str] = &[
    "RLIMIT_AS",
    "RLIMIT_CORE",
    "RLIMIT_CPU",
    "RLIMIT_DATA",
    "RLIMIT_FSIZE",
    "RLIMIT_LOCKS",
    "RLIMIT_MEMLOCK",
    "RLIMIT_MSGQUEUE",
    "RLIMIT_NICE",
    "RLIMIT_NOFILE",
    "RLIMIT_NPROC",
    "RLIMIT_RSS",
    "RLIMIT_RTPRIO",
    "RLIMIT_RTTIME",
    "RLIMIT_SIGPENDING",
    "RLIMIT_STACK",
];

pub(crate) const ROOTFS_PROPAGATIONS: &[&str] = &[
    "private",
    "shared",
    "slave",
    "unbindable",
    "rprivate",
    "rshared",
    "rslave",
    "runbindable",
];

pub(crate) const SECCOMP_ACTIONS: &[&str] = &[
    "SCMP_ACT_KILL",
    "SCMP_ACT_KILL_PROCESS",
    "SCMP_ACT_KILL_THREAD",
    "SCMP_ACT_TRAP",
    "SCMP_ACT_ERRNO",
    "SCMP_ACT_TRACE",
    "SCMP_ACT_ALLOW",
    "SCMP_ACT_LOG",
    "SCMP_ACT_NOTIFY",
];

pub(crate) const SECCOMP_ARCHS: &[&str] = &[
    "SCMP_ARCH_X86",
    "SCMP_ARCH_X86_64",
    "SCMP_ARCH_X32",
    "SCMP_ARCH_ARM",
    "SCMP_ARCH_AARCH64",
    "SCMP_ARCH_LOONGARCH64",
    "SCMP_ARCH_M68K",
    "SCMP_ARCH_MIPS",
    "SCMP_ARCH_MIPS64",
    "SCMP_ARCH_MIPS64N32",
    "SCMP_ARCH_MIPSEL",
    "SCMP_ARCH_MIPSEL64",
    "SCMP_ARCH_MIPSEL64N32",
    "SCMP_ARCH_PPC",
    "SCMP_ARCH_PPC64",
    "SCMP_ARCH_PPC64LE",
    "SCMP_ARCH_S390",
    "SCMP_ARCH_S390X",
    "SCMP_ARCH_SH",
    "SCMP_ARCH_SHEB",
    "SCMP_ARCH_PARISC",
    "SCMP_ARCH_PARISC64",
    "SCMP_ARCH_RISCV64",
];

pub(crate) const SECCOMP_FLAGS: &[&str] = &[
    "SECCOMP_FILTER_FLAG_TSYNC",
    "SECCOMP_FILTER_FLAG_LOG",
    "SECCOMP_FILTER_FLAG_SPEC_ALLOW",
    "SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV",
];

pub(crate) const SECCOMP_OPERATORS: &[&str] = &[
    "SCMP_CMP_NE",
    "SCMP_CMP_LT",
    "SCMP_CMP_LE",
    "SCMP_CMP_EQ",
    "SCMP_CMP_GE",
    "SCMP_CMP_GT",
    "SCMP_CMP_MASKED_EQ",
];

pub(crate) const SCHEDULER_FLAGS: &[&str] = &[
    "SCHED_FLAG_RESET_ON_FORK",
    "SCHED_FLAG_RECLAIM",
    "SCHED_FLAG_DL_OVERRUN",
    "SCHED_FLAG_KEEP_POLICY",
    "SCHED_FLAG_KEEP_PARAMS",
    "SCHED_FLAG_UTIL_CLAMP_MIN",
    "SCHED_FLAG_UTIL_CLAMP_MAX",
];

const ID_MAPPING: Ty = Ty::Object(&[
    req("containerID", &U32),
    req("hostID", &U32),
    req("size", &U32),
]);
const ID_MAPPINGS: Ty = Ty::Array(&ID_MAPPING);

const HOOK: Ty = Ty::Object(&[
    req("path", &STR),
    opt("args", &STRINGS),
    opt("env", &STRINGS),
    opt("timeout", &Ty::Int(1, i64::MAX as i128, "int, at least 1")),
]);
const HOOKS: Ty = Ty::Array(&HOOK);

const MOUNT: Ty = Ty::Object(&[
    req("destination", &STR),
    opt("source", &STR),
    opt("options", &STRINGS),
    opt("type", &STR),
    opt("uidMappings", &ID_MAPPINGS),
    opt("gidMappings", &ID_MAPPINGS),
]);

const CAPABILITY_SET: Ty = Ty::Array(&Ty::Syntax(syntax::capability_name));

const PROCESS_FIELDS: &[Field] = &[
    req("cwd", &STR),
    opt("args", &STRINGS),
    opt("commandLine", &STR),
    opt(
        "consoleSize",
        &Ty::Object(&[req("height", &U64), req("width", &U64)]),
    ),
    opt("env", &STRINGS),
    opt("terminal", &BOOL),
    opt(
        "user",
        &Ty::Object(&[
            req("uid", &U32),
            req("gid", &U32),
            opt("umask", &U32),
            opt("additionalGids", &Ty::Array(&U32)),
            opt("username", &STR),
        ]),
    ),
    opt(
        "capabilities",
        &Ty::Object(&[
            opt("bounding", &CAPABILITY_SET),
            opt("permitted", &CAPABILITY_SET),
            opt("effective", &CAPABILITY_SET),
            opt("inheritable", &CAPABILITY_SET),
            opt("ambient", &CAPABILITY_SET),
        ]),
    ),
    opt("apparmorProfile", &STR),
    opt("oomScoreAdj", &I32),
    opt("selinuxLabel", &STR),
    opt(
        "ioPriority",
        &Ty::Object(&[
            req(
                "class",
                &Ty::Enum(
                    "I/O priority class",
                    &["IOPRIO_CLASS_RT", "IOPRIO_CLASS_BE", "IOPRIO_CLASS_IDLE"],
                ),
            ),
            req("priority", &I32),
        ]),
    ),
    opt("noNewPrivileges", &BOOL),
    opt(
        "scheduler",
        &Ty::Object(&[
            req(
                "policy",
                &Ty::Enum(
                    "scheduler policy",
                    &[
                        "SCHED_OTHER",
                        "SCHED_FIFO",
                        "SCHED_RR",
                        "SCHED_BATCH",
                        "SCHED_ISO",
                        "SCHED_IDLE",
                        "SCHED_DEADLINE",
                    ],
                ),
            ),
            opt("nice", &I32),
            opt("priority", &I32),
            opt(
                "flags",
                &Ty::Array(&Ty::Enum("scheduler flag", SCHEDULER_FLAGS)),
            ),
            opt("runtime", &U64),
            opt("deadline", &U64),
            opt("period", &U64),
        ]),
    ),
    opt(
        "rlimits",
        &Ty::Array(&Ty::Object(&[
            req("type", &Ty::Enum("rlimit type", RLIMIT_TYPES)),
            req("soft", &U64),
            req("hard", &U64),
        ])),
    ),
    opt(
        "execCPUAffinity",
        &Ty::Object(&[
            opt("initial", &Ty::Syntax(syntax::cpu_affinity_chars)),
            opt("final", &Ty::Syntax(syntax::cpu_affinity_chars)),
        ]),
    ),
];

/// The `process` object (also the whole document of `ipc exec --process`).
pub(crate) const PROCESS: Ty = Ty::Object(PROCESS_FIELDS);

const DEVICE: Ty = Ty::Object(&[
    req("type", &Ty::Enum("device type", &["c", "b", "u", "p"])),
    req("path", &STR),
    opt("fileMode", &DEVICE_FILE_MODE),
    opt("major", &I64),
    opt("minor", &I64),
    opt("uid", &U32),
    opt("gid", &U32),
]);

const DEVICE_CGROUP: Ty = Ty::Object(&[
    req("allow", &BOOL),
    opt("type", &Ty::Enum("device cgroup type", &["a", "c", "b"])),
    opt("major", &I64),
    opt("minor", &I64),
    opt("access", &STR),
]);

const THROTTLE_DEVICE: Ty =
    Ty::Object(&[req("major", &I64), req("minor", &I64), req("rate", &U64)]);
const THROTTLE_DEVICES: Ty = Ty::Array(&THROTTLE_DEVICE);

const BLOCK_IO: Ty = Ty::Object(&[
    opt("weight", &U16),
    opt("leafWeight", &U16),
    opt("throttleReadBpsDevice", &THROTTLE_DEVICES),
    opt("throttleWriteBpsDevice", &THROTTLE_DEVICES),
    opt("throttleReadIOPSDevice", &THROTTLE_DEVICES),
    opt("throttleWriteIOPSDevice", &THROTTLE_DEVICES),
    opt(
        "weightDevice",
        &Ty::Array(&Ty::Object(&[
            req("major", &I64),
            req("minor", &I64),
            opt("weight", &U16),
            opt("leafWeight", &U16),
        ])),
    ),
]);

const CPU: Ty = Ty::Object(&[
    opt("cpus", &STR),
    opt("mems", &STR),
    opt("period", &U64),
    opt("quota", &I64),
    opt("burst", &U64),
    opt("realtimePeriod", &U64),
    opt("realtimeRuntime", &I64),
    opt("shares", &U64),
    opt("idle", &I64),
]);

const MEMORY: Ty = Ty::Object(&[
    opt("kernel", &I64),
    opt("kernelTCP", &I64),
    opt("limit", &I64),
    opt("reservation", &I64),
    opt("swap", &I64),
    opt("swappiness", &U64),
    opt("disableOOMKiller", &BOOL),
    opt("useHierarchy", &BOOL),
    opt("checkBeforeUpdate", &BOOL),
]);

const RESOURCES: Ty = Ty::Object(&[
    opt("unified", &STRING_MAP),
    opt("devices", &Ty::Array(&DEVICE_CGROUP)),
    opt("pids", &Ty::Object(&[opt("limit", &I64)])),
    opt("blockIO", &BLOCK_IO),
    opt("cpu", &CPU),
    opt(
        "hugepageLimits",
        &Ty::Array(&Ty::Object(&[
            req("pageSize", &Ty::Syntax(syntax::hugepage_size)),
            req(
                "limit",
                &Ty::Int(0, i64::MAX as i128, "uint64 up to 2^63-1"),
            ),
        ])),
    ),
    opt("memory", &MEMORY),
    opt(
        "network",
        &Ty::Object(&[
            opt("classID", &U32),
            opt(
                "priorities",
                &Ty::Array(&Ty::Object(&[req("name", &STR), req("priority", &U32)])),
            ),
        ]),
    ),
    opt(
        "rdma",
        &Ty::Map(&Ty::Object(&[
            opt("hcaHandles", &U32),
            opt("hcaObjects", &U32),
        ])),
    ),
]);

const SECCOMP: Ty = Ty::Object(&[
    req(
        "defaultAction",
        &Ty::Enum("seccomp action", SECCOMP_ACTIONS),
    ),
    opt("defaultErrnoRet", &U32),
    opt(
        "flags",
        &Ty::Array(&Ty::Enum("seccomp flag", SECCOMP_FLAGS)),
    ),
    opt("listenerPath", &STR),
    opt("listenerMetadata", &STR),
    opt(
        "architectures",
        &Ty::Array(&Ty::Enum("seccomp architecture", SECCOMP_ARCHS)),
    ),
    opt(
        "syscalls",
        &Ty::Array(&Ty::Object(&[
            req("names", &Ty::NonEmptyArray(&STR)),
            req("action", &Ty::Enum("seccomp action", SECCOMP_ACTIONS)),
            opt("errnoRet", &U32),
            opt(
                "args",
                &Ty::Array(&Ty::Object(&[
                    req("index", &U32),
                    req("value", &U64),
                    opt("valueTwo", &U64),
                    req("op", &Ty::Enum("seccomp operator", SECCOMP_OPERATORS)),
                ])),
            ),
        ])),
    ),
]);

const LINUX: Ty = Ty::Object(&[
    opt("devices", &Ty::Array(&DEVICE)),
    opt("netDevices", &Ty::Map(&Ty::Object(&[opt("name", &STR)]))),
    opt("uidMappings", &ID_MAPPINGS),
    opt("gidMappings", &ID_MAPPINGS),
    opt(
        "namespaces",
        &Ty::Array(&Ty::Object(&[
            req("type", &Ty::Enum("namespace type", NAMESPACE_TYPES)),
            opt("path", &STR),
        ])),
    ),
    opt("resources", &RESOURCES),
    opt("cgroupsPath", &STR),
    opt("rootfsPropagation", &Ty::Syntax(syntax::rootfs_propagation)),
    opt("seccomp", &SECCOMP),
    opt("sysctl", &STRING_MAP),
    opt("maskedPaths", &STRINGS),
    opt("readonlyPaths", &STRINGS),
    opt("mountLabel", &STR),
    opt(
        "intelRdt",
        &Ty::Object(&[
            opt("closID", &STR),
            opt("schemata", &STRINGS),
            opt("l3CacheSchema", &STR),
            opt("memBwSchema", &Ty::Syntax(syntax::mem_bw_schema)),
            opt("enableMonitoring", &BOOL),
            opt("enableCMT", &BOOL),
            opt("enableMBM", &BOOL),
        ]),
    ),
    opt(
        "memoryPolicy",
        &Ty::Object(&[
            req("mode", &Ty::Enum("memory policy mode", MPOL_MODES)),
            opt("nodes", &STR),
            opt(
                "flags",
                &Ty::Array(&Ty::Enum("memory policy flag", MPOL_FLAGS)),
            ),
        ]),
    ),
    opt(
        "personality",
        &Ty::Object(&[
            req(
                "domain",
                &Ty::Enum("personality domain", &["LINUX", "LINUX32"]),
            ),
            opt("flags", &STRINGS),
        ]),
    ),
    opt(
        "timeOffsets",
        &Ty::Map(&Ty::Object(&[opt("secs", &I64), opt("nanosecs", &U32)])),
    ),
]);

const FREEBSD_SHARING: Ty = Ty::Enum("sharing mode", &["disable", "new", "inherit"]);
const FREEBSD_SHARING_NO_DISABLE: Ty = Ty::Enum("sharing mode", &["new", "inherit"]);

/// Checked so that a broken FreeBSD section is refused like any broken
/// config; a Linux runtime otherwise ignores it (oci-spec does not even
/// parse it).
const FREEBSD: Ty = Ty::Object(&[
    opt(
        "devices",
        &Ty::Array(&Ty::Object(&[opt("path", &STR), opt("mode", &FILE_MODE)])),
    ),
    opt(
        "jail",
        &Ty::Object(&[
            opt("parent", &STR),
            opt("host", &FREEBSD_SHARING_NO_DISABLE),
            opt("ip4", &FREEBSD_SHARING),
            opt("ip4Addr", &STRINGS),
            opt("ip6", &FREEBSD_SHARING),
            opt("ip6Addr", &STRINGS),
            opt("vnet", &FREEBSD_SHARING_NO_DISABLE),
            opt("interface", &STR),
            opt("vnetInterfaces", &STRINGS),
            opt("sysvmsg", &FREEBSD_SHARING),
            opt("sysvsem", &FREEBSD_SHARING),
            opt("sysvshm", &FREEBSD_SHARING),
            opt("enforceStatfs", &U8),
            opt(
                "allow",
                &Ty::Object(&[
                    opt("setHostname", &BOOL),
                    opt("rawSockets", &BOOL),
                    opt("chflags", &BOOL),
                    opt("mount", &STRINGS),
                    opt("quotas", &BOOL),
                    opt("socketAf", &BOOL),
                    opt("mlock", &BOOL),
                    opt("reservedPorts", &BOOL),
                    opt("suser", &BOOL),
                ]),
            ),
        ]),
    ),
]);

const ZOS: Ty = Ty::Object(&[opt(
    "namespaces",
    &Ty::Array(&Ty::Object(&[
        req(
            "type",
            &Ty::Enum("z/OS namespace type", &["mount", "pid", "uts", "ipc"]),
        ),
        opt("path", &STR),
    ])),
)]);

/// The whole config.json. (`solaris`, `windows` and `vm` are left to
/// oci-spec's own types, see `parse`.)
pub(crate) const CONFIG: Ty = Ty::Object(&[
    req("ociVersion", &STR),
    opt(
        "hooks",
        &Ty::Object(&[
            opt("prestart", &HOOKS),
            opt("createRuntime", &HOOKS),
            opt("createContainer", &HOOKS),
            opt("startContainer", &HOOKS),
            opt("poststart", &HOOKS),
            opt("poststop", &HOOKS),
        ]),
    ),
    opt("annotations", &STRING_MAP),
    opt("hostname", &STR),
    opt("domainname", &STR),
    opt("mounts", &Ty::Array(&MOUNT)),
    opt(
        "root",
        &Ty::Object(&[req("path", &STR), opt("readonly", &BOOL)]),
    ),
    opt("process", &PROCESS),
    opt("linux", &LINUX),
    opt("freebsd", &FREEBSD),
    opt("zos", &ZOS),
]);
