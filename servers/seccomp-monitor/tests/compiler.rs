//! The compiler on its own: semantics checked with our BPF interpreter,
//! bad input, limits, dump and hash.

#[path = "compiler_interp/mod.rs"]
mod interp;

use interp::*;
use protocol::ErrorKind;
use seccomp_monitor::compiler::{self, compile, dump, profile_hash, to_sock_filter_bytes};

const ALLOW: u32 = 0x7fff_0000;
const ERRNO: u32 = 0x0005_0000;
const KILL_THREAD: u32 = 0;
const KILL_PROCESS: u32 = 0x8000_0000;
const TRAP: u32 = 0x0003_0000;
const LOG: u32 = 0x7ffc_0000;
const NOTIFY: u32 = 0x7fc0_0000;
const TRACE: u32 = 0x7ff0_0000;

// x86_64 numbers.
const MKDIR: u32 = 83;
const GETPID: u32 = 39;
const PERSONALITY: u32 = 135;

fn eval(json: &str, arch: u32, nr: u32, args: [u64; 6]) -> u32 {
    let c = compile(json, Some("SCMP_ARCH_X86_64")).expect("compiles");
    run(&c.program, &data(arch, nr, args)).0
}

fn err(json: &str) -> protocol::Error {
    compile(json, Some("SCMP_ARCH_X86_64")).expect_err("must be refused")
}

#[test]
fn deny_mkdir_with_eperm() {
    let p = r#"{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["mkdir"],"action":"SCMP_ACT_ERRNO"}]}"#;
    assert_eq!(eval(p, AUDIT_X86_64, MKDIR, [0; 6]), ERRNO | 1);
    assert_eq!(eval(p, AUDIT_X86_64, GETPID, [0; 6]), ALLOW);
    // x86 (not listed): a foreign architecture gets the bad-arch action.
    assert_eq!(eval(p, AUDIT_I386, 39, [0; 6]), KILL_THREAD);
    // x32 numbers on x86_64 without x32 in the filter: killed too.
    assert_eq!(
        eval(p, AUDIT_X86_64, GETPID | 0x4000_0000, [0; 6]),
        KILL_THREAD
    );
}

#[test]
fn every_action_compiles_to_its_return_value() {
    let cases = [
        ("SCMP_ACT_KILL", KILL_THREAD),
        ("SCMP_ACT_KILL_THREAD", KILL_THREAD),
        ("SCMP_ACT_KILL_PROCESS", KILL_PROCESS),
        ("SCMP_ACT_TRAP", TRAP),
        ("SCMP_ACT_ERRNO", ERRNO | 1),
        ("SCMP_ACT_TRACE", TRACE | 1),
        ("SCMP_ACT_LOG", LOG),
        ("SCMP_ACT_NOTIFY", NOTIFY),
    ];
    for (name, ret) in cases {
        let p = format!(
            r#"{{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{{"names":["mkdir"],"action":"{name}"}}]}}"#
        );
        assert_eq!(eval(&p, AUDIT_X86_64, MKDIR, [0; 6]), ret, "{name}");
        assert_eq!(eval(&p, AUDIT_X86_64, GETPID, [0; 6]), ALLOW, "{name}");
    }
    let p = r#"{"defaultAction":"SCMP_ACT_ERRNO","defaultErrnoRet":38,"syscalls":[{"names":["mkdir"],"action":"SCMP_ACT_ALLOW"},{"names":["rmdir"],"action":"SCMP_ACT_TRACE","errnoRet":7}]}"#;
    assert_eq!(eval(p, AUDIT_X86_64, MKDIR, [0; 6]), ALLOW);
    assert_eq!(eval(p, AUDIT_X86_64, 84, [0; 6]), TRACE | 7);
    assert_eq!(eval(p, AUDIT_X86_64, GETPID, [0; 6]), ERRNO | 38);
}

#[test]
fn notify_sets_new_listener_and_flags_are_reported() {
    let p = r#"{"defaultAction":"SCMP_ACT_ALLOW","flags":["SECCOMP_FILTER_FLAG_LOG","SECCOMP_FILTER_FLAG_SPEC_ALLOW","SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV"],"syscalls":[{"names":["mkdir"],"action":"SCMP_ACT_NOTIFY"}]}"#;
    let c = compile(p, None).unwrap();
    assert!(c.needs_listener);
    assert_eq!(c.flags, 2 | 4 | 8 | 32);
    let p = r#"{"defaultAction":"SCMP_ACT_ALLOW","flags":["SECCOMP_FILTER_FLAG_LOG"]}"#;
    let c = compile(p, None).unwrap();
    assert!(!c.needs_listener);
    assert_eq!(c.flags, 2);
}

