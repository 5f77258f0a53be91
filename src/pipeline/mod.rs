//! The pipeline: read → decode → detect → write, wired with bounded queues.

pub mod journal;
pub mod plan;
