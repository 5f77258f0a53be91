//! A CLIP encoder pair at work: the spec's two ONNX models in ONNX Runtime sessions, checked
//! at start-up (sha256, inputs and outputs), run in batches.
//!
//! Sessions, device handling and the sha256 check are the detectors' ([`runtime`],
//! [`EncoderSpec::verify_models`] → `detect::spec::verify_model_file`), as are the reading of
//! declared model IO ([`declared`]), the batch axis ([`BatchAxis`]) and the stacking of inputs
//! into one batch ([`stack_nchw`]). What is CLIP's own: `image` float32 `[batch, 3, S, S]` →
//! `embedding` float32 `[batch, D]`, `tokens` int64 `[batch, 77]` → `embedding` `[batch, D]`.
//! Results never depend on how inputs were grouped into calls (the order is kept; ONNX Runtime's
//! CPU kernels give the same embedding for a row at any batch size on the reference encoders).

use ort::session::Session;
use ort::value::{TensorElementType, TensorRef};

use crate::detect::detector::BatchAxis;
use crate::detect::runtime::{RuntimeError, RuntimeOptions, declared, runtime};
use crate::detect::spec::SpecError;
use crate::embed::spec::EncoderSpec;
use crate::embed::text::CONTEXT_LENGTH;
use crate::preprocess::Chw;
use crate::preprocess::tensor::stack_nchw;

/// Errors of building and running an encoder; every message names the encoder's spec.
#[derive(Debug, thiserror::Error)]
pub enum EncodeError {
    #[error(transparent)]
    Spec(#[from] SpecError),
    #[error("encoder {spec}")]
    Runtime {
        spec: String,
        #[source]
        source: RuntimeError,
    },
    #[error("encoder {spec}: {tower} model {model} does not fit: {detail}")]
    ModelIo {
        spec: String,
        tower: &'static str,
        model: String,
        detail: String,
    },
    #[error("encoder {spec}: running the {tower} model failed")]
    Run {
        spec: String,
        tower: &'static str,
        #[source]
        source: ort::Error,
    },
    #[error("encoder {spec}: {tower} model returned shape {shape:?}; expected [{rows}, {dim}]")]
    OutputShape {
        spec: String,
        tower: &'static str,
        shape: Vec<i64>,
        rows: usize,
        dim: usize,
    },
    #[error("encoder {spec}: {tower} model returned NaN or infinite values")]
    NonFinite { spec: String, tower: &'static str },
}

/// Which tower.
#[derive(Debug, Clone, Copy)]
enum Tower {
    Image,
    Text,
}

impl Tower {
    fn name(self) -> &'static str {
        match self {
            Tower::Image => "image",
            Tower::Text => "text",
        }
    }
}

/// One validated model of the pair.
struct Model {
    session: Session,
    input: String,
    output: String,
    /// Most rows per call (1 when the batch axis is fixed to 1).
    batch_limit: usize,
}

/// Both towers, ready to run.
pub struct Encoder {
    spec: EncoderSpec,
    image: Model,
    text: Model,
    image_sha256: String,
    text_sha256: String,
    stack: Vec<f32>,
}

impl std::fmt::Debug for Encoder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Encoder")
            .field("spec", &self.spec)
            .finish_non_exhaustive()
    }
}

impl Encoder {
    /// Check both models' sha256, open their sessions with `opts`, validate their IO.
    pub fn new(spec: EncoderSpec, opts: &RuntimeOptions) -> Result<Encoder, EncodeError> {
        let (image_sha256, text_sha256) = spec.verify_models()?;
        let label = spec.spec_path.display().to_string();
        let rt = runtime().map_err(|source| EncodeError::Runtime {
            spec: label.clone(),
            source,
        })?;
        let open = |tower: Tower| -> Result<Model, EncodeError> {
            let file = match tower {
                Tower::Image => &spec.image_model.path,
                Tower::Text => &spec.text_model.path,
            };
            let session = rt
                .session(file, opts)
                .map_err(|source| EncodeError::Runtime {
                    spec: label.clone(),
                    source,
                })?;
            validate(&spec, tower, session, opts.max_batch.max(1)).map_err(|detail| {
                EncodeError::ModelIo {
                    spec: label.clone(),
                    tower: tower.name(),
                    model: file.display().to_string(),
                    detail,
                }
            })
        };
        let image = open(Tower::Image)?;
        let text = open(Tower::Text)?;
        Ok(Encoder {
            spec,
            image,
            text,
            image_sha256,
            text_sha256,
            stack: Vec::new(),
        })
    }

    /// The spec this encoder was built from.
    pub fn spec(&self) -> &EncoderSpec {
        &self.spec
    }

    /// The most crops per image-encoder call (`max_batch`, or 1 for a fixed batch axis).
    pub fn image_batch_limit(&self) -> usize {
        self.image.batch_limit
    }

    /// The sha256 of the image and text model files that were loaded.
    pub fn model_sha256(&self) -> (&str, &str) {
        (&self.image_sha256, &self.text_sha256)
    }

