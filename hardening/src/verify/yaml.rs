//! YAML documents as trees that remember the line of every node, so that each finding can
//! point at the line it is about.
//!
//! Parsing is serde-saphyr's (YAML 1.2, panic-free, with resource budgets); every node is
//! deserialised through [`serde_saphyr::Spanned`], which records where it starts.

use std::fmt;

use serde::Deserialize;
use serde::de::{self, MapAccess, SeqAccess, Visitor};

/// One node of a YAML document and the line (1-based) it starts on.
#[derive(Clone, Debug, PartialEq)]
pub struct Node {
    /// Where the node starts in its file (1-based; 0 when unknown).
    pub line: usize,
    /// The value.
    pub value: Value,
}

/// The value of a [`Node`].
#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    /// `null`, `~` or nothing.
    Null,
    /// `true` / `false`.
    Bool(bool),
    /// An integer.
    Int(i128),
    /// A floating point number.
    Float(f64),
    /// A string.
    Str(String),
    /// A sequence.
    Seq(Vec<Node>),
    /// A mapping, in document order; keys as text.
    Map(Vec<(String, Node)>),
}

impl Node {
    /// The value of `key` when this node is a mapping.
    #[must_use]
    pub fn get(&self, key: &str) -> Option<&Node> {
        match &self.value {
            Value::Map(entries) => entries.iter().find(|(k, _)| k == key).map(|(_, v)| v),
            _ => None,
        }
    }

    /// Follows a path of mapping keys (`["spec", "template", "spec"]`).
    #[must_use]
    pub fn path(&self, keys: &[&str]) -> Option<&Node> {
        keys.iter().try_fold(self, |node, key| node.get(key))
    }

    /// The text of a string scalar (numbers and booleans are not strings).
    #[must_use]
    pub fn as_str(&self) -> Option<&str> {
        match &self.value {
            Value::Str(s) => Some(s),
            _ => None,
        }
    }

    /// A scalar as text, whatever its type (`8080`, `true`, `"x"`); `None` for null,
    /// sequences and mappings.
    #[must_use]
    pub fn scalar_text(&self) -> Option<String> {
        match &self.value {
            Value::Str(s) => Some(s.clone()),
            Value::Int(i) => Some(i.to_string()),
            Value::Float(f) => Some(f.to_string()),
            Value::Bool(b) => Some(b.to_string()),
            Value::Null | Value::Seq(_) | Value::Map(_) => None,
        }
    }

    /// A boolean scalar.
    #[must_use]
    pub fn as_bool(&self) -> Option<bool> {
        match &self.value {
            Value::Bool(b) => Some(*b),
            _ => None,
        }
    }

    /// An integer scalar, or a string holding one (`"2"`).
    #[must_use]
    pub fn as_int(&self) -> Option<i128> {
        match &self.value {
            Value::Int(i) => Some(*i),
            Value::Str(s) => s.trim().parse().ok(),
            _ => None,
        }
    }

    /// The items of a sequence (empty for anything else).
    #[must_use]
    pub fn items(&self) -> &[Node] {
        match &self.value {
            Value::Seq(items) => items,
            _ => &[],
        }
    }

    /// The entries of a mapping (empty for anything else).
    #[must_use]
    pub fn entries(&self) -> &[(String, Node)] {
        match &self.value {
            Value::Map(entries) => entries,
            _ => &[],
        }
    }

    /// The string items of a sequence (other items are skipped).
    #[must_use]
    pub fn strings(&self) -> Vec<String> {
        self.items().iter().filter_map(Node::scalar_text).collect()
    }

    /// Whether the node is a mapping.
    #[must_use]
    pub fn is_map(&self) -> bool {
        matches!(self.value, Value::Map(_))
    }

    /// Whether the node is null (also true for a key that is absent when used through
    /// `Option::map_or`).
    #[must_use]
    pub fn is_null(&self) -> bool {
        matches!(self.value, Value::Null)
    }

    /// The line of `key`'s value, or this node's line when the key is absent.
    #[must_use]
    pub fn line_of(&self, key: &str) -> usize {
        self.get(key).map_or(self.line, |n| n.line)
    }

    /// Adds `offset` to the line of this node and of every node below it (for documents
    /// embedded in another file, such as a bootstrap in a ConfigMap).
    pub fn shift_lines(&mut self, offset: usize) {
        self.line += offset;
        match &mut self.value {
            Value::Seq(items) => items.iter_mut().for_each(|n| n.shift_lines(offset)),
            Value::Map(entries) => entries.iter_mut().for_each(|(_, n)| n.shift_lines(offset)),
            _ => {}
        }
    }
}

/// A YAML document that could not be parsed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ParseError {
    /// The line of the problem (1-based; 0 when the parser could not say).
    pub line: usize,
    /// What is wrong.
    pub reason: String,
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "line {}: {}", self.line, self.reason)
    }
}

/// Parses every document of a (multi-document) YAML text. Empty documents are skipped.
///
/// # Errors
///
/// The first syntax error, with its line.
pub fn parse_documents(text: &str) -> Result<Vec<Node>, ParseError> {
    let options = serde_saphyr::options! { with_snippet: false };
    serde_saphyr::from_multiple_with_options::<Node>(text, options).map_err(|e| {
        let line = e
            .location()
            .and_then(|l| usize::try_from(l.line()).ok())
            .unwrap_or(0);
        let reason = e.to_string();
        // The message may already say where; keep its first line only.
        let reason = reason.lines().next().unwrap_or_default().trim().to_owned();
        ParseError { line, reason }
    })
}

