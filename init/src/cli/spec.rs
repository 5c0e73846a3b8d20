//! `ipc spec [--bundle DIR] [--rootless]` and `ipc features`, as runc's:
//! the same file, the same refusal to overwrite, the same JSON.

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use anyhow::anyhow;

use crate::config;

/// Writes the default config.json into `bundle` (runc's: mode 0666 before
/// the umask, no trailing newline). An existing config.json is never
/// touched: runc's message, and nothing written.
pub fn run_spec(bundle: &Path, rootless: bool) -> anyhow::Result<()> {
    // runc chdirs into the bundle first; its errors read the same way.
    match std::fs::metadata(bundle) {
        Ok(m) if m.is_dir() => {}
        Ok(_) => return Err(anyhow!("chdir {}: not a directory", bundle.display())),
        Err(e) => return Err(anyhow!("chdir {}: {}", bundle.display(), go_error(&e))),
    }
    let file = bundle.join(config::CONFIG_FILE);
    // create_new (O_EXCL) instead of runc's stat-then-write: no window in
    // which a config.json appearing meanwhile would be overwritten.
    let mut out = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o666)
        .open(&file)
        .map_err(|e| match e.kind() {
            std::io::ErrorKind::AlreadyExists => {
                anyhow!("File {} exists. Remove it first", config::CONFIG_FILE)
            }
            _ => anyhow!("open {}: {}", file.display(), go_error(&e)),
        })?;
    let text = spec_with_default_seccomp(rootless);
    if let Err(e) = out.write_all(text.as_bytes()).and_then(|_| out.sync_all()) {
        // Leave nothing half-written behind.
        let _ = std::fs::remove_file(&file);
        return Err(anyhow!("write {}: {}", file.display(), go_error(&e)));
    }
    Ok(())
}

/// runc's default config plus a seccomp profile equivalent to moby's
/// default (seccomp-monitor's), in runc's layout (tab indentation, runc's key
/// order): a container from `ipc spec` is filtered as a docker one is.
pub fn spec_with_default_seccomp(rootless: bool) -> String {
    use serde::Serialize;
    let mut v: serde_json::Value = serde_json::from_str(&config::default_spec_json(rootless))
        .expect("the default config is JSON");
    let profile: serde_json::Value =
        serde_json::from_str(seccomp_monitor::compiler::moby_default_profile_json())
            .expect("the default seccomp profile is JSON");
    v["linux"]["seccomp"] = profile;
    let mut out = Vec::new();
    let fmt = serde_json::ser::PrettyFormatter::with_indent(b"\t");
    let mut ser = serde_json::Serializer::with_formatter(&mut out, fmt);
    v.serialize(&mut ser)
        .expect("serializing into memory cannot fail");
    String::from_utf8(out).expect("serde_json writes UTF-8")
}

/// Prints the runtime-spec Features structure (what this runtime implements).
pub fn run_features() -> anyhow::Result<()> {
    let mut stdout = std::io::stdout().lock();
    writeln!(stdout, "{}", config::features_json())?;
    Ok(())
}

/// An OS error as Go prints it ("no such file or directory"), so that the
/// messages read like runc's.
fn go_error(e: &std::io::Error) -> String {
    match e.raw_os_error() {
        Some(code) => {
            let desc = nix::errno::Errno::from_raw(code).desc();
            let mut chars = desc.chars();
            match chars.next() {
                Some(first) => first.to_lowercase().chain(chars).collect(),
                None => e.to_string(),
            }
        }
        None => e.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Everything but linux.seccomp is runc's default config, and the
    /// profile is seccomp-monitor's default.
    fn assert_without_seccomp_is_runcs(text: &str, rootless: bool) {
        let mut ours: serde_json::Value = serde_json::from_str(text).unwrap();
        let profile = ours["linux"]
            .as_object_mut()
            .unwrap()
            .remove("seccomp")
            .expect("a seccomp profile");
        let runc: serde_json::Value =
            serde_json::from_str(&config::default_spec_json(rootless)).unwrap();
        assert_eq!(ours, runc);
        assert_eq!(profile["defaultAction"], "SCMP_ACT_ERRNO");
        assert!(profile["syscalls"].as_array().unwrap().len() > 10);
    }
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn writes_runc_default_then_refuses_to_overwrite() {
        let dir = tempfile::tempdir().unwrap();
        run_spec(dir.path(), false).unwrap();
        let file = dir.path().join("config.json");
        let text = std::fs::read_to_string(&file).unwrap();
        assert_eq!(text, spec_with_default_seccomp(false));
        assert_without_seccomp_is_runcs(&text, false);
        let mode = std::fs::metadata(&file).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode & 0o600, 0o600, "owner can read and write");

        std::fs::write(&file, "mine").unwrap();
        let e = run_spec(dir.path(), true).unwrap_err();
        assert_eq!(e.to_string(), "File config.json exists. Remove it first");
        assert_eq!(
            std::fs::read_to_string(&file).unwrap(),
            "mine",
            "left as it was"
        );
    }

    #[test]
    fn rootless_variant() {
        let dir = tempfile::tempdir().unwrap();
        run_spec(dir.path(), true).unwrap();
        let text = std::fs::read_to_string(dir.path().join("config.json")).unwrap();
        assert_eq!(text, spec_with_default_seccomp(true));
        assert_without_seccomp_is_runcs(&text, true);
        assert!(text.contains("\"uidMappings\""));
    }

    #[test]
    fn missing_bundle_is_named_as_runc_does() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("nope");
        let e = run_spec(&missing, false).unwrap_err();
        assert_eq!(
            e.to_string(),
            format!("chdir {}: no such file or directory", missing.display())
        );
        assert!(!missing.exists(), "nothing created");
        let file = dir.path().join("f");
        std::fs::write(&file, "").unwrap();
        let e = run_spec(&file, false).unwrap_err();
        assert_eq!(
            e.to_string(),
            format!("chdir {}: not a directory", file.display())
        );
    }
}
