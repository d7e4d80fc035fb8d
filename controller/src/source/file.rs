//! The file source: every YAML file of a directory, re-read when the directory changes.
//!
//! A file that does not parse or validate is reported with file, line and reason, and the
//! last good version of that file stays in force, so a broken edit never withdraws what the
//! file configured before. Deleting a file does withdraw its objects.
//!
//! The source keeps the merged configuration and updates it in place, so that a change costs
//! what the changed files hold, not what the directory holds: a file whose size and times did
//! not change is not read again, a file whose text did not change is not parsed again, and the
//! watcher says which paths changed so that only those are looked at. Each reload says which
//! objects changed ([`Changes`]).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Component, Path, PathBuf};
use std::time::{Duration, SystemTime};

use notify::Watcher as _;
use tokio::sync::mpsc;

use crate::model::{
    Changes, Config, Diagnostic, Kind, ObjectKey, Objects, Origin, config_files, load_text,
};

/// The result of reading the directory again.
#[derive(Clone, Debug, Default)]
pub struct Reload {
    /// Problems, with file and line: those of every file in force, not only of the files read
    /// this time.
    pub diagnostics: Vec<Diagnostic>,
    /// Files whose last good version is kept because the current one is bad or unreadable.
    pub kept_last_good: Vec<PathBuf>,
    /// What changed in [`FileSource::config`] since the previous reload.
    pub changes: Changes,
}

/// What a watcher saw change, for [`FileSource::reload_touched`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Touched {
    /// These paths (files or directories under the source's directory) changed.
    Paths(BTreeSet<PathBuf>),
    /// The watcher cannot tell what changed (its queue overflowed, it failed, or it saw a path
    /// it cannot place): the whole directory is read again.
    All,
}

impl Touched {
    /// Adds what `other` saw.
    pub fn merge(&mut self, other: Touched) {
        match (&mut *self, other) {
            (Touched::All, _) => {}
            (_, Touched::All) => *self = Touched::All,
            (Touched::Paths(mine), Touched::Paths(theirs)) => mine.extend(theirs),
        }
    }
}

/// A stamp younger than this is not trusted to tell a file did not change: on a file system
/// with coarse timestamps, a later write of the same length could leave the same stamp.
const RACY: Duration = Duration::from_secs(2);

/// What `stat` says of a file: while it stays the same, the file is not read again.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Stamp {
    len: u64,
    modified: SystemTime,
    /// Device and inode: a file replaced by a rename is another file.
    #[cfg(unix)]
    inode: (u64, u64),
    /// The inode change time (seconds, nanoseconds), which no one can set back.
    #[cfg(unix)]
    changed: (i64, i64),
}

impl Stamp {
    fn of(meta: &std::fs::Metadata) -> Option<Self> {
        #[cfg(unix)]
        use std::os::unix::fs::MetadataExt as _;
        Some(Self {
            len: meta.len(),
            modified: meta.modified().ok()?,
            #[cfg(unix)]
            inode: (meta.dev(), meta.ino()),
            #[cfg(unix)]
            changed: (meta.ctime(), meta.ctime_nsec()),
        })
    }

    /// Whether the stamp is old enough, at `now`, that any later write will change it.
    fn trusted(&self, now: SystemTime, racy: Duration) -> bool {
        #[cfg(unix)]
        let newest = {
            let changed = u64::try_from(self.changed.0)
                .ok()
                .zip(u32::try_from(self.changed.1).ok())
                .and_then(|(s, n)| SystemTime::UNIX_EPOCH.checked_add(Duration::new(s, n)));
            match changed {
                Some(c) => c.max(self.modified),
                None => return false,
            }
        };
        #[cfg(not(unix))]
        let newest = self.modified;
        newest.checked_add(racy).is_some_and(|t| t <= now)
    }
}

/// What the source knows of one file.
#[derive(Debug, Default)]
struct FileState {
    /// The stamp of the text last read, when it can be trusted.
    stamp: Option<Stamp>,
    /// The text last read (`None`: the file could not be read).
    text: Option<String>,
    /// The objects this file contributes.
    fragment: Config,
    /// Whether `fragment` is a version of the file without problems (a last good version).
    good: bool,
    /// Whether `fragment` is the last good version, kept over a bad or unreadable current one.
    kept: bool,
    /// The problems of the current version.
    diagnostics: Vec<Diagnostic>,
}

/// A configuration directory, the last good version of each of its files, and the
/// configuration they make together.
#[derive(Debug)]
pub struct FileSource {
    dir: PathBuf,
    files: BTreeMap<PathBuf, FileState>,
    /// The configuration in force.
    config: Config,
    /// The files defining each object, in path order: the first one's definition is in force.
    owners: BTreeMap<ObjectKey, Vec<PathBuf>>,
    /// Objects defined in more than one file.
    contested: BTreeSet<ObjectKey>,
    /// Files with problems, or whose last good version is kept.
    troubled: BTreeSet<PathBuf>,
    /// Whether the directory has been read once.
    loaded: bool,
    /// How old a stamp must be to be trusted.
    racy: Duration,
    /// Files read, over the source's life.
    reads: u64,
    /// Files parsed, over the source's life.
    parses: u64,
}

/// Where a touched path leads.
enum Place {
    /// These files may have changed.
    Files(Vec<PathBuf>),
    /// The directory must be read whole.
    Rescan,
}

impl FileSource {
    /// A source for `dir`.
    pub fn new(dir: &Path) -> Self {
        Self {
            dir: dir.to_owned(),
            files: BTreeMap::new(),
            config: Config::default(),
            owners: BTreeMap::new(),
            contested: BTreeSet::new(),
            troubled: BTreeSet::new(),
            loaded: false,
            racy: RACY,
            reads: 0,
            parses: 0,
        }
    }

