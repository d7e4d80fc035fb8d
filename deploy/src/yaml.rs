//! YAML output of rendered objects, byte-for-byte stable.
//!
//! serde-saphyr, with mapping keys sorted (the order does not depend on serde_json's
//! `preserve_order` feature, which another crate in the graph could switch on), long
//! single-line strings kept as plain scalars (its default would fold image references over 80
//! characters into `>-` blocks), and multi-line strings (an Envoy bootstrap inside a ConfigMap)
//! as literal `|` blocks so that they stay readable and diffable.

use serde::ser::{Serialize, SerializeMap as _, SerializeSeq as _, Serializer};
use serde_json::Value;

/// One YAML document, without the `---` marker.
pub(crate) fn to_yaml(value: &Value) -> Result<String, serde_saphyr::SerializeError> {
    let mut options = serde_saphyr::SerializerOptions::default();
    options.prefer_block_scalars = false;
    serde_saphyr::to_string_with_options(&Node(value), options)
}

/// Several documents, each starting with `---`.
pub(crate) fn to_yaml_stream<'a>(
    values: impl IntoIterator<Item = &'a Value>,
) -> Result<String, serde_saphyr::SerializeError> {
    let mut out = String::new();
    for value in values {
        out.push_str("---\n");
        out.push_str(&to_yaml(value)?);
    }
    Ok(out)
}

/// Parses YAML into JSON values (to read back a rendered bootstrap).
pub(crate) fn from_yaml(text: &str) -> Result<Value, String> {
    serde_saphyr::from_str(text).map_err(|e| e.to_string())
}

struct Node<'a>(&'a Value);

impl Serialize for Node<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self.0 {
            Value::String(s) if s.contains('\n') => serde_saphyr::LitStr(s).serialize(serializer),
            Value::Array(items) => {
                let mut seq = serializer.serialize_seq(Some(items.len()))?;
                for item in items {
                    seq.serialize_element(&Node(item))?;
                }
                seq.end()
            }
            Value::Object(map) => {
                let mut entries: Vec<(&String, &Value)> = map.iter().collect();
                entries.sort_by(|a, b| a.0.cmp(b.0));
                let mut out = serializer.serialize_map(Some(entries.len()))?;
                for (key, value) in entries {
                    out.serialize_entry(key, &Node(value))?;
                }
                out.end()
            }
            other => other.serialize(serializer),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn keys_are_sorted_and_strings_stay_readable() {
        let image = format!(
            "docker.io/envoyproxy/envoy:distroless-v1.40.0@sha256:{}",
            "0".repeat(64)
        );
        let v = json!({
            "b": 1,
            "a": { "z": true, "image": image },
            "text": "line one\nline two\n",
            "list": ["x", "y"],
            "octal": "0644",
            "empty": {},
        });
        let out = to_yaml(&v).unwrap();
        assert_eq!(
            out,
            format!(
                "a:\n  image: {image}\n  z: true\nb: 1\nempty: {{}}\nlist:\n- x\n- \"y\"\noctal: \"0644\"\ntext: |\n  line one\n  line two\n"
            )
        );
        assert_eq!(from_yaml(&out).unwrap(), v);
    }

    #[test]
    fn streams_mark_every_document() {
        let out = to_yaml_stream([&json!({"a": 1}), &json!({"b": 2})]).unwrap();
        assert_eq!(out, "---\na: 1\n---\nb: 2\n");
    }
}
