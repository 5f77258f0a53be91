//! One Parquet shard of rows, committed atomically: written to a hidden temporary file in the
//! destination folder, fsynced, renamed into place, and the folder fsynced. A visible shard is
//! always complete; a writer dropped before [`ShardWriter::close`] removes its temporary file.
//!
//! The file depends only on the rows and the metadata given: rows are buffered and cut into
//! batches and row groups by fixed rules, and nothing time- or host-dependent is written.

use std::collections::BTreeMap;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow::datatypes::Schema;

use arrow::error::ArrowError;
use parquet::arrow::ArrowWriter;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use parquet::basic::{Compression, ZstdLevel};
use parquet::errors::ParquetError;
use parquet::file::metadata::KeyValue;
use parquet::file::properties::{EnabledStatistics, WriterProperties};
use sha2::{Digest, Sha256};

use crate::write::row::{DecodeError, Row, rows_from_batch, rows_to_batch};
use crate::write::schema;

/// How shards are laid out. The defaults follow the Hugging Face Hub's expectations.
#[derive(Debug, Clone, PartialEq)]
pub struct ShardOptions {
    /// Most rows in one row group.
    pub max_row_group_rows: usize,
    /// A row group is closed once its estimated uncompressed size reaches this many bytes.
    /// The Hub uses ~100 MB; its dataset viewer fails on row groups above ~286 MiB.
    pub max_row_group_bytes: usize,
    /// Rows converted to Arrow and handed to the Parquet writer at a time (memory bound only;
    /// it does not change the file).
    pub batch_rows: usize,
    /// zstd level (zstd's own default, 3: the size/speed balance most writers use).
    pub zstd_level: i32,
}

impl Default for ShardOptions {
    fn default() -> Self {
        ShardOptions {
            max_row_group_rows: 10_000,
            max_row_group_bytes: 100_000_000,
            batch_rows: 1024,
            zstd_level: 3,
        }
    }
}

/// What a committed shard is.
#[derive(Debug, Clone, PartialEq)]
pub struct ShardSummary {
    pub path: PathBuf,
    pub rows: u64,
    pub row_groups: usize,
    /// Size of the file in bytes.
    pub bytes: u64,
    /// sha256 of the file, lower-case hex.
    pub sha256: String,
}

/// Errors of writing or reading a shard; each names the file.
#[derive(Debug, thiserror::Error)]
pub enum ShardError {
    #[error("{path}: I/O error")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: Parquet error")]
    Parquet {
        path: PathBuf,
        #[source]
        source: ParquetError,
    },
    #[error("{path}: Arrow error")]
    Arrow {
        path: PathBuf,
        #[source]
        source: ArrowError,
    },
    #[error("{path}: metadata key `{key}` is set by the shard writer; the caller gave {value:?}")]
    ReservedMetadataKey {
        path: PathBuf,
        key: String,
        value: String,
    },
    #[error("{path}: {message}")]
    Options { path: PathBuf, message: String },
    #[error("{path}: not a shard of this contract")]
    Decode {
        path: PathBuf,
        #[source]
        source: DecodeError,
    },
}

/// `<split>-<index>-of-<count>.parquet`, both numbers zero-padded to 5 digits (the Hugging Face
/// Hub convention, e.g. `train-00000-of-00003.parquet`).
pub fn shard_file_name(split: &str, index: usize, count: usize) -> String {
    format!("{split}-{index:05}-of-{count:05}.parquet")
}

/// A writer that hashes what passes through it: the Parquet writer only appends, so the hash of
/// the stream is the hash of the file.
struct HashingWriter<W> {
    inner: W,
    hasher: Sha256,
    bytes: u64,
}

impl<W: Write> Write for HashingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hasher.update(&buf[..n]);
        self.bytes += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

type FileSink = HashingWriter<BufWriter<fs_err::File>>;

/// Writes one shard. Rows go in with [`write`](Self::write); [`close`](Self::close) commits the
/// file. Dropping it unclosed (or after an error) removes the temporary file and leaves any
/// existing file at the final path untouched.
pub struct ShardWriter {
    path: PathBuf,
    temp_path: PathBuf,
    writer: Option<ArrowWriter<FileSink>>,
    options: ShardOptions,
    pending: Vec<Row>,
    group_rows: usize,
    group_bytes: usize,
    rows: u64,
    committed: bool,
}

impl std::fmt::Debug for ShardWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ShardWriter")
            .field("path", &self.path)
            .field("temp_path", &self.temp_path)
            .field("rows", &self.rows)
            .finish_non_exhaustive()
    }
}

