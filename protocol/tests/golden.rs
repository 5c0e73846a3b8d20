//! Golden bytes: every variant of every wire enum, encoded, against bytes
//! recorded when the variant was added. Reordering or removing a variant
//! (which changes postcard's variant index) fails here. A new variant is
//! appended and its bytes added to `golden.txt` (run with GOLDEN_PRINT=1 to
//! see the current encodings).

use protocol::cpu::*;
use protocol::init::*;
use protocol::memory::*;
use protocol::net::*;
use protocol::placeholder::PendingRequest;
use protocol::seccomp::*;
use protocol::vfs::*;
use protocol::*;

fn samples() -> Vec<(&'static str, Vec<u8>)> {
    let e = |v: &dyn erased::Enc| v.enc();
    let err = |k| Error {
        kind: k,
        errno: Some(16),
        message: "m".into(),
    };
    let joins = vec![
        protocol::cgroup::CgroupJoin::V1Tasks {
            hierarchy: "memory".into(),
            path: "/m/c".into(),
        },
        protocol::cgroup::CgroupJoin::V2Dir {
            path: "/u/c".into(),
        },
    ];
    let lo = NetLoopback {
        id: "c".into(),
        netns: "net:[4026531840]".into(),
        ifindex: 1,
        flags: 0x10049,
        at_unix_ms: 5,
    };
    let lim = MemoryLimits {
        limit: Some(Limit::Value(33554432)),
        reservation: Some(Limit::Max),
        swap: None,
        swappiness: Some(60),
        disable_oom_killer: Some(true),
    };
    let cl = CpuLimits {
        shares: Some(1024),
        quota_us: Some(Limit::Value(20000)),
        period_us: Some(100000),
        burst_us: None,
        cpus: Some("0-1".into()),
        mems: Some("0".into()),
        idle: Some(false),
        pids_max: Some(Limit::Max),
    };
    let mg = MemoryGroup {
        id: "g".into(),
        parent: None,
        limits: lim.clone(),
        backend: "v1".into(),
        path: "/p".into(),
    };
    let cg = CpuGroup {
        id: "g".into(),
        parent: Some("p".into()),
        limits: cl.clone(),
        backend: "v1".into(),
        paths: vec!["/p".into()],
    };
    let ms = MemoryStat {
        id: "g".into(),
        limit_bytes: Some(1),
        usage_bytes: 2,
        peak_bytes: 3,
        swap_usage_bytes: None,
        oom_events: 4,
        oom_kills: 5,
        pids: vec![6],
        counters: vec![("anon".into(), 7)],
        accounts: vec![(
            "kmem".into(),
            protocol::memory::Account {
                usage: 8,
                max: 9,
                limit: 10,
                failcnt: 11,
            },
        )],
    };
    let cs = CpuStat {
        id: "g".into(),
        usage_us: 1,
        user_us: 2,
        system_us: 3,
        nr_periods: 4,
        nr_throttled: 5,
        throttled_us: 6,
        pids_current: 7,
        pids_max: Some(8),
        frozen: true,
        pids: vec![9],
        percpu_ns: vec![10, 11],
        percpu_user_ns: vec![12],
        percpu_system_ns: vec![],
        cpuset: Some(protocol::cpu::CpusetStat {
            cpus: vec![0, 1],
            mems: vec![0],
            flags: vec![("cpu_exclusive".into(), 0)],
        }),
        block_io: vec![protocol::cpu::BlockIoStat {
            file: "throttle.io_serviced_recursive".into(),
            major: 8,
            minor: 0,
            op: "Read".into(),
            value: 13,
        }],
    };
    let st = ServerStatus {
        name: "s".into(),
        pid: 1,
        epoch: 2,
        uptime_ms: 3,
        requests: 4,
    };
    let entry = ServerEntry {
        name: "s".into(),
        pid: 1,
        state: ServerState::Running,
        restarts: 2,
        uptime_ms: 3,
        requests: 4,
        epoch: 5,
    };
    let id = || "g".to_string();
    let cstate = ContainerState {
        oci_version: "1.3.0".into(),
        id: "c".into(),
        status: "running".into(),
        pid: 1,
        bundle: "/b".into(),
        rootfs: "/r".into(),
        created: "t".into(),
        owner: String::new(),
        annotations: vec![("k".into(), "v".into())],
        exit_status: None,
    };
    vec![
        (
            "ClientHello",
            e(&ClientHello {
                version: 1,
                client: "ipc".into(),
            }),
        ),
        (
            "Hello",
            e(&Hello {
                version: 1,
                server: "s".into(),
                epoch: 2,
                pid: 3,
            }),
        ),
        (
            "Request",
            e(&Request::<MemoryRequest> {
                id: 1,
                deadline_unix_ms: 2,
                key: Some("k".into()),
                fds: 0,
                call: Call::Ping,
            }),
        ),
        ("Call::Ping", e(&Call::<MemoryRequest>::Ping)),
        ("Call::Status", e(&Call::<MemoryRequest>::Status)),
        (
            "Call::Subscribe",
            e(&Call::<MemoryRequest>::Subscribe {
                filter: Some("g".into()),
            }),
        ),
        ("Call::Server", e(&Call::Server(MemoryRequest::List))),
        ("Reply::Pong", e(&Reply::<MemoryResponse>::Pong)),
        (
            "Reply::Status",
            e(&Reply::<MemoryResponse>::Status(st.clone())),
        ),
        ("Reply::Subscribed", e(&Reply::<MemoryResponse>::Subscribed)),
        ("Reply::Server", e(&Reply::Server(MemoryResponse::Deleted))),
        (
            "Response",
            e(&Response::<MemoryResponse> {
                id: 1,
                epoch: 2,
                fds: 0,
                result: Err(err(ErrorKind::Kernel)),
            }),
        ),
        (
            "ServerFrame::Response",
            e(&ServerFrame::<MemoryResponse, MemoryEvent>::Response(
                Response {
                    id: 1,
                    epoch: 2,
                    fds: 0,
                    result: Ok(Reply::Pong),
                },
            )),
        ),
        (
            "ServerFrame::Event",
            e(&ServerFrame::<MemoryResponse, MemoryEvent>::Event {
                epoch: 1,
                event: MemoryEvent::Oom {
                    id: id(),
                    oom_events: 1,
                    oom_kills: 2,
                    at_unix_ms: 3,
                },
            }),
        ),
        (
            "ErrorKind::InvalidArgument",
            e(&err(ErrorKind::InvalidArgument)),
        ),
        ("ErrorKind::NotFound", e(&err(ErrorKind::NotFound))),
        (
            "ErrorKind::AlreadyExists",
            e(&err(ErrorKind::AlreadyExists)),
        ),
        (
            "ErrorKind::PermissionDenied",
            e(&err(ErrorKind::PermissionDenied)),
        ),
        ("ErrorKind::Unavailable", e(&err(ErrorKind::Unavailable))),
        ("ErrorKind::Timeout", e(&err(ErrorKind::Timeout))),
        ("ErrorKind::Kernel", e(&err(ErrorKind::Kernel))),
        ("ErrorKind::Internal", e(&err(ErrorKind::Internal))),
        ("ErrorKind::Unsupported", e(&err(ErrorKind::Unsupported))),
        (
            "ErrorKind::VersionMismatch",
            e(&err(ErrorKind::VersionMismatch)),
        ),
        ("ErrorKind::Conflict", e(&err(ErrorKind::Conflict))),
        ("Limit::Max", e(&Limit::Max)),
        ("Limit::Value", e(&Limit::Value(300))),
        (
            "MemoryRequest::Create",
            e(&MemoryRequest::Create {
                id: id(),
                parent: Some("p".into()),
                limits: lim.clone(),
            }),
        ),
        (
            "MemoryRequest::Set",
            e(&MemoryRequest::Set {
                id: id(),
                limits: lim.clone(),
                check_before_update: true,
            }),
        ),
        (
            "MemoryRequest::Attach",
            e(&MemoryRequest::Attach { id: id(), pid: 42 }),
        ),
        ("MemoryRequest::Stat", e(&MemoryRequest::Stat { id: id() })),
        ("MemoryRequest::List", e(&MemoryRequest::List)),
        (
            "MemoryRequest::Delete",
            e(&MemoryRequest::Delete {
                id: id(),
                force: true,
            }),
        ),
        (
            "MemoryResponse::Created",
            e(&MemoryResponse::Created(mg.clone())),
        ),
        (
            "MemoryResponse::Updated",
            e(&MemoryResponse::Updated(mg.clone())),
        ),
        ("MemoryResponse::Attached", e(&MemoryResponse::Attached)),
        ("MemoryResponse::Stat", e(&MemoryResponse::Stat(ms))),
        ("MemoryResponse::List", e(&MemoryResponse::List(vec![mg]))),
        ("MemoryResponse::Deleted", e(&MemoryResponse::Deleted)),
        (
            "MemoryEvent::Oom",
            e(&MemoryEvent::Oom {
                id: id(),
                oom_events: 1,
                oom_kills: 2,
                at_unix_ms: 3,
            }),
        ),
        (
            "CpuRequest::Create",
            e(&CpuRequest::Create {
                id: id(),
                parent: None,
                limits: cl.clone(),
            }),
        ),
        (
            "CpuRequest::Set",
            e(&CpuRequest::Set {
                id: id(),
                limits: cl.clone(),
            }),
        ),
        (
            "CpuRequest::Attach",
            e(&CpuRequest::Attach { id: id(), pid: 42 }),
        ),
        ("CpuRequest::Stat", e(&CpuRequest::Stat { id: id() })),
        ("CpuRequest::List", e(&CpuRequest::List)),
        (
            "CpuRequest::Delete",
            e(&CpuRequest::Delete {
                id: id(),
                force: false,
            }),
        ),
        ("CpuRequest::Freeze", e(&CpuRequest::Freeze { id: id() })),
        ("CpuRequest::Thaw", e(&CpuRequest::Thaw { id: id() })),
        ("CpuResponse::Created", e(&CpuResponse::Created(cg.clone()))),
        ("CpuResponse::Updated", e(&CpuResponse::Updated(cg.clone()))),
        ("CpuResponse::Attached", e(&CpuResponse::Attached)),
        ("CpuResponse::Stat", e(&CpuResponse::Stat(cs))),
        ("CpuResponse::List", e(&CpuResponse::List(vec![cg]))),
        ("CpuResponse::Deleted", e(&CpuResponse::Deleted)),
        ("CpuResponse::Frozen", e(&CpuResponse::Frozen)),
        ("CpuResponse::Thawed", e(&CpuResponse::Thawed)),
        (
            "CpuEvent::FreezeChanged",
            e(&CpuEvent::FreezeChanged {
                id: id(),
                frozen: true,
            }),
        ),
        ("ServerState::Starting", e(&ServerState::Starting)),
        ("ServerState::Running", e(&ServerState::Running)),
        ("ServerState::Restarting", e(&ServerState::Restarting)),
        ("ServerState::Failed", e(&ServerState::Failed)),
        ("ServerState::Stopped", e(&ServerState::Stopped)),
        ("InitRequest::Constellation", e(&InitRequest::Constellation)),
        ("InitRequest::Shutdown", e(&InitRequest::Shutdown)),
        (
            "InitResponse::Constellation",
            e(&InitResponse::Constellation(ConstellationStatus {
                init_pid: 1,
                init_epoch: 2,
                servers: vec![entry],
            })),
        ),
        ("InitResponse::ShuttingDown", e(&InitResponse::ShuttingDown)),
        (
            "InitEvent::ServerStateChanged",
            e(&InitEvent::ServerStateChanged {
                name: "s".into(),
                state: ServerState::Failed,
                pid: 0,
                restarts: 9,
            }),
        ),
        (
            "PendingRequest::Verb",
            e(&PendingRequest::Verb {
                name: "mount".into(),
                args: vec!["x".into()],
            }),
        ),
        (
            "InitRequest::Register",
            e(&InitRequest::Register {
                id: id(),
                bundle: "/b".into(),
                config_json: "{}".into(),
                creator_pid: 7,
            }),
        ),
        (
            "InitRequest::AttachPid",
            e(&InitRequest::AttachPid {
                id: id(),
                pid: 8,
                netns: true,
            }),
        ),
        (
            "InitRequest::MarkCreated",
            e(&InitRequest::MarkCreated { id: id(), pid: 8 }),
        ),
        (
            "InitRequest::Abort",
            e(&InitRequest::Abort {
                id: id(),
                reason: "r".into(),
            }),
        ),
        ("InitRequest::Start", e(&InitRequest::Start { id: id() })),
        ("InitRequest::State", e(&InitRequest::State { id: id() })),
        ("InitRequest::List", e(&InitRequest::List)),
        (
            "InitRequest::Kill",
            e(&InitRequest::Kill {
                id: id(),
                signal: 9,
                all: true,
            }),
        ),
        (
            "InitRequest::Delete",
            e(&InitRequest::Delete {
                id: id(),
                force: true,
            }),
        ),
        ("InitRequest::Pause", e(&InitRequest::Pause { id: id() })),
        ("InitRequest::Resume", e(&InitRequest::Resume { id: id() })),
        (
            "InitRequest::Update",
            e(&InitRequest::Update {
                id: id(),
                memory: Some(MemoryLimits::default()),
                cpu: None,
            }),
        ),
        ("InitRequest::Pids", e(&InitRequest::Pids { id: id() })),
        ("InitRequest::Stats", e(&InitRequest::Stats { id: id() })),
        (
            "InitRequest::RunDetached",
            e(&InitRequest::RunDetached {
                id: id(),
                bundle: "/b".into(),
                pid_file: None,
                console_socket: None,
                no_pivot: false,
                no_new_keyring: false,
                preserve_fds: 0,
            }),
        ),
        (
            "InitRequest::SeccompListener",
            e(&InitRequest::SeccompListener { id: id() }),
        ),
        (
            "InitRequest::MarkRunning",
            e(&InitRequest::MarkRunning { id: id(), pid: 8 }),
        ),
        (
            "InitResponse::Registered",
            e(&InitResponse::Registered {
                rootfs: "/r".into(),
                seccomp: None,
            }),
        ),
        ("InitResponse::Done", e(&InitResponse::Done)),
        (
            "InitResponse::State",
            e(&InitResponse::State(cstate.clone())),
        ),
        (
            "InitResponse::Containers",
            e(&InitResponse::Containers(vec![cstate.clone()])),
        ),
        ("InitResponse::Pids", e(&InitResponse::Pids(vec![1, 2]))),
        (
            "InitResponse::Stats",
            e(&InitResponse::Stats(Box::new(ContainerStats {
                memory: None,
                cpu: None,
            }))),
        ),
        (
            "InitEvent::ContainerExited",
            e(&InitEvent::ContainerExited {
                id: id(),
                exit_status: Some(3),
            }),
        ),
        (
            "SeccompRequest::Verb",
            e(&SeccompRequest::Verb {
                name: "v".into(),
                args: vec![],
            }),
        ),
        (
            "SeccompRequest::Compile",
            e(&SeccompRequest::Compile {
                profile_json: "{}".into(),
                arch: Some("SCMP_ARCH_X86_64".into()),
            }),
        ),
        (
            "SeccompRequest::Watch",
            e(&SeccompRequest::Watch {
                id: id(),
                pid: 5,
                policy: NotifyPolicy::Continue,
            }),
        ),
        (
            "SeccompRequest::Forget",
            e(&SeccompRequest::Forget { id: id() }),
        ),
        (
            "SeccompRequest::Stats",
            e(&SeccompRequest::Stats { id: None }),
        ),
        ("NotifyPolicy::Continue", e(&NotifyPolicy::Continue)),
        ("NotifyPolicy::Errno", e(&NotifyPolicy::Errno(1))),
        (
            "NotifyPolicy::AllowArgs",
            e(&NotifyPolicy::AllowArgs {
                index: 0,
                values: vec![8],
                errno: 1,
            }),
        ),
        (
            "SeccompResponse::Compiled",
            e(&SeccompResponse::Compiled(Program {
                insns: vec![Insn {
                    code: 6,
                    jt: 0,
                    jf: 0,
                    k: 0x7fff0000,
                }],
                flags: 0,
                needs_listener: false,
                warnings: vec![],
                hash: "h".into(),
                cached: false,
            })),
        ),
        ("SeccompResponse::Watching", e(&SeccompResponse::Watching)),
        ("SeccompResponse::Forgotten", e(&SeccompResponse::Forgotten)),
        (
            "SeccompResponse::Stats",
            e(&SeccompResponse::Stats(vec![NotifyStats {
                id: id(),
                notified: 1,
                continued: 1,
                failed: 0,
            }])),
        ),
        (
            "SeccompEvent::Notified",
            e(&SeccompEvent::Notified {
                id: id(),
                pid: 1,
                syscall: "mkdir".into(),
                nr: 83,
                args: vec![0; 6],
                decision: "continue".into(),
                at_unix_ms: 1,
            }),
        ),
        (
            "VfsRequest::Verb",
            e(&VfsRequest::Verb {
                name: "mount".into(),
                args: vec!["x".into()],
            }),
        ),
        (
            "VfsRequest::Prepare",
            e(&VfsRequest::Prepare {
                id: "c".into(),
                bundle: "/b".into(),
                root_path: "rootfs".into(),
                readonly: true,
            }),
        ),
        (
            "VfsRequest::Release",
            e(&VfsRequest::Release { id: "c".into() }),
        ),
        ("VfsRequest::List", e(&VfsRequest::List)),
        (
            "VfsResponse::Prepared",
            e(&VfsResponse::Prepared {
                rootfs: "/r".into(),
            }),
        ),
        ("VfsResponse::Released", e(&VfsResponse::Released)),
        (
            "VfsResponse::List",
            e(&VfsResponse::List(vec![VfsRootfs {
                id: "c".into(),
                bundle: "/b".into(),
                root_path: "rootfs".into(),
                readonly: true,
                source: "/b/rootfs".into(),
                rootfs: "/r".into(),
                mounted: true,
                adopted: false,
            }])),
        ),
        (
            "NetRequest::Verb",
            e(&NetRequest::Verb {
                name: "veth".into(),
                args: vec![],
            }),
        ),
        (
            "NetRequest::Loopback",
            e(&NetRequest::Loopback { id: "c".into() }),
        ),
        (
            "NetRequest::Release",
            e(&NetRequest::Release { id: "c".into() }),
        ),
        ("NetRequest::List", e(&NetRequest::List)),
        (
            "NetResponse::LoopbackUp",
            e(&NetResponse::LoopbackUp(lo.clone())),
        ),
        ("NetResponse::Released", e(&NetResponse::Released)),
        ("NetResponse::List", e(&NetResponse::List(vec![lo.clone()]))),
        // --- the fast create path (cgroup self-join, netns pool) ---
        (
            "MemoryRequest::JoinFds",
            e(&MemoryRequest::JoinFds { id: id() }),
        ),
        (
            "MemoryResponse::JoinFds",
            e(&MemoryResponse::JoinFds(vec![joins[0].clone()])),
        ),
        ("CpuRequest::JoinFds", e(&CpuRequest::JoinFds { id: id() })),
        (
            "CpuResponse::JoinFds",
            e(&CpuResponse::JoinFds(joins.clone())),
        ),
        (
            "NetRequest::Claim",
            e(&NetRequest::Claim { id: "c".into() }),
        ),
        ("NetResponse::Claimed", e(&NetResponse::Claimed(lo))),
        (
            "InitRequest::Prepare",
            e(&InitRequest::Prepare {
                id: id(),
                bundle: "/b".into(),
                config_json: "{}".into(),
                creator_pid: 7,
                start_gate: true,
            }),
        ),
        (
            "InitResponse::Prepared",
            e(&InitResponse::Prepared {
                rootfs: "/r".into(),
                seccomp: None,
                joins,
                netns: true,
            }),
        ),
        // --- Create and JoinFds in one round trip (init's Prepare) ---
        (
            "MemoryRequest::CreateJoinable",
            e(&MemoryRequest::CreateJoinable {
                id: id(),
                limits: lim.clone(),
            }),
        ),
        (
            "CpuRequest::CreateJoinable",
            e(&CpuRequest::CreateJoinable {
                id: id(),
                limits: cl.clone(),
            }),
        ),
        // --- linux.netDevices ---
        (
            "NetRequest::MoveDevices",
            e(&NetRequest::MoveDevices {
                id: "c".into(),
                devices: vec![NetDevice {
                    host_name: "eth1".into(),
                    name: Some("ceth%d".into()),
                }],
            }),
        ),
        (
            "NetResponse::Moved",
            e(&NetResponse::Moved(vec!["ceth0".into()])),
        ),
        // --- the same at a config's linux.cgroupsPath ---
        (
            "MemoryRequest::CreateJoinableAt",
            e(&MemoryRequest::CreateJoinableAt {
                id: id(),
                cgroups_path: Some("pods/c1".into()),
                limits: lim.clone(),
                hugepages: vec![HugepageLimit {
                    page_size: "2MB".into(),
                    limit: 1 << 21,
                }],
            }),
        ),
        (
            "CpuRequest::CreateJoinableAt",
            e(&CpuRequest::CreateJoinableAt {
                id: id(),
                cgroups_path: Some("/default/c1".into()),
                limits: cl.clone(),
                devices: vec![
                    DeviceRule {
                        allow: false,
                        kind: 'a',
                        major: None,
                        minor: None,
                        access: "rwm".into(),
                    },
                    DeviceRule {
                        allow: true,
                        kind: 'c',
                        major: Some(1),
                        minor: Some(3),
                        access: "rwm".into(),
                    },
                ],
                block_io: Some(BlockIo {
                    weight: Some(500),
                    weight_device: vec![DeviceWeight {
                        major: 8,
                        minor: 0,
                        weight: Some(300),
                        leaf_weight: None,
                    }],
                    throttle_read_bps: vec![DeviceRate {
                        major: 254,
                        minor: 0,
                        rate: 1 << 20,
                    }],
                    ..Default::default()
                }),
            }),
        ),
        // --- update of blockIO ---
        (
            "CpuRequest::SetBlockIo",
            e(&CpuRequest::SetBlockIo {
                id: id(),
                block_io: BlockIo {
                    throttle_write_bps: vec![DeviceRate {
                        major: 254,
                        minor: 0,
                        rate: 2 << 20,
                    }],
                    ..Default::default()
                },
            }),
        ),
        (
            "InitRequest::UpdateBlockIo",
            e(&InitRequest::UpdateBlockIo {
                id: "c1".into(),
                block_io: BlockIo {
                    weight: Some(300),
                    ..Default::default()
                },
            }),
        ),
    ]
}

