//! OCI runtime-spec config.json: loading a bundle's config with errors that
//! name the JSON path and the reason (`process.cwd: must be an absolute
//! path`), the default config `ipc spec` writes (runc's), and the Features
//! structure `ipc features` prints.
//!
//! Loading goes: file -> JSON (line and column on a syntax error) -> a walk
//! over the runtime-spec schemas (`tables.rs`; wrong types and unknown enum
//! values, with their path) -> oci-spec's `Spec` -> `validate` (the MUST
//! rules a runtime checks). Valid values this runtime does not implement are
//! not errors here: the lifecycle refuses them as "unsupported", and
//! `features()` lists what is implemented.
//!
//! Platform sections for other systems (`freebsd`, `zos`, `solaris`,
//! `windows`, `vm`) are type-checked like the rest and otherwise ignored,
//! as runc ignores them; a config written for another platform then passes
//! or fails on the Linux rules alone (a hostname without a uts namespace,
//! for example, is refused).

pub(crate) mod caps;
mod default;
mod error;
mod features;
mod parse;
mod schema;
mod syntax;
mod tables;
mod validate;

use std::path::Path;

use oci_spec::runtime::{Process, Spec};

pub use default::{default_spec, default_spec_json};
pub use error::ConfigError;
pub use features::{features, features_json, HOOKS, MOUNT_OPTIONS, NAMESPACES};
pub use parse::{from_checked_text, from_value, load_process, read, read_bytes, CONFIG_FILE};
pub use validate::{rootfs_path, validate, OCI_VERSION_MAX, OCI_VERSION_MIN};

/// Reads, parses and validates `<bundle>/config.json` for `create`/`run`.
///
/// On top of `validate`, the config must have a `process`: runtime.md makes
/// it REQUIRED for `start`, and runc refuses a config without one at create
/// time (before touching anything), so this does too. Use `read` +
/// `validate` to judge a config that is not about to be run.
pub fn load(bundle: &Path) -> Result<Spec, ConfigError> {
    load_bytes(bundle, &read_bytes(bundle)?)
}

/// As `load`, on the config's bytes as `read_bytes` returned them.
pub fn load_bytes(bundle: &Path, bytes: &[u8]) -> Result<Spec, ConfigError> {
    let spec = parse::parse_bytes(bundle, bytes)?;
    if spec.process().is_none() {
        return Err(ConfigError::new(
            "process",
            "is required to create a container (start runs it), and this config has none",
        ));
    }
    validate(&spec, bundle)?;
    Ok(spec)
}

/// The process rules alone (cwd, args, env, capabilities, rlimits, ...), for
/// a process built from `ipc exec` arguments; paths start at `process`.
pub fn validate_process(process: &Process) -> Result<(), ConfigError> {
    validate::process(process, "process")
}
