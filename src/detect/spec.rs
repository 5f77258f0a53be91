//! Detector specs: `detectors/<name>.toml`, validated into what the code uses.
//!
//! A spec says what a detector *is* (model file and hash, family, thresholds, classes, what it was
//! trained on); how a run uses it (device, threads, batch size) is `runtime::RuntimeOptions`.
//! The TOML is read into a wire struct that refuses unknown keys, then validated into
//! [`DetectorSpec`]. Keys of one family's pre- and post-processing are refused on another family.
//!
//! ```toml
//! name = "yolov8x"
//! family = "ultralytics"                # yolov5 | ultralytics | detr | torchvision
//! model = "../models/yolov8x.onnx"      # relative to this file
//! model_sha256 = "unknown"              # 64 hex digits, or "unknown" (not checked; see below)
//! trained_on = "COCO train2017"
//! sees_eval_images = true               # RefCOCO* images are COCO train2014 ⊂ train2017
//! classes = "coco80"                    # "coco80" | "coco91" | ["name", ...]
//! # optional, with the original library's defaults:
//! score_threshold = 0.1                 # keep scores strictly greater (the research used 0.1)
//! nms_iou = 0.7                         # yolov5 0.45, ultralytics 0.7
//! max_det = 300                         # yolov5 1000, ultralytics 300, detr: queries, torchvision 100
//! convention = "fixed"                 # yolov5: "detect" | "autoshape"; ultralytics: "fixed" | "predict"
//! input_size = [640, 640]               # yolo families: letterbox target [width, height]
//! letterbox_pad = 114                   # yolo families
//! stride = 32                           # yolo families, rectangular conventions: the network stride
//! round_boxes = true                    # yolov5: detect.py rounds corners to whole pixels
//! clip_boxes = true                     # clip boxes to the image (default: as the library does)
//! processor = "torchvision"             # detr: "torchvision" (transformers 5) | "pil" (transformers 4)
//! shortest_edge = 800                   # detr
//! longest_edge = 1333                   # detr
//! mean = [0.485, 0.456, 0.406]          # detr
//! std = [0.229, 0.224, 0.225]           # detr
//! description = "..."                   # free text: where the weights come from
//! export = "yolo export model=yolov8x.pt format=onnx dynamic=True"  # how to make the model file
//! ```
//!
//! `model_sha256 = "unknown"` is for a model that is not exported yet: ONNX exports are not
//! byte-reproducible across library versions, so no hash can be written down before the file
//! exists. Such a spec loads, its model is not checked, and `refaug detectors check` prints the
//! file's actual hash to pin. A pinned hash is checked before every use; a mismatch is an error.

use std::path::{Path, PathBuf};

use crate::detect::Family;
use crate::detect::nms::NmsParams;
use crate::preprocess::detr::{DetrPreprocess, Processor};
use crate::preprocess::letterbox::{Letterbox, LetterboxShape};

/// The YOLO families' candidate cap before NMS (`max_nms`, 30000 in yolov5 v7.0 and ultralytics 8.4).
pub const YOLO_MAX_NMS: usize = 30000;
/// The YOLO families' class offset for class-aware NMS (`max_wh`, 7680 in both libraries).
pub const YOLO_MAX_WH: f32 = 7680.0;
/// The research's confidence threshold, the default of every spec.
pub const DEFAULT_SCORE_THRESHOLD: f32 = 0.1;
/// ImageNet mean, the DETR processor default (`IMAGENET_DEFAULT_MEAN`).
pub const IMAGENET_MEAN: [f32; 3] = [0.485, 0.456, 0.406];
/// ImageNet std, the DETR processor default (`IMAGENET_DEFAULT_STD`).
pub const IMAGENET_STD: [f32; 3] = [0.229, 0.224, 0.225];

/// The 80 COCO detection categories in the YOLO (COCO-80) index order, as
/// `../shared/reference/tools/anchors_common.py` `COCO80_NAMES` (instances_train2014.json order).
#[rustfmt::skip]
pub const COCO80_NAMES: [&str; 80] = [
    "person", "bicycle", "car", "motorcycle", "airplane", "bus",
    "train", "truck", "boat", "traffic light", "fire hydrant", "stop sign",
    "parking meter", "bench", "bird", "cat", "dog", "horse",
    "sheep", "cow", "elephant", "bear", "zebra", "giraffe",
    "backpack", "umbrella", "handbag", "tie", "suitcase", "frisbee",
    "skis", "snowboard", "sports ball", "kite", "baseball bat", "baseball glove",
    "skateboard", "surfboard", "tennis racket", "bottle", "wine glass", "cup",
    "fork", "knife", "spoon", "bowl", "banana", "apple",
    "sandwich", "orange", "broccoli", "carrot", "hot dog", "pizza",
    "donut", "cake", "chair", "couch", "potted plant", "bed",
    "dining table", "toilet", "tv", "laptop", "mouse", "remote",
    "keyboard", "cell phone", "microwave", "oven", "toaster", "sink",
    "refrigerator", "book", "clock", "vase", "scissors", "teddy bear",
    "hair drier", "toothbrush",
];

