//! `refaug embed` benchmark (a bench binary, not a test): `cargo bench --bench embed -- [options]`.
//!
//! On the bundled sample (30 images, every split), with proposals from `refaug run`, it reports in
//! one process and one run, so that the ratio holds on a noisy machine:
//! 1. end to end: `embed_variant` over the variant (read shards, decode, crop, resize, both
//!    encoders, write shards), in crops/s;
//! 2. the encoder's pure inference on pre-made inputs: as many 3×S×S tensors as there were crops
//!    (the same crops, made beforehand) through the image encoder
//!    and as many token rows as sentences through the text encoder, at the same batch size, with
//!    the same session;
//! 3. the efficiency = pure-inference time ÷ end-to-end time (1 = pre-processing and writing are
//!    hidden entirely behind inference).
//!
//! The measures alternate R times (`--repeat R`, default 2), each keeping its best; the sessions
//! are warmed up first. Options: `--encoder E.toml` (default the
//! ../shared small CLIP RN50 when present, else the fixture encoder), `--detector D.toml` (default
//! ../shared YOLOv8n when present, else the fixture; its random calibrated weights keep ~200
//! proposals a ref, so crops are plentiful), `--shards N` (the first N proposal shards, default 1:
//! about a thousand distinct crops), `--batch-size B` (default 32), `--threads T` (default 0 = all
//! cores).

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use refaug::detect::runtime::RuntimeOptions;
use refaug::embed::encoder::Encoder;
use refaug::embed::run::{EmbedJob, embed_variant};
use refaug::embed::spec::EncoderSpec;
use refaug::embed::text::ClipTokenizer;
use refaug::pipeline::plan::Worker;
use refaug::preprocess::Chw;
use refaug::preprocess::clip::{CropBox, crop};

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn arg(args: &[String], name: &str) -> Option<String> {
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1).cloned())
}