impl ShardWriter {
    /// Start a shard at `path`. `metadata` becomes the file's key-value metadata, next to the
    /// `huggingface` features and the schema version, which the writer sets (a caller's value
    /// for those keys must equal the writer's).
    pub fn create(
        path: impl Into<PathBuf>,
        metadata: &BTreeMap<String, String>,
        options: &ShardOptions,
    ) -> Result<ShardWriter, ShardError> {
        let path = path.into();
        if options.max_row_group_rows == 0 || options.max_row_group_bytes == 0 {
            return Err(ShardError::Options {
                path,
                message: "row groups must allow at least one row and one byte".to_string(),
            });
        }
        let zstd =
            ZstdLevel::try_new(options.zstd_level).map_err(|source| ShardError::Parquet {
                path: path.clone(),
                source,
            })?;

        let mut kv = metadata.clone();
        for (key, value) in [
            (schema::META_HUGGINGFACE, schema::huggingface_metadata()),
            (
                schema::META_SCHEMA_VERSION,
                schema::SCHEMA_VERSION.to_string(),
            ),
        ] {
            match kv.get(key) {
                Some(given) if *given != value => {
                    return Err(ShardError::ReservedMetadataKey {
                        path,
                        key: key.to_string(),
                        value: given.clone(),
                    });
                }
                _ => {
                    kv.insert(key.to_string(), value);
                }
            }
        }
        if let Some(value) = kv.get(parquet::arrow::ARROW_SCHEMA_META_KEY) {
            return Err(ShardError::ReservedMetadataKey {
                path,
                key: parquet::arrow::ARROW_SCHEMA_META_KEY.to_string(),
                value: value.clone(),
            });
        }

        // The metadata goes both into the Parquet footer's key-value list (what DuckDB,
        // parquet-tools and arrow-rs read) and into the Arrow schema embedded as
        // `ARROW:schema`: pyarrow (Arrow C++), and so `datasets`, takes a file's schema
        // metadata from the embedded schema when there is one and ignores the key-value list.
        let arrow_schema = Arc::new(Schema::new_with_metadata(
            schema::arrow_schema().fields().clone(),
            kv.clone(),
        ));
        let props = WriterProperties::builder()
            .set_compression(Compression::ZSTD(zstd))
            .set_statistics_enabled(EnabledStatistics::Page)
            // Row groups are cut by `write` (by rows and estimated uncompressed bytes); the
            // writer's own limits only back that up. Its byte limit measures encoded bytes,
            // which is not what the Hub's viewer limits.
            .set_max_row_group_row_count(Some(options.max_row_group_rows))
            .set_max_row_group_bytes(None)
            // A BTreeMap: keys in sorted order, so the footer is deterministic.
            .set_key_value_metadata(Some(
                kv.into_iter().map(|(k, v)| KeyValue::new(k, v)).collect(),
            ))
            .build();

        let temp_path = super::atomic::temp_path(&path);
        let file = fs_err::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .open(&temp_path)
            .map_err(|source| ShardError::Io {
                path: path.clone(),
                source,
            })?;
        let sink = HashingWriter {
            inner: BufWriter::with_capacity(1 << 20, file),
            hasher: Sha256::new(),
            bytes: 0,
        };
        // From here on, `Drop` removes the temporary file on every early return.
        let mut shard = ShardWriter {
            path,
            temp_path,
            writer: None,
            options: options.clone(),
            pending: Vec::new(),
            group_rows: 0,
            group_bytes: 0,
            rows: 0,
            committed: false,
        };
        let writer = ArrowWriter::try_new(sink, arrow_schema, Some(props))
            .map_err(|source| shard.parquet_error(source))?;
        shard.writer = Some(writer);
        Ok(shard)
    }

    /// The final path of the shard.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Rows written so far.
    pub fn rows(&self) -> u64 {
        self.rows
    }

    fn parquet_error(&self, source: ParquetError) -> ShardError {
        match source {
            ParquetError::External(e) if e.is::<std::io::Error>() => ShardError::Io {
                path: self.path.clone(),
                source: *e.downcast::<std::io::Error>().expect("checked above"),
            },
            source => ShardError::Parquet {
                path: self.path.clone(),
                source,
            },
        }
    }

    fn writer(&mut self) -> &mut ArrowWriter<FileSink> {
        self.writer
            .as_mut()
            .expect("the Parquet writer lives until close")
    }

    /// Hand the pending rows to the Parquet writer as one batch.
    fn write_pending(&mut self) -> Result<(), ShardError> {
        if self.pending.is_empty() {
            return Ok(());
        }
        let batch = rows_to_batch(&self.pending).map_err(|source| ShardError::Arrow {
            path: self.path.clone(),
            source,
        })?;
        self.pending.clear();
        let result = self.writer().write(&batch);
        result.map_err(|e| self.parquet_error(e))
    }

