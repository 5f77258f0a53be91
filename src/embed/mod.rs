//! `refaug embed`: frozen CLIP embeddings of every crop and sentence of a variant, beside its
//! proposal shards (`../shared/docs/training-research.md` §3, §8).

pub mod encoder;
pub mod filter;
pub mod run;
pub mod schema;
pub mod spec;
pub mod text;
pub mod verify;
