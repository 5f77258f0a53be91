//! One detector at work: a validated spec, its ONNX Runtime session, and the family's pre- and
//! post-processing, run over images in batches.
//!
//! [`Detector::new`] checks the model file's sha256, opens the session and checks that the
//! model's inputs and outputs have the family's names, ranks, dtypes and layouts (and as many
//! classes as the spec names), so that a wrong model fails at start-up, not after an hour.
//! [`Detector::detect`] returns one list per image, in the images' order, never depending on how
//! images were grouped into model calls:
//!
//! * YOLO families and DETR: only inputs of equal size share a call (bucketed by size, never
//!   padded), up to `max_batch` images when the model's batch axis is dynamic. With a fixed
//!   letterbox every input has the spec's size; the rectangular conventions (AutoShape,
//!   `predict`) and DETR's resize give each image its own size, and a padded batch would change
//!   the results (the libraries call these models one image at a time);
//! * torchvision: the graph takes one `[3, H, W]` image per call.
//!
//! Boxes are clipped to the image where the spec says so (`clip_boxes`, by default as the library
//! does: YOLO and torchvision clip, Hugging Face DETR does not) and each image's boxes sorted by
//! descending score, ties kept in the library's order.

use std::collections::HashMap;
use std::fmt;
use std::path::PathBuf;

use image::RgbImage;
use ort::session::Session;
use ort::value::{TensorElementType, TensorRef, ValueType};

use crate::detect::runtime::{Declared, Dim, RuntimeError, RuntimeOptions, declared, runtime};
use crate::detect::spec::{DetectorSpec, FamilyConfig, SpecError, YoloConfig};
use crate::detect::{Detection, Family, detr, torchvision, ultralytics, yolov5};
use crate::preprocess::Chw;
use crate::preprocess::letterbox::LetterboxGeometry;
use crate::preprocess::tensor::stack_nchw;

/// Errors of building and running a detector. Every message names the detector and its spec.
#[derive(Debug, thiserror::Error)]
pub enum DetectError {
    #[error(transparent)]
    Spec(#[from] SpecError),
    #[error("detector {detector}")]
    Runtime {
        detector: Box<DetectorName>,
        #[source]
        source: RuntimeError,
    },
    #[error(
        "detector {detector}: model {} does not fit the {family:?} family: {detail}",
        model.display()
    )]
    ModelIo {
        detector: Box<DetectorName>,
        model: PathBuf,
        family: Family,
        detail: String,
    },
    #[error("detector {detector}: running the model on image(s) {images} failed")]
    Run {
        detector: Box<DetectorName>,
        images: String,
        #[source]
        source: ort::Error,
    },
    #[error(
        "detector {detector}: output `{output}` has shape {shape:?} for image(s) {images}; expected {expected}"
    )]
    OutputShape {
        detector: Box<DetectorName>,
        output: String,
        shape: Vec<i64>,
        images: String,
        expected: String,
    },
    #[error(
        "detector {detector}: output `{output}` holds NaN or infinite values for image {image}"
    )]
    NonFinite {
        detector: Box<DetectorName>,
        output: String,
        image: usize,
    },
    #[error(
        "detector {detector}: image {image} got class id {class_id}, outside the spec's {classes} classes"
    )]
    ClassId {
        detector: Box<DetectorName>,
        image: usize,
        class_id: i32,
        classes: usize,
    },
    #[error("detector {detector}: image {image} is empty ({width}x{height})")]
    EmptyImage {
        detector: Box<DetectorName>,
        image: usize,
        width: u32,
        height: u32,
    },
}

/// A detector's name and spec file, as errors print them: `` `yolov8x` (detectors/yolov8x.toml) ``.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DetectorName {
    pub name: String,
    pub spec: PathBuf,
}

impl fmt::Display for DetectorName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "`{}` ({})", self.name, self.spec.display())
    }
}

/// A model's batch axis (detectors' and encoders').
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BatchAxis {
    /// Symbolic (`batch`): any number of inputs per call.
    Dynamic,
    /// Fixed to 1, or no batch axis at all (torchvision): one input per call.
    One,
}

impl BatchAxis {
    /// The batch axis a model declares as its input's first dimension: symbolic or 1; `None`
    /// for a fixed batch other than 1, which refaug does not support.
    pub fn of(dim: &Dim) -> Option<BatchAxis> {
        match dim {
            Dim::Symbolic(_) => Some(BatchAxis::Dynamic),
            Dim::Fixed(1) => Some(BatchAxis::One),
            Dim::Fixed(_) => None,
        }
    }

