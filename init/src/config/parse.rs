//! Reading config.json: the file, the JSON, the schema walk (path-precise
//! errors), the few rules that need the raw JSON, and oci-spec's parse.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use oci_spec::runtime::{Hooks, Linux, Mount, Process, Root, Solaris, Spec, Windows, VM, ZOS};
use serde::Deserialize;
use serde_json::{Map, Value};

use super::error::{field, index, ConfigError};
use super::schema::{self, describe};
use super::tables;

/// The file a bundle's config lives in.
pub const CONFIG_FILE: &str = "config.json";

/// Reads and parses `<bundle>/config.json` (no semantic validation: see
/// `load` for that).
pub fn read(bundle: &Path) -> Result<Spec, ConfigError> {
    parse_bytes(bundle, &read_bytes(bundle)?)
}

/// `<bundle>/config.json` as it is on disk (errors as `read`'s).
pub fn read_bytes(bundle: &Path) -> Result<Vec<u8>, ConfigError> {
    read_file(&bundle_file(bundle)?)
}

/// As `read`, on the bytes `read_bytes` returned: `create` sends init the
/// very text it checks here.
pub fn parse_bytes(bundle: &Path, bytes: &[u8]) -> Result<Spec, ConfigError> {
    let file = bundle.join(CONFIG_FILE);
    let here = file.display().to_string();
    let v = serde_json::from_slice(bytes).map_err(|e| ConfigError::new(&here, json_error(&e)))?;
    from_value(v).map_err(|e| match e.path.is_empty() {
        // A problem with the document as a whole: name the file.
        true => ConfigError::new(here, e.reason),
        false => e,
    })
}

/// A config `ipc` has read with `read` (and validated) already, as init
/// gets it: the file's own text. The same bridging to oci-spec as
/// `from_value`, without the schema walk, which only refuses.
pub fn from_checked_text(text: &str) -> Result<Spec, String> {
    let v: Value = serde_json::from_str(text).map_err(|e| e.to_string())?;
    Spec::deserialize(&bridged(v)).map_err(|e| e.to_string())
}

fn bundle_file(bundle: &Path) -> Result<PathBuf, ConfigError> {
    let here = bundle.display().to_string();
    match std::fs::metadata(bundle) {
        Ok(m) if m.is_dir() => Ok(bundle.join(CONFIG_FILE)),
        Ok(_) => Err(ConfigError::new(here, "the bundle is not a directory")),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Err(ConfigError::new(
            here,
            "the bundle directory does not exist",
        )),
        Err(e) => Err(ConfigError::new(here, format!("the bundle: {e}"))),
    }
}

/// A JSON file; errors name the file (and line and column for bad JSON).
pub(crate) fn read_json(file: &Path) -> Result<Value, ConfigError> {
    let bytes = read_file(file)?;
    serde_json::from_slice(&bytes)
        .map_err(|e| ConfigError::new(file.display().to_string(), json_error(&e)))
}

fn read_file(file: &Path) -> Result<Vec<u8>, ConfigError> {
    let here = file.display().to_string();
    std::fs::read(file).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound if file.ends_with(CONFIG_FILE) => ConfigError::new(
            &here,
            "does not exist (a bundle needs one; `ipc spec` writes a default)",
        ),
        std::io::ErrorKind::NotFound => ConfigError::new(&here, "does not exist"),
        _ => ConfigError::new(&here, e.to_string()),
    })
}

/// "invalid JSON at line L, column C: what" (serde_json puts the place last).
fn json_error(e: &serde_json::Error) -> String {
    let text = e.to_string();
    let what = text
        .rsplit_once(" at line ")
        .map_or(text.as_str(), |(w, _)| w);
    format!(
        "invalid JSON at line {}, column {}: {what}",
        e.line(),
        e.column()
    )
}

/// Parses a config already read as JSON: schema walk, raw rules, oci-spec.
pub fn from_value(v: Value) -> Result<Spec, ConfigError> {
    if !v.is_object() {
        return Err(ConfigError::new(
            "",
            format!("the config must be a JSON object, got {}", describe(&v)),
        ));
    }
    schema::check(&v, &tables::CONFIG, "")?;
    device_numbers(&v)?;
    let v = bridged(v);
    Spec::deserialize(&v).map_err(|e| localize(&v, e))
}

/// What oci-spec 0.10 needs done to valid JSON before it deserializes it.
fn bridged(mut v: Value) -> Value {
    schema::strip_nulls(&mut v);
    if let Some(top) = v.as_object_mut() {
        // Not spec properties (so to be ignored), but oci-spec 0.10 still
        // parses these two at the top level and would choke on odd values.
        top.remove("uidMappings");
        top.remove("gidMappings");
    }
    if let Some(p) = v.get_mut("process").and_then(Value::as_object_mut) {
        normalize_process(p);
    }
    v
}

