//! Decoding, OpenCV resize, letterbox and `x / 255` against goldens made by the original libraries
//! (Pillow 13.0.0, OpenCV 5.0.0, numpy): `tools/make_pixel_goldens.py` writes `tests/data/pixels/`.

use std::path::{Path, PathBuf};

use image::RgbImage;
use refaug::decode::{
    DecodeError, Limits, decode_bytes, decode_file, decode_file_expecting, read_file,
};
use refaug::parity::{sha256_chw, sha256_rgb};
use refaug::preprocess::Chw;
use refaug::preprocess::letterbox::{LetterboxGeometry, letterbox, letterbox_tensor};
use refaug::preprocess::opencv::resize_linear;
use serde::Deserialize;

#[derive(Deserialize)]
struct Goldens {
    unit_f32_bits: Vec<u32>,
    decode: Vec<DecodeCase>,
    resize: Vec<ResizeCase>,
    letterbox: Vec<LetterboxCase>,
}

#[derive(Deserialize)]
struct DecodeCase {
    file: String,
    ok: bool,
    width: Option<u32>,
    height: Option<u32>,
    rgb_sha256: Option<String>,
    pillow_error: Option<String>,
}

#[derive(Deserialize)]
struct ResizeCase {
    input: String,
    output: String,
    width: u32,
    height: u32,
}

#[derive(Deserialize)]
struct Geometry {
    new_w: u32,
    new_h: u32,
    top: u32,
    bottom: u32,
    left: u32,
    right: u32,
}

#[derive(Deserialize)]
struct LetterboxCase {
    input: String,
    target_w: u32,
    target_h: u32,
    pad: u8,
    geometry: Geometry,
    letterboxed_sha256: String,
    tensor_shape: Vec<usize>,
    tensor_sha256: String,
}

fn data_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/pixels")
}

fn goldens() -> Goldens {
    let text = fs_err::read_to_string(data_dir().join("goldens.json")).unwrap();
    serde_json::from_str(&text).unwrap()
}

/// PNG goldens (8-bit RGB, written by Pillow) through the `image` crate.
fn load_png(path: &Path) -> RgbImage {
    match image::open(path).unwrap() {
        image::DynamicImage::ImageRgb8(img) => img,
        other => panic!(
            "{}: expected 8-bit RGB, got {:?}",
            path.display(),
            other.color()
        ),
    }
}

#[test]
fn decoding_matches_pillow_byte_for_byte() {
    let dir = data_dir().join("decode");
    let cases = goldens().decode;
    assert!(cases.len() >= 20, "goldens.json lost its decode cases");
    for case in cases {
        let path = dir.join(&case.file);
        let result = decode_file(&path);
        if case.ok {
            let img = result.unwrap_or_else(|e| panic!("{}: {e}", case.file));
            assert_eq!(
                (Some(img.width()), Some(img.height())),
                (case.width, case.height),
                "{}",
                case.file
            );
            assert_eq!(
                Some(sha256_rgb(&img)),
                case.rgb_sha256,
                "{}: pixels differ from Pillow",
                case.file
            );
        } else {
            let err = match result {
                Ok(_) => panic!(
                    "{}: decoded, but Pillow fails ({:?})",
                    case.file, case.pillow_error
                ),
                Err(e) => e,
            };
            // Each failure is the kind of error Pillow reports for it.
            let expected_kind = match case.file.as_str() {
                "empty.jpg" => matches!(err, DecodeError::Empty { .. }),
                "not_an_image.gif" => matches!(err, DecodeError::Unsupported { .. }),
                _ => matches!(err, DecodeError::Truncated { .. }),
            };
            assert!(
                expected_kind,
                "{}: unexpected error {err:?} (Pillow: {:?})",
                case.file, case.pillow_error
            );
            assert!(
                err.to_string().contains(&case.file),
                "error does not name the file: {err}"
            );
        }
    }
}

#[test]
fn missing_file_is_named() {
    let path = data_dir().join("decode/no_such_file.jpg");
    let err = decode_file(&path).unwrap_err();
    assert!(matches!(err, DecodeError::Missing { .. }), "{err:?}");
    assert!(err.to_string().contains("no_such_file.jpg"), "{err}");
}

