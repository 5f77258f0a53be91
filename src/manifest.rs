//! `data-manifest.toml`: what the job is (dataset, variants, output, run defaults).
