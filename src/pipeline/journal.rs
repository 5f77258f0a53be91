//! The output folder's bookkeeping: the lock, the settings the output was made with, and one record
//! per committed unit, so that an interrupted run resumes where it stopped.
//!
//! Layout (besides the variants' shard folders):
//! ```text
//! <out>/.refaug/settings.json        what the output is made from (refused if it changes, unless --force)
//! <out>/.refaug/lock-<i>-of-<N>      held while worker i of N runs (a second run is refused)
//! <out>/.refaug/embed-lock-<i>-of-<N>   held while `refaug embed`'s worker i of N runs
//! <out>/.refaug/units/<split>-NNNNN.json   written after every variant's shard of that unit is in place
//! ```
//! A unit counts as done only when its record exists; a crash between a shard's rename and the record
//! redoes the unit, which rewrites the same bytes.

use std::collections::BTreeMap;
use std::fs::File;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::write::atomic::remove_stale_temps;
pub use crate::write::atomic::write_atomic;

/// Why the output folder cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum JournalError {
    #[error(
        "{path} is locked by another refaug run on the same output (worker {worker}); wait for it or use another --out \
         (workers of one output must share one --shard count)"
    )]
    Locked { path: PathBuf, worker: String },
    #[error(
        "{path}: the output was made with other settings ({changed}); refusing to mix them. Use another --out, or --force to discard the existing shards"
    )]
    SettingsChanged { path: PathBuf, changed: String },
    #[error("{path}: unreadable refaug record: {source}")]
    BadRecord {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
    #[error(transparent)]
    Io(#[from] std::io::Error),
}

/// One image that could not be processed, with the refs that therefore have no row.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ImageFailure {
    pub image_id: i64,
    pub path: String,
    /// The variant whose detector failed, or `None` when the image itself could not be read.
    pub variant: Option<String>,
    pub reason: String,
    pub ref_ids: Vec<i64>,
}

/// One committed shard file of one variant.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ShardRecord {
    pub file: String,
    pub rows: u64,
    pub bytes: u64,
    pub sha256: String,
}

/// A committed unit: its shard in every variant and the images that failed in it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UnitRecord {
    pub split: String,
    pub shard: usize,
    pub shard_count: usize,
    pub images: usize,
    /// Refs of the unit's images (rows written plus refs of failed images).
    pub refs: u64,
    pub shards: BTreeMap<String, ShardRecord>,
    pub failures: Vec<ImageFailure>,
    /// The ONNX Runtime version and execution provider that made the unit's boxes.
    pub onnxruntime: String,
    pub execution_provider: String,
}

/// An output folder opened for one worker: locked, settings checked.
#[derive(Debug)]
pub struct OutputDir {
    root: PathBuf,
    // Held for the lifetime of the run; the OS releases it if the process dies.
    _lock: File,
}

fn state_dir(root: &Path) -> PathBuf {
    root.join(".refaug")
}

/// Takes the exclusive lock of `path` without waiting; `Ok(None)` when another process holds it.
fn try_lock(path: &Path) -> Result<Option<File>, JournalError> {
    let file = fs_err::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(path)?
        .into_parts()
        .0;
    match file.try_lock() {
        Ok(()) => Ok(Some(file)),
        Err(std::fs::TryLockError::WouldBlock) => Ok(None),
        Err(std::fs::TryLockError::Error(e)) => Err(e.into()),
    }
}

/// The worker count of a lock file name `lock-<i>-of-<N>`.
fn lock_count(name: &str) -> Option<&str> {
    name.strip_prefix("lock-")?
        .split_once("-of-")
        .map(|(_, n)| n)
}

/// The lock `refaug embed`'s worker `worker` (`"i-of-N"`) holds on an output: refused while
/// the same worker embeds, while an embed worker of another count does (they would write the
/// same shards), or while any `refaug run` worker writes the proposal shards embed reads.
/// Released when the returned file is dropped or the process dies.
pub fn lock_embed(root: &Path, worker: &str) -> Result<File, JournalError> {
    const PREFIX: &str = "embed-";
    let state = state_dir(root);
    fs_err::create_dir_all(&state)?;
    let own = format!("{PREFIX}lock-{worker}");
    let lock_path = state.join(&own);
    let Some(lock) = try_lock(&lock_path)? else {
        return Err(JournalError::Locked {
            path: lock_path,
            worker: worker.to_string(),
        });
    };
    let count = lock_count(&own[PREFIX.len()..]).unwrap_or("1").to_string();
    for e in fs_err::read_dir(&state)? {
        let name = e?.file_name().to_string_lossy().into_owned();
        let other_embed = name
            .strip_prefix(PREFIX)
            .and_then(lock_count)
            .is_some_and(|n| n != count);
        if (other_embed || lock_count(&name).is_some()) && try_lock(&state.join(&name))?.is_none() {
            return Err(JournalError::Locked {
                worker: name
                    .trim_start_matches(PREFIX)
                    .trim_start_matches("lock-")
                    .to_string(),
                path: state.join(name),
            });
        }
    }
    Ok(lock)
}