    /// The most inputs per call, `max_batch` where the axis allows any.
    pub fn limit(self, max_batch: usize) -> usize {
        match self {
            BatchAxis::Dynamic => max_batch,
            BatchAxis::One => 1,
        }
    }
}

/// One raw output tensor of a model call.
#[derive(Debug, Clone, PartialEq)]
pub struct RawTensor {
    pub name: String,
    pub shape: Vec<i64>,
    pub data: RawData,
}

/// The element data of a [`RawTensor`].
#[derive(Debug, Clone, PartialEq)]
pub enum RawData {
    F32(Vec<f32>),
    I64(Vec<i64>),
}

/// What a validated model looks like, beyond the spec.
#[derive(Debug, Clone, PartialEq)]
struct ModelIo {
    input: String,
    batch: BatchAxis,
    /// DETR exports of older optimum versions take a `pixel_mask` (int64 `[batch, H, W]`); it is
    /// fed all ones, which is exactly the processor's mask for images that are never padded.
    pixel_mask: bool,
}

/// One image made into its model input by the family's pre-processing, with what
/// post-processing needs to map boxes back.
#[derive(Debug, Clone, PartialEq)]
pub struct Prepared {
    pub tensor: Chw,
    /// The YOLO families' letterbox.
    pub geometry: Option<LetterboxGeometry>,
    /// The original image's size.
    pub width: u32,
    pub height: u32,
}

/// The model input of `img` for `spec`'s family: pure, so it can run on any thread. The one home of
/// "which kernel, which numbers" per family:
/// * YOLO families: letterbox as the spec's convention shapes it (OpenCV INTER_LINEAR, grey pad),
///   `x / 255`;
/// * DETR: the chosen Hugging Face processor's resize and normalisation;
/// * torchvision: `to_tensor` (`x / 255`) of the original image; the graph does the rest.
pub fn prepare(spec: &DetectorSpec, img: &RgbImage) -> Prepared {
    let (width, height) = (img.width(), img.height());
    let (tensor, geometry) = match &spec.config {
        FamilyConfig::Yolov5(cfg) | FamilyConfig::Ultralytics(cfg) => {
            let (t, g) = cfg.letterbox.tensor(img);
            (t, Some(g))
        }
        FamilyConfig::Detr { preprocess, .. } => {
            (crate::preprocess::detr::preprocess(img, preprocess), None)
        }
        FamilyConfig::Torchvision { .. } => (Chw::from_rgb_unit(img), None),
    };
    Prepared {
        tensor,
        geometry,
        width,
        height,
    }
}

/// A detector ready to run: spec, session, validated model IO.
pub struct Detector {
    spec: DetectorSpec,
    id: Box<DetectorName>,
    session: Session,
    io: ModelIo,
    model_sha256: String,
    max_batch: usize,
    stack: Vec<f32>,
}

impl fmt::Debug for Detector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Detector")
            .field("spec", &self.spec)
            .field("io", &self.io)
            .field("model_sha256", &self.model_sha256)
            .field("max_batch", &self.max_batch)
            .finish_non_exhaustive()
    }
}

/// The input name each family's exporter writes.
fn input_name(family: Family) -> &'static str {
    match family {
        Family::Detr => "pixel_values",
        Family::Yolov5 | Family::Ultralytics | Family::Torchvision => "images",
    }
}

impl Detector {
    /// Check the model's sha256, open a session with `opts`, validate the model's IO.
    pub fn new(spec: DetectorSpec, opts: &RuntimeOptions) -> Result<Detector, DetectError> {
        let id = Box::new(DetectorName {
            name: spec.name.clone(),
            spec: spec.spec_path.clone(),
        });
        let model_sha256 = spec.verify_model_sha256()?;
        let rt = runtime().map_err(|source| DetectError::Runtime {
            detector: id.clone(),
            source,
        })?;
        let session =
            rt.session(&spec.model_path, opts)
                .map_err(|source| DetectError::Runtime {
                    detector: id.clone(),
                    source,
                })?;
        let io = validate_io(&spec, &session).map_err(|detail| DetectError::ModelIo {
            detector: id.clone(),
            model: spec.model_path.clone(),
            family: spec.family(),
            detail,
        })?;
        Ok(Detector {
            spec,
            id,
            session,
            io,
            model_sha256,
            max_batch: opts.max_batch.max(1),
            stack: Vec::new(),
        })
    }

