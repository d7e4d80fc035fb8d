//! Atomic writes of a set of files.
//!
//! A directory of related files (certificate, chain, key) is replaced as a whole, the way the
//! kubelet updates a mounted Secret: the files are written into a new hidden version directory,
//! then a `..data` symlink is swapped to it with one `rename`, and each visible name is a
//! symlink through `..data`. A reader (Envoy's watched directory) sees the old set or the new
//! set, never a certificate with the wrong key. Keys are created 0600 from the first byte.

use std::fs;
use std::io::Write as _;
use std::os::unix::fs::{DirBuilderExt as _, MetadataExt as _, PermissionsExt as _};
use std::path::{Path, PathBuf};

use crate::error::{CertsError, Result};

/// The symlink that points at the current version directory.
pub(crate) const DATA_LINK: &str = "..data";
const VERSION_PREFIX: &str = "..v-";

/// One file of a set.
pub(crate) struct FileSpec<'a> {
    pub(crate) name: &'a str,
    pub(crate) contents: &'a [u8],
    pub(crate) mode: u32,
}

fn write_err(path: &Path) -> impl FnOnce(std::io::Error) -> CertsError + '_ {
    move |source| CertsError::Write {
        path: path.to_owned(),
        source,
    }
}

/// Replaces the file set in `dir` (created with mode 0755 if missing) atomically. The new
/// files get the owner of the set they replace (see [`chown_current`]), so a set handed to an
/// unprivileged reader stays readable by it across rotations.
pub(crate) fn write_set(dir: &Path, files: &[FileSpec<'_>]) -> Result<()> {
    if !dir.exists() {
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o755)
            .create(dir)
            .map_err(write_err(dir))?;
    }
    // Keep the previous set's owner when it was handed to another user; a no-op chown is
    // skipped (a sandboxed controller may not be allowed the chown system call at all).
    let own = fs::metadata(dir).ok().map(|m| (m.uid(), m.gid()));
    let owner = fs::metadata(dir.join(DATA_LINK))
        .ok()
        .map(|m| (m.uid(), m.gid()))
        .filter(|o| Some(*o) != own);
    let version = dir.join(format!("{VERSION_PREFIX}{}", random_hex()?));
    let result = write_version(dir, &version, files, owner);
    if result.is_err() {
        // Leave nothing half-written behind; the old set is untouched.
        let _ = fs::remove_dir_all(&version);
    }
    result
}

