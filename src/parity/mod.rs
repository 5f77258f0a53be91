//! Stage parity against the reference pipeline's `fingerprints.jsonl`: decoded RGB and model-input
//! tensors compared by SHA-256, detector by detector, so a mismatch is found at the first stage
//! that differs (see `reference/README.md`, "Compare stage by stage").
//!
//! [`check`] needs only this crate's pure kernels, not ONNX Runtime. [`run`] is `refaug parity`:
//! these stages plus every detector's boxes against the reference CSVs ([`compare`]).

pub mod clip;
pub mod compare;
pub mod run;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use image::RgbImage;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::decode;
use crate::preprocess::Chw;
use crate::preprocess::detr::{DetrPreprocess, Processor};
use crate::preprocess::letterbox::{Letterbox, LetterboxShape};

/// One line of `fingerprints.jsonl`: what the reference computed for one (detector, image).
/// The fields are in the reference's key order (serialising gives its lines).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Fingerprint {
    /// The reference CSV's name without `.csv`, e.g. `yolov8n-cal`, `detr_resnet18-cal@pil`.
    pub detector: String,
    /// The ONNX file name.
    pub model: String,
    /// `"torchvision"` / `"pil"` for DETR, the calling convention `"autoshape"` / `"predict"` for
    /// the YOLO detectors called through the libraries' wrappers, else `None`.
    pub processor: Option<String>,
    /// The image's `file_name` in `instances.json` (relative to the images folder).
    pub file_name: String,
    pub image_id: u64,
    /// `[H, W, 3]`.
    pub rgb_shape: Vec<usize>,
    /// SHA-256 of the decoded H×W×3 uint8 image, C order.
    pub rgb_sha256: String,
    /// The model's input name (`images`, `pixel_values`).
    pub input_name: String,
    /// `[1, 3, H, W]` for batch models, `[3, H, W]` for torchvision detection models.
    pub input_shape: Vec<usize>,
    /// Always `float32` for these models.
    pub input_dtype: String,
    /// SHA-256 of the model input's float32 values, little-endian, C order.
    pub input_sha256: String,
    /// Rows the reference wrote to the CSV for this image.
    pub n_boxes: usize,
}

/// Why the fingerprints could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum ParityError {
    /// The file could not be read (the I/O error names it).
    #[error("cannot read fingerprints")]
    Read(#[from] std::io::Error),
    /// A line is not a fingerprint record.
    #[error("{path}:{line}: not a fingerprint record")]
    Parse {
        path: PathBuf,
        line: usize,
        #[source]
        source: serde_json::Error,
    },
}

/// Read `fingerprints.jsonl` (one JSON object per line; blank lines ignored).
pub fn load_fingerprints(path: &Path) -> Result<Vec<Fingerprint>, ParityError> {
    let text = fs_err::read_to_string(path)?;
    text.lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(i, l)| {
            serde_json::from_str(l).map_err(|source| ParityError::Parse {
                path: path.to_path_buf(),
                line: i + 1,
                source,
            })
        })
        .collect()
}

/// SHA-256 (lower-case hex) of an RGB image as an H×W×3 uint8 array in C order: the raw bytes.
pub fn sha256_rgb(img: &RgbImage) -> String {
    hex::encode(Sha256::digest(img.as_raw()))
}

/// SHA-256 (lower-case hex) of a tensor's float32 values, little-endian, C order. A batch dimension
/// of 1 (`[1, 3, H, W]`) does not change the bytes, so this fits both `[3, H, W]` and batch inputs.
pub fn sha256_chw(t: &Chw) -> String {
    let mut h = Sha256::new();
    for v in &t.data {
        h.update(v.to_le_bytes());
    }
    hex::encode(h.finalize())
}

/// How a detector's model input is made from the decoded image.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum InputRecipe {
    /// YOLO: letterbox (fixed, AutoShape's or `predict`'s), `x / 255`, batch of one.
    Letterbox(Letterbox),
    /// torchvision detection models: `to_tensor` of the original image, no batch dimension.
    UnitChw,
    /// Hugging Face DETR processors (`preprocess::detr`), batch of one.
    Detr(DetrPreprocess),
}