/// Rewrite the SOF0 frame size of a baseline JPEG (`FF C0`, length, precision, height, width).
fn with_jpeg_size(bytes: &[u8], width: u16, height: u16) -> Vec<u8> {
    let mut out = bytes.to_vec();
    let sof = out
        .windows(2)
        .position(|w| w == [0xFF, 0xC0])
        .expect("baseline SOF0");
    out[sof + 5..sof + 7].copy_from_slice(&height.to_be_bytes());
    out[sof + 7..sof + 9].copy_from_slice(&width.to_be_bytes());
    out
}

#[test]
fn absurd_dimensions_are_refused_before_decoding() {
    let jpg = fs_err::read(data_dir().join("decode/baseline_420.jpg")).unwrap();
    // 65535 × 65535 ≈ 4.3 G pixels: over 2^28, refused from the header alone.
    let err = decode_bytes(&with_jpeg_size(&jpg, 65535, 65535), Path::new("huge.jpg")).unwrap_err();
    match &err {
        DecodeError::TooLarge { width, height, .. } => {
            assert_eq!((*width, *height), (65535, 65535))
        }
        other => panic!("{other:?}"),
    }
    let msg = err.to_string();
    assert!(
        msg.contains("65535×65535") && msg.contains("huge.jpg"),
        "{msg}"
    );
    // 20000 × 20000 = 4e8 > 2^28 as well, although each side is allowed.
    let err = decode_bytes(&with_jpeg_size(&jpg, 20000, 20000), Path::new("big.jpg")).unwrap_err();
    assert!(matches!(err, DecodeError::TooLarge { .. }), "{err:?}");
}

#[test]
fn a_header_that_disagrees_with_the_annotations_is_refused_before_decoding() {
    // A 16000×16000 header (allowed: 2.56e8 ≤ 2^28 pixels) on a few KB of data: decoding it
    // allocates 768 MB. With the annotations' size known, the header alone refuses it, before the
    // pixel buffer exists.
    let jpg = fs_err::read(data_dir().join("decode/baseline_420.jpg")).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("big.jpg");
    fs_err::write(&path, with_jpeg_size(&jpg, 16000, 16000)).unwrap();
    let err = decode_file_expecting(&path, (640, 480), &Limits::default()).unwrap_err();
    match &err {
        DecodeError::WrongSize {
            width,
            height,
            expected_width,
            expected_height,
            ..
        } => assert_eq!(
            (*width, *height, *expected_width, *expected_height),
            (16000, 16000, 640, 480)
        ),
        other => panic!("{other:?}"),
    }
    assert!(err.to_string().contains("big.jpg"), "{err}");
}

#[test]
fn files_over_the_size_limit_are_refused_before_reading() {
    let jpg = fs_err::read(data_dir().join("decode/baseline_420.jpg")).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("a.jpg");
    fs_err::write(&path, &jpg).unwrap();
    let limits = Limits {
        max_file_bytes: jpg.len() as u64 - 1,
    };
    let err = read_file(&path, &limits).unwrap_err();
    assert!(
        matches!(err, DecodeError::FileTooLarge { bytes, .. } if bytes == jpg.len() as u64),
        "{err:?}"
    );
    let limits = Limits {
        max_file_bytes: jpg.len() as u64,
    };
    assert_eq!(read_file(&path, &limits).unwrap(), jpg);
}

#[test]
fn opencv_inter_linear_bit_exact() {
    let dir = data_dir().join("resize");
    let cases = goldens().resize;
    assert!(cases.len() >= 10);
    for case in cases {
        let src = load_png(&dir.join(&case.input));
        let want = load_png(&dir.join(&case.output));
        let got = resize_linear(&src, case.width, case.height);
        let differing = got
            .as_raw()
            .iter()
            .zip(want.as_raw())
            .filter(|(a, b)| a != b)
            .count();
        assert_eq!(
            (got.width(), got.height(), differing),
            (want.width(), want.height(), 0),
            "{} → {}x{}",
            case.input,
            case.width,
            case.height
        );
    }
}

