//! Box CSVs in the reference format and their comparison, with exactly the rules of
//! `reference/tools/compare_boxes.py` (so `refaug parity` needs no Python):
//!
//! * per image (`file_name`), every (reference box, candidate box) pair with IoU ≥ 0.99,
//!   |Δscore| ≤ 1e-3 and — when both files have a `class` column — the same class is a candidate
//!   pair; pairs are taken greedily by decreasing IoU, then smaller |Δscore|, then reference row,
//!   then candidate row; each box is used at most once;
//! * a zero-area box (width or height ≤ 0) has no IoU: a pair with one counts as IoU 1 when all
//!   four corners agree within 0.01 px, else 0; with `--thin-px T` (`thin_px`) the same for a pair
//!   where a box is narrower or lower than T px (unrounded thin boxes, whose IoU reacts to the last
//!   printed digit: `compare_boxes.py --thin-px 1`);
//! * match rate = matched / max(reference boxes, candidate boxes), 1 when both are empty.
//!
//! The CSV format is the reference's: a header naming at least `file_name, xmin, ymin, xmax, ymax,
//! confidence` (any order, `class` optional, other columns ignored), then one row per box.
//! Numbers are read as `f64`, as Python's `float()` reads them, so both tools compute the same.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use crate::detect::Detection;

/// The columns a box CSV must have.
pub const REQUIRED_COLUMNS: [&str; 6] = ["file_name", "xmin", "ymin", "xmax", "ymax", "confidence"];

/// The header `refaug parity` writes (the reference's).
pub const CSV_HEADER: &str = "file_name,xmin,ymin,xmax,ymax,confidence,class";

/// Why a box CSV could not be read.
#[derive(Debug, thiserror::Error)]
pub enum CsvError {
    /// The file could not be read (the I/O error names it).
    #[error(transparent)]
    Io(#[from] std::io::Error),
    /// The header lacks a required column.
    #[error("{}: missing column(s) {missing:?}; header is {header:?}", path.display())]
    MissingColumns {
        path: PathBuf,
        missing: Vec<String>,
        header: Vec<String>,
    },
    /// A row is malformed (too few fields, a number that does not parse, an open quote).
    #[error("{}:{line}: {message}", path.display())]
    Row {
        path: PathBuf,
        line: usize,
        message: String,
    },
}

/// One CSV row.
#[derive(Debug, Clone, PartialEq)]
pub struct CsvBox {
    pub xmin: f64,
    pub ymin: f64,
    pub xmax: f64,
    pub ymax: f64,
    pub score: f64,
    /// The class as `compare_boxes.py` normalises it (`int(float(cls))`); `None` when the file has
    /// no `class` column or the cell is empty.
    pub class: Option<i64>,
}

impl CsvBox {
    /// Width or height ≤ 0 (`compare_boxes.py`: "zero-area box").
    pub fn is_zero_area(&self) -> bool {
        (self.xmax - self.xmin) <= 0.0 || (self.ymax - self.ymin) <= 0.0
    }
}

/// A box CSV: rows grouped by image, each image's rows in file order.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct BoxTable {
    /// The header has a `class` column.
    pub has_class: bool,
    /// `file_name` → rows. Images without boxes have no rows, so they are absent.
    pub images: BTreeMap<String, Vec<CsvBox>>,
}

impl BoxTable {
    /// Number of boxes.
    pub fn len(&self) -> usize {
        self.images.values().map(Vec::len).sum()
    }

    /// No boxes at all.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Boxes of one image (empty when the image has none).
    pub fn boxes(&self, file_name: &str) -> &[CsvBox] {
        self.images.get(file_name).map_or(&[], Vec::as_slice)
    }

    /// Read a box CSV file.
    pub fn read(path: &Path) -> Result<BoxTable, CsvError> {
        let text = fs_err::read_to_string(path)?;
        BoxTable::parse(&text, path)
    }

