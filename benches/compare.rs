//! refaug against the inference it has to do and against the seed-style Python pipeline, in one
//! run on the same images and graphs (a bench binary, not a test):
//!
//! ```text
//! REFAUG_REFERENCE_VENV=<venv of ../shared/reference/tools/setup_venv.sh> cargo bench --bench compare
//! ```
//!
//! It works on a generated RefCOCOg-format dataset of N 640×480 JPEGs (default 100; the dataset of
//! `benches/pipeline.rs`, cached under `target/bench-data/N`) and the three graphs of
//! `../shared/models` (YOLOv8n, DETR-R18 with the torchvision processor, Faster R-CNN
//! MobileNetV3-320).
//!
//! Each of `--rounds` rounds (default 1) measures, back to back so that a round's ratios come from
//! neighbouring minutes on a machine whose load changes:
//!
//! 1. the summed pure inference: each detector's session alone on all cores (a pool of its own
//!    with one thread per core, as the Python pipeline's default session options), one detector
//!    after another, on every image's pre-made tensor (decoding and pre-processing are not timed;
//!    batch 1, the run's default): the time refaug cannot go under without faster kernels;
//! 2. `refaug run` end to end (dataset loading, sessions, decoding, detection, Parquet), for each
//!    thread model of `--modes` (`shared`: all cores shared by the sessions, the default of
//!    `refaug run`; `split`: `--threads <cores>`, each session a pool of its own); every run must
//!    write the same bytes;
//! 3. the seed-style Python pipeline (`../shared/reference/tools/reference_pipeline.py`: one
//!    detector after another, PIL decoding, the original libraries' pre- and post-processing, one
//!    onnxruntime session on all cores each), in a child process with the reference environment's
//!    Python. Its time is its own `timing.json` total (session loads and image loops; the
//!    interpreter's start and imports, printed apart, are left out);
//!
//! and prints, per round and as the median over rounds, summed inference ÷ refaug (goal ≥ 0.95)
//! and Python ÷ refaug (goal ≥ 1.15).
//!
//! Options: `--images N`, `--modes shared,split`, `--rounds R`, `--reference-venv DIR` (or
//! `REFAUG_REFERENCE_VENV`; without it the Python pipeline is skipped and the run says why),
//! `--reference-pipeline FILE` (default `../shared/reference/tools/reference_pipeline.py`),
//! `--models DIR` (default `../shared/models`), `--skip-python`.

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

use common::{arg, dataset, raw_shape, repo, run_options, write_manifest};
use refaug::detect::detector::{Detector, prepare};
use refaug::detect::runtime::{Device, RuntimeOptions};
use refaug::detect::spec::DetectorSpec;
use refaug::manifest::Manifest;
use refaug::pipeline::run::run;

/// The three detectors, as refaug's specs name them, and the model names the Python pipeline
/// takes (its DETR default processor is the torchvision one, as the spec's).
const DETECTORS: [(&str, &str); 3] = [
    ("shared-yolov8n-cal", "yolov8n-cal"),
    ("shared-detr-resnet18-cal@torchvision", "detr_resnet18-cal"),
    (
        "shared-fasterrcnn-mobilenet-v3-large-320-fpn-slim-cal",
        "fasterrcnn_mobilenet_v3_large_320_fpn_slim-cal",
    ),
];

const REFERENCE_HINT: &str = "make it with `bash ../shared/reference/tools/setup_venv.sh DIR` and \
pass --reference-venv DIR or set REFAUG_REFERENCE_VENV=DIR";

/// Seconds of each detector alone on all cores, one after another, on pre-made tensors.
fn summed_inference(specs: &[DetectorSpec], images: &[PathBuf], cores: usize) -> Vec<f64> {
    specs
        .iter()
        .map(|spec| {
            let opts = RuntimeOptions {
                device: Device::Cpu,
                intra_threads: cores,
                spinning: false,
                max_batch: 1,
            };
            let mut d = Detector::new(spec.clone(), &opts).unwrap();
            let mut seconds = 0.0;
            for (k, file) in images.iter().enumerate() {
                let input = prepare(spec, &refaug::decode::decode_file(file).unwrap());
                let shape = raw_shape(spec.family(), &input);
                if k == 0 {
                    d.run_raw(&shape, &input.tensor.data).unwrap(); // warm-up
                }
                let t = Instant::now();
                std::hint::black_box(d.run_raw(&shape, &input.tensor.data).unwrap());
                seconds += t.elapsed().as_secs_f64();
            }
            seconds
        })
        .collect()
}

/// Every Parquet file of a run's output (relative path → bytes).
fn parquet_files(out: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    let mut files = BTreeMap::new();
    for variant in std::fs::read_dir(out).unwrap() {
        let dir = variant.unwrap().path();
        if !dir.is_dir() {
            continue;
        }
        for f in std::fs::read_dir(&dir).unwrap() {
            let f = f.unwrap().path();
            if f.extension().is_some_and(|x| x == "parquet") {
                let rel = f.strip_prefix(out).unwrap().to_path_buf();
                files.insert(rel, std::fs::read(&f).unwrap());
            }
        }
    }
    files
}