impl OutputDir {
    /// Creates or reopens `root` for worker `worker` (`"i-of-N"`), refusing a concurrent run of the
    /// same worker and an output made with other `settings` (unless `force`, which removes the old
    /// records and every `*.parquet` under `variant_dirs`).
    pub fn open(
        root: &Path,
        worker: &str,
        settings: &serde_json::Value,
        force: bool,
        variant_dirs: &[String],
    ) -> Result<OutputDir, JournalError> {
        let state = state_dir(root);
        fs_err::create_dir_all(state.join("units"))?;
        let lock_path = state.join(format!("lock-{worker}"));
        let Some(lock) = try_lock(&lock_path)? else {
            return Err(JournalError::Locked {
                path: lock_path,
                worker: worker.to_string(),
            });
        };
        // Workers of one partition own disjoint units; a run partitioned otherwise (a plain run
        // beside `--shard 0/2`) would write the same units at the same time.
        let count = lock_count(&format!("lock-{worker}"))
            .unwrap_or("1")
            .to_string();
        for e in fs_err::read_dir(&state)? {
            let name = e?.file_name().to_string_lossy().into_owned();
            // `refaug embed` reads the shards a run rewrites.
            let embedding = name.starts_with("embed-lock-");
            if !embedding && lock_count(&name).is_none_or(|n| n == count) {
                continue;
            }
            let other = state.join(&name);
            if try_lock(&other)?.is_none() {
                return Err(JournalError::Locked {
                    worker: name.trim_start_matches("lock-").to_string(),
                    path: other,
                });
            }
        }
        for dir in [state.clone(), state.join("units"), root.to_path_buf()]
            .into_iter()
            .chain(variant_dirs.iter().map(|v| root.join(v)))
        {
            remove_stale_temps(&dir)?;
        }

        let settings_path = state.join("settings.json");
        let wanted = serde_json::to_vec_pretty(settings).expect("settings serialise");
        if settings_path.exists() {
            let old_bytes = fs_err::read(&settings_path)?;
            let old: serde_json::Value =
                serde_json::from_slice(&old_bytes).map_err(|source| JournalError::BadRecord {
                    path: settings_path.clone(),
                    source,
                })?;
            if &old != settings {
                if !force {
                    return Err(JournalError::SettingsChanged {
                        path: settings_path,
                        changed: changed_keys(&old, settings),
                    });
                }
                clear_outputs(root, variant_dirs)?;
            }
        }
        write_atomic(&settings_path, &wanted)?;
        Ok(OutputDir {
            root: root.to_path_buf(),
            _lock: lock,
        })
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    fn unit_path(&self, split: &str, shard: usize) -> PathBuf {
        state_dir(&self.root)
            .join("units")
            .join(format!("{split}-{shard:05}.json"))
    }

    /// The record of a committed unit, if any.
    pub fn committed(&self, split: &str, shard: usize) -> Result<Option<UnitRecord>, JournalError> {
        read_record(&self.unit_path(split, shard))
    }

    /// Marks a unit committed (after all its shards are in place).
    pub fn commit(&self, record: &UnitRecord) -> Result<(), JournalError> {
        let bytes = serde_json::to_vec_pretty(record).expect("record serialises");
        write_atomic(&self.unit_path(&record.split, record.shard), &bytes)?;
        Ok(())
    }
}

/// Every committed unit record under `root`, in file-name order (split, then shard).
pub fn committed_units(root: &Path) -> Result<Vec<UnitRecord>, JournalError> {
    let dir = state_dir(root).join("units");
    let mut paths: Vec<PathBuf> = match fs_err::read_dir(&dir) {
        Ok(entries) => entries
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "json"))
            .collect(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
        Err(e) => return Err(e.into()),
    };
    paths.sort();
    let mut out = Vec::new();
    for p in paths {
        if let Some(r) = read_record(&p)? {
            out.push(r);
        }
    }
    Ok(out)
}

/// The settings an output folder was made with.
pub fn read_settings(root: &Path) -> Result<Option<serde_json::Value>, JournalError> {
    read_json(&state_dir(root).join("settings.json"))
}

fn read_record(path: &Path) -> Result<Option<UnitRecord>, JournalError> {
    read_json(path)
}

