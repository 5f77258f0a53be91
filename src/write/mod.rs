//! Write: the output schema (its one home) and Parquet shards, committed atomically.