/// What the Python pipeline took.
struct PythonTiming {
    /// Its `timing.json` total: session loads and image loops of every detector.
    pipeline_s: f64,
    /// The child process's wall time (adds the interpreter's start and imports).
    process_s: f64,
    /// Its sessions' pure inference (`stages.inference.total_s`), summed over the detectors.
    inference_s: f64,
}

fn python_pipeline(
    python: &Path,
    script: &Path,
    data: &Path,
    models: &Path,
    specs: &[DetectorSpec],
    out: &Path,
) -> Result<PythonTiming, String> {
    let names: Vec<&str> = DETECTORS.iter().map(|d| d.1).collect();
    // Every detector at its spec's score threshold (it changes how many boxes NMS sees).
    let conf: Vec<String> = names
        .iter()
        .zip(specs)
        .map(|(n, s)| format!("{n}={}", s.score_threshold))
        .collect();
    let _ = std::fs::remove_dir_all(out);
    let t = Instant::now();
    let status = std::process::Command::new(python)
        .arg(script)
        .arg("--dataset")
        .arg(data)
        .arg("--models")
        .arg(models)
        .args(["--detectors", &names.join(","), "--conf"])
        .arg(format!("0.1,{}", conf.join(",")))
        .arg("--out")
        .arg(out)
        .stdout(std::process::Stdio::inherit())
        .status()
        .map_err(|e| format!("cannot start {}: {e}", python.display()))?;
    let process_s = t.elapsed().as_secs_f64();
    if !status.success() {
        return Err(format!(
            "{} {} failed: {status}",
            python.display(),
            script.display()
        ));
    }
    let timing: serde_json::Value = serde_json::from_slice(
        &std::fs::read(out.join("timing.json")).map_err(|e| format!("timing.json: {e}"))?,
    )
    .map_err(|e| format!("timing.json: {e}"))?;
    let detectors = timing["detectors"]
        .as_object()
        .ok_or("timing.json has no detectors")?;
    let sum = |f: &dyn Fn(&serde_json::Value) -> Option<f64>| -> Result<f64, String> {
        detectors
            .values()
            .map(|d| f(d).ok_or_else(|| format!("timing.json: unexpected entry {d}")))
            .sum()
    };
    Ok(PythonTiming {
        pipeline_s: sum(&|d| Some(d["session_load_s"].as_f64()? + d["wall_s"].as_f64()?))?,
        process_s,
        inference_s: sum(&|d| d["stages"]["inference"]["total_s"].as_f64())?,
    })
}

