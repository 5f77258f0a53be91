//! Detectors end to end on tiny fixture models: ONNX Runtime loading, specs, model IO validation,
//! raw session outputs, full detection, batching, and the `doctor` / `detectors check` commands.
//!
//! The fixtures (`tests/data/models/`, `detectors/fixture-*.toml`) and every expected value come
//! from `tools/make_fixture_models.py`, which computes them in numpy, independently of refaug and
//! of onnxruntime. No test here needs `../shared`.

use std::path::{Path, PathBuf};
use std::process::Command;

use image::RgbImage;
use refaug::detect::Detection;
use refaug::detect::detector::{BatchAxis, DetectError, Detector, RawData, prepare};
use refaug::detect::runtime::{Device, RuntimeOptions, SHARED_POOL, runtime};
use refaug::detect::spec::{DetectorSpec, ModelHash};
use serde_json::Value;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn models_dir() -> PathBuf {
    root().join("tests/data/models")
}

fn spec(name: &str) -> DetectorSpec {
    DetectorSpec::from_file(&root().join("detectors").join(format!("{name}.toml")))
        .unwrap_or_else(|e| panic!("{name}: {e:#}"))
}

fn opts(max_batch: usize) -> RuntimeOptions {
    RuntimeOptions {
        max_batch,
        ..RuntimeOptions::default()
    }
}

fn detector(name: &str, max_batch: usize) -> Detector {
    Detector::new(spec(name), &opts(max_batch)).unwrap_or_else(|e| panic!("{name}: {}", chain(&e)))
}

/// The error and all its sources, as the CLI prints them.
fn chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        s.push_str(": ");
        s.push_str(&c.to_string());
        cur = c.source();
    }
    s
}

fn json(file: &str) -> Value {
    let text = std::fs::read_to_string(models_dir().join(file)).unwrap();
    serde_json::from_str(&text).unwrap()
}

fn image(name: &str) -> RgbImage {
    image::open(models_dir().join("images").join(format!("{name}.png")))
        .unwrap()
        .to_rgb8()
}

/// A spec file in a temp dir: `text` with `{models}` replaced by the fixture models' folder.
fn temp_spec(dir: &tempfile::TempDir, text: &str) -> DetectorSpec {
    let path = dir.path().join("spec.toml");
    let text = text.replace("{models}", models_dir().to_str().unwrap());
    std::fs::write(&path, text).unwrap();
    DetectorSpec::from_file(&path).unwrap()
}

fn sha_of(model: &str) -> String {
    json("expected.json")["models"][model]
        .as_str()
        .unwrap()
        .to_string()
}

// ---------------------------------------------------------------------------------------------
// Runtime and doctor
// ---------------------------------------------------------------------------------------------

#[test]
fn runtime_loads_the_pinned_onnxruntime() {
    let rt = runtime().unwrap_or_else(|e| panic!("{}", chain(&e)));
    assert_eq!(rt.version(), "1.31.1", "{}", rt.library_path().display());
    assert!(rt.library_path().is_file());
    let name = rt.library_path().file_name().unwrap().to_str().unwrap();
    assert!(name.starts_with("libonnxruntime.so"), "{name}");
    if std::env::var_os("ORT_DYLIB_PATH").is_none() {
        assert!(
            rt.library_path()
                .to_str()
                .unwrap()
                .contains(".venv/lib/python3"),
            "{}",
            rt.library_path().display()
        );
    }
    assert!(rt.providers().iter().any(|p| p == "CPUExecutionProvider"));
}