    /// The directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The configuration in force: every good file, and the last good version of bad ones.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// Reads the directory again: every file is looked at (files whose stamp did not change
    /// are not read, files whose text did not change are not parsed).
    pub fn reload(&mut self) -> Reload {
        let before = (self.reads, self.parses);
        let mut changes = Changes::default();
        let files = match config_files(&self.dir) {
            Ok(f) => f,
            Err(e) => {
                // The directory itself is unreadable: keep everything as it was.
                let diag = Diagnostic {
                    file: self.dir.clone(),
                    line: 0,
                    message: format!(
                        "cannot read the directory: {e}; keeping the last good configuration"
                    ),
                };
                let mut out = self.finish(changes, before);
                out.diagnostics.insert(0, diag);
                out.kept_last_good = self.files.keys().cloned().collect();
                return out;
            }
        };
        let gone: Vec<PathBuf> = self
            .files
            .keys()
            .filter(|f| files.binary_search(f).is_err())
            .cloned()
            .collect();
        for file in gone {
            self.withdraw(&file, &mut changes);
        }
        for file in &files {
            self.look(file, &mut changes);
        }
        self.finish(changes, before)
    }

    /// Looks at `paths` only (files or directories under the directory, as a watcher reports
    /// them); reads the whole directory when a path cannot be placed, or before the first
    /// reload.
    pub fn reload_paths(&mut self, paths: &BTreeSet<PathBuf>) -> Reload {
        if !self.loaded {
            return self.reload();
        }
        let mut candidates = BTreeSet::new();
        for path in paths {
            match self.place(path) {
                Place::Files(files) => candidates.extend(files),
                Place::Rescan => {
                    tracing::debug!(path = %path.display(), "a change the file source cannot place: reading the whole directory");
                    return self.reload();
                }
            }
        }
        let before = (self.reads, self.parses);
        let mut changes = Changes::default();
        for file in &candidates {
            self.look(file, &mut changes);
        }
        self.finish(changes, before)
    }

    /// Reloads what `touched` names: [`Self::reload_paths`] or [`Self::reload`].
    pub fn reload_touched(&mut self, touched: &Touched) -> Reload {
        match touched {
            Touched::Paths(paths) => self.reload_paths(paths),
            Touched::All => self.reload(),
        }
    }

