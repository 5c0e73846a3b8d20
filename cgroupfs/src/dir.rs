//! One cgroup directory and its interface files.
//!
//! Every error names the file and what we were doing, and keeps the errno,
//! so that "write 100 to /sys/fs/cgroup/memory/x/memory.limit_in_bytes:
//! Device or resource busy" reaches the user, not "EBUSY".

use protocol::Error;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// v1 reports "no limit" as a huge page-aligned number (LONG_MAX rounded
/// down to the page size); anything at or above this is treated as unlimited.
pub const V1_UNLIMITED_THRESHOLD: u64 = 0x7FFF_FFFF_FFFF_0000;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CgroupDir {
    path: PathBuf,
}

impl CgroupDir {
    pub fn new(path: impl Into<PathBuf>) -> Self {
        CgroupDir { path: path.into() }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn file(&self, name: &str) -> PathBuf {
        self.path.join(name)
    }

    pub fn exists(&self) -> bool {
        self.path.is_dir()
    }

    pub fn has_file(&self, name: &str) -> bool {
        self.file(name).exists()
    }

    pub fn child(&self, name: &str) -> CgroupDir {
        CgroupDir::new(self.path.join(name))
    }

    /// mkdir; Ok(false) when it already existed.
    pub fn create(&self) -> Result<bool, Error> {
        match std::fs::create_dir(&self.path) {
            Ok(()) => Ok(true),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(false),
            Err(e) => Err(Error::io(
                format!("create cgroup {}", self.path.display()),
                &e,
            )),
        }
    }

    /// mkdir -p.
    pub fn create_all(&self) -> Result<(), Error> {
        std::fs::create_dir_all(&self.path)
            .map_err(|e| Error::io(format!("create cgroup {}", self.path.display()), &e))
    }

    /// rmdir, retrying EBUSY for a short while: the kernel needs a moment to
    /// let go of a cgroup whose last process just exited.
    pub fn remove(&self) -> Result<(), Error> {
        let until = Instant::now() + Duration::from_secs(2);
        loop {
            match std::fs::remove_dir(&self.path) {
                Ok(()) => return Ok(()),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
                Err(e) if e.raw_os_error() == Some(libc::EBUSY) && Instant::now() < until => {
                    std::thread::sleep(Duration::from_millis(10));
                }
                Err(e) => {
                    return Err(Error::io(
                        format!("remove cgroup {}", self.path.display()),
                        &e,
                    ))
                }
            }
        }
    }

    /// One rmdir, no waiting: Ok(true) when the directory is gone (or was
    /// never there), Ok(false) when the kernel says it is busy (processes
    /// or child groups still in it).
    pub fn try_remove(&self) -> Result<bool, Error> {
        match std::fs::remove_dir(&self.path) {
            Ok(()) => Ok(true),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(true),
            Err(e) if e.raw_os_error() == Some(libc::EBUSY) => Ok(false),
            Err(e) => Err(Error::io(
                format!("remove cgroup {}", self.path.display()),
                &e,
            )),
        }
    }

    pub fn read_string(&self, name: &str) -> Result<String, Error> {
        let p = self.file(name);
        read_small(&p).map_err(|e| Error::io(format!("read {}", p.display()), &e))
    }

    /// Writes `value` in a single write(2), as the kernel expects.
    pub fn write(&self, name: &str, value: &str) -> Result<(), Error> {
        let p = self.file(name);
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .truncate(true)
            .open(&p)
            .map_err(|e| Error::io(format!("open {} for writing", p.display()), &e))?;
        f.write_all(value.as_bytes())
            .map_err(|e| Error::io(format!("write {value:?} to {}", p.display()), &e))
    }

    /// Writes each of `values` in a write(2) of its own, through one open
    /// of the file (a file that takes one entry per write, like v1
    /// devices.allow).
    pub fn write_each(&self, name: &str, values: &[String]) -> Result<(), Error> {
        if values.is_empty() {
            return Ok(());
        }
        let p = self.file(name);
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .open(&p)
            .map_err(|e| Error::io(format!("open {} for writing", p.display()), &e))?;
        for value in values {
            f.write_all(value.as_bytes())
                .map_err(|e| Error::io(format!("write {value:?} to {}", p.display()), &e))?;
        }
        Ok(())
    }

    pub fn read_u64(&self, name: &str) -> Result<u64, Error> {
        let s = self.read_string(name)?;
        parse_u64(&s).ok_or_else(|| {
            Error::internal(format!(
                "{} holds {:?}, not a number",
                self.file(name).display(),
                s.trim()
            ))
        })
    }

    /// Reads a limit: "max" (v2) or a v1 "unlimited" number become None.
    pub fn read_limit(&self, name: &str) -> Result<Option<u64>, Error> {
        let s = self.read_string(name)?;
        let t = s.trim();
        if t == "max" || t == "-1" {
            return Ok(None);
        }
        match parse_u64(t) {
            Some(v) if v >= V1_UNLIMITED_THRESHOLD => Ok(None),
            Some(v) => Ok(Some(v)),
            None => Err(Error::internal(format!(
                "{} holds {t:?}, not a limit",
                self.file(name).display()
            ))),
        }
    }

    /// Reads a flat keyed file ("key value" lines: memory.stat, cpu.stat,
    /// memory.events, memory.oom_control).
    pub fn read_keyed(&self, name: &str) -> Result<Vec<(String, u64)>, Error> {
        Ok(parse_keyed(&self.read_string(name)?))
    }

    /// One key of a keyed file, 0 when absent.
    pub fn read_key(&self, name: &str, key: &str) -> Result<u64, Error> {
        Ok(self
            .read_keyed(name)?
            .into_iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v)
            .unwrap_or(0))
    }

