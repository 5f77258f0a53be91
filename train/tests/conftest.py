from pathlib import Path

import pytest

from refaug_train.features import EmbeddingShards
from refaug_train.shards import Refs, read_refs
from refaug_train.synthetic import make_variant


@pytest.fixture(scope="session")
def synthetic(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Refs, EmbeddingShards]:
    v = make_variant(tmp_path_factory.mktemp("variant"), {"train": 192, "val": 48})
    return v, read_refs(v), EmbeddingShards(v / "embeddings")
