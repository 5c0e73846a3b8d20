//! Namespace file descriptors: which kind of namespace an fd is, checked
//! before anything joins it.
//!
//! The kernel names a namespace fd in /proc/self/fd as `net:[INODE]` (nsfs);
//! any other file shows its path. The fd's own fstat must give the same
//! inode, so the name cannot come from a file that merely looks like one.

use protocol::Error;
use std::os::fd::{AsRawFd, BorrowedFd};

/// A namespace as the kernel names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NsId {
    pub kind: String,
    pub ino: u64,
}

impl NsId {
    /// `net:[4026531840]`
    pub fn name(&self) -> String {
        format!("{}:[{}]", self.kind, self.ino)
    }
}

/// Parses `KIND:[INODE]`.
pub fn parse_link(link: &str) -> Option<NsId> {
    let (kind, rest) = link.split_once(":[")?;
    let ino = rest.strip_suffix(']')?.parse().ok()?;
    if kind.is_empty() || !kind.bytes().all(|b| b.is_ascii_lowercase() || b == b'_') {
        return None;
    }
    Some(NsId {
        kind: kind.to_string(),
        ino,
    })
}

/// Checks that `fd` is a network namespace and says which one.
pub fn check_net(fd: BorrowedFd<'_>) -> Result<NsId, Error> {
    let link = std::fs::read_link(format!("/proc/self/fd/{}", fd.as_raw_fd()))
        .map_err(|e| Error::io("read the passed file descriptor's name", &e))?;
    let link = link.to_string_lossy();
    let not_ns = || {
        Error::invalid(format!(
            "the file descriptor passed is not a network namespace but {link}; \
             pass the container's /proc/PID/ns/net"
        ))
    };
    let ns = parse_link(&link).ok_or_else(not_ns)?;
    let st = rustix::fs::fstat(fd).map_err(|e| {
        Error::kernel(
            e.raw_os_error(),
            format!("fstat the passed file descriptor: {e}"),
        )
    })?;
    if st.st_ino as u64 != ns.ino {
        return Err(not_ns());
    }
    if ns.kind != "net" {
        return Err(Error::invalid(format!(
            "the file descriptor passed is a {} namespace ({link}), not a network namespace; \
             pass the container's /proc/PID/ns/net",
            ns.kind
        )));
    }
    Ok(ns)
}

/// The network namespace this thread is in (the server's: the host's).
pub fn own_net() -> Result<NsId, Error> {
    let link = std::fs::read_link("/proc/thread-self/ns/net")
        .map_err(|e| Error::io("read /proc/thread-self/ns/net", &e))?;
    parse_link(&link.to_string_lossy()).ok_or_else(|| {
        Error::internal(format!(
            "/proc/thread-self/ns/net reads {}, not net:[INODE]",
            link.display()
        ))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::fd::AsFd;

    #[test]
    fn parses_namespace_names() {
        assert_eq!(
            parse_link("net:[4026531840]"),
            Some(NsId {
                kind: "net".into(),
                ino: 4026531840
            })
        );
        assert_eq!(
            parse_link("pid_for_children:[1]").unwrap().kind,
            "pid_for_children"
        );
        for bad in ["/tmp/net:[1]", "net:[x]", "net:[1", ":[1]", "socket:[12]x"] {
            assert_eq!(parse_link(bad), None, "{bad}");
        }
    }

    #[test]
    fn own_namespace_is_accepted_and_others_refused() {
        let f = std::fs::File::open("/proc/self/ns/net").unwrap();
        assert_eq!(check_net(f.as_fd()).unwrap(), own_net().unwrap());
        let f = std::fs::File::open("/proc/self/ns/uts").unwrap();
        let e = check_net(f.as_fd()).unwrap_err();
        assert!(e.message.contains("a uts namespace"), "{e}");
        let f = std::fs::File::open("/proc/version").unwrap();
        let e = check_net(f.as_fd()).unwrap_err();
        assert!(
            e.message
                .contains("not a network namespace but /proc/version"),
            "{e}"
        );
        // A file whose *name* looks like a namespace is still a file.
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("net:[4026531840]");
        std::fs::write(&p, "").unwrap();
        let f = std::fs::File::open(&p).unwrap();
        assert!(check_net(f.as_fd()).is_err());
    }
}