#[test]
fn letterbox_matches_cv2_and_numpy() {
    let dir = data_dir().join("letterbox");
    let cases = goldens().letterbox;
    assert!(cases.len() >= 4);
    for case in cases {
        let src = load_png(&dir.join(&case.input));
        let g = LetterboxGeometry::new(src.width(), src.height(), case.target_w, case.target_h);
        let want = &case.geometry;
        assert_eq!(
            (g.new_w, g.new_h, g.top, g.bottom, g.left, g.right),
            (
                want.new_w,
                want.new_h,
                want.top,
                want.bottom,
                want.left,
                want.right
            ),
            "{}",
            case.input
        );
        let boxed = letterbox(&src, &g, case.pad);
        assert_eq!(
            sha256_rgb(&boxed),
            case.letterboxed_sha256,
            "{}",
            case.input
        );
        let (t, g2) = letterbox_tensor(&src, case.target_w, case.target_h, case.pad);
        assert_eq!(g2, g);
        assert_eq!(
            vec![1, 3, t.height, t.width],
            case.tensor_shape,
            "{}",
            case.input
        );
        assert_eq!(sha256_chw(&t), case.tensor_sha256, "{}", case.input);
    }
}

/// Hand-derived: a 3×1 image into 5×5: r = min(5/1, 5/3) = 5/3, new = (round(5), round(5/3)) =
/// (5, 2); dh = 1.5 → top = round(1.4) = 1, bottom = round(1.6) = 2.
#[test]
fn letterbox_hand_derived() {
    let img = RgbImage::from_raw(3, 1, vec![10, 20, 30, 40, 50, 60, 70, 80, 90]).unwrap();
    let (t, g) = letterbox_tensor(&img, 5, 5, 114);
    assert_eq!(
        (g.new_w, g.new_h, g.top, g.bottom, g.left, g.right),
        (5, 2, 1, 2, 0, 0)
    );
    assert_eq!((t.height, t.width), (5, 5));
    let grey = 114.0f32 / 255.0;
    // Row 0 and rows 3–4 are padding in every channel.
    for c in 0..3 {
        for y in [0, 3, 4] {
            for x in 0..5 {
                assert_eq!(t.data[c * 25 + y * 5 + x], grey, "c{c} y{y} x{x}");
            }
        }
    }
    // The left- and right-most resized pixels are the border pixels (weight 2048 on one column).
    assert_eq!(t.data[5], 10.0 / 255.0);
    assert_eq!(t.data[9], 70.0 / 255.0);
}

#[test]
fn unit_scaling_is_float32_division_for_all_256_values() {
    let want = goldens().unit_f32_bits;
    assert_eq!(want.len(), 256);
    let img = RgbImage::from_fn(256, 1, |x, _| image::Rgb([x as u8, 255 - x as u8, 0]));
    let t: Chw = Chw::from_rgb_unit(&img);
    let red: Vec<u32> = t.data[..256].iter().map(|v| v.to_bits()).collect();
    assert_eq!(red, want);
    let green: Vec<u32> = t.data[256..512].iter().rev().map(|v| v.to_bits()).collect();
    assert_eq!(green, want);
    // The multiplication by float32(1/255) is not the same function (README: 126 of 256 differ).
    let inv = 1.0f32 / 255.0;
    let differing = (0..256u32)
        .filter(|&x| (x as f32 * inv).to_bits() != want[x as usize])
        .count();
    assert_eq!(differing, 126);
}

