//! Recycled state directories: a deleted container's directory, with its
//! files, becomes the next container's, so that a container's life makes
//! and frees no inode in the root.
//!
//! Why: on ext4 without a journal (this project's test machines' root
//! filesystem, and where `--root` usually is), every new inode is found
//! by skipping, one by one, the inodes freed in the last 5 to 35 seconds
//! (`recently_deleted` in fs/ext4/ialloc.c). Each container made and freed
//! four (its directory, config.json, and a state file per durable write),
//! so at a few hundred containers a second every create, start and delete
//! paid for a scan over thousands of them: a profile at 4 at once put
//! ext4's inode allocation and eviction, all of it init's, at 3.4% of the
//! machine's CPU, on the critical path of Prepare and of the running
//! record.
//!
//! Freeing is as dear as making: that filesystem is mounted with
//! `discard`, and every block freed (a file removed or truncated) is a
//! synchronous discard, 0.1 to 1.6 ms for a state file on Prepare's path.
//! So files are written over in place and never shrink
//! (`record::overwrite`).
//!
//! A recycled directory waits in `<root>/spare/` with its config blanked
//! (a deleted container's config may hold secrets). A first record is
//! written into one there, with its config, and the directory is then
//! renamed into `containers/` whole: a container's directory never shows
//! another container's files, even to an init killed half way. Records are
//! replaced by exchanging `state.next` with `state.json` (see
//! `record::write_state`), so they too reuse their two inodes.

use protocol::Error;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

/// The files of a container's directory that a recycled one keeps.
pub const FILES: [&str; 3] = [super::record::STATE, super::record::NEXT, "config.json"];
/// Spare directories kept at most; beyond that a deleted container's
/// directory is removed as before.
const MAX_SPARE: usize = 64;

pub fn spare_dir(root: &Path) -> PathBuf {
    root.join("spare")
}

#[derive(Debug)]
pub struct Slots {
    dir: PathBuf,
    free: Mutex<Vec<PathBuf>>,
    seq: AtomicU64,
}

impl Slots {
    /// The spares a previous init left under `root` (it removes them when
    /// it stops; a killed one leaves them for us).
    pub fn open(root: &Path) -> Slots {
        let dir = spare_dir(root);
        let mut free = vec![];
        for e in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
            if e.file_type().is_ok_and(|t| t.is_dir()) && holds_only_ours(&e.path()) {
                free.push(e.path());
            } else {
                remove(&e.path());
            }
        }
        free.truncate(MAX_SPARE);
        Slots {
            dir,
            free: Mutex::new(free),
            seq: AtomicU64::new(0),
        }
    }

    /// A directory for a new container's first record: a spare, or a new
    /// one made among them.
    pub fn take(&self) -> Result<PathBuf, Error> {
        if let Some(d) = self.free.lock().unwrap().pop() {
            return Ok(d);
        }
        let d = self.new_name();
        std::fs::create_dir_all(&d)
            .map_err(|e| Error::io(format!("create {}", d.display()), &e))?;
        Ok(d)
    }

    /// A spare that `take` gave and that was not used after all.
    pub fn put_back(&self, dir: PathBuf) {
        let mut free = self.free.lock().unwrap();
        match free.len() < MAX_SPARE {
            true => free.push(dir),
            false => remove(&dir),
        }
    }

    /// Takes a deleted container's directory as a spare: true when it was
    /// moved away, false when the caller has to remove it (it holds more
    /// than our own files, such as a mount point, or enough are kept).
    pub fn recycle(&self, dir: &Path) -> bool {
        if self.free.lock().unwrap().len() >= MAX_SPARE || !holds_only_ours(dir) {
            return false;
        }
        // The config may hold secrets (process.env): blanked now rather
        // than when the directory is next used, in place (see
        // `record::overwrite`: no block is freed). The records are
        // rewritten then, and are removed with every spare when init stops.
        let _ = super::record::overwrite(&dir.join("config.json"), b"");
        let to = self.new_name();
        if let Err(e) = std::fs::create_dir_all(&self.dir).and_then(|()| std::fs::rename(dir, &to))
        {
            tracing::debug!("not recycling {}: {e}", dir.display());
            return false;
        }
        self.put_back(to);
        true
    }

    fn new_name(&self) -> PathBuf {
        let n = self.seq.fetch_add(1, Ordering::Relaxed);
        self.dir.join(format!("{}.{n}", std::process::id()))
    }
}

