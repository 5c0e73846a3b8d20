//! The constellation root directory: its layout and the lock that makes
//! sure one init runs per root.
//!
//! ```text
//! <root>/init.lock                 flock held by the running init
//! <root>/init.pid                  its pid
//! <root>/sockets/<name>.sock       one per server and one for init (dir mode 0700)
//! <root>/servers/<name>/pid        "PID EPOCH RESTARTS" of the server init started
//! <root>/servers/<name>/...        the server's own journal
//! ```

use anyhow::{bail, Context, Result};
use rustix::fs::FlockOperation;
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};

pub struct Root {
    pub dir: PathBuf,
}

/// Held for init's whole life; the kernel drops the lock when init dies,
/// even by SIGKILL, so a new init can take over.
pub struct RootLock {
    _fd: OwnedFd,
}

impl Root {
    pub fn new(dir: &Path) -> Result<Root> {
        use std::os::unix::fs::PermissionsExt;
        std::fs::create_dir_all(dir).with_context(|| format!("create root {}", dir.display()))?;
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
            .with_context(|| format!("chmod 0700 {}", dir.display()))?;
        let dir = dir
            .canonicalize()
            .with_context(|| format!("resolve {}", dir.display()))?;
        for sub in ["sockets", "servers"] {
            let p = dir.join(sub);
            std::fs::create_dir_all(&p).with_context(|| format!("create {}", p.display()))?;
            std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o700))?;
        }
        Ok(Root { dir })
    }

    /// Takes the root's lock or says which init holds it.
    pub fn lock(&self) -> Result<RootLock> {
        let path = self.dir.join("init.lock");
        let fd = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .with_context(|| format!("open {}", path.display()))?;
        let fd = OwnedFd::from(fd);
        if rustix::fs::flock(&fd, FlockOperation::NonBlockingLockExclusive).is_err() {
            let holder = std::fs::read_to_string(self.dir.join("init.pid")).unwrap_or_default();
            bail!(
                "another init (pid {}) is already running on root {}; stop it first or use another --root",
                holder.trim(),
                self.dir.display()
            );
        }
        std::fs::write(
            self.dir.join("init.pid"),
            format!("{}\n", std::process::id()),
        )
        .context("write init.pid")?;
        Ok(RootLock { _fd: fd })
    }

    pub fn socket(&self, name: &str) -> PathBuf {
        libipc::socket_path(&self.dir, name)
    }

    pub fn server_dir(&self, name: &str) -> PathBuf {
        libipc::state_dir(&self.dir, name)
    }
}

/// Whether an init holds the lock of `root` (without taking it).
pub fn init_running(root: &Path) -> bool {
    let Ok(f) = std::fs::OpenOptions::new()
        .write(true)
        .open(root.join("init.lock"))
    else {
        return false;
    };
    let fd = OwnedFd::from(f);
    match rustix::fs::flock(&fd, FlockOperation::NonBlockingLockShared) {
        Ok(()) => {
            let _ = rustix::fs::flock(&fd, FlockOperation::Unlock);
            false
        }
        Err(_) => true,
    }
}
