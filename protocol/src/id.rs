//! Identifiers that become host paths (cgroup directories, state dirs), so
//! they are validated before anything is created.

use crate::Error;

/// Longest id accepted: `[A-Za-z0-9][A-Za-z0-9_.-]{0,127}`.
pub const ID_MAX_LEN: usize = 128;

/// Checks a container or group id against `[A-Za-z0-9][A-Za-z0-9_.-]{0,127}`.
/// `what` names the argument in the error ("container id", "group id").
pub fn validate_id(what: &str, id: &str) -> Result<(), Error> {
    if id.is_empty() {
        return Err(Error::invalid(format!("{what} is empty")));
    }
    if id.len() > ID_MAX_LEN {
        return Err(Error::invalid(format!(
            "{what} is {} characters long; at most {ID_MAX_LEN} are allowed",
            id.len()
        )));
    }
    let first = id.as_bytes()[0];
    if !first.is_ascii_alphanumeric() {
        return Err(Error::invalid(format!(
            "{what} {id:?} must start with a letter or digit"
        )));
    }
    if let Some(bad) = id
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-')))
    {
        return Err(Error::invalid(format!(
            "{what} {id:?} contains {bad:?}; only letters, digits, '_', '.' and '-' are allowed"
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_good_ids() {
        for id in ["a", "A1", "web-1.prod_x", &"x".repeat(128)] {
            validate_id("id", id).unwrap();
        }
    }

    #[test]
    fn refuses_bad_ids() {
        for id in [
            "",
            "../x",
            "a/b",
            ".hidden",
            "-x",
            "..",
            "a b",
            "é",
            &"x".repeat(129),
            &"y".repeat(200),
        ] {
            let e = validate_id("group id", id).unwrap_err();
            assert!(e.message.contains("group id"), "{e}");
        }
    }
}
