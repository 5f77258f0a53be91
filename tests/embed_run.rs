//! `refaug embed` end to end on the bundled sample with the fixture detector and encoder:
//! the embeddings equal an independent NumPy computation (`tests/python/embed_check.py`), the
//! files do not depend on batch size or threads, a second run resumes (skips), and a shard lost
//! mid-write is redone byte for byte. No test here needs `../shared`.

mod output_fixture;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn manifest(dir: &Path) -> PathBuf {
    let r = root();
    let text = format!(
        r#"[dataset]
kind = "refcocog"
split_by = "umd"
annotations = "{a}"
images = "{i}"
# val and test only: a few images keep the debug-build test short.
splits = ["val", "test"]

[[variant]]
name = "yolo"
detector = "{d}"

[output]
dir = "{o}"
images_per_shard = 2

[embed]
encoder = "{e}"
"#,
        a = r.join("sample/refcocog/annotations").display(),
        i = r.join("sample/refcocog/images").display(),
        d = r.join("detectors/fixture-ultralytics.toml").display(),
        e = r.join("encoders/fixture-clip.toml").display(),
        o = dir.join("out").display(),
    );
    let path = dir.join("data-manifest.toml");
    std::fs::write(&path, text).unwrap();
    path
}

fn refaug(args: &[&str]) -> (i32, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_refaug"))
        .args(args)
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.code().unwrap_or(-1), text)
}

/// Every embedding shard's bytes by file name.
/// Rewrites the Parquet file at `path` with the same rows and its key-value metadata `key` set to
/// `value`.
fn restamp(path: &Path, key: &str, value: &str) {
    use parquet::arrow::ArrowWriter;
    use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
    use parquet::file::{metadata::KeyValue, properties::WriterProperties};
    let mut meta = refaug::write::shard::read_key_value_metadata(path).unwrap();
    assert!(meta.contains_key(key), "{key} not in {meta:?}");
    meta.insert(key.to_string(), value.to_string());
    meta.remove("ARROW:schema");
    let builder =
        ParquetRecordBatchReaderBuilder::try_new(std::fs::File::open(path).unwrap()).unwrap();
    let schema = builder.schema().clone();
    let batches: Vec<_> = builder.build().unwrap().map(Result::unwrap).collect();
    // Parquet's key-value metadata (what refaug reads), apart from the Arrow schema's.
    let kv = meta.into_iter().map(|(k, v)| KeyValue::new(k, v)).collect();
    let props = WriterProperties::builder()
        .set_key_value_metadata(Some(kv))
        .build();
    let file = std::fs::File::create(path).unwrap();
    let mut w = ArrowWriter::try_new(file, schema, Some(props)).unwrap();
    for b in batches {
        w.write(&b).unwrap();
    }
    w.close().unwrap();
}

fn shards(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "parquet"))
        .map(|p| {
            (
                p.file_name().unwrap().to_string_lossy().into_owned(),
                std::fs::read(&p).unwrap(),
            )
        })
        .collect()
}