impl InputRecipe {
    /// The recipe the reference pipeline used for a fingerprint's detector, by model family
    /// (`yolo*`, `fasterrcnn*`, `detr*`); `None` for a family this module does not know.
    pub fn for_fingerprint(fp: &Fingerprint) -> Option<InputRecipe> {
        let name = fp.detector.as_str();
        if name.starts_with("yolo") {
            // `reference/README.md`: the wrappers' target is imgsz / size 640 (stride 32); the
            // fixed convention's is the input size the reference fed, [1, 3, H, W].
            let (width, height, shape) = match (fp.processor.as_deref(), fp.input_shape.as_slice())
            {
                (Some("autoshape"), _) => (640, 640, LetterboxShape::AutoShape),
                (Some("predict"), _) => (640, 640, LetterboxShape::MinRect),
                (None, [1, 3, h, w]) => (*w as u32, *h as u32, LetterboxShape::Fixed),
                _ => return None,
            };
            let letterbox = Letterbox::with_defaults(width, height, shape);
            Some(InputRecipe::Letterbox(letterbox))
        } else if name.starts_with("fasterrcnn") {
            Some(InputRecipe::UnitChw)
        } else if name.starts_with("detr") {
            match fp.processor.as_deref() {
                Some("pil") => Some(InputRecipe::Detr(detr_defaults(Processor::Pil))),
                Some("torchvision") | None => {
                    Some(InputRecipe::Detr(detr_defaults(Processor::Torchvision)))
                }
                Some(_) => None,
            }
        } else {
            None
        }
    }

    /// Whether the model input has a leading batch dimension of 1.
    pub fn batched(&self) -> bool {
        !matches!(self, InputRecipe::UnitChw)
    }

    /// Compute the model input for `img`.
    pub fn input(&self, img: &RgbImage) -> Chw {
        match *self {
            InputRecipe::Letterbox(letterbox) => letterbox.tensor(img).0,
            InputRecipe::UnitChw => Chw::from_rgb_unit(img),
            InputRecipe::Detr(cfg) => crate::preprocess::detr::preprocess(img, &cfg),
        }
    }
}

/// `DetrImageProcessor()` defaults (transformers 5.24): shortest edge 800, longest 1333, ImageNet
/// mean and std.
pub fn detr_defaults(processor: Processor) -> DetrPreprocess {
    DetrPreprocess {
        processor,
        ..DetrPreprocess::default()
    }
}

/// What to check.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct ParityOptions {
    /// Also compute DETR inputs (needs `preprocess::detr`); otherwise their input stage is skipped.
    pub include_detr: bool,
}

/// The two stages compared here.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Stage {
    /// Decoded RGB vs `rgb_sha256` (and `rgb_shape`).
    Decode,
    /// Model input vs `input_sha256` (and `input_shape`).
    Input,
}

/// One image that did not match, and how.
#[derive(Debug, Clone, PartialEq)]
pub struct Miss {
    /// The image's `file_name`.
    pub file_name: String,
    /// What differed (shape, hash) or why it could not be computed (the decode error).
    pub reason: String,
}

/// Matches of one stage for one detector.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct StageReport {
    /// Images whose hash (and shape) equal the reference.
    pub matched: usize,
    /// Images compared (matched + missed).
    pub total: usize,
    /// Images not compared at this stage (unknown recipe, DETR not requested, decode failed).
    pub skipped: usize,
    /// The images that differ, in fingerprint order.
    pub misses: Vec<Miss>,
}

impl StageReport {
    fn record(&mut self, file_name: &str, outcome: Result<(), String>) {
        self.total += 1;
        match outcome {
            Ok(()) => self.matched += 1,
            Err(reason) => self.misses.push(Miss {
                file_name: file_name.to_string(),
                reason,
            }),
        }
    }
}

/// Per detector (in fingerprint order), per stage.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ParityReport {
    /// `(detector, stage → report)` in the order the detectors first appear in the fingerprints.
    pub detectors: Vec<(String, BTreeMap<Stage, StageReport>)>,
}

impl ParityReport {
    fn stage(&mut self, detector: &str, stage: Stage) -> &mut StageReport {
        let i = match self.detectors.iter().position(|(d, _)| d == detector) {
            Some(i) => i,
            None => {
                self.detectors.push((detector.to_string(), BTreeMap::new()));
                self.detectors.len() - 1
            }
        };
        self.detectors[i].1.entry(stage).or_default()
    }

