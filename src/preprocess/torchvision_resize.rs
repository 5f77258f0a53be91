//! torchvision's `resize(uint8 tensor, antialias=True, BILINEAR)`, bit-exact with torch's native
//! uint8 kernel.

use image::RgbImage;

/// `torchvision.transforms.v2.functional.resize(uint8 CHW tensor, [new_h, new_w], BILINEAR,
/// antialias=True)` (torch 2.15 / torchvision 0.29 native uint8 kernel, as on AVX2 CPUs).
pub fn resize_bilinear_antialias(src: &RgbImage, new_w: u32, new_h: u32) -> RgbImage {
    let _ = (src, new_w, new_h);
    todo!("H2b")
}