/// `linux.devices[].major`/`minor` are REQUIRED unless the type is `p`; once
/// parsed, an absent number is indistinguishable from 0, so this is checked
/// on the JSON.
fn device_numbers(v: &Value) -> Result<(), ConfigError> {
    let list = v.pointer("/linux/devices").and_then(Value::as_array);
    for (i, d) in list.into_iter().flatten().enumerate() {
        let kind = d.get("type").and_then(Value::as_str).unwrap_or("");
        if kind == "p" {
            continue;
        }
        for n in ["major", "minor"] {
            if matches!(d.get(n), None | Some(Value::Null)) {
                return Err(ConfigError::new(
                    field(&index("linux.devices", i), n),
                    format!("is required for a device of type {kind:?} (only \"p\" goes without)"),
                ));
            }
        }
    }
    Ok(())
}

/// Bridges between valid JSON and what oci-spec 0.10 deserializes:
/// - `user` may be absent (uid 0, gid 0, as runc reads it); oci-spec
///   requires the object;
/// - `execCPUAffinity` may hold spaces or be empty ("do not change"), which
///   oci-spec's pattern refuses;
/// - oci-spec misspells two scheduler flags (`OCI_SPEC_SCHED_FLAGS`).
fn normalize_process(p: &mut Map<String, Value>) {
    p.entry("user").or_insert_with(|| Value::Object(Map::new()));
    if let Some(aff) = p.get_mut("execCPUAffinity").and_then(Value::as_object_mut) {
        for k in ["initial", "final"] {
            let Some(s) = aff.get(k).and_then(Value::as_str) else {
                continue;
            };
            let compact: String = s.chars().filter(|c| *c != ' ').collect();
            if compact.is_empty() {
                aff.remove(k);
            } else {
                aff.insert(k.into(), Value::String(compact));
            }
        }
    }
    let flags = p.get_mut("scheduler").and_then(|s| s.get_mut("flags"));
    for f in flags.and_then(Value::as_array_mut).into_iter().flatten() {
        if let Some((_, theirs)) = OCI_SPEC_SCHED_FLAGS.iter().find(|(spec, _)| f == spec) {
            *f = Value::String((*theirs).into());
        }
    }
}

/// Scheduler flags oci-spec 0.10 spells differently from the spec
/// (its serde renames of SchedResetOnFork and SchedFlagDLOverrun).
const OCI_SPEC_SCHED_FLAGS: &[(&str, &str)] = &[
    ("SCHED_FLAG_RESET_ON_FORK", "SCHED_RESET_ON_FORK"),
    ("SCHED_FLAG_DL_OVERRUN", "SCHED_FLAG_D_L_OVERRUN"),
];

/// Which top-level section oci-spec refused (the schema walk catches the
/// sections it knows; this is for solaris/windows/vm and any gap).
fn localize(v: &Value, e: serde_json::Error) -> ConfigError {
    fn fails<'a, T: Deserialize<'a>>(x: &'a Value) -> Option<String> {
        T::deserialize(x).err().map(|e| e.to_string())
    }
    for (name, x) in v.as_object().into_iter().flatten() {
        let why = match name.as_str() {
            "process" => fails::<Process>(x),
            "root" => fails::<Root>(x),
            "mounts" => fails::<Vec<Mount>>(x),
            "hooks" => fails::<Hooks>(x),
            "annotations" => fails::<HashMap<String, String>>(x),
            "linux" => fails::<Linux>(x),
            "solaris" => fails::<Solaris>(x),
            "windows" => fails::<Windows>(x),
            "vm" => fails::<VM>(x),
            "zos" => fails::<ZOS>(x),
            _ => None,
        };
        if let Some(why) = why {
            return ConfigError::new(name.as_str(), why);
        }
    }
    ConfigError::new("", e.to_string())
}

/// An `ipc exec --process FILE` document: a `process` object on its own.
/// Error paths are relative to it (`cwd`, `args`).
pub fn load_process(file: &Path) -> Result<Process, ConfigError> {
    let mut v = read_json(file)?;
    schema::check(&v, &tables::PROCESS, "")?;
    schema::strip_nulls(&mut v);
    if let Some(p) = v.as_object_mut() {
        normalize_process(p);
    }
    let p = Process::deserialize(&v).map_err(|e| ConfigError::new("", e.to_string()))?;
    super::validate::process(&p, "")?;
    Ok(p)
}
