//! `refaug run` end to end on the bundled sample with the fixture detectors: rows read back equal the
//! independently computed expectation, determinism (also across batch sizes and worker splits),
//! kill-and-resume, the lock, a corrupt image, and `validate` catching a tampered shard.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use refaug::write::shard::read_rows;

const VARIANTS: [&str; 3] = ["yolo", "detr", "fasterrcnn"];

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// A data manifest for the bundled sample (or a copy of its images), writing to `out`.
fn manifest(dir: &Path, images: &Path, out: &Path, images_per_shard: usize) -> PathBuf {
    let r = repo();
    let text = format!(
        r#"[dataset]
kind = "refcocog"
split_by = "umd"
annotations = "{ann}"
images = "{images}"

[[variant]]
name = "yolo"
detector = "{det}/fixture-ultralytics.toml"

[[variant]]
name = "detr"
detector = "{det}/fixture-detr.toml"

[[variant]]
name = "fasterrcnn"
detector = "{det}/fixture-torchvision.toml"

[output]
dir = "{out}"
images_per_shard = {images_per_shard}

[run]
batch_size = 4
threads = 2
"#,
        ann = r.join("sample/refcocog/annotations").display(),
        images = images.display(),
        det = r.join("detectors").display(),
        out = out.display(),
    );
    let path = dir.join("manifest.toml");
    std::fs::write(&path, text).unwrap();
    path
}

fn sample_images() -> PathBuf {
    repo().join("sample/refcocog/images")
}

fn refaug(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_refaug"))
        .args(args)
        .output()
        .expect("refaug runs")
}