    /// The spec this detector was built from.
    pub fn spec(&self) -> &DetectorSpec {
        &self.spec
    }

    /// The sha256 of the model file that was loaded (checked against the spec when pinned).
    pub fn model_sha256(&self) -> &str {
        &self.model_sha256
    }

    /// The model's batch axis, as read from its input shape.
    pub fn batch_axis(&self) -> BatchAxis {
        self.io.batch
    }

    /// The most images per model call.
    pub fn batch_limit(&self) -> usize {
        self.io.batch.limit(self.max_batch)
    }

    /// Run the model on a ready input tensor (`shape`, C order) and return every output as is.
    /// For tests and parity checks (feed a reference input, compare raw outputs).
    pub fn run_raw(
        &mut self,
        shape: &[usize],
        data: &[f32],
    ) -> Result<Vec<RawTensor>, DetectError> {
        let id = self.id.clone();
        let run_err = |source| run_error(&id, "raw input", source);
        let outputs = run_model(
            &mut self.session,
            &self.io,
            shape.to_vec(),
            data,
            &id,
            "raw input",
        )?;
        let mut raw = Vec::new();
        for (name, value) in outputs.iter() {
            let (shape, data) = match value.dtype() {
                ValueType::Tensor {
                    ty: TensorElementType::Int64,
                    ..
                } => {
                    let (s, d) = value.try_extract_tensor::<i64>().map_err(run_err)?;
                    (s.to_vec(), RawData::I64(d.to_vec()))
                }
                _ => {
                    let (s, d) = value.try_extract_tensor::<f32>().map_err(run_err)?;
                    (s.to_vec(), RawData::F32(d.to_vec()))
                }
            };
            raw.push(RawTensor {
                name: name.to_string(),
                shape,
                data,
            });
        }
        Ok(raw)
    }

    /// Detect objects in `images`: one list per image, in order, boxes in original-image pixels
    /// (clipped to the image when the spec says so), sorted by descending score.
    pub fn detect(&mut self, images: &[&RgbImage]) -> Result<Vec<Vec<Detection>>, DetectError> {
        for (i, img) in images.iter().enumerate() {
            if img.width() == 0 || img.height() == 0 {
                return Err(DetectError::EmptyImage {
                    detector: self.id.clone(),
                    image: i,
                    width: img.width(),
                    height: img.height(),
                });
            }
        }
        let prepared: Vec<Prepared> = images.iter().map(|img| prepare(&self.spec, img)).collect();
        let refs: Vec<&Prepared> = prepared.iter().collect();
        self.detect_prepared(&refs)
    }

    /// [`detect`](Self::detect) on inputs already made by [`prepare`] (the pipeline prepares them
    /// on its decode threads, so that a detector thread only runs the model and post-processing).
    pub fn detect_prepared(
        &mut self,
        inputs: &[&Prepared],
    ) -> Result<Vec<Vec<Detection>>, DetectError> {
        let mut out = vec![Vec::new(); inputs.len()];
        let limit = self.batch_limit();
        match self.spec.config {
            FamilyConfig::Yolov5(cfg) | FamilyConfig::Ultralytics(cfg) => {
                for bucket in &same_size_buckets(inputs) {
                    for chunk in bucket.chunks(limit) {
                        self.run_yolo(&cfg, inputs, chunk, &mut out)?;
                    }
                }
            }
            FamilyConfig::Detr { .. } => {
                for bucket in &same_size_buckets(inputs) {
                    for chunk in bucket.chunks(limit) {
                        self.run_detr(inputs, chunk, &mut out)?;
                    }
                }
            }
            FamilyConfig::Torchvision { .. } => {
                for i in 0..inputs.len() {
                    self.run_torchvision(inputs, i, &mut out)?;
                }
            }
        }
        let max_det = match self.spec.config {
            FamilyConfig::Detr { max_det, .. } => max_det,
            FamilyConfig::Torchvision { max_det } => Some(max_det),
            // NMS already kept at most max_det.
            FamilyConfig::Yolov5(_) | FamilyConfig::Ultralytics(_) => None,
        };
        for (i, dets) in out.iter_mut().enumerate() {
            self.finish(i, inputs[i], dets, max_det)?;
        }
        Ok(out)
    }

