//! Where a group goes when a container's config names it
//! (`linux.cgroupsPath`), rather than `<base>/<id>`.
//!
//! runc's cgroupfs rules: a relative path is below the runtime's own
//! cgroup, an absolute one is taken from the hierarchy's root. For asterism
//! "own cgroup" is the cgroup of the process that started the
//! constellation: the parent of the base, which the base file remembers
//! across restarts, so a path resolves the same way every time (the spec
//! asks for exactly that). The path is checked here again (the client's
//! check is not trusted), and may not lead into or above the
//! constellation's base, where groups are named by id and adopted at start.
//!
//! Parents that do not exist yet are made (runc's MkdirAll) and remembered
//! in the server's table; once empty they are removed when the server
//! stops, as the base is (runc leaves them behind for good). While the
//! server runs they stay: an engine's containers come one after another
//! under one parent (`/default/<id>`), and each would otherwise pay for its
//! mkdir and rmdir in every hierarchy.

use crate::CgroupDir;
use protocol::Error;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

/// The three anchors of one hierarchy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Places {
    /// The hierarchy's root as mounted here (absolute paths start there).
    pub root: CgroupDir,
    /// The constellation's base, `<own>/asterism-<hash>`.
    pub base: CgroupDir,
}

impl Places {
    pub fn new(root: impl Into<PathBuf>, base: CgroupDir) -> Places {
        Places {
            root: CgroupDir::new(root),
            base,
        }
    }

    /// The cgroup of the process that started the constellation: relative
    /// paths start there.
    pub fn own(&self) -> &Path {
        self.base.path().parent().unwrap_or(self.root.path())
    }

    /// The group directory a `linux.cgroupsPath` names.
    pub fn resolve(&self, cgroups_path: &str) -> Result<CgroupDir, Error> {
        let parts = protocol::cgroup::cgroups_path_parts(cgroups_path)?;
        let anchor = match cgroups_path.starts_with('/') {
            true => self.root.path(),
            false => self.own(),
        };
        let dir: PathBuf = parts.iter().fold(anchor.to_path_buf(), |d, p| d.join(p));
        let base = self.base.path();
        if dir.starts_with(base) || base.starts_with(&dir) {
            return Err(Error::invalid(format!(
                "linux.cgroupsPath {cgroups_path:?} leads to {}, which is or holds this constellation's own cgroup {}; give a path outside it",
                dir.display(),
                base.display()
            )));
        }
        Ok(CgroupDir::new(dir))
    }

    /// Makes `dir` and whichever of its parents are missing, top first,
    /// each with `make(parent, dir)` (a mkdir, and whatever the parent
    /// needs first). The group itself is tried first: its parents are
    /// usually there, and only its ENOENT makes us look for them (a statx
    /// a level otherwise, on every create).
    pub fn make_with_parents(
        &self,
        dir: &CgroupDir,
        mut make: impl FnMut(&CgroupDir, &CgroupDir) -> Result<(), Error>,
    ) -> Result<(), Error> {
        let parent_of = |d: &CgroupDir| CgroupDir::new(d.path().parent().unwrap_or(d.path()));
        match make(&parent_of(dir), dir) {
            Err(e) if e.errno == Some(libc::ENOENT) => {}
            done => return done,
        }
        for d in self.missing_parents(dir).iter().chain([dir]) {
            make(&parent_of(d), d)?;
        }
        Ok(())
    }

    /// The parents of `dir` that do not exist yet, top first. Stops at the
    /// hierarchy's root.
    pub fn missing_parents(&self, dir: &CgroupDir) -> Vec<CgroupDir> {
        let mut out = vec![];
        let mut cur = dir.path().parent();
        while let Some(p) = cur {
            if !p.starts_with(self.root.path()) || p == self.root.path() || p.is_dir() {
                break;
            }
            out.push(CgroupDir::new(p));
            cur = p.parent();
        }
        out.reverse();
        out
    }
}