    /// Parse box CSV text; `path` only names the source in errors.
    pub fn parse(text: &str, path: &Path) -> Result<BoxTable, CsvError> {
        let row_err = |line: usize, message: String| CsvError::Row {
            path: path.to_path_buf(),
            line,
            message,
        };
        let mut lines = text.lines().enumerate();
        let header: Vec<String> = match lines.next() {
            Some((_, h)) => split_csv_line(h)
                .map_err(|m| row_err(1, m))?
                .into_iter()
                .map(|c| c.trim().to_string())
                .collect(),
            None => Vec::new(),
        };
        let col = |name: &str| header.iter().position(|c| c == name);
        let missing: Vec<String> = REQUIRED_COLUMNS
            .iter()
            .filter(|c| col(c).is_none())
            .map(|c| c.to_string())
            .collect();
        if !missing.is_empty() {
            return Err(CsvError::MissingColumns {
                path: path.to_path_buf(),
                missing,
                header,
            });
        }
        let idx: Vec<usize> = REQUIRED_COLUMNS.iter().filter_map(|c| col(c)).collect();
        let class_col = col("class");
        let mut table = BoxTable {
            has_class: class_col.is_some(),
            images: BTreeMap::new(),
        };
        for (i, line) in lines {
            let line_no = i + 1;
            // csv.DictReader skips blank lines.
            if line.is_empty() {
                continue;
            }
            let fields = split_csv_line(line).map_err(|m| row_err(line_no, m))?;
            let field = |c: usize| fields.get(c).map(String::as_str);
            let num = |c: usize, name: &str| -> Result<f64, CsvError> {
                let v = field(c).ok_or_else(|| row_err(line_no, format!("no `{name}` field")))?;
                v.trim()
                    .parse::<f64>()
                    .map_err(|_| row_err(line_no, format!("`{name}` is not a number: {v:?}")))
            };
            let class = match class_col.and_then(field).map(str::trim) {
                None | Some("") => None,
                Some(v) => Some(
                    v.parse::<f64>()
                        .map_err(|_| row_err(line_no, format!("`class` is not a number: {v:?}")))?
                        .trunc() as i64,
                ),
            };
            let file_name = field(idx[0])
                .ok_or_else(|| row_err(line_no, "no `file_name` field".into()))?
                .to_string();
            let b = CsvBox {
                xmin: num(idx[1], "xmin")?,
                ymin: num(idx[2], "ymin")?,
                xmax: num(idx[3], "xmax")?,
                ymax: num(idx[4], "ymax")?,
                score: num(idx[5], "confidence")?,
                class,
            };
            table.images.entry(file_name).or_default().push(b);
        }
        Ok(table)
    }

    /// Every box clipped to its image, `sizes[file_name] = (width, height)`: what refaug's output
    /// contract does to the library's boxes (the Hugging Face DETR post-processing does not clip).
    /// Images without a known size are kept as they are. Also returns how many boxes changed.
    pub fn clipped(&self, sizes: &HashMap<String, (u32, u32)>) -> (BoxTable, usize) {
        let mut changed = 0;
        let mut out = self.clone();
        for (file_name, boxes) in out.images.iter_mut() {
            let Some(&(w, h)) = sizes.get(file_name) else {
                continue;
            };
            let (w, h) = (f64::from(w), f64::from(h));
            for b in boxes.iter_mut() {
                let before = (b.xmin, b.ymin, b.xmax, b.ymax);
                b.xmin = b.xmin.clamp(0.0, w);
                b.xmax = b.xmax.clamp(0.0, w);
                b.ymin = b.ymin.clamp(0.0, h);
                b.ymax = b.ymax.clamp(0.0, h);
                if before != (b.xmin, b.ymin, b.xmax, b.ymax) {
                    changed += 1;
                }
            }
        }
        (out, changed)
    }
}