/// `parity::check` on a fingerprints file in the reference format (written by the goldens script
/// from Pillow / cv2 / numpy): everything matches except the one input hash the script spoiled;
/// DETR inputs are skipped unless asked for.
#[test]
fn parity_check_reports_per_detector_and_stage() {
    use refaug::parity::{ParityOptions, Stage, check, load_fingerprints};
    let fps = load_fingerprints(&data_dir().join("parity_fingerprints.jsonl")).unwrap();
    assert_eq!(fps.len(), 9);
    let report = check(&data_dir().join("decode"), &fps, &ParityOptions::default());
    let names: Vec<_> = report.detectors.iter().map(|(d, _)| d.as_str()).collect();
    assert_eq!(
        names,
        [
            "yolov8n-cal",
            "fasterrcnn_mobilenet_v3_large_320_fpn_slim-cal",
            "detr_resnet18-cal@pil"
        ]
    );
    let counts = |d: &str, s: Stage| {
        let r = report.get(d, s).unwrap();
        (r.matched, r.total, r.skipped)
    };
    for d in names.iter() {
        assert_eq!(counts(d, Stage::Decode), (3, 3, 0), "{d}");
    }
    assert_eq!(counts("yolov8n-cal", Stage::Input), (3, 3, 0));
    let frcnn = "fasterrcnn_mobilenet_v3_large_320_fpn_slim-cal";
    assert_eq!(counts(frcnn, Stage::Input), (2, 3, 0));
    let misses = &report.get(frcnn, Stage::Input).unwrap().misses;
    assert_eq!(misses.len(), 1);
    assert_eq!(misses[0].file_name, "grayscale.jpg");
    assert_eq!(counts("detr_resnet18-cal@pil", Stage::Input), (0, 0, 3));
    assert!(!report.all_matched());
    let text = report.to_string();
    assert!(
        text.contains(&format!("{frcnn} input: 2/3 matched")),
        "{text}"
    );
    assert!(
        text.contains("  grayscale.jpg: input tensor differs (sha256)"),
        "{text}"
    );
}

#[test]
fn parity_check_reports_decode_failures() {
    use refaug::parity::{ParityOptions, Stage, check, load_fingerprints};
    let mut fps = load_fingerprints(&data_dir().join("parity_fingerprints.jsonl")).unwrap();
    fps.truncate(1);
    fps[0].file_name = "truncated_half.jpg".into();
    let report = check(&data_dir().join("decode"), &fps, &ParityOptions::default());
    let decode = report.get("yolov8n-cal", Stage::Decode).unwrap();
    assert_eq!((decode.matched, decode.total), (0, 1));
    assert!(
        decode.misses[0].reason.contains("truncated"),
        "{:?}",
        decode.misses
    );
    assert_eq!(report.get("yolov8n-cal", Stage::Input).unwrap().skipped, 1);
}

/// Every geometry of `tests/data/letterbox/shapes.csv`, which `tools/make_letterbox_shapes.py`
/// read off the libraries themselves (yolov5 v7.0 `AutoShape.forward`, ultralytics 8.4
/// `LetterBox(auto=True)`): every image size whose long side is 640 (all COCO size classes), a
/// grid of other sizes and the named cases, e.g. 428×300, where the two rules differ.
#[test]
fn rectangular_letterboxes_match_autoshape_and_predict() {
    use refaug::preprocess::letterbox::{Letterbox, LetterboxShape};
    let text = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/letterbox/shapes.csv"),
    )
    .unwrap();
    let mut lines = text.lines();
    assert_eq!(
        lines.next(),
        Some("w,h,rule,input_w,input_h,new_w,new_h,top,left")
    );
    let (mut n, mut differ) = (0, 0);
    let mut previous: Option<(u32, u32, [u32; 6])> = None;
    for line in lines {
        let f: Vec<&str> = line.split(',').collect();
        let num = |i: usize| f[i].parse::<u32>().unwrap();
        let (w, h) = (num(0), num(1));
        let shape = match f[2] {
            "autoshape" => LetterboxShape::AutoShape,
            "predict" => LetterboxShape::MinRect,
            other => panic!("rule {other}"),
        };
        let g = Letterbox {
            width: 640,
            height: 640,
            shape,
            stride: 32,
            pad: 114,
        }
        .geometry(w, h);
        let got = [g.input_w(), g.input_h(), g.new_w, g.new_h, g.top, g.left];
        let want = [num(3), num(4), num(5), num(6), num(7), num(8)];
        assert_eq!(got, want, "{w}x{h} {}", f[2]);
        if let Some((pw, ph, other)) = previous
            && (pw, ph) == (w, h)
        {
            differ += usize::from(other != want);
        }
        previous = Some((w, h, want));
        n += 1;
    }
    assert!(n > 5000, "{n} rows");
    // The two rules agree for every long side of 640 and differ for a few other sizes (428×300).
    assert!(differ > 0);
}
