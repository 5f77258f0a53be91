//! `refaug parity` end to end on a small fake reference folder made here (no `../shared`): three
//! fixture images, the `fixture-ultralytics` detector, fingerprints and a reference CSV whose
//! values come from Pillow / numpy (hashes below, computed with the commands quoted) and from
//! `tools/make_fixture_models.py`'s numpy detections (`tests/data/models/expected.json`), with a
//! few rows spoiled on purpose so every expected count is known by hand.

use std::path::{Path, PathBuf};
use std::process::Command;

use refaug::detect::runtime::RuntimeOptions;
use refaug::parity::compare::MatchCriteria;
use refaug::parity::run::{ParityArgs, run};
use refaug::parity::{Fingerprint, load_fingerprints};
use serde_json::Value;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn models_dir() -> PathBuf {
    root().join("tests/data/models")
}

/// (image, [H, W, 3], sha256 of `np.asarray(Image.open(p).convert("RGB")).tobytes()`, sha256 of
/// the ultralytics input: the image padded with 114 to 64×64 (scale 1, no resize; top/bottom or
/// left/right `round(d ∓ 0.1)`), `transpose(2, 0, 1)[None].astype(np.float32) / np.float32(255)`).
const IMAGES: [(&str, [usize; 3], &str, &str); 3] = [
    (
        "a_64x48.png",
        [48, 64, 3],
        "543b16c634de2b6007e5b02d744c3bd6c20bce1ff9a701438b8d0015b82ad1c9",
        "8d1683f7155bbdf7107670d2c75e1884822ca3b8d26ab3e540d896a8896b7a96",
    ),
    (
        "b_48x64.png",
        [64, 48, 3],
        "144d1277fe299f68a1edb5b783014ff55b47088ec25106d8133c7888d03d7d17",
        "fa7954baf517988827a8d7c8dbb5efa483a69c6265863b808c8eec0a82119e16",
    ),
    (
        "c_64x48.png",
        [48, 64, 3],
        "0961dc468ba2e63d45dd940787db16cb1d2867aeee6d3ecda07b85f7ca36e767",
        "a7ba7250228bc9a2a05efe26628ac511652da2fc1251b0eac307e3288d69b584",
    ),
];

const DETECTOR: &str = "fixture-ultralytics";

/// The numpy detections of `fixture-ultralytics` for one image: rows `[x1, y1, x2, y2, score, class]`.
fn expected_rows(image: &str) -> Vec<Vec<f64>> {
    let text = std::fs::read_to_string(models_dir().join("expected.json")).unwrap();
    let v: Value = serde_json::from_str(&text).unwrap();
    let stem = image.trim_end_matches(".png");
    v["detections"]["ultralytics"][stem]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            r.as_array()
                .unwrap()
                .iter()
                .map(|x| x.as_f64().unwrap())
                .collect()
        })
        .collect()
}

/// `<tmp>/ref/fake/images/*.png` and `<tmp>/ref/fake-results/{fingerprints.jsonl, DETECTOR.csv}`.
///
/// Spoiled on purpose: c's `rgb_sha256` (decode 2/3), b's `n_boxes` + 1 (counts 2/3); in the CSV
/// a's row 0 score + 0.002 and a's row 2 moved 5 px right (both unmatched), and a's row 6
/// (xmin 0) given xmin −7: outside the image, so it matches only once the reference is clipped.
/// Boxes: 10 + 9 + 9 = 28; matched 26 against the clipped reference, 25 against the raw one.
fn fake_reference(tmp: &Path) -> PathBuf {
    let reference = tmp.join("ref");
    let images = reference.join("fake/images");
    let results = reference.join("fake-results");
    std::fs::create_dir_all(&images).unwrap();
    std::fs::create_dir_all(&results).unwrap();
    let mut fps = String::new();
    let mut csv = String::from("file_name,xmin,ymin,xmax,ymax,confidence,class\n");
    for (i, (name, shape, rgb, input)) in IMAGES.iter().enumerate() {
        std::fs::copy(models_dir().join("images").join(name), images.join(name)).unwrap();
        let mut rows = expected_rows(name);
        let n_boxes = rows.len() + usize::from(*name == "b_48x64.png");
        let rgb = if *name == "c_64x48.png" {
            "0".repeat(64)
        } else {
            rgb.to_string()
        };
        let fp = Fingerprint {
            detector: DETECTOR.into(),
            model: "ultralytics.onnx".into(),
            processor: None,
            file_name: name.to_string(),
            image_id: i as u64 + 1,
            rgb_shape: shape.to_vec(),
            rgb_sha256: rgb,
            input_name: "images".into(),
            input_shape: vec![1, 3, 64, 64],
            input_dtype: "float32".into(),
            input_sha256: input.to_string(),
            n_boxes,
        };
        fps.push_str(&serde_json::to_string(&fp).unwrap());
        fps.push('\n');
        if *name == "a_64x48.png" {
            rows[0][4] += 0.002;
            rows[2][0] += 5.0;
            rows[2][2] += 5.0;
            assert_eq!(rows[6][0], 0.0);
            rows[6][0] = -7.0;
        }
        for r in rows {
            csv.push_str(&format!(
                "{name},{:.4},{:.4},{:.4},{:.4},{:.6},{}\n",
                r[0], r[1], r[2], r[3], r[4], r[5] as i64
            ));
        }
    }
    std::fs::write(results.join("fingerprints.jsonl"), fps).unwrap();
    std::fs::write(results.join(format!("{DETECTOR}.csv")), csv).unwrap();
    reference
}