#[test]
fn embed_matches_numpy_is_batch_invariant_and_resumes() {
    let dir = tempfile::tempdir().unwrap();
    let m = manifest(dir.path());
    let m = m.to_str().unwrap();
    let (code, text) = refaug(&["run", "--manifest", m, "--quiet"]);
    assert_eq!(code, 0, "{text}");

    let emb_dir = dir.path().join("out/yolo/embeddings");
    let (code, text) = refaug(&[
        "embed",
        "--manifest",
        m,
        "--batch-size",
        "1",
        "--threads",
        "1",
    ]);
    assert_eq!(code, 0, "{text}");
    let first = shards(&emb_dir);
    let n = first.len();
    assert!(n >= 2, "{text}");
    assert!(text.contains(&format!("{n} shards written")), "{text}");

    // Same bytes at another batch size and thread count.
    let (code, text) = refaug(&[
        "embed",
        "--manifest",
        m,
        "--force",
        "--batch-size",
        "5",
        "--threads",
        "2",
    ]);
    assert_eq!(code, 0, "{text}");
    assert_eq!(
        shards(&emb_dir),
        first,
        "batch size / threads changed the files"
    );

    // A second run has nothing to do.
    let (code, text) = refaug(&["embed", "--manifest", m]);
    assert_eq!(code, 0, "{text}");
    assert!(
        text.contains(&format!("0 shards written, {n} already done")),
        "{text}"
    );

    // The next run redoes exactly one shard, to the first run's bytes.
    let redo_one_shard = || {
        let (code, text) = refaug(&["embed", "--manifest", m]);
        assert_eq!(code, 0, "{text}");
        assert!(
            text.contains(&format!("1 shards written, {} already done", n - 1)),
            "{text}"
        );
        assert_eq!(shards(&emb_dir), first);
    };
    let out = dir.path().join("out");
    let out = out.to_str().unwrap();

    // A shard written under another version of the embeddings contract (an older refaug) is
    // not taken as done: it is rewritten, to the current bytes.
    let old = first.keys().next().unwrap().clone();
    restamp(&emb_dir.join(&old), "refaug.schema_version", "0.9.0");
    assert_ne!(shards(&emb_dir), first);
    let (code, text) = refaug(&["validate", out]);
    assert_eq!(code, 1, "{text}");
    assert!(
        text.contains(&format!(
            "{old}: metadata `refaug.schema_version` is \"0.9.0\", expected \"1.0.0\": written \
             under another version of the embeddings contract (`refaug embed` rewrites it)"
        )),
        "{text}"
    );
    redo_one_shard();

    // validate refuses a variant whose shards were made with different filters (or encoders).
    let odd = first.keys().nth(1).unwrap().clone();
    restamp(
        &emb_dir.join(&odd),
        "refaug.filter",
        r#"{"height_above":0.0,"score_above":0.0,"truncate_sentences":false,"width_above":0.0}"#,
    );
    let (code, text) = refaug(&["validate", out]);
    assert_eq!(code, 1, "{text}");
    assert!(
        text.contains(&format!(
            "{odd}: made with another encoder or filter (`refaug.encoder`, `refaug.filter`) than"
        )),
        "{text}"
    );
    redo_one_shard();

    // A run killed mid-shard leaves at most a hidden temporary file and no visible shard: the
    // next run redoes exactly that shard, byte for byte.
    let lost = first.keys().next().unwrap().clone();
    std::fs::remove_file(emb_dir.join(&lost)).unwrap();
    std::fs::write(emb_dir.join(format!(".{lost}.tmp-99999")), b"partial").unwrap();
    redo_one_shard();

    // validate checks the embeddings too: whole output valid, then a shard swapped for another's
    // (made from a different proposal shard) and a truncated one are caught, naming the file.
    let (code, text) = refaug(&["validate", out]);
    assert_eq!(code, 0, "{text}");
    let names: Vec<&String> = first.keys().collect();
    let (a, b) = (names[0], names[1]);
    std::fs::copy(emb_dir.join(a), emb_dir.join(b)).unwrap();
    let (code, text) = refaug(&["validate", out]);
    assert_eq!(code, 1, "{text}");
    assert!(
        text.contains(b.as_str()) && text.contains("sha256"),
        "{text}"
    );
    std::fs::write(emb_dir.join(b), &first[b][..100]).unwrap();
    let (code, text) = refaug(&["validate", out]);
    assert_eq!(code, 1, "{text}");
    assert!(text.contains(b.as_str()), "{text}");
    std::fs::write(emb_dir.join(b), &first[b]).unwrap();

    // `refaug publish` adds the embeddings as a config of their own (`yolo-embeddings`), its
    // card naming the encoder; the real clients read it (tests/python/publish_check.py).
    let hub = dir.path().join("hub");
    let (code, text) = refaug(&["publish", out, hub.to_str().unwrap()]);
    assert_eq!(code, 0, "{text}");
    assert_eq!(shards(&hub.join("data/yolo-embeddings")), first);
    let card = std::fs::read_to_string(hub.join("README.md")).unwrap();
    for want in [
        "- config_name: \"yolo-embeddings\"\n  data_files:",
        "  - name: \"gt_embedding\"\n    list: \"float32\"\n    length: 16\n",
        "| `yolo-embeddings` | `yolo` | fixture-clip |",
    ] {
        assert!(card.contains(want), "card lacks {want:?}:\n{card}");
    }
    if let Some(python) = output_fixture::python() {
        let cache = dir.path().join("hf-cache");
        let text = output_fixture::run_python(
            &python,
            "publish_check.py",
            &[hub.as_os_str(), cache.as_os_str()],
        );
        for want in [
            "yolo-embeddings: the shards of yolo",
            "mlcroissant: yolo-embeddings has 21 records, vectors equal pyarrow's",
        ] {
            assert!(text.contains(want), "{text}");
        }
    }

    // The embeddings equal the independent computation.
    if let Some(python) = output_fixture::python() {
        let out = output_fixture::run_python(
            &python,
            "embed_check.py",
            &[
                dir.path().join("out/yolo").as_os_str(),
                root().join("sample/refcocog/images").as_os_str(),
                root().join("tests/data/clip/expected.json").as_os_str(),
            ],
        );
        eprintln!("{out}");
    }
}

