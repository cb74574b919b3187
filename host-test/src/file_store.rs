//! The `azmi` CLI's per-user token store: the shared-cache component's `azmi-tokens` bucket
//! kept in files, so that consecutive `azmi token` processes share one token (the az CLI keeps
//! its tokens on disk for the same reason).
//!
//! * Where: `$XDG_CACHE_HOME/azmi`, else `~/.cache/azmi`; one directory per bucket, one file
//!   per key (the key's `/` written as `_`: keys are `azmi/v1/<hex>` and its lease).
//! * Who can read it: the directories are created `0700` and the files `0600`; every write
//!   goes to a temporary file in the same directory and is renamed over the old one, so a
//!   reader never sees half a token.
//! * What is trusted: a file (or directory) that is not owned by the current user, or that
//!   the group or others can read or write, is refused — treated as absent, with one warning,
//!   and replaced by the next write — never used: a token planted or readable by someone else
//!   is exactly what a cache must not serve.
//! * Compare-and-swap holds an exclusive lock on the bucket's `.lock` file while it compares
//!   and renames, so two processes cannot both take the fetch lease.

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// Files in a directory private to the current user.
#[derive(Clone, Debug)]
pub struct FileStore {
    root: PathBuf,
}

/// Why the store cannot be used (the component then keeps its own cache).
pub type StoreResult<T> = Result<T, String>;

impl FileStore {
    /// The per-user default: `$XDG_CACHE_HOME/azmi` or `$HOME/.cache/azmi`.
    pub fn default_dir() -> Option<PathBuf> {
        let base = std::env::var_os("XDG_CACHE_HOME")
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
            .or_else(|| {
                std::env::var_os("HOME")
                    .filter(|v| !v.is_empty())
                    .map(|home| PathBuf::from(home).join(".cache"))
            })?;
        Some(base.join("azmi"))
    }

    /// A store rooted at `root` (created `0700` on first write).
    pub fn new(root: PathBuf) -> Self {
        Self { root }
    }

    /// The directory of `bucket`, created private if missing, refused if not private.
    fn bucket_dir(&self, bucket: &str, create: bool) -> StoreResult<Option<PathBuf>> {
        if bucket.is_empty()
            || !bucket
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-')
        {
            return Err(format!("refusing bucket name {bucket:?}"));
        }
        let dir = self.root.join(bucket);
        if !dir.exists() {
            if !create {
                return Ok(None);
            }
            fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(&dir)
                .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
        }
        check_private(&self.root)?;
        check_private(&dir)?;
        Ok(Some(dir))
    }

    /// The value of `key`, `None` when absent; a file that is not private to this user is
    /// reported as absent (`Ok(None)`) with the reason in `refused`.
    pub fn get(
        &self,
        bucket: &str,
        key: &str,
        refused: &mut Vec<String>,
    ) -> StoreResult<Option<Vec<u8>>> {
        let Some(dir) = self.bucket_dir(bucket, false)? else {
            return Ok(None);
        };
        let path = dir.join(file_name(key)?);
        match check_private(&path) {
            Ok(()) => {}
            Err(_) if !path.exists() => return Ok(None),
            Err(why) => {
                refused.push(why);
                return Ok(None);
            }
        }
        fs::read(&path)
            .map(Some)
            .map_err(|e| format!("cannot read {}: {e}", path.display()))
    }

    /// Writes `value` at `key` atomically (temporary file + rename), `0600`.
    pub fn set(&self, bucket: &str, key: &str, value: &[u8]) -> StoreResult<()> {
        let dir = self.bucket_dir(bucket, true)?.unwrap_or_default();
        write_atomically(&dir, &file_name(key)?, value)
    }

    /// Writes `value` at `key` if it still holds `expected` (`None`: absent); `Ok(false)` when
    /// it changed. Holds the bucket's lock meanwhile.
    pub fn compare_and_set(
        &self,
        bucket: &str,
        key: &str,
        expected: Option<&[u8]>,
        value: &[u8],
    ) -> StoreResult<bool> {
        let dir = self.bucket_dir(bucket, true)?.unwrap_or_default();
        let lock = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .mode(0o600)
            .open(dir.join(".lock"))
            .map_err(|e| format!("cannot open the cache lock: {e}"))?;
        lock.lock()
            .map_err(|e| format!("cannot lock the cache: {e}"))?;
        let mut ignored = Vec::new();
        let current = self.get(bucket, key, &mut ignored)?;
        let swapped = current.as_deref() == expected;
        if swapped {
            write_atomically(&dir, &file_name(key)?, value)?;
        }
        drop(lock);
        Ok(swapped)
    }

    /// Removes `key`.
    pub fn delete(&self, bucket: &str, key: &str) -> StoreResult<()> {
        let Some(dir) = self.bucket_dir(bucket, false)? else {
            return Ok(());
        };
        match fs::remove_file(dir.join(file_name(key)?)) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e.to_string()),
            _ => Ok(()),
        }
    }

    /// Every key in `bucket`.
    pub fn keys(&self, bucket: &str) -> StoreResult<Vec<String>> {
        let Some(dir) = self.bucket_dir(bucket, false)? else {
            return Ok(Vec::new());
        };
        let mut keys: Vec<String> = fs::read_dir(&dir)
            .map_err(|e| e.to_string())?
            .filter_map(|entry| entry.ok()?.file_name().into_string().ok())
            .filter(|name| !name.starts_with('.'))
            .map(|name| name.replace('_', "/"))
            .collect();
        keys.sort();
        Ok(keys)
    }
}