/// YOLO class index → COCO category id (`anchors_common.py` `COCO80_TO_COCO91`).
#[rustfmt::skip]
pub const COCO80_TO_COCO91: [u8; 80] = [
    1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 13, 14, 15, 16, 17,
    18, 19, 20, 21, 22, 23, 24, 25, 27, 28, 31, 32, 33, 34, 35, 36,
    37, 38, 39, 40, 41, 42, 43, 44, 46, 47, 48, 49, 50, 51, 52, 53,
    54, 55, 56, 57, 58, 59, 60, 61, 62, 63, 64, 65, 67, 70, 72, 73,
    74, 75, 76, 77, 78, 79, 80, 81, 82, 84, 85, 86, 87, 88, 89, 90,
];

/// The 91-slot COCO label space of torchvision detection models and DETR: index = COCO category
/// id, slot 0 = background, unused ids `"N/A"` (`anchors_common.py` `COCO91_NAMES`).
#[rustfmt::skip]
pub const COCO91_NAMES: [&str; 91] = [
    "__background__", "person", "bicycle", "car", "motorcycle", "airplane",
    "bus", "train", "truck", "boat", "traffic light", "fire hydrant",
    "N/A", "stop sign", "parking meter", "bench", "bird", "cat",
    "dog", "horse", "sheep", "cow", "elephant", "bear",
    "zebra", "giraffe", "N/A", "backpack", "umbrella", "N/A",
    "N/A", "handbag", "tie", "suitcase", "frisbee", "skis",
    "snowboard", "sports ball", "kite", "baseball bat", "baseball glove", "skateboard",
    "surfboard", "tennis racket", "bottle", "N/A", "wine glass", "cup",
    "fork", "knife", "spoon", "bowl", "banana", "apple",
    "sandwich", "orange", "broccoli", "carrot", "hot dog", "pizza",
    "donut", "cake", "chair", "couch", "potted plant", "bed",
    "N/A", "dining table", "N/A", "N/A", "toilet", "N/A",
    "tv", "laptop", "mouse", "remote", "keyboard", "cell phone",
    "microwave", "oven", "toaster", "sink", "refrigerator", "N/A",
    "book", "clock", "vase", "scissors", "teddy bear", "hair drier",
    "toothbrush",
];

/// Errors of reading and validating a spec, and of checking its model file.
#[derive(Debug, thiserror::Error)]
pub enum SpecError {
    #[error(transparent)]
    Io(#[from] std::io::Error),
    #[error("{}: invalid detector spec", path.display())]
    Parse {
        path: PathBuf,
        #[source]
        source: Box<toml::de::Error>,
    },
    #[error("{}: `{key}`: {message}", path.display())]
    Invalid {
        path: PathBuf,
        key: &'static str,
        message: String,
    },
    #[error("{}: `{key}` does not apply to the {family:?} family", path.display())]
    NotForFamily {
        path: PathBuf,
        key: &'static str,
        family: Family,
    },
    #[error(
        "{}: model not present: {}; {}",
        spec.display(),
        model.display(),
        export.as_deref().map_or_else(
            || "the spec names no export command (see its description)".to_string(),
            |e| format!("export it with `{e}`, then pin its sha256 (sha256sum)")
        )
    )]
    ModelMissing {
        spec: PathBuf,
        model: PathBuf,
        export: Option<String>,
    },
    #[error(
        "{}: sha256 of {} is {actual}, but the spec pins {expected}",
        spec.display(),
        model.display()
    )]
    Sha256Mismatch {
        spec: PathBuf,
        model: PathBuf,
        expected: String,
        actual: String,
    },
}

/// The wire form of a spec file: exactly the keys a user may write.
#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct SpecWire {
    name: String,
    family: Family,
    model: PathBuf,
    model_sha256: String,
    trained_on: String,
    sees_eval_images: bool,
    classes: ClassesWire,
    score_threshold: Option<f32>,
    nms_iou: Option<f32>,
    max_det: Option<usize>,
    convention: Option<Convention>,
    input_size: Option<[u32; 2]>,
    letterbox_pad: Option<u8>,
    stride: Option<u32>,
    round_boxes: Option<bool>,
    clip_boxes: Option<bool>,
    processor: Option<Processor>,
    shortest_edge: Option<u32>,
    longest_edge: Option<u32>,
    mean: Option<[f32; 3]>,
    std: Option<[f32; 3]>,
    description: Option<String>,
    export: Option<String>,
}