#[test]
fn doctor_reports_library_version_and_providers() {
    let out = Command::new(env!("CARGO_BIN_EXE_refaug"))
        .args(["doctor", "--json"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["version"], "1.31.1");
    assert!(Path::new(v["library"].as_str().unwrap()).is_file());
    let providers: Vec<&str> = v["providers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p.as_str().unwrap())
        .collect();
    assert!(providers.contains(&"CPUExecutionProvider"), "{providers:?}");

    let out = Command::new(env!("CARGO_BIN_EXE_refaug"))
        .arg("doctor")
        .output()
        .unwrap();
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.contains("ONNX Runtime version: 1.31.1"), "{text}");
}

#[test]
fn a_missing_ort_dylib_path_says_what_to_run() {
    let out = Command::new(env!("CARGO_BIN_EXE_refaug"))
        .arg("doctor")
        .env("ORT_DYLIB_PATH", "/nonexistent/libonnxruntime.so")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(
        err.contains("/nonexistent/libonnxruntime.so") && err.contains("bash scripts/setup.sh"),
        "{err}"
    );
}

#[test]
fn cuda_is_never_a_silent_cpu_fallback() {
    let rt = runtime().unwrap();
    let cuda = RuntimeOptions {
        device: Device::Cuda(0),
        ..RuntimeOptions::default()
    };
    let result = Detector::new(spec("fixture-ultralytics"), &cuda);
    if rt.providers().iter().any(|p| p == "CUDAExecutionProvider") {
        // A GPU build: the session must come up on CUDA (or fail loudly); never CPU quietly.
        if let Err(e) = result {
            let msg = chain(&e);
            assert!(msg.contains("cuda:0"), "{msg}");
        }
    } else {
        let msg = chain(&result.unwrap_err());
        assert!(
            msg.contains("cuda:0")
                && msg.contains("CPUExecutionProvider")
                && msg.contains("--device cpu"),
            "{msg}"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Specs
// ---------------------------------------------------------------------------------------------

#[test]
fn every_shipped_spec_parses_with_a_unique_name() {
    let mut names = std::collections::BTreeSet::new();
    let mut count = 0;
    for entry in std::fs::read_dir(root().join("detectors")).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "toml") {
            let s = DetectorSpec::from_file(&path).unwrap_or_else(|e| panic!("{e}"));
            assert!(names.insert(s.name.clone()), "duplicate name {}", s.name);
            count += 1;
        }
    }
    assert!(count >= 15, "{count} specs");
    for real in [
        "yolov5s",
        "yolov8x",
        "detr-resnet-50",
        "fasterrcnn-resnet50-fpn",
    ] {
        let s = spec(real);
        assert!(
            s.sees_eval_images,
            "{real}: COCO train2017 contains the RefCOCO images"
        );
        assert!(s.export.is_some(), "{real}: no export command");
        assert_eq!(s.score_threshold, 0.1);
    }
}

#[test]
fn fixture_specs_are_pinned_to_the_committed_models() {
    for (name, model) in [
        ("fixture-yolov5", "yolov5.onnx"),
        ("fixture-ultralytics", "ultralytics.onnx"),
        ("fixture-detr", "detr.onnx"),
        ("fixture-torchvision", "torchvision.onnx"),
    ] {
        let s = spec(name);
        assert_eq!(s.model_sha256, ModelHash::Pinned(sha_of(model)), "{name}");
        assert_eq!(s.verify_model_sha256().unwrap(), sha_of(model), "{name}");
    }
}

#[test]
fn sha256_mismatch_names_both_hashes_and_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let wrong = "0".repeat(64);
    let s = temp_spec(
        &dir,
        &format!(
            r#"name = "x"
family = "ultralytics"
model = "{{models}}/ultralytics.onnx"
model_sha256 = "{wrong}"
trained_on = "nothing"
sees_eval_images = false
classes = "coco80"
input_size = [64, 64]
"#
        ),
    );
    let msg = chain(&Detector::new(s, &opts(1)).unwrap_err());
    assert!(msg.contains(&wrong), "{msg}");
    assert!(msg.contains(&sha_of("ultralytics.onnx")), "{msg}");
    assert!(
        msg.contains("ultralytics.onnx") && msg.contains("spec.toml"),
        "{msg}"
    );
}

#[test]
fn unknown_hash_loads_and_reports_the_actual_one() {
    let dir = tempfile::tempdir().unwrap();
    let s = temp_spec(
        &dir,
        r#"name = "x"
family = "torchvision"
model = "{models}/torchvision.onnx"
model_sha256 = "unknown"
trained_on = "nothing"
sees_eval_images = false
classes = "coco91"
"#,
    );
    let d = Detector::new(s, &opts(1)).unwrap();
    assert_eq!(d.model_sha256(), sha_of("torchvision.onnx"));
}

#[test]
fn unknown_spec_key_is_refused_with_the_file_name() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("typo.toml");
    std::fs::write(
        &path,
        "name = \"x\"\nfamily = \"detr\"\nmodel = \"m.onnx\"\nmodel_sha256 = \"unknown\"\n\
         trained_on = \"t\"\nsees_eval_images = false\nclasses = \"coco91\"\nscore_treshold = 0.3\n",
    )
    .unwrap();
    let msg = chain(&DetectorSpec::from_file(&path).unwrap_err());
    assert!(
        msg.contains("typo.toml") && msg.contains("score_treshold"),
        "{msg}"
    );
}

