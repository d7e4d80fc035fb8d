//! Reading a configuration directory: every `*.yaml`/`*.yml` file, every document in it.
//! A document that does not parse or validate is reported with file, line and reason and
//! skipped; the rest of the configuration stands.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use super::Config;
use super::meta::{Kind, ObjectKey, Origin};

/// A problem found while reading the configuration.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Diagnostic {
    /// The file.
    pub file: PathBuf,
    /// 1-based line (0 when it concerns the whole file).
    pub line: usize,
    /// What is wrong, and how to fix it where that is not obvious.
    pub message: String,
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}: {}", self.file.display(), self.line, self.message)
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct TypeMeta {
    #[serde(default)]
    api_version: Option<String>,
    #[serde(default)]
    kind: Option<String>,
}

/// The files under `dir` (recursively, sorted; hidden entries skipped) whose name `keep`
/// accepts.
pub fn walk_files(dir: &Path, keep: impl Fn(&str) -> bool) -> std::io::Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_owned()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d)? {
            let entry = entry?;
            let name = entry.file_name().to_string_lossy().into_owned();
            if name.starts_with('.') {
                continue;
            }
            if entry.file_type()?.is_dir() {
                stack.push(entry.path());
            } else if keep(&name) {
                out.push(entry.path());
            }
        }
    }
    out.sort();
    Ok(out)
}

/// The YAML files of `dir` (recursively, sorted; hidden entries skipped).
pub fn config_files(dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    walk_files(dir, |n| n.ends_with(".yaml") || n.ends_with(".yml"))
}

/// Reads every YAML file of `dir` into a [`Config`], with the problems found.
pub fn load_dir(dir: &Path) -> Result<(Config, Vec<Diagnostic>), std::io::Error> {
    let mut config = Config::default();
    let mut diags = Vec::new();
    for file in config_files(dir)? {
        match std::fs::read_to_string(&file) {
            Ok(text) => load_text(&mut config, &mut diags, &file, &text),
            Err(e) => diags.push(Diagnostic {
                file: file.clone(),
                line: 0,
                message: format!("cannot read: {e}"),
            }),
        }
    }
    Ok((config, diags))
}

/// Splits a YAML stream into documents: `(first line number, text)`.
fn documents(text: &str) -> Vec<(usize, String)> {
    let mut docs = Vec::new();
    let mut start = 1;
    let mut cur = String::new();
    for (i, line) in text.lines().enumerate() {
        let is_separator = line == "---" || line.starts_with("--- ") || line.starts_with("---\t");
        if is_separator {
            docs.push((start, std::mem::take(&mut cur)));
            start = i + 2;
        } else if line == "..." {
            continue;
        } else {
            cur.push_str(line);
            cur.push('\n');
        }
    }
    docs.push((start, cur));
    docs.into_iter()
        .filter(|(_, d)| {
            d.lines()
                .any(|l| !l.trim().is_empty() && !l.trim_start().starts_with('#'))
        })
        .collect()
}

