//! `refaug parity-clip`: the CLIP stage, stage by stage, against `<reference>/<dataset>-clip/`
//! (made by `../shared/reference/tools/clip_reference.py` with torchvision and openai/CLIP).
//!
//! refaug recomputes everything from the dataset and the reference's detections CSV: for every
//! ref (pickle order) the ground truth, the whole image and each proposal [`ProposalFilter`]
//! keeps, its [`CropBox`], the uint8 crop, the model input ([`ClipTransform`]) and the
//! embedding ([`Encoder`]); every sentence's `clip.tokenize` tokens and text embedding. Each is
//! matched to the reference by (ref, kind, kept index) or sentence id and compared:
//! proposal index, crop box, crop sha256, input sha256, tokens exactly; embeddings by the largest
//! absolute difference.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use image::RgbImage;
use serde::Deserialize;
use sha2::{Digest, Sha256};

use crate::boxes::BoxXyxy;
use crate::dataset::{DatasetKind, DatasetSource, ExpectedSha256, SplitBy};
use crate::detect::runtime::RuntimeOptions;
use crate::embed::encoder::Encoder;
use crate::embed::filter::ProposalFilter;
use crate::embed::spec::EncoderSpec;
use crate::embed::text::ClipTokenizer;
use crate::preprocess::clip::{CropBox, crop};

/// What to compare.
#[derive(Debug, Clone)]
pub struct ClipParityArgs {
    /// The reference folder: `<dataset>/`, `<dataset>-results/<detector>.csv`, `<dataset>-clip/`.
    pub reference: PathBuf,
    pub dataset: String,
    /// The detector whose CSV the reference cropped.
    pub detector: String,
    pub encoder: EncoderSpec,
    pub runtime: RuntimeOptions,
}

/// One line of `clip_fingerprints.jsonl` (the fields compared).
#[derive(Debug, Deserialize)]
struct CropLine {
    ref_id: i64,
    kind: String,
    proposal_index: Option<usize>,
    kept_index: Option<usize>,
    crop_xywh: [i32; 4],
    crop_sha256: String,
    input_sha256: String,
    emb_row: usize,
}

/// One line of `clip_text.jsonl`.
#[derive(Debug, Deserialize)]
struct TextLine {
    sent_id: i64,
    tokens: Vec<i64>,
    embedding: Vec<f32>,
}

/// One stage's outcome.
#[derive(Debug, Clone, Default)]
pub struct ClipStage {
    pub matched: usize,
    pub total: usize,
    /// The largest |refaug − reference| (embedding stages).
    pub max_abs: Option<f64>,
    /// A few misses, for the report.
    pub examples: Vec<String>,
}

impl ClipStage {
    fn record(&mut self, ok: bool, what: impl FnOnce() -> String) {
        self.total += 1;
        if ok {
            self.matched += 1;
        } else if self.examples.len() < 5 {
            self.examples.push(what());
        }
    }
}

/// Every stage, in pipeline order.
#[derive(Debug, Clone, Default)]
pub struct ClipParityReport {
    pub stages: Vec<(&'static str, ClipStage)>,
    pub image_tolerance: f64,
    pub text_tolerance: f64,
}

impl ClipParityReport {
    /// Every exact stage at 100 % and both embedding stages within tolerance.
    pub fn passed(&self) -> bool {
        self.stages.iter().all(|(name, s)| {
            s.total > 0
                && match (name.contains("embedding"), s.max_abs) {
                    (true, Some(m)) => {
                        let tol = if name.starts_with("image") {
                            self.image_tolerance
                        } else {
                            self.text_tolerance
                        };
                        m <= tol && s.matched == s.total
                    }
                    _ => s.matched == s.total,
                }
        })
    }
}

impl fmt::Display for ClipParityReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "| stage | matched | total | rate | max abs diff |")?;
        writeln!(f, "| --- | ---: | ---: | ---: | ---: |")?;
        for (name, s) in &self.stages {
            let rate = if s.total == 0 {
                0.0
            } else {
                100.0 * s.matched as f64 / s.total as f64
            };
            let m = s.max_abs.map_or("".to_string(), |m| format!("{m:.3e}"));
            writeln!(
                f,
                "| {name} | {} | {} | {rate:.2} % | {m} |",
                s.matched, s.total
            )?;
        }
        for (name, s) in &self.stages {
            for e in &s.examples {
                writeln!(f, "  {name}: {e}")?;
            }
        }
        Ok(())
    }
}

