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

    // A run killed mid-shard leaves at most a hidden temporary file and no visible shard: the
    // next run redoes exactly that shard, byte for byte.
    let lost = first.keys().next().unwrap().clone();
    std::fs::remove_file(emb_dir.join(&lost)).unwrap();
    std::fs::write(emb_dir.join(format!(".{lost}.tmp-99999")), b"partial").unwrap();
    let (code, text) = refaug(&["embed", "--manifest", m]);
    assert_eq!(code, 0, "{text}");
    assert!(
        text.contains(&format!("1 shards written, {} already done", n - 1)),
        "{text}"
    );
    assert_eq!(shards(&emb_dir), first);

    // validate checks the embeddings too: whole output valid, then a shard swapped for another's
    // (made from a different proposal shard) and a truncated one are caught, naming the file.
    let out = dir.path().join("out");
    let out = out.to_str().unwrap();
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
