//! What the bench binaries share: the generated RefCOCOg-format dataset, its data manifest, the
//! run options, and the raw input shape of a prepared image.

use std::path::{Path, PathBuf};

use image::RgbImage;
use refaug::detect::Family;
use refaug::detect::detector::Prepared;
use refaug::detect::runtime::Device;
use refaug::pipeline::plan::Worker;
use refaug::pipeline::run::RunOptions;

pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

pub fn arg(args: &[String], name: &str) -> Option<String> {
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
pub fn dataset(n: usize) -> PathBuf {
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

pub fn write_manifest(data: &Path, specs: &[PathBuf], out: &Path) -> PathBuf {
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

/// `refaug run`'s options for a bench run: a fresh output (`force`), `threads` in all (0 = all
/// cores, the sessions sharing them), `batch_size` images per detector call.
pub fn run_options(threads: usize, batch_size: usize) -> RunOptions {
    RunOptions {
        splits: None,
        variants: None,
        limit: None,
        worker: Worker::default(),
        device: Device::Cpu,
        batch_size,
        threads,
        images_per_shard: 100,
        force: true,
        image_limits: refaug::decode::Limits::default(),
        pixel_budget: refaug::pipeline::run::DEFAULT_PIXEL_BUDGET,
    }
}

/// The shape `Detector::run_raw` takes for one prepared image: torchvision's graphs take one CHW
/// image, the others a batch of one.
pub fn raw_shape(family: Family, input: &Prepared) -> Vec<usize> {
    let (h, w) = (input.tensor.height, input.tensor.width);
    if family == Family::Torchvision {
        vec![3, h, w]
    } else {
        vec![1, 3, h, w]
    }
}