fn write_version(
    dir: &Path,
    version: &Path,
    files: &[FileSpec<'_>],
    owner: Option<(u32, u32)>,
) -> Result<()> {
    fs::DirBuilder::new()
        .mode(0o755)
        .create(version)
        .map_err(write_err(version))?;
    for f in files {
        write_file(version, f, owner)?;
    }
    if let Some((uid, gid)) = owner {
        std::os::unix::fs::chown(version, Some(uid), Some(gid)).map_err(write_err(version))?;
    }
    sync_dir(version)?;

    // Swap `..data` to the new version in one rename.
    let version_name = file_name(version);
    let tmp_link = dir.join(format!("..data_tmp-{}", random_hex()?));
    std::os::unix::fs::symlink(&version_name, &tmp_link).map_err(write_err(&tmp_link))?;
    if let Err(e) = fs::rename(&tmp_link, dir.join(DATA_LINK)) {
        let _ = fs::remove_file(&tmp_link);
        return Err(write_err(dir)(e));
    }

    // Visible names point through `..data`; they only change when the set of names does.
    for f in files {
        let link = dir.join(f.name);
        let target = Path::new(DATA_LINK).join(f.name);
        if fs::read_link(&link).ok().as_deref() != Some(target.as_path()) {
            let tmp = dir.join(format!(".{}.tmp-{}", f.name, random_hex()?));
            std::os::unix::fs::symlink(&target, &tmp).map_err(write_err(&tmp))?;
            fs::rename(&tmp, &link).map_err(write_err(&link))?;
        }
    }
    sync_dir(dir)?;

    // Old versions are no longer reachable.
    if let Ok(entries) = fs::read_dir(dir) {
        for entry in entries.flatten() {
            let name = entry.file_name();
            let name = name.to_string_lossy();
            if name.starts_with(VERSION_PREFIX) && *name != *version_name {
                let _ = fs::remove_dir_all(entry.path());
            }
        }
    }
    Ok(())
}

/// Writes one file: a temporary file created with its final mode, synced, then renamed.
fn write_file(dir: &Path, f: &FileSpec<'_>, owner: Option<(u32, u32)>) -> Result<()> {
    let path = dir.join(f.name);
    let mut tmp = tempfile::Builder::new()
        .prefix(".tmp-")
        .permissions(fs::Permissions::from_mode(f.mode))
        .tempfile_in(dir)
        .map_err(write_err(dir))?;
    tmp.write_all(f.contents).map_err(write_err(&path))?;
    tmp.as_file().sync_all().map_err(write_err(&path))?;
    // The umask may have narrowed the mode at creation; set it exactly.
    fs::set_permissions(tmp.path(), fs::Permissions::from_mode(f.mode))
        .map_err(write_err(&path))?;
    if let Some((uid, gid)) = owner {
        std::os::unix::fs::chown(tmp.path(), Some(uid), Some(gid)).map_err(write_err(&path))?;
    }
    tmp.persist(&path).map_err(|e| write_err(&path)(e.error))?;
    Ok(())
}

fn sync_dir(dir: &Path) -> Result<()> {
    fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(write_err(dir))
}

fn file_name(path: &Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

fn random_hex() -> Result<String> {
    use aws_lc_rs::rand::SecureRandom;
    let mut b = [0u8; 8];
    aws_lc_rs::rand::SystemRandom::new()
        .fill(&mut b)
        .map_err(|_| CertsError::Generate(rcgen::Error::RingUnspecified))?;
    Ok(b.iter().map(|x| format!("{x:02x}")).collect())
}

/// Gives the current set of `dir` (its version directory and files) to `uid`:`gid`. Later
/// sets written by [`write_set`] keep that owner.
pub(crate) fn chown_current(dir: &Path, uid: u32, gid: u32) -> Result<()> {
    let version = fs::canonicalize(dir.join(DATA_LINK)).map_err(|source| CertsError::Read {
        path: dir.join(DATA_LINK),
        source,
    })?;
    std::os::unix::fs::chown(&version, Some(uid), Some(gid)).map_err(write_err(&version))?;
    for entry in fs::read_dir(&version)
        .map_err(write_err(&version))?
        .flatten()
    {
        std::os::unix::fs::chown(entry.path(), Some(uid), Some(gid))
            .map_err(write_err(&entry.path()))?;
    }
    Ok(())
}

/// The version directory `..data` points at, if any.
#[allow(dead_code, reason = "used by tests and by the store's listing")]
pub(crate) fn current_version(dir: &Path) -> Option<PathBuf> {
    fs::read_link(dir.join(DATA_LINK)).ok().map(|v| dir.join(v))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn swaps_the_whole_set() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("gw");
        let set = |c: &[u8], k: &[u8]| {
            write_set(
                &dir,
                &[
                    FileSpec {
                        name: "cert.pem",
                        contents: c,
                        mode: 0o644,
                    },
                    FileSpec {
                        name: "key.pem",
                        contents: k,
                        mode: 0o600,
                    },
                ],
            )
            .unwrap()
        };
        set(b"c1", b"k1");
        let v1 = current_version(&dir).unwrap();
        assert_eq!(fs::read(dir.join("cert.pem")).unwrap(), b"c1");
        assert_eq!(
            fs::metadata(dir.join("key.pem")).unwrap().mode() & 0o777,
            0o600
        );
        assert_eq!(
            fs::metadata(dir.join("cert.pem")).unwrap().mode() & 0o777,
            0o644
        );
        set(b"c2", b"k2");
        assert_eq!(fs::read(dir.join("key.pem")).unwrap(), b"k2");
        assert!(!v1.exists(), "the old version is removed");
        // Exactly: two visible links, `..data`, one version directory.
        assert_eq!(fs::read_dir(&dir).unwrap().count(), 4);

        // Handing the set to another user carries over to the next set.
        if fs::metadata(tmp.path()).unwrap().uid() == 0 {
            chown_current(&dir, 65532, 65532).unwrap();
            set(b"c3", b"k3");
            let key = fs::metadata(dir.join("key.pem")).unwrap();
            assert_eq!(
                (key.uid(), key.gid(), key.mode() & 0o777),
                (65532, 65532, 0o600)
            );
        }
    }
}
