//! Reading JSON so that a wrongly shaped document says where it went wrong.

use serde::de::DeserializeOwned;

/// JSON that is malformed or does not fit the expected shape.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}{message}", located(.path))]
pub struct ParseError {
    /// Where the value that did not fit sits, e.g. `steps[0].stepType`; empty for a syntax
    /// error or a problem with the document as a whole.
    pub path: String,
    /// serde's description.
    pub message: String,
}

fn located(path: &str) -> String {
    if path.is_empty() { String::new() } else { format!("{path}: ") }
}

/// Parses `json` as a `T`, naming the offending field on a shape error (serde alone only gives
/// line and column, which mean little in a one-line request body).
pub(crate) fn from_str<T: DeserializeOwned>(json: &str) -> Result<T, ParseError> {
    let mut de = serde_json::Deserializer::from_str(json);
    let value = serde_path_to_error::deserialize(&mut de).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        // A syntax error's path is only where the parser stopped, not a field at fault.
        let path = if inner.is_data() && path != "." { path } else { String::new() };
        ParseError { path, message: inner.to_string() }
    })?;
    de.end().map_err(|e| ParseError { path: String::new(), message: e.to_string() })?;
    Ok(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, serde::Deserialize)]
    #[allow(dead_code)]
    struct Doc {
        items: Vec<Item>,
    }

    #[derive(Debug, serde::Deserialize)]
    #[allow(dead_code)]
    struct Item {
        n: i64,
    }

    #[test]
    fn names_the_field_only_for_shape_errors() {
        let e = from_str::<Doc>(r#"{"items":[{"n":1},{"n":"x"}]}"#).unwrap_err();
        assert_eq!(e.path, "items[1].n");
        assert!(e.to_string().starts_with("items[1].n: invalid type: string \"x\""), "{e}");
        let e = from_str::<Doc>(r#"{"items":[{"n":1}"#).unwrap_err();
        assert_eq!(e.path, "", "{e}");
        let e = from_str::<Doc>(r#"{"items":[]} trailing"#).unwrap_err();
        assert!(e.path.is_empty() && e.message.contains("trailing"), "{e}");
        assert!(from_str::<Doc>(r#"{"items":[{"n":1}]}"#).is_ok());
    }
}