/// The file name of `key`: `/` becomes `_`; anything but ASCII letters, digits, `/`, `-` and
/// `.` is refused (keys are `azmi/v1/<hex>` and `…/lease`).
fn file_name(key: &str) -> StoreResult<String> {
    let ok = !key.is_empty()
        && !key.starts_with('.')
        && key
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'/' | b'-' | b'.'));
    if ok {
        Ok(key.replace('/', "_"))
    } else {
        Err(format!("refusing key {key:?}"))
    }
}

/// Refuses `path` unless it is owned by this user and not accessible to group or others.
fn check_private(path: &Path) -> StoreResult<()> {
    let meta = fs::symlink_metadata(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let uid = fs::metadata("/proc/self")
        .map(|m| m.uid())
        .map_err(|e| format!("cannot tell the current user: {e}"))?;
    if meta.file_type().is_symlink() {
        return Err(format!(
            "{} is a symbolic link; refusing it",
            path.display()
        ));
    }
    if meta.uid() != uid {
        return Err(format!(
            "{} is owned by another user; refusing it",
            path.display()
        ));
    }
    if meta.permissions().mode() & 0o077 != 0 {
        return Err(format!(
            "{} can be read or written by other users (mode {:o}); refusing it",
            path.display(),
            meta.permissions().mode() & 0o777
        ));
    }
    Ok(())
}

/// Writes `value` to `dir/name` through a private temporary file and a rename.
fn write_atomically(dir: &Path, name: &str, value: &[u8]) -> StoreResult<()> {
    let temp = dir.join(format!(".{name}.{}.tmp", std::process::id()));
    let result = (|| {
        let mut file: File = OpenOptions::new()
            .create(true)
            .truncate(true)
            .write(true)
            .mode(0o600)
            .open(&temp)?;
        file.set_permissions(fs::Permissions::from_mode(0o600))?;
        file.write_all(value)?;
        file.sync_all()?;
        fs::rename(&temp, dir.join(name))
    })();
    if result.is_err() {
        let _ = fs::remove_file(&temp);
    }
    result.map_err(|e| format!("cannot write the token cache in {}: {e}", dir.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scratch(name: &str) -> FileStore {
        let dir =
            std::env::temp_dir().join(format!("azmi-file-store-{name}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        FileStore::new(dir)
    }

    #[test]
    fn values_round_trip_in_private_files() {
        let store = scratch("round-trip");
        store.set("azmi-tokens", "azmi/v1/abc", b"value").unwrap();
        let mut refused = Vec::new();
        assert_eq!(
            store
                .get("azmi-tokens", "azmi/v1/abc", &mut refused)
                .unwrap(),
            Some(b"value".to_vec())
        );
        let file = store.root.join("azmi-tokens").join("azmi_v1_abc");
        assert_eq!(
            fs::metadata(&file).unwrap().permissions().mode() & 0o777,
            0o600
        );
        assert_eq!(
            fs::metadata(store.root.join("azmi-tokens"))
                .unwrap()
                .permissions()
                .mode()
                & 0o777,
            0o700
        );
        assert_eq!(store.keys("azmi-tokens").unwrap(), vec!["azmi/v1/abc"]);
    }

    #[test]
    fn a_file_others_can_read_is_refused_not_served() {
        let store = scratch("world-readable");
        store.set("azmi-tokens", "azmi/v1/abc", b"secret").unwrap();
        let file = store.root.join("azmi-tokens").join("azmi_v1_abc");
        fs::set_permissions(&file, fs::Permissions::from_mode(0o644)).unwrap();
        let mut refused = Vec::new();
        assert_eq!(
            store
                .get("azmi-tokens", "azmi/v1/abc", &mut refused)
                .unwrap(),
            None
        );
        assert!(refused[0].contains("other users"), "{refused:?}");
        // The next write replaces it with a private file.
        store.set("azmi-tokens", "azmi/v1/abc", b"new").unwrap();
        assert_eq!(
            fs::metadata(&file).unwrap().permissions().mode() & 0o777,
            0o600
        );
    }

    #[test]
    fn a_shared_cache_directory_is_refused() {
        let store = scratch("open-dir");
        store.set("azmi-tokens", "azmi/v1/abc", b"secret").unwrap();
        fs::set_permissions(
            store.root.join("azmi-tokens"),
            fs::Permissions::from_mode(0o777),
        )
        .unwrap();
        let error = store
            .get("azmi-tokens", "azmi/v1/abc", &mut Vec::new())
            .unwrap_err();
        assert!(error.contains("other users"), "{error}");
    }

    #[test]
    fn compare_and_set_writes_only_over_the_expected_value() {
        let store = scratch("cas");
        assert!(store.compare_and_set("b", "k", None, b"one").unwrap());
        assert!(!store.compare_and_set("b", "k", None, b"two").unwrap());
        assert!(
            store
                .compare_and_set("b", "k", Some(b"one"), b"two")
                .unwrap()
        );
        assert_eq!(
            store.get("b", "k", &mut Vec::new()).unwrap(),
            Some(b"two".to_vec())
        );
    }

    #[test]
    fn odd_keys_and_buckets_are_refused() {
        let store = scratch("names");
        assert!(store.set("azmi-tokens", "../../etc/passwd", b"x").is_err());
        assert!(store.set("../x", "k", b"x").is_err());
        assert!(store.set("azmi-tokens", ".lock", b"x").is_err());
    }
}