#[test]
fn a_sentence_over_77_tokens_fails_its_shard_naming_ref_and_sentence() {
    use refaug::write::shard::{ShardOptions, ShardWriter, read_rows};
    let dir = tempfile::tempdir().unwrap();
    let m = manifest(dir.path());
    let ms = m.to_str().unwrap();
    let (code, text) = refaug(&["run", "--manifest", ms, "--quiet"]);
    assert_eq!(code, 0, "{text}");
    // Rewrite one proposal shard with an 80-word sentence in its first ref.
    let variant = dir.path().join("out/yolo");
    let shard = std::fs::read_dir(&variant)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "parquet"))
        .min()
        .unwrap();
    let mut rows = read_rows(&shard).unwrap();
    let long = "dog ".repeat(80).trim_end().to_string();
    rows[0].sentences[0].sent = long.clone();
    let (ref_id, sent_id) = (rows[0].ref_id, rows[0].sentences[0].sent_id);
    let mut w = ShardWriter::create(&shard, &BTreeMap::new(), &ShardOptions::default()).unwrap();
    w.write_all(rows).unwrap();
    w.close().unwrap();

    let (code, text) = refaug(&["embed", "--manifest", ms]);
    assert_eq!(code, 1, "{text}");
    let want = format!("ref {ref_id}");
    assert!(
        text.contains(&want)
            && text.contains(&format!("sentence {sent_id}"))
            && text.contains("82 tokens"),
        "{text}"
    );
    let errors = std::fs::read_to_string(variant.join("embeddings/errors.json")).unwrap();
    assert!(
        errors.contains(&want) && errors.contains("dog dog"),
        "{errors}"
    );
    // The failed shard is not there; the others are.
    let name = shard.file_name().unwrap().to_string_lossy().into_owned();
    let done = shards(&variant.join("embeddings"));
    assert!(!done.contains_key(&name) && !done.is_empty());

    // With truncation asked for, it is embedded.
    let text = std::fs::read_to_string(&m).unwrap();
    std::fs::write(&m, text.replace("[embed]\n", "[embed]\ntruncate = true\n")).unwrap();
    let (code, text) = refaug(&["embed", "--manifest", ms]);
    assert_eq!(code, 0, "{text}");
    assert!(shards(&variant.join("embeddings")).contains_key(&name));
    let out = dir.path().join("out");

    // Back to no truncation: the shard fails again, and the one made with truncation (another
    // filter) is removed rather than left beside shards made without it.
    std::fs::write(
        &m,
        std::fs::read_to_string(&m)
            .unwrap()
            .replace("truncate = true\n", ""),
    )
    .unwrap();
    let (code, text) = refaug(&["embed", "--manifest", ms]);
    assert_eq!(code, 1, "{text}");
    assert!(
        text.contains("(the shard an earlier run left was removed)"),
        "{text}"
    );
    assert!(!shards(&variant.join("embeddings")).contains_key(&name));
    let (code, text) = refaug(&["validate", out.to_str().unwrap()]);
    assert_eq!(code, 1, "{text}");
    assert!(text.contains(&format!("{name}: missing")), "{text}");
}