fn sha256(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

fn read_jsonl<T: serde::de::DeserializeOwned>(path: &Path) -> anyhow::Result<Vec<T>> {
    let text = fs_err::read_to_string(path)?;
    text.lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(i, l)| {
            serde_json::from_str(l).with_context(|| format!("{}: line {}", path.display(), i + 1))
        })
        .collect()
}

/// `.npy` float32 C-order 2-D array (format 1.0/2.0): (rows, cols, values).
fn read_npy_f32(path: &Path) -> anyhow::Result<(usize, usize, Vec<f32>)> {
    let bytes = fs_err::read(path)?;
    if bytes.len() < 10 || &bytes[..6] != b"\x93NUMPY" {
        bail!("{}: not a .npy file", path.display());
    }
    let (header_len, start) = match bytes[6] {
        1 => (u16::from_le_bytes([bytes[8], bytes[9]]) as usize, 10),
        _ => (
            u32::from_le_bytes([bytes[8], bytes[9], bytes[10], bytes[11]]) as usize,
            12,
        ),
    };
    let header = std::str::from_utf8(&bytes[start..start + header_len])?;
    if !header.contains("'<f4'") || header.contains("'fortran_order': True") {
        bail!(
            "{}: expected little-endian float32 in C order: {header}",
            path.display()
        );
    }
    let shape = header
        .split("'shape': (")
        .nth(1)
        .and_then(|s| s.split(')').next())
        .with_context(|| format!("{}: no shape in {header}", path.display()))?;
    let dims: Vec<usize> = shape
        .split(',')
        .filter(|s| !s.trim().is_empty())
        .map(|s| s.trim().parse())
        .collect::<Result<_, _>>()?;
    let [rows, cols] = dims[..] else {
        bail!("{}: expected a 2-D array, shape ({shape})", path.display());
    };
    let data: Vec<f32> = bytes[start + header_len..]
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect();
    if data.len() != rows * cols {
        bail!(
            "{}: {} values for shape ({rows}, {cols})",
            path.display(),
            data.len()
        );
    }
    Ok((rows, cols, data))
}

/// The reference's detections CSV: per file name, (score, box) rows in file order.
fn read_detections(path: &Path) -> anyhow::Result<HashMap<String, Vec<(f64, BoxXyxy)>>> {
    let text = fs_err::read_to_string(path)?;
    let mut out: HashMap<String, Vec<(f64, BoxXyxy)>> = HashMap::new();
    for (i, line) in text.lines().enumerate().skip(1) {
        let f: Vec<&str> = line.trim_end_matches('\r').split(',').collect();
        let num = |k: usize| -> anyhow::Result<f64> {
            f.get(k)
                .and_then(|v| v.parse().ok())
                .with_context(|| format!("{}: line {}: field {k}", path.display(), i + 1))
        };
        let b = [num(1)?, num(2)?, num(3)?, num(4)?];
        out.entry(f[0].to_string()).or_default().push((
            num(5)?,
            // The research reads the CSV into Python floats and filters on them; the crop
            // converts them to a float32 tensor.
            BoxXyxy::from_array(b.map(|v| v as f32)),
        ));
    }
    Ok(out)
}

