//! Pipeline benchmark (a bench binary, not a test): `cargo bench --bench pipeline -- [options]`.
//!
//! On a generated dataset of N 640×480 JPEGs (RefCOCOg format, one ref per image) it reports, in one
//! process and one run so that ratios are meaningful on a noisy machine:
//! 1. decode throughput and decode + pre-processing throughput per core, per family, from the
//!    thread's CPU time (best of 3 passes over up to 100 images), and a sha256 of the decoded
//!    pixels (to compare builds: with and without libjpeg-turbo's SIMD it must not change);
//! 2. pure inference: every detector running side by side on pre-made tensors, in the pipeline's
//!    thread model (images/s of the slowest);
//! 3. end to end: `refaug run` on the dataset (images/s), and end-to-end ÷ the slowest detector's
//!    side-by-side pure inference (a weak bound: the honest one, end to end against the summed
//!    inference of every detector alone on all cores, is `benches/compare.rs`);
//! 4. peak RSS of a whole run at two dataset sizes (a child process each), which should be about equal.
//!
//! Options: `--images N` (default 500), `--detectors a.toml,b.toml` (default: the ../shared models
//! when present — YOLOv8n, DETR, Faster R-CNN — else the test fixtures), `--rss N1,N2` (default
//! 100,1000; fixture detectors, so that it measures the pipeline's own memory), `--threads T`,
//! `--decode-only` (stop after 1).

mod common;

use std::path::PathBuf;
use std::time::Instant;

use common::{arg, dataset, raw_shape, repo, run_options, write_manifest};
use image::RgbImage;
use refaug::detect::detector::{Detector, prepare};
use refaug::detect::runtime::{Device, RuntimeOptions, SHARED_POOL, split_threads};
use refaug::detect::spec::DetectorSpec;
use refaug::manifest::Manifest;
use refaug::pipeline::run::run;
use sha2::Digest;

/// CPU seconds of this thread.
fn thread_cpu_s() -> f64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid timespec to write; CLOCK_THREAD_CPUTIME_ID is always available on
    // Linux.
    unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    ts.tv_sec as f64 + ts.tv_nsec as f64 * 1e-9
}

/// The least CPU time of this thread `f` took in 3 calls.
fn best_of_3(mut f: impl FnMut()) -> f64 {
    (0..3)
        .map(|_| {
            let t = thread_cpu_s();
            f();
            thread_cpu_s() - t
        })
        .fold(f64::INFINITY, f64::min)
}

