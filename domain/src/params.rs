//! Params: string maps merged key by key, later layers winning (spec §6.1).

use std::collections::BTreeMap;

use serde::{Deserialize, Deserializer};

/// A params map. Ordered so that stored JSON and task inputs are deterministic.
pub type Params = BTreeMap<String, String>;

/// `base` overwritten key by key by each of `layers`, in order.
pub fn merge<'a>(base: &Params, layers: impl IntoIterator<Item = &'a Params>) -> Params {
    let mut out = base.clone();
    for layer in layers {
        out.extend(layer.iter().map(|(k, v)| (k.clone(), v.clone())));
    }
    out
}

/// Reads a params object leniently the way Jackson fills a `Map<String,String>`:
/// `null` means empty, scalar values become their text, `null` values are dropped
/// (they carry nothing a WASM executor could receive).
pub(crate) fn lenient<'de, D: Deserializer<'de>>(d: D) -> Result<Params, D::Error> {
    use serde::de::Error;
    let raw = Option::<BTreeMap<String, serde_json::Value>>::deserialize(d)?;
    let mut out = Params::new();
    for (k, v) in raw.unwrap_or_default() {
        let text = match v {
            serde_json::Value::Null => continue,
            serde_json::Value::String(s) => s,
            serde_json::Value::Bool(b) => b.to_string(),
            serde_json::Value::Number(n) => n.to_string(),
            other => return Err(D::Error::custom(format!("param {k} is not a string: {other}"))),
        };
        out.insert(k, text);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn later_layers_win() {
        let p = |kv: &[(&str, &str)]| -> Params { kv.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect() };
        let merged = merge(&p(&[("a", "1"), ("b", "1")]), [&p(&[("b", "2")]), &p(&[("c", "3")])]);
        assert_eq!(merged, p(&[("a", "1"), ("b", "2"), ("c", "3")]));
    }
}
