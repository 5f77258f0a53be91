//! Files that appear whole or not at all: written under a hidden temporary name in the same
//! folder, fsynced, renamed, the folder fsynced. A kill -9 can leave a temporary behind; the next
//! run removes those of dead writers.

use std::io::Write;
use std::path::{Path, PathBuf};

/// The hidden temporary name of a file while it is written: `.<name>.tmp-<pid>` in the same
/// folder, so the final rename never crosses file systems, readers globbing `*.parquet` never see
/// it, and a later run can tell a dead writer's leftovers (see [`remove_stale_temps`]).
pub fn temp_path(path: &Path) -> PathBuf {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    path.with_file_name(format!(".{name}.tmp-{}", std::process::id()))
}

/// The writer's process id of a [`temp_path`] name, if `name` is one.
fn temp_owner(name: &str) -> Option<u32> {
    let (stem, pid) = name.strip_prefix('.')?.rsplit_once(".tmp-")?;
    (!stem.is_empty()).then_some(())?;
    pid.parse().ok()
}

/// Removes the temporaries of writers that are no longer running (a kill -9 between create and
/// rename leaves one) from `dir`; a live process's temporaries (another worker's) are left alone.
/// Returns how many were removed.
pub fn remove_stale_temps(dir: &Path) -> std::io::Result<usize> {
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(0),
        Err(e) => return Err(e),
    };
    let mut removed = 0;
    for e in entries {
        let e = e?;
        let Some(pid) = e.file_name().to_str().and_then(temp_owner) else {
            continue;
        };
        let alive = pid == std::process::id() || Path::new(&format!("/proc/{pid}")).exists();
        if !alive && e.file_type()?.is_file() {
            fs_err::remove_file(e.path())?;
            removed += 1;
        }
    }
    Ok(removed)
}

/// Writes `bytes` to `path` through a temporary file in the same folder: fsync, rename, fsync the
/// folder. A reader sees the old file or the new one, never a part.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let tmp = temp_path(path);
    let result = (|| {
        let mut f = fs_err::File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        fs_err::rename(&tmp, path)?;
        fs_err::File::open(dir)?.sync_all()
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn temp_names_carry_their_writer() {
        let p = temp_path(Path::new("/x/train-00000-of-00001.parquet"));
        let name = p.file_name().unwrap().to_str().unwrap();
        assert_eq!(temp_owner(name), Some(std::process::id()));
        assert_eq!(temp_owner("train-00000-of-00001.parquet"), None);
        assert_eq!(temp_owner(".tmp-12"), None);
        assert_eq!(temp_owner(".a.tmp-x"), None);
    }

    #[test]
    fn only_dead_writers_temporaries_are_removed() {
        let dir = tempfile::tempdir().unwrap();
        let dead = dir.path().join(".a.parquet.tmp-4999999");
        let mine = temp_path(&dir.path().join("b.parquet"));
        let other = dir.path().join("c.parquet");
        for p in [&dead, &mine, &other] {
            std::fs::write(p, b"x").unwrap();
        }
        assert_eq!(remove_stale_temps(dir.path()).unwrap(), 1);
        assert!(!dead.exists() && mine.exists() && other.exists());
    }
}
