//! Plain-text tables and JSON cells for the listing commands.

use serde_json::Value;

/// A JSON value as a table cell: strings unquoted, absent or null as `-`.
pub fn cell(v: Option<&Value>) -> String {
    match v {
        None | Some(Value::Null) => "-".into(),
        Some(Value::String(s)) => s.clone(),
        Some(other) => other.to_string(),
    }
}

/// The first of `paths` (dotted, e.g. `manifest.version`) present in `v`.
pub fn field<'a>(v: &'a Value, paths: &[&str]) -> Option<&'a Value> {
    paths
        .iter()
        .find_map(|path| path.split('.').try_fold(v, |node, key| node.get(key)).filter(|found| !found.is_null()))
}

/// Left-aligned columns separated by two spaces; the last column is not padded.
pub fn render(headers: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = headers.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (w, c) in widths.iter_mut().zip(row) {
            *w = (*w).max(c.chars().count());
        }
    }
    let line = |cells: Vec<&str>| {
        let last = cells.len().saturating_sub(1);
        let mut out = String::new();
        for (i, c) in cells.into_iter().enumerate() {
            if i == last {
                out.push_str(c);
            } else {
                out.push_str(&format!("{c:<w$}  ", w = widths[i]));
            }
        }
        out.trim_end().to_string()
    };
    let mut out = line(headers.to_vec());
    for row in rows {
        out.push('\n');
        out.push_str(&line(row.iter().map(String::as_str).collect()));
    }
    out
}

/// An array answer, or the array under one of the usual wrapper keys.
pub fn list(body: &Value) -> Vec<Value> {
    match body {
        Value::Array(items) => items.clone(),
        Value::Object(map) => ["jobs", "executors", "items", "data"]
            .iter()
            .find_map(|k| map.get(*k).and_then(Value::as_array).cloned())
            .unwrap_or_default(),
        _ => Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn renders_aligned_columns() {
        let rows = vec![vec!["a".to_string(), "long-value".to_string()], vec!["bbb".into(), "x".into()]];
        assert_eq!(render(&["K", "V"], &rows), "K    V\na    long-value\nbbb  x");
    }

    #[test]
    fn cells_and_paths() {
        let v = json!({"name": "n", "manifest": {"version": "1.2"}, "n": 3, "z": null});
        assert_eq!(cell(field(&v, &["version", "manifest.version"])), "1.2");
        assert_eq!(cell(field(&v, &["z", "n"])), "3");
        assert_eq!(cell(field(&v, &["missing"])), "-");
        assert_eq!(list(&json!({"jobs": [1, 2]})).len(), 2);
    }
}
