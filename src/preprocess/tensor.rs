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
    ///
    /// Mirrors ultralytics' `im.float() / 255` / yolov5's `im /= 255` on a float32 array and
    /// torchvision 0.29's `to_tensor` (`img.float().div(255)`): one IEEE float32 division per value.
    pub fn from_rgb_unit(img: &image::RgbImage) -> Chw {
        // 256 possible inputs: divide once each (f32 / f32 is the correctly rounded quotient).
        let lut: [f32; 256] = std::array::from_fn(|v| v as f32 / 255.0f32);
        let (width, height) = (img.width() as usize, img.height() as usize);
        let plane = width * height;
        let mut data = vec![0.0f32; 3 * plane];
        let (r, rest) = data.split_at_mut(plane);
        let (g, b) = rest.split_at_mut(plane);
        for (i, px) in img.as_raw().chunks_exact(3).enumerate() {
            r[i] = lut[px[0] as usize];
            g[i] = lut[px[1] as usize];
            b[i] = lut[px[2] as usize];
        }
        Chw {
            height,
            width,
            data,
        }
    }
}

/// Stack `tensors` (all 3 × h × w) into one `[n, 3, h, w]` model input, in `buf`; a single
/// tensor is used as is, without a copy. Returns the shape and the data.
pub fn stack_nchw<'a>(buf: &'a mut Vec<f32>, tensors: &[&'a Chw]) -> (Vec<usize>, &'a [f32]) {
    let (h, w) = (tensors[0].height, tensors[0].width);
    let shape = vec![tensors.len(), 3, h, w];
    if let [one] = tensors {
        return (shape, &one.data);
    }
    buf.clear();
    for t in tensors {
        assert_eq!(
            (t.height, t.width),
            (h, w),
            "tensors of one batch share a size"
        );
        buf.extend_from_slice(&t.data);
    }
    (shape, buf)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layout_is_channel_major() {
        // 2×1 image: pixel 0 = (0, 51, 255), pixel 1 = (255, 102, 0).
        let img = image::RgbImage::from_raw(2, 1, vec![0, 51, 255, 255, 102, 0]).unwrap();
        let t = Chw::from_rgb_unit(&img);
        assert_eq!((t.height, t.width), (1, 2));
        // 51/255 = 0.2 and 102/255 = 0.4 exactly in decimal; float32 division rounds them to the
        // nearest float32 of 0.2 / 0.4, which is what the literals denote.
        assert_eq!(t.data, vec![0.0, 1.0, 0.2, 0.4, 1.0, 0.0]);
    }

    #[test]
    fn stacking_concatenates_in_order_and_one_tensor_is_not_copied() {
        let t = |v: f32| Chw {
            height: 1,
            width: 1,
            data: vec![v, v + 0.5, v + 0.25],
        };
        let (a, b) = (t(1.0), t(2.0));
        let mut buf = Vec::new();
        let (shape, data) = stack_nchw(&mut buf, &[&a, &b]);
        assert_eq!(shape, [2, 3, 1, 1]);
        assert_eq!(data, [1.0, 1.5, 1.25, 2.0, 2.5, 2.25]);
        let (shape, data) = stack_nchw(&mut buf, &[&a]);
        assert_eq!(shape, [1, 3, 1, 1]);
        assert!(std::ptr::eq(data, a.data.as_slice()));
    }
}
