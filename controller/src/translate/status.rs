//! Status conditions the Gateway API way: `Accepted`, `ResolvedRefs`, `Programmed` with the
//! specification's reasons.

use crate::model::{ObjectKey, Origin};

/// One condition.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Condition {
    /// `Accepted`, `ResolvedRefs`, `Programmed`, `Conflicted`, ...
    #[serde(rename = "type")]
    pub condition_type: &'static str,
    /// `True` or `False`.
    pub status: &'static str,
    /// The specification's reason, e.g. `NoMatchingParent`.
    pub reason: &'static str,
    /// For people.
    pub message: String,
}

impl Condition {
    /// A `True` condition.
    pub fn ok(
        condition_type: &'static str,
        reason: &'static str,
        message: impl Into<String>,
    ) -> Self {
        Self {
            condition_type,
            status: "True",
            reason,
            message: message.into(),
        }
    }

    /// A `False` condition.
    pub fn fail(
        condition_type: &'static str,
        reason: &'static str,
        message: impl Into<String>,
    ) -> Self {
        Self {
            condition_type,
            status: "False",
            reason,
            message: message.into(),
        }
    }
}

/// The status of one object: conditions on the object, or per parent (routes) or per listener
/// (Gateways).
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct ObjectStatus {
    /// The object.
    pub object: ObjectKey,
    /// Where it was defined.
    pub origin: Origin,
    /// Object-level conditions.
    pub conditions: Vec<Condition>,
    /// Per parent (`NAMESPACE/GATEWAY[/SECTION]`) or per listener name.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub parts: Vec<(String, Vec<Condition>)>,
}

impl ObjectStatus {
    /// Whether every condition (of the object and its parts) is `True`, ignoring
    /// `Conflicted` and `Overlapped`, where `True` is the bad case.
    pub fn healthy(&self) -> bool {
        self.conditions
            .iter()
            .chain(self.parts.iter().flat_map(|(_, c)| c))
            .all(|c| match c.condition_type {
                "Conflicted" | "Overlapped" => c.status == "False",
                _ => c.status == "True",
            })
    }

    /// One line per condition that is not healthy, `file:line: object: type=False reason: message`.
    pub fn problems(&self) -> Vec<String> {
        let mut out = Vec::new();
        let mut push = |part: Option<&str>, c: &Condition| {
            let bad = match c.condition_type {
                "Conflicted" | "Overlapped" => c.status == "True",
                _ => c.status == "False",
            };
            if bad {
                let part = part.map(|p| format!(" ({p})")).unwrap_or_default();
                out.push(format!(
                    "{}: {}{part}: {}={} {}: {}",
                    self.origin, self.object, c.condition_type, c.status, c.reason, c.message
                ));
            }
        };
        for c in &self.conditions {
            push(None, c);
        }
        for (p, cs) in &self.parts {
            for c in cs {
                push(Some(p), c);
            }
        }
        out
    }
}
