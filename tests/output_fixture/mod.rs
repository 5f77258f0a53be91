//! Output folders for the report, publish and export tests, built with the real shard writer
//! and manifest type (no pipeline run): a hand-made one whose numbers are worked out in
//! `tests/report.rs`, and a seeded random one for the Python cross-checks.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use refaug::boxes::BoxXyxy;
use refaug::dataset::Sentence;
use refaug::pipeline::journal::ShardRecord;
use refaug::write::manifest::{MANIFEST_FILE, RuntimeInfo, SplitManifest, VariantManifest};
use refaug::write::row::{Proposal, Row, best_match, proposal_ious};
use refaug::write::shard::{ShardOptions, ShardWriter, shard_file_name};

pub fn b(xmin: f32, ymin: f32, xmax: f32, ymax: f32) -> BoxXyxy {
    BoxXyxy {
        xmin,
        ymin,
        xmax,
        ymax,
    }
}

pub fn p(bbox: BoxXyxy, score: f32) -> Proposal {
    Proposal {
        bbox,
        score,
        class_id: 0,
        label: "person".to_string(),
    }
}

/// One ref's row with its image's proposals; IoUs and the best match as the pipeline stores them.
pub fn row(ref_id: i64, image_id: i64, split: &str, gt: BoxXyxy, proposals: Vec<Proposal>) -> Row {
    let proposal_iou = proposal_ious(&gt, &proposals);
    let (best_index, best_iou) = best_match(&proposal_iou);
    Row {
        ref_id,
        ann_id: 1_000_000 + ref_id,
        image_id,
        file_name: format!("COCO_train2014_{image_id:012}.jpg"),
        split: split.to_string(),
        category_id: 1,
        category_name: "person".to_string(),
        image_width: 640,
        image_height: 480,
        sentences: vec![Sentence {
            sent_id: ref_id * 10,
            sent: "the man on the left".to_string(),
            raw: "The man on the left".to_string(),
            tokens: ["the", "man", "on", "the", "left"]
                .map(String::from)
                .to_vec(),
        }],
        gt_box: gt,
        proposals,
        proposal_iou,
        best_index,
        best_iou,
    }
}

/// The detector object of a manifest.
pub fn detector(name: &str, family: &str, sees_eval_images: bool) -> serde_json::Value {
    serde_json::json!({
        "name": name,
        "family": family,
        "model_sha256": format!("{:064x}", name.len()),
        "trained_on": if sees_eval_images { "COCO train2017" } else { "Objects365" },
        "sees_eval_images": sees_eval_images,
        "score_threshold": 0.1,
        // As the spec defaults: only Hugging Face DETR keeps boxes past the image.
        "clip_boxes": family != "detr",
    })
}

/// Write one variant: `splits` maps a split to its shards (each a list of rows).
pub fn write_variant(
    out: &Path,
    name: &str,
    detector: serde_json::Value,
    splits: &[(&str, Vec<Vec<Row>>)],
) -> PathBuf {
    let dir = out.join(name);
    fs_err::create_dir_all(&dir).unwrap();
    let mut manifest_splits = BTreeMap::new();
    for (split, shards) in splits {
        let mut records = Vec::new();
        let mut rows_total = 0;
        for (i, rows) in shards.iter().enumerate() {
            let file = shard_file_name(split, i, shards.len());
            let mut writer =
                ShardWriter::create(dir.join(&file), &BTreeMap::new(), &ShardOptions::default())
                    .unwrap();
            writer.write_all(rows.iter().cloned()).unwrap();
            let summary = writer.close().unwrap();
            rows_total += summary.rows;
            records.push(ShardRecord {
                file,
                rows: summary.rows,
                bytes: summary.bytes,
                sha256: summary.sha256,
            });
        }
        let images: std::collections::BTreeSet<i64> =
            shards.iter().flatten().map(|r| r.image_id).collect();
        manifest_splits.insert(
            split.to_string(),
            SplitManifest {
                rows: rows_total,
                images: images.len() as u64,
                failed_refs: 0,
                shards: records,
            },
        );
    }
    let manifest = VariantManifest {
        variant: name.to_string(),
        schema_version: refaug::write::schema::SCHEMA_VERSION.to_string(),
        refaug_version: "0.1.0".to_string(),
        git_revision: "0123456789ab".to_string(),
        detector,
        runtime: RuntimeInfo {
            onnxruntime_versions: vec!["1.31.1".to_string()],
            execution_providers: vec!["CPUExecutionProvider".to_string()],
        },
        dataset_kind: "refcocog".to_string(),
        split_by: "umd".to_string(),
        sources: [("instances.json".to_string(), "ab".repeat(32))].into(),
        splits: manifest_splits,
        settings: serde_json::json!({}),
    };
    fs_err::write(
        dir.join(MANIFEST_FILE),
        serde_json::to_string_pretty(&manifest).unwrap(),
    )
    .unwrap();
    dir
}

