"""The three views read from hand-built shards (proposals contract + embedding shards)."""

import numpy as np
import pyarrow.parquet as pq
import pytest
import torch

from refaug_train import datasets as D
from refaug_train.features import EmbeddingShards, write_embedding_shard
from refaug_train.shards import ShardError, read_refs
from refaug_train.synthetic import proposal_row, write_proposal_shard

GT = [0.0, 0.0, 100.0, 100.0]
BIG = ([0.0, 0.0, 80.0, 100.0], 0.9)  # IoU 0.8
HALF = ([0.0, 0.0, 50.0, 100.0], 0.9)  # IoU 0.5
SMALL = ([0.0, 0.0, 16.0, 100.0], 0.9)  # width exactly 16: dropped
FAINT = ([0.0, 0.0, 90.0, 100.0], 0.25)  # confidence exactly 0.25: dropped


def e(v):  # a 2-d embedding
    return [float(v), float(-v)]


def build(tmp_path, embed_rows=None):
    rows = [
        proposal_row(1, "train", GT, [SMALL, BIG, FAINT, HALF], ["a", "b"]),  # kept [1, 3], target 0
        proposal_row(2, "train", GT, [BIG], ["c"]),  # one kept: no training item
        proposal_row(3, "train", GT, [HALF, HALF], ["d"]),  # best IoU exactly 0.5: no training item
        proposal_row(4, "train", GT, [], ["e"], size=(320, 200)),  # nothing: fallback at evaluation
        proposal_row(5, "val", GT, [HALF, BIG, BIG], ["f"]),  # tie: target 1
    ]
    write_proposal_shard(tmp_path / "train-00000-of-00001.parquet", rows[:4])
    write_proposal_shard(tmp_path / "val-00000-of-00001.parquet", rows[4:])
    emb = tmp_path / "emb"
    emb.mkdir()

    def erow(rid, index, n_sent):
        return {
            "ref_id": rid,
            "gt_embedding": e(rid * 100),
            "image_embedding": e(rid * 100 + 99),
            "proposal_index": index,
            "proposal_embeddings": [e(rid * 100 + k) for k in index],
            "sentence_embeddings": [e(rid * 100 + 50 + s) for s in range(n_sent)],
        }

    write_embedding_shard(
        emb / "all.parquet",
        embed_rows
        or [erow(1, [1, 3], 2), erow(2, [0], 1), erow(3, [0, 1], 1), erow(4, [], 1), erow(5, [0, 1, 2], 1)],
    )
    return read_refs(tmp_path), EmbeddingShards(emb)


def crops_of(ds, i):
    a, b = int(ds.crops.offsets[i]), int(ds.crops.offsets[i + 1])
    return ds.crops.values[a:b].tolist()


def test_training_view(tmp_path):
    refs, src = build(tmp_path)
    tr = D.ranking_train(refs, src, "train")
    assert tr.ref_id.tolist() == [1] and tr.target.tolist() == [0]
    assert crops_of(tr, 0) == [e(101), e(103)]  # kept proposals 1 and 3, in stored order
    va = D.ranking_train(refs, src, "val")
    assert va.ref_id.tolist() == [5] and va.target.tolist() == [1]  # tie between kept 1 and 2: the first


def test_evaluation_view_keeps_every_ref_with_the_whole_image_fallback(tmp_path):
    refs, src = build(tmp_path)
    ev = D.ranking_eval(refs, src, "train")
    assert ev.ref_id.tolist() == [1, 2, 3, 4]
    assert ev.fallback.tolist() == [False, False, False, True]
    assert crops_of(ev, 3) == [e(499)]  # the whole-image embedding
    a = int(ev.boxes.offsets[3])
    assert ev.boxes.values[a].tolist() == [0.0, 0.0, 320.0, 200.0]
    assert ev.gt_emb[0].tolist() == e(100)
    assert ev.target.tolist() == [0, 0, 0, 0]  # the best candidate (ties: first), no threshold
    b = ev.__getitems__([0, 3])  # padded: 2 candidates and 1 candidate; 2 sentences and 1
    assert b.crops.shape == (2, 2, 2) and b.crop_mask.tolist() == [[True, True], [True, False]]
    assert b.sent_mask.tolist() == [[True, True], [True, False]]
    assert b.crops[1, 1].tolist() == [0.0, 0.0]