    /// Clip to the image (when the spec says so), check class ids, sort by descending score
    /// (stable), cap at `max_det`.
    fn finish(
        &self,
        image: usize,
        input: &Prepared,
        dets: &mut Vec<Detection>,
        max_det: Option<usize>,
    ) -> Result<(), DetectError> {
        let (w, h) = (input.width as f32, input.height as f32);
        for d in dets.iter_mut() {
            if self.spec.clip_boxes {
                d.bbox.xmin = d.bbox.xmin.clamp(0.0, w);
                d.bbox.xmax = d.bbox.xmax.clamp(0.0, w);
                d.bbox.ymin = d.bbox.ymin.clamp(0.0, h);
                d.bbox.ymax = d.bbox.ymax.clamp(0.0, h);
            }
            if self.spec.classes.name(d.class_id).is_none() {
                return Err(DetectError::ClassId {
                    detector: self.id.clone(),
                    image,
                    class_id: d.class_id,
                    classes: self.spec.classes.len(),
                });
            }
        }
        // `sort_by` is stable: equal scores keep the family's own order.
        dets.sort_by(|a, b| b.score.total_cmp(&a.score));
        if let Some(m) = max_det {
            dets.truncate(m);
        }
        Ok(())
    }

    fn run_yolo(
        &mut self,
        cfg: &YoloConfig,
        inputs: &[&Prepared],
        chunk: &[usize],
        out: &mut [Vec<Detection>],
    ) -> Result<(), DetectError> {
        let tensors: Vec<&Chw> = chunk.iter().map(|&i| &inputs[i].tensor).collect();
        let geoms: Vec<LetterboxGeometry> = chunk
            .iter()
            .map(|&i| {
                inputs[i]
                    .geometry
                    .unwrap_or_else(|| cfg.letterbox.geometry(inputs[i].width, inputs[i].height))
            })
            .collect();
        let clip = self.spec.clip_boxes;
        let family = self.spec.family();
        let classes = self.spec.classes.len();
        let n = chunk.len();
        let id = self.id.clone();
        let label = image_label(chunk);
        let (shape, data) = stack_nchw(&mut self.stack, &tensors);
        let outputs = run_model(&mut self.session, &self.io, shape, data, &id, &label)?;
        let (oshape, pred) = extract_f32(&outputs, "output0", &id, &label)?;
        let per_image = match family {
            // [n, anchors, 5 + classes]
            Family::Yolov5 => {
                check_shape(
                    &oshape,
                    &[Some(n), None, Some(5 + classes)],
                    "output0",
                    &id,
                    &label,
                )?;
                oshape[1] as usize * (5 + classes)
            }
            // [n, 4 + classes, anchors]
            _ => {
                check_shape(
                    &oshape,
                    &[Some(n), Some(4 + classes), None],
                    "output0",
                    &id,
                    &label,
                )?;
                oshape[2] as usize * (4 + classes)
            }
        };
        for (k, &i) in chunk.iter().enumerate() {
            let slice = &pred[k * per_image..(k + 1) * per_image];
            check_finite(slice, "output0", i, &id)?;
            out[i] = match family {
                Family::Yolov5 => {
                    yolov5::postprocess(slice, classes, &cfg.nms, &geoms[k], cfg.round_boxes, clip)
                }
                _ => ultralytics::postprocess(
                    slice,
                    classes,
                    oshape[2] as usize,
                    &cfg.nms,
                    &geoms[k],
                    clip,
                ),
            };
        }
        Ok(())
    }

    fn run_detr(
        &mut self,
        inputs: &[&Prepared],
        chunk: &[usize],
        out: &mut [Vec<Detection>],
    ) -> Result<(), DetectError> {
        let tensors: Vec<&Chw> = chunk.iter().map(|&i| &inputs[i].tensor).collect();
        let slots = self.spec.classes.len() + 1;
        let threshold = self.spec.score_threshold;
        let n = chunk.len();
        let id = self.id.clone();
        let label = image_label(chunk);
        let (shape, data) = stack_nchw(&mut self.stack, &tensors);
        let outputs = run_model(&mut self.session, &self.io, shape, data, &id, &label)?;
        let (lshape, logits) = extract_f32(&outputs, "logits", &id, &label)?;
        check_shape(
            &lshape,
            &[Some(n), None, Some(slots)],
            "logits",
            &id,
            &label,
        )?;
        let queries = lshape[1] as usize;
        let (bshape, boxes) = extract_f32(&outputs, "pred_boxes", &id, &label)?;
        check_shape(
            &bshape,
            &[Some(n), Some(queries), Some(4)],
            "pred_boxes",
            &id,
            &label,
        )?;
        for (k, &i) in chunk.iter().enumerate() {
            let l = &logits[k * queries * slots..(k + 1) * queries * slots];
            let b = &boxes[k * queries * 4..(k + 1) * queries * 4];
            check_finite(l, "logits", i, &id)?;
            check_finite(b, "pred_boxes", i, &id)?;
            out[i] = detr::postprocess(
                l,
                b,
                queries,
                slots,
                threshold,
                inputs[i].width,
                inputs[i].height,
            );
        }
        Ok(())
    }

