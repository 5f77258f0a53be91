//! The command line: parse, run, map the outcome to an exit code.

use std::path::PathBuf;
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
    /// Count images, refs, sentences and categories per split and check the dataset source
    /// (exit 0 healthy, 1 problems found, 2 error).
    Inspect {
        /// The manifest; only its `[dataset]` part is used.
        #[arg(long, default_value = "data-manifest.toml")]
        manifest: PathBuf,
        /// Print a JSON object instead of the table.
        #[arg(long)]
        json: bool,
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
        Command::Inspect { manifest, json } => inspect(&manifest, json),
    }
}

fn inspect(manifest: &std::path::Path, json: bool) -> anyhow::Result<ExitCode> {
    let source = crate::manifest::Manifest::load_dataset_only(manifest)?;
    eprintln!(
        "reading {} and {}",
        source.instances_path().display(),
        source.refs_path().display()
    );
    let report = crate::dataset::InspectReport::run(&source)?;
    if json {
        println!("{}", serde_json::to_string_pretty(&report.to_json())?);
    } else {
        print!("{}", report.to_text());
    }
    Ok(if report.healthy() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}