/// A cgroupsPath group can only go where nothing runs yet: an existing
/// directory with processes or child groups belongs to someone else (its
/// delete would kill or strand them).
pub fn check_unused(dir: &CgroupDir, cgroups_path: &str) -> Result<(), Error> {
    if !dir.exists() {
        return Ok(());
    }
    let children = dir.children()?;
    if let Some(c) = children.first() {
        return Err(Error::exists(format!(
            "linux.cgroupsPath {cgroups_path:?}: {} already holds the cgroup {}; a container needs a new or empty cgroup",
            dir.path().display(),
            c.path().display()
        )));
    }
    let procs = dir.procs()?;
    if !procs.is_empty() {
        return Err(Error::exists(format!(
            "linux.cgroupsPath {cgroups_path:?}: {} already holds processes {procs:?}; a container needs a new or empty cgroup",
            dir.path().display()
        )));
    }
    Ok(())
}

/// Removes the directories in `made` (parents a cgroupsPath create made)
/// that hold no group and no process any more, deepest first. Returns the
/// ones that are gone (removed now or earlier), to take out of the table.
/// `try_rmdir` answers Ok(false) for a directory still in use.
pub fn prune(
    made: &BTreeSet<PathBuf>,
    try_rmdir: &dyn Fn(&CgroupDir) -> Result<bool, Error>,
) -> Vec<PathBuf> {
    let mut deepest_first: Vec<&PathBuf> = made.iter().collect();
    deepest_first.sort_by_key(|p| std::cmp::Reverse(p.components().count()));
    let mut gone = vec![];
    for p in deepest_first {
        let dir = CgroupDir::new(p.clone());
        if !dir.exists() {
            gone.push(p.clone());
            continue;
        }
        if dir.children().map(|c| !c.is_empty()).unwrap_or(true) {
            continue;
        }
        match try_rmdir(&dir) {
            Ok(true) => gone.push(p.clone()),
            Ok(false) => {}
            Err(e) => tracing::warn!("keeping {}: {e}", p.display()),
        }
    }
    gone
}

#[cfg(test)]
mod tests {
    use super::*;

    fn places() -> Places {
        Places::new(
            "/sys/fs/cgroup/memory",
            CgroupDir::new("/sys/fs/cgroup/memory/me/asterism-1"),
        )
    }

    #[test]
    fn relative_is_below_own_and_absolute_below_root() {
        let p = places();
        assert_eq!(p.own(), Path::new("/sys/fs/cgroup/memory/me"));
        assert_eq!(
            p.resolve("pods//c1/").unwrap().path(),
            Path::new("/sys/fs/cgroup/memory/me/pods/c1")
        );
        assert_eq!(
            p.resolve("/default/c1").unwrap().path(),
            Path::new("/sys/fs/cgroup/memory/default/c1")
        );
    }

    #[test]
    fn refuses_the_base_its_parents_and_climbing() {
        let p = places();
        for bad in ["asterism-1/c1", "asterism-1", "/me", "/me/asterism-1/x"] {
            let e = p.resolve(bad).unwrap_err();
            assert!(e.message.contains("own cgroup"), "{bad}: {}", e.message);
        }
        assert!(p.resolve("../c1").unwrap_err().message.contains("\"..\""));
        assert!(p.resolve("/").is_err());
    }

    #[test]
    fn missing_parents_and_prune_on_a_tree() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().join("root");
        std::fs::create_dir_all(root.join("me/asterism-1")).unwrap();
        let p = Places::new(&root, CgroupDir::new(root.join("me/asterism-1")));
        let leaf = p.resolve("a/b/c").unwrap();
        let missing = p.missing_parents(&leaf);
        let want: Vec<PathBuf> = vec![root.join("me/a"), root.join("me/a/b")];
        assert_eq!(
            missing
                .iter()
                .map(|d| d.path().to_path_buf())
                .collect::<Vec<_>>(),
            want
        );
        std::fs::create_dir_all(leaf.path()).unwrap();
        std::fs::create_dir_all(root.join("me/a/other")).unwrap();
        let made: BTreeSet<PathBuf> = want.into_iter().collect();
        let rmdir = |d: &CgroupDir| d.try_remove();
        // Both still hold a group: nothing goes.
        assert!(prune(&made, &rmdir).is_empty());
        std::fs::remove_dir(leaf.path()).unwrap();
        // b is empty now; a still holds "other".
        assert_eq!(prune(&made, &rmdir), vec![root.join("me/a/b")]);
        std::fs::remove_dir(root.join("me/a/other")).unwrap();
        let gone = prune(&made, &rmdir);
        assert_eq!(gone.len(), 2, "{gone:?}");
        assert!(!root.join("me/a").exists());
    }
}
