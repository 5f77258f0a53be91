//! The command line: parse, run, map the outcome to an exit code.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[derive(Parser, Debug)]
#[command(
    name = "refaug",
    version,
    about = "Box-augmented referring-expression datasets"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Check the ONNX Runtime installation: library path, version, execution providers.
    Doctor {
        /// Print one JSON object instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Detector specs (`detectors/*.toml`).
    Detectors {
        #[command(subcommand)]
        command: DetectorsCommand,
    },
}

#[derive(Subcommand, Debug)]
pub enum DetectorsCommand {
    /// Load each spec, check the model's sha256, open a session, validate the model's inputs and
    /// outputs, run one synthetic image and print a summary.
    Check {
        /// Spec files.
        #[arg(required = true)]
        specs: Vec<std::path::PathBuf>,
        /// `cpu` or `cuda[:N]`.
        #[arg(long, default_value = "cpu")]
        device: String,
        /// Intra-op threads of the session.
        #[arg(long, default_value_t = 1)]
        threads: usize,
    },
}

pub fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(code) => code,
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::from(2)
        }
    }
}

fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Doctor { json } => doctor(json),
        Command::Detectors {
            command:
                DetectorsCommand::Check {
                    specs,
                    device,
                    threads,
                },
        } => detectors_check(&specs, &device, threads),
    }
}

/// `refaug doctor`: load ONNX Runtime the way every run does and say what was loaded.
fn doctor(json: bool) -> anyhow::Result<ExitCode> {
    let rt = crate::detect::runtime::runtime()?;
    if json {
        let v = serde_json::json!({
            "library": rt.library_path(),
            "library_source": rt.library_source(),
            "version": rt.version(),
            "providers": rt.providers(),
            "ort_api_version": ort::MINOR_VERSION,
        });
        println!("{}", serde_json::to_string_pretty(&v)?);
    } else {
        println!(
            "ONNX Runtime library: {} (found via {})",
            rt.library_path().display(),
            rt.library_source()
        );
        println!("ONNX Runtime version: {}", rt.version());
        println!("execution providers: {}", rt.providers().join(", "));
        let cuda = rt
            .providers()
            .iter()
            .any(|p| p == crate::detect::runtime::CUDA_PROVIDER);
        println!(
            "--device cuda: {}",
            if cuda {
                "available (CUDA execution provider compiled in)"
            } else {
                "not available (CPU-only build)"
            }
        );
    }
    Ok(ExitCode::SUCCESS)
}

fn detectors_check(
    specs: &[std::path::PathBuf],
    device: &str,
    threads: usize,
) -> anyhow::Result<ExitCode> {
    use crate::detect::runtime::{Device, RuntimeOptions};
    let opts = RuntimeOptions {
        device: device.parse::<Device>()?,
        intra_threads: threads.max(1),
        ..RuntimeOptions::default()
    };
    let (mut ready, mut absent, mut failed) = (0, 0, 0);
    for path in specs {
        match check_one_spec(path, &opts) {
            Ok(()) => ready += 1,
            Err(e) => {
                let is_absent = matches!(
                    e.downcast_ref::<crate::detect::spec::SpecError>(),
                    Some(crate::detect::spec::SpecError::ModelMissing { .. })
                );
                if is_absent {
                    absent += 1;
                    println!("  {e}");
                } else {
                    failed += 1;
                    println!("  FAILED: {e:#}");
                }
            }
        }
    }
    println!("{ready} ready, {absent} model not present, {failed} failed");
    Ok(if absent + failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

/// One spec of `detectors check`: prints what it checked, fails on the first problem.
fn check_one_spec(
    path: &std::path::Path,
    opts: &crate::detect::runtime::RuntimeOptions,
) -> anyhow::Result<()> {
    use crate::detect::detector::{BatchAxis, Detector};
    use crate::detect::spec::{DetectorSpec, ModelHash};

    println!("{}", path.display());
    let spec = DetectorSpec::from_file(path)?;
    println!(
        "  {} ({} family), model {}",
        spec.name,
        format!("{:?}", spec.family()).to_lowercase(),
        spec.model_path.display()
    );
    println!(
        "  trained on {}; has seen the evaluation images: {}",
        spec.trained_on,
        if spec.sees_eval_images { "yes" } else { "no" }
    );
    let actual = spec.verify_model_sha256()?;
    match &spec.model_sha256 {
        ModelHash::Pinned(_) => println!("  sha256 {actual} (matches the spec)"),
        ModelHash::Unknown => println!(
            "  sha256 {actual} (the spec says \"unknown\"; pin it: model_sha256 = \"{actual}\")"
        ),
    }
    let mut detector = Detector::new(spec, opts)?;
    println!(
        "  session on {} with {} intra-op thread(s); inputs and outputs fit the family; batch axis {}",
        opts.device,
        opts.intra_threads,
        match detector.batch_axis() {
            BatchAxis::Dynamic => "dynamic",
            BatchAxis::One => "1",
        }
    );
    let img = synthetic_check_image();
    let start = std::time::Instant::now();
    let dets = detector.detect(&[&img])?.remove(0);
    let ms = start.elapsed().as_secs_f64() * 1e3;
    let spec = detector.spec();
    let best = dets.first().map_or_else(
        || "none".to_string(),
        |d| {
            format!(
                "{} {:.3} at [{:.1}, {:.1}, {:.1}, {:.1}]",
                spec.classes.name(d.class_id).unwrap_or("?"),
                d.score,
                d.bbox.xmin,
                d.bbox.ymin,
                d.bbox.xmax,
                d.bbox.ymax
            )
        },
    );
    println!(
        "  synthetic {}x{} image: {} box(es) above {} in {ms:.1} ms; best: {best}",
        img.width(),
        img.height(),
        dets.len(),
        spec.score_threshold
    );
    Ok(())
}

/// A 640×480 test scene (gradient background, a few flat rectangles): enough structure for a
/// detector to produce something, the same on every machine.
fn synthetic_check_image() -> image::RgbImage {
    image::RgbImage::from_fn(640, 480, |x, y| {
        let rects: [(u32, u32, u32, u32, [u8; 3]); 3] = [
            (60, 80, 260, 400, [200, 40, 40]),
            (320, 60, 600, 220, [30, 90, 200]),
            (360, 280, 520, 450, [240, 220, 60]),
        ];
        for (x0, y0, x1, y1, c) in rects {
            if (x0..x1).contains(&x) && (y0..y1).contains(&y) {
                return image::Rgb(c);
            }
        }
        image::Rgb([(x * 255 / 640) as u8, (y * 255 / 480) as u8, 128])
    })
}