/// The hand-made output folder (numbers worked out in `tests/report.rs`):
///
/// `detA`: train shard 0 = image 1 (refs 1, 2) and image 2 (ref 3, no proposal); train shard 1 =
/// image 3 (ref 4); val = image 4 (ref 5). `detB`: the same refs, every image with a box equal to
/// each ground truth.
pub fn hand_made(out: &Path) {
    let g1 = b(0.0, 0.0, 100.0, 100.0);
    let g2 = b(200.0, 200.0, 300.0, 300.0);
    let image1 = vec![
        p(b(0.0, 0.0, 100.0, 100.0), 0.9),
        p(b(0.0, 0.0, 100.0, 50.0), 0.8),
        p(b(200.0, 200.0, 300.0, 300.0), 0.2),
    ];
    let image3 = vec![
        p(b(0.0, 0.0, 100.0, 70.0), 0.9),
        p(b(0.0, 0.0, 10.0, 10.0), 0.5),
    ];
    let image4 = vec![
        p(b(0.0, 0.0, 100.0, 30.0), 0.6),
        p(b(0.0, 0.0, 50.0, 50.0), 0.3),
    ];
    write_variant(
        out,
        "detA",
        detector("detA", "yolov5", true),
        &[
            (
                "train",
                vec![
                    vec![
                        row(1, 1, "train", g1, image1.clone()),
                        row(2, 1, "train", g2, image1),
                        row(3, 2, "train", g1, vec![]),
                    ],
                    vec![row(4, 3, "train", g1, image3)],
                ],
            ),
            ("val", vec![vec![row(5, 4, "val", g1, image4)]]),
        ],
    );
    let far = p(b(300.0, 300.0, 340.0, 340.0), 0.5);
    let exact = p(g1, 0.95);
    let both = vec![exact.clone(), p(g2, 0.5)];
    write_variant(
        out,
        "detB",
        detector("detB", "detr", false),
        &[
            (
                "train",
                vec![
                    vec![
                        row(1, 1, "train", g1, both.clone()),
                        row(2, 1, "train", g2, both),
                        row(3, 2, "train", g1, vec![exact.clone(), far.clone()]),
                    ],
                    vec![row(4, 3, "train", g1, vec![exact.clone(), far.clone()])],
                ],
            ),
            ("val", vec![vec![row(5, 4, "val", g1, vec![exact, far])]]),
        ],
    );
}

/// A small deterministic generator (64-bit LCG, Knuth's MMIX constants).
pub struct Lcg(pub u64);

impl Lcg {
    pub fn next_f32(&mut self) -> f32 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        ((self.0 >> 40) as f32) / ((1u64 << 24) as f32)
    }

    pub fn below(&mut self, n: usize) -> usize {
        ((self.next_f32() * n as f32) as usize).min(n.saturating_sub(1))
    }
}