mod erased {
    pub trait Enc {
        fn enc(&self) -> Vec<u8>;
    }
    impl<T: serde::Serialize> Enc for T {
        fn enc(&self) -> Vec<u8> {
            protocol::encode(self).unwrap()
        }
    }
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

#[test]
fn every_variant_matches_its_golden_bytes() {
    let golden = include_str!("golden.txt");
    let expected: Vec<(&str, &str)> = golden
        .lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
        .map(|l| l.split_once(' ').expect("NAME HEX"))
        .collect();
    let got = samples();
    if std::env::var_os("GOLDEN_PRINT").is_some() {
        for (n, b) in &got {
            println!("{n} {}", hex(b));
        }
    }
    for (name, bytes) in &got {
        let want = expected.iter().find(|(n, _)| n == name).unwrap_or_else(|| {
            panic!(
                "{name} has no golden bytes in golden.txt: append `{name} {}`",
                hex(bytes)
            )
        });
        assert_eq!(
            hex(bytes),
            want.1,
            "{name} encodes differently: was a variant reordered or removed?"
        );
    }
    for (name, _) in &expected {
        assert!(
            got.iter().any(|(n, _)| n == name),
            "{name} is in golden.txt but no longer sampled: removed?"
        );
    }
}

#[test]
fn a_frame_with_trailing_bytes_is_refused() {
    let mut b = encode(&Call::<MemoryRequest>::Ping).unwrap();
    b.push(0);
    let e = decode::<Call<MemoryRequest>>(&b).unwrap_err();
    assert!(e.message.contains("trailing"), "{e}");
}

#[test]
fn garbage_and_truncated_frames_are_errors_not_panics() {
    let full = encode(&Request::<MemoryRequest> {
        id: 7,
        deadline_unix_ms: 0,
        key: None,
        fds: 0,
        call: Call::Server(MemoryRequest::Create {
            id: "abc".into(),
            parent: None,
            limits: Default::default(),
        }),
    })
    .unwrap();
    for cut in 0..full.len() {
        assert!(decode::<Request<MemoryRequest>>(&full[..cut]).is_err());
    }
    for seed in 0..2000u32 {
        let junk: Vec<u8> = (0..(seed % 64))
            .map(|i| (seed.wrapping_mul(2654435761).wrapping_add(i * 97) >> 7) as u8)
            .collect();
        let _ = decode::<Request<CpuRequest>>(&junk);
    }
}

#[test]
fn the_verb_variants_encode_like_the_placeholder_they_replace() {
    // A client built against `placeholder::PendingRequest` must still reach
    // the catch-all of vfs-overlay and netstack (and get "unsupported").
    let old = encode(&PendingRequest::Verb {
        name: "mount".into(),
        args: vec!["x".into()],
    })
    .unwrap();
    let vfs = encode(&VfsRequest::Verb {
        name: "mount".into(),
        args: vec!["x".into()],
    })
    .unwrap();
    let net = encode(&NetRequest::Verb {
        name: "mount".into(),
        args: vec!["x".into()],
    })
    .unwrap();
    assert_eq!(old, vfs);
    assert_eq!(old, net);
}
