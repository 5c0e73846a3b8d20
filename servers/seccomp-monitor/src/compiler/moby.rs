//! A default profile equivalent to moby's profiles/seccomp/default.json,
//! in OCI `linux.seccomp` form.
//!
//! moby's file is a template: `archMap`, and rules carrying `includes` /
//! `excludes` conditioned on capabilities, architectures and kernel
//! version. moby_default.json is that template resolved as docker resolves
//! it for its default capability set (CHOWN, DAC_OVERRIDE, FSETID, FOWNER,
//! MKNOD, NET_RAW, SETGID, SETUID, SETFCAP, SETPCAP, NET_BIND_SERVICE,
//! SYS_CHROOT, KILL, AUDIT_WRITE) on x86_64 with a kernel >= 4.8:
//! - architectures: x86_64 with its sub-architectures x86 and x32;
//! - kept: the main allow-list, process_vm_readv/writev and ptrace
//!   (minKernel 4.8), socket unless AF_VSOCK (40), the five personality
//!   values, arch_prctl and modify_ldt (amd64), clone without namespace
//!   flags and clone3 -> ENOSYS (both "excludes CAP_SYS_ADMIN"), chroot
//!   (CAP_SYS_CHROOT is a default capability);
//! - dropped: the ppc64le, arm, s390 and riscv64 rules and every rule that
//!   needs a capability outside the default set.

/// The profile JSON (the `linux.seccomp` object).
pub fn moby_default_profile_json() -> &'static str {
    include_str!("moby_default.json")
}
