//! The model-input tensor of one image: 3 × H × W float32 in C order.

/// One image as a 3 × `height` × `width` float32 tensor, channel-major (C order, as NCHW without N).
#[derive(Debug, Clone, PartialEq)]
pub struct Chw {
    pub height: usize,
    pub width: usize,
    pub data: Vec<f32>,
}

impl Chw {
    /// HWC RGB uint8 → CHW float32 `x / 255`, correctly rounded in float32 (what `torch` / numpy's
    /// `tensor.float() / 255` gives; `x * (1/255f32)` differs in 126 of the 256 values).
    pub fn from_rgb_unit(img: &image::RgbImage) -> Chw {
        let _ = img;
        todo!("H2a")
    }
}