impl<'de> Deserialize<'de> for Node {
    fn deserialize<D: de::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let spanned = serde_saphyr::Spanned::<Value>::deserialize(deserializer)?;
        Ok(Node {
            line: usize::try_from(spanned.referenced.line()).unwrap_or(0),
            value: spanned.value,
        })
    }
}

impl<'de> Deserialize<'de> for Value {
    fn deserialize<D: de::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(ValueVisitor)
    }
}

struct ValueVisitor;

impl<'de> Visitor<'de> for ValueVisitor {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any YAML value")
    }

    fn visit_unit<E: de::Error>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_none<E: de::Error>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_some<D: de::Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        d.deserialize_any(ValueVisitor)
    }

    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Value, E> {
        Ok(Value::Int(i128::from(v)))
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Value, E> {
        Ok(Value::Int(i128::from(v)))
    }

    fn visit_i128<E: de::Error>(self, v: i128) -> Result<Value, E> {
        Ok(Value::Int(v))
    }

    fn visit_u128<E: de::Error>(self, v: u128) -> Result<Value, E> {
        Ok(i128::try_from(v).map_or_else(|_| Value::Str(v.to_string()), Value::Int))
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Value, E> {
        Ok(Value::Float(v))
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Value, E> {
        Ok(Value::Str(v.to_owned()))
    }

    fn visit_string<E: de::Error>(self, v: String) -> Result<Value, E> {
        Ok(Value::Str(v))
    }

    fn visit_bytes<E: de::Error>(self, v: &[u8]) -> Result<Value, E> {
        Ok(Value::Str(String::from_utf8_lossy(v).into_owned()))
    }

    fn visit_newtype_struct<D: de::Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        d.deserialize_any(ValueVisitor)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element::<Node>()? {
            items.push(item);
        }
        Ok(Value::Seq(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut entries = Vec::new();
        while let Some(key) = map.next_key::<Key>()? {
            let value = map.next_value::<Node>()?;
            entries.push((key.0, value));
        }
        Ok(Value::Map(entries))
    }
}

/// A mapping key of any scalar type, as text.
struct Key(String);

impl<'de> Deserialize<'de> for Key {
    fn deserialize<D: de::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let value = deserializer.deserialize_any(ValueVisitor)?;
        Ok(Key(match value {
            Value::Str(s) => s,
            Value::Int(i) => i.to_string(),
            Value::Float(f) => f.to_string(),
            Value::Bool(b) => b.to_string(),
            Value::Null => "null".to_owned(),
            Value::Seq(_) | Value::Map(_) => {
                return Err(de::Error::custom(
                    "a mapping key is a sequence or a mapping, which Kubernetes, Envoy and this tool do not accept",
                ));
            }
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_of_documents_mappings_and_sequence_items() {
        let text = "# comment\n---\napiVersion: v1\nkind: ClusterRole\nrules:\n- apiGroups: [\"\"]\n  verbs:\n  - get\n- apiGroups:\n  - apps\n  verbs: [\"*\"]\n---\n# empty\n---\nkind: Second\nmetadata:\n  name: x\n";
        let docs = parse_documents(text).unwrap();
        assert_eq!(docs.len(), 2);
        let first = &docs[0];
        assert_eq!(first.line, 3);
        assert_eq!(first.get("kind").unwrap().as_str(), Some("ClusterRole"));
        assert_eq!(first.get("kind").unwrap().line, 4);
        let rules = first.get("rules").unwrap().items();
        assert_eq!(rules.len(), 2);
        assert_eq!(rules[0].line, 6);
        assert_eq!(rules[1].line, 9);
        assert_eq!(rules[1].get("verbs").unwrap().strings(), vec!["*"]);
        assert_eq!(rules[0].path(&["verbs"]).unwrap().items()[0].line, 8);
        let second = &docs[1];
        assert_eq!(second.line, 15);
        assert_eq!(second.path(&["metadata", "name"]).unwrap().line, 17);
    }

    #[test]
    fn scalars_keep_their_types() {
        let docs = parse_documents("a: 1\nb: \"1\"\nc: true\nd: ~\ne: 0.5\n1: x\n").unwrap();
        let d = &docs[0];
        assert_eq!(d.get("a").unwrap().value, Value::Int(1));
        assert_eq!(d.get("b").unwrap().value, Value::Str("1".into()));
        assert_eq!(d.get("c").unwrap().as_bool(), Some(true));
        assert!(d.get("d").unwrap().is_null());
        assert_eq!(d.get("e").unwrap().value, Value::Float(0.5));
        assert_eq!(d.get("1").unwrap().as_str(), Some("x"));
    }

    #[test]
    fn syntax_errors_have_a_line() {
        let e = parse_documents("a: 1\nb: [unclosed\nc: 2\n").unwrap_err();
        assert!(e.line >= 2, "{e:?}");
        let e = parse_documents("a: 1\n  b: 2\n").unwrap_err();
        assert!(e.line >= 1, "{e:?}");
    }

    #[test]
    fn block_scalars_start_on_their_first_content_line() {
        let docs = parse_documents("data:\n  envoy.yaml: |\n    admin: {}\n    x: 1\n  other: 2\n")
            .unwrap();
        let v = docs[0].path(&["data", "envoy.yaml"]).unwrap();
        assert_eq!(v.as_str(), Some("admin: {}\nx: 1\n"));
        assert_eq!(v.line, 3);
    }
}
