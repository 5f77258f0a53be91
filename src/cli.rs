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
    let _ = (specs, device, threads);
    anyhow::bail!("not yet")
}
