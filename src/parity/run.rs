//! `refaug parity`: refaug's results against a reference folder made by the original libraries
//! (`reference/README.md`), stage by stage, so a difference is found at the first stage that
//! differs:
//!
//! 1. decoding — the decoded RGB's SHA-256 vs `rgb_sha256`;
//! 2. pre-processing — the model input's SHA-256 vs `input_sha256`, per detector;
//! 3. inference and post-processing — every detector (its spec, [`Detector`]) on every image:
//!    the box count per image vs `n_boxes`, then the boxes vs the reference CSV with the rules of
//!    `compare_boxes.py` ([`super::compare`]).
//!
//! Writes `<out>/<detector>.csv` and `<out>/fingerprints.jsonl` in the reference formats, so the
//! reference's own tools can compare them too.
//!
//! Boxes outside the image: refaug clips a box to its image when its spec says so (`clip_boxes`,
//! by default as the library does: the YOLO libraries and torchvision clip, Hugging Face DETR
//! does not). The boxes are compared with the reference treated the same way — clipped for a spec
//! that clips (a no-op for the libraries that clip themselves), as written otherwise — and, when
//! clipping changed reference boxes, with the reference as written too, for information.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use image::RgbImage;

use super::compare::{BoxComparison, BoxTable, CsvError, MatchCriteria, format_box_csv};
use super::{
    Fingerprint, InputRecipe, ParityError, StageReport, compare_input, compare_rgb,
    load_fingerprints, sha256_chw, sha256_rgb,
};
use crate::decode;
use crate::detect::detector::{Detector, prepare};
use crate::detect::runtime::RuntimeOptions;
use crate::detect::spec::{DetectorSpec, FamilyConfig, SpecError};
use crate::detect::{Detection, Family};
use crate::preprocess::detr::Processor;

/// What to compare, where, and how the detectors run.
#[derive(Debug, Clone)]
pub struct ParityArgs {
    /// The reference folder: `<reference>/<dataset>/images/` and `<reference>/<dataset>-results/`
    /// (`fingerprints.jsonl`, `<detector>.csv`).
    pub reference: PathBuf,
    /// The dataset's folder name, e.g. `public-24`.
    pub dataset: String,
    /// The folder of detector specs; a fingerprint's detector is the spec whose `name` equals it.
    pub detectors: PathBuf,
    /// Load every model from this folder (by the spec's model file name) instead of the spec's path.
    pub models: Option<PathBuf>,
    /// Where refaug's CSVs and fingerprints are written.
    pub out: PathBuf,
    /// Sessions' device, threads (one image per call, as the reference).
    pub runtime: RuntimeOptions,
    /// The box matching rules.
    pub criteria: MatchCriteria,
}

impl ParityArgs {
    /// `<reference>/<dataset>/images`.
    pub fn images_dir(&self) -> PathBuf {
        self.reference.join(&self.dataset).join("images")
    }

    /// `<reference>/<dataset>-results`.
    pub fn results_dir(&self) -> PathBuf {
        self.reference.join(format!("{}-results", self.dataset))
    }
}

