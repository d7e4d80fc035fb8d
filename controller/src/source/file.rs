//! The file source: every YAML file of a directory, re-read when the directory changes.
//!
//! A file that does not parse or validate is reported with file, line and reason, and the
//! last good version of that file stays in force, so a broken edit never withdraws what the
//! file configured before. Deleting a file does withdraw its objects.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use notify::Watcher as _;
use tokio::sync::mpsc;

use crate::model::{Config, Diagnostic, config_files, load_text};

/// The result of reading the directory.
#[derive(Clone, Debug, Default)]
pub struct Reload {
    /// The configuration in force: every good file, and the last good version of bad ones.
    pub config: Config,
    /// Problems, with file and line.
    pub diagnostics: Vec<Diagnostic>,
    /// Files whose last good version is kept because the current one is bad.
    pub kept_last_good: Vec<PathBuf>,
}

/// A configuration directory and the last good version of each of its files.
#[derive(Debug)]
pub struct FileSource {
    dir: PathBuf,
    good: BTreeMap<PathBuf, (String, Config)>,
}

impl FileSource {
    /// A source for `dir`.
    pub fn new(dir: &Path) -> Self {
        Self {
            dir: dir.to_owned(),
            good: BTreeMap::new(),
        }
    }

    /// The directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Reads the directory again.
    pub fn reload(&mut self) -> Reload {
        let mut out = Reload::default();
        let files = match config_files(&self.dir) {
            Ok(f) => f,
            Err(e) => {
                // The directory itself is unreadable: keep everything as it was.
                out.diagnostics.push(Diagnostic {
                    file: self.dir.clone(),
                    line: 0,
                    message: format!(
                        "cannot read the directory: {e}; keeping the last good configuration"
                    ),
                });
                out.kept_last_good = self.good.keys().cloned().collect();
                out.config = self.merged(&mut out.diagnostics);
                return out;
            }
        };
        self.good.retain(|f, _| files.contains(f));
        for file in files {
            let text = match std::fs::read_to_string(&file) {
                Ok(t) => t,
                Err(e) => {
                    out.diagnostics.push(Diagnostic {
                        file: file.clone(),
                        line: 0,
                        message: format!("cannot read: {e}"),
                    });
                    if self.good.contains_key(&file) {
                        out.kept_last_good.push(file);
                    }
                    continue;
                }
            };
            if self.good.get(&file).is_some_and(|(t, _)| *t == text) {
                continue;
            }
            let mut fragment = Config::default();
            let mut diags = Vec::new();
            load_text(&mut fragment, &mut diags, &file, &text);
            if diags.is_empty() {
                self.good.insert(file, (text, fragment));
            } else {
                if self.good.contains_key(&file) {
                    out.kept_last_good.push(file.clone());
                    for d in &mut diags {
                        d.message
                            .push_str(" (the last good version of this file stays in force)");
                    }
                } else {
                    // A new file with problems: its good documents are used.
                    self.good.insert(file.clone(), (String::new(), fragment));
                }
                out.diagnostics.extend(diags);
            }
        }
        out.config = self.merged(&mut out.diagnostics);
        out
    }

    fn merged(&self, diags: &mut Vec<Diagnostic>) -> Config {
        let mut config = Config::default();
        for fragment in self.good.values().map(|(_, c)| c) {
            for (key, origin) in config.merge(fragment.clone()) {
                diags.push(Diagnostic {
                    file: origin.file.clone(),
                    line: origin.line,
                    message: format!(
                        "{key} is defined in more than one file; this definition is ignored"
                    ),
                });
            }
        }
        config
    }

    /// Watches the directory; the receiver gets one message per batch of changes (batched with
    /// a `quiet` window). Dropping the returned watcher stops watching.
    pub fn watch(
        &self,
        quiet: Duration,
    ) -> notify::Result<(notify::RecommendedWatcher, mpsc::Receiver<()>)> {
        let (raw_tx, mut raw_rx) = mpsc::unbounded_channel::<()>();
        let mut watcher =
            notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
                if event.is_ok() {
                    let _ = raw_tx.send(());
                }
            })?;
        watcher.watch(&self.dir, notify::RecursiveMode::Recursive)?;
        let (tx, rx) = mpsc::channel(1);
        tokio::spawn(async move {
            while raw_rx.recv().await.is_some() {
                // Wait until the directory has been quiet for `quiet`.
                loop {
                    match tokio::time::timeout(quiet, raw_rx.recv()).await {
                        Ok(Some(())) => continue,
                        Ok(None) => return,
                        Err(_) => break,
                    }
                }
                if let Err(mpsc::error::TrySendError::Closed(())) = tx.try_send(()) {
                    return;
                }
            }
        });
        Ok((watcher, rx))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ROUTE: &str = "apiVersion: gatehouse.dev/v1alpha1
kind: Backend
metadata: {name: b, namespace: ns}
spec: {endpoints: [{address: 127.0.0.1, port: 9000}]}
";

    #[test]
    fn a_broken_file_keeps_its_last_good_version() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("b.yaml");
        std::fs::write(&file, ROUTE).unwrap();
        let mut src = FileSource::new(dir.path());
        let r = src.reload();
        assert!(r.diagnostics.is_empty());
        assert_eq!(r.config.backends.len(), 1);

        std::fs::write(
            &file,
            "apiVersion: gatehouse.dev/v1alpha1\nkind: Backend\nmetadata: {name: b\n",
        )
        .unwrap();
        let r = src.reload();
        assert_eq!(r.config.backends.len(), 1, "the last good version stays");
        assert_eq!(r.kept_last_good, vec![file.clone()]);
        assert!(
            r.diagnostics[0].to_string().contains("b.yaml:"),
            "{}",
            r.diagnostics[0]
        );

        std::fs::remove_file(&file).unwrap();
        assert!(
            src.reload().config.backends.is_empty(),
            "a deleted file withdraws its objects"
        );
    }

    #[test]
    fn the_same_object_in_two_files_is_reported() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("a.yaml"), ROUTE).unwrap();
        std::fs::write(dir.path().join("b.yaml"), ROUTE).unwrap();
        let r = FileSource::new(dir.path()).reload();
        assert_eq!(r.config.backends.len(), 1);
        assert_eq!(r.diagnostics.len(), 1);
        assert!(r.diagnostics[0].message.contains("more than one file"));
    }
}