#[test]
fn absent_model_says_how_to_export_it() {
    let s = spec("yolov8x");
    if s.model_present() {
        return; // someone exported it: nothing to check here
    }
    let msg = chain(&Detector::new(s, &opts(1)).unwrap_err());
    assert!(
        msg.contains("model not present") && msg.contains("tools/export_detectors.py yolov8x"),
        "{msg}"
    );
}

// ---------------------------------------------------------------------------------------------
// Model IO validation
// ---------------------------------------------------------------------------------------------

fn bad_model_error(family: &str, classes: &str, model: &str) -> String {
    let dir = tempfile::tempdir().unwrap();
    let extra = if family == "ultralytics" || family == "yolov5" {
        "input_size = [64, 64]\n"
    } else {
        ""
    };
    let s = temp_spec(
        &dir,
        &format!(
            "name = \"bad\"\nfamily = \"{family}\"\nmodel = \"{{models}}/{model}\"\n\
             model_sha256 = \"unknown\"\ntrained_on = \"nothing\"\nsees_eval_images = false\n\
             classes = {classes}\n{extra}"
        ),
    );
    let err = Detector::new(s, &opts(1)).unwrap_err();
    assert!(matches!(err, DetectError::ModelIo { .. }), "{err:?}");
    let msg = chain(&err);
    assert!(
        msg.contains("`bad`") && msg.contains("spec.toml") && msg.contains(model),
        "{msg}"
    );
    msg
}

#[test]
fn wrong_input_name_is_refused() {
    let msg = bad_model_error("ultralytics", "\"coco80\"", "bad_input_name.onnx");
    assert!(
        msg.contains("input is named `input`") && msg.contains("`images`"),
        "{msg}"
    );
}

#[test]
fn wrong_input_rank_is_refused() {
    let msg = bad_model_error("ultralytics", "\"coco80\"", "bad_input_rank.onnx");
    assert!(
        msg.contains("rank 3") && msg.contains("expected rank 4"),
        "{msg}"
    );
}

#[test]
fn wrong_output_layout_is_refused() {
    // [batch, anchors = 16, 84] (yolov5-like, no transpose) where ultralytics writes [batch, 84, anchors]
    let msg = bad_model_error("ultralytics", "\"coco80\"", "bad_output_layout.onnx");
    assert!(
        msg.contains("[batch, 16, 84]") && msg.contains("4 + classes = 84"),
        "{msg}"
    );
    // and the ultralytics layout given to a yolov5 spec
    let msg = bad_model_error("yolov5", "\"coco80\"", "ultralytics.onnx");
    assert!(msg.contains("5 + classes = 85"), "{msg}");
}

#[test]
fn class_count_must_match_the_spec() {
    let msg = bad_model_error("yolov5", "\"coco80\"", "bad_classes.onnx");
    assert!(
        msg.contains("[batch, 16, 25]") && msg.contains("80 classes"),
        "{msg}"
    );
    let msg = bad_model_error("detr", "[\"cat\", \"dog\"]", "detr.onnx");
    assert!(
        msg.contains("classes + 1 = 3") && msg.contains("2 classes (custom)"),
        "{msg}"
    );
}

#[test]
fn family_mismatch_is_refused() {
    let msg = bad_model_error("detr", "\"coco91\"", "ultralytics.onnx");
    assert!(msg.contains("`pixel_values`"), "{msg}");
    let msg = bad_model_error("torchvision", "\"coco91\"", "yolov5.onnx");
    assert!(msg.contains("expected rank 3"), "{msg}");
}