/// Why the comparison could not run at all. Problems of one detector do not stop the others; they
/// are in its [`DetectorParity::problems`].
#[derive(Debug, thiserror::Error)]
pub enum ParityRunError {
    /// `fingerprints.jsonl` could not be read or parsed.
    #[error(transparent)]
    Fingerprints(#[from] ParityError),
    /// `fingerprints.jsonl` has no records.
    #[error("{}: no fingerprint records", path.display())]
    NoFingerprints { path: PathBuf },
    /// A spec in the detectors folder is invalid.
    #[error(transparent)]
    Spec(#[from] SpecError),
    /// Two specs have the same name.
    #[error(
        "two detector specs are named `{name}`: {} and {}",
        first.display(),
        second.display()
    )]
    DuplicateSpec {
        name: String,
        first: PathBuf,
        second: PathBuf,
    },
    /// Reading the detectors folder or writing an output failed (the error names the path).
    #[error(transparent)]
    Io(#[from] std::io::Error),
}

/// The box stage of one detector.
#[derive(Debug, Clone, PartialEq)]
pub struct BoxStage {
    /// refaug's boxes vs the reference treated as the spec treats boxes (clipped to the image
    /// when the spec clips, as written otherwise): the checked number.
    pub checked: BoxComparison,
    /// The spec clips boxes to the image.
    pub clipped: bool,
    /// Reference boxes that extend beyond their image.
    pub reference_outside: usize,
    /// refaug's boxes vs the reference as written, when clipping changed reference boxes
    /// (information only).
    pub raw: Option<BoxComparison>,
}

/// All stages of one detector.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct DetectorParity {
    /// The detector's name (the reference CSV's name without `.csv`).
    pub name: String,
    /// The spec file used (`None`: no spec has this name).
    pub spec: Option<PathBuf>,
    /// The model file used.
    pub model: Option<PathBuf>,
    /// Decoded RGB vs `rgb_sha256`.
    pub decode: StageReport,
    /// Model input vs `input_sha256`.
    pub input: StageReport,
    /// Box count per image vs `n_boxes`.
    pub counts: StageReport,
    /// The boxes vs the reference CSV; `None` when the detector or the reference CSV is missing.
    pub boxes: Option<BoxStage>,
    /// Images per second of [`Detector::detect`] (pre-processing, inference, post-processing; one
    /// image per call), when the detector ran.
    pub images_per_s: Option<f64>,
    /// Why a stage could not be run (no spec, model missing, a failed image, no reference CSV).
    pub problems: Vec<String>,
}

impl DetectorParity {
    /// Every stage ran and each rate is at least `min_rate` (the raw-reference comparison is
    /// information only).
    pub fn passed(&self, min_rate: f64) -> bool {
        let stage_ok = |r: &StageReport| r.skipped == 0 && stage_rate(r) >= min_rate;
        self.problems.is_empty()
            && stage_ok(&self.decode)
            && stage_ok(&self.input)
            && stage_ok(&self.counts)
            && self
                .boxes
                .as_ref()
                .is_some_and(|b| b.checked.rate() >= min_rate)
    }
}

/// matched / total; 1 when nothing was compared.
pub fn stage_rate(r: &StageReport) -> f64 {
    if r.total == 0 {
        1.0
    } else {
        r.matched as f64 / r.total as f64
    }
}

/// The outcome of `refaug parity`.
#[derive(Debug, Clone, PartialEq)]
pub struct ParityOutcome {
    /// The reference results folder compared with.
    pub results_dir: PathBuf,
    /// Where refaug's outputs were written.
    pub out: PathBuf,
    /// Per detector, in the order of the reference fingerprints.
    pub detectors: Vec<DetectorParity>,
    /// The intra-op threads of every session.
    pub threads: usize,
    /// The box matching rules used.
    pub criteria: MatchCriteria,
}

impl ParityOutcome {
    /// Every detector passed at `min_rate`.
    pub fn passed(&self, min_rate: f64) -> bool {
        self.detectors.iter().all(|d| d.passed(min_rate))
    }
}

/// Load every `*.toml` spec of `dir`, by name.
pub fn load_specs(dir: &Path) -> Result<HashMap<String, DetectorSpec>, ParityRunError> {
    let mut paths: Vec<PathBuf> = fs_err::read_dir(dir)?
        .map(|e| e.map(|e| e.path()))
        .collect::<Result<_, _>>()?;
    paths.retain(|p| p.extension().is_some_and(|e| e == "toml"));
    paths.sort();
    let mut specs: HashMap<String, DetectorSpec> = HashMap::new();
    for path in paths {
        let spec = DetectorSpec::from_file(&path)?;
        if let Some(first) = specs.get(&spec.name) {
            return Err(ParityRunError::DuplicateSpec {
                name: spec.name.clone(),
                first: first.spec_path.clone(),
                second: path,
            });
        }
        specs.insert(spec.name.clone(), spec);
    }
    Ok(specs)
}

