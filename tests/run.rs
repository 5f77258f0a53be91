//! `refaug run` end to end on the bundled sample with the fixture detectors: rows read back equal the
//! independently computed expectation, determinism (also across batch sizes, thread models and
//! worker splits), kill-and-resume, the lock, a corrupt image, and `validate` catching a tampered
//! shard.

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
    let annotations = repo().join("sample/refcocog/annotations");
    manifest_with(dir, &annotations, images, out, images_per_shard)
}

/// [`manifest`] with another annotations folder.
fn manifest_with(
    dir: &Path,
    annotations: &Path,
    images: &Path,
    out: &Path,
    images_per_shard: usize,
) -> PathBuf {
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
        ann = annotations.display(),
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
            .arg(repo().join("sample/refcocog/annotations"))
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
    // --threads 0: the sessions share all cores (ONNX Runtime's shared pool); a and c run on
    // own pools (1 and the manifest's 2 threads in all).
    run_ok(&mb, &["--batch-size", "8", "--threads", "0"]);
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
    assert_eq!(ta, tree(&b), "batch size 1, own pools vs 8, shared pool");
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
    // Kill it once a few units are committed, in the middle of the run (a run that finishes
    // first fails the test rather than passing it).
    loop {
        let n = std::fs::read_dir(&units).map(|d| d.count()).unwrap_or(0);
        if n >= 3 {
            break;
        }
        if let Some(status) = child.try_wait().unwrap() {
            panic!("the run ended ({status}) before it could be killed");
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(
        !killed.join("yolo/manifest.json").exists(),
        "killed before the end"
    );
    // The units committed before the kill are resumed, not redone: their shards keep their
    // files (same inode, same modification time).
    // Unit records only: the kill may have left a record's hidden temporary beside them.
    let committed = std::fs::read_dir(&units)
        .unwrap()
        .filter(|e| {
            let name = e.as_ref().unwrap().file_name();
            let name = name.to_string_lossy();
            name.ends_with(".json") && !name.starts_with('.')
        })
        .count();
    let stamp = |p: &Path| {
        use std::os::unix::fs::MetadataExt;
        let m = std::fs::metadata(p).unwrap();
        (m.ino(), m.mtime_nsec(), m.mtime())
    };
    let mut shards: Vec<PathBuf> = std::fs::read_dir(killed.join("yolo"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "parquet"))
        .collect();
    shards.sort();
    let first_shard = shards.first().expect("a committed shard").clone();
    let before = stamp(&first_shard);
    let again = run_ok(&mk, &[]);
    let stderr = String::from_utf8_lossy(&again.stderr);
    assert!(
        stderr.contains(&format!("({committed} already committed")),
        "the second run must resume the {committed} committed units: {stderr}"
    );
    assert_eq!(
        stamp(&first_shard),
        before,
        "a committed shard was rewritten"
    );
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

// ---------------------------------------------------------------------------------------------
// Hostile input and the promises the README makes (issue 11).

/// A copy of the sample's images in `dir/images`.
fn copy_images(dir: &Path) -> PathBuf {
    let images = dir.join("images");
    copy_tree(&sample_images(), &images);
    images
}

/// A copy of the sample's annotations in `dir/annotations`.
fn copy_annotations(dir: &Path) -> PathBuf {
    let ann = dir.join("annotations");
    copy_tree(&repo().join("sample/refcocog/annotations"), &ann);
    ann
}

fn sample_instances() -> serde_json::Value {
    serde_json::from_slice(
        &std::fs::read(repo().join("sample/refcocog/annotations/instances.json")).unwrap(),
    )
    .unwrap()
}

/// Runs refaug with a watchdog: a hang is a test failure, not a stuck suite. Not a timing
/// assertion: the bound is minutes for work that takes seconds.
fn refaug_watched(args: &[&str]) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_refaug"))
        .args(args)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let start = std::time::Instant::now();
    while child.try_wait().unwrap().is_none() {
        if start.elapsed() > std::time::Duration::from_secs(300) {
            child.kill().unwrap();
            panic!("refaug {args:?} hung (killed after 300 s)");
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    child.wait_with_output().unwrap()
}

fn errors_json(out: &Path) -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(out.join("errors.json")).unwrap()).unwrap()
}

/// The failure reasons of errors.json by image_id.
fn failure_reasons(out: &Path) -> BTreeMap<i64, String> {
    errors_json(out)["failures"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            (
                f["image_id"].as_i64().unwrap(),
                f["reason"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

#[test]
fn a_fifo_a_device_and_a_64_gib_sparse_file_are_recorded_not_read() {
    let tmp = tempfile::tempdir().unwrap();
    let images = copy_images(tmp.path());
    let instances = sample_instances();
    let image = |k: usize| {
        let r = &instances["images"][k];
        (
            r["id"].as_i64().unwrap(),
            r["file_name"].as_str().unwrap().to_string(),
        )
    };
    let (fifo_id, fifo) = image(0);
    let (zero_id, zero) = image(1);
    let (sparse_id, sparse) = image(2);
    std::fs::remove_file(images.join(&fifo)).unwrap();
    let c = std::ffi::CString::new(images.join(&fifo).to_str().unwrap()).unwrap();
    // SAFETY: a valid NUL-terminated path.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o644) }, 0);
    std::fs::remove_file(images.join(&zero)).unwrap();
    std::os::unix::fs::symlink("/dev/zero", images.join(&zero)).unwrap();
    let f = std::fs::File::create(images.join(&sparse)).unwrap();
    f.set_len(64 << 30).unwrap();
    drop(f);

    let out = tmp.path().join("out");
    let m = manifest(tmp.path(), &images, &out, 1000);
    let m = m.to_str().unwrap();
    let run = refaug_watched(&["run", "--manifest", m, "--quiet", "--allow-errors"]);
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    let reasons = failure_reasons(&out);
    assert_eq!(reasons.len(), 3, "{reasons:?}");
    assert!(
        reasons[&fifo_id].contains("not a regular file (a FIFO)"),
        "{reasons:?}"
    );
    assert!(
        reasons[&zero_id].contains("(a character device)"),
        "{reasons:?}"
    );
    assert!(
        reasons[&sparse_id].contains("68719476736 bytes, over the limit"),
        "{reasons:?}"
    );
    let v = refaug(&["validate", out.to_str().unwrap()]);
    assert!(v.status.success(), "{}", String::from_utf8_lossy(&v.stdout));

    // inspect neither hangs on them nor calls them healthy.
    let inspect = refaug_watched(&["inspect", "--manifest", m]);
    assert_eq!(inspect.status.code(), Some(1));
    let text = String::from_utf8_lossy(&inspect.stdout);
    for name in [&fifo, &zero, &sparse] {
        assert!(text.contains(name.as_str()), "{name} not reported:\n{text}");
    }
}

#[test]
fn an_image_whose_size_differs_from_instances_json_is_recorded() {
    let tmp = tempfile::tempdir().unwrap();
    let ann = copy_annotations(tmp.path());
    let mut instances = sample_instances();
    instances["images"][3]["width"] = serde_json::json!(16000);
    instances["images"][3]["height"] = serde_json::json!(16000);
    let id = instances["images"][3]["id"].as_i64().unwrap();
    std::fs::write(
        ann.join("instances.json"),
        serde_json::to_vec(&instances).unwrap(),
    )
    .unwrap();
    let out = tmp.path().join("out");
    let m = manifest_with(tmp.path(), &ann, &sample_images(), &out, 1000);
    let run = refaug(&["run", "--manifest", m.to_str().unwrap(), "--quiet"]);
    assert_eq!(run.status.code(), Some(1));
    let reasons = failure_reasons(&out);
    assert!(
        reasons[&id].contains("but the annotations say 16000×16000"),
        "{reasons:?}"
    );
}

#[test]
fn a_failed_image_is_retried_once_fixed_and_the_output_equals_a_clean_run() {
    let tmp = tempfile::tempdir().unwrap();
    let images = copy_images(tmp.path());
    let name = sample_instances()["images"][4]["file_name"]
        .as_str()
        .unwrap()
        .to_string();
    let good = std::fs::read(images.join(&name)).unwrap();
    std::fs::write(images.join(&name), &good[..good.len() / 2]).unwrap();

    let out = tmp.path().join("out");
    let m = manifest(&tmp.path().join("m").tap_mkdir(), &images, &out, 4);
    let m = m.to_str().unwrap();
    let first = refaug(&["run", "--manifest", m, "--quiet"]);
    assert_eq!(first.status.code(), Some(1));
    assert_eq!(errors_json(&out)["images_failed"], 1);

    std::fs::write(images.join(&name), &good).unwrap();
    let second = refaug(&["run", "--manifest", m, "--quiet"]);
    let stderr = String::from_utf8_lossy(&second.stderr);
    assert!(second.status.success(), "{stderr}");
    assert!(
        stderr.contains("redone to retry 1 image(s) that had failed"),
        "{stderr}"
    );
    assert_eq!(errors_json(&out)["images_failed"], 0);

    let clean = tmp.path().join("clean");
    let mc = manifest(
        &tmp.path().join("mc").tap_mkdir(),
        &sample_images(),
        &clean,
        4,
    );
    run_ok(&mc, &[]);
    assert_eq!(tree(&out), tree(&clean));
    let v = refaug(&["validate", out.to_str().unwrap()]);
    assert!(v.status.success(), "{}", String::from_utf8_lossy(&v.stdout));
}

#[test]
fn publish_and_export_refuse_a_damaged_shard_and_a_destination_inside_the_output() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("out");
    let m = manifest(tmp.path(), &sample_images(), &out, 1000);
    run_ok(&m, &[]);
    let o = out.to_str().unwrap();

    let inside = refaug(&["publish", o, out.join("pub").to_str().unwrap()]);
    assert_eq!(inside.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&inside.stderr).contains("overlap"),
        "{}",
        String::from_utf8_lossy(&inside.stderr)
    );

    let shard = out.join("detr/val-00000-of-00001.parquet");
    let mut bytes = std::fs::read(&shard).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0x55;
    std::fs::write(&shard, bytes).unwrap();
    let dest = tmp.path().join("pub");
    let publish = refaug(&["publish", o, dest.to_str().unwrap()]);
    let err = String::from_utf8_lossy(&publish.stderr);
    assert_eq!(publish.status.code(), Some(2), "{err}");
    assert!(
        err.contains("val-00000-of-00001.parquet") && err.contains("sha256"),
        "{err}"
    );
    assert!(!dest.join("SHA256SUMS").exists());
    let export = refaug(&["export", o, "--format", "seed-csv"]);
    assert_eq!(export.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&export.stderr).contains("refaug validate"));
}

#[test]
fn stale_temporaries_of_dead_writers_are_removed_on_start() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("out");
    let m = manifest(tmp.path(), &sample_images(), &out, 1000);
    run_ok(&m, &["--limit", "2"]);
    // pid 4999999 is above Linux's largest pid (2^22): its writer is surely gone.
    let dead = out.join("yolo/.train-00000-of-00001.parquet.tmp-4999999");
    let alive = out.join(format!(
        "yolo/.train-00000-of-00001.parquet.tmp-{}",
        std::process::id()
    ));
    std::fs::write(&dead, b"half a shard").unwrap();
    std::fs::write(&alive, b"another worker's shard").unwrap();
    run_ok(&m, &["--limit", "2"]);
    assert!(!dead.exists(), "a dead writer's temporary survived");
    assert!(alive.exists(), "a live process's temporary was removed");
}

#[test]
fn meaningless_numbers_are_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let m = manifest(tmp.path(), &sample_images(), &tmp.path().join("out"), 1000);
    let m = m.to_str().unwrap();
    for (flag, value, says) in [
        ("--threads", "10000", "more than 8 per core"),
        ("--batch-size", "0", "at least 1"),
        ("--limit", "0", "selects no image"),
    ] {
        let o = refaug(&["run", "--manifest", m, "--quiet", flag, value]);
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(2), "{flag} {value}: {err}");
        assert!(err.contains(says), "{flag} {value}: {err}");
    }
    // `refaug embed` shares the model-running flags and their checks.
    for (flag, value, says) in [
        ("--threads", "10000", "more than 8 per core"),
        ("--batch-size", "0", "at least 1"),
    ] {
        let o = refaug(&["embed", "--manifest", m, flag, value]);
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(2), "embed {flag} {value}: {err}");
        assert!(err.contains(says), "embed {flag} {value}: {err}");
    }
    assert!(
        !tmp.path().join("out").exists(),
        "a refused run wrote nothing"
    );
}

