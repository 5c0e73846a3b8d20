//! A small schema checker run over the raw JSON before oci-spec sees it.
//!
//! serde's errors do not say where in the document a wrong type or an unknown
//! enum value is, so the config is first walked against tables that mirror
//! the runtime-spec JSON schemas (schema/*.json; see `tables.rs`): each
//! mistake is reported with its JSON path. Unknown properties are ignored, as
//! config.md's "Extensibility" requires. A `null` member counts as absent,
//! as Go's encoding/json (and so runc) reads it.

use serde_json::Value;

use super::error::{field, index, key, ConfigError};

/// The type of one JSON value.
pub(crate) enum Ty {
    Bool,
    Str,
    /// A string with a syntax rule; the fn says what is wrong.
    Syntax(fn(&str) -> Result<(), String>),
    /// An integer in `min..=max`; `name` is the spec's type (`uint32`).
    Int(i128, i128, &'static str),
    /// One of `values`; `what` names the kind of value in errors.
    Enum(&'static str, &'static [&'static str]),
    Array(&'static Ty),
    /// An array with at least one entry.
    NonEmptyArray(&'static Ty),
    /// An object with free (non-empty) keys and values of one type.
    Map(&'static Ty),
    Object(&'static [Field]),
}

/// One property of an object.
pub(crate) struct Field {
    pub name: &'static str,
    pub ty: &'static Ty,
    pub required: bool,
}

pub(crate) const fn opt(name: &'static str, ty: &'static Ty) -> Field {
    Field {
        name,
        ty,
        required: false,
    }
}

pub(crate) const fn req(name: &'static str, ty: &'static Ty) -> Field {
    Field {
        name,
        ty,
        required: true,
    }
}

/// Checks `v` against `ty`; the first mistake found, with its path.
pub(crate) fn check(v: &Value, ty: &Ty, path: &str) -> Result<(), ConfigError> {
    walk(v, ty, &At::Root(path))
}

/// Where a value is in the document, rendered as a JSON path only for an
/// error: the walk of a good config (every create's) formats no paths.
enum At<'a> {
    Root(&'a str),
    Field(&'a At<'a>, &'a str),
    Index(&'a At<'a>, usize),
    Key(&'a At<'a>, &'a str),
}

impl At<'_> {
    fn render(&self) -> String {
        match self {
            At::Root(path) => path.to_string(),
            At::Field(parent, name) => field(&parent.render(), name),
            At::Index(parent, i) => index(&parent.render(), *i),
            At::Key(parent, k) => key(&parent.render(), k),
        }
    }
}

fn walk(v: &Value, ty: &Ty, at: &At<'_>) -> Result<(), ConfigError> {
    match ty {
        Ty::Bool => expect(v.is_boolean(), v, at, "a boolean"),
        Ty::Str => expect(v.is_string(), v, at, "a string"),
        Ty::Syntax(rule) => {
            let s = string(v, at)?;
            rule(s).map_err(|reason| ConfigError::new(at.render(), reason))
        }
        Ty::Int(min, max, name) => integer(v, *min, *max, name, at),
        Ty::Enum(what, values) => {
            let s = string(v, at)?;
            if values.contains(&s) {
                Ok(())
            } else {
                Err(ConfigError::new(
                    at.render(),
                    format!("unknown {what} {s:?} (one of: {})", values.join(", ")),
                ))
            }
        }
        Ty::Array(item) => array(v, item, at, false),
        Ty::NonEmptyArray(item) => array(v, item, at, true),
        Ty::Map(value) => map(v, value, at),
        Ty::Object(fields) => object(v, fields, at),
    }
}

fn expect(ok: bool, v: &Value, at: &At<'_>, what: &str) -> Result<(), ConfigError> {
    if ok {
        Ok(())
    } else {
        Err(wrong_type(v, at, what))
    }
}

fn wrong_type(v: &Value, at: &At<'_>, what: &str) -> ConfigError {
    ConfigError::new(at.render(), format!("must be {what}, got {}", describe(v)))
}

/// `string "x"`, `number 1.5`, `an array`, ... for "got ..." messages.
pub(crate) fn describe(v: &Value) -> String {
    match v {
        Value::Null => "null".into(),
        Value::Bool(b) => format!("boolean {b}"),
        Value::Number(n) => format!("number {n}"),
        Value::String(s) => format!("string {s:?}"),
        Value::Array(_) => "an array".into(),
        Value::Object(_) => "an object".into(),
    }
}

fn string<'a>(v: &'a Value, at: &At<'_>) -> Result<&'a str, ConfigError> {
    v.as_str().ok_or_else(|| wrong_type(v, at, "a string"))
}

fn integer(v: &Value, min: i128, max: i128, name: &str, at: &At<'_>) -> Result<(), ConfigError> {
    let n = match v {
        Value::Number(n) => n.as_i64().map(i128::from).or(n.as_u64().map(i128::from)),
        _ => None,
    };
    match n {
        Some(n) if (min..=max).contains(&n) => Ok(()),
        _ => Err(wrong_type(
            v,
            at,
            &format!("an integer ({name}: {min} to {max})"),
        )),
    }
}

fn array(v: &Value, item: &Ty, at: &At<'_>, non_empty: bool) -> Result<(), ConfigError> {
    let items = v.as_array().ok_or_else(|| wrong_type(v, at, "an array"))?;
    if non_empty && items.is_empty() {
        return Err(ConfigError::new(
            at.render(),
            "must have at least one entry",
        ));
    }
    for (i, x) in items.iter().enumerate() {
        walk(x, item, &At::Index(at, i))?;
    }
    Ok(())
}

fn map(v: &Value, value: &Ty, at: &At<'_>) -> Result<(), ConfigError> {
    let entries = v
        .as_object()
        .ok_or_else(|| wrong_type(v, at, "an object"))?;
    for (k, x) in entries {
        let here = At::Key(at, k);
        if k.is_empty() {
            return Err(ConfigError::new(here.render(), "key must not be empty"));
        }
        walk(x, value, &here)?;
    }
    Ok(())
}

fn object(v: &Value, fields: &[Field], at: &At<'_>) -> Result<(), ConfigError> {
    let members = v
        .as_object()
        .ok_or_else(|| wrong_type(v, at, "an object"))?;
    for f in fields {
        match members.get(f.name) {
            None | Some(Value::Null) if f.required => {
                return Err(ConfigError::new(
                    At::Field(at, f.name).render(),
                    "is required",
                ))
            }
            None | Some(Value::Null) => {}
            Some(x) => walk(x, f.ty, &At::Field(at, f.name))?,
        }
    }
    Ok(())
}

/// Drops `null` members of objects (absent for us, as for runc), so that
/// oci-spec's non-`Option` fields see them as missing rather than mistyped.
pub(crate) fn strip_nulls(v: &mut Value) {
    match v {
        Value::Object(members) => {
            members.retain(|_, x| !x.is_null());
            members.values_mut().for_each(strip_nulls);
        }
        Value::Array(items) => items.iter_mut().for_each(strip_nulls),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const U8: Ty = Ty::Int(0, 255, "uint8");
    const KIND: Ty = Ty::Enum("kind", &["a", "b"]);
    const ITEM: Ty = Ty::Object(&[req("kind", &KIND), opt("n", &U8)]);
    const DOC: Ty = Ty::Object(&[
        opt("items", &Ty::Array(&ITEM)),
        opt("names", &Ty::NonEmptyArray(&Ty::Str)),
        opt("labels", &Ty::Map(&Ty::Str)),
        opt("flag", &Ty::Bool),
    ]);

    fn err(v: Value) -> String {
        check(&v, &DOC, "").unwrap_err().to_string()
    }

    #[test]
    fn accepts_valid_and_ignores_unknown_and_null() {
        let v = json!({"items": [{"kind": "a", "n": 3}, {"kind": "b", "n": null}],
                       "names": ["x"], "labels": {"k": "v"}, "flag": null, "other": 1});
        check(&v, &DOC, "").unwrap();
    }

    #[test]
    fn errors_name_the_path() {
        assert_eq!(
            err(json!({"items": [{"kind": "a"}, {"kind": "c"}]})),
            "items[1].kind: unknown kind \"c\" (one of: a, b)"
        );
        assert_eq!(
            err(json!({"items": [{"n": 1}]})),
            "items[0].kind: is required"
        );
        assert_eq!(
            err(json!({"items": [{"kind": "a", "n": 256}]})),
            "items[0].n: must be an integer (uint8: 0 to 255), got number 256"
        );
        assert_eq!(
            err(json!({"items": [{"kind": "a", "n": 1.5}]})),
            "items[0].n: must be an integer (uint8: 0 to 255), got number 1.5"
        );
        assert_eq!(
            err(json!({"names": []})),
            "names: must have at least one entry"
        );
        assert_eq!(
            err(json!({"labels": {"a.b": 1}})),
            "labels[\"a.b\"]: must be a string, got number 1"
        );
        assert_eq!(
            err(json!({"labels": {"": "x"}})),
            "labels[\"\"]: key must not be empty"
        );
        assert_eq!(
            err(json!({"flag": "yes"})),
            "flag: must be a boolean, got string \"yes\""
        );
        assert_eq!(err(json!([])), "must be an object, got an array");
    }

    #[test]
    fn strip_nulls_recurses() {
        let mut v = json!({"a": null, "b": {"c": null, "d": [{"e": null}]}});
        strip_nulls(&mut v);
        assert_eq!(v, json!({"b": {"d": [{}]}}));
    }
}