fn run_ok(manifest: &Path, extra: &[&str]) -> Output {
    let m = manifest.to_str().unwrap();
    let mut args = vec!["run", "--manifest", m, "--quiet"];
    args.extend_from_slice(extra);
    let out = refaug(&args);
    assert!(
        out.status.success(),
        "refaug run failed: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// Every file under `dir` (relative path → bytes), leaving out refaug's own bookkeeping folder.
fn tree(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    let mut out = BTreeMap::new();
    for v in VARIANTS {
        let d = dir.join(v);
        let mut names: Vec<_> = std::fs::read_dir(&d)
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        names.sort();
        for p in names {
            if p.extension().is_some_and(|x| x == "parquet") {
                out.insert(
                    format!("{v}/{}", p.file_name().unwrap().to_string_lossy()),
                    std::fs::read(&p).unwrap(),
                );
            }
        }
    }
    out
}

#[test]
fn rows_equal_the_independent_expectation() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("out");
    let m = manifest(tmp.path(), &sample_images(), &out, 1000);
    run_ok(&m, &[]);

    // Computed by tools/make_sample_expected.py: Pillow decoding, the fixture models' arithmetic in
    // numpy and the families' post-processing written from the original libraries.
    let expected: serde_json::Value = serde_json::from_slice(
        &std::fs::read(repo().join("tests/data/sample-expected.json")).unwrap(),
    )
    .unwrap();
    for variant in VARIANTS {
        let mut rows = Vec::new();
        for split in ["train", "val", "test"] {
            rows.extend(
                read_rows(
                    &out.join(variant)
                        .join(format!("{split}-00000-of-00001.parquet")),
                )
                .unwrap(),
            );
        }
        let want = expected[variant].as_array().unwrap();
        assert_eq!(rows.len(), want.len(), "{variant}: row count");
        let want: BTreeMap<i64, &serde_json::Value> = want
            .iter()
            .map(|r| (r["ref_id"].as_i64().unwrap(), r))
            .collect();
        let mut with_proposals = 0;
        for row in &rows {
            let w = want[&row.ref_id];
            assert_eq!(
                row.image_id,
                w["image_id"].as_i64().unwrap(),
                "{variant} ref {}",
                row.ref_id
            );
            assert_eq!(row.split, w["split"].as_str().unwrap());
            let boxes = w["proposals"].as_array().unwrap();
            assert_eq!(
                row.proposals.len(),
                boxes.len(),
                "{variant} ref {}: proposals",
                row.ref_id
            );
            for (p, b) in row.proposals.iter().zip(boxes) {
                let b: Vec<f64> = b
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|x| x.as_f64().unwrap())
                    .collect();
                let got = [p.bbox.xmin, p.bbox.ymin, p.bbox.xmax, p.bbox.ymax, p.score];
                for (g, e) in got.iter().zip(&b) {
                    assert!(
                        (*g as f64 - e).abs() <= 1e-3,
                        "{variant} ref {}: {got:?} vs {b:?}",
                        row.ref_id
                    );
                }
                assert_eq!(
                    p.class_id as f64, b[5],
                    "{variant} ref {}: class",
                    row.ref_id
                );
            }
            let best = w["best_iou"].as_f64().unwrap();
            assert!(
                (row.best_iou as f64 - best).abs() <= 1e-4,
                "{variant} ref {}: best_iou",
                row.ref_id
            );
            with_proposals += usize::from(!row.proposals.is_empty());
        }
        assert!(
            with_proposals > 0,
            "{variant}: the fixture detector found nothing at all"
        );
        // DETR keeps its boxes as the library returns them (not clipped): some reach past the
        // image here, and the output still validates below.
        let outside = rows
            .iter()
            .flat_map(|r| r.proposals.iter().map(move |p| (r, p)))
            .filter(|(r, p)| {
                p.bbox.xmin < 0.0
                    || p.bbox.ymin < 0.0
                    || p.bbox.xmax > r.image_width as f32
                    || p.bbox.ymax > r.image_height as f32
            })
            .count();
        assert_eq!(
            outside > 0,
            variant == "detr",
            "{variant}: {outside} boxes past the image"
        );
    }
    // pyarrow (what training runs use) reads the same rows.
    let python = repo().join(".venv/bin/python");
    if python.exists() {
        let o = Command::new(&python)
            .arg(repo().join("tests/python/run_read_back.py"))
            .arg(&out)
            .arg(repo().join("tests/data/sample-expected.json"))
            .output()
            .unwrap();
        assert!(
            o.status.success(),
            "pyarrow read-back failed:\n{}\n{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        );
    } else {
        eprintln!(
            "skipped the pyarrow read-back: {} not found (run scripts/setup.sh)",
            python.display()
        );
    }
    // A complete output validates.
    let v = refaug(&["validate", out.to_str().unwrap()]);
    assert!(v.status.success(), "{}", String::from_utf8_lossy(&v.stdout));
}

#[test]
fn deterministic_across_runs_batch_sizes_and_worker_splits() {
    let tmp = tempfile::tempdir().unwrap();
    let a = tmp.path().join("a");
    let b = tmp.path().join("b");
    let c = tmp.path().join("c");
    let ma = manifest(&tmp.path().join("ma").tap_mkdir(), &sample_images(), &a, 4);
    let mb = manifest(&tmp.path().join("mb").tap_mkdir(), &sample_images(), &b, 4);
    let mc = manifest(&tmp.path().join("mc").tap_mkdir(), &sample_images(), &c, 4);
    run_ok(&ma, &["--batch-size", "1", "--threads", "1"]);
    run_ok(&mb, &["--batch-size", "8"]);
    // Two workers: the first ends with "not complete" (exit 3), the last one completes the output.
    let first = refaug(&[
        "run",
        "--manifest",
        mc.to_str().unwrap(),
        "--quiet",
        "--shard",
        "0/2",
    ]);
    assert_eq!(
        first.status.code(),
        Some(3),
        "{}",
        String::from_utf8_lossy(&first.stderr)
    );
    assert!(String::from_utf8_lossy(&first.stderr).contains("refaug merge"));
    let merge_early = refaug(&["merge", c.to_str().unwrap()]);
    assert!(
        !merge_early.status.success(),
        "merge must refuse an incomplete output"
    );
    assert!(String::from_utf8_lossy(&merge_early.stderr).contains("not committed yet"));
    run_ok(&mc, &["--shard", "1/2"]);
    let ta = tree(&a);
    assert!(ta.len() >= 3 * 3, "{:?}", ta.keys());
    assert_eq!(ta, tree(&b), "batch size 1 vs 8");
    assert_eq!(ta, tree(&c), "one run vs two workers");
    for v in VARIANTS {
        let manifest = |d: &Path| {
            let m: serde_json::Value =
                serde_json::from_slice(&std::fs::read(d.join(v).join("manifest.json")).unwrap())
                    .unwrap();
            m["splits"].clone()
        };
        assert_eq!(manifest(&a), manifest(&c), "{v}: manifest splits");
    }
}

#[test]
fn killed_run_resumes_to_the_same_bytes() {
    let tmp = tempfile::tempdir().unwrap();
    let whole = tmp.path().join("whole");
    let killed = tmp.path().join("killed");
    let mw = manifest(
        &tmp.path().join("mw").tap_mkdir(),
        &sample_images(),
        &whole,
        2,
    );
    let mk = manifest(
        &tmp.path().join("mk").tap_mkdir(),
        &sample_images(),
        &killed,
        2,
    );
    run_ok(&mw, &[]);

    let mut child = Command::new(env!("CARGO_BIN_EXE_refaug"))
        .args([
            "run",
            "--manifest",
            mk.to_str().unwrap(),
            "--quiet",
            "--batch-size",
            "1",
            "--threads",
            "1",
        ])
        .spawn()
        .unwrap();
    let units = killed.join(".refaug/units");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
    // Kill it once a few units are committed, in the middle of the run.
    loop {
        let n = std::fs::read_dir(&units).map(|d| d.count()).unwrap_or(0);
        if n >= 3 {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no unit committed in time"
        );
        if let Some(status) = child.try_wait().unwrap() {
            panic!("the run ended ({status}) before it could be killed");
        }
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(
        !killed.join("yolo/manifest.json").exists(),
        "killed before the end"
    );
    let again = run_ok(&mk, &[]);
    let _ = again;
    assert_eq!(tree(&whole), tree(&killed));
}

#[test]
fn a_second_run_on_the_same_output_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("out");
    let m = manifest(tmp.path(), &sample_images(), &out, 1000);
    run_ok(&m, &["--limit", "1"]);
    // Hold worker 0-of-1's lock the way a running `refaug run` does.
    let lock = std::fs::OpenOptions::new()
        .write(true)
        .open(out.join(".refaug/lock-0-of-1"))
        .unwrap();
    lock.try_lock().unwrap();
    let second = refaug(&[
        "run",
        "--manifest",
        m.to_str().unwrap(),
        "--quiet",
        "--limit",
        "1",
    ]);
    assert!(!second.status.success());
    let err = String::from_utf8_lossy(&second.stderr);
    assert!(err.contains("locked by another refaug run"), "{err}");
    drop(lock);
    run_ok(&m, &["--limit", "1"]);
}

#[test]
fn a_corrupt_image_is_reported_not_fatal_and_its_refs_listed() {
    let tmp = tempfile::tempdir().unwrap();
    let images = tmp.path().join("images");
    std::fs::create_dir(&images).unwrap();
    for e in std::fs::read_dir(sample_images()).unwrap() {
        let p = e.unwrap().path();
        std::fs::copy(&p, images.join(p.file_name().unwrap())).unwrap();
    }
    // Truncate one image referenced by refs.
    let instances: serde_json::Value = serde_json::from_slice(
        &std::fs::read(repo().join("sample/refcocog/annotations/instances.json")).unwrap(),
    )
    .unwrap();
    let victim = &instances["images"][0];
    let name = victim["file_name"].as_str().unwrap();
    let bytes = std::fs::read(images.join(name)).unwrap();
    std::fs::write(images.join(name), &bytes[..bytes.len() / 3]).unwrap();

    let out = tmp.path().join("out");
    let m = manifest(tmp.path(), &images, &out, 1000);
    let failed = refaug(&["run", "--manifest", m.to_str().unwrap(), "--quiet"]);
    assert!(
        !failed.status.success(),
        "a failed image must fail the run without --allow-errors"
    );
    let errors: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("errors.json")).unwrap()).unwrap();
    assert_eq!(errors["images_failed"], 1);
    let failure = &errors["failures"][0];
    assert_eq!(failure["image_id"], victim["id"]);
    assert!(failure["path"].as_str().unwrap().ends_with(name));
    assert!(
        failure["reason"].as_str().unwrap().contains(name),
        "{failure}"
    );
    let refs_of_victim: Vec<i64> = refs_of_image(victim["id"].as_i64().unwrap());
    assert!(!refs_of_victim.is_empty());
    let listed: Vec<i64> = failure["ref_ids"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_i64().unwrap())
        .collect();
    assert_eq!(listed, refs_of_victim);
    // Everything else is written, and the output is valid.
    let v = refaug(&["validate", out.to_str().unwrap()]);
    assert!(v.status.success(), "{}", String::from_utf8_lossy(&v.stdout));
    let ok = refaug(&[
        "run",
        "--manifest",
        m.to_str().unwrap(),
        "--quiet",
        "--allow-errors",
    ]);
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
}

