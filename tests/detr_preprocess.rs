//! DETR pre-processing against goldens in `tests/data/detr/`, written by
//! `tools/make_detr_goldens.py`: Pillow 13.0's own `Image.resize(BILINEAR)` output, an independent
//! Python re-implementation of torch's uint8 antialiased kernel, and both processors' normalisation
//! done with numpy float32 as transformers does it.

use std::path::PathBuf;

use image::RgbImage;
use refaug::preprocess::detr::{self, DetrPreprocess, Processor};
use refaug::preprocess::{pil, torchvision_resize};

#[derive(serde::Deserialize)]
struct Cases {
    resize: Vec<ResizeCase>,
    detr: Vec<DetrCase>,
}

#[derive(serde::Deserialize)]
struct ResizeCase {
    name: String,
    in_w: u32,
    in_h: u32,
    out_w: u32,
    out_h: u32,
    pil_vs_torchvision_differing_values: usize,
}

#[derive(serde::Deserialize)]
struct DetrCase {
    name: String,
    in_w: u32,
    in_h: u32,
    shortest_edge: u32,
    longest_edge: u32,
    out_w: u32,
    out_h: u32,
}

fn data_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/data/detr")
}

fn cases() -> Cases {
    let text = fs_err::read_to_string(data_dir().join("cases.json")).unwrap();
    serde_json::from_str(&text).unwrap()
}

fn rgb(file: &str, w: u32, h: u32) -> RgbImage {
    let raw = fs_err::read(data_dir().join(file)).unwrap();
    RgbImage::from_raw(w, h, raw).unwrap_or_else(|| panic!("{file}: not {w}x{h} RGB"))
}

fn f32s(file: &str) -> Vec<u32> {
    let raw = fs_err::read(data_dir().join(file)).unwrap();
    raw.chunks_exact(4)
        .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .collect()
}

fn count_differences(a: &RgbImage, b: &RgbImage) -> usize {
    a.as_raw()
        .iter()
        .zip(b.as_raw())
        .filter(|(x, y)| x != y)
        .count()
}

#[test]
fn pil_resize_matches_pillow_bit_for_bit() {
    let cases = cases();
    assert!(cases.resize.len() >= 16);
    for c in &cases.resize {
        let input = rgb(&format!("{}.in.rgb", c.name), c.in_w, c.in_h);
        let want = rgb(&format!("{}.pil.rgb", c.name), c.out_w, c.out_h);
        let got = pil::resize_bilinear(&input, c.out_w, c.out_h);
        assert_eq!(
            (got.width(), got.height()),
            (c.out_w, c.out_h),
            "{}",
            c.name
        );
        assert_eq!(count_differences(&got, &want), 0, "{}", c.name);
    }
}

#[test]
fn torchvision_resize_matches_the_reimplemented_torch_kernel() {
    for c in &cases().resize {
        let input = rgb(&format!("{}.in.rgb", c.name), c.in_w, c.in_h);
        let want = rgb(&format!("{}.torchvision.rgb", c.name), c.out_w, c.out_h);
        let got = torchvision_resize::resize_bilinear_antialias(&input, c.out_w, c.out_h);
        assert_eq!(
            (got.width(), got.height()),
            (c.out_w, c.out_h),
            "{}",
            c.name
        );
        assert_eq!(count_differences(&got, &want), 0, "{}", c.name);
    }
}

#[test]
fn the_two_resizes_differ_where_the_goldens_say() {
    // Guards against one kernel silently delegating to the other: several golden cases differ.
    let cases = cases();
    let differing = cases
        .resize
        .iter()
        .filter(|c| c.pil_vs_torchvision_differing_values > 0)
        .count();
    assert!(
        differing >= 5,
        "only {differing} golden cases tell the kernels apart"
    );
    for c in &cases.resize {
        let input = rgb(&format!("{}.in.rgb", c.name), c.in_w, c.in_h);
        let a = pil::resize_bilinear(&input, c.out_w, c.out_h);
        let b = torchvision_resize::resize_bilinear_antialias(&input, c.out_w, c.out_h);
        assert_eq!(
            count_differences(&a, &b),
            c.pil_vs_torchvision_differing_values,
            "{}",
            c.name
        );
    }
}

#[test]
fn whole_processors_match_the_goldens_bit_for_bit() {
    for c in &cases().detr {
        let input = rgb(&format!("{}.in.rgb", c.name), c.in_w, c.in_h);
        for (processor, suffix) in [
            (Processor::Torchvision, "torchvision"),
            (Processor::Pil, "pil"),
        ] {
            let cfg = DetrPreprocess {
                processor,
                shortest_edge: c.shortest_edge,
                longest_edge: c.longest_edge,
                ..DetrPreprocess::default()
            };
            let chw = detr::preprocess(&input, &cfg);
            assert_eq!(
                (chw.width, chw.height),
                (c.out_w as usize, c.out_h as usize),
                "{} {suffix}",
                c.name
            );
            let want = f32s(&format!("{}.{suffix}.f32", c.name));
            let got: Vec<u32> = chw.data.iter().map(|v| v.to_bits()).collect();
            assert_eq!(got.len(), want.len(), "{} {suffix}", c.name);
            let bad = got.iter().zip(&want).filter(|(a, b)| a != b).count();
            assert_eq!(bad, 0, "{} {suffix}: {bad} floats differ", c.name);
        }
    }
}

#[test]
fn each_processor_normalises_with_its_own_float32_arithmetic() {
    // All 256 byte values as four 8×8 images: at shortest_edge 8 they are not resized, so every
    // tensor value is the normalisation of one known byte.
    for tile in 0..4u32 {
        let img = RgbImage::from_fn(8, 8, |x, y| {
            let v = (tile * 64 + y * 8 + x) as u8;
            image::Rgb([v, v, v])
        });
        let run = |processor| {
            let cfg = DetrPreprocess {
                processor,
                shortest_edge: 8,
                longest_edge: 13,
                ..DetrPreprocess::default()
            };
            detr::preprocess(&img, &cfg)
        };
        let (tv, pil) = (run(Processor::Torchvision), run(Processor::Pil));
        assert_eq!((tv.width, tv.height, pil.width, pil.height), (8, 8, 8, 8));
        let (mean, std) = ([0.485f32, 0.456, 0.406], [0.229f32, 0.224, 0.225]);
        for c in 0..3 {
            for i in 0..64 {
                let v = (tile * 64) as usize + i;
                // transformers 5 torchvision backend: (x − mean·255) / (std·255), all float32.
                let want_tv = (v as f32 - mean[c] * 255.0) / (std[c] * 255.0);
                // PIL backend: float32(float64(x)·(1/255)), then (x − mean) / std in float32.
                let want_pil = ((v as f64 * (1.0 / 255.0)) as f32 - mean[c]) / std[c];
                assert_eq!(
                    tv.data[c * 64 + i].to_bits(),
                    want_tv.to_bits(),
                    "torchvision c{c} v{v}"
                );
                assert_eq!(
                    pil.data[c * 64 + i].to_bits(),
                    want_pil.to_bits(),
                    "pil c{c} v{v}"
                );
            }
        }
    }
}