#[test]
fn validate_on_an_unfinished_output_says_to_run_again_not_merge() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("out");
    let m = manifest(tmp.path(), &sample_images(), &out, 4);
    let first = refaug(&[
        "run",
        "--manifest",
        m.to_str().unwrap(),
        "--quiet",
        "--shard",
        "0/2",
    ]);
    assert_eq!(first.status.code(), Some(3));
    let v = refaug(&["validate", out.to_str().unwrap()]);
    let text = String::from_utf8_lossy(&v.stdout);
    assert_eq!(v.status.code(), Some(1));
    assert!(text.contains("run `refaug run` again"), "{text}");
    assert!(!text.contains("run `refaug merge"), "{text}");
}

#[test]
fn a_plain_run_beside_a_sharded_one_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("out");
    let m = manifest(tmp.path(), &sample_images(), &out, 1000);
    std::fs::create_dir_all(out.join(".refaug")).unwrap();
    // Worker 0 of 2 at work, as its lock says.
    let lock = std::fs::File::create(out.join(".refaug/lock-0-of-2")).unwrap();
    lock.try_lock().unwrap();
    let plain = refaug(&["run", "--manifest", m.to_str().unwrap(), "--quiet"]);
    let err = String::from_utf8_lossy(&plain.stderr);
    assert_eq!(plain.status.code(), Some(2), "{err}");
    assert!(
        err.contains("lock-0-of-2") && err.contains("locked"),
        "{err}"
    );
    drop(lock);
    run_ok(&m, &[]);
}

