//! The page's data (`data.js`): the selected refs with their sentences and ground truth, each
//! variant's proposals, IoUs and verdicts, and the images. Written as a script that assigns
//! one JSON object to `window.REFAUG_GALLERY`, because a page opened from `file://` may run
//! scripts of its folder but may not `fetch()` a JSON file there.
//!
//! Boxes are the shards' float32 values, written in their shortest round-trip form (`serde_json`
//! writes `f32` that way), so the SVG overlay draws the stored numbers exactly; a non-finite
//! value becomes `null`, which the page does not draw. The proposals of one image in one variant
//! are the same for each of its refs, so they are stored once per image and variant.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::report::{ReportOptions, kept_for_training, usable_for_training};
use crate::write::row::Row;

use super::select::SortOrder;

/// Name of the global the data file assigns.
pub const DATA_GLOBAL: &str = "REFAUG_GALLERY";
/// Version of the data file's layout (the page checks it).
pub const DATA_FORMAT: u32 = 1;

/// The whole data file.
#[derive(Debug, Clone, Serialize)]
pub struct GalleryData {
    pub format: u32,
    pub title: String,
    pub dataset: DatasetInfo,
    pub variants: Vec<VariantInfo>,
    /// The research's training filter the verdicts use.
    pub filter: FilterInfo,
    pub selection: SelectionInfo,
    /// image_id (as a string: JSON keys) → the image.
    pub images: BTreeMap<String, ImageData>,
    /// The refs in the selection's order.
    pub refs: Vec<RefData>,
}

#[derive(Debug, Clone, Serialize)]
pub struct DatasetInfo {
    pub kind: String,
    pub split_by: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct VariantInfo {
    pub name: String,
    pub detector: String,
    pub family: String,
    pub sees_eval_images: bool,
}

#[derive(Debug, Clone, Serialize)]
pub struct FilterInfo {
    pub train_conf: f64,
    pub min_size: f64,
    pub min_proposals: usize,
    pub min_best_iou: f64,
}

impl From<&ReportOptions> for FilterInfo {
    fn from(o: &ReportOptions) -> Self {
        FilterInfo {
            train_conf: o.train_conf,
            min_size: o.min_size,
            min_proposals: o.min_proposals,
            min_best_iou: o.min_best_iou,
        }
    }
}

/// How the refs were chosen.
#[derive(Debug, Clone, Serialize)]
pub struct SelectionInfo {
    pub sort: SortOrder,
    pub seed: u32,
    /// `--n` (absent with `--refs`).
    pub n: Option<usize>,
    /// The refs were listed with `--refs`.
    pub listed: bool,
    /// Refs the output holds (in the chosen splits and variants).
    pub refs_in_output: usize,
}

/// One image: its thumbnail and each variant's proposals.
#[derive(Debug, Clone, Serialize)]
pub struct ImageData {
    pub file_name: String,
    pub width: i32,
    pub height: i32,
    /// Relative to the site's folder.
    pub thumbnail: String,
    /// Variant name → proposal sets; a ref's variant entry names its set by index (one set
    /// unless refs of the image disagree, which a refaug run never writes).
    pub proposals: BTreeMap<String, Vec<Vec<ProposalData>>>,
}

/// One proposal: `[xmin, ymin, xmax, ymax, score, class_id, label, kept]`, `kept` = the
/// training filter keeps the box (score and size).
#[derive(Debug, Clone, Serialize)]
pub struct ProposalData(
    pub f32,
    pub f32,
    pub f32,
    pub f32,
    pub f32,
    pub i32,
    pub String,
    pub bool,
);

impl ProposalData {
    /// Equal field by field, floats by their bits (so a NaN corner equals itself).
    fn same(&self, other: &ProposalData) -> bool {
        let floats = |p: &ProposalData| [p.0, p.1, p.2, p.3, p.4].map(f32::to_bits);
        floats(self) == floats(other) && self.5 == other.5 && self.6 == other.6 && self.7 == other.7
    }
}

/// One ref.
#[derive(Debug, Clone, Serialize)]
pub struct RefData {
    pub ref_id: i64,
    pub ann_id: i64,
    pub image_id: i64,
    pub split: String,
    pub category: String,
    /// `[xmin, ymin, xmax, ymax]`.
    pub gt: [f32; 4],
    /// The sentences as the annotators wrote them.
    pub sentences: Vec<String>,
    /// Variant name → its row's numbers (absent where the variant has no row for the ref).
    pub variants: BTreeMap<String, RefVariant>,
}

/// One ref in one variant.
#[derive(Debug, Clone, Serialize)]
pub struct RefVariant {
    /// Index into the image's proposal sets of this variant.
    pub set: usize,
    /// IoU of each proposal with the ground truth.
    pub ious: Vec<f32>,
    pub best_index: Option<i32>,
    pub best_iou: f32,
    /// The research's training filter keeps the ref.
    pub usable: bool,
}

impl GalleryData {
    /// Add `row` of variant `variant` (the ref must have been added with [`RefData::of`]).
    pub fn add_row(
        &mut self,
        variant: &str,
        row: &Row,
        reference: usize,
        thumbnail: String,
        options: &ReportOptions,
    ) {
        let proposals: Vec<ProposalData> = row
            .proposals
            .iter()
            .map(|p| {
                ProposalData(
                    p.bbox.xmin,
                    p.bbox.ymin,
                    p.bbox.xmax,
                    p.bbox.ymax,
                    p.score,
                    p.class_id,
                    p.label.clone(),
                    kept_for_training(p, options),
                )
            })
            .collect();
        let image = self
            .images
            .entry(row.image_id.to_string())
            .or_insert_with(|| ImageData {
                file_name: row.file_name.clone(),
                width: row.image_width,
                height: row.image_height,
                thumbnail,
                proposals: BTreeMap::new(),
            });
        let sets = image.proposals.entry(variant.to_string()).or_default();
        let same = |a: &[ProposalData], b: &[ProposalData]| {
            a.len() == b.len() && a.iter().zip(b).all(|(x, y)| x.same(y))
        };
        let set = match sets.iter().position(|s| same(s, &proposals)) {
            Some(i) => i,
            None => {
                sets.push(proposals);
                sets.len() - 1
            }
        };
        self.refs[reference].variants.insert(
            variant.to_string(),
            RefVariant {
                set,
                ious: row.proposal_iou.clone(),
                best_index: row.best_index,
                best_iou: row.best_iou,
                usable: usable_for_training(row, options),
            },
        );
    }