/// The input name each family's exporter writes (as the fingerprints record it).
fn input_name(family: Family) -> &'static str {
    match family {
        Family::Detr => "pixel_values",
        Family::Yolov5 | Family::Ultralytics | Family::Torchvision => "images",
    }
}

/// The fingerprints' `processor`: the DETR processor, the YOLO wrapper convention (`autoshape`,
/// `predict`), `null` otherwise (the fixed YOLO letterbox, torchvision).
fn processor_name(spec: &DetectorSpec) -> Option<String> {
    match spec.config {
        FamilyConfig::Detr { preprocess, .. } => Some(
            match preprocess.processor {
                Processor::Torchvision => "torchvision",
                Processor::Pil => "pil",
            }
            .to_string(),
        ),
        FamilyConfig::Yolov5(c) | FamilyConfig::Ultralytics(c) if c.convention.is_rectangular() => {
            Some(c.convention.name().to_string())
        }
        _ => None,
    }
}

/// `json.dumps` layout (`", "` and `": "` separators), so refaug's fingerprints lines read like the
/// reference's.
struct PythonJson;

impl serde_json::ser::Formatter for PythonJson {
    fn begin_array_value<W: ?Sized + std::io::Write>(
        &mut self,
        w: &mut W,
        first: bool,
    ) -> std::io::Result<()> {
        if first { Ok(()) } else { w.write_all(b", ") }
    }

    fn begin_object_key<W: ?Sized + std::io::Write>(
        &mut self,
        w: &mut W,
        first: bool,
    ) -> std::io::Result<()> {
        if first { Ok(()) } else { w.write_all(b", ") }
    }

    fn begin_object_value<W: ?Sized + std::io::Write>(&mut self, w: &mut W) -> std::io::Result<()> {
        w.write_all(b": ")
    }
}

/// One fingerprint as a `json.dumps` line (with the newline).
pub fn fingerprint_line(fp: &Fingerprint) -> String {
    let mut buf = Vec::new();
    let mut ser = serde_json::Serializer::with_formatter(&mut buf, PythonJson);
    serde::Serialize::serialize(fp, &mut ser).expect("a fingerprint serialises");
    let mut s = String::from_utf8(buf).expect("serde_json writes UTF-8");
    s.push('\n');
    s
}

/// Run every stage for every detector of the reference fingerprints; write refaug's CSVs and
/// fingerprints to `args.out`.
pub fn run(args: &ParityArgs) -> Result<ParityOutcome, ParityRunError> {
    let results = args.results_dir();
    let fp_path = results.join("fingerprints.jsonl");
    let fingerprints = load_fingerprints(&fp_path)?;
    if fingerprints.is_empty() {
        return Err(ParityRunError::NoFingerprints { path: fp_path });
    }
    let specs = load_specs(&args.detectors)?;
    fs_err::create_dir_all(&args.out)?;

    // Every image once, in fingerprint order; and the reference's image sizes, for clipping.
    let images_dir = args.images_dir();
    let mut decoded: BTreeMap<&str, Result<RgbImage, String>> = BTreeMap::new();
    let mut sizes: HashMap<String, (u32, u32)> = HashMap::new();
    for fp in &fingerprints {
        if let [h, w, _] = fp.rgb_shape[..] {
            sizes.insert(fp.file_name.clone(), (w as u32, h as u32));
        }
        if !decoded.contains_key(fp.file_name.as_str()) {
            let img = decode::decode_file(&images_dir.join(&fp.file_name))
                .map_err(|e| crate::error_chain(&e));
            decoded.insert(fp.file_name.as_str(), img);
        }
    }

    let mut order: Vec<&str> = Vec::new();
    for fp in &fingerprints {
        if !order.contains(&fp.detector.as_str()) {
            order.push(fp.detector.as_str());
        }
    }
    let mut outcome = ParityOutcome {
        results_dir: results.clone(),
        out: args.out.clone(),
        detectors: Vec::new(),
        threads: args.runtime.intra_threads,
        criteria: args.criteria,
    };
    let mut lines = String::new();
    for name in order {
        let fps: Vec<&Fingerprint> = fingerprints.iter().filter(|f| f.detector == name).collect();
        let spec = specs.get(name).cloned().map(|mut s| {
            if let Some(dir) = &args.models
                && let Some(file) = s.model_path.file_name()
            {
                s.model_path = dir.join(file);
            }
            s
        });
        let (report, fp_lines) = run_detector(name, spec, &fps, &decoded, &sizes, args);
        lines.push_str(&fp_lines);
        outcome.detectors.push(report);
    }
    fs_err::write(args.out.join("fingerprints.jsonl"), lines)?;
    Ok(outcome)
}

