//! CVE-2019-5736: a container must not get hold of the runtime's own binary
//! through /proc/self/exe and overwrite it.
//!
//! The setup process is a fork of `ipc`, so its /proc/self/exe is the host's
//! `ipc`. Two ways lead there:
//! 1. Another process of the container opens /proc/<setup pid>/exe while we
//!    set up (exec into a running container). The setup process is made
//!    non-dumpable (PR_SET_DUMPABLE 0) as its first act, so that only a
//!    process allowed to ptrace us (CAP_SYS_PTRACE over our user namespace)
//!    can open that link.
//! 2. The process we exec resolves to /proc/self/exe: args[0] is (a symlink
//!    to) /proc/self/exe, or a script whose `#!` interpreter is — the
//!    kernel resolves both while our /proc/self/exe is still `ipc`, and the
//!    container would then run `ipc` as its own process, whose exe link any
//!    process of the container could open. So before exec we compare the
//!    target and each `#!` interpreter the kernel will follow (up to its
//!    nesting limit) by device and inode with our own binary, stat()ed
//!    before anything of the container was visible, and refuse.
//!
//! We chose this over re-executing from a sealed memfd copy of the binary
//! (runc 1.1's way) because the launcher continues as a fork of `ipc`
//! without exec'ing itself again: a memfd copy would cost a copy of the whole
//! binary and an extra exec per container, against the lifecycle benchmark.
//! What this does not cover: a binfmt_misc interpreter registered on the
//! host without the F flag whose path the container redirects, and a
//! container process swapping files between our check and execve during
//! `exec` into a running container.

use anyhow::{bail, Context, Result};
use std::io::Read;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

/// Our own binary's identity.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SelfExe {
    pub dev: u64,
    pub ino: u64,
}

impl SelfExe {
    /// Taken in the parent, before clone3.
    pub fn capture() -> Result<SelfExe> {
        let m = std::fs::metadata("/proc/self/exe").context("stat /proc/self/exe")?;
        Ok(SelfExe {
            dev: m.dev(),
            ino: m.ino(),
        })
    }
}

/// How many interpreters deep the kernel goes (fs/exec.c: 5 rounds).
const MAX_DEPTH: usize = 5;

/// Refuses `target` when it, or an interpreter it names, is our binary.
pub fn check(target: &Path, me: SelfExe) -> Result<()> {
    let mut path: PathBuf = target.to_path_buf();
    for _ in 0..MAX_DEPTH {
        let Ok(meta) = std::fs::metadata(&path) else {
            return Ok(()); // execve will report it
        };
        if (meta.dev(), meta.ino()) == (me.dev, me.ino) {
            bail!(
                "exec {:?}: refusing to run the container runtime's own binary ({}) inside the container",
                target.display().to_string(),
                path.display()
            );
        }
        match interpreter(&path)? {
            Some(next) => path = next,
            None => return Ok(()),
        }
    }
    Ok(())
}

/// The `#!` interpreter of `path`, as binfmt_script reads it from the
/// first 256 bytes; None for anything else.
fn interpreter(path: &Path) -> Result<Option<PathBuf>> {
    let mut head = [0u8; 256];
    let n = match std::fs::File::open(path) {
        Ok(mut f) => f.read(&mut head).unwrap_or(0),
        // The kernel reads scripts it may exec even when we cannot; a file
        // we cannot read could be such a script, so say no.
        Err(e) if e.raw_os_error() == Some(libc::EACCES) => bail!(
            "exec {}: cannot read it to check its interpreter (it must be readable by the container's user)",
            path.display()
        ),
        Err(_) => return Ok(None),
    };
    Ok(parse_shebang(&head[..n]))
}

fn parse_shebang(head: &[u8]) -> Option<PathBuf> {
    use std::os::unix::ffi::OsStrExt;
    let rest = head.strip_prefix(b"#!")?;
    let line = rest.split(|&b| b == b'\n').next().unwrap_or(rest);
    let line: &[u8] = {
        let start = line.iter().position(|&b| b != b' ' && b != b'\t')?;
        &line[start..]
    };
    let end = line
        .iter()
        .position(|&b| b == b' ' || b == b'\t' || b == 0)
        .unwrap_or(line.len());
    let interp = &line[..end];
    (!interp.is_empty()).then(|| PathBuf::from(std::ffi::OsStr::from_bytes(interp)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shebangs() {
        assert_eq!(
            parse_shebang(b"#!/bin/sh -e\necho"),
            Some(PathBuf::from("/bin/sh"))
        );
        assert_eq!(
            parse_shebang(b"#!  /proc/self/exe"),
            Some(PathBuf::from("/proc/self/exe"))
        );
        assert_eq!(parse_shebang(b"\x7fELF"), None);
        assert_eq!(parse_shebang(b"#!\n"), None);
    }

    #[test]
    fn our_own_binary_is_refused_directly_and_through_a_script() {
        let me = SelfExe::capture().unwrap();
        let e = check(Path::new("/proc/self/exe"), me).unwrap_err();
        assert!(e.to_string().contains("refusing"), "{e}");
        let dir = tempfile::tempdir().unwrap();
        let script = dir.path().join("s");
        std::fs::write(&script, "#!/proc/self/exe\n").unwrap();
        assert!(check(&script, me).is_err());
        assert!(check(Path::new("/bin/sh"), me).is_ok());
    }
}