#[test]
fn batch_axis_is_read_from_the_model() {
    assert_eq!(
        detector("fixture-yolov5", 4).batch_axis(),
        BatchAxis::Dynamic
    );
    assert_eq!(detector("fixture-yolov5", 4).batch_limit(), 4);
    assert_eq!(detector("fixture-detr", 4).batch_axis(), BatchAxis::Dynamic);
    let tv = detector("fixture-torchvision", 4);
    assert_eq!(tv.batch_axis(), BatchAxis::One);
    assert_eq!(tv.batch_limit(), 1);
}

// ---------------------------------------------------------------------------------------------
// Raw session outputs (numpy maths of the generator vs onnxruntime through refaug)
// ---------------------------------------------------------------------------------------------

/// The generator's formula input (`raw_input` in tools/make_fixture_models.py).
fn raw_input(shape: &[usize]) -> Vec<f32> {
    let (lead, h, w) = (
        shape.len() - 3,
        shape[shape.len() - 2],
        shape[shape.len() - 1],
    );
    let n_batch = if lead == 1 { shape[0] } else { 1 };
    let mut v = Vec::with_capacity(n_batch * 3 * h * w);
    for n in 0..n_batch {
        for c in 0..3 {
            for i in 0..h {
                for j in 0..w {
                    let k = if n % 2 == 0 {
                        (c * 31 + i * 7 + j * 13) % 256
                    } else {
                        (c * 50 + i * j) % 97
                    };
                    v.push(k as f32 / 255.0);
                }
            }
        }
    }
    v
}

fn check_raw(spec_name: &str, family: &str) {
    let expected = &json("raw_outputs.json")[family];
    let shape: Vec<usize> = expected["input_shape"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d.as_u64().unwrap() as usize)
        .collect();
    let mut d = detector(spec_name, 1);
    let outputs = d.run_raw(&shape, &raw_input(&shape)).unwrap();
    let want = expected["outputs"].as_object().unwrap();
    assert_eq!(outputs.len(), want.len(), "{spec_name}");
    for out in &outputs {
        let e = &want[&out.name];
        let eshape: Vec<i64> = e["shape"]
            .as_array()
            .unwrap()
            .iter()
            .map(|d| d.as_i64().unwrap())
            .collect();
        assert_eq!(out.shape, eshape, "{spec_name}: {}", out.name);
        let edata = e["data"].as_array().unwrap();
        match &out.data {
            RawData::F32(v) => {
                assert_eq!(v.len(), edata.len());
                for (k, (a, b)) in v.iter().zip(edata).enumerate() {
                    let b = b.as_f64().unwrap() as f32;
                    let tol = 1e-4 * (1.0 + b.abs());
                    assert!(
                        (a - b).abs() <= tol,
                        "{spec_name}: {}[{k}] = {a}, numpy {b}",
                        out.name
                    );
                }
            }
            RawData::I64(v) => {
                let e: Vec<i64> = edata.iter().map(|x| x.as_i64().unwrap()).collect();
                assert_eq!(v, &e, "{spec_name}: {}", out.name);
            }
        }
    }
}

#[test]
fn raw_outputs_yolov5() {
    check_raw("fixture-yolov5", "yolov5");
}

#[test]
fn raw_outputs_ultralytics() {
    check_raw("fixture-ultralytics", "ultralytics");
}

#[test]
fn raw_outputs_detr() {
    check_raw("fixture-detr", "detr");
}

#[test]
fn raw_outputs_detr_with_pixel_mask_input_fed_all_ones() {
    // the model shifts every logit by 1000 unless pixel_mask is all ones
    check_raw("fixture-detr-pixel-mask", "detr");
}

#[test]
fn raw_outputs_torchvision() {
    check_raw("fixture-torchvision", "torchvision");
}