    /// The pids directly in this cgroup (cgroup.procs).
    pub fn procs(&self) -> Result<Vec<i32>, Error> {
        let s = self.read_string("cgroup.procs")?;
        Ok(s.lines().filter_map(|l| l.trim().parse().ok()).collect())
    }

    /// The pids in this cgroup and every cgroup below it.
    pub fn procs_recursive(&self) -> Result<Vec<i32>, Error> {
        let mut out = self.procs()?;
        for child in self.children()? {
            out.extend(child.procs_recursive()?);
        }
        Ok(out)
    }

    /// Sub-directories (child cgroups). A group without any (the usual
    /// case) is told by its link count and not listed: a v1 memory group
    /// holds 34 interface files to read past.
    pub fn children(&self) -> Result<Vec<CgroupDir>, Error> {
        if self.has_no_subdirectories() {
            return Ok(vec![]);
        }
        self.list_children()
    }

    /// A directory's link count is 2 plus its sub-directories: kernfs
    /// keeps it so for cgroup directories (`kernfs_refresh_inode`), as
    /// ordinary filesystems do. Only 2 is taken as an answer; any other
    /// count (some filesystems always say 1) means: list it.
    fn has_no_subdirectories(&self) -> bool {
        use std::os::unix::fs::MetadataExt;
        std::fs::metadata(&self.path).is_ok_and(|m| m.is_dir() && m.nlink() == 2)
    }

    fn list_children(&self) -> Result<Vec<CgroupDir>, Error> {
        let rd = match std::fs::read_dir(&self.path) {
            Ok(rd) => rd,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(vec![]),
            Err(e) => return Err(Error::io(format!("list {}", self.path.display()), &e)),
        };
        let mut out = vec![];
        for ent in rd.flatten() {
            if ent.file_type().map(|t| t.is_dir()).unwrap_or(false) {
                out.push(CgroupDir::new(ent.path()));
            }
        }
        out.sort_by(|a, b| a.path.cmp(&b.path));
        Ok(out)
    }

    /// Moves a process into this cgroup.
    pub fn add_pid(&self, pid: i32) -> Result<(), Error> {
        if pid <= 0 {
            return Err(Error::invalid(format!("pid {pid} is not a process id")));
        }
        self.write("cgroup.procs", &pid.to_string()).map_err(|e| {
            if e.errno == Some(libc::ESRCH) {
                Error::not_found(format!("no process with pid {pid}: {}", e.message))
            } else {
                e
            }
        })
    }