/// Adds the documents of one file to `config`.
pub fn load_text(config: &mut Config, diags: &mut Vec<Diagnostic>, file: &Path, text: &str) {
    for (start, doc) in documents(text) {
        let diag = |line: usize, message: String| Diagnostic {
            file: file.to_owned(),
            line,
            message,
        };
        let located = |e: &serde_saphyr::Error| {
            let line = e.location().map_or(start, |l| {
                start + usize::try_from(l.line()).unwrap_or(1).saturating_sub(1)
            });
            // The error text may carry its own position; keep the first line only.
            let msg = e.to_string();
            let msg = msg.lines().next().unwrap_or_default().to_owned();
            (line, msg)
        };
        let tm: TypeMeta = match serde_saphyr::from_str(&doc) {
            Ok(tm) => tm,
            Err(e) => {
                let (line, msg) = located(&e);
                diags.push(diag(line, format!("not valid YAML: {msg}")));
                continue;
            }
        };
        let (Some(api_version), Some(kind_name)) = (tm.api_version, tm.kind) else {
            diags.push(diag(
                start,
                "a document without `apiVersion` and `kind`".to_owned(),
            ));
            continue;
        };
        let Some(kind) = Kind::from_type_meta(&api_version, &kind_name) else {
            diags.push(diag(
                start,
                format!("`{api_version}` `{kind_name}` is not a kind Gatehouse reads (GatewayClass, Gateway, HTTPRoute, GRPCRoute of gateway.networking.k8s.io/v1, ReferenceGrant, v1 Secret, Backend, SecurityPolicy and GatewayPolicy of gatehouse.dev/v1alpha1)"),
            ));
            continue;
        };
        let origin = Origin {
            file: file.to_owned(),
            line: start,
        };
        let result = match kind {
            Kind::GatewayClass => parse(&doc).map(|o| config.insert_gateway_class(o, origin)),
            Kind::Gateway => parse(&doc).map(|o| config.insert_gateway(o, origin)),
            Kind::HTTPRoute => parse(&doc).map(|o| config.insert_http_route(o, origin)),
            Kind::GRPCRoute => parse(&doc).map(|o| config.insert_grpc_route(o, origin)),
            Kind::ReferenceGrant => parse(&doc).map(|o| config.insert_reference_grant(o, origin)),
            Kind::Secret => parse(&doc).map(|o| config.insert_secret(o, origin)),
            Kind::Backend => parse(&doc).map(|o| config.insert_backend(o, origin)),
            Kind::SecurityPolicy => parse(&doc).map(|o| config.insert_security_policy(o, origin)),
            Kind::GatewayPolicy => parse(&doc).map(|o| config.insert_gateway_policy(o, origin)),
        };
        match result {
            Err(e) => {
                let (line, msg) = located(&e);
                diags.push(diag(line, format!("invalid {kind_name}: {msg}")));
            }
            Ok(Some(previous)) => diags.push(diag(
                start,
                format!(
                    "{kind_name} defined twice (first at {previous}); this definition is ignored"
                ),
            )),
            Ok(None) => {}
        }
    }
}

fn parse<T: for<'de> Deserialize<'de>>(doc: &str) -> Result<T, serde_saphyr::Error> {
    serde_saphyr::from_str(doc)
}

/// Objects of one kind by namespace and name, with their origin.
pub type Objects<T> = BTreeMap<(String, String), (T, Origin)>;

/// Inserts unless present; returns the origin of the object already there.
pub(crate) fn insert<T>(
    map: &mut Objects<T>,
    key: ObjectKey,
    value: T,
    origin: Origin,
) -> Option<Origin> {
    use std::collections::btree_map::Entry;
    match map.entry((key.namespace, key.name)) {
        Entry::Occupied(e) => Some(e.get().1.clone()),
        Entry::Vacant(e) => {
            e.insert((value, origin));
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn documents_carry_their_first_line() {
        let docs = documents("a: 1\n---\n# only a comment\n---\nb: 2\nc: 3\n");
        assert_eq!(
            docs,
            vec![(1, "a: 1\n".to_owned()), (5, "b: 2\nc: 3\n".to_owned())]
        );
    }

    #[test]
    fn errors_point_at_the_file_line() {
        let text = "\
apiVersion: gateway.networking.k8s.io/v1
kind: GatewayClass
metadata: {name: ok}
spec: {controllerName: gatehouse.dev/gateway-controller}
---
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata:
  name: gw
spec:
  gatewayClassName: x
  listeners:
  - name: http
    port: eighty
    protocol: HTTP
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: r}
spec:
  hostnamez: [a]
---
apiVersion: example.com/v1
kind: Widget
metadata: {name: w}
";
        let mut config = Config::default();
        let mut diags = Vec::new();
        load_text(&mut config, &mut diags, Path::new("gw.yaml"), text);
        assert_eq!(config.gateway_classes.len(), 1);
        assert_eq!(diags.len(), 3, "{diags:?}");
        assert_eq!(diags[0].line, 14, "{}", diags[0]);
        assert!(
            diags[0].message.starts_with("invalid Gateway"),
            "{}",
            diags[0]
        );
        assert_eq!(diags[1].line, 21, "{}", diags[1]);
        assert!(diags[1].message.contains("hostnamez"), "{}", diags[1]);
        assert_eq!(diags[2].line, 23);
        assert!(diags[2].message.contains("not a kind Gatehouse reads"));
    }
}