#[test]
fn raw_batch_elements_are_the_single_runs() {
    let mut d = detector("fixture-ultralytics", 2);
    let shape = [2, 3, 32, 40];
    let both = raw_input(&shape);
    let half = both.len() / 2;
    let RawData::F32(batch) = &d.run_raw(&shape, &both).unwrap()[0].data else {
        panic!()
    };
    // element 1 alone: its formula is the odd one, so build it by hand
    let RawData::F32(second) = &d.run_raw(&[1, 3, 32, 40], &both[half..]).unwrap()[0].data else {
        panic!()
    };
    let n = batch.len() / 2;
    assert_ne!(
        &batch[..n],
        &batch[n..],
        "the two inputs must give different outputs"
    );
    for (a, b) in batch[n..].iter().zip(second) {
        assert!((a - b).abs() <= 1e-5 * (1.0 + b.abs()), "{a} vs {b}");
    }
}

/// The thread model is a speed setting: a session on the process's shared pool and sessions with
/// own pools of 1 and 3 threads give the same bits for every family's fixture (the output files
/// must not depend on it; `tests/run.rs` checks whole runs).
#[test]
fn shared_pool_and_own_pools_give_the_same_bits() {
    let bits = |outputs: Vec<refaug::detect::detector::RawTensor>| -> Vec<(String, Vec<u64>)> {
        outputs
            .into_iter()
            .map(|t| {
                let v = match t.data {
                    RawData::F32(v) => v.iter().map(|x| u64::from(x.to_bits())).collect(),
                    RawData::I64(v) => v.iter().map(|&x| x as u64).collect(),
                };
                (t.name, v)
            })
            .collect()
    };
    for (spec_name, family) in [
        ("fixture-yolov5", "yolov5"),
        ("fixture-ultralytics", "ultralytics"),
        ("fixture-detr", "detr"),
        ("fixture-torchvision", "torchvision"),
    ] {
        let shape: Vec<usize> = json("raw_outputs.json")[family]["input_shape"]
            .as_array()
            .unwrap()
            .iter()
            .map(|d| d.as_u64().unwrap() as usize)
            .collect();
        let input = raw_input(&shape);
        let run = |intra_threads: usize| {
            let opts = RuntimeOptions {
                intra_threads,
                ..opts(1)
            };
            let mut d = Detector::new(spec(spec_name), &opts).unwrap();
            bits(d.run_raw(&shape, &input).unwrap())
        };
        let shared = run(SHARED_POOL);
        assert!(!shared.is_empty() && shared.iter().all(|(_, v)| !v.is_empty()));
        assert_eq!(shared, run(1), "{spec_name}: shared pool vs 1 own thread");
        assert_eq!(shared, run(3), "{spec_name}: shared pool vs 3 own threads");
    }
}

// ---------------------------------------------------------------------------------------------
// Full detection (needs the pre-processing kernels and family post-processing)
// ---------------------------------------------------------------------------------------------

fn expected_detections(key: &str, image_name: &str) -> Vec<Detection> {
    let rows = json("expected.json")["detections"][key][image_name].clone();
    rows.as_array()
        .unwrap_or_else(|| panic!("no expectation for {key}/{image_name}"))
        .iter()
        .map(|r| {
            let f = |i: usize| r[i].as_f64().unwrap() as f32;
            Detection {
                bbox: refaug::boxes::BoxXyxy {
                    xmin: f(0),
                    ymin: f(1),
                    xmax: f(2),
                    ymax: f(3),
                },
                score: f(4),
                class_id: r[5].as_i64().unwrap() as i32,
            }
        })
        .collect()
}

fn assert_same(got: &[Detection], want: &[Detection], what: &str) {
    assert_eq!(got.len(), want.len(), "{what}: {got:?}\nexpected {want:?}");
    for (k, (g, w)) in got.iter().zip(want).enumerate() {
        let close = |a: f32, b: f32, tol: f32| (a - b).abs() <= tol;
        let ok = g.class_id == w.class_id
            && close(g.score, w.score, 2e-5)
            && close(g.bbox.xmin, w.bbox.xmin, 2e-3)
            && close(g.bbox.ymin, w.bbox.ymin, 2e-3)
            && close(g.bbox.xmax, w.bbox.xmax, 2e-3)
            && close(g.bbox.ymax, w.bbox.ymax, 2e-3);
        assert!(ok, "{what}: box {k}: {g:?}\nexpected {w:?}");
    }
}