    /// The files a touched path may have changed.
    fn place(&self, path: &Path) -> Place {
        let Ok(rel) = path.strip_prefix(&self.dir) else {
            return Place::Rescan;
        };
        if rel.as_os_str().is_empty() {
            return Place::Rescan;
        }
        let mut hidden = false;
        for c in rel.components() {
            match c {
                Component::Normal(n) => hidden |= n.to_string_lossy().starts_with('.'),
                _ => return Place::Rescan,
            }
        }
        let meta = std::fs::symlink_metadata(path);
        if hidden {
            // Hidden entries are not configuration, but a hidden directory or link may stand
            // behind visible files (a Kubernetes ConfigMap volume swaps `..data`).
            return match meta {
                Ok(m) if m.is_file() => Place::Files(Vec::new()),
                _ => Place::Rescan,
            };
        }
        // What the source knows under the path (a file, or a directory's files).
        let mut files: Vec<PathBuf> = self
            .files
            .range(path.to_path_buf()..)
            .map(|(f, _)| f)
            .take_while(|f| f.starts_with(path))
            .cloned()
            .collect();
        match meta {
            Ok(m) if m.is_dir() => match config_files(path) {
                Ok(found) => files.extend(found),
                Err(_) => return Place::Rescan,
            },
            Ok(_) => {
                if path
                    .file_name()
                    .is_some_and(|n| is_config_file_name(&n.to_string_lossy()))
                {
                    files.push(path.to_owned());
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(_) => return Place::Rescan,
        }
        Place::Files(files)
    }

    /// Looks at one file of the directory: withdraws it if it is gone, reads it unless its
    /// stamp is unchanged, parses it unless its text is unchanged.
    fn look(&mut self, file: &Path, changes: &mut Changes) {
        let now = SystemTime::now();
        let meta = match std::fs::metadata(file) {
            Ok(m) if m.is_dir() => {
                self.withdraw(file, changes);
                return;
            }
            Ok(m) => Some(m),
            Err(e)
                if e.kind() == std::io::ErrorKind::NotFound
                    && std::fs::symlink_metadata(file).is_err() =>
            {
                self.withdraw(file, changes);
                return;
            }
            // Reading reports it (a dangling link, no permission).
            Err(_) => None,
        };
        let stamp = meta.as_ref().and_then(Stamp::of);
        if let (Some(stamp), Some(st)) = (stamp, self.files.get(file))
            && st.stamp == Some(stamp)
        {
            return;
        }
        let text = match std::fs::read_to_string(file) {
            Ok(t) => t,
            Err(e) => {
                self.unreadable(file, &e);
                return;
            }
        };
        self.reads += 1;
        let stamp = stamp.filter(|s| s.trusted(now, self.racy));
        if let Some(st) = self.files.get_mut(file)
            && st.text.as_deref() == Some(text.as_str())
        {
            st.stamp = stamp;
            return;
        }
        self.parses += 1;
        let mut fragment = Config::default();
        let mut diags = Vec::new();
        load_text(&mut fragment, &mut diags, file, &text);
        let st = self.files.entry(file.to_owned()).or_default();
        st.stamp = stamp;
        st.text = Some(text);
        let replace = if diags.is_empty() {
            st.good = true;
            st.kept = false;
            true
        } else if st.good {
            st.kept = true;
            for d in &mut diags {
                d.message
                    .push_str(" (the last good version of this file stays in force)");
            }
            false
        } else {
            // A file that has not been good yet: its good documents are used.
            st.kept = false;
            true
        };
        st.diagnostics = diags;
        let troubled = st.kept || !st.diagnostics.is_empty();
        if troubled {
            self.troubled.insert(file.to_owned());
        } else {
            self.troubled.remove(file);
        }
        if replace {
            self.replace(file, Some(fragment), changes);
        }
    }

    /// A file that cannot be read: it keeps what it contributes.
    fn unreadable(&mut self, file: &Path, error: &std::io::Error) {
        let st = self.files.entry(file.to_owned()).or_default();
        st.stamp = None;
        st.text = None;
        st.kept = st.good;
        st.diagnostics = vec![Diagnostic {
            file: file.to_owned(),
            line: 0,
            message: format!("cannot read: {error}"),
        }];
        self.troubled.insert(file.to_owned());
    }

    /// A file that is gone: its objects are withdrawn.
    fn withdraw(&mut self, file: &Path, changes: &mut Changes) {
        self.troubled.remove(file);
        if self.files.contains_key(file) {
            self.replace(file, None, changes);
        }
    }

    /// Puts `fragment` in force for `file` (`None`: forgets the file) and updates the merged
    /// configuration for the objects the file defined before or defines now.
    fn replace(&mut self, file: &Path, fragment: Option<Config>, changes: &mut Changes) {
        let old = match fragment {
            Some(new) => self
                .files
                .get_mut(file)
                .map(|st| std::mem::replace(&mut st.fragment, new)),
            None => self.files.remove(file).map(|st| st.fragment),
        }
        .unwrap_or_default();
        let old_keys = keys(&old);
        let new_keys = self
            .files
            .get(file)
            .map(|st| keys(&st.fragment))
            .unwrap_or_default();
        for key in &old_keys {
            if let Some(owners) = self.owners.get_mut(key) {
                owners.retain(|f| f != file);
            }
        }
        for key in &new_keys {
            let owners = self.owners.entry(key.clone()).or_default();
            if let Err(at) = owners.binary_search_by(|f| f.as_path().cmp(file)) {
                owners.insert(at, file.to_owned());
            }
        }
        let touched: BTreeSet<ObjectKey> = old_keys.into_iter().chain(new_keys).collect();
        for key in touched {
            let defined = self.owners.get(&key).map_or(0, Vec::len);
            if defined == 0 {
                self.owners.remove(&key);
            }
            if defined > 1 {
                self.contested.insert(key.clone());
            } else {
                self.contested.remove(&key);
            }
            if self.settle(&key) {
                note(changes, &key);
            }
        }
    }

    /// Puts the definition of `key` from its first file in force; whether that changed it.
    fn settle(&mut self, key: &ObjectKey) -> bool {
        let winner = self
            .owners
            .get(key)
            .and_then(|o| o.first())
            .and_then(|f| self.files.get(f))
            .map(|st| &st.fragment);
        let k = (key.namespace.clone(), key.name.clone());
        let c = &mut self.config;
        match key.kind {
            Kind::GatewayClass => settle(
                &mut c.gateway_classes,
                k,
                winner.map(|w| &w.gateway_classes),
            ),
            Kind::Gateway => settle(&mut c.gateways, k, winner.map(|w| &w.gateways)),
            Kind::HTTPRoute => settle(&mut c.http_routes, k, winner.map(|w| &w.http_routes)),
            Kind::GRPCRoute => settle(&mut c.grpc_routes, k, winner.map(|w| &w.grpc_routes)),
            Kind::ReferenceGrant => settle(
                &mut c.reference_grants,
                k,
                winner.map(|w| &w.reference_grants),
            ),
            Kind::Secret => settle(&mut c.secrets, k, winner.map(|w| &w.secrets)),
            Kind::Backend => settle(&mut c.backends, k, winner.map(|w| &w.backends)),
            Kind::SecurityPolicy => settle(
                &mut c.security_policies,
                k,
                winner.map(|w| &w.security_policies),
            ),
            Kind::GatewayPolicy => settle(
                &mut c.gateway_policies,
                k,
                winner.map(|w| &w.gateway_policies),
            ),
        }
    }

    /// The result of a reload: every file's problems, the objects defined more than once, and
    /// `changes` (everything on the first reload).
    fn finish(&mut self, mut changes: Changes, before: (u64, u64)) -> Reload {
        if !self.loaded {
            self.loaded = true;
            changes.everything = true;
        }
        if changes.everything {
            changes = Changes::everything();
        }
        let mut diagnostics = Vec::new();
        let mut kept_last_good = Vec::new();
        for file in &self.troubled {
            if let Some(st) = self.files.get(file) {
                diagnostics.extend(st.diagnostics.iter().cloned());
                if st.kept {
                    kept_last_good.push(file.clone());
                }
            }
        }
        diagnostics.extend(self.duplicates());
        tracing::debug!(
            dir = %self.dir.display(),
            read = self.reads - before.0,
            parsed = self.parses - before.1,
            everything = changes.everything,
            changed = changes.len(),
            "configuration files looked at"
        );
        Reload {
            diagnostics,
            kept_last_good,
            changes,
        }
    }

    /// A diagnostic for each definition of an object after the first, in path order.
    fn duplicates(&self) -> Vec<Diagnostic> {
        let mut dups: Vec<(&Path, &ObjectKey, &Origin)> = Vec::new();
        for key in &self.contested {
            let Some(owners) = self.owners.get(key) else {
                continue;
            };
            for file in owners.iter().skip(1) {
                if let Some(origin) = self
                    .files
                    .get(file)
                    .and_then(|st| origin_in(&st.fragment, key))
                {
                    dups.push((file, key, origin));
                }
            }
        }
        dups.sort_by(|a, b| (a.0, a.1).cmp(&(b.0, b.1)));
        dups.into_iter()
            .map(|(_, key, origin)| Diagnostic {
                file: origin.file.clone(),
                line: origin.line,
                message: format!(
                    "{key} is defined in more than one file; this definition is ignored"
                ),
            })
            .collect()
    }

    /// Watches the directory; the receiver gets what changed, one message per batch of
    /// changes (batched with a `quiet` window), for [`Self::reload_touched`]. Dropping the
    /// returned watcher stops watching.
    pub fn watch(
        &self,
        quiet: Duration,
    ) -> notify::Result<(notify::RecommendedWatcher, mpsc::Receiver<Touched>)> {
        let dir = self.dir.clone();
        let roots = roots(&self.dir);
        let (raw_tx, mut raw_rx) = mpsc::unbounded_channel::<Touched>();
        let mut watcher =
            notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
                if let Some(t) = touched(&dir, &roots, event) {
                    let _ = raw_tx.send(t);
                }
            })?;
        watcher.watch(&self.dir, notify::RecursiveMode::Recursive)?;
        let (tx, rx) = mpsc::channel(1);
        tokio::spawn(async move {
            while let Some(mut batch) = raw_rx.recv().await {
                // Wait until the directory has been quiet for `quiet`.
                loop {
                    match tokio::time::timeout(quiet, raw_rx.recv()).await {
                        Ok(Some(more)) => batch.merge(more),
                        Ok(None) => return,
                        Err(_) => break,
                    }
                }
                if tx.send(batch).await.is_err() {
                    return;
                }
            }
        });
        Ok((watcher, rx))
    }
}