#[derive(Debug, serde::Deserialize)]
#[serde(untagged)]
enum ClassesWire {
    Named(String),
    List(Vec<String>),
}

/// The expected sha256 of a spec's model file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ModelHash {
    /// 64 lowercase hex digits, checked before the model is used.
    Pinned(String),
    /// `"unknown"`: not checked (a model not exported yet); the actual hash is reported instead.
    Unknown,
}

/// A detector's class names, indexed by the class id its family reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Classes {
    /// [`COCO80_NAMES`]: YOLO class indices 0..79.
    Coco80,
    /// [`COCO91_NAMES`]: COCO category ids 0..90 (torchvision, DETR).
    Coco91,
    /// An explicit list.
    Custom(Vec<String>),
}

impl Classes {
    /// Number of class ids.
    pub fn len(&self) -> usize {
        match self {
            Classes::Coco80 => COCO80_NAMES.len(),
            Classes::Coco91 => COCO91_NAMES.len(),
            Classes::Custom(v) => v.len(),
        }
    }

    /// Never true for a validated spec.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The name of class id `id`, if it is in range.
    pub fn name(&self, id: i32) -> Option<&str> {
        let i = usize::try_from(id).ok()?;
        match self {
            Classes::Coco80 => COCO80_NAMES.get(i).copied(),
            Classes::Coco91 => COCO91_NAMES.get(i).copied(),
            Classes::Custom(v) => v.get(i).map(String::as_str),
        }
    }

    /// How the spec named them: `coco80`, `coco91` or `custom`.
    pub fn label(&self) -> &'static str {
        match self {
            Classes::Coco80 => "coco80",
            Classes::Coco91 => "coco91",
            Classes::Custom(_) => "custom",
        }
    }
}

/// How a YOLO detector is called: the library entry point whose pre- and post-processing refaug
/// reproduces. The one home of what each convention means ([`Convention::letterbox_shape`],
/// [`Convention::rounds_boxes`]); `../shared/reference/README.md` ("The research's calling
/// conventions") documents each wrapper's steps.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Convention {
    /// yolov5 v7.0 `detect.py` on an ONNX model: fixed `input_size` letterbox, corners rounded.
    Detect,
    /// yolov5 v7.0 `AutoShape` (`torch.hub.load("ultralytics/yolov5", …)(pil_image)`, how the
    /// research called YOLOv5s): stride rectangle per image, corners not rounded.
    Autoshape,
    /// ultralytics 8.4 `LetterBox(auto=False)`: fixed `input_size` letterbox (a static export, `val`).
    Fixed,
    /// ultralytics 8.4 `YOLO(…).predict(image)` (how the research called YOLOv8x) with a `.pt` model
    /// or a dynamic ONNX: `LetterBox(auto=True)`, the minimum stride rectangle per image.
    Predict,
}

impl Convention {
    /// The convention a family follows when the spec names none (refaug's behaviour before
    /// conventions were configurable).
    fn default_for(family: Family) -> Convention {
        if family == Family::Yolov5 {
            Convention::Detect
        } else {
            Convention::Fixed
        }
    }

    /// The family whose library has this entry point.
    fn family(self) -> Family {
        match self {
            Convention::Detect | Convention::Autoshape => Family::Yolov5,
            Convention::Fixed | Convention::Predict => Family::Ultralytics,
        }
    }

    /// How the convention chooses the letterbox target per image.
    pub fn letterbox_shape(self) -> LetterboxShape {
        match self {
            Convention::Detect | Convention::Fixed => LetterboxShape::Fixed,
            Convention::Autoshape => LetterboxShape::AutoShape,
            Convention::Predict => LetterboxShape::MinRect,
        }
    }

    /// Whether the convention rounds the scaled corners to whole pixels: only `detect.py`
    /// (`scale_boxes(...).round()`); AutoShape and the ultralytics predictor do not.
    pub fn rounds_boxes(self) -> bool {
        self == Convention::Detect
    }

    /// The spec and reference name: `detect`, `autoshape`, `fixed`, `predict`.
    pub fn name(self) -> &'static str {
        match self {
            Convention::Detect => "detect",
            Convention::Autoshape => "autoshape",
            Convention::Fixed => "fixed",
            Convention::Predict => "predict",
        }
    }

    /// The input shape varies per image (the model needs dynamic height and width).
    pub fn is_rectangular(self) -> bool {
        self.letterbox_shape() != LetterboxShape::Fixed
    }
}

