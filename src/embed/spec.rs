//! Encoder specs: `encoders/<name>.toml`, validated into what the code uses.
//!
//! A spec says what a CLIP encoder pair *is* (two ONNX files and their hashes, input size,
//! normalisation, embedding dimension, what it was trained on); how a run uses it (device,
//! threads, batch size) is `runtime::RuntimeOptions`, as for detectors.
//!
//! ```toml
//! name = "clip-rn50"
//! image_model = "../models/clip_rn50_openai_image.onnx"   # relative to this file
//! image_model_sha256 = "unknown"                          # 64 hex digits or "unknown"
//! text_model = "../models/clip_rn50_openai_text.onnx"
//! text_model_sha256 = "unknown"
//! dim = 1024                                              # embedding size of both towers
//! trained_on = "OpenAI CLIP's WebImageText (400M pairs)"
//! # optional, OpenAI CLIP's values by default:
//! input_size = 224
//! mean = [0.48145466, 0.4578275, 0.40821073]
//! std = [0.26862954, 0.26130258, 0.27577711]
//! description = "..."
//! export = "python tools/export_clip.py --checkpoint RN50.pt --out models"
//! ```

use std::path::{Path, PathBuf};

use crate::detect::spec::{ModelHash, SpecError, is_spec_name, lexical_join, verify_model_file};
use crate::preprocess::clip::{CLIP_MEAN, CLIP_STD, ClipTransform};

/// The wire form of an encoder spec.
#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct EncoderWire {
    name: String,
    image_model: PathBuf,
    image_model_sha256: String,
    text_model: PathBuf,
    text_model_sha256: String,
    dim: usize,
    trained_on: String,
    input_size: Option<usize>,
    mean: Option<[f32; 3]>,
    std: Option<[f32; 3]>,
    description: Option<String>,
    export: Option<String>,
}

/// One ONNX file of an encoder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModelFile {
    pub path: PathBuf,
    pub sha256: ModelHash,
}

/// A validated encoder spec.
#[derive(Debug, Clone, PartialEq)]
pub struct EncoderSpec {
    /// The encoder's name (recorded in the embeddings' metadata).
    pub name: String,
    /// The spec file it was read from (errors name it).
    pub spec_path: PathBuf,
    pub image_model: ModelFile,
    pub text_model: ModelFile,
    /// Embedding size of both towers.
    pub dim: usize,
    pub trained_on: String,
    /// Crop pre-processing: input side, mean, std.
    pub transform: ClipTransform,
    pub description: Option<String>,
    pub export: Option<String>,
}

impl EncoderSpec {
    /// Read and validate `path`.
    pub fn from_file(path: &Path) -> Result<EncoderSpec, SpecError> {
        let text = fs_err::read_to_string(path)?;
        EncoderSpec::from_toml_str(&text, path)
    }

    /// Validate `text` as the spec file `path` (model paths resolve against its folder).
    pub fn from_toml_str(text: &str, path: &Path) -> Result<EncoderSpec, SpecError> {
        let w: EncoderWire = toml::from_str(text).map_err(|e| SpecError::Parse {
            path: path.to_path_buf(),
            source: Box::new(e),
        })?;
        let invalid = |key: &'static str, message: String| SpecError::Invalid {
            path: path.to_path_buf(),
            key,
            message,
        };
        if !is_spec_name(&w.name) {
            return Err(invalid(
                "name",
                format!("{:?}: use letters, digits and . _ @ - only", w.name),
            ));
        }
        let hash = |key: &'static str, h: &str| {
            ModelHash::parse(h).ok_or_else(|| {
                invalid(key, format!("{h:?}: expected 64 hex digits or \"unknown\""))
            })
        };
        let dir = path.parent().unwrap_or(Path::new("."));
        let image_model = ModelFile {
            path: lexical_join(dir, &w.image_model),
            sha256: hash("image_model_sha256", &w.image_model_sha256)?,
        };
        let text_model = ModelFile {
            path: lexical_join(dir, &w.text_model),
            sha256: hash("text_model_sha256", &w.text_model_sha256)?,
        };
        if w.dim == 0 {
            return Err(invalid("dim", "must be at least 1".into()));
        }
        if w.trained_on.trim().is_empty() {
            return Err(invalid("trained_on", "must not be empty".into()));
        }
        let size = w.input_size.unwrap_or(224);
        if size == 0 {
            return Err(invalid("input_size", "must be at least 1".into()));
        }
        let std = w.std.unwrap_or(CLIP_STD);
        if std.iter().any(|s| !(s.is_finite() && *s > 0.0)) {
            return Err(invalid("std", format!("{std:?}: every value must be > 0")));
        }
        let mean = w.mean.unwrap_or(CLIP_MEAN);
        if mean.iter().any(|m| !m.is_finite()) {
            return Err(invalid("mean", format!("{mean:?}: must be finite")));
        }
        Ok(EncoderSpec {
            name: w.name,
            spec_path: path.to_path_buf(),
            image_model,
            text_model,
            dim: w.dim,
            trained_on: w.trained_on,
            transform: ClipTransform { size, mean, std },
            description: w.description,
            export: w.export,
        })
    }

    /// Check both model files (present, pinned hash matches); returns (image, text) sha256.
    pub fn verify_models(&self) -> Result<(String, String), SpecError> {
        let check = |m: &ModelFile| {
            verify_model_file(&self.spec_path, &m.path, &m.sha256, self.export.as_deref())
        };
        Ok((check(&self.image_model)?, check(&self.text_model)?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"
name = "clip"
image_model = "../models/i.onnx"
image_model_sha256 = "unknown"
text_model = "t.onnx"
text_model_sha256 = "ABCDEF0123456789abcdef0123456789abcdef0123456789abcdef0123456789"
dim = 1024
trained_on = "x"
"#;

    #[test]
    fn defaults_and_paths() {
        let s = EncoderSpec::from_toml_str(GOOD, Path::new("encoders/clip.toml")).unwrap();
        assert_eq!(s.image_model.path, PathBuf::from("models/i.onnx"));
        assert_eq!(s.text_model.path, PathBuf::from("encoders/t.onnx"));
        assert_eq!(s.transform, ClipTransform::OPENAI_224);
        assert_eq!(
            s.text_model.sha256,
            ModelHash::Pinned(
                "abcdef0123456789abcdef0123456789abcdef0123456789abcdef0123456789".into()
            )
        );
    }

    #[test]
    fn refuses_bad_values_naming_the_key() {
        for (from, to, key) in [
            ("dim = 1024", "dim = 0", "dim"),
            (
                "image_model_sha256 = \"unknown\"",
                "image_model_sha256 = \"abc\"",
                "image_model_sha256",
            ),
            ("dim = 1024", "dim = 1024\nstd = [1.0, 0.0, 1.0]", "std"),
            ("dim = 1024", "dim = 1024\nbatch = 3", "batch"),
        ] {
            let e = EncoderSpec::from_toml_str(&GOOD.replace(from, to), Path::new("e.toml"))
                .unwrap_err();
            assert!(crate::error_chain(&e).contains(key), "{key}: {e}");
        }
    }
}