fn personality_profile(op: &str, value: u64, value_two: u64) -> String {
    format!(
        r#"{{"defaultAction":"SCMP_ACT_ERRNO","architectures":["SCMP_ARCH_X86_64","SCMP_ARCH_X86"],
        "syscalls":[{{"names":["personality"],"action":"SCMP_ACT_ALLOW",
        "args":[{{"index":1,"value":{value},"valueTwo":{value_two},"op":"{op}"}}]}}]}}"#
    )
}

/// Each operator on both halves of 64-bit values, against Rust's own
/// comparison, on x86_64 (64-bit compare) and x86 (low half only).
#[test]
fn all_seven_operators_on_64_bit_values() {
    let interesting = [
        0u64,
        1,
        0xffff_ffff,
        0x1_0000_0000,
        0x1_0000_0001,
        0x7fff_ffff_ffff_ffff,
        0x8000_0000_0000_0000,
        u64::MAX,
        0x0000_0002_0000_0001,
        0x0000_0001_0000_0002,
    ];
    type Check = fn(u64, u64, u64) -> bool;
    let ops: [(&str, Check); 7] = [
        ("SCMP_CMP_NE", |a, v, _| a != v),
        ("SCMP_CMP_LT", |a, v, _| a < v),
        ("SCMP_CMP_LE", |a, v, _| a <= v),
        ("SCMP_CMP_EQ", |a, v, _| a == v),
        ("SCMP_CMP_GE", |a, v, _| a >= v),
        ("SCMP_CMP_GT", |a, v, _| a > v),
        ("SCMP_CMP_MASKED_EQ", |a, m, d| a & m == d),
    ];
    for (op, f) in ops {
        for &v in &interesting {
            let v2 = v & 0xffff_0000_0000_ffff;
            let c = compile(&personality_profile(op, v, v2), None).unwrap();
            for &a in &interesting {
                let args = [7, a, 0, 0, 0, 0];
                let got = run(&c.program, &data(AUDIT_X86_64, PERSONALITY, args)).0;
                let want = if f(a, v, v2) { ALLOW } else { ERRNO | 1 };
                assert_eq!(
                    got, want,
                    "x86_64 {op} arg={a:#x} value={v:#x} valueTwo={v2:#x}"
                );
                let (a32, v32, m32) = (a as u32 as u64, v as u32 as u64, v2 as u32 as u64);
                let got = run(&c.program, &data(AUDIT_I386, 136, args)).0;
                let want = if f(a32, v32, m32) { ALLOW } else { ERRNO | 1 };
                assert_eq!(got, want, "x86 {op} arg={a:#x} value={v:#x}");
            }
        }
    }
}

#[test]
fn args_in_a_rule_are_anded_and_rules_are_ored() {
    let p = r#"{"defaultAction":"SCMP_ACT_ERRNO","syscalls":[
        {"names":["personality"],"action":"SCMP_ACT_ALLOW","args":[
            {"index":0,"value":1,"op":"SCMP_CMP_EQ"},{"index":2,"value":10,"op":"SCMP_CMP_GT"}]},
        {"names":["personality"],"action":"SCMP_ACT_ALLOW","args":[
            {"index":5,"value":3,"op":"SCMP_CMP_EQ"}]}]}"#;
    let e = |args| eval(p, AUDIT_X86_64, PERSONALITY, args);
    assert_eq!(e([1, 0, 11, 0, 0, 0]), ALLOW);
    assert_eq!(e([1, 0, 10, 0, 0, 0]), ERRNO | 1);
    assert_eq!(e([2, 0, 11, 0, 0, 0]), ERRNO | 1);
    assert_eq!(e([2, 0, 0, 0, 0, 3]), ALLOW);
}