/// A YOLO family's calling convention, letterbox and NMS settings.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct YoloConfig {
    pub convention: Convention,
    /// Target size, shape rule (from the convention), stride and grey level.
    pub letterbox: Letterbox,
    /// `non_max_suppression`'s numbers (conf = the spec's `score_threshold`).
    pub nms: NmsParams,
    /// Round the scaled corners to whole pixels (default: only yolov5 `detect.py` does).
    pub round_boxes: bool,
}

/// What differs between the families, as data.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum FamilyConfig {
    Yolov5(YoloConfig),
    Ultralytics(YoloConfig),
    Detr {
        preprocess: DetrPreprocess,
        /// Keep at most this many boxes (highest scores); `None` = all queries above threshold.
        max_det: Option<usize>,
    },
    Torchvision {
        /// Keep at most this many boxes (the graph itself returns at most 100).
        max_det: usize,
    },
}

/// A validated detector spec.
#[derive(Debug, Clone, PartialEq)]
pub struct DetectorSpec {
    /// The detector's name (names its output variant).
    pub name: String,
    /// The spec file it was read from (errors name it).
    pub spec_path: PathBuf,
    /// The model file, resolved against the spec file's folder.
    pub model_path: PathBuf,
    pub model_sha256: ModelHash,
    /// What the weights were trained on, e.g. "COCO train2017".
    pub trained_on: String,
    /// Whether the training data contains the evaluation images (true for COCO train2017 models
    /// on RefCOCO*: their images are COCO train2014 ⊂ train2017). Output metadata says so.
    pub sees_eval_images: bool,
    pub classes: Classes,
    /// Keep scores strictly greater than this.
    pub score_threshold: f32,
    pub config: FamilyConfig,
    /// Clip boxes to the image. Default: as the original library does — the YOLO libraries'
    /// `scale_boxes` and torchvision's graph clip; Hugging Face DETR's
    /// `post_process_object_detection` does not (its boxes may extend past the image).
    pub clip_boxes: bool,
    /// Free text for people: where the weights come from.
    pub description: Option<String>,
    /// The command that produces the model file (shown when it is missing).
    pub export: Option<String>,
}

impl DetectorSpec {
    /// Read and validate `path`.
    pub fn from_file(path: &Path) -> Result<DetectorSpec, SpecError> {
        let text = fs_err::read_to_string(path)?;
        DetectorSpec::from_toml_str(&text, path)
    }

    /// Validate `text` as the spec file `path` (model paths resolve against its folder).
    pub fn from_toml_str(text: &str, path: &Path) -> Result<DetectorSpec, SpecError> {
        let wire: SpecWire = toml::from_str(text).map_err(|e| SpecError::Parse {
            path: path.to_path_buf(),
            source: Box::new(e),
        })?;
        validate(wire, path)
    }

    /// The family.
    pub fn family(&self) -> Family {
        match self.config {
            FamilyConfig::Yolov5(_) => Family::Yolov5,
            FamilyConfig::Ultralytics(_) => Family::Ultralytics,
            FamilyConfig::Detr { .. } => Family::Detr,
            FamilyConfig::Torchvision { .. } => Family::Torchvision,
        }
    }

    /// Whether the model file exists.
    pub fn model_present(&self) -> bool {
        self.model_path.is_file()
    }

    /// Hash the model file and compare with the pinned hash. Returns the actual hash (also for
    /// `"unknown"`, so that it can be reported and pinned).
    pub fn verify_model_sha256(&self) -> Result<String, SpecError> {
        verify_model_file(
            &self.spec_path,
            &self.model_path,
            &self.model_sha256,
            self.export.as_deref(),
        )
    }
}

/// The one sha256 check of a model file named by a spec (detectors and encoders): missing →
/// an error quoting the export command; a pinned hash must match. Returns the actual hash.
pub fn verify_model_file(
    spec: &Path,
    model: &Path,
    pinned: &ModelHash,
    export: Option<&str>,
) -> Result<String, SpecError> {
    if !model.is_file() {
        return Err(SpecError::ModelMissing {
            spec: spec.to_path_buf(),
            model: model.to_path_buf(),
            export: export.map(str::to_string),
        });
    }
    let actual = crate::sha256_file(model)?;
    match pinned {
        ModelHash::Pinned(expected) if *expected != actual => Err(SpecError::Sha256Mismatch {
            spec: spec.to_path_buf(),
            model: model.to_path_buf(),
            expected: expected.clone(),
            actual,
        }),
        _ => Ok(actual),
    }
}

impl ModelHash {
    /// `"unknown"` or 64 hex digits (lower-cased); anything else is refused.
    pub fn parse(h: &str) -> Option<ModelHash> {
        match h {
            "unknown" => Some(ModelHash::Unknown),
            h if h.len() == 64 && h.bytes().all(|b| b.is_ascii_hexdigit()) => {
                Some(ModelHash::Pinned(h.to_ascii_lowercase()))
            }
            _ => None,
        }
    }
}