    fn run_torchvision(
        &mut self,
        inputs: &[&Prepared],
        i: usize,
        out: &mut [Vec<Detection>],
    ) -> Result<(), DetectError> {
        let chw = &inputs[i].tensor;
        let id = self.id.clone();
        let label = i.to_string();
        let shape = vec![3, chw.height, chw.width];
        let outputs = run_model(&mut self.session, &self.io, shape, &chw.data, &id, &label)?;
        let (bshape, boxes) = extract_f32(&outputs, "boxes", &id, &label)?;
        check_shape(&bshape, &[None, Some(4)], "boxes", &id, &label)?;
        let count = bshape[0] as usize;
        let (sshape, scores) = extract_f32(&outputs, "scores", &id, &label)?;
        check_shape(&sshape, &[Some(count)], "scores", &id, &label)?;
        let labels_value = outputs
            .get("labels")
            .ok_or_else(|| missing("labels", &id, &label))?;
        let (lshape, labels) =
            labels_value
                .try_extract_tensor::<i64>()
                .map_err(|source| DetectError::Run {
                    detector: id.clone(),
                    images: label.clone(),
                    source,
                })?;
        check_shape(lshape, &[Some(count)], "labels", &id, &label)?;
        check_finite(boxes, "boxes", i, &id)?;
        check_finite(scores, "scores", i, &id)?;
        out[i] = torchvision::postprocess(boxes, labels, scores, self.spec.score_threshold);
        Ok(())
    }
}

/// The indices of `inputs` grouped by input size (height, width), groups in order of first
/// appearance, indices ascending: the model calls that need no padding.
fn same_size_buckets(inputs: &[&Prepared]) -> Vec<Vec<usize>> {
    let mut buckets: Vec<Vec<usize>> = Vec::new();
    let mut by_size: HashMap<(usize, usize), usize> = HashMap::new();
    for (i, p) in inputs.iter().enumerate() {
        let size = (p.tensor.height, p.tensor.width);
        let b = *by_size.entry(size).or_insert_with(|| {
            buckets.push(Vec::new());
            buckets.len() - 1
        });
        buckets[b].push(i);
    }
    buckets
}

/// "3" or "0..4" (indices into the `images` of one `detect` call).
fn image_label(chunk: &[usize]) -> String {
    match chunk {
        [one] => one.to_string(),
        _ => format!("{:?}", chunk),
    }
}

fn run_error(id: &DetectorName, images: &str, source: ort::Error) -> DetectError {
    DetectError::Run {
        detector: Box::new(id.clone()),
        images: images.to_string(),
        source,
    }
}

/// One model call on the input tensor `shape`/`data` (plus an all-ones `pixel_mask` where the
/// model takes one).
fn run_model<'s>(
    session: &'s mut Session,
    io: &ModelIo,
    shape: Vec<usize>,
    data: &[f32],
    id: &DetectorName,
    images: &str,
) -> Result<ort::session::SessionOutputs<'s>, DetectError> {
    let err = |source| run_error(id, images, source);
    let mask_shape = (io.pixel_mask && shape.len() == 4).then(|| [shape[0], shape[2], shape[3]]);
    let tensor = TensorRef::from_array_view((shape, data)).map_err(err)?;
    match mask_shape {
        Some(ms) => {
            let ones = vec![1i64; ms.iter().product()];
            let mask = ort::value::Tensor::from_array((ms.to_vec(), ones)).map_err(err)?;
            session.run(ort::inputs![
                io.input.as_str() => tensor,
                "pixel_mask" => mask,
            ])
        }
        None => session.run(ort::inputs![io.input.as_str() => tensor]),
    }
    .map_err(err)
}