    /// Append one row.
    pub fn write(&mut self, row: Row) -> Result<(), ShardError> {
        self.group_bytes += row.uncompressed_size();
        self.group_rows += 1;
        self.rows += 1;
        self.pending.push(row);
        let group_full = self.group_rows >= self.options.max_row_group_rows
            || self.group_bytes >= self.options.max_row_group_bytes;
        if group_full || self.pending.len() >= self.options.batch_rows {
            self.write_pending()?;
        }
        if group_full {
            let result = self.writer().flush();
            result.map_err(|e| self.parquet_error(e))?;
            self.group_rows = 0;
            self.group_bytes = 0;
        }
        Ok(())
    }

    /// Append rows in order.
    pub fn write_all(&mut self, rows: impl IntoIterator<Item = Row>) -> Result<(), ShardError> {
        rows.into_iter().try_for_each(|row| self.write(row))
    }

    /// Finish the file, fsync it, rename it into place (replacing any file there) and fsync the
    /// folder, so that the shard survives a crash once this returns.
    pub fn close(mut self) -> Result<ShardSummary, ShardError> {
        self.write_pending()?;
        let result = self.writer().flush();
        result.map_err(|e| self.parquet_error(e))?;
        let row_groups = self.writer().flushed_row_groups().len();
        let writer = self
            .writer
            .take()
            .expect("the Parquet writer lives until close");
        // `into_inner` writes the footer and hands back our sink.
        let sink = writer.into_inner().map_err(|e| self.parquet_error(e))?;
        let HashingWriter {
            inner,
            hasher,
            bytes,
        } = sink;
        let file = inner.into_inner().map_err(|e| ShardError::Io {
            path: self.temp_path.clone(),
            source: e.into_error(),
        })?;
        file.sync_all().map_err(|source| ShardError::Io {
            path: self.temp_path.clone(),
            source,
        })?;
        drop(file);
        fs_err::rename(&self.temp_path, &self.path).map_err(|source| ShardError::Io {
            path: self.path.clone(),
            source,
        })?;
        self.committed = true;
        let dir = match self.path.parent() {
            Some(dir) if !dir.as_os_str().is_empty() => dir.to_path_buf(),
            _ => PathBuf::from("."),
        };
        // The rename lives in the folder's entries: sync them too.
        fs_err::File::open(&dir)
            .and_then(|d| d.sync_all())
            .map_err(|source| ShardError::Io { path: dir, source })?;
        Ok(ShardSummary {
            path: self.path.clone(),
            rows: self.rows,
            row_groups,
            bytes,
            sha256: hex::encode(hasher.finalize()),
        })
    }
}

impl Drop for ShardWriter {
    fn drop(&mut self) {
        if !self.committed {
            // Nothing of an unfinished shard may stay visible. A failed removal cannot be
            // reported from `drop`; the name is hidden and carries the pid, so it never
            // passes for a shard.
            self.writer.take();
            let _ = std::fs::remove_file(&self.temp_path);
        }
    }
}

fn open_reader(path: &Path) -> Result<ParquetRecordBatchReaderBuilder<std::fs::File>, ShardError> {
    let file = fs_err::File::open(path)
        .map_err(|source| ShardError::Io {
            path: path.to_path_buf(),
            source,
        })?
        .into_file();
    ParquetRecordBatchReaderBuilder::try_new(file).map_err(|source| ShardError::Parquet {
        path: path.to_path_buf(),
        source,
    })
}

/// The key-value metadata of a Parquet file (keys without a value are left out).
pub fn read_key_value_metadata(path: &Path) -> Result<BTreeMap<String, String>, ShardError> {
    let builder = open_reader(path)?;
    Ok(builder
        .metadata()
        .file_metadata()
        .key_value_metadata()
        .into_iter()
        .flatten()
        .filter_map(|kv| kv.value.clone().map(|v| (kv.key.clone(), v)))
        .collect())
}

/// Every row of a shard, in file order; the file's schema must be the contract's.
pub fn read_rows(path: &Path) -> Result<Vec<Row>, ShardError> {
    let reader = open_reader(path)?
        .build()
        .map_err(|source| ShardError::Parquet {
            path: path.to_path_buf(),
            source,
        })?;
    let mut rows = Vec::new();
    for batch in reader {
        let batch = batch.map_err(|source| ShardError::Arrow {
            path: path.to_path_buf(),
            source,
        })?;
        rows.extend(
            rows_from_batch(&batch).map_err(|source| ShardError::Decode {
                path: path.to_path_buf(),
                source,
            })?,
        );
    }
    Ok(rows)
}
