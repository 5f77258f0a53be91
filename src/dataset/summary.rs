//! Counts per split (images, refs, sentences, categories), the shape of the RefCOCOg counts table.

use std::collections::HashSet;

use super::Dataset;

/// The counts of one split, or of all selected splits together.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct SplitCounts {
    /// The split name, or `total`.
    pub split: String,
    /// Distinct images referenced by the split's refs.
    pub images: usize,
    pub refs: usize,
    pub sentences: usize,
    /// Distinct category ids of the split's refs.
    pub categories: usize,
}

/// Counts per selected split, plus a total row.
///
/// The total counts distinct images and categories, so it is not the sum of the rows where one
/// image is in several splits (RefCOCOg's Google split divides objects, not images).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Summary {
    pub splits: Vec<SplitCounts>,
    pub total: SplitCounts,
}

impl Summary {
    /// Counts the refs of `dataset` for each of `splits`, in that order (a split without refs
    /// gets a row of zeros).
    pub fn of(dataset: &Dataset, splits: &[String]) -> Summary {
        let rows = splits
            .iter()
            .map(|split| count(dataset, split, |s| s == split))
            .collect();
        Summary {
            splits: rows,
            total: count(dataset, "total", |s| splits.iter().any(|x| x == s)),
        }
    }
}

fn count(dataset: &Dataset, name: &str, keep: impl Fn(&str) -> bool) -> SplitCounts {
    let mut images = HashSet::new();
    let mut categories = HashSet::new();
    let (mut refs, mut sentences) = (0, 0);
    for r in dataset.refs.iter().filter(|r| keep(&r.split)) {
        images.insert(r.image_id);
        categories.insert(r.category_id);
        refs += 1;
        sentences += r.sentences.len();
    }
    SplitCounts {
        split: name.to_string(),
        images: images.len(),
        refs,
        sentences,
        categories: categories.len(),
    }
}
