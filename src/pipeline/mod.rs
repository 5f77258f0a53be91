//! The pipeline: read → decode → detect → write, wired with bounded queues ([`run`]), planned in
//! output-shard units ([`plan`]), made resumable by the output folder's records ([`journal`]) and
//! completed into per-variant manifests ([`merge`]).

pub mod journal;
pub mod merge;
pub mod plan;
pub mod run;