/// Whether `config_files` counts a file of this name (hidden entries aside).
fn is_config_file_name(name: &str) -> bool {
    name.ends_with(".yaml") || name.ends_with(".yml")
}

/// The forms of `dir` a watcher may report paths under (it may make them absolute, or
/// resolve links).
fn roots(dir: &Path) -> Vec<PathBuf> {
    let mut roots = vec![dir.to_owned()];
    roots.extend(std::path::absolute(dir).ok());
    roots.extend(std::env::current_dir().ok().map(|d| d.join(dir)));
    roots.extend(std::fs::canonicalize(dir).ok());
    roots.dedup();
    roots
}

/// What one watcher event touched, with paths under `dir` as the source names them; `None`
/// for an event that changes nothing (a read, such as the source's own).
fn touched(dir: &Path, roots: &[PathBuf], event: notify::Result<notify::Event>) -> Option<Touched> {
    use notify::event::{AccessKind, AccessMode, EventKind};
    // An error may mean events were lost.
    let Ok(event) = event else {
        return Some(Touched::All);
    };
    if event.need_rescan() {
        return Some(Touched::All);
    }
    if let EventKind::Access(a) = event.kind
        && a != AccessKind::Close(AccessMode::Write)
    {
        return None;
    }
    if event.paths.is_empty() {
        return Some(Touched::All);
    }
    let mut paths = BTreeSet::new();
    for p in event.paths {
        match roots.iter().find_map(|r| p.strip_prefix(r).ok()) {
            Some(rel) => paths.insert(dir.join(rel)),
            None => return Some(Touched::All),
        };
    }
    Some(Touched::Paths(paths))
}

/// Records that `key` changed.
fn note(changes: &mut Changes, key: &ObjectKey) {
    let k = (key.namespace.clone(), key.name.clone());
    match key.kind {
        Kind::HTTPRoute => {
            changes.http_routes.insert(k);
        }
        Kind::GRPCRoute => {
            changes.grpc_routes.insert(k);
        }
        Kind::Backend => {
            changes.backends.insert(k);
        }
        Kind::GatewayClass
        | Kind::Gateway
        | Kind::ReferenceGrant
        | Kind::Secret
        | Kind::SecurityPolicy
        | Kind::GatewayPolicy => changes.everything = true,
    }
}

/// Sets `merged[key]` to the winning definition (or removes it); whether that changed it.
fn settle<T: Clone + PartialEq>(
    merged: &mut Objects<T>,
    key: (String, String),
    winner: Option<&Objects<T>>,
) -> bool {
    match winner.and_then(|w| w.get(&key)) {
        Some(def) => {
            if merged.get(&key) == Some(def) {
                false
            } else {
                merged.insert(key, def.clone());
                true
            }
        }
        None => merged.remove(&key).is_some(),
    }
}

/// The keys of every object of `c`.
fn keys(c: &Config) -> Vec<ObjectKey> {
    fn of<T>(out: &mut Vec<ObjectKey>, map: &Objects<T>, kind: Kind) {
        out.extend(map.keys().map(|(ns, name)| ObjectKey::new(kind, ns, name)));
    }
    let mut out = Vec::new();
    of(&mut out, &c.gateway_classes, Kind::GatewayClass);
    of(&mut out, &c.gateways, Kind::Gateway);
    of(&mut out, &c.http_routes, Kind::HTTPRoute);
    of(&mut out, &c.grpc_routes, Kind::GRPCRoute);
    of(&mut out, &c.reference_grants, Kind::ReferenceGrant);
    of(&mut out, &c.secrets, Kind::Secret);
    of(&mut out, &c.backends, Kind::Backend);
    of(&mut out, &c.security_policies, Kind::SecurityPolicy);
    of(&mut out, &c.gateway_policies, Kind::GatewayPolicy);
    out
}