    /// SIGKILLs every process in this cgroup and below until none remain
    /// (v2 cgroup.kill when the kernel has it). Gives up after `timeout`.
    pub fn kill_all(&self, timeout: Duration) -> Result<(), Error> {
        if self.has_file("cgroup.kill") && self.write("cgroup.kill", "1").is_ok() {
            // fall through to wait for the procs to disappear
        }
        let until = Instant::now() + timeout;
        loop {
            let pids = self.procs_recursive()?;
            if pids.is_empty() {
                return Ok(());
            }
            for pid in pids {
                // ESRCH just means it already went.
                let _ = nix::sys::signal::kill(
                    nix::unistd::Pid::from_raw(pid),
                    nix::sys::signal::Signal::SIGKILL,
                );
            }
            if Instant::now() > until {
                return Err(Error::new(
                    protocol::ErrorKind::Timeout,
                    format!(
                        "processes in {} did not die within {timeout:?}",
                        self.path.display()
                    ),
                ));
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }
}

pub fn parse_u64(s: &str) -> Option<u64> {
    s.trim().parse().ok()
}

pub fn parse_keyed(text: &str) -> Vec<(String, u64)> {
    text.lines()
        .filter_map(|l| {
            let mut it = l.split_whitespace();
            let k = it.next()?;
            let v = it.next()?.parse().ok()?;
            Some((k.to_string(), v))
        })
        .collect()
}

/// A small interface file (or /proc file), whole: open, read until EOF,
/// close. (std's read_to_string also stats the file for a size hint, which
/// these files do not give, then starts at 32 bytes and doubles: a stat
/// and several reads more per file.)
pub fn read_small(path: &Path) -> std::io::Result<String> {
    use std::io::Read;
    let mut f = std::fs::File::open(path)?;
    let mut bytes = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        match f.read(&mut chunk) {
            Ok(0) => break,
            Ok(n) => bytes.extend_from_slice(&chunk[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    String::from_utf8(bytes).map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_and_keyed_files() {
        let t = tempfile::tempdir().unwrap();
        let d = CgroupDir::new(t.path());
        std::fs::write(d.file("memory.max"), "max\n").unwrap();
        assert_eq!(d.read_limit("memory.max").unwrap(), None);
        std::fs::write(d.file("memory.limit_in_bytes"), "9223372036854771712\n").unwrap();
        assert_eq!(d.read_limit("memory.limit_in_bytes").unwrap(), None);
        d.write("memory.max", "1048576").unwrap();
        assert_eq!(d.read_limit("memory.max").unwrap(), Some(1048576));
        std::fs::write(
            d.file("memory.events"),
            "low 0\nhigh 0\nmax 3\noom 2\noom_kill 1\n",
        )
        .unwrap();
        assert_eq!(d.read_key("memory.events", "oom_kill").unwrap(), 1);
        assert_eq!(d.read_key("memory.events", "absent").unwrap(), 0);
        let e = d.read_u64("nope").unwrap_err();
        assert!(e.message.contains("nope"), "{e}");
    }

    #[test]
    fn children_with_and_without_sub_directories() {
        let t = tempfile::tempdir().unwrap();
        let d = CgroupDir::new(t.path());
        std::fs::write(d.file("cgroup.procs"), "").unwrap();
        assert!(d.children().unwrap().is_empty());
        d.child("b").create().unwrap();
        d.child("a").create().unwrap();
        let kids = d.children().unwrap();
        let names: Vec<_> = kids.iter().map(|c| c.path().to_path_buf()).collect();
        assert_eq!(names, [t.path().join("a"), t.path().join("b")]);
        std::fs::write(d.child("a").file("cgroup.procs"), "7\n").unwrap();
        std::fs::write(d.child("b").file("cgroup.procs"), "").unwrap();
        assert_eq!(d.procs_recursive().unwrap(), [7]);
        assert!(CgroupDir::new(t.path().join("gone"))
            .children()
            .unwrap()
            .is_empty());
    }
}
