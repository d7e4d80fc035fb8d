//! A rendered profile as a set of files: written to a directory, printed, or compared with a
//! directory (`gatehouse render --check`).

use std::collections::BTreeSet;
use std::fs;
use std::io::Write as _;
use std::os::unix::fs::{OpenOptionsExt as _, PermissionsExt as _};
use std::path::{Component, Path, PathBuf};

use crate::ProfileError;

/// One rendered file, named by its path relative to the output directory.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RenderedFile {
    /// Relative path with `/` separators, e.g. `01-namespaces.yaml` or `envoy/envoy.yaml`.
    pub name: String,
    /// The file's contents.
    pub contents: String,
}

/// A rendered profile: its files in order (the order in which they are applied or read).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rendering {
    /// The files, in order; names are unique.
    pub files: Vec<RenderedFile>,
}

/// How a directory differs from a rendering.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Difference {
    /// The rendering has this file and the directory does not.
    Missing(String),
    /// The directory has this file and the rendering does not.
    Extra(String),
    /// Both have the file, with other contents; the unified diff, directory (`-`) to
    /// rendering (`+`).
    Changed {
        /// The file.
        name: String,
        /// The unified diff.
        diff: String,
    },
}

impl Difference {
    /// The file concerned.
    pub fn name(&self) -> &str {
        match self {
            Self::Missing(n) | Self::Extra(n) | Self::Changed { name: n, .. } => n,
        }
    }
}

/// The result of comparing a directory with a rendering.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CheckReport {
    /// Every difference, by file name.
    pub differences: Vec<Difference>,
}

impl CheckReport {
    /// Whether the directory holds exactly the rendering.
    pub fn is_clean(&self) -> bool {
        self.differences.is_empty()
    }

    /// A unified-style diff of every difference: missing files as all-added, extra files as
    /// all-removed. `dir` names the directory in the headers.
    pub fn diff(&self, dir: &Path, rendering: &Rendering) -> String {
        let mut out = String::new();
        for d in &self.differences {
            match d {
                Difference::Changed { diff, .. } => out.push_str(diff),
                Difference::Missing(name) => {
                    let contents = rendering
                        .files
                        .iter()
                        .find(|f| &f.name == name)
                        .map_or("", |f| f.contents.as_str());
                    out.push_str(&unified(
                        "",
                        contents,
                        "/dev/null",
                        &format!("rendered/{name}"),
                    ));
                }
                Difference::Extra(name) => {
                    let contents = fs::read_to_string(dir.join(name)).unwrap_or_default();
                    out.push_str(&unified(
                        &contents,
                        "",
                        &dir.join(name).display().to_string(),
                        "/dev/null",
                    ));
                }
            }
        }
        out
    }

    /// One line: how many files differ, are missing, are extra.
    pub fn summary(&self) -> String {
        let count = |f: fn(&Difference) -> bool| self.differences.iter().filter(|d| f(d)).count();
        let changed = count(|d| matches!(d, Difference::Changed { .. }));
        let missing = count(|d| matches!(d, Difference::Missing(_)));
        let extra = count(|d| matches!(d, Difference::Extra(_)));
        let mut parts = Vec::new();
        let plural = |n: usize| if n == 1 { "" } else { "s" };
        if changed > 0 {
            parts.push(format!(
                "{changed} file{} differ{}",
                plural(changed),
                if changed == 1 { "s" } else { "" }
            ));
        }
        if missing > 0 {
            parts.push(format!("{missing} file{} missing", plural(missing)));
        }
        if extra > 0 {
            parts.push(format!("{extra} file{} not rendered", plural(extra)));
        }
        parts.join(", ")
    }
}

impl Rendering {
    /// All files concatenated, for stdout (`--output-dir -`). Each YAML file starts its
    /// documents with `---`, so the concatenation is one valid YAML stream.
    pub fn to_stream(&self) -> String {
        self.files.iter().map(|f| f.contents.as_str()).collect()
    }

    /// Writes every file into `dir` (created if missing), each atomically (a temporary file,
    /// synced, renamed), mode 0644. Returns the paths written. Files already in `dir` that the
    /// rendering does not have are left alone; [`Rendering::check`] reports them.
    pub fn write_to(&self, dir: &Path) -> Result<Vec<PathBuf>, ProfileError> {
        let mut written = Vec::new();
        for file in &self.files {
            let path = dir.join(safe_relative(&file.name)?);
            if let Some(parent) = path.parent() {
                fs::create_dir_all(parent)
                    .map_err(|e| ProfileError::io("create directory", parent, e))?;
            }
            write_atomic(&path, &file.contents)?;
            written.push(path);
        }
        Ok(written)
    }

    /// Compares `dir` with the rendering: every file must be there with the same bytes, and
    /// `dir` must hold no other file (hidden files, whose names start with `.`, are ignored).
    pub fn check(&self, dir: &Path) -> Result<CheckReport, ProfileError> {
        let meta = fs::metadata(dir).map_err(|e| ProfileError::io("read", dir, e))?;
        if !meta.is_dir() {
            return Err(ProfileError::io(
                "read",
                dir,
                std::io::Error::other("not a directory"),
            ));
        }
        let mut report = CheckReport::default();
        for file in &self.files {
            let path = dir.join(safe_relative(&file.name)?);
            match fs::read(&path) {
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                    report
                        .differences
                        .push(Difference::Missing(file.name.clone()));
                }
                Err(e) => return Err(ProfileError::io("read", path, e)),
                Ok(bytes) if bytes == file.contents.as_bytes() => {}
                Ok(bytes) => {
                    let old = String::from_utf8_lossy(&bytes);
                    report.differences.push(Difference::Changed {
                        name: file.name.clone(),
                        diff: unified(
                            &old,
                            &file.contents,
                            &path.display().to_string(),
                            &format!("rendered/{}", file.name),
                        ),
                    });
                }
            }
        }
        let rendered: BTreeSet<&str> = self.files.iter().map(|f| f.name.as_str()).collect();
        for name in list_files(dir)? {
            if !rendered.contains(name.as_str()) {
                report.differences.push(Difference::Extra(name));
            }
        }
        Ok(report)
    }
}