/// Run every stage.
pub fn run(args: &ClipParityArgs) -> anyhow::Result<ClipParityReport> {
    let clip_dir = args.reference.join(format!("{}-clip", args.dataset));
    let data_dir = args.reference.join(&args.dataset);
    let source = DatasetSource {
        kind: DatasetKind::Refcocog,
        split_by: SplitBy::Umd,
        annotations_dir: data_dir.join("annotations"),
        images_dir: data_dir.join("images"),
        splits: Vec::new(),
        expected_sha256: ExpectedSha256::default(),
    };
    let dataset = crate::dataset::load(&source)?;
    let detections = read_detections(
        &args
            .reference
            .join(format!("{}-results", args.dataset))
            .join(format!("{}.csv", args.detector)),
    )?;
    let lines: Vec<CropLine> = read_jsonl(&clip_dir.join("clip_fingerprints.jsonl"))?;
    let texts: Vec<TextLine> = read_jsonl(&clip_dir.join("clip_text.jsonl"))?;
    let (_, dim, ref_emb) = read_npy_f32(&clip_dir.join("clip_image_embeddings.npy"))?;
    let filter = ProposalFilter::default();
    let transform = args.encoder.transform;
    let mut encoder = Encoder::new(args.encoder.clone(), &args.runtime)?;

    // refaug's crops, keyed like the reference's lines.
    struct Ours {
        proposal_index: Option<usize>,
        crop: CropBox,
        crop_sha256: String,
        input_sha256: String,
    }
    let images: HashMap<i64, _> = dataset.images.iter().map(|i| (i.image_id, i)).collect();
    let mut decoded: HashMap<String, RgbImage> = HashMap::new();
    let mut ours: HashMap<(i64, String, Option<usize>), Ours> = HashMap::new();
    let mut inputs = Vec::new();
    let mut input_row: HashMap<String, usize> = HashMap::new();
    for r in &dataset.refs {
        let rec = images[&r.image_id];
        if !decoded.contains_key(&rec.file_name) {
            let img = crate::decode::decode_file(&dataset.images_dir.join(&rec.file_name))?;
            decoded.insert(rec.file_name.clone(), img);
        }
        let img = &decoded[&rec.file_name];
        let whole = BoxXyxy::from_array([0.0, 0.0, img.width() as f32, img.height() as f32]);
        let mut cands = vec![("gt", None, None, r.gt_box), ("image", None, None, whole)];
        let kept = detections
            .get(&rec.file_name)
            .map(Vec::as_slice)
            .unwrap_or_default()
            .iter()
            .enumerate()
            .filter(|(_, (s, b))| filter.keeps(*s, b));
        for (k, (p, (_, b))) in kept.enumerate() {
            cands.push(("proposal", Some(p), Some(k), *b));
        }
        for (kind, p, k, b) in cands {
            let cb = CropBox::from_xyxy(&b)
                .with_context(|| format!("ref {} ({kind} {k:?})", r.ref_id))?;
            let u8crop = crop(img, cb);
            let input = transform.apply(&u8crop);
            let bytes: Vec<u8> = input.data.iter().flat_map(|v| v.to_le_bytes()).collect();
            let input_sha256 = sha256(&bytes);
            if !input_row.contains_key(&input_sha256) {
                input_row.insert(input_sha256.clone(), inputs.len());
                inputs.push(input);
            }
            ours.insert(
                (r.ref_id, kind.to_string(), k),
                Ours {
                    proposal_index: p,
                    crop: cb,
                    crop_sha256: sha256(&u8crop.data),
                    input_sha256,
                },
            );
        }
    }
    let refs: Vec<_> = inputs.iter().collect();
    let embeddings = encoder.encode_images(&refs)?;

    let mut st: BTreeMap<&'static str, ClipStage> = BTreeMap::new();
    let mut emb = ClipStage {
        max_abs: Some(0.0),
        ..ClipStage::default()
    };
    let mut seen_rows: HashMap<usize, ()> = HashMap::new();
    for l in &lines {
        let key = (l.ref_id, l.kind.clone(), l.kept_index);
        let name = || format!("ref {} {} {:?}", l.ref_id, l.kind, l.kept_index);
        let Some(o) = ours.get(&key) else {
            for s in [
                "1 proposal kept",
                "2 crop box",
                "3 crop sha256",
                "4 input sha256",
            ] {
                st.entry(s)
                    .or_default()
                    .record(false, || format!("{}: not made", name()));
            }
            continue;
        };
        st.entry("1 proposal kept").or_default().record(
            o.proposal_index == l.proposal_index,
            || {
                format!(
                    "{}: {:?} vs {:?}",
                    name(),
                    o.proposal_index,
                    l.proposal_index
                )
            },
        );
        let xywh = [o.crop.x, o.crop.y, o.crop.w, o.crop.h];
        st.entry("2 crop box")
            .or_default()
            .record(xywh == l.crop_xywh, || {
                format!("{}: {xywh:?} vs {:?}", name(), l.crop_xywh)
            });
        st.entry("3 crop sha256")
            .or_default()
            .record(o.crop_sha256 == l.crop_sha256, name);
        st.entry("4 input sha256")
            .or_default()
            .record(o.input_sha256 == l.input_sha256, name);
        if seen_rows.insert(l.emb_row, ()).is_none() {
            let want = &ref_emb[l.emb_row * dim..(l.emb_row + 1) * dim];
            let got = &embeddings[input_row[&o.input_sha256]];
            let d = got
                .iter()
                .zip(want)
                .map(|(a, b)| (f64::from(*a) - f64::from(*b)).abs())
                .fold(0.0, f64::max);
            emb.max_abs = Some(emb.max_abs.unwrap_or(0.0).max(d));
            emb.record(got.len() == want.len(), name);
        }
    }
    // Crops refaug made that the reference does not list.
    let listed: std::collections::HashSet<_> = lines
        .iter()
        .map(|l| (l.ref_id, l.kind.clone(), l.kept_index))
        .collect();
    for k in ours.keys().filter(|k| !listed.contains(*k)) {
        st.entry("1 proposal kept")
            .or_default()
            .record(false, || format!("ref {} {} {:?}: extra", k.0, k.1, k.2));
    }

    let tokenizer = ClipTokenizer::shared();
    let sentences: HashMap<i64, &str> = dataset
        .refs
        .iter()
        .flat_map(|r| r.sentences.iter().map(|s| (s.sent_id, s.sent.as_str())))
        .collect();
    let mut tok = ClipStage::default();
    let mut txt = ClipStage {
        max_abs: Some(0.0),
        ..ClipStage::default()
    };
    let mut rows = Vec::new();
    let mut wants = Vec::new();
    for t in &texts {
        let Some(sent) = sentences.get(&t.sent_id) else {
            tok.record(false, || {
                format!("sentence {} not in the dataset", t.sent_id)
            });
            continue;
        };
        let got = tokenizer.tokenize(sent, false);
        let ok = got.as_ref().is_ok_and(|g| g.ids[..] == t.tokens[..]);
        tok.record(ok, || format!("sentence {} {sent:?}", t.sent_id));
        if let Ok(g) = got {
            rows.push(g.ids);
            wants.push(&t.embedding);
        }
    }
    let text_emb = encoder.encode_texts(&rows)?;
    for (got, want) in text_emb.iter().zip(wants) {
        let d = got
            .iter()
            .zip(want)
            .map(|(a, b)| (f64::from(*a) - f64::from(*b)).abs())
            .fold(0.0, f64::max);
        txt.max_abs = Some(txt.max_abs.unwrap_or(0.0).max(d));
        txt.record(got.len() == want.len(), || "dimension".into());
    }
    let mut stages: Vec<(&'static str, ClipStage)> = st.into_iter().collect();
    stages.push(("5 image embedding", emb));
    stages.push(("6 tokens", tok));
    stages.push(("7 text embedding", txt));
    Ok(ClipParityReport {
        stages,
        image_tolerance: 1e-5,
        text_tolerance: 1e-5,
    })
}