/// `dir/rel` with `..` after a named folder removed (`detectors/../models/x.onnx` →
/// `models/x.onnx`), so messages show the path a user would type.
pub(crate) fn lexical_join(dir: &Path, rel: &Path) -> PathBuf {
    use std::path::Component;
    let mut out = PathBuf::new();
    for c in dir.join(rel).components() {
        match c {
            Component::ParentDir
                if matches!(out.components().next_back(), Some(Component::Normal(_))) =>
            {
                out.pop();
            }
            Component::CurDir => {}
            _ => out.push(c),
        }
    }
    out
}

/// A detector's or encoder's `name`: letters, digits and `. _ @ -` only (it names files and
/// metadata).
pub(crate) fn is_spec_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "._@-".contains(c))
}

fn validate(w: SpecWire, path: &Path) -> Result<DetectorSpec, SpecError> {
    let invalid = |key: &'static str, message: String| SpecError::Invalid {
        path: path.to_path_buf(),
        key,
        message,
    };
    let family = w.family;
    let not_for = |key: &'static str| SpecError::NotForFamily {
        path: path.to_path_buf(),
        key,
        family,
    };

    if !is_spec_name(&w.name) {
        return Err(invalid(
            "name",
            format!(
                "{:?}: use letters, digits and . _ @ - only (it names output files)",
                w.name
            ),
        ));
    }
    let model_sha256 = ModelHash::parse(&w.model_sha256).ok_or_else(|| {
        invalid(
            "model_sha256",
            format!(
                "{:?}: expected 64 hex digits or \"unknown\"",
                w.model_sha256
            ),
        )
    })?;
    if w.trained_on.trim().is_empty() {
        return Err(invalid(
            "trained_on",
            "say what the weights were trained on".into(),
        ));
    }
    let classes = match w.classes {
        ClassesWire::Named(n) if n == "coco80" => Classes::Coco80,
        ClassesWire::Named(n) if n == "coco91" => Classes::Coco91,
        ClassesWire::Named(n) => {
            return Err(invalid(
                "classes",
                format!("{n:?}: expected \"coco80\", \"coco91\" or a list of names"),
            ));
        }
        ClassesWire::List(v) if v.is_empty() => {
            return Err(invalid("classes", "the list is empty".into()));
        }
        ClassesWire::List(v) => Classes::Custom(v),
    };
    let score_threshold = w.score_threshold.unwrap_or(DEFAULT_SCORE_THRESHOLD);
    if !(0.0..1.0).contains(&score_threshold) {
        return Err(invalid(
            "score_threshold",
            format!("{score_threshold}: expected 0 <= t < 1"),
        ));
    }
    if let Some(m) = w.max_det
        && m == 0
    {
        return Err(invalid("max_det", "must be at least 1".into()));
    }
    let model_path = lexical_join(path.parent().unwrap_or(Path::new("")), &w.model);

    let is_yolo = matches!(family, Family::Yolov5 | Family::Ultralytics);
    let is_detr = family == Family::Detr;
    // Refuse the keys of other families: a silently ignored setting is a wrong run.
    let family_keys: [(&'static str, bool, bool); 12] = [
        ("nms_iou", w.nms_iou.is_some(), is_yolo),
        ("convention", w.convention.is_some(), is_yolo),
        ("input_size", w.input_size.is_some(), is_yolo),
        ("letterbox_pad", w.letterbox_pad.is_some(), is_yolo),
        ("stride", w.stride.is_some(), is_yolo),
        (
            "round_boxes",
            w.round_boxes.is_some(),
            family == Family::Yolov5,
        ),
        ("processor", w.processor.is_some(), is_detr),
        ("shortest_edge", w.shortest_edge.is_some(), is_detr),
        ("longest_edge", w.longest_edge.is_some(), is_detr),
        ("mean", w.mean.is_some(), is_detr),
        ("std", w.std.is_some(), is_detr),
        // torchvision detection models clip inside the graph: unclipped boxes cannot be had.
        (
            "clip_boxes",
            w.clip_boxes == Some(false),
            family != Family::Torchvision,
        ),
    ];
    if let Some((key, _, _)) = family_keys.iter().find(|(_, set, ok)| *set && !*ok) {
        return Err(not_for(key));
    }
    let clip_boxes = w.clip_boxes.unwrap_or(family != Family::Detr);

    let config = match family {
        Family::Yolov5 | Family::Ultralytics => {
            let [input_w, input_h] = w.input_size.unwrap_or([640, 640]);
            if input_w == 0 || input_h == 0 {
                return Err(invalid(
                    "input_size",
                    format!("[{input_w}, {input_h}]: sides must be positive"),
                ));
            }
            let (iou_default, max_det_default) = if family == Family::Yolov5 {
                (0.45, 1000)
            } else {
                (0.7, 300)
            };
            let iou = w.nms_iou.unwrap_or(iou_default);
            if !(iou > 0.0 && iou <= 1.0) {
                return Err(invalid("nms_iou", format!("{iou}: expected 0 < iou <= 1")));
            }
            let convention = w.convention.unwrap_or(Convention::default_for(family));
            if convention.family() != family {
                let valid = if family == Family::Yolov5 {
                    "\"detect\" or \"autoshape\""
                } else {
                    "\"fixed\" or \"predict\""
                };
                return Err(invalid(
                    "convention",
                    format!(
                        "{:?} is a {:?} convention; the {family:?} family's are {valid}",
                        convention.name(),
                        convention.family()
                    ),
                ));
            }
            let stride = w.stride.unwrap_or(32);
            if stride == 0 {
                return Err(invalid("stride", "must be positive".into()));
            }
            if w.stride.is_some() && !convention.is_rectangular() {
                return Err(invalid(
                    "stride",
                    format!(
                        "only the rectangular conventions (autoshape, predict) use it, not {:?}",
                        convention.name()
                    ),
                ));
            }
            // ultralytics' `check_imgsz(imgsz, stride)` rounds a size up to a stride multiple;
            // refaug asks for one instead of silently using another size.
            if convention == Convention::Predict
                && (!input_w.is_multiple_of(stride) || !input_h.is_multiple_of(stride))
            {
                return Err(invalid(
                    "input_size",
                    format!(
                        "[{input_w}, {input_h}]: the predict convention needs multiples of the stride {stride}"
                    ),
                ));
            }
            let cfg = YoloConfig {
                convention,
                letterbox: Letterbox {
                    width: input_w,
                    height: input_h,
                    shape: convention.letterbox_shape(),
                    stride,
                    pad: w.letterbox_pad.unwrap_or(114),
                },
                nms: NmsParams {
                    conf_threshold: score_threshold,
                    iou_threshold: iou,
                    max_det: w.max_det.unwrap_or(max_det_default),
                    max_nms: YOLO_MAX_NMS,
                    max_wh: YOLO_MAX_WH,
                },
                round_boxes: w.round_boxes.unwrap_or(convention.rounds_boxes()),
            };
            if family == Family::Yolov5 {
                FamilyConfig::Yolov5(cfg)
            } else {
                FamilyConfig::Ultralytics(cfg)
            }
        }
        Family::Detr => {
            let shortest_edge = w.shortest_edge.unwrap_or(800);
            let longest_edge = w.longest_edge.unwrap_or(1333);
            if shortest_edge == 0 || longest_edge < shortest_edge {
                return Err(invalid(
                    "longest_edge",
                    format!(
                        "shortest_edge {shortest_edge}, longest_edge {longest_edge}: expected 0 < shortest <= longest"
                    ),
                ));
            }
            let std = w.std.unwrap_or(IMAGENET_STD);
            if std.iter().any(|s| s.is_nan() || *s <= 0.0) {
                return Err(invalid(
                    "std",
                    format!("{std:?}: every value must be positive"),
                ));
            }
            FamilyConfig::Detr {
                preprocess: DetrPreprocess {
                    processor: w.processor.unwrap_or_default(),
                    shortest_edge,
                    longest_edge,
                    mean: w.mean.unwrap_or(IMAGENET_MEAN),
                    std,
                },
                max_det: w.max_det,
            }
        }
        Family::Torchvision => FamilyConfig::Torchvision {
            max_det: w.max_det.unwrap_or(100),
        },
    };

    Ok(DetectorSpec {
        name: w.name,
        spec_path: path.to_path_buf(),
        model_path,
        model_sha256,
        trained_on: w.trained_on,
        sees_eval_images: w.sees_eval_images,
        classes,
        score_threshold,
        config,
        clip_boxes,
        description: w.description,
        export: w.export,
    })
}