/// Where `c` defines `key`.
fn origin_in<'a>(c: &'a Config, key: &ObjectKey) -> Option<&'a Origin> {
    fn of<'a, T>(map: &'a Objects<T>, key: &ObjectKey) -> Option<&'a Origin> {
        map.get(&(key.namespace.clone(), key.name.clone()))
            .map(|(_, o)| o)
    }
    match key.kind {
        Kind::GatewayClass => of(&c.gateway_classes, key),
        Kind::Gateway => of(&c.gateways, key),
        Kind::HTTPRoute => of(&c.http_routes, key),
        Kind::GRPCRoute => of(&c.grpc_routes, key),
        Kind::ReferenceGrant => of(&c.reference_grants, key),
        Kind::Secret => of(&c.secrets, key),
        Kind::Backend => of(&c.backends, key),
        Kind::SecurityPolicy => of(&c.security_policies, key),
        Kind::GatewayPolicy => of(&c.gateway_policies, key),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::NsName;

    const BACKEND: &str = "apiVersion: gatehouse.dev/v1alpha1
kind: Backend
metadata: {name: b, namespace: ns}
spec: {endpoints: [{address: 127.0.0.1, port: 9000}]}
";

    /// A document that is not valid YAML.
    const BROKEN: &str = "apiVersion: gatehouse.dev/v1alpha1\nkind: Backend\nmetadata: {name: b\n";

    fn route(name: &str, host: &str) -> String {
        format!(
            "apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {{name: {name}, namespace: ns}}
spec: {{hostnames: [{host}]}}
"
        )
    }

    fn grpc_route(name: &str, host: &str) -> String {
        format!(
            "apiVersion: gateway.networking.k8s.io/v1
kind: GRPCRoute
metadata: {{name: {name}, namespace: ns}}
spec: {{hostnames: [{host}]}}
"
        )
    }

    fn backend(name: &str, port: u16) -> String {
        format!(
            "apiVersion: gatehouse.dev/v1alpha1
kind: Backend
metadata: {{name: {name}, namespace: ns}}
spec: {{endpoints: [{{address: 127.0.0.1, port: {port}}}]}}
"
        )
    }

    fn gateway(name: &str, port: u16) -> String {
        format!(
            "apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {{name: {name}, namespace: ns}}
spec: {{gatewayClassName: gatehouse, listeners: [{{name: http, port: {port}, protocol: HTTP}}]}}
"
        )
    }

    fn docs(docs: &[String]) -> String {
        docs.join("---\n")
    }

    fn names(names: &[&str]) -> BTreeSet<NsName> {
        names
            .iter()
            .map(|n| ("ns".to_owned(), (*n).to_owned()))
            .collect()
    }

    fn key(name: &str) -> NsName {
        ("ns".to_owned(), name.to_owned())
    }

    /// What changed between two configurations, as the source should report it.
    fn diff(a: &Config, b: &Config) -> Changes {
        fn d<T: PartialEq>(a: &Objects<T>, b: &Objects<T>) -> BTreeSet<NsName> {
            a.keys()
                .chain(b.keys())
                .filter(|k| a.get(*k) != b.get(*k))
                .cloned()
                .collect()
        }
        let others = !d(&a.gateway_classes, &b.gateway_classes).is_empty()
            || !d(&a.gateways, &b.gateways).is_empty()
            || !d(&a.reference_grants, &b.reference_grants).is_empty()
            || !d(&a.secrets, &b.secrets).is_empty()
            || !d(&a.security_policies, &b.security_policies).is_empty()
            || !d(&a.gateway_policies, &b.gateway_policies).is_empty();
        if others {
            return Changes::everything();
        }
        Changes {
            http_routes: d(&a.http_routes, &b.http_routes),
            grpc_routes: d(&a.grpc_routes, &b.grpc_routes),
            backends: d(&a.backends, &b.backends),
            ..Changes::default()
        }
    }

    /// The configuration and duplicate diagnostics the fragments make when merged from
    /// scratch in path order, as the source did before it was incremental.
    fn rebuilt(src: &FileSource) -> (Config, Vec<Diagnostic>) {
        let mut config = Config::default();
        let mut diags = Vec::new();
        for st in src.files.values() {
            for (key, origin) in config.merge(st.fragment.clone()) {
                diags.push(Diagnostic {
                    file: origin.file.clone(),
                    line: origin.line,
                    message: format!(
                        "{key} is defined in more than one file; this definition is ignored"
                    ),
                });
            }
        }
        (config, diags)
    }

    fn duplicates(r: &Reload) -> Vec<Diagnostic> {
        r.diagnostics
            .iter()
            .filter(|d| d.message.contains("more than one file"))
            .cloned()
            .collect()
    }

    #[test]
    fn a_broken_file_keeps_its_last_good_version() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("b.yaml");
        std::fs::write(&file, BACKEND).unwrap();
        let mut src = FileSource::new(dir.path());
        let r = src.reload();
        assert!(r.diagnostics.is_empty());
        assert!(r.changes.everything, "the first reload changes everything");
        assert_eq!(src.config().backends.len(), 1);
        let before = src.config().clone();

        std::fs::write(
            &file,
            "apiVersion: gatehouse.dev/v1alpha1\nkind: Backend\nmetadata: {name: b\n",
        )
        .unwrap();
        let r = src.reload();
        assert_eq!(*src.config(), before, "the last good version stays");
        assert!(r.changes.is_empty(), "{:?}", r.changes);
        assert_eq!(r.kept_last_good, vec![file.clone()]);
        assert!(
            r.diagnostics[0].to_string().contains("b.yaml:"),
            "{}",
            r.diagnostics[0]
        );
        assert!(
            r.diagnostics[0]
                .message
                .contains("the last good version of this file stays in force"),
            "{}",
            r.diagnostics[0]
        );

        // Still broken, unchanged: not parsed again, still reported.
        let parses = src.parses;
        let again = src.reload();
        assert_eq!(src.parses, parses);
        assert_eq!(again.diagnostics, r.diagnostics);
        assert_eq!(again.kept_last_good, r.kept_last_good);
        assert!(again.changes.is_empty());

        std::fs::remove_file(&file).unwrap();
        let r = src.reload();
        assert!(
            src.config().backends.is_empty(),
            "a deleted file withdraws its objects"
        );
        assert_eq!(r.changes.backends, names(&["b"]));
        assert!(r.diagnostics.is_empty() && r.kept_last_good.is_empty());
    }

    #[test]
    fn a_new_file_with_problems_contributes_its_good_documents() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("r.yaml");
        let mut src = FileSource::new(dir.path());
        src.reload();

        std::fs::write(&file, docs(&[route("r1", "a.example"), BROKEN.to_owned()])).unwrap();
        let r = src.reload();
        assert_eq!(r.changes.http_routes, names(&["r1"]));
        assert!(r.kept_last_good.is_empty());
        assert_eq!(r.diagnostics.len(), 1);
        assert!(!r.diagnostics[0].message.contains("last good"));

        // Never good yet: another broken version's good documents replace the first's.
        std::fs::write(&file, docs(&[route("r2", "a.example"), BROKEN.to_owned()])).unwrap();
        let r = src.reload();
        assert_eq!(r.changes.http_routes, names(&["r1", "r2"]));
        assert!(src.config().http_routes.contains_key(&key("r2")));
        assert!(!src.config().http_routes.contains_key(&key("r1")));
        assert!(r.kept_last_good.is_empty());

        // Good at last; then broken: the good version stays.
        std::fs::write(&file, route("r2", "b.example")).unwrap();
        let r = src.reload();
        assert_eq!(r.changes.http_routes, names(&["r2"]));
        assert!(r.diagnostics.is_empty());
        std::fs::write(&file, docs(&[route("r3", "a.example"), BROKEN.to_owned()])).unwrap();
        let r = src.reload();
        assert!(r.changes.is_empty());
        assert_eq!(r.kept_last_good, vec![file]);
        assert_eq!(src.config().http_routes.len(), 1);
    }

    #[test]
    fn the_same_object_in_two_files_is_reported_and_the_first_file_wins() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("a.yaml"), BACKEND).unwrap();
        std::fs::write(dir.path().join("b.yaml"), BACKEND).unwrap();
        let mut src = FileSource::new(dir.path());
        let r = src.reload();
        assert_eq!(src.config().backends.len(), 1);
        assert_eq!(r.diagnostics.len(), 1);
        assert!(r.diagnostics[0].message.contains("more than one file"));
        assert_eq!(r.diagnostics[0].file, dir.path().join("b.yaml"));
        assert_eq!(
            src.config().backends[&key("b")].1.file,
            dir.path().join("a.yaml")
        );
    }

    #[test]
    fn duplicates_across_files_change_what_is_in_force_only_when_the_first_file_does() {
        let dir = tempfile::tempdir().unwrap();
        let (a, b, c) = (
            dir.path().join("a.yaml"),
            dir.path().join("b.yaml"),
            dir.path().join("c.yaml"),
        );
        std::fs::write(&b, route("r", "b.example")).unwrap();
        let mut src = FileSource::new(dir.path());
        src.reload();

        // A later file defining it too: reported, nothing in force changes.
        std::fs::write(&c, route("r", "c.example")).unwrap();
        let r = src.reload();
        assert!(r.changes.is_empty(), "{:?}", r.changes);
        assert_eq!(duplicates(&r).len(), 1);
        assert_eq!(duplicates(&r)[0].file, c);

        // An earlier file: it wins.
        std::fs::write(&a, route("r", "a.example")).unwrap();
        let r = src.reload();
        assert_eq!(r.changes.http_routes, names(&["r"]));
        assert_eq!(src.config().http_routes[&key("r")].1.file, a);
        assert_eq!(duplicates(&r).len(), 2);
        assert_eq!(
            duplicates(&r).iter().map(|d| &d.file).collect::<Vec<_>>(),
            vec![&b, &c]
        );

        // The later ones change: nothing in force changes.
        std::fs::write(&b, route("r", "b2.example")).unwrap();
        assert!(src.reload().changes.is_empty());

        // The winner goes: the next file's definition takes over.
        std::fs::remove_file(&a).unwrap();
        let r = src.reload();
        assert_eq!(r.changes.http_routes, names(&["r"]));
        assert_eq!(src.config().http_routes[&key("r")].1.file, b);
        assert_eq!(duplicates(&r).len(), 1);
        std::fs::remove_file(&c).unwrap();
        let r = src.reload();
        assert!(r.changes.is_empty());
        assert!(r.diagnostics.is_empty());

        // A duplicated Gateway: what is in force changes, so everything does.
        std::fs::write(&c, gateway("g", 80)).unwrap();
        assert!(src.reload().changes.everything);
        std::fs::write(&a, gateway("g", 81)).unwrap();
        let r = src.reload();
        assert!(r.changes.everything);
        assert_eq!(src.config().gateways[&key("g")].1.file, a);
    }

    #[test]
    fn changes_name_the_objects_added_modified_and_deleted() {
        let dir = tempfile::tempdir().unwrap();
        let routes = dir.path().join("routes.yaml");
        let backends = dir.path().join("backends.yaml");
        let gateways = dir.path().join("gateways.yaml");
        std::fs::write(&routes, docs(&[route("r1", "a"), route("r2", "b")])).unwrap();
        std::fs::write(&backends, docs(&[backend("b1", 1), backend("b2", 2)])).unwrap();
        std::fs::write(&gateways, gateway("g", 80)).unwrap();
        let mut src = FileSource::new(dir.path());
        assert!(src.reload().changes.everything);
        assert!(src.reload().changes.is_empty(), "nothing changed");

        // Modify one route, add one, leave one alone.
        std::fs::write(
            &routes,
            docs(&[route("r1", "a2"), route("r2", "b"), route("r3", "c")]),
        )
        .unwrap();
        let r = src.reload();
        assert_eq!(r.changes.http_routes, names(&["r1", "r3"]));
        assert!(!r.changes.everything);
        assert_eq!(r.changes.len(), 2);

        // Delete one route (the last one: the others stay where they are).
        std::fs::write(&routes, docs(&[route("r1", "a2"), route("r2", "b")])).unwrap();
        let r = src.reload();
        assert_eq!(
            r.changes,
            Changes {
                http_routes: names(&["r3"]),
                ..Changes::default()
            }
        );

        // Modify a backend.
        std::fs::write(&backends, docs(&[backend("b1", 1), backend("b2", 3)])).unwrap();
        let r = src.reload();
        assert_eq!(
            r.changes,
            Changes {
                backends: names(&["b2"]),
                ..Changes::default()
            }
        );

        // Add a GRPCRoute.
        std::fs::write(dir.path().join("grpc.yaml"), grpc_route("gr", "g")).unwrap();
        let r = src.reload();
        assert_eq!(
            r.changes,
            Changes {
                grpc_routes: names(&["gr"]),
                ..Changes::default()
            }
        );

        // A comment that moves a route changes its origin: it is reported.
        std::fs::write(
            &routes,
            format!("# moved\n{}", docs(&[route("r1", "a2"), route("r2", "b")])),
        )
        .unwrap();
        // (The first document starts at line 1 whatever comments open it.)
        assert_eq!(src.reload().changes.http_routes, names(&["r2"]));

        // Modify the gateway: everything.
        std::fs::write(&gateways, gateway("g", 81)).unwrap();
        assert_eq!(src.reload().changes, Changes::everything());

        // The same text written again: nothing.
        std::fs::write(&gateways, gateway("g", 81)).unwrap();
        assert!(src.reload().changes.is_empty());

        // Delete a file: its objects are withdrawn and named.
        std::fs::remove_file(&backends).unwrap();
        let r = src.reload();
        assert_eq!(
            r.changes,
            Changes {
                backends: names(&["b1", "b2"]),
                ..Changes::default()
            }
        );
        assert!(src.config().backends.is_empty());
    }

    #[test]
    fn only_changed_files_are_read_and_parsed() {
        let dir = tempfile::tempdir().unwrap();
        let file = |i: usize| dir.path().join(format!("r{i}.yaml"));
        for i in 0..10 {
            std::fs::write(file(i), route(&format!("r{i}"), "a.example")).unwrap();
        }
        let mut src = FileSource::new(dir.path());
        src.racy = Duration::ZERO;
        src.reload();
        assert_eq!((src.reads, src.parses), (10, 10));
        src.reload();
        assert_eq!(
            (src.reads, src.parses),
            (10, 10),
            "unchanged stamps: not read"
        );

        // A longer text: read and parsed, alone.
        std::fs::write(file(3), route("r3", "longer.example")).unwrap();
        let r = src.reload();
        assert_eq!((src.reads, src.parses), (11, 11));
        assert_eq!(r.changes.http_routes, names(&["r3"]));

        // The same text with another time: read, not parsed.
        std::fs::write(file(4), route("r4", "a.example")).unwrap();
        std::fs::File::options()
            .write(true)
            .open(file(4))
            .unwrap()
            .set_modified(SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000))
            .unwrap();
        let r = src.reload();
        assert_eq!((src.reads, src.parses), (12, 11));
        assert!(r.changes.is_empty());

        // Recent stamps are not trusted: such files are read (not parsed) every time.
        let mut careful = FileSource::new(dir.path());
        careful.reload();
        careful.reload();
        assert_eq!((careful.reads, careful.parses), (20, 10));
    }

    #[test]
    fn reloading_paths_looks_at_those_paths_only() {
        let dir = tempfile::tempdir().unwrap();
        let file = |i: usize| dir.path().join(format!("r{i}.yaml"));
        for i in 0..5 {
            std::fs::write(file(i), route(&format!("r{i}"), "a.example")).unwrap();
        }
        let mut src = FileSource::new(dir.path());
        // Before the first reload, the whole directory is read.
        let r = src.reload_paths(&BTreeSet::from([file(0)]));
        assert!(r.changes.everything);
        assert_eq!(src.config().http_routes.len(), 5);

        std::fs::write(file(1), route("r1", "b.example")).unwrap();
        std::fs::write(file(2), route("r2", "b.example")).unwrap();
        let reads = src.reads;
        let r = src.reload_paths(&BTreeSet::from([file(1)]));
        assert_eq!(src.reads, reads + 1);
        assert_eq!(r.changes.http_routes, names(&["r1"]));
        let r = src.reload_touched(&Touched::All);
        assert_eq!(r.changes.http_routes, names(&["r2"]));

        // A removed file, a file that is not configuration, an added subdirectory.
        std::fs::remove_file(file(0)).unwrap();
        std::fs::write(dir.path().join("notes.txt"), "hello").unwrap();
        std::fs::create_dir_all(dir.path().join("sub/deeper")).unwrap();
        std::fs::write(dir.path().join("sub/deeper/x.yml"), route("x", "x.example")).unwrap();
        let r = src.reload_paths(&BTreeSet::from([
            file(0),
            dir.path().join("notes.txt"),
            dir.path().join("sub"),
        ]));
        assert_eq!(r.changes.http_routes, names(&["r0", "x"]));

        // A removed subdirectory withdraws its files.
        std::fs::remove_dir_all(dir.path().join("sub")).unwrap();
        let r = src.reload_paths(&BTreeSet::from([dir.path().join("sub")]));
        assert_eq!(r.changes.http_routes, names(&["x"]));

        // Paths it cannot place make it read the whole directory: a hidden directory (a
        // ConfigMap volume's `..data`), a path elsewhere, the directory itself.
        let placeless = [
            dir.path().join("..data"),
            PathBuf::from("/elsewhere/r.yaml"),
            dir.path().to_owned(),
        ];
        for (i, path) in placeless.into_iter().enumerate() {
            std::fs::create_dir_all(dir.path().join("..data")).unwrap();
            std::fs::write(file(3), route("r3", &format!("h{i}.example"))).unwrap();
            let r = src.reload_paths(&BTreeSet::from([path.clone()]));
            assert_eq!(r.changes.http_routes, names(&["r3"]), "{}", path.display());
        }
        // A hidden file changes nothing.
        std::fs::write(file(3), route("r3", "hidden.example")).unwrap();
        std::fs::write(dir.path().join(".r3.yaml.swp"), "x").unwrap();
        let r = src.reload_paths(&BTreeSet::from([dir.path().join(".r3.yaml.swp")]));
        assert!(r.changes.is_empty());
    }

    #[test]
    fn an_unreadable_directory_keeps_everything() {
        let parent = tempfile::tempdir().unwrap();
        let dir = parent.path().join("conf");
        std::fs::create_dir(&dir).unwrap();
        std::fs::write(dir.join("r.yaml"), route("r", "a.example")).unwrap();
        let mut src = FileSource::new(&dir);
        src.reload();
        let before = src.config().clone();
        std::fs::remove_dir_all(&dir).unwrap();
        let r = src.reload();
        assert_eq!(*src.config(), before);
        assert!(r.changes.is_empty());
        assert!(
            r.diagnostics[0]
                .message
                .contains("cannot read the directory")
        );
        assert_eq!(r.kept_last_good, vec![dir.join("r.yaml")]);
    }

    #[test]
    fn config_file_names_are_those_config_files_reads() {
        let dir = tempfile::tempdir().unwrap();
        let names = [
            "a.yaml",
            "b.yml",
            "c.YAML",
            "d.yaml~",
            "e.json",
            "f.yaml.bak",
            "yaml",
            "g.tar.yml",
        ];
        for n in names {
            std::fs::write(dir.path().join(n), "").unwrap();
        }
        let read: Vec<PathBuf> = config_files(dir.path()).unwrap();
        for n in names {
            assert_eq!(
                is_config_file_name(n),
                read.contains(&dir.path().join(n)),
                "{n}"
            );
        }
    }

    /// A small deterministic generator (xorshift), for the edit sequence.
    struct Rng(u64);

    impl Rng {
        fn below(&mut self, n: usize) -> usize {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            (self.0 % n as u64) as usize
        }
    }

    #[test]
    fn a_configuration_built_by_edits_is_the_one_read_afresh() {
        const FILES: [&str; 10] = [
            "a.yaml",
            "b.yaml",
            "c.yml",
            "d.yaml",
            "e.yaml",
            "sub/f.yaml",
            "sub/g.yaml",
            "sub/deeper/h.yaml",
            "i.yaml",
            "j.yaml",
        ];
        // A small pool of objects, so that files often define the same ones.
        let object = |i: usize, variant: usize| match i {
            0..=3 => route(&format!("r{i}"), &format!("h{variant}.example")),
            4..=5 => backend(&format!("b{i}"), 9000 + u16::try_from(variant).unwrap()),
            6 => grpc_route("gr", &format!("g{variant}.example")),
            _ => gateway("g", 80 + u16::try_from(variant).unwrap()),
        };
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
        // What each file holds now (text, whether it is good) and its last good text.
        let mut current: BTreeMap<&str, (String, bool)> = BTreeMap::new();
        let mut last_good: BTreeMap<&str, String> = BTreeMap::new();
        let mut src = FileSource::new(root);
        assert!(src.reload().changes.everything);
        let mut previous = src.config().clone();
        let mut saw = (0, 0, 0);
        for step in 0..60 {
            let name = FILES[rng.below(FILES.len())];
            let path = root.join(name);
            let mut touched = path.clone();
            match rng.below(10) {
                0..=6 => {
                    let mut objects: Vec<usize> = (0..8).collect();
                    let mut doc = Vec::new();
                    for _ in 0..=rng.below(3) {
                        let o = objects.remove(rng.below(objects.len()));
                        doc.push(object(o, rng.below(3)));
                    }
                    let mut text = "# pad\n".repeat(rng.below(2)) + &docs(&doc);
                    let good = rng.below(4) != 0;
                    if !good {
                        text = docs(&[text, BROKEN.to_owned()]);
                    }
                    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
                    std::fs::write(&path, &text).unwrap();
                    if good {
                        last_good.insert(name, text.clone());
                        saw.0 += 1;
                    } else {
                        saw.1 += 1;
                    }
                    current.insert(name, (text, good));
                }
                7..=8 => {
                    let _ = std::fs::remove_file(&path);
                    current.remove(name);
                    last_good.remove(name);
                }
                _ => {
                    let _ = std::fs::remove_dir_all(root.join("sub"));
                    current.retain(|n, _| !n.starts_with("sub/"));
                    last_good.retain(|n, _| !n.starts_with("sub/"));
                    touched = root.join("sub");
                    saw.2 += 1;
                }
            }
            let r = match step % 3 {
                0 => src.reload(),
                1 => src.reload_paths(&BTreeSet::from([touched])),
                _ => src.reload_paths(&BTreeSet::from([touched.parent().unwrap().to_owned()])),
            };

            // The changes are what changed.
            assert_eq!(r.changes, diff(&previous, src.config()), "step {step}");
            previous = src.config().clone();

            // The same as merging every file's fragment from scratch.
            let (config, dups) = rebuilt(&src);
            assert_eq!(*src.config(), config, "step {step}");
            assert_eq!(duplicates(&r), dups, "step {step}");

            // The files keeping their last good version.
            let kept: Vec<PathBuf> = current
                .iter()
                .filter(|(n, (_, good))| !good && last_good.contains_key(*n))
                .map(|(n, _)| root.join(n))
                .collect::<BTreeSet<_>>()
                .into_iter()
                .collect();
            assert_eq!(r.kept_last_good, kept, "step {step}");

            // The same as a fresh source reading the directory, with the kept files' last
            // good versions in place.
            for n in current.keys().filter(|n| kept.contains(&root.join(n))) {
                std::fs::write(root.join(n), &last_good[n]).unwrap();
            }
            let mut fresh = FileSource::new(root);
            let fr = fresh.reload();
            assert_eq!(*fresh.config(), *src.config(), "step {step}");
            assert_eq!(duplicates(&fr), duplicates(&r), "step {step}");
            for n in current.keys().filter(|n| kept.contains(&root.join(n))) {
                std::fs::write(root.join(n), &current[n].0).unwrap();
            }
        }
        assert!(
            saw.0 > 10 && saw.1 > 3 && saw.2 > 0,
            "the sequence exercises good and broken edits and a removed directory: {saw:?}"
        );
        assert!(!src.config().http_routes.is_empty() || !src.config().backends.is_empty());
    }

    #[tokio::test]
    async fn the_watcher_reports_changed_paths_and_not_the_sources_own_reads() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("a.yaml"), BACKEND).unwrap();
        let mut src = FileSource::new(dir.path());
        src.reload();
        let Ok((_watcher, mut rx)) = src.watch(Duration::from_millis(50)) else {
            // No file notifications here: the control plane polls instead.
            return;
        };
        let file = dir.path().join("r.yaml");
        std::fs::write(&file, route("r", "a.example")).unwrap();
        let touched = tokio::time::timeout(Duration::from_secs(10), rx.recv())
            .await
            .unwrap()
            .unwrap();
        assert!(
            matches!(&touched, Touched::Paths(p) if p.contains(&file)),
            "{touched:?}"
        );
        let r = src.reload_touched(&touched);
        assert_eq!(r.changes.http_routes, names(&["r"]));

        // Reading every file is not a change.
        src.reload();
        let fresh = FileSource::new(dir.path()).reload();
        assert!(fresh.diagnostics.is_empty());
        let quiet = tokio::time::timeout(Duration::from_millis(500), rx.recv()).await;
        assert!(quiet.is_err(), "{quiet:?}");
    }
}
