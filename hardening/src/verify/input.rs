//! Reading the inputs: manifests (files, directories, stdin), bootstraps and units.

use std::path::{Path, PathBuf};
use std::rc::Rc;

use super::k8s::Object;
use super::unit::UnitFile;
use super::yaml::{self, Node};
use super::{Inputs, VerifyError};

/// A file that was read, with its text (kept to locate block scalars).
#[derive(Debug)]
pub(crate) struct Source {
    /// The path as given or found (`<stdin>` for `-`).
    pub(crate) path: String,
    /// Its text.
    pub(crate) text: String,
}

impl Source {
    /// The text of line `line` (1-based).
    pub(crate) fn line_text(&self, line: usize) -> Option<&str> {
        line.checked_sub(1).and_then(|i| self.text.lines().nth(i))
    }
}

/// One YAML document of a file.
#[derive(Debug)]
pub(crate) struct Doc {
    pub(crate) src: Rc<Source>,
    pub(crate) node: Node,
}

/// Everything read.
#[derive(Debug, Default)]
pub(crate) struct Loaded {
    pub(crate) objects: Vec<Object>,
    pub(crate) bootstraps: Vec<Doc>,
    pub(crate) units: Vec<UnitFile>,
    pub(crate) descriptions: Vec<String>,
}

/// Top-level keys only an Envoy bootstrap has.
const BOOTSTRAP_KEYS: [&str; 3] = ["static_resources", "dynamic_resources", "admin"];

pub(crate) fn load(inputs: &Inputs) -> Result<Loaded, VerifyError> {
    let mut loaded = Loaded::default();
    for path in &inputs.manifests {
        if path == Path::new("-") {
            let text = inputs.stdin.clone().unwrap_or_default();
            let src = Rc::new(Source {
                path: "<stdin>".to_owned(),
                text,
            });
            load_yaml(&mut loaded, &src)?;
            continue;
        }
        let meta = std::fs::metadata(path)
            .map_err(|e| VerifyError::could_not(path.display().to_string(), e))?;
        if meta.is_dir() {
            let mut files = Vec::new();
            walk(path, &mut files)?;
            if files.is_empty() {
                loaded.descriptions.push(format!(
                    "{}: no *.yaml, *.yml, *.json or *.service file",
                    path.display()
                ));
            }
            for file in files {
                load_file(&mut loaded, &file)?;
            }
        } else {
            load_file(&mut loaded, path)?;
        }
    }
    if let Some(snapshot) = &inputs.cluster {
        loaded.objects.extend(super::cluster::objects(snapshot));
        loaded.descriptions.push(snapshot.describe());
    }
    for path in &inputs.bootstraps {
        let src = read(path)?;
        let docs = yaml::parse_documents(&src.text)
            .map_err(|e| VerifyError::unparsable(&src.path, e.line, e.reason))?;
        let Some(node) = docs.into_iter().next() else {
            return Err(VerifyError::unparsable(
                &src.path,
                1,
                "empty: not an Envoy bootstrap",
            ));
        };
        if !node.is_map() {
            return Err(VerifyError::unparsable(
                &src.path,
                node.line,
                "not an Envoy bootstrap (a YAML or JSON mapping)",
            ));
        }
        loaded
            .descriptions
            .push(format!("{}: Envoy bootstrap", src.path));
        loaded.bootstraps.push(Doc { src, node });
    }
    for path in &inputs.units {
        let src = read(path)?;
        loaded
            .descriptions
            .push(format!("{}: systemd unit", src.path));
        loaded.units.push(UnitFile::parse(src)?);
    }
    Ok(loaded)
}

fn read(path: &Path) -> Result<Rc<Source>, VerifyError> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| VerifyError::could_not(path.display().to_string(), e))?;
    Ok(Rc::new(Source {
        path: path.display().to_string(),
        text,
    }))
}

fn is_unit(path: &Path) -> bool {
    path.extension().is_some_and(|e| {
        ["service", "socket", "timer", "path", "mount"].contains(&&*e.to_string_lossy())
    })
}

fn load_file(loaded: &mut Loaded, path: &Path) -> Result<(), VerifyError> {
    let src = read(path)?;
    if is_unit(path) {
        loaded
            .descriptions
            .push(format!("{}: systemd unit", src.path));
        loaded.units.push(UnitFile::parse(src)?);
        return Ok(());
    }
    load_yaml(loaded, &src)
}

fn load_yaml(loaded: &mut Loaded, src: &Rc<Source>) -> Result<(), VerifyError> {
    let docs = yaml::parse_documents(&src.text)
        .map_err(|e| VerifyError::unparsable(&src.path, e.line, e.reason))?;
    let (mut objects, mut bootstraps, mut other) = (0usize, 0usize, 0usize);
    for node in docs {
        if node.get("kind").is_some() && node.get("apiVersion").is_some() {
            let is_list = node
                .get("kind")
                .and_then(Node::as_str)
                .is_some_and(|k| k == "List" || k.ends_with("List"))
                && node.get("items").is_some();
            if is_list {
                if let Some(items) = node.get("items") {
                    for item in items.items() {
                        if let Some(object) = Object::new(src, item.clone()) {
                            loaded.objects.push(object);
                            objects += 1;
                        } else {
                            other += 1;
                        }
                    }
                }
                continue;
            }
            match Object::new(src, node) {
                Some(object) => {
                    loaded.objects.push(object);
                    objects += 1;
                }
                None => other += 1,
            }
        } else if node.get("kind").is_none() && BOOTSTRAP_KEYS.iter().any(|k| node.get(k).is_some())
        {
            loaded.bootstraps.push(Doc {
                src: Rc::clone(src),
                node,
            });
            bootstraps += 1;
        } else {
            other += 1;
        }
    }
    let mut parts = vec![format!(
        "{objects} Kubernetes object{}",
        if objects == 1 { "" } else { "s" }
    )];
    if bootstraps > 0 {
        parts.push(format!(
            "{bootstraps} Envoy bootstrap{}",
            if bootstraps == 1 { "" } else { "s" }
        ));
    }
    if other > 0 {
        parts.push(format!(
            "{other} other document{} ignored",
            if other == 1 { "" } else { "s" }
        ));
    }
    loaded
        .descriptions
        .push(format!("{}: {}", src.path, parts.join(", ")));
    Ok(())
}

/// Every `*.yaml`, `*.yml`, `*.json` and unit file under `dir`, sorted, skipping hidden
/// entries.
fn walk(dir: &Path, out: &mut Vec<PathBuf>) -> Result<(), VerifyError> {
    let entries =
        std::fs::read_dir(dir).map_err(|e| VerifyError::could_not(dir.display().to_string(), e))?;
    let mut paths: Vec<PathBuf> = entries
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| {
            !p.file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with('.'))
        })
        .collect();
    paths.sort();
    for path in paths {
        if path.is_dir() {
            walk(&path, out)?;
        } else if is_unit(&path)
            || path.extension().is_some_and(|e| {
                let e = e.to_string_lossy();
                e == "yaml" || e == "yml" || e == "json"
            })
        {
            out.push(path);
        }
    }
    Ok(())
}