/// Split one CSV line into fields (RFC 4180 quoting, as Python's `csv` module writes it; fields
/// never span lines in box CSVs).
fn split_csv_line(line: &str) -> Result<Vec<String>, String> {
    let mut fields = Vec::new();
    let mut cur = String::new();
    let mut chars = line.chars().peekable();
    let mut quoted = false;
    while let Some(c) = chars.next() {
        match (quoted, c) {
            (true, '"') if chars.peek() == Some(&'"') => {
                cur.push('"');
                chars.next();
            }
            (true, '"') => quoted = false,
            (false, '"') if cur.is_empty() => quoted = true,
            (false, ',') => fields.push(std::mem::take(&mut cur)),
            (_, c) => cur.push(c),
        }
    }
    if quoted {
        return Err("unterminated quoted field".into());
    }
    fields.push(cur);
    Ok(fields)
}

/// A CSV field: quoted only when it must be (Python's `csv.QUOTE_MINIMAL`).
fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

/// `v` without a negative zero (a clipped `-0.0` prints as `-0.0000`; Python's never does here).
fn no_neg_zero(v: f32) -> f64 {
    f64::from(v) + 0.0
}

/// A box CSV in the reference format: header, then per image in the given order its detections in
/// the given order, corners `%.4f`, score `%.6f`, class id as an integer; lines end in `\r\n`
/// as Python's `csv.writer` ends them.
pub fn format_box_csv<'a>(images: impl IntoIterator<Item = (&'a str, &'a [Detection])>) -> String {
    let mut s = String::from(CSV_HEADER);
    s.push_str("\r\n");
    for (file_name, dets) in images {
        let name = csv_field(file_name);
        for d in dets {
            s.push_str(&format!(
                "{name},{:.4},{:.4},{:.4},{:.4},{:.6},{}\r\n",
                no_neg_zero(d.bbox.xmin),
                no_neg_zero(d.bbox.ymin),
                no_neg_zero(d.bbox.xmax),
                no_neg_zero(d.bbox.ymax),
                no_neg_zero(d.score),
                d.class_id
            ));
        }
    }
    s
}

/// The matching thresholds (`compare_boxes.py`'s options and defaults).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MatchCriteria {
    /// `--iou`: minimum IoU of a pair (0.99).
    pub iou_min: f64,
    /// `--score-tol`: maximum |score difference| (1e-3).
    pub score_tol: f64,
    /// `--degenerate-tol`: zero-area boxes match when every corner is within this many px (0.01).
    pub degenerate_tol: f64,
    /// `--thin-px`: boxes narrower or lower than this many px are matched by corners too (0 = off,
    /// the script's default).
    pub thin_px: f64,
    /// `--ignore-class`: do not require equal classes.
    pub ignore_class: bool,
}

impl Default for MatchCriteria {
    fn default() -> Self {
        MatchCriteria {
            iou_min: 0.99,
            score_tol: 1e-3,
            degenerate_tol: 0.01,
            thin_px: 0.0,
            ignore_class: false,
        }
    }
}

/// IoU as `compare_boxes.py` computes it; for a zero-area box, or a box thinner than `thin_px`
/// (when positive), 1 or 0 by corner distance.
pub fn iou(a: &CsvBox, b: &CsvBox, degenerate_tol: f64, thin_px: f64) -> f64 {
    let area_a = (a.xmax - a.xmin).max(0.0) * (a.ymax - a.ymin).max(0.0);
    let area_b = (b.xmax - b.xmin).max(0.0) * (b.ymax - b.ymin).max(0.0);
    let thinnest = (a.xmax - a.xmin)
        .min(a.ymax - a.ymin)
        .min(b.xmax - b.xmin)
        .min(b.ymax - b.ymin);
    let thin = thin_px > 0.0 && thinnest < thin_px;
    if area_a <= 0.0 || area_b <= 0.0 || thin {
        let d = [
            (a.xmin - b.xmin).abs(),
            (a.ymin - b.ymin).abs(),
            (a.xmax - b.xmax).abs(),
            (a.ymax - b.ymax).abs(),
        ];
        return if d.iter().all(|&v| v <= degenerate_tol) {
            1.0
        } else {
            0.0
        };
    }
    let iw = a.xmax.min(b.xmax) - a.xmin.max(b.xmin);
    let ih = a.ymax.min(b.ymax) - a.ymin.max(b.ymin);
    let inter = if iw > 0.0 && ih > 0.0 { iw * ih } else { 0.0 };
    inter / (area_a + area_b - inter)
}

