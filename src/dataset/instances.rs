//! `instances.json` (COCO format), only the fields refaug needs: serde skips the rest
//! (segmentation polygons are most of the file) without building values for it.

use serde::Deserialize;

/// The top level of `instances.json`.
#[derive(Debug, Deserialize)]
pub(super) struct WireInstances {
    pub images: Vec<WireImage>,
    pub annotations: Vec<WireAnnotation>,
    pub categories: Vec<WireCategory>,
}

/// `images[]`.
#[derive(Debug, Deserialize)]
pub(super) struct WireImage {
    pub id: i64,
    pub file_name: String,
    pub width: u32,
    pub height: u32,
}

/// `annotations[]`.
#[derive(Debug, Deserialize)]
pub(super) struct WireAnnotation {
    pub id: i64,
    pub image_id: i64,
    /// `[x, y, width, height]` in pixels.
    pub bbox: [f64; 4],
}

/// `categories[]`.
#[derive(Debug, Deserialize)]
pub(super) struct WireCategory {
    pub id: i64,
    pub name: String,
}
