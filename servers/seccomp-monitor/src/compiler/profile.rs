//! Reads the config's `linux.seccomp` object into checked rules. Parsing
//! walks serde_json values by hand so that every error names the exact
//! field (`linux.seccomp.syscalls[3].args[0].op`).

use super::action::Action;
use protocol::Error;
use serde_json::{Map, Value};

const ROOT: &str = "linux.seccomp";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CmpOp {
    Ne,
    Lt,
    Le,
    Eq,
    Ge,
    Gt,
    MaskedEq,
}

impl CmpOp {
    fn parse(s: &str) -> Option<CmpOp> {
        Some(match s {
            "SCMP_CMP_NE" => CmpOp::Ne,
            "SCMP_CMP_LT" => CmpOp::Lt,
            "SCMP_CMP_LE" => CmpOp::Le,
            "SCMP_CMP_EQ" => CmpOp::Eq,
            "SCMP_CMP_GE" => CmpOp::Ge,
            "SCMP_CMP_GT" => CmpOp::Gt,
            "SCMP_CMP_MASKED_EQ" => CmpOp::MaskedEq,
            _ => return None,
        })
    }
}

/// One argument comparison. For MASKED_EQ, `value` is the mask and
/// `value_two` the expected value, as runc passes them to libseccomp.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ArgCmp {
    pub index: u8,
    pub op: CmpOp,
    pub value: u64,
    pub value_two: u64,
}

#[derive(Debug, Clone)]
pub struct Rule {
    /// Position in `syscalls`, for messages.
    pub position: usize,
    pub names: Vec<String>,
    pub action: Action,
    /// ANDed.
    pub args: Vec<ArgCmp>,
}

#[derive(Debug, Clone)]
pub struct Profile {
    pub default_action: Action,
    pub architectures: Vec<String>,
    pub flags: Vec<String>,
    pub rules: Vec<Rule>,
}

pub fn parse(profile_json: &str) -> Result<Profile, Error> {
    let value: Value = serde_json::from_str(profile_json)
        .map_err(|e| Error::invalid(format!("{ROOT}: not valid JSON: {e}")))?;
    let obj = value
        .as_object()
        .ok_or_else(|| Error::invalid(format!("{ROOT}: must be a JSON object")))?;
    let default_errno = opt_errno(obj, "defaultErrnoRet", ROOT)?;
    let default_name = req_str(obj, "defaultAction", ROOT)?;
    let default_action = Action::parse(default_name, default_errno)
        .map_err(|m| Error::invalid(format!("{ROOT}.defaultAction: {m}")))?;
    if default_action == Action::Notify {
        // As runc: the agent would be asked about every syscall, the
        // runtime's own between the filter and exec included.
        return Err(Error::invalid(format!(
            "{ROOT}.defaultAction: SCMP_ACT_NOTIFY cannot be the default action"
        )));
    }
    Ok(Profile {
        default_action,
        architectures: str_list(obj, "architectures", ROOT)?,
        flags: str_list(obj, "flags", ROOT)?,
        rules: parse_rules(obj)?,
    })
}

fn parse_rules(obj: &Map<String, Value>) -> Result<Vec<Rule>, Error> {
    let Some(list) = opt_array(obj, "syscalls", ROOT)? else {
        return Ok(Vec::new());
    };
    list.iter()
        .enumerate()
        .map(|(i, v)| parse_rule(i, v))
        .collect()
}

fn parse_rule(position: usize, v: &Value) -> Result<Rule, Error> {
    let path = format!("{ROOT}.syscalls[{position}]");
    let obj = v
        .as_object()
        .ok_or_else(|| Error::invalid(format!("{path}: must be an object")))?;
    let names = str_list(obj, "names", &path)?;
    if names.is_empty() {
        return Err(Error::invalid(format!(
            "{path}.names: must list at least one syscall"
        )));
    }
    if let Some(i) = names.iter().position(|n| n.is_empty()) {
        return Err(Error::invalid(format!("{path}.names[{i}]: empty name")));
    }
    let errno = opt_errno(obj, "errnoRet", &path)?;
    let action = Action::parse(req_str(obj, "action", &path)?, errno)
        .map_err(|m| Error::invalid(format!("{path}.action: {m}")))?;
    let args = match opt_array(obj, "args", &path)? {
        None => Vec::new(),
        Some(list) => list
            .iter()
            .enumerate()
            .map(|(j, a)| parse_arg(&format!("{path}.args[{j}]"), a))
            .collect::<Result<_, _>>()?,
    };
    Ok(Rule {
        position,
        names,
        action,
        args,
    })
}

fn parse_arg(path: &str, v: &Value) -> Result<ArgCmp, Error> {
    let obj = v
        .as_object()
        .ok_or_else(|| Error::invalid(format!("{path}: must be an object")))?;
    let index = req_u64(obj, "index", path)?;
    if index > 5 {
        return Err(Error::invalid(format!(
            "{path}.index: {index} is out of range: a syscall has arguments 0 to 5"
        )));
    }
    let value = req_u64(obj, "value", path)?;
    let value_two = opt_u64(obj, "valueTwo", path)?.unwrap_or(0);
    let op_name = req_str(obj, "op", path)?;
    let op = CmpOp::parse(op_name)
        .ok_or_else(|| Error::invalid(format!("{path}.op: unknown operator {op_name:?}")))?;
    Ok(ArgCmp {
        index: index as u8,
        op,
        value,
        value_two,
    })
}

fn req_str<'a>(obj: &'a Map<String, Value>, key: &str, path: &str) -> Result<&'a str, Error> {
    match obj.get(key) {
        Some(Value::String(s)) => Ok(s),
        Some(_) => Err(Error::invalid(format!("{path}.{key}: must be a string"))),
        None => Err(Error::invalid(format!("{path}.{key}: required"))),
    }
}

fn opt_u64(obj: &Map<String, Value>, key: &str, path: &str) -> Result<Option<u64>, Error> {
    match obj.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(v) => v.as_u64().map(Some).ok_or_else(|| {
            Error::invalid(format!(
                "{path}.{key}: must be an unsigned 64-bit integer, not {v}"
            ))
        }),
    }
}

fn req_u64(obj: &Map<String, Value>, key: &str, path: &str) -> Result<u64, Error> {
    opt_u64(obj, key, path)?.ok_or_else(|| Error::invalid(format!("{path}.{key}: required")))
}

/// errnoRet and defaultErrnoRet: the kernel keeps 16 bits of data.
fn opt_errno(obj: &Map<String, Value>, key: &str, path: &str) -> Result<Option<u16>, Error> {
    match opt_u64(obj, key, path)? {
        None => Ok(None),
        Some(n) => u16::try_from(n).map(Some).map_err(|_| {
            Error::invalid(format!(
                "{path}.{key}: {n} does not fit the 16 bits seccomp returns"
            ))
        }),
    }
}

fn opt_array<'a>(
    obj: &'a Map<String, Value>,
    key: &str,
    path: &str,
) -> Result<Option<&'a Vec<Value>>, Error> {
    match obj.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Array(a)) => Ok(Some(a)),
        Some(_) => Err(Error::invalid(format!("{path}.{key}: must be an array"))),
    }
}

fn str_list(obj: &Map<String, Value>, key: &str, path: &str) -> Result<Vec<String>, Error> {
    let Some(list) = opt_array(obj, key, path)? else {
        return Ok(Vec::new());
    };
    list.iter()
        .enumerate()
        .map(|(i, v)| {
            v.as_str()
                .map(str::to_owned)
                .ok_or_else(|| Error::invalid(format!("{path}.{key}[{i}]: must be a string")))
        })
        .collect()
}