#[test]
fn a_manifest_naming_files_outside_the_output_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("out");
    let m = manifest(tmp.path(), &sample_images(), &out, 1000);
    run_ok(&m, &[]);
    let path = out.join("yolo/manifest.json");
    let mut manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    manifest["splits"]["train"]["shards"][0]["file"] = serde_json::json!("../../etc/passwd");
    std::fs::write(&path, serde_json::to_vec(&manifest).unwrap()).unwrap();
    let v = refaug(&["validate", out.to_str().unwrap()]);
    let text = String::from_utf8_lossy(&v.stdout);
    assert_eq!(v.status.code(), Some(1));
    assert!(text.contains("not a plain file name"), "{text}");
    assert!(!text.contains("root:"), "{text}");
    let report = refaug(&["report", out.to_str().unwrap()]);
    assert_eq!(report.status.code(), Some(2));
}

/// The fixture ultralytics spec with `model` (a file of `tests/data/models`, absolute) and no
/// pinned sha256.
fn unpinned_ultralytics_spec(model: &str) -> String {
    std::fs::read_to_string(repo().join("detectors/fixture-ultralytics.toml"))
        .unwrap()
        .lines()
        .map(|l| {
            if l.starts_with("model_sha256") {
                "model_sha256 = \"unknown\"".to_string()
            } else if l.starts_with("model =") {
                format!("model = {:?}", repo().join("tests/data/models").join(model))
            } else {
                l.to_string()
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn a_model_without_a_pinned_sha256_runs_with_a_warning() {
    let tmp = tempfile::tempdir().unwrap();
    let spec = unpinned_ultralytics_spec("ultralytics.onnx");
    let det = tmp.path().join("detectors");
    std::fs::create_dir_all(&det).unwrap();
    std::fs::write(det.join("fixture-ultralytics.toml"), spec).unwrap();
    for other in ["fixture-detr.toml", "fixture-torchvision.toml"] {
        let text = std::fs::read_to_string(repo().join("detectors").join(other))
            .unwrap()
            .replace("\"../tests/", &format!("\"{}/tests/", repo().display()));
        std::fs::write(det.join(other), text).unwrap();
    }
    let out = tmp.path().join("out");
    let m = manifest(tmp.path(), &sample_images(), &out, 1000);
    let text = std::fs::read_to_string(&m).unwrap().replace(
        &repo().join("detectors").display().to_string(),
        &det.display().to_string(),
    );
    std::fs::write(&m, text).unwrap();
    let o = refaug(&["run", "--manifest", m.to_str().unwrap(), "--limit", "1"]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "{err}");
    assert!(err.contains("has no pinned model_sha256"), "{err}");
}

/// Copies of the three fixture specs in `dir/detectors`, their model paths made absolute, so a
/// test can edit them; returns the folder.
fn copy_specs(dir: &Path) -> PathBuf {
    let det = dir.join("detectors");
    std::fs::create_dir_all(&det).unwrap();
    for name in [
        "fixture-ultralytics.toml",
        "fixture-detr.toml",
        "fixture-torchvision.toml",
        "fixture-yolov5.toml",
    ] {
        let text = std::fs::read_to_string(repo().join("detectors").join(name))
            .unwrap()
            .replace("\"../tests/", &format!("\"{}/tests/", repo().display()));
        std::fs::write(det.join(name), text).unwrap();
    }
    det
}

/// Points a manifest written by [`manifest`] at the spec copies of [`copy_specs`].
fn use_specs(manifest: &Path, specs: &Path) {
    let text = std::fs::read_to_string(manifest).unwrap().replace(
        &repo().join("detectors").display().to_string(),
        &specs.display().to_string(),
    );
    std::fs::write(manifest, text).unwrap();
}

/// Each detector thread opens its own session; one that cannot be opened (a model whose input has
/// the wrong name) stops the run with that error, and no unit is committed.
#[test]
fn a_session_that_cannot_be_opened_stops_the_run_before_any_commit() {
    let tmp = tempfile::tempdir().unwrap();
    let det = copy_specs(tmp.path());
    std::fs::write(
        det.join("fixture-ultralytics.toml"),
        unpinned_ultralytics_spec("bad_input_name.onnx"),
    )
    .unwrap();
    let out = tmp.path().join("out");
    let m = manifest(tmp.path(), &sample_images(), &out, 2);
    use_specs(&m, &det);
    let o = refaug(&["run", "--manifest", m.to_str().unwrap(), "--quiet"]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success(), "{err}");
    assert!(
        err.contains("bad_input_name.onnx") && err.contains("input is named `input`"),
        "{err}"
    );
    let committed = std::fs::read_dir(out.join(".refaug/units")).map_or(0, |d| d.count());
    assert_eq!(committed, 0, "no unit may be committed");
    for v in VARIANTS {
        let shards = std::fs::read_dir(out.join(v)).map_or(0, |d| {
            d.filter(|e| {
                e.as_ref()
                    .unwrap()
                    .path()
                    .extension()
                    .is_some_and(|x| x == "parquet")
            })
            .count()
        });
        assert_eq!(shards, 0, "{v}: no shard may be visible");
    }
}

#[test]
fn a_changed_threshold_detector_or_dataset_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let specs = copy_specs(tmp.path());
    let ann = copy_annotations(tmp.path());
    let out = tmp.path().join("out");
    let m = manifest_with(tmp.path(), &ann, &sample_images(), &out, 1000);
    use_specs(&m, &specs);
    run_ok(&m, &["--limit", "2"]);
    let refused = |what: &str| {
        let o = refaug(&[
            "run",
            "--manifest",
            m.to_str().unwrap(),
            "--quiet",
            "--limit",
            "2",
        ]);
        let err = String::from_utf8_lossy(&o.stderr).into_owned();
        assert_eq!(o.status.code(), Some(2), "{what}: {err}");
        err
    };

    // A threshold in a spec.
    let detr = specs.join("fixture-detr.toml");
    let original = std::fs::read_to_string(&detr).unwrap();
    std::fs::write(&detr, format!("{original}score_threshold = 0.3\n")).unwrap();
    assert!(refused("threshold").contains("other settings (variants)"));
    std::fs::write(&detr, &original).unwrap();
    run_ok(&m, &["--limit", "2"]);

    // Another detector (another model: its sha256 is part of the settings) for a variant.
    let text = std::fs::read_to_string(&m).unwrap();
    std::fs::write(
        &m,
        text.replace("fixture-ultralytics.toml", "fixture-yolov5.toml"),
    )
    .unwrap();
    assert!(refused("detector").contains("other settings (variants)"));
    std::fs::write(&m, &text).unwrap();
    run_ok(&m, &["--limit", "2"]);

    // Other annotations (the same refs, instances.json re-serialised).
    let instances = sample_instances();
    std::fs::write(
        ann.join("instances.json"),
        serde_json::to_vec_pretty(&instances).unwrap(),
    )
    .unwrap();
    assert!(refused("dataset").contains("other settings (dataset)"));
}

fn refaug_env(args: &[&str], env: &[(&str, &str)]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_refaug"))
        .args(args)
        .envs(env.iter().copied())
        .output()
        .unwrap()
}

#[test]
fn slurm_and_kubernetes_workers_complete_the_output_and_merge_rewrites_it() {
    let tmp = tempfile::tempdir().unwrap();
    let plain = tmp.path().join("plain");
    let split = tmp.path().join("split");
    let mp = manifest(
        &tmp.path().join("mp").tap_mkdir(),
        &sample_images(),
        &plain,
        4,
    );
    let ms = manifest(
        &tmp.path().join("ms").tap_mkdir(),
        &sample_images(),
        &split,
        4,
    );
    run_ok(&mp, &[]);
    let ms = ms.to_str().unwrap();
    // A Slurm array task 0 of 2, then a Kubernetes indexed job's pod 1 of 2.
    let first = refaug_env(
        &["run", "--manifest", ms, "--quiet"],
        &[
            ("SLURM_ARRAY_TASK_ID", "0"),
            ("SLURM_ARRAY_TASK_COUNT", "2"),
        ],
    );
    assert_eq!(
        first.status.code(),
        Some(3),
        "{}",
        String::from_utf8_lossy(&first.stderr)
    );
    assert!(String::from_utf8_lossy(&first.stderr).contains("worker 0/2 is done"));
    let second = refaug_env(
        &["run", "--manifest", ms, "--quiet"],
        &[("JOB_COMPLETION_INDEX", "1"), ("REFAUG_SHARD_COUNT", "2")],
    );
    assert!(
        second.status.success(),
        "{}",
        String::from_utf8_lossy(&second.stderr)
    );
    assert_eq!(tree(&plain), tree(&split));

    // `refaug merge` writes the manifests and errors.json again, byte for byte.
    let written: Vec<PathBuf> = VARIANTS
        .iter()
        .map(|v| split.join(v).join("manifest.json"))
        .chain([split.join("errors.json")])
        .collect();
    let before: Vec<Vec<u8>> = written.iter().map(|p| std::fs::read(p).unwrap()).collect();
    for p in &written {
        std::fs::remove_file(p).unwrap();
    }
    let merged = refaug(&["merge", split.to_str().unwrap()]);
    assert!(
        merged.status.success(),
        "{}",
        String::from_utf8_lossy(&merged.stderr)
    );
    let after: Vec<Vec<u8>> = written.iter().map(|p| std::fs::read(p).unwrap()).collect();
    assert_eq!(before, after);
    let v = refaug(&["validate", split.to_str().unwrap()]);
    assert!(v.status.success(), "{}", String::from_utf8_lossy(&v.stdout));
}

/// Copies a whole folder (an output) to `to`.
fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let dest = to.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            copy_tree(&e.path(), &dest);
        } else {
            std::fs::copy(e.path(), &dest).unwrap();
        }
    }
}