/// The refs of an image, from the bundled sample's expectation file (written by the generator).
fn refs_of_image(image_id: i64) -> Vec<i64> {
    let expected: serde_json::Value = serde_json::from_slice(
        &std::fs::read(repo().join("tests/data/sample-expected.json")).unwrap(),
    )
    .unwrap();
    let mut ids: Vec<i64> = expected["yolo"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["image_id"].as_i64() == Some(image_id))
        .map(|r| r["ref_id"].as_i64().unwrap())
        .collect();
    ids.sort();
    ids
}

#[test]
fn validate_catches_a_tampered_shard() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("out");
    let m = manifest(tmp.path(), &sample_images(), &out, 1000);
    run_ok(&m, &[]);
    let shard = out.join("detr/train-00000-of-00001.parquet");
    let mut bytes = std::fs::read(&shard).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0x55;
    std::fs::write(&shard, bytes).unwrap();
    let v = refaug(&["validate", out.to_str().unwrap()]);
    assert!(!v.status.success());
    let report = String::from_utf8_lossy(&v.stdout);
    assert!(report.contains("train-00000-of-00001.parquet"), "{report}");
}

#[test]
fn changed_settings_are_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("out");
    let m = manifest(tmp.path(), &sample_images(), &out, 1000);
    run_ok(&m, &["--limit", "2"]);
    let again = refaug(&[
        "run",
        "--manifest",
        m.to_str().unwrap(),
        "--quiet",
        "--limit",
        "3",
    ]);
    assert!(!again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).contains("other settings"));
    run_ok(&m, &["--limit", "3", "--force"]);
}

trait TapMkdir {
    fn tap_mkdir(self) -> Self;
}

impl TapMkdir for PathBuf {
    fn tap_mkdir(self) -> Self {
        std::fs::create_dir_all(&self).unwrap();
        self
    }
}
