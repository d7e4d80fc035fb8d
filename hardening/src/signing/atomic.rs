//! Atomic file writes: a temporary file in the same directory, created with its final mode,
//! synced, then renamed over the destination, and the directory synced.

use std::fs;
use std::io::Write as _;
use std::os::unix::fs::PermissionsExt as _;
use std::path::Path;

use super::error::SigningError;

/// What to do when the destination already exists.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Existing {
    /// Replace it.
    Replace,
    /// Fail with [`SigningError::Exists`] and leave it alone.
    Keep,
}

/// Writes `contents` to `path` with `mode`, atomically: a reader sees the old file or the new
/// one, never a part. With [`Existing::Keep`] an existing file is an error (checked at the
/// rename, so two writers cannot both win).
pub(crate) fn write(
    path: &Path,
    contents: &[u8],
    mode: u32,
    existing: Existing,
) -> Result<(), SigningError> {
    let write_err = |source| SigningError::Write {
        path: path.to_owned(),
        source,
    };
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let mut tmp = tempfile::Builder::new()
        .prefix(".gatehouse-tmp-")
        .permissions(fs::Permissions::from_mode(mode))
        .tempfile_in(dir)
        .map_err(write_err)?;
    // The umask may have narrowed the mode at creation; set it exactly.
    fs::set_permissions(tmp.path(), fs::Permissions::from_mode(mode)).map_err(write_err)?;
    tmp.write_all(contents).map_err(write_err)?;
    tmp.as_file().sync_all().map_err(write_err)?;
    match existing {
        Existing::Replace => {
            tmp.persist(path).map_err(|e| write_err(e.error))?;
        }
        Existing::Keep => {
            tmp.persist_noclobber(path).map_err(|e| {
                if e.error.kind() == std::io::ErrorKind::AlreadyExists {
                    SigningError::Exists {
                        path: path.to_owned(),
                    }
                } else {
                    write_err(e.error)
                }
            })?;
        }
    }
    fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|source| SigningError::Write {
            path: dir.to_owned(),
            source,
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::MetadataExt as _;

    #[test]
    fn writes_with_the_mode_and_refuses_to_clobber_when_asked() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("k");
        write(&p, b"one", 0o600, Existing::Keep).unwrap();
        assert_eq!(fs::metadata(&p).unwrap().mode() & 0o777, 0o600);
        let err = write(&p, b"two", 0o600, Existing::Keep).unwrap_err();
        assert!(matches!(err, SigningError::Exists { .. }), "{err}");
        assert_eq!(fs::read(&p).unwrap(), b"one");
        write(&p, b"three", 0o644, Existing::Replace).unwrap();
        assert_eq!(fs::read(&p).unwrap(), b"three");
        assert_eq!(fs::metadata(&p).unwrap().mode() & 0o777, 0o644);
        // No temporary file is left behind.
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1);
    }
}