/// All stages of one detector; returns its report and its fingerprint lines.
fn run_detector(
    name: &str,
    spec: Option<DetectorSpec>,
    fps: &[&Fingerprint],
    decoded: &BTreeMap<&str, Result<RgbImage, String>>,
    sizes: &HashMap<String, (u32, u32)>,
    args: &ParityArgs,
) -> (DetectorParity, String) {
    let mut r = DetectorParity {
        name: name.to_string(),
        spec: spec.as_ref().map(|s| s.spec_path.clone()),
        model: spec.as_ref().map(|s| s.model_path.clone()),
        ..DetectorParity::default()
    };
    if spec.is_none() {
        r.problems.push(format!(
            "no spec named `{name}` in {}",
            args.detectors.display()
        ));
    }
    // With a spec, the input checked is the one the detector is fed (`detector::prepare`, made
    // once per image and used for detection too); without one, the reference's recipe.
    let family = spec.as_ref().map(DetectorSpec::family);
    let recipe = fps.first().and_then(|fp| InputRecipe::for_fingerprint(fp));
    let mut detector = match spec {
        Some(spec) => match Detector::new(spec, &args.runtime) {
            Ok(d) => Some(d),
            Err(e) => {
                r.problems.push(crate::error_chain(&e));
                None
            }
        },
        None => None,
    };

    let clip = detector.as_ref().is_some_and(|d| d.spec().clip_boxes);
    let mut lines = String::new();
    let mut rows: Vec<(&str, Vec<Detection>)> = Vec::new();
    let mut busy = Duration::ZERO;
    let mut ran = 0usize;
    for fp in fps {
        let file_name = fp.file_name.as_str();
        let img = match &decoded[file_name] {
            Ok(img) => img,
            Err(e) => {
                r.decode.record(file_name, Err(e.clone()));
                r.input.skipped += 1;
                r.counts.skipped += 1;
                continue;
            }
        };
        r.decode.record(file_name, compare_rgb(img, fp));
        let prepared = detector.as_ref().map(|d| prepare(d.spec(), img));
        let made = match (&prepared, family, &recipe) {
            (Some(p), Some(f), _) => Some((p.tensor.clone(), f != Family::Torchvision)),
            (None, _, Some(recipe)) => Some((recipe.input(img), recipe.batched())),
            _ => None,
        };
        let mut input = None;
        match made {
            Some((t, batched)) => {
                r.input.record(file_name, compare_input(&t, batched, fp));
                let mut shape = vec![3, t.height, t.width];
                if batched {
                    shape.insert(0, 1);
                }
                input = Some((shape, sha256_chw(&t)));
            }
            None => r.input.skipped += 1,
        }
        let (Some(det), Some(prepared)) = (detector.as_mut(), prepared.as_ref()) else {
            r.counts.skipped += 1;
            continue;
        };
        let start = Instant::now();
        let result = det.detect_prepared(&[prepared]);
        busy += start.elapsed();
        let dets = match result {
            Ok(mut v) => v.remove(0),
            Err(e) => {
                r.counts.record(
                    file_name,
                    Err(format!("detection failed: {}", crate::error_chain(&e))),
                );
                r.problems
                    .push(format!("{file_name}: {}", crate::error_chain(&e)));
                continue;
            }
        };
        ran += 1;
        let n = dets.len();
        r.counts.record(
            file_name,
            if n == fp.n_boxes {
                Ok(())
            } else {
                Err(format!("refaug {n} boxes, reference {}", fp.n_boxes))
            },
        );
        if let Some((input_shape, input_sha256)) = input {
            let spec = det.spec();
            lines.push_str(&fingerprint_line(&Fingerprint {
                detector: name.to_string(),
                model: spec
                    .model_path
                    .file_name()
                    .map_or_else(String::new, |f| f.to_string_lossy().into_owned()),
                processor: processor_name(spec),
                file_name: file_name.to_string(),
                image_id: fp.image_id,
                rgb_shape: vec![img.height() as usize, img.width() as usize, 3],
                rgb_sha256: sha256_rgb(img),
                input_name: input_name(spec.family()).to_string(),
                input_shape,
                input_dtype: "float32".into(),
                input_sha256,
                n_boxes: n,
            }));
        }
        rows.push((file_name, dets));
    }
    if ran > 0 && !busy.is_zero() {
        r.images_per_s = Some(ran as f64 / busy.as_secs_f64());
    }
    if detector.is_some() {
        match compare_boxes(name, &rows, sizes, clip, args) {
            Ok(b) => r.boxes = Some(b),
            Err(e) => r.problems.push(e),
        }
    }
    (r, lines)
}