/// Removes every spare (when init stops: a stopped constellation leaves
/// no deleted container's directory behind).
pub fn clear(root: &Path) {
    let dir = spare_dir(root);
    for e in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
        remove(&e.path());
    }
    let _ = std::fs::remove_dir(&dir);
}

/// Does `dir` hold nothing but the files a recycled directory keeps?
fn holds_only_ours(dir: &Path) -> bool {
    match std::fs::read_dir(dir) {
        Ok(rd) => rd.flatten().all(|e| {
            let name = e.file_name();
            FILES.iter().any(|f| name == *f) && e.file_type().is_ok_and(|t| t.is_file())
        }),
        Err(_) => false,
    }
}

/// Removes a spare (our files, then the directory); never recursive.
fn remove(p: &Path) {
    if p.is_dir() {
        for f in FILES {
            let _ = std::fs::remove_file(p.join(f));
        }
        let _ = std::fs::remove_dir(p);
    } else {
        let _ = std::fs::remove_file(p);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_deleted_directory_comes_back_empty_for_the_next_container() {
        let root = tempfile::tempdir().unwrap();
        let slots = Slots::open(root.path());
        let c1 = root.path().join("containers/c1");
        std::fs::create_dir_all(&c1).unwrap();
        std::fs::write(c1.join("state.json"), "{\"id\": \"c1\"}").unwrap();
        std::fs::write(c1.join("config.json"), "{\"secret\": 1}").unwrap();
        use std::os::unix::fs::MetadataExt;
        let ino = std::fs::metadata(c1.join("config.json")).unwrap().ino();
        assert!(slots.recycle(&c1));
        assert!(!c1.exists());
        let d = slots.take().unwrap();
        assert_eq!(d.parent().unwrap(), spare_dir(root.path()));
        let cfg = d.join("config.json");
        let blank = std::fs::read(&cfg).unwrap();
        assert!(
            blank.len() == 13 && blank.iter().all(u8::is_ascii_whitespace),
            "a deleted config is blanked in place: {blank:?}"
        );
        assert_eq!(
            std::fs::metadata(&cfg).unwrap().ino(),
            ino,
            "the same inode"
        );
        // None left: the next one is made.
        let d2 = slots.take().unwrap();
        assert!(d2.is_dir() && d2 != d);
    }

    #[test]
    fn a_directory_with_more_than_our_files_is_not_recycled() {
        let root = tempfile::tempdir().unwrap();
        let slots = Slots::open(root.path());
        let c1 = root.path().join("containers/c1");
        std::fs::create_dir_all(c1.join("rootfs")).unwrap();
        std::fs::write(c1.join("state.json"), "{}").unwrap();
        assert!(!slots.recycle(&c1));
        assert_eq!(std::fs::read(c1.join("state.json")).unwrap(), b"{}");
    }

    #[test]
    fn spares_outlive_a_restart_and_go_when_cleared() {
        let root = tempfile::tempdir().unwrap();
        let c1 = root.path().join("containers/c1");
        std::fs::create_dir_all(&c1).unwrap();
        std::fs::write(c1.join("state.json"), "{}").unwrap();
        assert!(Slots::open(root.path()).recycle(&c1));
        std::fs::write(spare_dir(root.path()).join("stray"), "x").unwrap();
        let again = Slots::open(root.path());
        let d = again.take().unwrap();
        assert!(d.join("state.json").exists());
        assert!(!spare_dir(root.path()).join("stray").exists());
        again.put_back(d);
        clear(root.path());
        assert!(!spare_dir(root.path()).exists());
    }
}