fn random_box(rng: &mut Lcg, w: f32, h: f32) -> BoxXyxy {
    let (x0, x1) = (rng.next_f32() * w, rng.next_f32() * w);
    let (y0, y1) = (rng.next_f32() * h, rng.next_f32() * h);
    b(x0.min(x1), y0.min(y1), x0.max(x1), y0.max(y1))
}

/// A random output folder: `variants` variants, splits train (3 shards) / val / test, images
/// with 1–3 refs and 0–40 proposals (sizes around the 16 px filter, scores around 0.25). A
/// variant named `detr…` is an unclipped DETR variant: about a quarter of its proposals extend
/// past the left or bottom edge of the 640×480 image.
pub fn random(out: &Path, seed: u64, variants: &[&str]) {
    for (v, name) in variants.iter().enumerate() {
        let unclipped = name.starts_with("detr");
        let mut rng = Lcg(seed + v as u64);
        let mut ref_id = 0;
        let mut image_id = 100;
        let mut splits = Vec::new();
        for (split, shards) in [("train", 3), ("val", 1), ("test", 2)] {
            let mut shard_rows = Vec::new();
            for _ in 0..shards {
                let mut rows = Vec::new();
                for _ in 0..(5 + rng.below(20)) {
                    image_id += 1;
                    let n = rng.below(41);
                    let mut proposals: Vec<Proposal> = (0..n)
                        .map(|_| {
                            let bbox = if rng.next_f32() < 0.3 {
                                let x = rng.next_f32() * 600.0;
                                let y = rng.next_f32() * 440.0;
                                b(x, y, x + rng.next_f32() * 32.0, y + rng.next_f32() * 32.0)
                            } else {
                                random_box(&mut rng, 640.0, 480.0)
                            };
                            let bbox = if unclipped && rng.next_f32() < 0.25 {
                                b(bbox.xmin - 12.5, bbox.ymin, bbox.xmax, bbox.ymax + 480.0)
                            } else {
                                bbox
                            };
                            p(bbox, (rng.next_f32() * 0.6 + 0.1).min(1.0))
                        })
                        .collect();
                    proposals.sort_by(|a, b| b.score.total_cmp(&a.score));
                    for _ in 0..(1 + rng.below(3)) {
                        ref_id += 1;
                        // Ground truths near a proposal now and then, so IoUs spread over [0, 1].
                        let gt = match proposals.get(rng.below(n.max(1))) {
                            Some(q) if rng.next_f32() < 0.7 => {
                                let d = rng.next_f32() * 20.0;
                                b(
                                    q.bbox.xmin + d,
                                    q.bbox.ymin,
                                    q.bbox.xmax + d,
                                    q.bbox.ymax + d,
                                )
                            }
                            _ => random_box(&mut rng, 640.0, 480.0),
                        };
                        rows.push(row(ref_id, image_id, split, gt, proposals.clone()));
                    }
                }
                shard_rows.push(rows);
            }
            splits.push((split, shard_rows));
        }
        // Keep `proposals` in the detector's order: re-sorting above already made it
        // score-descending.
        let family = if unclipped {
            "detr"
        } else if v % 2 == 0 {
            "ultralytics"
        } else {
            "torchvision"
        };
        write_variant(out, name, detector(name, family, v % 2 == 0), &splits);
    }
}

/// The project's Python, when its `.venv` exists.
pub fn python() -> Option<PathBuf> {
    let python = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(".venv/bin/python");
    if python.exists() {
        Some(python)
    } else {
        eprintln!(
            "skipped: {} does not exist (run scripts/setup.sh)",
            python.display()
        );
        None
    }
}

/// Run a script of `tests/python` with `args`; panics with its output when it fails.
pub fn run_python(python: &Path, script: &str, args: &[&std::ffi::OsStr]) -> String {
    let output = std::process::Command::new(python)
        .arg(
            PathBuf::from(env!("CARGO_MANIFEST_DIR"))
                .join("tests/python")
                .join(script),
        )
        .args(args)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "{script} failed:\n{stdout}\n{stderr}"
    );
    stdout
}
