//! The box type every stage shares (xyxy pixels of the original image) and IoU.

use serde::{Deserialize, Serialize};

/// An axis-aligned box in original-image pixels, corners `(xmin, ymin)`–`(xmax, ymax)`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct BoxXyxy {
    pub xmin: f32,
    pub ymin: f32,
    pub xmax: f32,
    pub ymax: f32,
}

impl BoxXyxy {
    /// COCO's `bbox` `[x, y, width, height]` as xyxy, the form the research used.
    pub fn from_coco_xywh(x: f64, y: f64, w: f64, h: f64) -> Self {
        BoxXyxy {
            xmin: x as f32,
            ymin: y as f32,
            xmax: (x + w) as f32,
            ymax: (y + h) as f32,
        }
    }

    /// `[xmin, ymin, xmax, ymax]` as the libraries' box tensors hold them.
    pub fn from_array(b: [f32; 4]) -> Self {
        BoxXyxy {
            xmin: b[0],
            ymin: b[1],
            xmax: b[2],
            ymax: b[3],
        }
    }

    pub fn width(&self) -> f32 {
        self.xmax - self.xmin
    }

    pub fn height(&self) -> f32 {
        self.ymax - self.ymin
    }

    /// Area, 0 for empty or inverted boxes.
    pub fn area(&self) -> f64 {
        let w = (self.xmax as f64 - self.xmin as f64).max(0.0);
        let h = (self.ymax as f64 - self.ymin as f64).max(0.0);
        w * h
    }

    /// Intersection over union, computed in f64 so that it does not depend on argument order.
    /// Two boxes with no area in common, or a union of zero area, give 0.
    pub fn iou(&self, other: &BoxXyxy) -> f64 {
        let iw = (self.xmax.min(other.xmax) as f64 - self.xmin.max(other.xmin) as f64).max(0.0);
        let ih = (self.ymax.min(other.ymax) as f64 - self.ymin.max(other.ymin) as f64).max(0.0);
        let inter = iw * ih;
        let union = self.area() + other.area() - inter;
        if union <= 0.0 { 0.0 } else { inter / union }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b(xmin: f32, ymin: f32, xmax: f32, ymax: f32) -> BoxXyxy {
        BoxXyxy {
            xmin,
            ymin,
            xmax,
            ymax,
        }
    }

    #[test]
    fn coco_xywh_becomes_xyxy() {
        assert_eq!(
            BoxXyxy::from_coco_xywh(10.5, 20.0, 30.0, 40.25),
            b(10.5, 20.0, 40.5, 60.25)
        );
    }

    #[test]
    fn iou_by_hand() {
        // 10x10 boxes overlapping in a 5x10 strip: 50 / (100 + 100 - 50) = 1/3.
        let iou = b(0.0, 0.0, 10.0, 10.0).iou(&b(5.0, 0.0, 15.0, 10.0));
        assert!((iou - 1.0 / 3.0).abs() < 1e-12, "{iou}");
        assert_eq!(b(0.0, 0.0, 1.0, 1.0).iou(&b(2.0, 2.0, 3.0, 3.0)), 0.0);
        assert_eq!(b(1.0, 1.0, 1.0, 5.0).iou(&b(1.0, 1.0, 1.0, 5.0)), 0.0);
        assert_eq!(b(1.0, 2.0, 3.0, 5.0).iou(&b(1.0, 2.0, 3.0, 5.0)), 1.0);
    }

    #[test]
    fn iou_symmetric_and_bounded() {
        // A deterministic sweep over many box pairs instead of a property-testing crate.
        let mut s = 12345u64;
        let mut next = || {
            s = s
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            ((s >> 33) % 200) as f32 / 2.0
        };
        for _ in 0..10_000 {
            let (x0, y0, x1, y1) = (next(), next(), next(), next());
            let (u0, v0, u1, v1) = (next(), next(), next(), next());
            let p = b(x0.min(x1), y0.min(y1), x0.max(x1), y0.max(y1));
            let q = b(u0.min(u1), v0.min(v1), u0.max(u1), v0.max(v1));
            let (a, c) = (p.iou(&q), q.iou(&p));
            assert_eq!(a, c);
            assert!((0.0..=1.0).contains(&a));
        }
    }
}