/// What the greedy matching of one image found.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MatchStats {
    /// Matched pairs.
    pub matched: usize,
    /// The lowest IoU among the matched pairs (`None` without any).
    pub min_iou: Option<f64>,
    /// The largest |score difference| among the matched pairs (`None` without any).
    pub max_score_diff: Option<f64>,
}

/// Keep the lower (`min`) or higher value of two optional values.
fn fold(a: Option<f64>, b: Option<f64>, min: bool) -> Option<f64> {
    match (a, b) {
        (Some(x), Some(y)) => Some(if min { x.min(y) } else { x.max(y) }),
        (x, None) | (None, x) => x,
    }
}

/// Greedy one-to-one matching of one image's boxes.
pub fn match_image(
    reference: &[CsvBox],
    candidate: &[CsvBox],
    crit: &MatchCriteria,
    use_class: bool,
) -> MatchStats {
    // (iou, |Δscore|, i, j), taken by decreasing IoU, then increasing |Δscore|, i, j — the order
    // of Python's `sorted((-iou, ds, i, j))`.
    let mut pairs: Vec<(f64, f64, usize, usize)> = Vec::new();
    for (i, a) in reference.iter().enumerate() {
        for (j, b) in candidate.iter().enumerate() {
            let ds = (a.score - b.score).abs();
            if ds > crit.score_tol || (use_class && a.class != b.class) {
                continue;
            }
            let v = iou(a, b, crit.degenerate_tol, crit.thin_px);
            if v >= crit.iou_min {
                pairs.push((v, ds, i, j));
            }
        }
    }
    pairs.sort_by(|x, y| {
        y.0.total_cmp(&x.0)
            .then(x.1.total_cmp(&y.1))
            .then(x.2.cmp(&y.2))
            .then(x.3.cmp(&y.3))
    });
    let mut used_r = vec![false; reference.len()];
    let mut used_c = vec![false; candidate.len()];
    let mut stats = MatchStats {
        matched: 0,
        min_iou: None,
        max_score_diff: None,
    };
    for (v, ds, i, j) in pairs {
        if used_r[i] || used_c[j] {
            continue;
        }
        used_r[i] = true;
        used_c[j] = true;
        stats.matched += 1;
        stats.min_iou = fold(stats.min_iou, Some(v), true);
        stats.max_score_diff = fold(stats.max_score_diff, Some(ds), false);
    }
    stats
}

/// One image of a comparison.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageMatch {
    pub file_name: String,
    pub reference: usize,
    pub candidate: usize,
    pub matched: usize,
}

impl ImageMatch {
    /// Boxes of either side left without a partner.
    pub fn unmatched(&self) -> usize {
        self.reference + self.candidate - 2 * self.matched
    }
}

/// A whole comparison of two box tables.
#[derive(Debug, Clone, PartialEq)]
pub struct BoxComparison {
    /// Every image of either table, by `file_name`.
    pub images: Vec<ImageMatch>,
    pub reference_boxes: usize,
    pub candidate_boxes: usize,
    pub matched: usize,
    /// Classes were required to be equal (both tables have them, not ignored).
    pub class_compared: bool,
    /// The lowest IoU of a matched pair: how close to the 0.99 threshold the matches are.
    pub min_iou: Option<f64>,
    /// The largest |score difference| of a matched pair.
    pub max_score_diff: Option<f64>,
}

impl BoxComparison {
    /// matched / max(reference, candidate); 1 when both are empty.
    pub fn rate(&self) -> f64 {
        let denom = self.reference_boxes.max(self.candidate_boxes);
        if denom == 0 {
            1.0
        } else {
            self.matched as f64 / denom as f64
        }
    }

    /// max(reference, candidate): the rate's denominator.
    pub fn total(&self) -> usize {
        self.reference_boxes.max(self.candidate_boxes)
    }