fn edit_json(path: &Path, edit: impl FnOnce(&mut serde_json::Value)) {
    let mut v: serde_json::Value = serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap();
    edit(&mut v);
    std::fs::write(path, serde_json::to_vec_pretty(&v).unwrap()).unwrap();
}

/// `refaug validate`'s report on `out`; asserts it found problems.
fn invalid_report(out: &Path) -> String {
    let v = refaug(&["validate", out.to_str().unwrap()]);
    let text = String::from_utf8_lossy(&v.stdout).into_owned();
    assert_eq!(v.status.code(), Some(1), "{text}");
    text
}

#[test]
fn validate_catches_wrong_counts_stray_files_errors_json_and_schema() {
    let tmp = tempfile::tempdir().unwrap();
    let base = tmp.path().join("base");
    let m = manifest(tmp.path(), &sample_images(), &base, 1000);
    run_ok(&m, &[]);
    let case = |name: &str| {
        let out = tmp.path().join(name);
        copy_tree(&base, &out);
        out
    };

    // Row count: the manifest says one row more than the shard has.
    let out = case("rows");
    edit_json(&out.join("yolo/manifest.json"), |v| {
        let rows = v["splits"]["train"]["rows"].as_u64().unwrap();
        v["splits"]["train"]["rows"] = serde_json::json!(rows + 1);
    });
    let text = invalid_report(&out);
    assert!(
        text.contains("split train:") && text.contains("refs in the source"),
        "{text}"
    );

    // Shard count: a shard missing from the manifest.
    let out = case("shards");
    edit_json(&out.join("detr/manifest.json"), |v| {
        v["splits"]["val"]["shards"] = serde_json::json!([]);
    });
    let text = invalid_report(&out);
    assert!(
        text.contains("split val lists 0 shards, the plan has 1"),
        "{text}"
    );
    assert!(
        text.contains("val-00000-of-00001.parquet: not listed"),
        "{text}"
    );

    // A stray Parquet file.
    let out = case("stray");
    std::fs::copy(
        out.join("fasterrcnn/test-00000-of-00001.parquet"),
        out.join("fasterrcnn/extra.parquet"),
    )
    .unwrap();
    let text = invalid_report(&out);
    assert!(
        text.contains("extra.parquet: not listed in manifest.json"),
        "{text}"
    );

    // errors.json listing a failure the manifests do not account for.
    let out = case("errors");
    edit_json(&out.join("errors.json"), |v| {
        v["failures"] = serde_json::json!([{
            "image_id": 1, "path": "x.jpg", "variant": null, "reason": "made up", "ref_ids": [7, 8]
        }]);
    });
    let text = invalid_report(&out);
    assert!(
        text.contains("0 refs of failed images, errors.json lists 2"),
        "{text}"
    );

    // A shard of another schema (a column dropped), with a manifest that matches its bytes.
    let out = case("schema");
    let shard = out.join("yolo/test-00000-of-00001.parquet");
    let batch = {
        let file = std::fs::File::open(&shard).unwrap();
        let mut reader =
            parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(file)
                .unwrap()
                .build()
                .unwrap();
        reader.next().unwrap().unwrap()
    };
    let keep: Vec<usize> = (0..batch.num_columns())
        .filter(|&i| batch.schema().field(i).name() != "best_iou")
        .collect();
    let batch = batch.project(&keep).unwrap();
    let rows = batch.num_rows();
    let file = std::fs::File::create(&shard).unwrap();
    let mut w = parquet::arrow::ArrowWriter::try_new(file, batch.schema(), None).unwrap();
    w.write(&batch).unwrap();
    w.close().unwrap();
    let sha = refaug::sha256_file(&shard).unwrap();
    edit_json(&out.join("yolo/manifest.json"), |v| {
        v["splits"]["test"]["shards"][0]["sha256"] = serde_json::json!(sha);
        v["splits"]["test"]["shards"][0]["rows"] = serde_json::json!(rows);
    });
    let text = invalid_report(&out);
    assert!(
        text.contains("test-00000-of-00001.parquet") && text.contains("schema"),
        "{text}"
    );
}
