//! The per-constellation parent cgroup.
//!
//! Groups live under the cgroup of the process that started init, in one
//! directory per constellation root (`asterism-<hash of root>`), so two
//! constellations on one host never meet and tests stay inside their own
//! cgroup. The chosen directory is written to `<state dir>/cgroup-base.json`
//! on first start and read back on every restart, so a server restarted from
//! elsewhere still finds its groups.

use crate::hierarchy::{own_cgroup, Hierarchies, Hierarchy};
use crate::CgroupDir;
use protocol::Error;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Base {
    /// controller -> (its hierarchy, the base directory on the host)
    pub controllers: BTreeMap<String, (Hierarchy, PathBuf)>,
}

impl Base {
    /// Name of the per-root directory: stable for one root path.
    pub fn dir_name(root: &Path) -> String {
        // FNV-1a: stable across Rust versions, unlike DefaultHasher.
        let mut h: u64 = 0xcbf29ce484222325;
        for b in root.as_os_str().as_encoded_bytes() {
            h ^= *b as u64;
            h = h.wrapping_mul(0x100000001b3);
        }
        format!("asterism-{:08x}", h as u32)
    }

    /// Loads `<state_dir>/cgroup-base.json`, or computes the base for
    /// `controllers` from this process's own cgroups and saves it.
    pub fn load_or_init(
        state_dir: &Path,
        root: &Path,
        hier: &Hierarchies,
        controllers: &[&str],
    ) -> Result<Base, Error> {
        let file = state_dir.join("cgroup-base.json");
        if let Ok(text) = std::fs::read_to_string(&file) {
            let base: Base = serde_json::from_str(&text).map_err(|e| {
                Error::internal(format!(
                    "{} is corrupt ({e}); remove it to start over",
                    file.display()
                ))
            })?;
            if controllers
                .iter()
                .all(|c| base.controllers.contains_key(*c))
            {
                return Ok(base);
            }
        }
        let mut map = BTreeMap::new();
        for c in controllers {
            let h = hier.get(c)?.clone();
            let own = own_cgroup(&h)?;
            let dir = h.host_path(&own).join(Self::dir_name(root));
            map.insert(c.to_string(), (h, dir));
        }
        let base = Base { controllers: map };
        std::fs::create_dir_all(state_dir)
            .map_err(|e| Error::io(format!("create {}", state_dir.display()), &e))?;
        let text = serde_json::to_string_pretty(&base).expect("base serializes");
        let tmp = file.with_extension("json.tmp");
        std::fs::write(&tmp, text)
            .map_err(|e| Error::io(format!("write {}", tmp.display()), &e))?;
        std::fs::rename(&tmp, &file)
            .map_err(|e| Error::io(format!("rename {} into place", tmp.display()), &e))?;
        Ok(base)
    }

    /// A base for tests: every controller under one fake mount.
    pub fn fixed(entries: Vec<(Hierarchy, PathBuf)>) -> Base {
        Base {
            controllers: entries
                .into_iter()
                .map(|(h, p)| (h.controller.clone(), (h, p)))
                .collect(),
        }
    }

    pub fn hierarchy(&self, controller: &str) -> Result<&Hierarchy, Error> {
        self.controllers
            .get(controller)
            .map(|(h, _)| h)
            .ok_or_else(|| Error::internal(format!("no base cgroup for controller {controller}")))
    }

    /// The base directory for a controller.
    pub fn dir(&self, controller: &str) -> Result<CgroupDir, Error> {
        self.controllers
            .get(controller)
            .map(|(_, p)| CgroupDir::new(p.clone()))
            .ok_or_else(|| Error::internal(format!("no base cgroup for controller {controller}")))
    }
}
