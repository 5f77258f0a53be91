//! The CLIP stage's pieces against independent expectations: crops and model inputs (bit for
//! bit), `clip.tokenize`, and the fixture encoders' embeddings.
//!
//! Every expected value comes from `tools/make_clip_fixtures.py`: tokens from openai/CLIP's own
//! `SimpleTokenizer` (clip-anytorch 2.6.0), crops and input tensors from `tools/clip_numpy.py` (a
//! NumPy re-implementation of the research's torch transform, bit-exact to torch), embeddings
//! from the fixture encoders' maths in float64 NumPy. No test here needs `../shared`.

use std::path::PathBuf;

use refaug::boxes::BoxXyxy;
use refaug::detect::runtime::RuntimeOptions;
use refaug::embed::encoder::{EncodeError, Encoder};
use refaug::embed::spec::EncoderSpec;
use refaug::embed::text::{CONTEXT_LENGTH, ClipTokenizer, TooLong};
use refaug::preprocess::clip::{CropBox, crop};
use serde_json::Value;
use sha2::{Digest, Sha256};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn expected() -> Value {
    let text = std::fs::read_to_string(root().join("tests/data/clip/expected.json")).unwrap();
    serde_json::from_str(&text).unwrap()
}

fn ints(v: &Value) -> Vec<i64> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_i64().unwrap())
        .collect()
}

fn floats(v: &Value) -> Vec<f64> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_f64().unwrap())
        .collect()
}

fn sha256(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

fn spec() -> EncoderSpec {
    EncoderSpec::from_file(&root().join("encoders/fixture-clip.toml")).unwrap()
}

fn encoder(max_batch: usize) -> Encoder {
    let opts = RuntimeOptions {
        max_batch,
        ..RuntimeOptions::default()
    };
    Encoder::new(spec(), &opts).unwrap_or_else(|e| panic!("{}", refaug::error_chain(&e)))
}

#[test]
fn tokenizer_matches_clip_tokenize_on_every_sample_sentence() {
    let exp = expected();
    let t = ClipTokenizer::shared();
    let sentences = exp["sentences"].as_array().unwrap();
    assert!(sentences.len() >= 100, "the sample's sentences");
    for s in sentences
        .iter()
        .chain(exp["extra_texts"].as_array().unwrap())
    {
        let text = s
            .get("sent")
            .or_else(|| s.get("text"))
            .and_then(Value::as_str)
            .unwrap();
        let n = s["n_tokens"].as_u64().unwrap() as usize;
        if s["too_long"].as_bool().unwrap() {
            assert_eq!(
                t.tokenize(text, false),
                Err(TooLong { n_tokens: n }),
                "{text:?}"
            );
            let cut = t.tokenize(text, true).unwrap();
            assert_eq!(cut.ids.to_vec(), ints(&s["truncated"]), "{text:?}");
            continue;
        }
        let want = ints(&s["tokens"]);
        let got = t.tokenize(text, false).unwrap();
        assert_eq!(&got.ids[..want.len()], &want[..], "{text:?}");
        assert!(got.ids[want.len()..].iter().all(|&v| v == 0), "{text:?}");
        assert_eq!(got.len, n);
    }
}

#[test]
fn crops_and_inputs_are_bit_exact_including_padding_and_half_coordinates() {
    let exp = expected();
    let spec = spec();
    for c in exp["crops"].as_array().unwrap() {
        let what = c["what"].as_str().unwrap();
        let img = refaug::decode::decode_file(
            &root()
                .join("sample/refcocog/images")
                .join(c["file_name"].as_str().unwrap()),
        )
        .unwrap();
        let b: Vec<f32> = floats(&c["box_xyxy"]).iter().map(|&v| v as f32).collect();
        let cb = CropBox::from_xyxy(&BoxXyxy::from_array([b[0], b[1], b[2], b[3]])).unwrap();
        assert_eq!(
            vec![cb.x as i64, cb.y as i64, cb.w as i64, cb.h as i64],
            ints(&c["crop_xywh"]),
            "{what}"
        );
        let u8crop = crop(&img, cb);
        assert_eq!(
            sha256(&u8crop.data),
            c["crop_sha256"].as_str().unwrap(),
            "{what}"
        );
        let input = spec.transform.apply(&u8crop);
        let bytes: Vec<u8> = input.data.iter().flat_map(|v| v.to_le_bytes()).collect();
        assert_eq!(
            sha256(&bytes),
            c["input_sha256"].as_str().unwrap(),
            "{what}"
        );
    }
}

#[test]
fn fixture_embeddings_equal_the_numpy_maths_at_every_batch_size() {
    let exp = expected();
    let spec = spec();
    let img = refaug::decode::decode_file(
        &root()
            .join("sample/refcocog/images")
            .join(exp["crops"][0]["file_name"].as_str().unwrap()),
    )
    .unwrap();
    let inputs: Vec<_> = exp["crops"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            let b: Vec<f32> = floats(&c["box_xyxy"]).iter().map(|&v| v as f32).collect();
            let cb = CropBox::from_xyxy(&BoxXyxy::from_array([b[0], b[1], b[2], b[3]])).unwrap();
            spec.transform.apply(&crop(&img, cb))
        })
        .collect();
    let refs: Vec<_> = inputs.iter().collect();
    let t = ClipTokenizer::shared();
    let sentences: Vec<&Value> = exp["sentences"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| !s["too_long"].as_bool().unwrap())
        .collect();
    let tokens: Vec<[i64; CONTEXT_LENGTH]> = sentences
        .iter()
        .map(|s| t.tokenize(s["sent"].as_str().unwrap(), false).unwrap().ids)
        .collect();
    type Embeddings = Vec<Vec<f32>>;
    let mut first: Option<(Embeddings, Embeddings)> = None;
    for batch in [1, 3, 64] {
        let mut enc = encoder(batch);
        let images = enc.encode_images(&refs).unwrap();
        let texts = enc.encode_texts(&tokens).unwrap();
        for (got, c) in images.iter().zip(exp["crops"].as_array().unwrap()) {
            for (g, w) in got.iter().zip(floats(&c["embedding"])) {
                assert!(
                    (f64::from(*g) - w).abs() <= 1e-6 * w.abs().max(1.0),
                    "{} {g} vs {w}",
                    c["what"]
                );
            }
        }
        for (got, s) in texts.iter().zip(&sentences) {
            for (g, w) in got.iter().zip(floats(&s["embedding"])) {
                assert!((f64::from(*g) - w).abs() <= 1e-6 * w.abs().max(1.0), "{s}");
            }
        }
        // Grouping never changes a row: every batch size gives the batch-1 floats exactly.
        match &first {
            None => first = Some((images, texts)),
            Some((i1, t1)) => assert!(*i1 == images && *t1 == texts, "batch {batch}"),
        }
    }
}