#[test]
fn companions_and_x32() {
    let p = r#"{"defaultAction":"SCMP_ACT_ALLOW","architectures":["SCMP_ARCH_X86_64","SCMP_ARCH_X86","SCMP_ARCH_X32"],
        "syscalls":[{"names":["mkdir","ioctl"],"action":"SCMP_ACT_ERRNO","errnoRet":13}]}"#;
    let c = compile(p, None).unwrap();
    let r = |arch, nr| run(&c.program, &data(arch, nr, [0; 6])).0;
    assert_eq!(r(AUDIT_X86_64, MKDIR), ERRNO | 13);
    assert_eq!(r(AUDIT_I386, 39), ERRNO | 13); // mkdir on i386
    assert_eq!(r(AUDIT_X86_64, MKDIR | 0x4000_0000), ERRNO | 13);
    // ioctl is 16 on x86_64, 514 on x32 (its own entry), 54 on i386.
    assert_eq!(r(AUDIT_X86_64, 16), ERRNO | 13);
    assert_eq!(r(AUDIT_X86_64, 514 | 0x4000_0000), ERRNO | 13);
    assert_eq!(r(AUDIT_X86_64, 16 | 0x4000_0000), ALLOW);
    assert_eq!(r(AUDIT_I386, 54), ERRNO | 13);
    assert_eq!(r(AUDIT_X86_64, GETPID | 0x4000_0000), ALLOW);
    assert_eq!(r(AUDIT_AARCH64, MKDIR), KILL_THREAD);
}

#[test]
fn aarch64_with_arm() {
    let p = r#"{"defaultAction":"SCMP_ACT_ALLOW","architectures":["SCMP_ARCH_AARCH64","SCMP_ARCH_ARM"],
        "syscalls":[{"names":["mkdirat","set_tls"],"action":"SCMP_ACT_ERRNO"}]}"#;
    let c = compile(p, Some("SCMP_ARCH_AARCH64")).unwrap();
    let r = |arch, nr| run(&c.program, &data(arch, nr, [0; 6])).0;
    assert_eq!(r(AUDIT_AARCH64, 34), ERRNO | 1);
    assert_eq!(r(AUDIT_ARM, 323), ERRNO | 1);
    assert_eq!(r(AUDIT_ARM, 0x0f0005), ERRNO | 1);
    assert_eq!(r(AUDIT_AARCH64, 172), ALLOW);
    assert_eq!(r(AUDIT_X86_64, 83), KILL_THREAD);
}

#[test]
fn unknown_names_are_skipped_with_a_warning() {
    let p = r#"{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["mkdir","no_such_call","socketcall"],"action":"SCMP_ACT_ERRNO"}]}"#;
    let c = compile(p, None).unwrap();
    assert_eq!(c.warnings.len(), 2, "{:?}", c.warnings);
    assert!(c.warnings[0].contains("syscalls[0]") && c.warnings[0].contains("no_such_call"));
    assert_eq!(
        run(&c.program, &data(AUDIT_X86_64, MKDIR, [0; 6])).0,
        ERRNO | 1
    );
}

