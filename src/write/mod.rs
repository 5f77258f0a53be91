//! Write: the output schema (its one home), rows, Parquet shards committed atomically, and
//! the verification of written shards.
//!
//! [`schema`] is the contract; [`atomic`] makes files appear whole; [`row`] builds the rows and converts them to Arrow; [`shard`]
//! writes and reads one Parquet file; [`verify`] checks a file against the contract.

pub mod atomic;
pub mod manifest;
pub mod row;
pub mod schema;
pub mod shard;
pub mod verify;