    /// The report of one detector's stage, if any image was seen for it.
    pub fn get(&self, detector: &str, stage: Stage) -> Option<&StageReport> {
        self.detectors
            .iter()
            .find(|(d, _)| d == detector)
            .and_then(|(_, s)| s.get(&stage))
    }

    /// Every compared value matched.
    pub fn all_matched(&self) -> bool {
        self.detectors
            .iter()
            .flat_map(|(_, s)| s.values())
            .all(|r| r.misses.is_empty())
    }
}

impl std::fmt::Display for ParityReport {
    /// One line per detector and stage (`matched/total`, skipped), then one indented line per miss.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for (detector, stages) in &self.detectors {
            for (stage, r) in stages {
                let name = match stage {
                    Stage::Decode => "decode",
                    Stage::Input => "input",
                };
                write!(f, "{detector} {name}: {}/{} matched", r.matched, r.total)?;
                if r.skipped > 0 {
                    write!(f, ", {} skipped", r.skipped)?;
                }
                writeln!(f)?;
                for m in &r.misses {
                    writeln!(f, "  {}: {}", m.file_name, m.reason)?;
                }
            }
        }
        Ok(())
    }
}

fn compare_rgb(img: &RgbImage, fp: &Fingerprint) -> Result<(), String> {
    let shape = vec![img.height() as usize, img.width() as usize, 3];
    if shape != fp.rgb_shape {
        return Err(format!("shape {shape:?}, reference {:?}", fp.rgb_shape));
    }
    if sha256_rgb(img) != fp.rgb_sha256 {
        return Err("decoded pixels differ (sha256)".into());
    }
    Ok(())
}

/// Compares a model input with the fingerprint; `batched`: the model takes `[1, 3, H, W]`.
fn compare_input(t: &Chw, batched: bool, fp: &Fingerprint) -> Result<(), String> {
    let mut shape = vec![3, t.height, t.width];
    if batched {
        shape.insert(0, 1);
    }
    if shape != fp.input_shape {
        return Err(format!("shape {shape:?}, reference {:?}", fp.input_shape));
    }
    if fp.input_dtype != "float32" {
        return Err(format!("reference dtype {}, not float32", fp.input_dtype));
    }
    if sha256_chw(t) != fp.input_sha256 {
        return Err("input tensor differs (sha256)".into());
    }
    Ok(())
}