#[test]
fn embed_without_an_embed_section_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let m = manifest(dir.path());
    let text = std::fs::read_to_string(&m).unwrap();
    let cut = text.split("[embed]").next().unwrap().to_string();
    std::fs::write(&m, cut).unwrap();
    let (code, text) = refaug(&["embed", "--manifest", m.to_str().unwrap()]);
    assert_eq!(code, 2, "{text}");
    assert!(text.contains("no [embed] section"), "{text}");
}

/// [`manifest`] over a copy of the sample's images (so that one can be broken).
fn manifest_with_own_images(dir: &Path) -> (PathBuf, PathBuf) {
    let images = dir.join("images");
    std::fs::create_dir_all(&images).unwrap();
    for e in std::fs::read_dir(root().join("sample/refcocog/images")).unwrap() {
        let p = e.unwrap().path();
        std::fs::copy(&p, images.join(p.file_name().unwrap())).unwrap();
    }
    let m = manifest(dir);
    let text = std::fs::read_to_string(&m).unwrap();
    let sample = root().join("sample/refcocog/images");
    std::fs::write(
        &m,
        text.replace(
            &format!("images = \"{}\"", sample.display()),
            &format!("images = \"{}\"", images.display()),
        ),
    )
    .unwrap();
    (m, images)
}

