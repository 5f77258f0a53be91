//! Pipeline benchmark (a bench binary, not a test): `cargo bench --bench pipeline -- [options]`.
//!
//! On a generated dataset of N 640×480 JPEGs (RefCOCOg format, one ref per image) it reports, in one
//! process and one run so that ratios are meaningful on a noisy machine:
//! 1. decode throughput and decode + pre-processing throughput per core, per family;
//! 2. pure inference: every detector running side by side on pre-made tensors, with the same thread
//!    split as the pipeline gives them (images/s of the slowest);
//! 3. end to end: `refaug run` on the dataset (images/s), and the pipeline efficiency
//!    = end-to-end ÷ the slowest detector's pure inference;
//! 4. peak RSS of a whole run at two dataset sizes (a child process each), which should be about equal.
//!
//! Options: `--images N` (default 500), `--detectors a.toml,b.toml` (default: the ../shared models
//! when present — YOLOv8n, DETR, Faster R-CNN — else the test fixtures), `--rss N1,N2` (default
//! 100,1000; fixture detectors, so that it measures the pipeline's own memory), `--threads T`.

use std::path::{Path, PathBuf};
use std::time::Instant;

use image::RgbImage;
use refaug::detect::detector::{Detector, prepare};
use refaug::detect::runtime::{Device, RuntimeOptions, split_threads};
use refaug::detect::spec::DetectorSpec;
use refaug::manifest::Manifest;
use refaug::pipeline::plan::Worker;
use refaug::pipeline::run::{RunOptions, run};

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn arg(args: &[String], name: &str) -> Option<String> {
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1).cloned())
}

/// A deterministic synthetic scene: gradient, a few rectangles, a little noise.
fn scene(seed: u64, w: u32, h: u32) -> RgbImage {
    let mut s = seed.wrapping_mul(0x9E3779B97F4A7C15) | 1;
    let mut next = move || {
        s ^= s << 13;
        s ^= s >> 7;
        s ^= s << 17;
        s
    };
    let rects: Vec<(u32, u32, u32, u32, [u8; 3])> = (0..6)
        .map(|_| {
            let x0 = (next() % w as u64) as u32;
            let y0 = (next() % h as u64) as u32;
            let x1 = (x0 + 20 + (next() % 300) as u32).min(w);
            let y1 = (y0 + 20 + (next() % 300) as u32).min(h);
            let c = next();
            (x0, y0, x1, y1, [c as u8, (c >> 8) as u8, (c >> 16) as u8])
        })
        .collect();
    let noise: Vec<u8> = (0..(w * h) as usize).map(|_| (next() % 9) as u8).collect();
    RgbImage::from_fn(w, h, |x, y| {
        let n = noise[(y * w + x) as usize];
        for &(x0, y0, x1, y1, c) in &rects {
            if x >= x0 && x < x1 && y >= y0 && y < y1 {
                return image::Rgb([
                    c[0].saturating_add(n),
                    c[1].saturating_add(n),
                    c[2].saturating_add(n),
                ]);
            }
        }
        image::Rgb([
            (x * 255 / w) as u8 ^ n,
            (y * 255 / h) as u8,
            128u8.wrapping_add(n),
        ])
    })
}

/// Writes (once) a RefCOCOg-format dataset of `n` 640×480 JPEGs under target/bench-data/<n>.
fn dataset(n: usize) -> PathBuf {
    let root = repo().join("target/bench-data").join(n.to_string());
    if root.join("annotations/refs(umd).p").exists() {
        return root;
    }
    let images = root.join("images");
    std::fs::create_dir_all(&images).unwrap();
    std::fs::create_dir_all(root.join("annotations")).unwrap();
    let (w, h) = (640u32, 480u32);
    let mut inst_images = Vec::new();
    let mut anns = Vec::new();
    let mut refs = Vec::new();
    for i in 0..n {
        let id = 100_000 + i as i64;
        let name = format!("COCO_train2014_{id:012}.jpg");
        let img = scene(i as u64 + 1, w, h);
        let mut bytes = Vec::new();
        image::codecs::jpeg::JpegEncoder::new_with_quality(&mut bytes, 90)
            .encode_image(&img)
            .unwrap();
        std::fs::write(images.join(&name), bytes).unwrap();
        inst_images.push(serde_json::json!({"id": id, "file_name": name, "width": w, "height": h}));
        anns.push(
            serde_json::json!({"id": id * 10, "image_id": id, "category_id": 1,
            "bbox": [50.0, 60.0, 200.0, 150.0], "area": 30000.0, "iscrowd": 0}),
        );
        let split = ["train", "val", "test"][i % 3];
        let mut sentence = std::collections::BTreeMap::new();
        sentence.insert("sent_id", serde_pickle::Value::I64(i as i64));
        let text = serde_pickle::Value::String("the thing on the left".into());
        let sent = serde_pickle::Value::Dict(
            [
                ("sent_id", serde_pickle::Value::I64(i as i64)),
                ("sent", text.clone()),
                ("raw", text),
                (
                    "tokens",
                    serde_pickle::Value::List(
                        ["the", "thing", "on", "the", "left"]
                            .iter()
                            .map(|t| serde_pickle::Value::String(t.to_string()))
                            .collect(),
                    ),
                ),
            ]
            .into_iter()
            .map(|(k, v)| (serde_pickle::HashableValue::String(k.into()), v))
            .collect(),
        );
        let r = serde_pickle::Value::Dict(
            [
                ("ref_id", serde_pickle::Value::I64(i as i64)),
                ("ann_id", serde_pickle::Value::I64(id * 10)),
                ("image_id", serde_pickle::Value::I64(id)),
                ("category_id", serde_pickle::Value::I64(1)),
                ("split", serde_pickle::Value::String(split.into())),
                (
                    "file_name",
                    serde_pickle::Value::String(format!("COCO_train2014_{id:012}_{}.jpg", id * 10)),
                ),
                (
                    "sent_ids",
                    serde_pickle::Value::List(vec![serde_pickle::Value::I64(i as i64)]),
                ),
                ("sentences", serde_pickle::Value::List(vec![sent])),
            ]
            .into_iter()
            .map(|(k, v)| (serde_pickle::HashableValue::String(k.into()), v))
            .collect(),
        );
        refs.push(r);
    }
    let instances = serde_json::json!({
        "images": inst_images,
        "annotations": anns,
        "categories": [{"id": 1, "name": "person", "supercategory": "person"}],
    });
    std::fs::write(
        root.join("annotations/instances.json"),
        serde_json::to_vec(&instances).unwrap(),
    )
    .unwrap();
    let pickle = serde_pickle::value_to_vec(
        &serde_pickle::Value::List(refs),
        serde_pickle::SerOptions::new().proto_v2(),
    )
    .unwrap();
    std::fs::write(root.join("annotations/refs(umd).p"), pickle).unwrap();
    root
}