/// Check every fingerprint against `images_dir/<file_name>`: each image is decoded once, then every
/// detector's input computed from it. Decode failures are misses (with the error), not aborts.
pub fn check(
    images_dir: &Path,
    fingerprints: &[Fingerprint],
    opts: &ParityOptions,
) -> ParityReport {
    let mut report = ParityReport::default();
    // Register detectors in fingerprint order so the report reads like the file.
    for fp in fingerprints {
        report.stage(&fp.detector, Stage::Decode);
        report.stage(&fp.detector, Stage::Input);
    }
    let mut by_image: BTreeMap<&str, Vec<&Fingerprint>> = BTreeMap::new();
    let mut order: Vec<&str> = Vec::new();
    for fp in fingerprints {
        let rows = by_image.entry(fp.file_name.as_str()).or_default();
        if rows.is_empty() {
            order.push(fp.file_name.as_str());
        }
        rows.push(fp);
    }
    for file_name in order {
        let decoded = decode::decode_file(&images_dir.join(file_name));
        for fp in &by_image[file_name] {
            let img = match &decoded {
                Ok(img) => img,
                Err(e) => {
                    report
                        .stage(&fp.detector, Stage::Decode)
                        .record(file_name, Err(e.to_string()));
                    report.stage(&fp.detector, Stage::Input).skipped += 1;
                    continue;
                }
            };
            report
                .stage(&fp.detector, Stage::Decode)
                .record(file_name, compare_rgb(img, fp));
            let recipe = InputRecipe::for_fingerprint(fp)
                .filter(|r| opts.include_detr || !matches!(r, InputRecipe::Detr(_)));
            match recipe {
                Some(recipe) => {
                    let t = recipe.input(img);
                    report
                        .stage(&fp.detector, Stage::Input)
                        .record(file_name, compare_input(&t, recipe.batched(), fp));
                }
                None => report.stage(&fp.detector, Stage::Input).skipped += 1,
            }
        }
    }
    report
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `hashlib.sha256(np.array([[[1, 2, 3], [4, 5, 6]]], np.uint8).tobytes()).hexdigest()`
    #[test]
    fn rgb_hash_is_of_the_c_order_bytes() {
        let img = RgbImage::from_raw(2, 1, vec![1, 2, 3, 4, 5, 6]).unwrap();
        assert_eq!(
            sha256_rgb(&img),
            "7192385c3c0605de55bb9476ce1d90748190ecb32a8eed7f5207b30cf6a1fe89"
        );
    }

    /// `hashlib.sha256((np.array([[[0, 255, 51]]], np.uint8).transpose(2, 0, 1)[None]
    ///  .astype(np.float32) / np.float32(255)).tobytes()).hexdigest()`
    #[test]
    fn chw_hash_is_of_little_endian_float32() {
        let img = RgbImage::from_raw(1, 1, vec![0, 255, 51]).unwrap();
        let t = Chw::from_rgb_unit(&img);
        assert_eq!(
            sha256_chw(&t),
            "968484606728e9b7b378a84ed90f950d981e36f2e38f1d9dbfe165a019fb1c9e"
        );
    }

    fn fingerprint(
        detector: &str,
        processor: Option<&str>,
        input_shape: Vec<usize>,
    ) -> Fingerprint {
        Fingerprint {
            detector: detector.into(),
            model: format!("{detector}.onnx"),
            processor: processor.map(str::to_string),
            file_name: "a.jpg".into(),
            image_id: 1,
            rgb_shape: vec![1, 1, 3],
            rgb_sha256: String::new(),
            input_name: "images".into(),
            input_shape,
            input_dtype: "float32".into(),
            input_sha256: String::new(),
            n_boxes: 0,
        }
    }

    #[test]
    fn recipes_by_family() {
        let letterbox = |shape| {
            Some(InputRecipe::Letterbox(Letterbox::with_defaults(
                640, 640, shape,
            )))
        };
        let y = fingerprint("yolov8n-cal", None, vec![1, 3, 640, 640]);
        assert_eq!(
            InputRecipe::for_fingerprint(&y),
            letterbox(LetterboxShape::Fixed)
        );
        let y = fingerprint("yolov8n-cal@predict", Some("predict"), vec![1, 3, 448, 640]);
        assert_eq!(
            InputRecipe::for_fingerprint(&y),
            letterbox(LetterboxShape::MinRect)
        );
        let y = fingerprint(
            "yolov5n-cal@autoshape",
            Some("autoshape"),
            vec![1, 3, 448, 640],
        );
        assert_eq!(
            InputRecipe::for_fingerprint(&y),
            letterbox(LetterboxShape::AutoShape)
        );
        let f = fingerprint(
            "fasterrcnn_mobilenet_v3_large_320_fpn_slim-cal",
            None,
            vec![3, 480, 640],
        );
        assert_eq!(InputRecipe::for_fingerprint(&f), Some(InputRecipe::UnitChw));
        let d = fingerprint("detr_resnet18-cal@pil", Some("pil"), vec![1, 3, 800, 1066]);
        assert_eq!(
            InputRecipe::for_fingerprint(&d),
            Some(InputRecipe::Detr(detr_defaults(Processor::Pil)))
        );
        assert_eq!(
            InputRecipe::for_fingerprint(&fingerprint("ssd", None, vec![1, 3, 300, 300])),
            None
        );
    }

    #[test]
    fn fingerprint_line_parses() {
        let line = r#"{"detector": "yolov8n-cal", "model": "yolov8n-cal.onnx", "processor": null, "file_name": "x.jpg", "image_id": 7, "rgb_shape": [640, 480, 3], "rgb_sha256": "ab", "input_name": "images", "input_shape": [1, 3, 640, 640], "input_dtype": "float32", "input_sha256": "cd", "n_boxes": 8}"#;
        let fp: Fingerprint = serde_json::from_str(line).unwrap();
        assert_eq!(fp.rgb_shape, vec![640, 480, 3]);
        assert_eq!(fp.processor, None);
        assert_eq!(fp.n_boxes, 8);
    }
}