const ALL: [&str; 4] = ["a_64x48", "b_48x64", "c_64x48", "d_80x60"];
const NO_RESIZE: [&str; 3] = ["a_64x48", "b_48x64", "c_64x48"];

/// Each image alone, then all in one `detect` call with batches of `max_batch`, then in reverse
/// order: every output equals its own image's expectation (which all differ), so an output
/// attributed to the wrong batch element fails.
fn check_family(spec_name: &str, key: &str, names: &[&str], max_batch: usize) {
    let images: Vec<RgbImage> = names.iter().map(|n| image(n)).collect();
    let want: Vec<Vec<Detection>> = names.iter().map(|n| expected_detections(key, n)).collect();
    for (i, w) in want.iter().enumerate() {
        for j in 0..i {
            assert_ne!(
                w, &want[j],
                "expectations of {} and {} coincide",
                names[i], names[j]
            );
        }
    }
    let mut one = detector(spec_name, 1);
    for (i, img) in images.iter().enumerate() {
        let got = one.detect(&[img]).unwrap();
        assert_eq!(got.len(), 1);
        assert_same(
            &got[0],
            &want[i],
            &format!("{spec_name} {} alone", names[i]),
        );
    }
    let mut batched = detector(spec_name, max_batch);
    let refs: Vec<&RgbImage> = images.iter().collect();
    let got = batched.detect(&refs).unwrap();
    assert_eq!(got.len(), names.len());
    for (i, g) in got.iter().enumerate() {
        assert_same(
            g,
            &want[i],
            &format!("{spec_name} {} in a batch of {max_batch}", names[i]),
        );
    }
    let reversed: Vec<&RgbImage> = images.iter().rev().collect();
    let got = batched.detect(&reversed).unwrap();
    for (k, g) in got.iter().enumerate() {
        let i = names.len() - 1 - k;
        assert_same(g, &want[i], &format!("{spec_name} {} reversed", names[i]));
    }
}

#[test]
fn detect_yolov5_matches_numpy() {
    check_family("fixture-yolov5", "yolov5", &ALL, 3);
}

#[test]
fn detect_ultralytics_matches_numpy() {
    check_family("fixture-ultralytics", "ultralytics", &ALL, 3);
}

#[test]
fn detect_detr_matches_numpy() {
    // a and c share a processed size (one batch), b has its own
    check_family("fixture-detr", "detr", &NO_RESIZE, 3);
}

#[test]
fn detect_detr_pil_processor_matches_numpy() {
    // d is resized (PIL BILINEAR) to 64x48 and shares a batch with a and c
    check_family("fixture-detr-pil", "detr-pil", &ALL, 4);
}

#[test]
fn detect_detr_with_pixel_mask_input() {
    check_family("fixture-detr-pixel-mask", "detr", &NO_RESIZE, 3);
}

#[test]
fn detect_torchvision_matches_numpy() {
    check_family("fixture-torchvision", "torchvision", &ALL, 3);
}

/// The two rectangular conventions on five images of three input shapes (AutoShape: 64×48 for
/// a, c, d, e and 48×64 for b; predict: 64×48 for a, c, d, 48×64 for b, 64×64 for e), alone and
/// in mixed batches: every image gets its own expectation.
const RECT: [&str; 5] = ["a_64x48", "b_48x64", "c_64x48", "d_80x60", "e_100x76"];

#[test]
fn detect_yolov5_autoshape_matches_numpy() {
    check_family("fixture-yolov5-autoshape", "yolov5-autoshape", &RECT, 3);
}

#[test]
fn detect_ultralytics_predict_matches_numpy() {
    check_family(
        "fixture-ultralytics-predict",
        "ultralytics-predict",
        &RECT,
        3,
    );
}

