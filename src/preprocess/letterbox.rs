//! The YOLO letterbox: keep the ratio, resize with OpenCV INTER_LINEAR, pad with a constant grey.
//!
//! Mirrors `ultralytics.data.augment.LetterBox(auto=False, scaleup=True, center=True)` (ultralytics
//! 8.4) and `yolov5.utils.augmentations.letterbox(auto=False)` (yolov5 v7.0), which agree on the
//! geometry: `r = min(th / h, tw / w)`; `new = round(side · r)` (half to even, at least 1);
//! padding `d = (t − new) / 2` split as `round(d − 0.1)` before and `round(d + 0.1)` after, so an
//! odd total puts the extra pixel at the bottom/right.

/// The geometry of one letterbox: where the resized image sits in the model input.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LetterboxGeometry {
    pub orig_w: u32,
    pub orig_h: u32,
    pub new_w: u32,
    pub new_h: u32,
    pub top: u32,
    pub bottom: u32,
    pub left: u32,
    pub right: u32,
}

/// Python's `round()` for a float64: round half to even.
fn round_half_even(x: f64) -> f64 {
    x.round_ties_even()
}

impl LetterboxGeometry {
    /// The letterbox of an `orig_w × orig_h` image into a `target_w × target_h` input.
    pub fn new(orig_w: u32, orig_h: u32, target_w: u32, target_h: u32) -> Self {
        let (w, h) = (orig_w as f64, orig_h as f64);
        let r = (target_h as f64 / h).min(target_w as f64 / w);
        let new_w = (round_half_even(w * r) as u32).max(1);
        let new_h = (round_half_even(h * r) as u32).max(1);
        let dw = (target_w as f64 - new_w as f64) / 2.0;
        let dh = (target_h as f64 - new_h as f64) / 2.0;
        LetterboxGeometry {
            orig_w,
            orig_h,
            new_w,
            new_h,
            top: round_half_even(dh - 0.1) as u32,
            bottom: round_half_even(dh + 0.1) as u32,
            left: round_half_even(dw - 0.1) as u32,
            right: round_half_even(dw + 0.1) as u32,
        }
    }

    pub fn input_w(&self) -> u32 {
        self.left + self.new_w + self.right
    }

    pub fn input_h(&self) -> u32 {
        self.top + self.new_h + self.bottom
    }
}

/// Letterbox `img` into `geom`'s input size: OpenCV INTER_LINEAR resize (only when the size
/// changes, as the libraries do), then constant `pad` borders. Returns the padded RGB image.
///
/// Mirrors `cv2.resize(img, (new_w, new_h), interpolation=cv2.INTER_LINEAR)` followed by
/// `cv2.copyMakeBorder(img, top, bottom, left, right, cv2.BORDER_CONSTANT, value=(pad, pad, pad))`.
///
/// # Panics
/// If `img` is not `geom.orig_w × geom.orig_h`.
pub fn letterbox(img: &image::RgbImage, geom: &LetterboxGeometry, pad: u8) -> image::RgbImage {
    assert_eq!(
        (img.width(), img.height()),
        (geom.orig_w, geom.orig_h),
        "letterbox geometry made for another image size"
    );
    let resized;
    let inner = if (geom.new_w, geom.new_h) != (geom.orig_w, geom.orig_h) {
        resized = crate::preprocess::opencv::resize_linear(img, geom.new_w, geom.new_h);
        &resized
    } else {
        img
    };
    let mut out = image::RgbImage::from_pixel(geom.input_w(), geom.input_h(), image::Rgb([pad; 3]));
    let out_stride = 3 * geom.input_w() as usize;
    let in_stride = 3 * geom.new_w as usize;
    let left = 3 * geom.left as usize;
    let dst = &mut *out;
    for (y, row) in inner.as_raw().chunks_exact(in_stride).enumerate() {
        let start = (geom.top as usize + y) * out_stride + left;
        dst[start..start + in_stride].copy_from_slice(row);
    }
    out
}

/// The YOLO families' model input: letterbox to `target_w × target_h` with grey `pad`, then `x / 255`.
pub fn letterbox_tensor(
    img: &image::RgbImage,
    target_w: u32,
    target_h: u32,
    pad: u8,
) -> (crate::preprocess::Chw, LetterboxGeometry) {
    let geom = LetterboxGeometry::new(img.width(), img.height(), target_w, target_h);
    let boxed = letterbox(img, &geom, pad);
    (crate::preprocess::Chw::from_rgb_unit(&boxed), geom)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// (W, H) → (new W, new H, top, bottom, left, right): the table of `../shared/models/README.md`,
    /// derived there from the ultralytics code.
    #[test]
    fn geometry_of_common_coco_sizes() {
        let cases = [
            ((640, 480), (640, 480, 80, 80, 0, 0)),
            ((480, 640), (480, 640, 0, 0, 80, 80)),
            ((640, 427), (640, 427, 106, 107, 0, 0)),
            ((427, 640), (427, 640, 0, 0, 106, 107)),
            ((640, 360), (640, 360, 140, 140, 0, 0)),
            ((640, 525), (640, 525, 57, 58, 0, 0)),
            ((640, 640), (640, 640, 0, 0, 0, 0)),
            ((500, 375), (640, 480, 80, 80, 0, 0)),
            ((375, 500), (480, 640, 0, 0, 80, 80)),
            ((612, 612), (640, 640, 0, 0, 0, 0)),
            ((600, 400), (640, 427, 106, 107, 0, 0)),
        ];
        for ((w, h), (nw, nh, t, b, l, r)) in cases {
            let g = LetterboxGeometry::new(w, h, 640, 640);
            assert_eq!(
                (g.new_w, g.new_h, g.top, g.bottom, g.left, g.right),
                (nw, nh, t, b, l, r),
                "{w}x{h}"
            );
            assert_eq!((g.input_w(), g.input_h()), (640, 640));
        }
    }

    #[test]
    fn tiny_and_extreme_images_keep_one_pixel() {
        // 1×2000: r = 0.32, new_w = round(0.32) = 0 → clamped to 1 (the libraries' max(…, 1)).
        let g = LetterboxGeometry::new(1, 2000, 640, 640);
        assert_eq!((g.new_w, g.new_h), (1, 640));
        assert_eq!(
            (g.left, g.right),
            (319, 320),
            "odd padding: extra pixel right"
        );
        assert_eq!(g.input_w(), 640);
    }
}