fn peak_rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1).and_then(|v| v.parse().ok()))
        })
        .unwrap_or(0)
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    // `cargo test --all-targets` runs bench binaries without `--bench`: nothing to do then.
    if !args.iter().any(|a| a == "--bench" || a == "--rss-child") {
        println!("pipeline benchmark: run it with `cargo bench --bench pipeline`");
        return;
    }
    let threads: usize = arg(&args, "--threads").map_or(0, |t| t.parse().unwrap());
    let fixtures: Vec<PathBuf> = ["fixture-ultralytics", "fixture-detr", "fixture-torchvision"]
        .iter()
        .map(|n| repo().join(format!("detectors/{n}.toml")))
        .collect();

    // Child mode: one whole run, then print the peak RSS.
    if let Some(n) = arg(&args, "--rss-child") {
        let n: usize = n.parse().unwrap();
        let data = dataset(n);
        let out = repo().join(format!("target/bench-out/rss-{n}"));
        // A fresh output: a committed one would be resumed, i.e. skipped.
        let _ = std::fs::remove_dir_all(&out);
        let m = Manifest::load(&write_manifest(&data, &fixtures, &out)).unwrap();
        run(&m, &run_options(threads, 4), &refaug::progress::Silent).unwrap();
        println!("{}", peak_rss_kib());
        return;
    }

    let n: usize = arg(&args, "--images").map_or(500, |v| v.parse().unwrap());
    let shared = repo().join("../shared/models");
    let specs: Vec<PathBuf> = match arg(&args, "--detectors") {
        Some(list) => list
            .split(',')
            .map(|p| std::fs::canonicalize(p).unwrap_or_else(|e| panic!("{p}: {e}")))
            .collect(),
        None if shared.join("yolov8n-cal.onnx").exists() => [
            "shared-yolov8n-cal",
            "shared-detr-resnet18-cal@torchvision",
            "shared-fasterrcnn-mobilenet-v3-large-320-fpn-slim-cal",
        ]
        .iter()
        .map(|s| repo().join(format!("detectors/{s}.toml")))
        .collect(),
        None => fixtures.clone(),
    };
    let cores = if threads == 0 {
        std::thread::available_parallelism().map_or(1, |n| n.get())
    } else {
        threads
    };
    println!("machine: {cores} cores used; dataset: {n} images 640x480 JPEG (quality 90)");
    let t = Instant::now();
    let data = dataset(n);
    println!(
        "dataset ready in {:.1}s: {}",
        t.elapsed().as_secs_f64(),
        data.display()
    );
    let loaded: Vec<DetectorSpec> = specs
        .iter()
        .map(|p| DetectorSpec::from_file(p).unwrap())
        .collect();

    // 1. Decode and pre-processing, one core. Rates per core come from this thread's CPU time
    // (best of 3 passes), so that other processes on the machine do not count.
    let files: Vec<PathBuf> = (0..n.min(100))
        .map(|i| data.join(format!("images/COCO_train2014_{:012}.jpg", 100_000 + i)))
        .collect();
    let mut decoded: Vec<RgbImage> = Vec::new();
    let decode_s = best_of_3(|| {
        decoded = files
            .iter()
            .map(|f| refaug::decode::decode_file(f).unwrap())
            .collect();
    }) / files.len() as f64;
    let mut pixels = sha2::Sha256::new();
    for img in &decoded {
        pixels.update(img.as_raw());
    }
    println!(
        "\n1. per core: decode {:.1} images/s ({:.2} ms/image); decoded pixels of {} images: sha256 {}",
        1.0 / decode_s,
        decode_s * 1e3,
        files.len(),
        hex::encode(pixels.finalize())
    );
    for spec in &loaded {
        let prep = best_of_3(|| {
            for img in &decoded {
                std::hint::black_box(prepare(spec, img));
            }
        }) / decoded.len() as f64;
        println!(
            "   {:<45} pre-processing {:6.2} ms/image; decode + pre-processing {:6.1} images/s",
            format!("{} ({:?})", spec.name, spec.family()),
            prep * 1e3,
            1.0 / (decode_s + prep)
        );
    }
    if args.iter().any(|a| a == "--decode-only") {
        return;
    }

    // 2. Pure inference, side by side, in the pipeline's thread model: all cores shared (threads 0), or split among own pools.
    let split = if threads == 0 {
        vec![SHARED_POOL; loaded.len()]
    } else {
        split_threads(cores, loaded.len())
    };
    let reps = n.clamp(4, 24);
    let mut rates = Vec::new();
    std::thread::scope(|scope| {
        let handles: Vec<_> = loaded
            .iter()
            .zip(&split)
            .map(|(spec, &intra)| {
                let input = prepare(spec, &decoded[0]);
                scope.spawn(move || {
                    let opts = RuntimeOptions {
                        device: Device::Cpu,
                        intra_threads: intra,
                        spinning: false,
                        max_batch: 1,
                    };
                    let mut d = Detector::new(spec.clone(), &opts).unwrap();
                    let shape = raw_shape(spec.family(), &input);
                    d.run_raw(&shape, &input.tensor.data).unwrap(); // warm-up
                    let t = Instant::now();
                    for _ in 0..reps {
                        std::hint::black_box(d.run_raw(&shape, &input.tensor.data).unwrap());
                    }
                    (
                        spec.name.clone(),
                        intra,
                        reps as f64 / t.elapsed().as_secs_f64(),
                    )
                })
            })
            .collect();
        for h in handles {
            rates.push(h.join().unwrap());
        }
    });
    println!(
        "\n2. pure inference on pre-made tensors, all detectors side by side ({reps} calls each):"
    );
    for (name, intra, rate) in &rates {
        let threads = match *intra {
            SHARED_POOL => "shared pool".to_string(),
            n => format!("{n} thread(s)"),
        };
        println!("   {name:<45} {threads}: {rate:6.2} images/s");
    }
    let slowest = rates.iter().map(|r| r.2).fold(f64::INFINITY, f64::min);

    // 3. End to end.
    let out = repo().join(format!("target/bench-out/e2e-{n}"));
    let _ = std::fs::remove_dir_all(&out);
    let m = Manifest::load(&write_manifest(&data, &specs, &out)).unwrap();
    let t = Instant::now();
    let summary = run(&m, &run_options(threads, 4), &refaug::progress::Silent).unwrap();
    let wall = t.elapsed().as_secs_f64();
    let e2e = summary.images as f64 / wall;
    println!(
        "\n3. end to end: {} images in {wall:.1}s = {e2e:.2} images/s",
        summary.images
    );
    println!(
        "   end-to-end / slowest side-by-side pure inference = {:.3} (not the bound: see `--bench compare`)",
        e2e / slowest
    );

    // 4. Peak RSS at two sizes.
    let sizes: Vec<usize> = arg(&args, "--rss")
        .unwrap_or_else(|| "100,1000".into())
        .split(',')
        .map(|s| s.parse().unwrap())
        .collect();
    println!("\n4. peak RSS of a whole run (fixture detectors, child process):");
    for size in sizes {
        let exe = std::env::current_exe().unwrap();
        let o = std::process::Command::new(exe)
            .args([
                "--rss-child",
                &size.to_string(),
                "--threads",
                &threads.to_string(),
            ])
            .output()
            .unwrap();
        let kib: u64 = String::from_utf8_lossy(&o.stdout)
            .trim()
            .parse()
            .unwrap_or(0);
        println!("   N = {size:5}: {:.1} MiB", kib as f64 / 1024.0);
    }
}