#[test]
fn bad_input_names_the_offending_field() {
    let cases = [
        (r#"{"defaultAction":"SCMP_ACT_FOO"}"#, r#"linux.seccomp.defaultAction: unknown action "SCMP_ACT_FOO""#),
        (r#"{"syscalls":[]}"#, "linux.seccomp.defaultAction: required"),
        (r#"{"defaultAction":"SCMP_ACT_ALLOW","defaultErrnoRet":3}"#, "linux.seccomp.defaultAction: errnoRet is only valid"),
        (r#"{"defaultAction":"SCMP_ACT_ALLOW","architectures":["SCMP_ARCH_VAX"]}"#, r#"linux.seccomp.architectures[0]: unknown architecture "SCMP_ARCH_VAX""#),
        (r#"{"defaultAction":"SCMP_ACT_ALLOW","flags":["SECCOMP_FILTER_FLAG_FOO"]}"#, r#"linux.seccomp.flags[0]: unknown flag"#),
        (r#"{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["read"],"action":"SCMP_ACT_ERRNO"},{"names":[],"action":"SCMP_ACT_ERRNO"}]}"#, "linux.seccomp.syscalls[1].names: must list at least one syscall"),
        (r#"{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["read"],"action":"SCMP_ACT_NOPE"}]}"#, r#"linux.seccomp.syscalls[0].action: unknown action "SCMP_ACT_NOPE""#),
        (r#"{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["read"],"action":"SCMP_ACT_KILL","errnoRet":1}]}"#, "linux.seccomp.syscalls[0].action: errnoRet is only valid with SCMP_ACT_ERRNO or SCMP_ACT_TRACE, not SCMP_ACT_KILL"),
        (r#"{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["read"],"action":"SCMP_ACT_ERRNO"},{"names":["read"],"action":"SCMP_ACT_ERRNO"},{"names":["read"],"action":"SCMP_ACT_ERRNO"},{"names":["read"],"action":"SCMP_ACT_ERRNO","args":[{"index":0,"value":1,"op":"SCMP_CMP_FOO"}]}]}"#, r#"linux.seccomp.syscalls[3].args[0].op: unknown operator "SCMP_CMP_FOO""#),
        (r#"{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["read"],"action":"SCMP_ACT_ERRNO","args":[{"index":6,"value":1,"op":"SCMP_CMP_EQ"}]}]}"#, "linux.seccomp.syscalls[0].args[0].index: 6 is out of range"),
        (r#"{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["read"],"action":"SCMP_ACT_ERRNO","args":[{"index":0,"value":-1,"op":"SCMP_CMP_EQ"}]}]}"#, "linux.seccomp.syscalls[0].args[0].value: must be an unsigned 64-bit integer"),
        (r#"{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["read"],"action":"SCMP_ACT_ERRNO","errnoRet":70000}]}"#, "linux.seccomp.syscalls[0].errnoRet: 70000 does not fit"),
        ("not json", "linux.seccomp: not valid JSON"),
        (r#"{"defaultAction":"SCMP_ACT_NOTIFY"}"#, "linux.seccomp.defaultAction: SCMP_ACT_NOTIFY cannot be the default action"),
        (r#"{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["read"],"action":"SCMP_ACT_ERRNO","args":[{"index":0,"value":1}]}]}"#, "linux.seccomp.syscalls[0].args[0].op: required"),
    ];
    for (json, want) in cases {
        let e = err(json);
        assert_eq!(e.kind, ErrorKind::InvalidArgument, "{json}");
        assert!(
            e.message.starts_with(want),
            "{json}\n got: {}\nwant: {want}",
            e.message
        );
    }
    let e = compile(
        r#"{"defaultAction":"SCMP_ACT_ALLOW"}"#,
        Some("SCMP_ARCH_PDP11"),
    )
    .unwrap_err();
    assert!(
        e.message
            .contains("unknown architecture \"SCMP_ARCH_PDP11\""),
        "{}",
        e.message
    );
    let e = compile(
        r#"{"defaultAction":"SCMP_ACT_ALLOW"}"#,
        Some("SCMP_ARCH_MIPS"),
    )
    .unwrap_err();
    assert_eq!(e.kind, ErrorKind::Unsupported);
}

fn many_arg_rules(n: usize) -> String {
    let rules: Vec<String> = (0..n)
        .map(|i| {
            format!(
                r#"{{"names":["personality"],"action":"SCMP_ACT_ALLOW","args":[{{"index":0,"value":{i},"op":"SCMP_CMP_EQ"}}]}}"#
            )
        })
        .collect();
    format!(
        r#"{{"defaultAction":"SCMP_ACT_ERRNO","syscalls":[{}]}}"#,
        rules.join(",")
    )
}

#[test]
fn programs_over_4096_instructions_are_refused() {
    let e = err(&many_arg_rules(2000));
    assert_eq!(e.kind, ErrorKind::InvalidArgument);
    assert!(
        e.message.contains("over the kernel's limit of 4096"),
        "{}",
        e.message
    );
}

/// Long argument chains need jumps over 255 instructions: trampolines.
#[test]
fn far_jumps_are_correct() {
    let c = compile(&many_arg_rules(600), None).unwrap();
    assert!(c.program.len() > 1000 && c.program.len() <= 4096);
    for v in [0u64, 1, 300, 599, 600, 0x1_0000_0000, u64::MAX] {
        let got = run(
            &c.program,
            &data(AUDIT_X86_64, PERSONALITY, [v, 0, 0, 0, 0, 0]),
        )
        .0;
        let want = if v < 600 { ALLOW } else { ERRNO | 1 };
        assert_eq!(got, want, "personality({v:#x})");
    }
}

/// A large allow-list costs a logarithmic number of steps.
#[test]
fn large_profiles_use_a_binary_search() {
    let c = compile(compiler::moby_default_profile_json(), None).unwrap();
    let mut worst = 0;
    for nr in 0..500u32 {
        let (_, steps) = run(&c.program, &data(AUDIT_X86_64, nr, [0; 6]));
        if ![PERSONALITY, 56, 41].contains(&nr) {
            worst = worst.max(steps);
        }
    }
    // ~700 syscalls over three ABIs: a linear scan would take hundreds.
    assert!(worst <= 16, "worst case {worst} steps");
    println!(
        "moby default: {} instructions, worst {worst} steps",
        c.program.len()
    );
}

#[test]
fn moby_default_profile_behaves_like_docker() {
    let p = compiler::moby_default_profile_json();
    let c = compile(p, None).unwrap();
    let r = |arch, nr, args| run(&c.program, &data(arch, nr, args)).0;
    assert_eq!(r(AUDIT_X86_64, GETPID, [0; 6]), ALLOW);
    assert_eq!(r(AUDIT_X86_64, 165, [0; 6]), ERRNO | 1); // mount
    assert_eq!(r(AUDIT_X86_64, 435, [0; 6]), ERRNO | 38); // clone3 -> ENOSYS
    assert_eq!(r(AUDIT_X86_64, 56, [0x11, 0, 0, 0, 0, 0]), ALLOW); // clone(SIGCHLD)
    assert_eq!(r(AUDIT_X86_64, 56, [0x2000_0000, 0, 0, 0, 0, 0]), ERRNO | 1); // CLONE_NEWUTS... NEWCGROUP
    assert_eq!(r(AUDIT_X86_64, 41, [40, 1, 0, 0, 0, 0]), ERRNO | 1); // socket(AF_VSOCK)
    assert_eq!(r(AUDIT_X86_64, 41, [2, 1, 0, 0, 0, 0]), ALLOW);
    assert_eq!(
        r(AUDIT_X86_64, PERSONALITY, [0xffff_ffff, 0, 0, 0, 0, 0]),
        ALLOW
    );
    assert_eq!(r(AUDIT_X86_64, PERSONALITY, [1, 0, 0, 0, 0, 0]), ERRNO | 1);
    assert_eq!(r(AUDIT_I386, 20, [0; 6]), ALLOW); // getpid on i386
    assert_eq!(r(AUDIT_I386, 102, [0; 6]), ALLOW); // socketcall
    assert_eq!(r(AUDIT_AARCH64, 172, [0; 6]), KILL_THREAD);
    assert!(!c.needs_listener);
}

#[test]
fn dump_is_readable_and_counts() {
    let p = r#"{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["mkdir"],"action":"SCMP_ACT_ERRNO"}]}"#;
    let c = compile(p, None).unwrap();
    let text = dump(&c.program);
    let mut lines = text.lines();
    assert_eq!(
        lines.next().unwrap(),
        format!("; {} instructions", c.program.len())
    );
    assert_eq!(lines.count(), c.program.len());
    assert!(
        text.contains("ld  [4]") && text.contains("; arch"),
        "{text}"
    );
    assert!(
        text.contains("ERRNO(1)") && text.contains("ALLOW") && text.contains("jeq"),
        "{text}"
    );
    let bytes = to_sock_filter_bytes(&c.program);
    assert_eq!(bytes.len(), 8 * c.program.len());
    assert_eq!(decode(&bytes), c.program);
}

#[test]
fn hash_ignores_whitespace_and_sees_content_and_arch() {
    let a = r#"{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["mkdir"],"action":"SCMP_ACT_ERRNO"}]}"#;
    let b = "{ \"defaultAction\" : \"SCMP_ACT_ALLOW\",\n\t\"syscalls\": [ {\"names\": [\"mkdir\"], \"action\": \"SCMP_ACT_ERRNO\"} ] }\n";
    let c = r#"{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["rmdir"],"action":"SCMP_ACT_ERRNO"}]}"#;
    // Whitespace inside a string is content.
    let d = r#"{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["mkdir "],"action":"SCMP_ACT_ERRNO"}]}"#;
    assert_eq!(profile_hash(a, None), profile_hash(b, None));
    assert_eq!(
        profile_hash(a, None),
        profile_hash(a, Some("SCMP_ARCH_X86_64"))
    );
    assert_ne!(profile_hash(a, None), profile_hash(c, None));
    assert_ne!(profile_hash(a, None), profile_hash(d, None));
    assert_ne!(
        profile_hash(a, None),
        profile_hash(a, Some("SCMP_ARCH_AARCH64"))
    );
    let h = profile_hash(a, None);
    assert_eq!(h.len(), 64);
    assert!(h.bytes().all(|c| c.is_ascii_hexdigit()));
}