    /// Embeddings of model inputs made by [`crate::preprocess::clip::ClipTransform::apply`], in
    /// order, `max_batch` per call.
    pub fn encode_images(&mut self, inputs: &[&Chw]) -> Result<Vec<Vec<f32>>, EncodeError> {
        let s = self.spec.transform.size;
        let mut out = Vec::with_capacity(inputs.len());
        for chunk in inputs.chunks(self.image.batch_limit) {
            assert!(
                chunk.iter().all(|t| (t.height, t.width) == (s, s)),
                "inputs of the spec's size"
            );
            let (shape, data) = stack_nchw(&mut self.stack, chunk);
            let tensor =
                TensorRef::from_array_view((shape, data)).map_err(|source| EncodeError::Run {
                    spec: self.spec.spec_path.display().to_string(),
                    tower: Tower::Image.name(),
                    source,
                })?;
            let rows = run(
                &mut self.image,
                tensor,
                &self.spec,
                Tower::Image,
                chunk.len(),
            )?;
            out.extend(rows);
        }
        Ok(out)
    }

    /// Embeddings of `clip.tokenize` rows, in order, `max_batch` per call.
    pub fn encode_texts(
        &mut self,
        tokens: &[[i64; CONTEXT_LENGTH]],
    ) -> Result<Vec<Vec<f32>>, EncodeError> {
        let mut out = Vec::with_capacity(tokens.len());
        for chunk in tokens.chunks(self.text.batch_limit) {
            let flat: Vec<i64> = chunk.iter().flatten().copied().collect();
            let tensor = TensorRef::from_array_view(([chunk.len(), CONTEXT_LENGTH], &flat[..]))
                .map_err(|e| self.run_error(Tower::Text, e))?;
            let rows = run(&mut self.text, tensor, &self.spec, Tower::Text, chunk.len())?;
            out.extend(rows);
        }
        Ok(out)
    }

    fn run_error(&self, tower: Tower, source: ort::Error) -> EncodeError {
        EncodeError::Run {
            spec: self.spec.spec_path.display().to_string(),
            tower: tower.name(),
            source,
        }
    }
}

/// One call: `rows` inputs → `rows` embeddings of the spec's dimension, all finite.
fn run<T: ort::value::PrimitiveTensorElementType + std::fmt::Debug>(
    model: &mut Model,
    tensor: TensorRef<'_, T>,
    spec: &EncoderSpec,
    tower: Tower,
    rows: usize,
) -> Result<Vec<Vec<f32>>, EncodeError> {
    let label = || spec.spec_path.display().to_string();
    let err = |source| EncodeError::Run {
        spec: label(),
        tower: tower.name(),
        source,
    };
    let outputs = model
        .session
        .run(ort::inputs![model.input.as_str() => tensor])
        .map_err(err)?;
    let value = outputs
        .get(model.output.as_str())
        .expect("the output validated at start-up");
    let (shape, data) = value.try_extract_tensor::<f32>().map_err(err)?;
    if shape.len() != 2 || shape[0] != rows as i64 || shape[1] != spec.dim as i64 {
        return Err(EncodeError::OutputShape {
            spec: label(),
            tower: tower.name(),
            shape: shape.to_vec(),
            rows,
            dim: spec.dim,
        });
    }
    if !data.iter().all(|v| v.is_finite()) {
        return Err(EncodeError::NonFinite {
            spec: label(),
            tower: tower.name(),
        });
    }
    Ok(data.chunks_exact(spec.dim).map(<[f32]>::to_vec).collect())
}

/// The tower's one input and one output against the spec.
fn validate(
    spec: &EncoderSpec,
    tower: Tower,
    session: Session,
    max_batch: usize,
) -> Result<Model, String> {
    let ([input], [output]) = (session.inputs(), session.outputs()) else {
        return Err(format!(
            "expected one input and one output, found {} and {}",
            session.inputs().len(),
            session.outputs().len()
        ));
    };
    let i = declared(input.name(), input.dtype())?;
    let s = spec.transform.size;
    let (want_ty, want_dims, layout) = match tower {
        Tower::Image => (
            TensorElementType::Float32,
            vec![None, Some(3), Some(s), Some(s)],
            format!("Float32 [batch, 3, {s}, {s}]"),
        ),
        Tower::Text => (
            TensorElementType::Int64,
            vec![None, Some(CONTEXT_LENGTH)],
            format!("Int64 [batch, {CONTEXT_LENGTH}]"),
        ),
    };
    let fits = i.ty == want_ty
        && i.dims.len() == want_dims.len()
        && want_dims
            .iter()
            .enumerate()
            .all(|(k, w)| w.is_none_or(|n| i.fits(k, n)));
    if !fits {
        return Err(format!(
            "input `{}` is {}; expected {layout}",
            input.name(),
            i.show()
        ));
    }
    let batch_limit = BatchAxis::of(&i.dims[0])
        .ok_or_else(|| {
            format!(
                "input `{}` is {}: a fixed batch other than 1 is not supported",
                input.name(),
                i.show()
            )
        })?
        .limit(max_batch);
    let o = declared(output.name(), output.dtype())?;
    if o.ty != TensorElementType::Float32 || o.dims.len() != 2 || !o.fits(1, spec.dim) {
        return Err(format!(
            "output `{}` is {}; expected Float32 [batch, dim = {}]",
            output.name(),
            o.show(),
            spec.dim
        ));
    }
    let (input, output) = (input.name().to_string(), output.name().to_string());
    Ok(Model {
        session,
        input,
        output,
        batch_limit,
    })
}