/// The model input each convention feeds for the 100×76 image (size 64, stride 16), worked out
/// from the libraries' rules: AutoShape `g = 64 / 100`, `int(76 · 0.64) = 48` → shape [48, 64],
/// then `r = min(48 / 76, 64 / 100)` = 0.6316 → 63×48 (one grey column at the right);
/// `LetterBox(auto=True)`: `r = 0.64` → 64×49, `(64 − 49) mod 16 = 15` rows of padding, 7 above.
#[test]
fn conventions_choose_their_own_input_shapes() {
    let img = image("e_100x76");
    for (name, (h, w), (new_w, new_h, top, left)) in [
        ("fixture-yolov5", (64, 64), (64, 49, 7, 0)),
        ("fixture-yolov5-autoshape", (48, 64), (63, 48, 0, 0)),
        ("fixture-ultralytics-predict", (64, 64), (64, 49, 7, 0)),
    ] {
        let p = prepare(&spec(name), &img);
        assert_eq!((p.tensor.height, p.tensor.width), (h, w), "{name}");
        let g = p.geometry.unwrap();
        assert_eq!(
            (g.new_w, g.new_h, g.top, g.left),
            (new_w, new_h, top, left),
            "{name}"
        );
    }
}

#[test]
fn detections_are_clipped_as_the_library_clips_and_sorted() {
    let mut past_the_image = 0;
    for (spec_name, names, clipped) in [
        ("fixture-yolov5", &ALL[..], true),
        ("fixture-ultralytics", &ALL[..], true),
        ("fixture-yolov5-autoshape", &RECT[..], true),
        ("fixture-ultralytics-predict", &RECT[..], true),
        ("fixture-detr", &NO_RESIZE[..], false),
        ("fixture-torchvision", &ALL[..], true),
    ] {
        assert_eq!(spec(spec_name).clip_boxes, clipped, "{spec_name}");
        let images: Vec<RgbImage> = names.iter().map(|n| image(n)).collect();
        let refs: Vec<&RgbImage> = images.iter().collect();
        let got = detector(spec_name, 4).detect(&refs).unwrap();
        for (img, dets) in images.iter().zip(&got) {
            let (w, h) = (img.width() as f32, img.height() as f32);
            assert!(!dets.is_empty(), "{spec_name}");
            for d in dets {
                let b = d.bbox;
                assert!(b.xmin <= b.xmax && b.ymin <= b.ymax, "{spec_name} {b:?}");
                let inside = 0.0 <= b.xmin && b.xmax <= w && 0.0 <= b.ymin && b.ymax <= h;
                assert!(inside || !clipped, "{spec_name} {b:?}");
                past_the_image += usize::from(!inside);
                assert!(d.score > 0.1, "{spec_name} {d:?}");
            }
            assert!(
                dets.windows(2).all(|p| p[0].score >= p[1].score),
                "{spec_name}"
            );
        }
    }
    // DETR's own boxes reach past the image here (so the unclipped path is exercised).
    assert!(past_the_image > 0);
    // The same DETR detector told to clip gives the clipped boxes.
    let mut clipping = spec("fixture-detr");
    clipping.clip_boxes = true;
    let mut d = Detector::new(clipping, &opts(1)).unwrap();
    let img = image("a_64x48");
    let unclipped = detector("fixture-detr", 1)
        .detect(&[&img])
        .unwrap()
        .remove(0);
    let clipped = d.detect(&[&img]).unwrap().remove(0);
    assert_eq!(unclipped.len(), clipped.len());
    for (u, c) in unclipped.iter().zip(&clipped) {
        assert_eq!(c.bbox.xmin, u.bbox.xmin.clamp(0.0, 64.0));
        assert_eq!(c.bbox.ymin, u.bbox.ymin.clamp(0.0, 48.0));
        assert_eq!(c.bbox.xmax, u.bbox.xmax.clamp(0.0, 64.0));
        assert_eq!(c.bbox.ymax, u.bbox.ymax.clamp(0.0, 48.0));
    }
}

#[test]
fn rectangular_conventions_need_dynamic_height_and_width() {
    // A static export (input declared [batch, 3, 64, 64]) cannot take a stride rectangle per
    // image: refused at load, naming the convention.
    let dir = tempfile::tempdir().unwrap();
    let s = temp_spec(
        &dir,
        r#"name = "static"
family = "ultralytics"
convention = "predict"
model = "{models}/static_64.onnx"
model_sha256 = "unknown"
trained_on = "nothing"
sees_eval_images = false
classes = "coco80"
"#,
    );
    let err = Detector::new(s, &opts(1)).unwrap_err();
    let msg = chain(&err);
    assert!(
        msg.contains("\"predict\" convention") && msg.contains("dynamic"),
        "{msg}"
    );
}