fn missing(output: &str, id: &DetectorName, images: &str) -> DetectError {
    DetectError::OutputShape {
        detector: Box::new(id.clone()),
        output: output.to_string(),
        shape: Vec::new(),
        images: images.to_string(),
        expected: "an output of that name (it is missing)".into(),
    }
}

fn extract_f32<'a>(
    outputs: &'a ort::session::SessionOutputs<'_>,
    name: &str,
    id: &DetectorName,
    images: &str,
) -> Result<(Vec<i64>, &'a [f32]), DetectError> {
    let value = outputs.get(name).ok_or_else(|| missing(name, id, images))?;
    let (shape, data) = value
        .try_extract_tensor::<f32>()
        .map_err(|source| run_error(id, images, source))?;
    Ok((shape.to_vec(), data))
}

/// `shape` must have `want.len()` dims, each equal to the given size where one is given.
fn check_shape(
    shape: &[i64],
    want: &[Option<usize>],
    output: &str,
    id: &DetectorName,
    images: &str,
) -> Result<(), DetectError> {
    let ok = shape.len() == want.len()
        && shape
            .iter()
            .zip(want)
            .all(|(s, w)| *s >= 0 && w.is_none_or(|w| *s as usize == w));
    if ok {
        return Ok(());
    }
    let expected = format!(
        "[{}]",
        want.iter()
            .map(|w| w.map_or("_".to_string(), |w| w.to_string()))
            .collect::<Vec<_>>()
            .join(", ")
    );
    Err(DetectError::OutputShape {
        detector: Box::new(id.clone()),
        output: output.to_string(),
        shape: shape.to_vec(),
        images: images.to_string(),
        expected,
    })
}

fn check_finite(
    data: &[f32],
    output: &str,
    image: usize,
    id: &DetectorName,
) -> Result<(), DetectError> {
    if data.iter().all(|v| v.is_finite()) {
        Ok(())
    } else {
        Err(DetectError::NonFinite {
            detector: Box::new(id.clone()),
            output: output.to_string(),
            image,
        })
    }
}