/// Write `<out>/<name>.csv`, read it back (so the numbers compared are the written ones, as
/// `compare_boxes.py` would see them) and compare it with the reference CSV, clipped to the
/// images when the spec `clip`s.
fn compare_boxes(
    name: &str,
    rows: &[(&str, Vec<Detection>)],
    sizes: &HashMap<String, (u32, u32)>,
    clip: bool,
    args: &ParityArgs,
) -> Result<BoxStage, String> {
    let ours = args.out.join(format!("{name}.csv"));
    let text = format_box_csv(rows.iter().map(|(f, d)| (*f, d.as_slice())));
    fs_err::write(&ours, &text).map_err(|e| crate::error_chain(&e))?;
    let candidate = BoxTable::parse(&text, &ours).map_err(|e| crate::error_chain(&e))?;
    let ref_path = args.results_dir().join(format!("{name}.csv"));
    let reference = BoxTable::read(&ref_path).map_err(|e: CsvError| crate::error_chain(&e))?;
    let (clipped_ref, outside) = reference.clipped(sizes);
    let compare = |r: &BoxTable| super::compare::compare(r, &candidate, &args.criteria);
    Ok(BoxStage {
        checked: compare(if clip { &clipped_ref } else { &reference }),
        clipped: clip,
        reference_outside: outside,
        raw: (clip && outside > 0).then(|| compare(&reference)),
    })
}

fn pct(rate: f64) -> String {
    format!("{:.2} %", 100.0 * rate)
}