    /// The data file's text: `window.REFAUG_GALLERY = {…};`.
    pub fn script(&self) -> String {
        // `</` never appears inside a JSON string here in a way a browser would act on (the
        // file is a script of its own, not inline), but escape it anyway so the text could be
        // inlined into a <script> element safely.
        let json = serde_json::to_string(self)
            .expect("gallery data serialises")
            .replace("</", "<\\/");
        format!("window.{DATA_GLOBAL} = {json};\n")
    }
}

impl RefData {
    /// The ref's own columns, from any of its rows.
    pub fn of(row: &Row) -> RefData {
        let g = row.gt_box;
        RefData {
            ref_id: row.ref_id,
            ann_id: row.ann_id,
            image_id: row.image_id,
            split: row.split.clone(),
            category: row.category_name.clone(),
            gt: [g.xmin, g.ymin, g.xmax, g.ymax],
            sentences: row.sentences.iter().map(|s| s.raw.clone()).collect(),
            variants: BTreeMap::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::boxes::BoxXyxy;
    use crate::write::row::Proposal;

    #[test]
    fn boxes_keep_their_float32_digits_and_non_finite_values_become_null() {
        let proposal = |xmin: f32, score: f32| Proposal {
            bbox: BoxXyxy {
                xmin,
                ymin: -3.25,
                xmax: 700.75,
                ymax: 40.1,
            },
            score,
            class_id: 1,
            label: "person".to_string(),
        };
        let row = Row {
            ref_id: 7,
            ann_id: 70,
            image_id: 3,
            file_name: "a.jpg".to_string(),
            split: "val".to_string(),
            category_id: 1,
            category_name: "person".to_string(),
            image_width: 640,
            image_height: 480,
            sentences: Vec::new(),
            gt_box: BoxXyxy {
                xmin: 0.0,
                ymin: 0.0,
                xmax: 10.0,
                ymax: 10.0,
            },
            proposals: vec![proposal(-12.5, 0.9), proposal(f32::NAN, 0.2)],
            proposal_iou: vec![0.0, 0.0],
            best_index: Some(0),
            best_iou: 0.0,
        };
        let mut data = GalleryData {
            format: DATA_FORMAT,
            title: String::new(),
            dataset: DatasetInfo {
                kind: "refcocog".to_string(),
                split_by: "umd".to_string(),
            },
            variants: Vec::new(),
            filter: (&ReportOptions::default()).into(),
            selection: SelectionInfo {
                sort: SortOrder::Worst,
                seed: 0,
                n: Some(1),
                listed: false,
                refs_in_output: 1,
            },
            images: BTreeMap::new(),
            refs: vec![RefData::of(&row)],
        };
        data.add_row(
            "detr",
            &row,
            0,
            "thumbnails/3.jpg".to_string(),
            &ReportOptions::default(),
        );
        // A second ref of the image with the same proposals shares their set.
        data.refs.push(RefData::of(&row));
        data.add_row(
            "detr",
            &row,
            1,
            "thumbnails/3.jpg".to_string(),
            &ReportOptions::default(),
        );
        let script = data.script();
        assert!(script.starts_with("window.REFAUG_GALLERY = {"), "{script}");
        // f32 40.1 is written "40.1" (its shortest form), not 40.099998474121094; a box
        // reaching outside the image is kept as it is; NaN is null. The first box is 713.25 ×
        // 43.35 px and scores 0.9 > 0.25: kept; the second scores 0.2 (and its width is NaN):
        // dropped.
        assert!(
            script.contains(r#"[[[-12.5,-3.25,700.75,40.1,0.9,1,"person",true],[null,-3.25,700.75,40.1,0.2,1,"person",false]]]"#),
            "{script}"
        );
        assert_eq!(data.images["3"].proposals["detr"].len(), 1);
    }
}
