//! The Hugging Face DETR image processor: output size rule and the two processors' resize and
//! normalisation.

use image::RgbImage;

use crate::preprocess::Chw;

/// Which Hugging Face DETR image processor to mirror.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Processor {
    /// transformers 5 `DetrImageProcessor` (torchvision backend): antialiased bilinear on uint8.
    #[default]
    Torchvision,
    /// transformers 4's default / transformers 5 `DetrImageProcessorPil`: PIL BILINEAR.
    Pil,
}

/// Resize and normalisation settings (the processor defaults unless a spec says otherwise).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DetrPreprocess {
    pub processor: Processor,
    pub shortest_edge: u32,
    pub longest_edge: u32,
    pub mean: [f32; 3],
    pub std: [f32; 3],
}

/// `get_size_with_aspect_ratio((h, w), shortest_edge, longest_edge)` → (new_w, new_h).
pub fn output_size(w: u32, h: u32, shortest_edge: u32, longest_edge: u32) -> (u32, u32) {
    let _ = (w, h, shortest_edge, longest_edge);
    todo!("H2b")
}

/// Resize + rescale + normalise one image, exactly as the chosen processor does (no padding).
pub fn preprocess(img: &RgbImage, cfg: &DetrPreprocess) -> Chw {
    let _ = (img, cfg);
    todo!("H2b")
}