    /// Images with unmatched boxes, most unmatched first (then by name), at most `n`.
    pub fn worst(&self, n: usize) -> Vec<&ImageMatch> {
        let mut w: Vec<&ImageMatch> = self.images.iter().filter(|m| m.unmatched() > 0).collect();
        w.sort_by(|a, b| {
            b.unmatched()
                .cmp(&a.unmatched())
                .then_with(|| a.file_name.cmp(&b.file_name))
        });
        w.truncate(n);
        w
    }
}

/// Compare a candidate table with a reference table, image by image (`compare_boxes.py compare`).
pub fn compare(reference: &BoxTable, candidate: &BoxTable, crit: &MatchCriteria) -> BoxComparison {
    let use_class = reference.has_class && candidate.has_class && !crit.ignore_class;
    let mut names: Vec<&String> = reference.images.keys().collect();
    names.extend(candidate.images.keys());
    names.sort();
    names.dedup();
    let mut out = BoxComparison {
        images: Vec::with_capacity(names.len()),
        reference_boxes: 0,
        candidate_boxes: 0,
        matched: 0,
        class_compared: use_class,
        min_iou: None,
        max_score_diff: None,
    };
    for name in names {
        let (r, c) = (reference.boxes(name), candidate.boxes(name));
        let stats = match_image(r, c, crit, use_class);
        let matched = stats.matched;
        out.min_iou = fold(out.min_iou, stats.min_iou, true);
        out.max_score_diff = fold(out.max_score_diff, stats.max_score_diff, false);
        out.reference_boxes += r.len();
        out.candidate_boxes += c.len();
        out.matched += matched;
        out.images.push(ImageMatch {
            file_name: name.clone(),
            reference: r.len(),
            candidate: c.len(),
            matched,
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::boxes::BoxXyxy;

    fn table(text: &str) -> BoxTable {
        BoxTable::parse(text, Path::new("t.csv")).unwrap()
    }

    /// Hand-made reference and candidate; every expected count is worked out by hand below.
    const REFERENCE: &str = "\
file_name,xmin,ymin,xmax,ymax,confidence,class
a.jpg,10.0000,10.0000,110.0000,110.0000,0.900000,1
a.jpg,200.0000,50.0000,300.0000,150.0000,0.800000,2
a.jpg,5.0000,5.0000,5.0000,40.0000,0.700000,3
a.jpg,400.0000,400.0000,500.0000,500.0000,0.600000,4
a.jpg,0.0000,0.0000,50.0000,50.0000,0.500000,5
b.jpg,1.0000,1.0000,2.0000,2.0000,0.300000,0
";

    /// a.jpg: row 1 = ref 1 moved by 0.1 px (IoU 0.9980 ≥ 0.99, |Δs| = 5e-4): match;
    /// row 2 = ref 2 with class 7: no match; row 3 = the zero-area ref 3 within 0.005 px: match;
    /// row 4 = ref 4 with score 0.6011 (|Δs| = 1.1e-3 > 1e-3): no match; row 5 = ref 5 moved by
    /// 1 px (IoU 49·49/(2·2500 − 2401) = 0.9238 < 0.99): no match.
    /// c.jpg is only in the candidate; b.jpg only in the reference.
    const CANDIDATE: &str = "\
xmin,file_name,ymin,xmax,ymax,confidence,class,extra
10.1000,a.jpg,10.0000,110.1000,110.0000,0.900500,1,x
200.0000,a.jpg,50.0000,300.0000,150.0000,0.800000,7,x
5.0050,a.jpg,5.0000,5.0050,40.0050,0.700000,3.0,x
400.0000,a.jpg,400.0000,500.0000,500.0000,0.601100,4,x
1.0000,a.jpg,1.0000,51.0000,51.0000,0.500000,5,x
0.0000,c.jpg,0.0000,9.0000,9.0000,0.200000,0,x
";

    #[test]
    fn hand_made_tables_match_as_worked_out() {
        let r = compare(
            &table(REFERENCE),
            &table(CANDIDATE),
            &MatchCriteria::default(),
        );
        assert!(r.class_compared);
        assert_eq!((r.reference_boxes, r.candidate_boxes, r.matched), (6, 6, 2));
        assert_eq!(r.total(), 6);
        // The matched pairs: row 1 (IoU 99.9·100 / (2·10⁴ − 9990), |Δs| 5e-4) and the zero-area
        // row 3 (IoU 1 by corners, |Δs| 0).
        let min_iou = r.min_iou.unwrap();
        assert!((min_iou - 9990.0 / 10010.0).abs() < 1e-9, "{min_iou}");
        assert!((r.max_score_diff.unwrap() - 5e-4).abs() < 1e-9);
        assert!((r.rate() - 2.0 / 6.0).abs() < 1e-12);
        let by_name: Vec<(&str, usize, usize, usize)> = r
            .images
            .iter()
            .map(|m| (m.file_name.as_str(), m.reference, m.candidate, m.matched))
            .collect();
        assert_eq!(
            by_name,
            [("a.jpg", 5, 5, 2), ("b.jpg", 1, 0, 0), ("c.jpg", 0, 1, 0)]
        );
        let worst: Vec<&str> = r.worst(2).iter().map(|m| m.file_name.as_str()).collect();
        assert_eq!(worst, ["a.jpg", "b.jpg"]);
    }

    #[test]
    fn ignoring_the_class_matches_the_relabelled_box() {
        let crit = MatchCriteria {
            ignore_class: true,
            ..MatchCriteria::default()
        };
        let r = compare(&table(REFERENCE), &table(CANDIDATE), &crit);
        assert!(!r.class_compared);
        assert_eq!(r.matched, 3);
    }

    #[test]
    fn a_file_without_class_column_compares_without_classes() {
        let cand = "file_name,xmin,ymin,xmax,ymax,confidence\n\
                    a.jpg,200,50,300,150,0.8\n";
        let r = compare(&table(REFERENCE), &table(cand), &MatchCriteria::default());
        assert!(!r.class_compared);
        assert_eq!((r.matched, r.total()), (1, 6));
    }

    #[test]
    fn greedy_takes_the_best_iou_first_and_uses_each_box_once() {
        // A–X IoU 1, A–Y 100/100.5, B–X 99.5/100, B–Y |Δs| 1.4e-3 (no pair). Greedy takes A–X
        // first and leaves B alone: 1, as compare_boxes.py (the optimum, A–Y + B–X, would be 2).
        let reference = "file_name,xmin,ymin,xmax,ymax,confidence\n\
                         a,0,0,100,100,0.5\n\
                         a,0,0,100,99.5,0.5009\n";
        let cand = "file_name,xmin,ymin,xmax,ymax,confidence\n\
                    a,0,0,100,100,0.5005\n\
                    a,0,0,100,100.5,0.4995\n";
        let (r, c) = (table(reference), table(cand));
        let crit = MatchCriteria::default();
        let stats = match_image(r.boxes("a"), c.boxes("a"), &crit, false);
        assert_eq!(stats.matched, 1);
        assert_eq!(stats.min_iou, Some(1.0));
        let v = iou(&r.boxes("a")[0], &c.boxes("a")[1], 0.01, 0.0);
        assert!((v - 100.0 / 100.5).abs() < 1e-12, "{v}");
        // Each box once: the same candidate twice against one reference box is one match.
        let twice = table("file_name,xmin,ymin,xmax,ymax,confidence\na,0,0,100,100,0.5\n");
        assert_eq!(
            match_image(twice.boxes("a"), c.boxes("a"), &crit, false).matched,
            1
        );
    }

    /// `compare_boxes.py --thin-px 1`: a box under 1 px wide is matched by its corners (within
    /// 0.01 px) instead of its IoU. Worked out by hand: A (0.2 px wide) vs A' (right edge 0.005 px
    /// left): IoU 0.195 / 0.2 = 0.975 < 0.99, corners within 0.005 px; B (0.9 px wide, 100 high) vs
    /// B' (0.002 px wider, 0.02 px taller): IoU 90 / (0.902 · 100.02) = 0.9976, corners 0.02 px off.
    #[test]
    fn thin_boxes_match_by_corners_when_asked() {
        let reference = "file_name,xmin,ymin,xmax,ymax,confidence\n\
                         a,10,0,10.2,50,0.5\n\
                         b,10,0,10.9,100,0.5\n";
        let cand = "file_name,xmin,ymin,xmax,ymax,confidence\n\
                    a,10,0,10.195,50,0.5\n\
                    b,10,0,10.902,100.02,0.5\n";
        let (r, c) = (table(reference), table(cand));
        let by_iou = compare(&r, &c, &MatchCriteria::default());
        assert_eq!(
            by_iou.images.iter().map(|m| m.matched).collect::<Vec<_>>(),
            [0, 1]
        );
        let thin = MatchCriteria {
            thin_px: 1.0,
            ..MatchCriteria::default()
        };
        let by_corners = compare(&r, &c, &thin);
        assert_eq!(
            by_corners
                .images
                .iter()
                .map(|m| m.matched)
                .collect::<Vec<_>>(),
            [1, 0]
        );
    }

    #[test]
    fn empty_tables_match_completely() {
        let empty = table(CSV_HEADER);
        let r = compare(&empty, &empty, &MatchCriteria::default());
        assert_eq!((r.total(), r.rate()), (0, 1.0));
    }

    #[test]
    fn clipping_to_the_image_counts_the_boxes_it_changes() {
        let t = table(
            "file_name,xmin,ymin,xmax,ymax,confidence\n\
             a,-3.5,2,700,20,0.5\n\
             a,1,2,3,4,0.5\n\
             unknown,-1,-1,5,5,0.5\n",
        );
        let sizes = HashMap::from([("a".to_string(), (640, 480))]);
        let (c, changed) = t.clipped(&sizes);
        assert_eq!(changed, 1);
        assert_eq!((c.boxes("a")[0].xmin, c.boxes("a")[0].xmax), (0.0, 640.0));
        assert_eq!(c.boxes("a")[1], t.boxes("a")[1]);
        assert_eq!(c.boxes("unknown"), t.boxes("unknown"));
    }

    #[test]
    fn missing_columns_and_bad_numbers_name_the_file_and_line() {
        let e = BoxTable::parse("file_name,xmin\n", Path::new("r.csv")).unwrap_err();
        assert!(
            e.to_string()
                .starts_with(r#"r.csv: missing column(s) ["ymin", "xmax", "ymax", "confidence"]"#),
            "{e}"
        );
        let e = BoxTable::parse(
            "file_name,xmin,ymin,xmax,ymax,confidence\na,1,2,x,4,0.5\n",
            Path::new("r.csv"),
        )
        .unwrap_err();
        assert_eq!(e.to_string(), r#"r.csv:2: `xmax` is not a number: "x""#);
    }

    #[test]
    fn written_csv_reads_back_in_the_reference_format() {
        let d = |xmin: f32, score: f32, class_id: i32| Detection {
            bbox: BoxXyxy {
                xmin,
                ymin: 2.0,
                xmax: 30.123_456,
                ymax: 40.0,
            },
            score,
            class_id,
        };
        let a = [d(-0.0, 0.5, 3), d(1.5, 0.123_456_78, 12)];
        let text = format_box_csv([("a,b.jpg", &a[..]), ("empty.jpg", &[][..])]);
        assert_eq!(
            text,
            "file_name,xmin,ymin,xmax,ymax,confidence,class\r\n\
             \"a,b.jpg\",0.0000,2.0000,30.1235,40.0000,0.500000,3\r\n\
             \"a,b.jpg\",1.5000,2.0000,30.1235,40.0000,0.123457,12\r\n"
        );
        let t = table(&text);
        assert_eq!(t.len(), 2);
        assert_eq!(t.boxes("a,b.jpg")[1].class, Some(12));
    }
}