fn write_manifest(data: &Path, specs: &[PathBuf], out: &Path) -> PathBuf {
    let mut text = format!(
        "[dataset]\nkind = \"refcocog\"\nsplit_by = \"umd\"\nannotations = \"{}\"\nimages = \"{}\"\n\n",
        data.join("annotations").display(),
        data.join("images").display()
    );
    for (i, s) in specs.iter().enumerate() {
        text.push_str(&format!(
            "[[variant]]\nname = \"v{i}\"\ndetector = \"{}\"\n\n",
            s.display()
        ));
    }
    text.push_str(&format!(
        "[output]\ndir = \"{}\"\nimages_per_shard = 100\n",
        out.display()
    ));
    let path = out.with_extension("toml");
    std::fs::create_dir_all(out.parent().unwrap()).unwrap();
    std::fs::write(&path, text).unwrap();
    path
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

fn run_options(threads: usize) -> RunOptions {
    RunOptions {
        splits: None,
        variants: None,
        limit: None,
        worker: Worker::default(),
        device: Device::Cpu,
        batch_size: 4,
        threads,
        images_per_shard: 100,
        force: true,
        image_limits: refaug::decode::Limits::default(),
        pixel_budget: refaug::pipeline::run::DEFAULT_PIXEL_BUDGET,
    }
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
        run(&m, &run_options(threads), &refaug::progress::Silent).unwrap();
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

    // 1. Decode and pre-processing, one core.
    let files: Vec<PathBuf> = (0..n.min(60))
        .map(|i| data.join(format!("images/COCO_train2014_{:012}.jpg", 100_000 + i)))
        .collect();
    let t = Instant::now();
    let decoded: Vec<RgbImage> = files
        .iter()
        .map(|f| refaug::decode::decode_file(f).unwrap())
        .collect();
    let decode_rate = files.len() as f64 / t.elapsed().as_secs_f64();
    println!("\n1. per core: decode {decode_rate:.1} images/s");
    for spec in &loaded {
        let t = Instant::now();
        for img in &decoded {
            std::hint::black_box(prepare(spec, img));
        }
        let prep = t.elapsed().as_secs_f64() / decoded.len() as f64;
        let both = 1.0 / (1.0 / decode_rate + prep);
        println!(
            "   {:<45} pre-processing {:6.1} ms/image; decode + pre-processing {both:6.1} images/s",
            format!("{} ({:?})", spec.name, spec.family()),
            prep * 1e3
        );
    }

    // 2. Pure inference, side by side, the pipeline's thread split.
    let split = split_threads(cores, loaded.len());
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
                    let shape: Vec<usize> = if spec.family() == refaug::detect::Family::Torchvision
                    {
                        vec![3, input.tensor.height, input.tensor.width]
                    } else {
                        vec![1, 3, input.tensor.height, input.tensor.width]
                    };
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
        println!("   {name:<45} {intra} thread(s): {rate:6.2} images/s");
    }
    let slowest = rates.iter().map(|r| r.2).fold(f64::INFINITY, f64::min);

    // 3. End to end.
    let out = repo().join(format!("target/bench-out/e2e-{n}"));
    let _ = std::fs::remove_dir_all(&out);
    let m = Manifest::load(&write_manifest(&data, &specs, &out)).unwrap();
    let t = Instant::now();
    let summary = run(&m, &run_options(threads), &refaug::progress::Silent).unwrap();
    let wall = t.elapsed().as_secs_f64();
    let e2e = summary.images as f64 / wall;
    println!(
        "\n3. end to end: {} images in {wall:.1}s = {e2e:.2} images/s",
        summary.images
    );
    println!(
        "   pipeline efficiency = end-to-end / slowest pure inference = {:.3}",
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
