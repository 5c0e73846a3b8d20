//! From a bundle and the config's `root.path` to the host directory that is
//! the container's rootfs, with the checks the runtime spec asks for.
//!
//! config.md: root.path "MAY be either an absolute path or a relative path
//! to the bundle". An absolute path may name any directory on the host. A
//! relative one must stay inside the bundle once every symlink is resolved:
//! `rootfs -> /` in a bundle someone handed us must not make the host's root
//! the container's.

use protocol::Error;
use std::path::{Path, PathBuf};

/// Checks `bundle` and `root_path` and returns the rootfs with every
/// symlink resolved (the path the launcher may use without following a
/// link that could change under it).
pub fn rootfs(bundle: &str, root_path: &str) -> Result<PathBuf, Error> {
    let bundle_dir = check_bundle(bundle)?;
    check_root_path(root_path)?;
    let given = Path::new(root_path);
    let candidate = if given.is_absolute() {
        given.to_path_buf()
    } else {
        bundle_dir.join(given)
    };
    let real = canonical(&candidate, root_path)?;
    if !given.is_absolute() {
        let bundle_real = std::fs::canonicalize(&bundle_dir)
            .map_err(|e| Error::io(format!("resolve bundle {bundle}"), &e))?;
        if !real.starts_with(&bundle_real) {
            return Err(Error::invalid(format!(
                "root.path {root_path:?} leads outside the bundle {bundle}: {} resolves to {}; \
                 a relative root.path must stay inside the bundle (give an absolute root.path \
                 to use a rootfs elsewhere)",
                candidate.display(),
                real.display()
            )));
        }
    }
    let meta = std::fs::metadata(&real).map_err(|e| {
        Error::io(
            format!("root.path {root_path:?}: stat {}", real.display()),
            &e,
        )
    })?;
    if !meta.is_dir() {
        return Err(Error::invalid(format!(
            "root.path {root_path:?}: {} is not a directory",
            describe(&candidate, &real)
        )));
    }
    Ok(real)
}

fn check_bundle(bundle: &str) -> Result<PathBuf, Error> {
    if bundle.is_empty() {
        return Err(Error::invalid("bundle path is empty"));
    }
    if bundle.contains('\0') {
        return Err(Error::invalid(format!(
            "bundle path {bundle:?} contains a NUL byte"
        )));
    }
    let p = PathBuf::from(bundle);
    if !p.is_absolute() {
        return Err(Error::invalid(format!(
            "bundle path {bundle:?} must be absolute"
        )));
    }
    match std::fs::metadata(&p) {
        Ok(m) if m.is_dir() => Ok(p),
        Ok(_) => Err(Error::invalid(format!(
            "bundle {bundle} is not a directory"
        ))),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            Err(Error::not_found(format!("bundle {bundle} does not exist")))
        }
        Err(e) => Err(Error::io(format!("bundle {bundle}"), &e)),
    }
}

fn check_root_path(root_path: &str) -> Result<(), Error> {
    if root_path.is_empty() {
        return Err(Error::invalid(
            "root.path is empty; it names the container's root filesystem (usually \"rootfs\")",
        ));
    }
    if root_path.contains('\0') {
        return Err(Error::invalid(format!(
            "root.path {root_path:?} contains a NUL byte"
        )));
    }
    Ok(())
}

/// canonicalize with an error that says which link, if any, led nowhere.
fn canonical(candidate: &Path, root_path: &str) -> Result<PathBuf, Error> {
    match std::fs::canonicalize(candidate) {
        Ok(p) => Ok(p),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let what = match std::fs::read_link(candidate) {
                Ok(target) => format!(
                    "{} is a symlink to {}, which does not exist",
                    candidate.display(),
                    target.display()
                ),
                Err(_) => format!("rootfs {} does not exist", candidate.display()),
            };
            Err(Error::not_found(format!("root.path {root_path:?}: {what}")))
        }
        Err(e) => Err(Error::io(
            format!("root.path {root_path:?}: resolve {}", candidate.display()),
            &e,
        )),
    }
}

fn describe(candidate: &Path, real: &Path) -> String {
    if candidate == real {
        candidate.display().to_string()
    } else {
        format!("{} (resolved to {})", candidate.display(), real.display())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    fn bundle() -> tempfile::TempDir {
        let t = tempfile::tempdir().unwrap();
        std::fs::create_dir(t.path().join("rootfs")).unwrap();
        t
    }

    fn s(p: &Path) -> String {
        p.to_str().unwrap().to_string()
    }

    #[test]
    fn a_relative_rootfs_resolves_inside_the_bundle() {
        let b = bundle();
        let real = rootfs(&s(b.path()), "rootfs").unwrap();
        assert_eq!(
            real,
            std::fs::canonicalize(b.path().join("rootfs")).unwrap()
        );
        // a symlink that stays inside is fine
        symlink("rootfs", b.path().join("alias")).unwrap();
        assert_eq!(rootfs(&s(b.path()), "alias").unwrap(), real);
        assert_eq!(rootfs(&s(b.path()), "./rootfs/.").unwrap(), real);
    }

    #[test]
    fn a_relative_rootfs_may_not_escape_through_a_symlink_or_dotdot() {
        let b = bundle();
        let outside = tempfile::tempdir().unwrap();
        symlink(outside.path(), b.path().join("escape")).unwrap();
        let e = rootfs(&s(b.path()), "escape").unwrap_err();
        assert_eq!(e.kind, protocol::ErrorKind::InvalidArgument);
        let real = std::fs::canonicalize(outside.path()).unwrap();
        assert!(
            e.message.contains("outside the bundle") && e.message.contains(&s(&real)),
            "{e}"
        );
        let e = rootfs(&s(b.path()), "../").unwrap_err();
        assert!(e.message.contains("outside the bundle"), "{e}");
    }

    #[test]
    fn an_absolute_rootfs_may_be_anywhere() {
        let b = bundle();
        let elsewhere = tempfile::tempdir().unwrap();
        let real = rootfs(&s(b.path()), &s(elsewhere.path())).unwrap();
        assert_eq!(real, std::fs::canonicalize(elsewhere.path()).unwrap());
    }

    #[test]
    fn missing_or_not_a_directory_is_a_clear_error() {
        let b = bundle();
        let e = rootfs(&s(b.path()), "nope").unwrap_err();
        assert_eq!(e.kind, protocol::ErrorKind::NotFound);
        assert!(
            e.message.contains("does not exist") && e.message.contains("nope"),
            "{e}"
        );
        symlink("/nonexistent-target", b.path().join("dangling")).unwrap();
        let e = rootfs(&s(b.path()), "dangling").unwrap_err();
        assert!(e.message.contains("symlink to /nonexistent-target"), "{e}");
        std::fs::write(b.path().join("file"), "x").unwrap();
        let e = rootfs(&s(b.path()), "file").unwrap_err();
        assert!(e.message.contains("not a directory"), "{e}");
    }

    #[test]
    fn bad_bundles_are_refused() {
        for (bundle, what) in [
            ("", "empty"),
            ("relative/b", "must be absolute"),
            ("/nonexistent-bundle-xyz", "does not exist"),
            ("/proc/version", "not a directory"),
            ("/tmp/\0x", "NUL"),
        ] {
            let e = rootfs(bundle, "rootfs").unwrap_err();
            assert!(e.message.contains(what), "{bundle:?}: {e}");
        }
        let b = bundle();
        let e = rootfs(&s(b.path()), "").unwrap_err();
        assert!(e.message.contains("root.path is empty"), "{e}");
    }
}