#[test]
fn parity_on_a_fake_reference_counts_every_stage() {
    let tmp = tempfile::tempdir().unwrap();
    let reference = fake_reference(tmp.path());
    let out = tmp.path().join("out");
    let args = ParityArgs {
        reference,
        dataset: "fake".into(),
        detectors: root().join("detectors"),
        models: Some(models_dir()),
        out: out.clone(),
        runtime: RuntimeOptions::default(),
        criteria: MatchCriteria::default(),
    };
    let outcome = run(&args).unwrap();
    assert_eq!(outcome.detectors.len(), 1);
    let d = &outcome.detectors[0];
    assert_eq!(d.name, DETECTOR);
    assert!(d.problems.is_empty(), "{:?}", d.problems);
    assert_eq!(
        d.model.as_deref(),
        Some(models_dir().join("ultralytics.onnx").as_path())
    );
    assert_eq!((d.decode.matched, d.decode.total), (2, 3));
    assert_eq!(d.decode.misses[0].file_name, "c_64x48.png");
    assert_eq!((d.input.matched, d.input.total), (3, 3));
    assert_eq!((d.counts.matched, d.counts.total), (2, 3));
    assert_eq!(d.counts.misses[0].file_name, "b_48x64.png");
    assert_eq!(d.counts.misses[0].reason, "refaug 9 boxes, reference 10");
    let b = d.boxes.as_ref().unwrap();
    assert_eq!(b.reference_outside, 1);
    assert!(b.clipped, "fixture-ultralytics clips, as ultralytics does");
    let c = &b.checked;
    assert_eq!(
        (c.reference_boxes, c.candidate_boxes, c.matched),
        (28, 28, 26)
    );
    let raw = b.raw.as_ref().expect("clipping changed a reference box");
    assert_eq!((raw.matched, raw.total()), (25, 28));
    assert!(d.images_per_s.is_some_and(|s| s > 0.0));
    assert!(!outcome.passed(1.0));
    // decode and counts at 2/3 are the lowest rates.
    assert!(outcome.passed(0.66));
    assert!(!outcome.passed(0.67));

    // refaug's fingerprints: the true hashes (also for the image whose reference hash was spoiled).
    let ours = load_fingerprints(&out.join("fingerprints.jsonl")).unwrap();
    assert_eq!(ours.len(), 3);
    for (fp, (name, shape, rgb, input)) in ours.iter().zip(IMAGES) {
        assert_eq!(fp.file_name, name);
        assert_eq!(fp.rgb_shape, shape);
        assert_eq!(fp.rgb_sha256, rgb);
        assert_eq!(fp.input_sha256, input);
        assert_eq!(fp.model, "ultralytics.onnx");
        assert_eq!(fp.n_boxes, expected_rows(name).len());
    }
    let csv = std::fs::read_to_string(out.join(format!("{DETECTOR}.csv"))).unwrap();
    assert_eq!(csv.lines().count(), 1 + 28);
}

#[test]
fn parity_command_prints_the_table_and_exits_by_min_rate() {
    let tmp = tempfile::tempdir().unwrap();
    let reference = fake_reference(tmp.path());
    let run_cli = |min_rate: &str| {
        Command::new(env!("CARGO_BIN_EXE_refaug"))
            .arg("parity")
            .arg("--reference")
            .arg(&reference)
            .args([
                "--dataset",
                "fake",
                "--threads",
                "1",
                "--min-rate",
                min_rate,
            ])
            .arg("--models")
            .arg(models_dir())
            .arg("--out")
            .arg(tmp.path().join("out"))
            .current_dir(root())
            .output()
            .unwrap()
    };
    let out = run_cli("1.0");
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(1),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for want in [
        "decode (rgb_sha256)",
        "2 / 3",
        "66.67 %",
        "boxes vs clipped reference     26 / 28",
        "92.86 %",
        "boxes vs raw reference         25 / 28",
        "1 reference boxes clipped",
        "c_64x48.png: decoded pixels differ (sha256)",
        "parity: FAILED",
    ] {
        assert!(text.contains(want), "{want:?} not in\n{text}");
    }
    let out = run_cli("0.5");
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
}

#[test]
fn a_missing_reference_folder_is_an_error_naming_the_file() {
    let tmp = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_refaug"))
        .arg("parity")
        .arg("--reference")
        .arg(tmp.path())
        .current_dir(root())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("public-24-results/fingerprints.jsonl"),
        "{err}"
    );
}