#[test]
fn encoder_refuses_wrong_hash_and_wrong_dimension() {
    let dir = tempfile::tempdir().unwrap();
    let text = std::fs::read_to_string(root().join("encoders/fixture-clip.toml")).unwrap();
    let abs = |p: &str| {
        root()
            .join("tests/data/models")
            .join(p)
            .display()
            .to_string()
    };
    let base = text
        .replace(
            "../tests/data/models/clip_image.onnx",
            &abs("clip_image.onnx"),
        )
        .replace(
            "../tests/data/models/clip_text.onnx",
            &abs("clip_text.onnx"),
        );
    let write = |name: &str, body: &str| -> PathBuf {
        let p = dir.path().join(name);
        std::fs::write(&p, body).unwrap();
        p
    };
    let bad_hash = write(
        "hash.toml",
        &base.replace("e6e915e1c6716375", "0000000000000000"),
    );
    let e = Encoder::new(
        EncoderSpec::from_file(&bad_hash).unwrap(),
        &RuntimeOptions::default(),
    )
    .unwrap_err();
    assert!(
        refaug::error_chain(&e).contains("hash.toml") && refaug::error_chain(&e).contains("sha256"),
        "{}",
        refaug::error_chain(&e)
    );
    let bad_dim = write("dim.toml", &base.replace("dim = 16", "dim = 1024"));
    let e = Encoder::new(
        EncoderSpec::from_file(&bad_dim).unwrap(),
        &RuntimeOptions::default(),
    )
    .unwrap_err();
    assert!(matches!(e, EncodeError::ModelIo { .. }), "{e}");
    assert!(
        refaug::error_chain(&e).contains("dim = 1024"),
        "{}",
        refaug::error_chain(&e)
    );
}