impl fmt::Display for ParityOutcome {
    /// The table: per detector its stages (matched / total, rate), then what differs.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "reference {}; refaug's CSVs and fingerprints in {}",
            self.results_dir.display(),
            self.out.display()
        )?;
        let row =
            |f: &mut fmt::Formatter<'_>, stage: &str, m: usize, t: usize, rate: f64, tail: &str| {
                writeln!(f, "  {stage:<26} {m:>6} / {t:<6} {:>9}{tail}", pct(rate))
            };
        let mut input_misses = false;
        let mut clipped_any = false;
        let mut unclipped_any = false;
        for d in &self.detectors {
            writeln!(f)?;
            let speed = d.images_per_s.map_or_else(String::new, |s| {
                format!(", {s:.1} images/s ({} thread(s), batch 1)", self.threads)
            });
            let spec = d
                .spec
                .as_ref()
                .map_or_else(|| "no spec".to_string(), |p| p.display().to_string());
            writeln!(f, "{} ({spec}{speed})", d.name)?;
            if let Some(model) = &d.model {
                writeln!(f, "  model {}", model.display())?;
            }
            let stages = [
                ("decode (rgb_sha256)", &d.decode),
                ("input (input_sha256)", &d.input),
                ("n_boxes per image", &d.counts),
            ];
            for (label, s) in stages {
                let tail = if s.skipped > 0 {
                    format!("   ({} not compared)", s.skipped)
                } else {
                    String::new()
                };
                row(f, label, s.matched, s.total, stage_rate(s), &tail)?;
            }
            input_misses |= !d.input.misses.is_empty();
            if let Some(b) = &d.boxes {
                let c = &b.checked;
                let closeness = match (c.min_iou, c.max_score_diff) {
                    (Some(iou), Some(ds)) => {
                        format!("; matched: min IoU {iou:.6}, max |Δscore| {ds:.6}")
                    }
                    _ => String::new(),
                };
                let counts = format!(
                    "   (reference {}, refaug {}{closeness})",
                    c.reference_boxes, c.candidate_boxes
                );
                match (&b.raw, b.reference_outside) {
                    (None, 0) => row(f, "boxes", c.matched, c.total(), c.rate(), &counts)?,
                    (None, outside) => {
                        unclipped_any = true;
                        let note = format!(
                            "{counts}; unclipped: {outside} reference boxes extend past the image"
                        );
                        row(
                            f,
                            "boxes (unclipped)",
                            c.matched,
                            c.total(),
                            c.rate(),
                            &note,
                        )?;
                    }
                    (Some(r), outside) => {
                        clipped_any = true;
                        let note = format!("{counts}; {outside} reference boxes clipped");
                        row(
                            f,
                            "boxes vs clipped reference",
                            c.matched,
                            c.total(),
                            c.rate(),
                            &note,
                        )?;
                        row(
                            f,
                            "boxes vs raw reference",
                            r.matched,
                            r.total(),
                            r.rate(),
                            "   (information)",
                        )?;
                    }
                }
            } else {
                writeln!(f, "  {:<26} not compared", "boxes")?;
            }
            for p in &d.problems {
                writeln!(f, "  problem: {p}")?;
            }
            for (label, s) in stages {
                for m in s.misses.iter().take(5) {
                    writeln!(f, "  {label} differs: {}: {}", m.file_name, m.reason)?;
                }
                if s.misses.len() > 5 {
                    writeln!(f, "  {label}: {} more", s.misses.len() - 5)?;
                }
            }
            if let Some(b) = &d.boxes {
                for m in b.checked.worst(5) {
                    writeln!(
                        f,
                        "  boxes differ: {}: reference {}, refaug {}, matched {}",
                        m.file_name, m.reference, m.candidate, m.matched
                    )?;
                }
            }
        }
        let crit = &self.criteria;
        let thin = if crit.thin_px > 0.0 {
            format!(
                " and boxes thinner than {} px (compare_boxes.py --thin-px {}: unrounded thin \
                 boxes, e.g. AutoShape's, jitter in the last float digits between CPUs, which moves \
                 their IoU)",
                crit.thin_px, crit.thin_px
            )
        } else {
            String::new()
        };
        writeln!(f)?;
        writeln!(
            f,
            "boxes: one-to-one per image, IoU >= {}, |score difference| <= {}, {}; zero-area \
             boxes{thin} by corners within {} px; rate = matched / max(reference, refaug) (as \
             reference/tools/compare_boxes.py)",
            crit.iou_min,
            crit.score_tol,
            if crit.ignore_class {
                "class ignored"
            } else {
                "same class"
            },
            crit.degenerate_tol
        )?;
        if unclipped_any {
            writeln!(
                f,
                "unclipped: the spec keeps the library's boxes as they are (clip_boxes = false, the \
                 default for Hugging Face DETR, whose post_process_object_detection does not clip), \
                 so they are compared with the reference as written, boxes past the image included"
            )?;
        }
        if clipped_any {
            writeln!(
                f,
                "clipped reference: the spec clips boxes to the image (clip_boxes = true) where the \
                 original library does not, so the reference boxes are clipped to the image before \
                 comparing (the checked number); \"raw reference\" compares with the reference as \
                 written, for information"
            )?;
        }
        if input_misses {
            writeln!(
                f,
                "input: the reference keeps only each tensor's SHA-256, so how far a differing input \
                 is off (max |difference|) cannot be known from it; dump the reference tensors with \
                 reference_pipeline.py --dump-tensors to measure it"
            )?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Lines written by Python's `json.dumps` (`tools/make_pixel_goldens.py`) come back byte for
    /// byte from a parse and [`fingerprint_line`].
    #[test]
    fn fingerprint_lines_are_laid_out_as_json_dumps() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/data/pixels/parity_fingerprints.jsonl");
        let text = std::fs::read_to_string(&path).unwrap();
        let mut n = 0;
        for line in text.lines() {
            let fp: Fingerprint = serde_json::from_str(line).unwrap();
            assert_eq!(fingerprint_line(&fp), format!("{line}\n"));
            n += 1;
        }
        assert_eq!(n, 9);
    }

    /// The fingerprints' `processor` as the reference writes it: the DETR processor, the YOLO
    /// wrapper convention, null for the fixed letterbox and torchvision.
    #[test]
    fn processor_names_follow_the_reference() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("detectors");
        for (spec, want) in [
            ("shared-yolov5n-cal@autoshape.toml", Some("autoshape")),
            ("shared-yolov8n-cal@predict.toml", Some("predict")),
            ("shared-yolov8n-cal.toml", None),
            ("shared-detr-resnet18-cal@pil.toml", Some("pil")),
            ("fixture-torchvision.toml", None),
        ] {
            let s = DetectorSpec::from_file(&dir.join(spec)).unwrap();
            assert_eq!(processor_name(&s).as_deref(), want, "{spec}");
        }
    }

    #[test]
    fn a_detector_passes_only_when_every_stage_ran_and_reached_the_rate() {
        let stage = |matched, total, skipped| StageReport {
            matched,
            total,
            skipped,
            misses: Vec::new(),
        };
        let cmp = |matched, reference, candidate| BoxComparison {
            images: Vec::new(),
            reference_boxes: reference,
            candidate_boxes: candidate,
            matched,
            class_compared: true,
            min_iou: None,
            max_score_diff: None,
        };
        let ok = DetectorParity {
            name: "d".into(),
            decode: stage(2, 2, 0),
            input: stage(2, 2, 0),
            counts: stage(2, 2, 0),
            boxes: Some(BoxStage {
                checked: cmp(9, 10, 9),
                clipped: true,
                reference_outside: 8,
                raw: Some(cmp(1, 10, 9)),
            }),
            ..DetectorParity::default()
        };
        // 9 / max(10, 9): the raw comparison does not count.
        assert!(ok.passed(0.9));
        assert!(!ok.passed(1.0));
        let skipped = DetectorParity {
            input: stage(1, 1, 1),
            ..ok.clone()
        };
        assert!(!skipped.passed(0.5));
        let no_boxes = DetectorParity {
            boxes: None,
            ..ok.clone()
        };
        assert!(!no_boxes.passed(0.0));
        let problem = DetectorParity {
            problems: vec!["model missing".into()],
            ..ok
        };
        assert!(!problem.passed(0.0));
    }
}