/// A real kill -9 in the middle of `refaug embed`, then a rerun, gives the clean run's bytes; an
/// unreadable image gives its refs null rows and an errors.json entry (file and refs) while the
/// rest of its shard is written, `validate` accepts and reports them, and once the image is back
/// a plain rerun redoes that shard to the clean bytes. `--limit` and `--shard` select shards.
#[test]
fn kill_resume_unreadable_image_limit_and_workers() {
    let dir = tempfile::tempdir().unwrap();
    let (m, images) = manifest_with_own_images(dir.path());
    let m = m.to_str().unwrap();
    let (code, text) = refaug(&["run", "--manifest", m, "--quiet"]);
    assert_eq!(code, 0, "{text}");
    let emb_dir = dir.path().join("out/yolo/embeddings");
    let (code, text) = refaug(&["embed", "--manifest", m, "--quiet"]);
    assert_eq!(code, 0, "{text}");
    let clean = shards(&emb_dir);
    let n = clean.len();
    assert!(n >= 3, "{n}");

    // --limit 2 --shard 1/2: of the first two shards, the second only.
    std::fs::remove_dir_all(&emb_dir).unwrap();
    let (code, text) = refaug(&[
        "embed",
        "--manifest",
        m,
        "--quiet",
        "--limit",
        "2",
        "--shard",
        "1/2",
    ]);
    assert_eq!(code, 0, "{text}");
    let names: Vec<&String> = clean.keys().collect();
    let partial = shards(&emb_dir);
    assert_eq!(partial.keys().collect::<Vec<_>>(), [names[1]], "{text}");
    assert_eq!(partial[names[1]], clean[names[1]]);
    assert!(emb_dir.join("errors-1-of-2.json").is_file());

    // kill -9 once the first shard is in place (batch 1, one thread: the run is slow enough).
    std::fs::remove_dir_all(&emb_dir).unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_refaug"))
        .args([
            "embed",
            "--manifest",
            m,
            "--quiet",
            "--batch-size",
            "1",
            "--threads",
            "1",
        ])
        .spawn()
        .unwrap();
    let killed_mid_run = loop {
        if child.try_wait().unwrap().is_some() {
            break false;
        }
        if emb_dir.is_dir() && !shards(&emb_dir).is_empty() {
            child.kill().unwrap(); // SIGKILL
            child.wait().unwrap();
            break true;
        }
        std::thread::sleep(std::time::Duration::from_millis(5));
    };
    assert!(killed_mid_run, "the run finished before it could be killed");
    let after_kill = shards(&emb_dir);
    assert!(after_kill.len() < n, "killed after every shard was written");
    for (name, bytes) in &after_kill {
        assert_eq!(bytes, &clean[name], "{name} is not whole after kill -9");
    }
    let (code, text) = refaug(&["embed", "--manifest", m]);
    assert_eq!(code, 0, "{text}");
    assert_eq!(shards(&emb_dir), clean, "resume after kill -9 differs");
    let leftovers: Vec<_> = std::fs::read_dir(&emb_dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|f| f.contains(".tmp-"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");

    // A second embed on the same output while one holds the lock is refused.
    let out = dir.path().join("out");
    let lock = refaug::pipeline::journal::lock_embed(&out, "0-of-1").unwrap();
    let (code, text) = refaug(&["embed", "--manifest", m, "--quiet"]);
    assert_eq!(code, 2, "{text}");
    assert!(text.contains("locked"), "{text}");
    drop(lock);

    // Break one image: the refs of that image keep their rows, with null image embeddings.
    let first = refaug::write::shard::read_rows(&dir.path().join("out/yolo").join(names[1]))
        .unwrap()
        .remove(0);
    let bad = images.join(&first.file_name);
    let good = std::fs::read(&bad).unwrap();
    std::fs::write(&bad, &good[..good.len() / 3]).unwrap();
    let (code, text) = refaug(&["embed", "--manifest", m, "--force", "--quiet"]);
    assert_eq!(code, 1, "{text}");
    assert!(text.contains("1 unreadable image(s)"), "{text}");
    let broken = shards(&emb_dir);
    assert_eq!(broken.len(), n);
    for (name, bytes) in &broken {
        assert_eq!(bytes == &clean[name], name != names[1], "{name}");
    }
    let errors: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(emb_dir.join("errors.json")).unwrap())
            .unwrap();
    let img = &errors["images"][0];
    assert_eq!(img["file_name"], first.file_name.as_str(), "{errors}");
    assert_eq!(img["shard"], names[1].as_str());
    assert!(
        img["ref_ids"]
            .as_array()
            .unwrap()
            .contains(&first.ref_id.into()),
        "{errors}"
    );
    let (code, text) = refaug(&["validate", out.to_str().unwrap()]);
    assert_eq!(code, 0, "{text}");
    assert!(
        text.contains("note:") && text.contains(&format!("{}", first.ref_id)),
        "{text}"
    );
    if let Some(python) = output_fixture::python() {
        let text = output_fixture::run_python(
            &python,
            "embed_nulls_check.py",
            &[
                emb_dir.join(names[1]).as_os_str(),
                dir.path().join("out/yolo").join(names[1]).as_os_str(),
            ],
        );
        eprintln!("{text}");
    }

    // The image is back: a plain run redoes the shard with failures, to the clean bytes.
    std::fs::write(&bad, &good).unwrap();
    let (code, text) = refaug(&["embed", "--manifest", m]);
    assert_eq!(code, 0, "{text}");
    assert!(
        text.contains(&format!("1 shards written, {} already done", n - 1)),
        "{text}"
    );
    assert_eq!(shards(&emb_dir), clean);
}