/// The reference environment's Python, from the flag or the environment variable.
fn reference_python(args: &[String]) -> Result<PathBuf, String> {
    let venv = arg(args, "--reference-venv")
        .or_else(|| std::env::var("REFAUG_REFERENCE_VENV").ok())
        .filter(|v| !v.is_empty())
        .ok_or_else(|| {
            format!("no reference environment given (--reference-venv, REFAUG_REFERENCE_VENV); {REFERENCE_HINT}")
        })?;
    let python = Path::new(&venv).join("bin/python");
    if python.is_file() {
        Ok(python)
    } else {
        Err(format!(
            "{} does not exist; {REFERENCE_HINT}",
            python.display()
        ))
    }
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    // `cargo test --all-targets` runs bench binaries without `--bench`: nothing to do then.
    if !args.iter().any(|a| a == "--bench") {
        println!("compare benchmark: run it with `cargo bench --bench compare`");
        return;
    }
    let n: usize = arg(&args, "--images").map_or(100, |v| v.parse().unwrap());
    let rounds: usize = arg(&args, "--rounds").map_or(1, |v| v.parse().unwrap());
    let modes: Vec<String> = arg(&args, "--modes")
        .unwrap_or_else(|| "shared".into())
        .split(',')
        .map(str::to_string)
        .collect();
    let models =
        arg(&args, "--models").map_or_else(|| repo().join("../shared/models"), PathBuf::from);
    let script = arg(&args, "--reference-pipeline").map_or_else(
        || repo().join("../shared/reference/tools/reference_pipeline.py"),
        PathBuf::from,
    );
    let spec_files: Vec<PathBuf> = DETECTORS
        .iter()
        .map(|d| repo().join(format!("detectors/{}.toml", d.0)))
        .collect();
    let specs: Vec<DetectorSpec> = spec_files
        .iter()
        .map(|p| DetectorSpec::from_file(p).unwrap_or_else(|e| panic!("{}: {e}", p.display())))
        .collect();
    for spec in &specs {
        if !spec.model_path.is_file() {
            eprintln!(
                "compare: {} is missing: this benchmark needs the graphs of ../shared/models",
                spec.model_path.display()
            );
            std::process::exit(2);
        }
    }
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    println!(
        "{cores} cores; load average at start {}; {n} images 640x480 JPEG",
        load.split_whitespace()
            .take(3)
            .collect::<Vec<_>>()
            .join(" ")
    );
    let data = dataset(n);
    let images: Vec<PathBuf> = (0..n)
        .map(|i| data.join(format!("images/COCO_train2014_{:012}.jpg", 100_000 + i)))
        .collect();

    let python_exe = if args.iter().any(|a| a == "--skip-python") {
        Err("skipped (--skip-python)".to_string())
    } else {
        reference_python(&args).and_then(|py| {
            if script.is_file() {
                Ok(py)
            } else {
                Err(format!("{} does not exist", script.display()))
            }
        })
    };
    if let Err(e) = &python_exe {
        println!("Python pipeline NOT MEASURED: {e}");
    }

    // Each round measures the three parts back to back, so that a round's ratios come from
    // neighbouring minutes on a machine whose load changes.
    let mut first_output = None;
    let mut ratios: Vec<Ratios> = Vec::new();
    for round in 0..rounds {
        println!("\nround {round}");
        // 1. Summed pure inference.
        let per_detector = summed_inference(&specs, &images, cores);
        let summed: f64 = per_detector.iter().sum();
        println!("1. pure inference, each detector alone on {cores} cores, batch 1:");
        for (spec, s) in specs.iter().zip(&per_detector) {
            println!("   {:<48} {s:7.1} s", spec.name);
        }
        println!("   {:<48} {summed:7.1} s", "summed");

        // 2. refaug end to end, the thread models one after another.
        println!("2. refaug run end to end, batch 1:");
        let mut walls = Vec::new();
        for mode in &modes {
            let threads = match mode.as_str() {
                "shared" => 0,
                "split" => cores,
                other => panic!("--modes: unknown thread model {other} (shared, split)"),
            };
            let out = repo().join(format!("target/bench-out/compare-{n}"));
            let _ = std::fs::remove_dir_all(&out);
            let m = Manifest::load(&write_manifest(&data, &spec_files, &out)).unwrap();
            let t = Instant::now();
            let summary = run(&m, &run_options(threads, 1), &refaug::progress::Silent).unwrap();
            let wall = t.elapsed().as_secs_f64();
            assert_eq!(summary.images, n as u64);
            println!("   {mode:<6} {wall:7.1} s");
            let files = parquet_files(&out);
            assert!(!files.is_empty(), "{}: no Parquet files", out.display());
            match &first_output {
                None => first_output = Some(files),
                Some(first) => assert!(
                    first == &files,
                    "{mode}: the output files differ from the first run's"
                ),
            }
            let _ = std::fs::remove_dir_all(&out);
            walls.push((mode, wall));
        }
        println!("   every run so far wrote the same bytes (Parquet files compared)");

        // 3. The Python pipeline.
        let python = python_exe.as_ref().ok().map(|py| {
            println!("3. seed-style Python pipeline (one detector after another, all cores each):");
            let p = python_pipeline(
                py,
                &script,
                &data,
                &models,
                &specs,
                &repo().join(format!("target/bench-out/python-{n}")),
            )
            .unwrap_or_else(|e| panic!("{e}"));
            println!(
                "   {:.1} s (its timing.json: session loads and image loops), of which inference \
                 {:.1} s; {:.1} s with the interpreter's start and imports",
                p.pipeline_s, p.inference_s, p.process_s
            );
            p.pipeline_s
        });

        for (mode, wall) in walls {
            let py = python.map(|p| p / wall);
            println!(
                "   {mode:<6} summed inference / refaug = {:.3} (goal >= 0.95); Python / refaug = {}",
                summed / wall,
                py.map_or("not measured".to_string(), |r| format!(
                    "{r:.3} (goal >= 1.15)"
                ))
            );
            ratios.push(Ratios {
                mode: mode.clone(),
                inference: summed / wall,
                python: py,
            });
        }
    }

    println!(
        "\nsummary ({n} images, {cores} cores, {rounds} round(s)): median of the rounds' ratios"
    );
    let mut shown: Vec<&String> = Vec::new();
    for mode in &modes {
        if shown.contains(&mode) {
            continue;
        }
        shown.push(mode);
        let of = |f: &dyn Fn(&Ratios) -> Option<f64>| {
            median(
                ratios
                    .iter()
                    .filter(|r| &r.mode == mode)
                    .filter_map(f)
                    .collect(),
            )
        };
        println!(
            "   {mode:<6} summed inference / refaug = {} (goal >= 0.95); Python / refaug = {} (goal >= 1.15)",
            of(&|r| Some(r.inference)).map_or("-".into(), |v| format!("{v:.3}")),
            of(&|r| r.python).map_or("not measured".into(), |v| format!("{v:.3}"))
        );
    }
}

/// One round's ratios for one thread model.
struct Ratios {
    mode: String,
    /// Summed pure inference ÷ refaug's wall.
    inference: f64,
    /// Python pipeline ÷ refaug's wall.
    python: Option<f64>,
}

fn median(mut v: Vec<f64>) -> Option<f64> {
    if v.is_empty() {
        return None;
    }
    v.sort_by(f64::total_cmp);
    let k = v.len() / 2;
    Some(if v.len() % 2 == 1 {
        v[k]
    } else {
        (v[k - 1] + v[k]) / 2.0
    })
}