def test_contrastive_view_and_limit(tmp_path):
    refs, src = build(tmp_path)
    c = D.contrastive(refs, src, "train")
    assert c.ref_id.tolist() == [1, 2, 3, 4]
    assert c.img.tolist() == [e(100), e(200), e(300), e(400)]
    assert c.txt[0].tolist() == e(150)  # the first sentence
    assert D.contrastive(refs, src, "train", limit=2).ref_id.tolist() == [1, 2]
    assert D.ranking_eval(refs, src, None, limit=1).ref_id.tolist() == [1]


def test_a_missing_embedding_names_the_file_and_ref(tmp_path):
    rows = [
        {
            "ref_id": 1,
            "gt_embedding": e(1),
            "image_embedding": e(1),
            "proposal_index": [1],  # proposal 3 is kept but not embedded
            "proposal_embeddings": [e(1)],
            "sentence_embeddings": [e(1), e(2)],
        }
    ]
    refs, src = build(tmp_path, rows)
    with pytest.raises(ShardError, match=r"all\.parquet: ref 1: kept proposals \[3\] have no embedding"):
        D.ranking_eval(refs, src, "train", limit=1)
    with pytest.raises(ShardError, match=r"train-00000-of-00001\.parquet: ref 2 has no row"):
        D.contrastive(refs, src, "train")


def test_no_shard_is_an_error(tmp_path):
    with pytest.raises(ShardError, match="no shard"):
        read_refs(tmp_path)


def test_dataloader_gives_whole_batches(tmp_path):
    refs, src = build(tmp_path)
    ev = D.ranking_eval(refs, src, None)
    loader = torch.utils.data.DataLoader(ev, batch_size=2, collate_fn=D.unbatched)
    sizes = [len(b.index) for b in loader]
    assert sizes == [2, 2, 1]
    assert np.array_equal(next(iter(loader)).index.numpy(), [0, 1])


def test_a_ref_whose_image_was_unreadable_names_the_image_and_the_reason(tmp_path):
    # What `refaug embed` writes for an image it could not read (tests/embed_run.rs checks that side):
    # null image-side columns, the sentences still embedded, the failure in the shard's metadata.
    unread = {
        "ref_id": 2,
        "gt_embedding": None,
        "image_embedding": None,
        "proposal_index": None,
        "proposal_embeddings": None,
        "sentence_embeddings": [e(250)],
    }
    ok = {
        "ref_id": 1,
        "gt_embedding": e(100),
        "image_embedding": e(199),
        "proposal_index": [1, 3],
        "proposal_embeddings": [e(101), e(103)],
        "sentence_embeddings": [e(150), e(151)],
    }
    failure = {
        "shard": "train-00000-of-00001.parquet",
        "image_id": 2,
        "file_name": "COCO_train2014_000000000002.jpg",
        "ref_ids": [2],
        "reason": "not a JPEG",
    }
    refs, src = build(tmp_path, [unread, ok])
    emb = tmp_path / "emb" / "all.parquet"
    write_embedding_shard(emb, pq.read_table(emb).to_pylist(), [failure])
    src = EmbeddingShards(tmp_path / "emb")
    assert src.dim == 2  # from the schema, although the first row is null
    assert D.ranking_train(refs, src, "train", limit=1).ref_id.tolist() == [1]  # ref 1 reads fine
    with pytest.raises(
        ShardError,
        match=r"all\.parquet: ref 2 has no image embeddings: `refaug embed` recorded image 2 "
        r"\(COCO_train2014_000000000002\.jpg\) could not be read: not a JPEG; fix the image",
    ):
        D.ranking_eval(refs, src, "train")
    with pytest.raises(ShardError, match=r"ref 2 has no image embeddings"):
        D.contrastive(refs, src, "train")