impl DetectorSpec {
    /// The label of class id `id`: its name, or `class_<id>` for an id outside the names (a model
    /// with more outputs than names is refused at load, so only negative ids can get there).
    pub fn label(&self, id: i32) -> String {
        self.classes
            .name(id)
            .map_or_else(|| format!("class_{id}"), str::to_string)
    }

    /// Everything about the detector that decides its boxes, as JSON: recorded in every shard's
    /// metadata, in each variant's manifest.json and in the output's settings (a change under an
    /// existing output is refused). `model_sha256` is the hash of the file actually loaded.
    pub fn describe(&self, model_sha256: &str) -> serde_json::Value {
        let family = serde_json::to_value(self.family()).expect("family serialises");
        let model_file = self
            .model_path
            .file_name()
            .map(|f| f.to_string_lossy().into_owned());
        let processing = match &self.config {
            FamilyConfig::Yolov5(c) | FamilyConfig::Ultralytics(c) => serde_json::json!({
                "convention": c.convention.name(),
                "input_size": [c.letterbox.width, c.letterbox.height],
                "letterbox_pad": c.letterbox.pad,
                "stride": c.convention.is_rectangular().then_some(c.letterbox.stride),
                "nms_iou": c.nms.iou_threshold,
                "max_det": c.nms.max_det,
                "max_nms": c.nms.max_nms,
                "max_wh": c.nms.max_wh,
                "round_boxes": c.round_boxes,
            }),
            FamilyConfig::Detr {
                preprocess,
                max_det,
            } => serde_json::json!({
                "processor": preprocess.processor,
                "shortest_edge": preprocess.shortest_edge,
                "longest_edge": preprocess.longest_edge,
                "mean": preprocess.mean,
                "std": preprocess.std,
                "max_det": max_det,
            }),
            FamilyConfig::Torchvision { max_det } => serde_json::json!({ "max_det": max_det }),
        };
        serde_json::json!({
            "name": self.name,
            "family": family,
            "model_file": model_file,
            "model_sha256": model_sha256,
            "score_threshold": self.score_threshold,
            "classes": self.classes.label(),
            "trained_on": self.trained_on,
            "sees_eval_images": self.sees_eval_images,
            "clip_boxes": self.clip_boxes,
            "processing": processing,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MINIMAL: &str = r#"
name = "y"
family = "ultralytics"
model = "m.onnx"
model_sha256 = "unknown"
trained_on = "COCO train2017"
sees_eval_images = true
classes = "coco80"
"#;

    fn parse(text: &str) -> Result<DetectorSpec, SpecError> {
        DetectorSpec::from_toml_str(text, Path::new("/specs/y.toml"))
    }

    #[test]
    fn coco_tables_agree() {
        for (i, id) in COCO80_TO_COCO91.iter().enumerate() {
            assert_eq!(COCO91_NAMES[*id as usize], COCO80_NAMES[i]);
        }
        assert_eq!(COCO91_NAMES.iter().filter(|n| **n == "N/A").count(), 10);
    }

    #[test]
    fn defaults_per_family() {
        let s = parse(MINIMAL).unwrap();
        assert_eq!(s.model_path, Path::new("/specs/m.onnx"));
        assert_eq!(
            lexical_join(Path::new("detectors"), Path::new("../../shared/m.onnx")),
            Path::new("../shared/m.onnx")
        );
        assert_eq!(
            lexical_join(Path::new("/a/b"), Path::new("./../c/m.onnx")),
            Path::new("/a/c/m.onnx")
        );
        assert_eq!(s.score_threshold, 0.1);
        let FamilyConfig::Ultralytics(c) = s.config else {
            panic!("{:?}", s.config)
        };
        assert_eq!(
            (c.letterbox.width, c.letterbox.height, c.letterbox.pad),
            (640, 640, 114)
        );
        assert_eq!(c.convention, Convention::Fixed);
        assert_eq!(c.letterbox.shape, LetterboxShape::Fixed);
        assert!(s.clip_boxes);
        assert_eq!((c.nms.iou_threshold, c.nms.max_det), (0.7, 300));
        assert_eq!((c.nms.max_nms, c.nms.max_wh), (30000, 7680.0));
        assert!(!c.round_boxes);

        let s = parse(&MINIMAL.replace("ultralytics", "yolov5")).unwrap();
        let FamilyConfig::Yolov5(c) = s.config else {
            panic!()
        };
        assert_eq!((c.nms.iou_threshold, c.nms.max_det), (0.45, 1000));
        assert!(c.round_boxes);

        let s = parse(
            &MINIMAL
                .replace("ultralytics", "detr")
                .replace("coco80", "coco91"),
        )
        .unwrap();
        let FamilyConfig::Detr {
            preprocess,
            max_det,
        } = s.config
        else {
            panic!()
        };
        assert_eq!(preprocess.processor, Processor::Torchvision);
        assert_eq!(
            (preprocess.shortest_edge, preprocess.longest_edge),
            (800, 1333)
        );
        assert_eq!(
            (preprocess.mean, preprocess.std),
            (IMAGENET_MEAN, IMAGENET_STD)
        );
        assert_eq!(max_det, None);

        let s = parse(&MINIMAL.replace("ultralytics", "torchvision")).unwrap();
        assert_eq!(s.config, FamilyConfig::Torchvision { max_det: 100 });
    }

    #[test]
    fn unknown_and_foreign_keys_are_refused() {
        let e = parse(&format!("{MINIMAL}\nconfidence = 0.2\n")).unwrap_err();
        let msg = format!("{e}: {}", std::error::Error::source(&e).unwrap());
        assert!(
            msg.contains("/specs/y.toml") && msg.contains("confidence"),
            "{msg}"
        );

        let e = parse(&format!("{MINIMAL}\nprocessor = \"pil\"\n")).unwrap_err();
        assert!(
            matches!(
                e,
                SpecError::NotForFamily {
                    key: "processor",
                    ..
                }
            ),
            "{e}"
        );
        let e = parse(&format!("{MINIMAL}\nround_boxes = false\n")).unwrap_err();
        assert!(e.to_string().contains("round_boxes"), "{e}");
    }

    #[test]
    fn bad_values_name_the_key() {
        for (from, to, key) in [
            ("\"unknown\"", "\"abc\"", "model_sha256"),
            ("\"coco80\"", "\"coco81\"", "classes"),
            ("\"coco80\"", "[]", "classes"),
            ("name = \"y\"", "name = \"a b\"", "name"),
        ] {
            let e = parse(&MINIMAL.replace(from, to)).unwrap_err();
            assert!(
                matches!(&e, SpecError::Invalid { key: k, .. } if *k == key),
                "{key}: {e}"
            );
        }
        let e = parse(&format!("{MINIMAL}\nscore_threshold = 1.5\n")).unwrap_err();
        assert!(e.to_string().contains("score_threshold"), "{e}");
        let e = parse(&format!("{MINIMAL}\nnms_iou = 0\n")).unwrap_err();
        assert!(e.to_string().contains("nms_iou"), "{e}");
    }

    #[test]
    fn conventions_belong_to_their_family() {
        let v5 = MINIMAL.replace("ultralytics", "yolov5");
        let s = parse(&format!("{v5}convention = \"autoshape\"\n")).unwrap();
        let FamilyConfig::Yolov5(c) = s.config else {
            panic!()
        };
        assert_eq!(c.letterbox.shape, LetterboxShape::AutoShape);
        assert_eq!(c.letterbox.stride, 32);
        assert!(!c.round_boxes, "AutoShape does not round");
        assert_eq!(s.describe("x")["processing"]["convention"], "autoshape");
        let s = parse(&format!("{MINIMAL}convention = \"predict\"\nstride = 64\n")).unwrap();
        let FamilyConfig::Ultralytics(c) = s.config else {
            panic!()
        };
        assert_eq!(
            (c.letterbox.shape, c.letterbox.stride),
            (LetterboxShape::MinRect, 64)
        );
        for (text, key) in [
            (
                format!("{MINIMAL}convention = \"autoshape\"\n"),
                "convention",
            ),
            (format!("{v5}convention = \"predict\"\n"), "convention"),
            (format!("{MINIMAL}stride = 16\n"), "stride"),
            (
                format!("{MINIMAL}convention = \"predict\"\ninput_size = [640, 630]\n"),
                "input_size",
            ),
        ] {
            let e = parse(&text).unwrap_err();
            assert!(
                matches!(&e, SpecError::Invalid { key: k, .. } if *k == key),
                "{key}: {e}"
            );
        }
    }

    #[test]
    fn clipping_follows_the_library_unless_the_spec_says() {
        let detr = MINIMAL
            .replace("ultralytics", "detr")
            .replace("coco80", "coco91");
        assert!(!parse(&detr).unwrap().clip_boxes, "DETR does not clip");
        assert!(
            parse(&format!("{detr}clip_boxes = true\n"))
                .unwrap()
                .clip_boxes
        );
        assert!(parse(MINIMAL).unwrap().clip_boxes);
        assert!(
            !parse(&format!("{MINIMAL}clip_boxes = false\n"))
                .unwrap()
                .clip_boxes
        );
        let tv = MINIMAL.replace("ultralytics", "torchvision");
        assert!(parse(&tv).unwrap().clip_boxes);
        let e = parse(&format!("{tv}clip_boxes = false\n")).unwrap_err();
        assert!(
            matches!(
                e,
                SpecError::NotForFamily {
                    key: "clip_boxes",
                    ..
                }
            ),
            "{e}"
        );
        assert_eq!(parse(&detr).unwrap().describe("x")["clip_boxes"], false);
    }

    #[test]
    fn explicit_class_list_and_pinned_hash() {
        let h = "AB".repeat(32);
        let s = parse(
            &MINIMAL
                .replace("\"coco80\"", "[\"cat\", \"dog\"]")
                .replace("\"unknown\"", &format!("\"{h}\"")),
        )
        .unwrap();
        assert_eq!(s.classes.len(), 2);
        assert_eq!(s.classes.name(1), Some("dog"));
        assert_eq!(s.classes.name(2), None);
        assert_eq!(s.model_sha256, ModelHash::Pinned("ab".repeat(32)));
    }
}