/// A unified diff with three lines of context, empty when the texts are equal.
pub(crate) fn unified(old: &str, new: &str, old_name: &str, new_name: &str) -> String {
    similar::TextDiff::from_lines(old, new)
        .unified_diff()
        .context_radius(3)
        .missing_newline_hint(true)
        .header(old_name, new_name)
        .to_string()
}

/// The files under `dir`, relative, with `/` separators, sorted; hidden entries skipped.
fn list_files(dir: &Path) -> Result<Vec<String>, ProfileError> {
    let mut out = Vec::new();
    let mut stack = vec![(dir.to_owned(), String::new())];
    while let Some((path, prefix)) = stack.pop() {
        let entries = fs::read_dir(&path).map_err(|e| ProfileError::io("read", &path, e))?;
        for entry in entries {
            let entry = entry.map_err(|e| ProfileError::io("read", &path, e))?;
            let name = entry.file_name().to_string_lossy().into_owned();
            if name.starts_with('.') {
                continue;
            }
            let rel = format!("{prefix}{name}");
            let kind = entry
                .file_type()
                .map_err(|e| ProfileError::io("read", entry.path(), e))?;
            if kind.is_dir() {
                stack.push((entry.path(), format!("{rel}/")));
            } else {
                out.push(rel);
            }
        }
    }
    out.sort();
    Ok(out)
}

/// A rendered file name as a relative path that cannot leave the output directory.
fn safe_relative(name: &str) -> Result<PathBuf, ProfileError> {
    let path = Path::new(name);
    if name.is_empty() || !path.components().all(|c| matches!(c, Component::Normal(_))) {
        return Err(ProfileError::io(
            "write",
            path,
            std::io::Error::other("a rendered file name must be a plain relative path (a bug)"),
        ));
    }
    Ok(path.to_owned())
}

/// Replaces `path` atomically: a temporary file in the same directory, mode 0644, synced,
/// then renamed over `path`.
pub fn write_atomic(path: &Path, contents: &str) -> Result<(), ProfileError> {
    let (Some(dir), Some(name)) = (path.parent(), path.file_name()) else {
        return Err(ProfileError::io(
            "write",
            path,
            std::io::Error::other("not a file path"),
        ));
    };
    let tmp = dir.join(format!(
        ".{}.tmp-{}",
        name.to_string_lossy(),
        std::process::id()
    ));
    let result = (|| -> std::io::Result<()> {
        let mut f = fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o644)
            .open(&tmp)?;
        f.set_permissions(fs::Permissions::from_mode(0o644))?;
        f.write_all(contents.as_bytes())?;
        f.sync_all()?;
        fs::rename(&tmp, path)?;
        fs::File::open(dir)?.sync_all()
    })();
    if let Err(e) = result {
        let _ = fs::remove_file(&tmp);
        return Err(ProfileError::io("write", path, e));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rendering() -> Rendering {
        Rendering {
            files: vec![
                RenderedFile {
                    name: "01-a.yaml".into(),
                    contents: "---\na: 1\nb: 2\n".into(),
                },
                RenderedFile {
                    name: "sub/c.yaml".into(),
                    contents: "c: 3\n".into(),
                },
            ],
        }
    }

    #[test]
    fn write_then_check_is_clean_and_changes_are_diffed() {
        let tmp = tempfile::tempdir().unwrap();
        let r = rendering();
        let written = r.write_to(tmp.path()).unwrap();
        assert_eq!(written.len(), 2);
        let mode = fs::metadata(tmp.path().join("sub/c.yaml"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o644);
        assert!(r.check(tmp.path()).unwrap().is_clean());

        fs::write(tmp.path().join("01-a.yaml"), "---\na: 1\nb: 3\n").unwrap();
        fs::remove_file(tmp.path().join("sub/c.yaml")).unwrap();
        fs::write(tmp.path().join("zz.yaml"), "stale\n").unwrap();
        fs::write(tmp.path().join(".hidden"), "ignored\n").unwrap();
        let report = r.check(tmp.path()).unwrap();
        assert_eq!(
            report
                .differences
                .iter()
                .map(Difference::name)
                .collect::<Vec<_>>(),
            ["01-a.yaml", "sub/c.yaml", "zz.yaml"]
        );
        assert_eq!(
            report.summary(),
            "1 file differs, 1 file missing, 1 file not rendered"
        );
        let diff = report.diff(tmp.path(), &r);
        assert!(diff.contains("-b: 3\n+b: 2\n"), "{diff}");
        assert!(diff.contains("+++ rendered/sub/c.yaml"), "{diff}");
        assert!(diff.contains("-stale"), "{diff}");
        assert!(diff.contains("@@ "), "{diff}");
    }

    #[test]
    fn names_cannot_escape_the_directory() {
        for bad in ["../x", "/etc/passwd", "", "a/../../b"] {
            let r = Rendering {
                files: vec![RenderedFile {
                    name: bad.into(),
                    contents: String::new(),
                }],
            };
            let tmp = tempfile::tempdir().unwrap();
            assert!(r.write_to(tmp.path()).is_err(), "{bad}");
        }
    }
}