/// Check the model's declared inputs and outputs against the family and the spec.
fn validate_io(spec: &DetectorSpec, session: &Session) -> Result<ModelIo, String> {
    let family = spec.family();
    let want_input = input_name(family);
    let inputs = session.inputs();
    let input_list = || {
        inputs
            .iter()
            .map(|i| format!("`{}`", i.name()))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let (input, pixel_mask) = match inputs {
        [input] => (input, false),
        [input, mask] if family == Family::Detr && mask.name() == "pixel_mask" => {
            let m = declared(mask.name(), mask.dtype())?;
            if m.ty != TensorElementType::Int64 || m.dims.len() != 3 {
                return Err(format!(
                    "input `pixel_mask` is {}; expected Int64 [batch, height, width]",
                    m.show()
                ));
            }
            (input, true)
        }
        _ => {
            let optional = if family == Family::Detr {
                " (and optionally `pixel_mask`)"
            } else {
                ""
            };
            return Err(format!(
                "expected one input `{want_input}`{optional}, found {} ({})",
                inputs.len(),
                input_list()
            ));
        }
    };
    if input.name() != want_input {
        return Err(format!(
            "input is named `{}`; the {family:?} family's exporter names it `{want_input}`",
            input.name()
        ));
    }
    let decl = declared(input.name(), input.dtype())?;
    if decl.ty != TensorElementType::Float32 {
        return Err(format!(
            "input `{want_input}` is {}; expected Float32",
            decl.show()
        ));
    }
    let rank = if family == Family::Torchvision { 3 } else { 4 };
    let layout = if rank == 3 {
        "[3, height, width]"
    } else {
        "[batch, 3, height, width]"
    };
    if decl.dims.len() != rank {
        return Err(format!(
            "input `{want_input}` is {} (rank {}); expected rank {rank}, {layout}",
            decl.show(),
            decl.dims.len()
        ));
    }
    if !decl.fits(rank - 3, 3) {
        return Err(format!(
            "input `{want_input}` is {}; expected {layout}",
            decl.show()
        ));
    }
    let batch = if rank == 3 {
        BatchAxis::One
    } else {
        BatchAxis::of(&decl.dims[0]).ok_or_else(|| {
            format!(
                "input `{want_input}` is {}: a fixed batch other than 1 is not supported; \
                 export with a dynamic batch axis or batch 1",
                decl.show()
            )
        })?
    };
    if let FamilyConfig::Yolov5(cfg) | FamilyConfig::Ultralytics(cfg) = &spec.config {
        let (w, h) = (cfg.letterbox.width, cfg.letterbox.height);
        if cfg.convention.is_rectangular() {
            // Each image gets its own stride rectangle: height and width must be symbolic (a
            // static export makes ultralytics' predictor fall back to its fixed size, and
            // AutoShape's input would not fit).
            let symbolic = |i: usize| matches!(decl.dims[i], Dim::Symbolic(_));
            if !(symbolic(2) && symbolic(3)) {
                return Err(format!(
                    "input `{want_input}` is {}: the {:?} convention gives every image its own \
                     input size, so height and width must be dynamic (export with dynamic axes)",
                    decl.show(),
                    cfg.convention.name()
                ));
            }
        } else if !(decl.fits(2, h as usize) && decl.fits(3, w as usize)) {
            return Err(format!(
                "input `{want_input}` is {}, but the spec's input_size is [{w}, {h}] (width, height)",
                decl.show(),
            ));
        }
    }

    let outputs: HashMap<&str, &ValueType> = session
        .outputs()
        .iter()
        .map(|o| (o.name(), o.dtype()))
        .collect();
    let names = || {
        session
            .outputs()
            .iter()
            .map(|o| format!("`{}`", o.name()))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let output = |name: &str, ty: TensorElementType, rank: usize| -> Result<Declared, String> {
        let dtype = outputs
            .get(name)
            .ok_or_else(|| format!("no output `{name}` (outputs: {})", names()))?;
        let d = declared(name, dtype)?;
        if d.ty != ty || d.dims.len() != rank {
            return Err(format!(
                "output `{name}` is {}; expected {ty:?} of rank {rank}",
                d.show()
            ));
        }
        Ok(d)
    };
    let classes = spec.classes.len();
    let class_note = format!(
        "the spec names {classes} classes ({})",
        spec.classes.label()
    );
    match family {
        Family::Yolov5 => {
            let d = output("output0", TensorElementType::Float32, 3)?;
            let width = 5 + classes;
            let ok = match (&d.dims[1], &d.dims[2]) {
                (_, Dim::Fixed(n)) => *n == width as i64,
                // [batch, 84, anchors] (the ultralytics layout) has a fixed dim 1, dynamic dim 2
                (Dim::Fixed(_), Dim::Symbolic(_)) => false,
                // both symbolic: checked on every run
                (Dim::Symbolic(_), Dim::Symbolic(_)) => true,
            };
            if !ok {
                return Err(format!(
                    "output `output0` is {}; expected [batch, anchors, 5 + classes = {width}] \
                     ({class_note})",
                    d.show()
                ));
            }
        }
        Family::Ultralytics => {
            let d = output("output0", TensorElementType::Float32, 3)?;
            let width = 4 + classes;
            if d.dims[1] != Dim::Fixed(width as i64) {
                return Err(format!(
                    "output `output0` is {}; expected [batch, 4 + classes = {width}, anchors] \
                     ({class_note})",
                    d.show()
                ));
            }
        }
        Family::Detr => {
            let l = output("logits", TensorElementType::Float32, 3)?;
            if !l.fits(2, classes + 1) {
                return Err(format!(
                    "output `logits` is {}; expected [batch, queries, classes + 1 = {}] ({class_note} \
                     plus \"no object\")",
                    l.show(),
                    classes + 1
                ));
            }
            let b = output("pred_boxes", TensorElementType::Float32, 3)?;
            let queries_agree = match (&l.dims[1], &b.dims[1]) {
                (Dim::Fixed(q), Dim::Fixed(r)) => q == r,
                _ => true,
            };
            if !b.fits(2, 4) || !queries_agree {
                return Err(format!(
                    "output `pred_boxes` is {}; expected [batch, queries, 4] with the queries of \
                     `logits` {}",
                    b.show(),
                    l.show()
                ));
            }
        }
        Family::Torchvision => {
            let b = output("boxes", TensorElementType::Float32, 2)?;
            if !b.fits(1, 4) {
                return Err(format!(
                    "output `boxes` is {}; expected [num_detections, 4]",
                    b.show()
                ));
            }
            output("labels", TensorElementType::Int64, 1)?;
            output("scores", TensorElementType::Float32, 1)?;
        }
    }
    Ok(ModelIo {
        input: want_input.to_string(),
        batch,
        pixel_mask,
    })
}