/// The first spec whose model files exist (the ../shared ones are absent on a fresh clone).
fn first_available(candidates: &[&str], has_models: impl Fn(&Path) -> bool) -> PathBuf {
    candidates
        .iter()
        .map(|c| repo().join(c))
        .find(|p| has_models(p))
        .expect("the fixture is always there")
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    // `cargo test --all-targets` runs bench binaries without `--bench`: nothing to do then.
    if !args.iter().any(|a| a == "--bench") {
        println!("embed benchmark: run it with `cargo bench --bench embed`");
        return;
    }
    let threads: usize = arg(&args, "--threads").map_or(0, |t| t.parse().unwrap());
    let cores = match threads {
        0 => std::thread::available_parallelism().map_or(1, |n| n.get()),
        n => n,
    };
    let batch: usize = arg(&args, "--batch-size").map_or(32, |t| t.parse().unwrap());
    let repeat: usize = arg(&args, "--repeat").map_or(2, |t| t.parse().unwrap());
    let shards: usize = arg(&args, "--shards").map_or(1, |t| t.parse().unwrap());
    let encoder_spec = arg(&args, "--encoder").map_or_else(
        || {
            first_available(
                &[
                    "encoders/shared-clip-rn50-small.toml",
                    "encoders/fixture-clip.toml",
                ],
                |p| EncoderSpec::from_file(p).is_ok_and(|s| s.image_model.path.is_file()),
            )
        },
        PathBuf::from,
    );
    let detector = arg(&args, "--detector").map_or_else(
        || {
            first_available(
                &[
                    "detectors/shared-yolov8n-cal.toml",
                    "detectors/fixture-ultralytics.toml",
                ],
                |p| {
                    refaug::detect::spec::DetectorSpec::from_file(p)
                        .is_ok_and(|s| s.model_path.is_file())
                },
            )
        },
        PathBuf::from,
    );

    // Proposals of the sample, by the refaug binary.
    let work = repo().join("target/bench-embed");
    let _ = std::fs::remove_dir_all(&work);
    std::fs::create_dir_all(&work).unwrap();
    let sample = repo().join("sample/refcocog");
    let manifest = work.join("manifest.toml");
    std::fs::write(
        &manifest,
        format!(
            "[dataset]\nkind = \"refcocog\"\nsplit_by = \"umd\"\nannotations = \"{}\"\n\
             images = \"{}\"\n\n[[variant]]\nname = \"v\"\ndetector = \"{}\"\n\n\
             [output]\ndir = \"{}\"\nimages_per_shard = 10\n",
            sample.join("annotations").display(),
            sample.join("images").display(),
            detector.display(),
            work.join("out").display()
        ),
    )
    .unwrap();
    let status = Command::new(env!("CARGO_BIN_EXE_refaug"))
        .args(["run", "--quiet", "--manifest"])
        .arg(&manifest)
        .status()
        .unwrap();
    assert!(status.success(), "refaug run failed");

    let spec = EncoderSpec::from_file(&encoder_spec).unwrap();
    let size = spec.transform.size;
    let opts = RuntimeOptions {
        intra_threads: cores,
        max_batch: batch,
        ..RuntimeOptions::default()
    };
    let mut encoder = Encoder::new(spec, &opts).unwrap();
    let job = EmbedJob {
        variant_dir: work.join("out/v"),
        images_dir: sample.join("images"),
        filter: refaug::embed::filter::ProposalFilter::default(),
        truncate: false,
        force: true,
        limit: Some(shards),
        worker: Worker::default(),
        threads: cores,
    };

    // Warm the sessions up (first calls allocate and pick kernels) so that neither measure pays it.
    let warm = Chw {
        height: size,
        width: size,
        data: vec![0.0; 3 * size * size],
    };
    encoder.encode_images(&vec![&warm; batch]).unwrap();
    let warm_tokens = vec![
        ClipTokenizer::shared()
            .tokenize("warm up", false)
            .unwrap()
            .ids;
        batch
    ];
    encoder.encode_texts(&warm_tokens).unwrap();

    // Pre-made inputs for the pure-inference measure: exactly the crops the end-to-end run
    // embeds (each image's distinct kept-proposal, ground-truth and whole-image boxes of the
    // selected shards), made before timing. The same tensors matter: with random weights the
    // encoder's CPU time depends on the input (denormal activations), so other tensors would
    // measure another workload.
    let transform = encoder.spec().transform;
    let mut inputs: Vec<Chw> = Vec::new();
    let shards_dir = work.join("out/v");
    let mut shard_files: Vec<PathBuf> = std::fs::read_dir(&shards_dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "parquet"))
        .collect();
    shard_files.sort();
    for shard in shard_files.iter().take(shards) {
        let rows = refaug::write::shard::read_rows(shard).unwrap();
        let mut images: Vec<(String, BTreeSet<CropBox>)> = Vec::new();
        for r in &rows {
            if images.last().is_none_or(|(f, _)| *f != r.file_name) {
                images.push((r.file_name.clone(), BTreeSet::new()));
            }
            let boxes = &mut images.last_mut().unwrap().1;
            boxes.insert(CropBox::from_xyxy(&r.gt_box).unwrap());
            for p in &r.proposals {
                if job.filter.keeps(f64::from(p.score), &p.bbox) {
                    boxes.insert(CropBox::from_xyxy(&p.bbox).unwrap());
                }
            }
        }
        for (file, boxes) in images {
            let img = refaug::decode::decode_file(&sample.join("images").join(file)).unwrap();
            inputs.push(transform.apply(&crop(&img, CropBox::whole(&img))));
            inputs.extend(boxes.iter().map(|&b| transform.apply(&crop(&img, b))));
        }
    }
    let token = ClipTokenizer::shared()
        .tokenize("the man on the left in a red shirt", false)
        .unwrap()
        .ids;

    // The measures alternate (end to end, then pure inference, R times) so that a change in the
    // machine's load during the run weighs on both; each keeps its best.
    let (mut e2e, mut image_only, mut text_only) = (Duration::MAX, Duration::MAX, Duration::MAX);
    let (mut crops, mut texts) = (0, 0);
    for _ in 0..repeat {
        let t = Instant::now();
        let s = embed_variant(&job, &mut encoder, "v", &refaug::progress::Silent).unwrap();
        e2e = e2e.min(t.elapsed());
        assert!(
            s.failures.is_empty() && s.image_failures.is_empty(),
            "{s:?}"
        );
        (crops, texts) = (s.image_embeddings, s.text_embeddings);
        assert_eq!(
            inputs.len(),
            crops,
            "the pre-made inputs are the run's crops"
        );
        let refs: Vec<&Chw> = inputs.iter().collect();
        let t = Instant::now();
        encoder.encode_images(&refs).unwrap();
        image_only = image_only.min(t.elapsed());
        let tokens = vec![token; texts];
        let t = Instant::now();
        encoder.encode_texts(&tokens).unwrap();
        text_only = text_only.min(t.elapsed());
    }
    let pure = image_only + text_only;

    let per_s = |n: usize, d: Duration| n as f64 / d.as_secs_f64();
    println!(
        "encoder {} ({}), detector {}, batch {batch}, {cores} threads, best of {repeat}",
        encoder_spec.display(),
        refaug::embed::spec::EncoderSpec::from_file(&encoder_spec)
            .unwrap()
            .name,
        detector.display()
    );
    println!("| measure | value |\n| --- | --- |");
    println!(
        "| end to end: {crops} crops + {texts} sentences | {:.2} s = {:.1} crops/s |",
        e2e.as_secs_f64(),
        per_s(crops, e2e)
    );
    println!(
        "| pure inference, image encoder, {crops} pre-made tensors | {:.2} s = {:.1} crops/s |",
        image_only.as_secs_f64(),
        per_s(crops, image_only)
    );
    println!(
        "| pure inference, text encoder, {texts} token rows | {:.2} s |",
        text_only.as_secs_f64()
    );
    println!(
        "| **efficiency** (pure image + text inference ÷ end to end) | **{:.2}** |",
        pure.as_secs_f64() / e2e.as_secs_f64()
    );
}
