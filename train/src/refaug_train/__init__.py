"""Train and evaluate the research's three CLIP grounding heads from refaug's Parquet shards.

The recipe is the research's (`training-research.md`): filters (§2), heads (§4), hyper-parameters (§5),
evaluation (§6). Data flow: `shards` (rows) -> `filters` (the three views) -> `features` (embeddings)
-> `datasets` (packed tensors) -> `heads` -> `train` / `evaluate` -> `report`.
"""

__version__ = "0.1.0"
