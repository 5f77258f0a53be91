//! The YOLO letterbox: keep the ratio, resize with OpenCV INTER_LINEAR, pad with a constant grey.
//!
//! Mirrors `ultralytics.data.augment.LetterBox(scaleup=True, center=True)` (ultralytics 8.4) and
//! `yolov5.utils.augmentations.letterbox(scaleup=True)` (yolov5 v7.0), which agree on the geometry:
//! `r = min(th / h, tw / w)`; `new = round(side · r)` (half to even, at least 1); padding
//! `d = (t − new) / 2` split as `round(d − 0.1)` before and `round(d + 0.1)` after, so an odd total
//! puts the extra pixel at the bottom/right.
//!
//! The target `t` is where the calling conventions differ ([`LetterboxShape`]): the fixed input
//! size (`detect.py`, `LetterBox(auto=False)`), yolov5's `AutoShape` stride rectangle, or
//! ultralytics' minimum stride rectangle (`LetterBox(auto=True)`, what `YOLO.predict` uses).

/// How the letterbox's target size is chosen for an image: the calling conventions of the YOLO
/// libraries (see `../shared/reference/README.md`, "The research's calling conventions").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LetterboxShape {
    /// Always the configured `width × height`: yolov5 v7.0 `detect.py` (`letterbox(auto=False)`
    /// for ONNX models) and ultralytics 8.4 `LetterBox(auto=False)` (static exports, `val`).
    Fixed,
    /// yolov5 v7.0 `models/common.py` `AutoShape.forward(ims, size)` for one image (what
    /// `torch.hub.load("ultralytics/yolov5", …)(image)` runs): `g = max(size) / max(h, w)`;
    /// `shape1 = [make_divisible(int(h·g), stride), make_divisible(int(w·g), stride)]` (`int`
    /// truncates, `make_divisible(x, s) = ceil(x / s)·s`), then `letterbox(im, shape1,
    /// auto=False)`.
    AutoShape,
    /// ultralytics 8.4 `LetterBox(imgsz, auto=True, stride)`, which `BasePredictor.pre_transform`
    /// uses for one image (or equal shapes) with `rect=True` (the `Model.predict` default) on a
    /// `.pt` model or a dynamic ONNX export: the padding of the fixed letterbox reduced modulo the
    /// stride (`dw, dh = np.mod(dw, stride), np.mod(dh, stride)`), i.e. the smallest stride
    /// rectangle around the resized image.
    MinRect,
}

/// One convention's letterbox: target size, shape rule, stride and grey level.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Letterbox {
    /// Target width (`imgsz` / `size`; AutoShape uses `max(width, height)`).
    pub width: u32,
    /// Target height.
    pub height: u32,
    pub shape: LetterboxShape,
    /// The network stride (32 for the P5 models: yolov5 n–x, YOLOv8/11); unused by [`LetterboxShape::Fixed`].
    pub stride: u32,
    /// Grey level of the padding (114 in both libraries).
    pub pad: u8,
}

impl Letterbox {
    /// A `width × height` letterbox with both libraries' defaults: stride 32, grey 114.
    pub fn with_defaults(width: u32, height: u32, shape: LetterboxShape) -> Letterbox {
        Letterbox {
            width,
            height,
            shape,
            stride: 32,
            pad: 114,
        }
    }

    /// Where an `orig_w × orig_h` image goes in its model input.
    pub fn geometry(&self, orig_w: u32, orig_h: u32) -> LetterboxGeometry {
        match self.shape {
            LetterboxShape::Fixed => {
                LetterboxGeometry::new(orig_w, orig_h, self.width, self.height)
            }
            LetterboxShape::AutoShape => {
                let [shape_w, shape_h] =
                    autoshape_target(orig_w, orig_h, self.width.max(self.height), self.stride);
                LetterboxGeometry::new(orig_w, orig_h, shape_w, shape_h)
            }
            LetterboxShape::MinRect => {
                let (new_w, new_h) = resized_size(orig_w, orig_h, self.width, self.height);
                // `np.mod(dw, stride)` of a non-negative int.
                let dw = (self.width - new_w) % self.stride;
                let dh = (self.height - new_h) % self.stride;
                LetterboxGeometry::place(orig_w, orig_h, new_w, new_h, dw, dh)
            }
        }
    }

    /// The model input of `img`: letterboxed, then `x / 255`.
    pub fn tensor(&self, img: &image::RgbImage) -> (crate::preprocess::Chw, LetterboxGeometry) {
        let geom = self.geometry(img.width(), img.height());
        let boxed = letterbox(img, &geom, self.pad);
        (crate::preprocess::Chw::from_rgb_unit(&boxed), geom)
    }
}

/// yolov5 v7.0 `AutoShape.forward`'s inference shape for one image, `[width, height]`:
/// `g = size / max(h, w)` (Python float); `int(side · g)` (truncation); `make_divisible(x, stride)
/// = ceil(x / stride) · stride`. A side that truncates to 0 (an image over `size` times longer than
/// wide) makes the library fail; here it becomes one stride.
pub fn autoshape_target(orig_w: u32, orig_h: u32, size: u32, stride: u32) -> [u32; 2] {
    let g = f64::from(size) / f64::from(orig_w.max(orig_h));
    let side = |s: u32| {
        let x = (f64::from(s) * g) as u32; // `int()` of a positive float truncates
        x.div_ceil(stride).max(1) * stride
    };
    [side(orig_w), side(orig_h)]
}

/// The resized image's size in a `target_w × target_h` letterbox: `r = min(th / h, tw / w)`,
/// `max(round(side · r), 1)` (Python `round`: half to even).
fn resized_size(orig_w: u32, orig_h: u32, target_w: u32, target_h: u32) -> (u32, u32) {
    let (w, h) = (f64::from(orig_w), f64::from(orig_h));
    let r = (f64::from(target_h) / h).min(f64::from(target_w) / w);
    let new_w = (round_half_even(w * r) as u32).max(1);
    let new_h = (round_half_even(h * r) as u32).max(1);
    (new_w, new_h)
}

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
        let (new_w, new_h) = resized_size(orig_w, orig_h, target_w, target_h);
        Self::place(
            orig_w,
            orig_h,
            new_w,
            new_h,
            target_w - new_w,
            target_h - new_h,
        )
    }

    /// The resized `new_w × new_h` image with `pad_w` columns and `pad_h` rows of padding in
    /// total, split `round(d/2 − 0.1)` before and `round(d/2 + 0.1)` after.
    fn place(orig_w: u32, orig_h: u32, new_w: u32, new_h: u32, pad_w: u32, pad_h: u32) -> Self {
        let dw = f64::from(pad_w) / 2.0;
        let dh = f64::from(pad_h) / 2.0;
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

/// The fixed letterbox's model input: letterbox to `target_w × target_h` with grey `pad`, then
/// `x / 255` ([`Letterbox::tensor`] with [`LetterboxShape::Fixed`]).
pub fn letterbox_tensor(
    img: &image::RgbImage,
    target_w: u32,
    target_h: u32,
    pad: u8,
) -> (crate::preprocess::Chw, LetterboxGeometry) {
    Letterbox {
        width: target_w,
        height: target_h,
        shape: LetterboxShape::Fixed,
        stride: 1,
        pad,
    }
    .tensor(img)
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