/// A JSON file of refaug's bookkeeping, `None` when it does not exist.
pub fn read_json<T: serde::de::DeserializeOwned>(path: &Path) -> Result<Option<T>, JournalError> {
    match fs_err::read(path) {
        Ok(b) => serde_json::from_slice(&b)
            .map(Some)
            .map_err(|source| JournalError::BadRecord {
                path: path.to_path_buf(),
                source,
            }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e.into()),
    }
}

fn clear_outputs(root: &Path, variant_dirs: &[String]) -> std::io::Result<()> {
    let units = state_dir(root).join("units");
    if units.exists() {
        fs_err::remove_dir_all(&units)?;
    }
    fs_err::create_dir_all(&units)?;
    for v in variant_dirs {
        let dir = root.join(v);
        if !dir.is_dir() {
            continue;
        }
        for e in fs_err::read_dir(&dir)? {
            let p = e?.path();
            if p.extension().is_some_and(|x| x == "parquet")
                || p.file_name().is_some_and(|n| n == "manifest.json")
            {
                fs_err::remove_file(&p)?;
            }
        }
    }
    Ok(())
}

/// The top-level keys whose values differ, for the refusal message.
fn changed_keys(old: &serde_json::Value, new: &serde_json::Value) -> String {
    match (old.as_object(), new.as_object()) {
        (Some(a), Some(b)) => {
            let mut keys: Vec<&String> = a.keys().chain(b.keys()).collect();
            keys.sort();
            keys.dedup();
            let changed: Vec<String> = keys
                .into_iter()
                .filter(|k| a.get(*k) != b.get(*k))
                .map(|k| k.to_string())
                .collect();
            changed.join(", ")
        }
        _ => "everything".to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn second_open_of_the_same_worker_is_refused_and_lock_released_on_drop() {
        let dir = tempfile::tempdir().unwrap();
        let s = json!({"a": 1});
        let first = OutputDir::open(dir.path(), "0-of-2", &s, false, &[]).unwrap();
        let err = OutputDir::open(dir.path(), "0-of-2", &s, false, &[]).unwrap_err();
        assert!(matches!(err, JournalError::Locked { .. }), "{err}");
        // Another worker of the same partition may work beside it; a run partitioned otherwise
        // may not (it would write the same units).
        let second = OutputDir::open(dir.path(), "1-of-2", &s, false, &[]).unwrap();
        let err = OutputDir::open(dir.path(), "0-of-1", &s, false, &[]).unwrap_err();
        assert!(matches!(err, JournalError::Locked { .. }), "{err}");
        drop((first, second));
        OutputDir::open(dir.path(), "0-of-1", &s, false, &[]).unwrap();
    }

    #[test]
    fn changed_settings_are_refused_unless_forced() {
        let dir = tempfile::tempdir().unwrap();
        drop(
            OutputDir::open(
                dir.path(),
                "0-of-1",
                &json!({"model": "aa", "t": 0.1}),
                false,
                &[],
            )
            .unwrap(),
        );
        fs_err::create_dir_all(dir.path().join("yolo")).unwrap();
        fs_err::write(dir.path().join("yolo/train-00000-of-00001.parquet"), b"x").unwrap();
        let err = OutputDir::open(
            dir.path(),
            "0-of-1",
            &json!({"model": "bb", "t": 0.1}),
            false,
            &[],
        )
        .unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains("model") && !msg.contains(" t,"), "{msg}");
        OutputDir::open(
            dir.path(),
            "0-of-1",
            &json!({"model": "bb", "t": 0.1}),
            true,
            &["yolo".into()],
        )
        .unwrap();
        assert!(
            !dir.path()
                .join("yolo/train-00000-of-00001.parquet")
                .exists()
        );
    }

    #[test]
    fn unit_records_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let out = OutputDir::open(dir.path(), "0-of-1", &json!({}), false, &[]).unwrap();
        assert_eq!(out.committed("train", 0).unwrap(), None);
        let rec = UnitRecord {
            split: "train".into(),
            shard: 0,
            shard_count: 2,
            images: 3,
            refs: 5,
            shards: BTreeMap::from([(
                "yolo".to_string(),
                ShardRecord {
                    file: "train-00000-of-00002.parquet".into(),
                    rows: 5,
                    bytes: 10,
                    sha256: "ab".into(),
                },
            )]),
            failures: vec![],
            onnxruntime: "1.31.1".into(),
            execution_provider: "CPUExecutionProvider".into(),
        };
        out.commit(&rec).unwrap();
        assert_eq!(out.committed("train", 0).unwrap(), Some(rec.clone()));
        assert_eq!(committed_units(dir.path()).unwrap(), vec![rec]);
    }
}
