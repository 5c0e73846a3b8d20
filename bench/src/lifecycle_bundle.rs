//! The bundles the lifecycle benchmark runs. One busybox rootfs (Debian's
//! busybox-static), shared read-only by every container through an
//! absolute root.path, and one bundle directory per container holding only
//! its config.json: the config `runc spec` writes, with terminal false,
//! args ["true"] and a relative cgroupsPath `<prefix>/<runtime>-<id>`.
//!
//! Writing a bundle is never inside a timed region: the callers make it
//! before they start the clock.

use anyhow::{bail, Context, Result};
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::process::Command;

const BUSYBOX: &str = "/bin/busybox";

/// What the rootfs needs for /bin/true, plus a shell for a person poking at it.
/// (and `sleep` for the containers kept running in section 5).
const APPLETS: &[&str] = &["true", "sh", "sleep"];

pub struct Bundles {
    dir: PathBuf,
    rootfs: PathBuf,
    config: Value,
    cgroup_prefix: String,
}

impl Bundles {
    /// The rootfs and the base config, under `dir`.
    pub fn create(dir: &Path, cgroup_prefix: &str) -> Result<Bundles> {
        let rootfs = dir.join("rootfs");
        make_rootfs(&rootfs)?;
        let config = base_config(dir, &rootfs)?;
        Ok(Bundles {
            dir: dir.join("bundles"),
            rootfs,
            config,
            cgroup_prefix: cgroup_prefix.to_string(),
        })
    }

    pub fn rootfs(&self) -> &Path {
        &self.rootfs
    }

    /// Writes `<dir>/bundles/<runtime>-<id>/config.json`; returns the bundle.
    pub fn make(&self, runtime: &str, id: &str) -> Result<PathBuf> {
        self.make_running(runtime, id, &["true"])
    }

    /// The same, with the container's process running `args`.
    pub fn make_running(&self, runtime: &str, id: &str, args: &[&str]) -> Result<PathBuf> {
        let name = format!("{runtime}-{id}");
        let bundle = self.dir.join(&name);
        std::fs::create_dir_all(&bundle)
            .with_context(|| format!("create bundle {}", bundle.display()))?;
        let mut config = self.config.clone();
        config["linux"]["cgroupsPath"] = json!(format!("{}/{name}", self.cgroup_prefix));
        config["process"]["args"] = json!(args);
        std::fs::write(
            bundle.join("config.json"),
            serde_json::to_vec_pretty(&config)?,
        )
        .with_context(|| format!("write {}/config.json", bundle.display()))?;
        Ok(bundle)
    }

    /// The namespace types of the config, e.g. "pid network ipc uts mount".
    pub fn namespaces(&self) -> String {
        self.config["linux"]["namespaces"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|n| n["type"].as_str())
            .collect::<Vec<_>>()
            .join(" ")
    }
}

fn make_rootfs(rootfs: &Path) -> Result<()> {
    if !Path::new(BUSYBOX).is_file() {
        bail!("{BUSYBOX} is missing: apt-get install busybox-static (bench/run does)");
    }
    for d in ["bin", "etc", "proc", "sys", "dev", "tmp", "root"] {
        std::fs::create_dir_all(rootfs.join(d))
            .with_context(|| format!("create {}/{d}", rootfs.display()))?;
    }
    std::fs::copy(BUSYBOX, rootfs.join("bin/busybox")).context("copy busybox into the rootfs")?;
    for applet in APPLETS {
        std::os::unix::fs::symlink("busybox", rootfs.join("bin").join(applet))
            .with_context(|| format!("link /bin/{applet}"))?;
    }
    std::fs::write(rootfs.join("etc/passwd"), "root:x:0:0:root:/root:/bin/sh\n")?;
    std::fs::write(rootfs.join("etc/group"), "root:x:0:\n")?;
    Ok(())
}

/// `runc spec`'s config.json (runc is the reference the issue names),
/// with the benchmark's changes.
fn base_config(dir: &Path, rootfs: &Path) -> Result<Value> {
    let spec_dir = dir.join("runc-spec");
    std::fs::create_dir_all(&spec_dir)?;
    let out = Command::new("runc")
        .args(["spec", "--bundle"])
        .arg(&spec_dir)
        .output()
        .context("run `runc spec` (is runc installed? bench/run installs it)")?;
    if !out.status.success() {
        bail!(
            "`runc spec --bundle {}` failed: {}",
            spec_dir.display(),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    let text = std::fs::read(spec_dir.join("config.json")).context("read runc spec's config")?;
    let mut config: Value = serde_json::from_slice(&text).context("runc spec's config.json")?;
    config["process"]["terminal"] = json!(false);
    config["process"]["args"] = json!(["true"]);
    config["root"]["path"] = json!(rootfs);
    check_namespaces(&config)?;
    Ok(config)
}

/// The issue asks for these five; runc spec's default has exactly them.
fn check_namespaces(config: &Value) -> Result<()> {
    let have: Vec<&str> = config["linux"]["namespaces"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|n| n["type"].as_str())
        .collect();
    for want in ["pid", "network", "ipc", "uts", "mount"] {
        if !have.contains(&want) {
            bail!("runc spec's config lacks the {want} namespace (has {have:?})");
        }
    }
    Ok(())
}
