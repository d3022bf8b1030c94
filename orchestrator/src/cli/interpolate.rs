//! `${VAR}` in SLA files, as Docker Compose does it: `grove deploy` and
//! `grove validate` replace `${NAME}` and `${NAME:-default}` in the
//! file's strings with the environment's values before the file goes to
//! the root, so one file serves machines that keep binaries in different
//! places (`"code": "${GROVE_BIN:-/usr/local/bin}/anonymise"`). `$$` is a
//! literal `$`. Only strings are touched (values are JSON-escaped by
//! construction); a file without `$` is sent byte for byte as it is.

use serde_json::Value;

/// Why a file could not be expanded.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum InterpolateError {
    /// `${NAME}` without a default, and NAME is not set.
    #[error("${{{0}}} is not set (set it, or write ${{{0}:-default}})")]
    Unset(String),
    /// `${` without its `}`, or an empty or odd name.
    #[error("bad variable reference {0:?}: write ${{NAME}} or ${{NAME:-default}} (NAME: letters, digits, _), or $$ for a $")]
    Syntax(String),
}

/// The file with its strings expanded, or the bytes unchanged when there
/// is nothing to expand (or the file is not JSON: the root says why).
pub fn expand_file(bytes: &[u8], env: &dyn Fn(&str) -> Option<String>) -> Result<Vec<u8>, InterpolateError> {
    if !bytes.contains(&b'$') {
        return Ok(bytes.to_vec());
    }
    let Ok(mut doc) = serde_json::from_slice::<Value>(bytes) else {
        return Ok(bytes.to_vec());
    };
    expand_value(&mut doc, env)?;
    Ok(serde_json::to_vec_pretty(&doc).unwrap_or_else(|_| bytes.to_vec()))
}

fn expand_value(value: &mut Value, env: &dyn Fn(&str) -> Option<String>) -> Result<(), InterpolateError> {
    match value {
        Value::String(s) if s.contains('$') => *s = expand(s, env)?,
        Value::Array(items) => items.iter_mut().try_for_each(|v| expand_value(v, env))?,
        Value::Object(fields) => fields.values_mut().try_for_each(|v| expand_value(v, env))?,
        _ => {}
    }
    Ok(())
}

/// One string, expanded.
pub fn expand(text: &str, env: &dyn Fn(&str) -> Option<String>) -> Result<String, InterpolateError> {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find('$') {
        out.push_str(&rest[..at]);
        let after = &rest[at + 1..];
        if let Some(tail) = after.strip_prefix('$') {
            out.push('$');
            rest = tail;
        } else if let Some(body) = after.strip_prefix('{') {
            let end = body.find('}').ok_or_else(|| InterpolateError::Syntax(rest.to_owned()))?;
            let (name, default) = match body[..end].split_once(":-") {
                Some((name, default)) => (name, Some(default)),
                None => (&body[..end], None),
            };
            if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
                return Err(InterpolateError::Syntax(format!("${{{}}}", &body[..end])));
            }
            match (env(name).filter(|v| !v.is_empty()), default) {
                (Some(value), _) => out.push_str(&value),
                (None, Some(default)) => out.push_str(default),
                (None, None) => return Err(InterpolateError::Unset(name.to_owned())),
            }
            rest = &body[end + 1..];
        } else {
            // A lone `$` (`$5`, `a$b`) stays as written.
            out.push('$');
            rest = after;
        }
    }
    out.push_str(rest);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(name: &str) -> Option<String> {
        match name {
            "GROVE_BIN" => Some("/opt/grove".into()),
            "EMPTY" => Some(String::new()),
            "QUOTE" => Some("a\"b".into()),
            _ => None,
        }
    }

    #[test]
    fn variables_defaults_and_dollars() {
        assert_eq!(expand("${GROVE_BIN}/anonymise", &env), Ok("/opt/grove/anonymise".into()));
        assert_eq!(expand("${NOPE:-/usr/local/bin}/x", &env), Ok("/usr/local/bin/x".into()));
        assert_eq!(expand("${EMPTY:-d}", &env), Ok("d".into()), "empty counts as unset, as in Compose's :-");
        assert_eq!(expand("$$5 and $5", &env), Ok("$5 and $5".into()));
        assert_eq!(expand("${NOPE}", &env), Err(InterpolateError::Unset("NOPE".into())));
        assert!(matches!(expand("${GROVE_BIN", &env), Err(InterpolateError::Syntax(_))));
        assert!(matches!(expand("${A B}", &env), Err(InterpolateError::Syntax(_))));
    }

    #[test]
    fn only_strings_change_and_values_stay_json() {
        let file = br#"{"code": "${QUOTE}/bin", "n": 1, "cmd": ["--x", "${GROVE_BIN}"]}"#;
        let out = expand_file(file, &env).expect("expands");
        let doc: Value = serde_json::from_slice(&out).expect("still JSON");
        assert_eq!(doc["code"], "a\"b/bin");
        assert_eq!(doc["cmd"][1], "/opt/grove");
        assert_eq!(doc["n"], 1);
        let plain = br#"{"code": "/bin/true"}"#;
        assert_eq!(expand_file(plain, &env).expect("unchanged"), plain.to_vec());
    }
}