#[test]
fn nan_output_names_the_spec_and_the_image() {
    let expected = json("expected.json");
    let dark = expected["nan_image"].as_str().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let s = temp_spec(
        &dir,
        r#"name = "nan"
family = "ultralytics"
model = "{models}/nan_output.onnx"
model_sha256 = "unknown"
trained_on = "nothing"
sees_eval_images = false
classes = "coco80"
input_size = [64, 64]
"#,
    );
    let mut d = Detector::new(s, &opts(3)).unwrap();
    let others: Vec<RgbImage> = NO_RESIZE
        .iter()
        .filter(|n| **n != dark)
        .map(|n| image(n))
        .collect();
    let dark_img = image(dark);
    // the bright images alone: fine
    d.detect(&[&others[0], &others[1]]).unwrap();
    // the dark one third in a batch of three
    let err = d.detect(&[&others[0], &others[1], &dark_img]).unwrap_err();
    assert!(
        matches!(err, DetectError::NonFinite { image: 2, .. }),
        "{err:?}"
    );
    let msg = chain(&err);
    assert!(
        msg.contains("`nan`") && msg.contains("spec.toml") && msg.contains("image 2"),
        "{msg}"
    );
}

#[test]
fn empty_image_is_an_error() {
    let mut d = detector("fixture-torchvision", 1);
    let empty = RgbImage::new(0, 10);
    let err = d.detect(&[&image("a_64x48"), &empty]).unwrap_err();
    assert!(
        matches!(err, DetectError::EmptyImage { image: 1, .. }),
        "{err:?}"
    );
}

// ---------------------------------------------------------------------------------------------
// `refaug detectors check`
// ---------------------------------------------------------------------------------------------

fn check_cmd(specs: &[&str]) -> (Option<i32>, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_refaug"))
        .current_dir(root())
        .arg("detectors")
        .arg("check")
        .args(specs)
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.code(), text)
}

#[test]
fn detectors_check_reports_an_absent_model_with_its_export_command() {
    if spec("yolov5s").model_present() {
        return;
    }
    let (code, text) = check_cmd(&["detectors/yolov5s.toml"]);
    assert_eq!(code, Some(1), "{text}");
    assert!(
        text.contains("model not present") && text.contains("tools/export_detectors.py yolov5s"),
        "{text}"
    );
    assert!(
        text.contains("0 ready, 1 model not present, 0 failed"),
        "{text}"
    );
}

#[test]
fn detectors_check_runs_every_fixture_spec() {
    let specs = [
        "detectors/fixture-yolov5.toml",
        "detectors/fixture-ultralytics.toml",
        "detectors/fixture-detr.toml",
        "detectors/fixture-detr-pil.toml",
        "detectors/fixture-detr-pixel-mask.toml",
        "detectors/fixture-torchvision.toml",
    ];
    let (code, text) = check_cmd(&specs);
    assert_eq!(code, Some(0), "{text}");
    assert!(
        text.contains("6 ready, 0 model not present, 0 failed"),
        "{text}"
    );
    assert!(
        text.contains("matches the spec") && text.contains("synthetic 640x480 image"),
        "{text}"
    );
}

#[test]
fn detectors_check_fails_on_a_bad_model() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bad.toml");
    let text = format!(
        "name = \"bad\"\nfamily = \"ultralytics\"\nmodel = \"{}/bad_input_name.onnx\"\n\
         model_sha256 = \"unknown\"\ntrained_on = \"nothing\"\nsees_eval_images = false\n\
         classes = \"coco80\"\ninput_size = [64, 64]\n",
        models_dir().display()
    );
    std::fs::write(&path, text).unwrap();
    let (code, text) = check_cmd(&[path.to_str().unwrap()]);
    assert_eq!(code, Some(1), "{text}");
    assert!(
        text.contains("FAILED") && text.contains("input is named `input`"),
        "{text}"
    );
    assert!(text.contains("pin it: model_sha256"), "{text}");
    assert!(
        text.contains("0 ready, 0 model not present, 1 failed"),
        "{text}"
    );
}
