//! Write: the output schema (one home for it) and Parquet shards, atomically committed.
