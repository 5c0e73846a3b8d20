//! The one error type of the config module, and the JSON paths it names.

use std::fmt;

/// Why a config (or a bundle) cannot be used, and where: `path` is the JSON
/// path inside config.json (`process.cwd`, `linux.namespaces[1]`,
/// `linux.sysctl["net.ipv4.ip_forward"]`), or the file itself when the
/// problem is the file (missing, unreadable, not JSON).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    pub path: String,
    pub reason: String,
}

impl ConfigError {
    pub fn new(path: impl Into<String>, reason: impl Into<String>) -> Self {
        ConfigError {
            path: path.into(),
            reason: reason.into(),
        }
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.path.is_empty() {
            write!(f, "{}", self.reason)
        } else {
            write!(f, "{}: {}", self.path, self.reason)
        }
    }
}

impl std::error::Error for ConfigError {}

/// `parent.name` (or `name` at the top).
pub(crate) fn field(parent: &str, name: &str) -> String {
    if parent.is_empty() {
        name.to_string()
    } else {
        format!("{parent}.{name}")
    }
}

/// `parent[i]`.
pub(crate) fn index(parent: &str, i: usize) -> String {
    format!("{parent}[{i}]")
}

/// A map key: `parent.key` when the key is a plain identifier, otherwise
/// `parent["key"]` so that keys with dots (sysctl names) stay one step.
pub(crate) fn key(parent: &str, k: &str) -> String {
    let plain = !k.is_empty() && k.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_');
    if plain {
        field(parent, k)
    } else {
        let quoted = serde_json::to_string(k).unwrap_or_else(|_| format!("{k:?}"));
        format!("{parent}[{quoted}]")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_names_path_and_reason() {
        let e = ConfigError::new("process.cwd", "must be an absolute path");
        assert_eq!(e.to_string(), "process.cwd: must be an absolute path");
        assert_eq!(ConfigError::new("", "bad").to_string(), "bad");
    }

    #[test]
    fn paths() {
        assert_eq!(field("", "linux"), "linux");
        assert_eq!(field("linux", "namespaces"), "linux.namespaces");
        assert_eq!(index("linux.namespaces", 2), "linux.namespaces[2]");
        assert_eq!(
            key("linux.resources.rdma", "mlx5_1"),
            "linux.resources.rdma.mlx5_1"
        );
        assert_eq!(
            key("linux.sysctl", "net.ipv4.ip_forward"),
            "linux.sysctl[\"net.ipv4.ip_forward\"]"
        );
        assert_eq!(key("annotations", ""), "annotations[\"\"]");
    }
}
