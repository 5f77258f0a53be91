"""The research's heads over frozen CLIP embeddings (`training-research.md` §4).

Every head ranks a ref's candidate crops by the mean over the ref's sentences of the cosine similarity between
(transformed) sentence and crop embeddings (report cells 103-109, 142-143, 156-158). The research looped over
refs in Python; here a batch is padded: `crops` [B, K, D] with `crop_mask` [B, K] and `sents` [B, S, D] with
`sent_mask` [B, S] (True = real). Padded candidates get logit -inf, padded sentences are left out of the mean,
so each ref's logits equal the unbatched computation.
"""

from __future__ import annotations

import math
from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

SfNet = Literal["net1", "net2", "net3", "net4"]
CLIP_DIM = 1024


def _l2(x: Tensor, mask: Tensor) -> Tensor:
    """x / x.norm(dim=-1, keepdim=True) (the research's normalisation, no epsilon) on real rows; padded rows
    are set to ones first so that neither they nor their gradients become NaN."""
    x = torch.where(mask.unsqueeze(-1), x, torch.ones_like(x))
    return x / x.norm(dim=-1, keepdim=True)


def mean_cosine_logits(img_z: Tensor, crop_mask: Tensor, txt_z: Tensor, sent_mask: Tensor) -> Tensor:
    """`(normalize(txt) @ normalize(img).T).mean(0)` per ref: [B, K] logits, -inf at padded candidates.

    Computed as `mean_s(normalize(txt_s)) · img_k / |img_k|`, the same sum regrouped (the mean over
    sentences is linear): the normalised crops [B, K, D] are never materialised, which is most of the
    memory traffic of an H1 step (float results equal up to rounding)."""
    t = _l2(txt_z, sent_mask)
    w = sent_mask.to(t.dtype).unsqueeze(-1)
    t_mean = (t * w).sum(1) / w.sum(1)  # [B, D]
    dot = torch.bmm(img_z, t_mean.unsqueeze(-1)).squeeze(-1)  # [B, K]
    # padded candidates: norm 1 instead of (possibly) 0, so that nothing becomes NaN; they get -inf below
    norm = torch.linalg.vector_norm(img_z, dim=-1).masked_fill(~crop_mask, 1.0)
    return (dot / norm).masked_fill(~crop_mask, float("-inf"))


def on_rows(f: nn.Module, x: Tensor, mask: Tensor) -> Tensor:
    """`f` (row-wise: Linear, ReLU, ...) applied to the real rows of a padded batch x [B, K, D] only, zeros in
    the padding; when nothing is padded, to the whole batch at once (no copy)."""
    if bool(mask.all()):
        return f(x)
    y = f(x[mask])
    out = y.new_zeros((*mask.shape, y.shape[-1]))
    out[mask] = y
    return out


class RankingHead(nn.Module):
    """A head that scores candidate crops against a ref's sentences."""

    def forward(self, crops: Tensor, crop_mask: Tensor, sents: Tensor, sent_mask: Tensor) -> Tensor:
        raise NotImplementedError


class ZeroShot(RankingHead):
    """The training-free baseline (§4.4, `ClipWrapper`): raw frozen embeddings, mean cosine, argmax. (CLIP's
    logit scale 100 multiplies every score alike and does not change the argmax.)"""

    def forward(self, crops: Tensor, crop_mask: Tensor, sents: Tensor, sent_mask: Tensor) -> Tensor:
        return mean_cosine_logits(crops, crop_mask, sents, sent_mask)


def _sf_branches(net: SfNet, d: int) -> tuple[nn.Module, nn.Module]:
    """Image and text branches of ClipSf (§4.1 table); ReLU applied directly to the CLIP embedding."""
    if net == "net1":
        return nn.Sequential(nn.ReLU(), nn.Linear(d, d)), nn.Identity()
    if net in ("net2", "net3"):
        img = nn.Sequential(
            nn.ReLU(), nn.Linear(d, 512), nn.ReLU(), nn.Linear(512, 256), nn.ReLU(), nn.Linear(256, d)
        )
        act: type[nn.Module] = nn.ReLU if net == "net2" else nn.Sigmoid
        txt = nn.Sequential(act(), nn.Linear(d, 512), act(), nn.Linear(512, 256), act(), nn.Linear(256, d))
        return img, txt
    if net == "net4":
        return nn.Sequential(nn.ReLU(), nn.Linear(d, 512)), nn.Sequential(nn.ReLU(), nn.Linear(d, 512))
    raise ValueError(f"unknown ClipSf variant {net!r} (net1, net2, net3, net4)")


class ClipSf(RankingHead):
    """H1, standard fine-tuning (§4.1): logits = mean over sentences of cos(txt_head(t), img_head(c)); no
    temperature; trained with cross-entropy against the max-IoU candidate. The branches run on the real
    rows only (`on_rows`): padding costs no arithmetic."""

    def __init__(self, net: SfNet = "net1", dim: int = CLIP_DIM) -> None:
        super().__init__()
        self.net = net
        self.img_head, self.txt_head = _sf_branches(net, dim)

    def forward(self, crops: Tensor, crop_mask: Tensor, sents: Tensor, sent_mask: Tensor) -> Tensor:
        img = on_rows(self.img_head, crops, crop_mask)
        return mean_cosine_logits(img, crop_mask, on_rows(self.txt_head, sents, sent_mask), sent_mask)


LN_100 = math.log(100.0)


class ClipFlyp(RankingHead):
    """H2, FLYP (§4.2): ReLU -> Dropout(p) -> Linear(D, D) on each side and a learnable logit scale (init
    ln(1/0.07), clamped to [0, ln 100] after each optimizer step). `p=0` is the plain run (no Dropout layer:
    Dropout(0) is the identity). At evaluation it ranks like H1 (mean cosine, logit scale unused)."""

    def __init__(self, p: float = 0.5, dim: int = CLIP_DIM, normalize: bool = False) -> None:
        super().__init__()
        self.img_head = nn.Sequential(nn.ReLU(), nn.Dropout(p), nn.Linear(dim, dim))
        self.txt_head = nn.Sequential(nn.ReLU(), nn.Dropout(p), nn.Linear(dim, dim))
        self.logit_scale = nn.Parameter(torch.tensor(math.log(1 / 0.07)))
        self.normalize = normalize

    def forward(self, crops: Tensor, crop_mask: Tensor, sents: Tensor, sent_mask: Tensor) -> Tensor:
        img = on_rows(self.img_head, crops, crop_mask)
        return mean_cosine_logits(img, crop_mask, on_rows(self.txt_head, sents, sent_mask), sent_mask)

    def embed_pairs(self, img: Tensor, txt: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """(img_z [B, D], txt_z [B, D], logit_scale.exp()) for B (crop, sentence) pairs."""
        img_z, txt_z = self.img_head(img), self.txt_head(txt)
        if self.normalize:
            img_z, txt_z = F.normalize(img_z, dim=-1), F.normalize(txt_z, dim=-1)
        return img_z, txt_z, self.logit_scale.exp()

    def clamp_(self) -> None:
        """`logit_scale.clamp_(0, ln 100)`, after every optimizer step."""
        with torch.no_grad():
            self.logit_scale.clamp_(0.0, LN_100)


def clip_loss(img_z: Tensor, txt_z: Tensor, scale: Tensor) -> Tensor:
    """Symmetric InfoNCE (report cell 146, `ClipLoss`): mean of CE(s·I·Tᵀ, arange) and CE(s·T·Iᵀ, arange);
    in-batch negatives only, no label smoothing; no normalisation here (the research's; see ClipFlyp).
    The research computed s·T·Iᵀ as a second product; it is the transpose of s·I·Tᵀ (as open_clip takes
    it), which saves a third of the loss's matrix products, forward and backward."""
    labels = torch.arange(img_z.shape[0], device=img_z.device)
    logits_i = scale * img_z @ txt_z.T
    return (F.cross_entropy(logits_i, labels) + F.cross_entropy(logits_i.T, labels)) / 2


class ClipContex(RankingHead):
    """H3, self-attention context (§4.3): one nn.MultiheadAttention(D, 1 head) over [crops; sentences] of a
    ref (no residual, norm or position), then H1's mean-cosine scoring on the contextualised vectors. Padding
    is masked out of the keys; without positions the order of the sequence does not matter."""

    def __init__(self, dim: int = CLIP_DIM, num_heads: int = 1) -> None:
        super().__init__()
        self.attn = nn.MultiheadAttention(embed_dim=dim, num_heads=num_heads, batch_first=True)

    def forward(self, crops: Tensor, crop_mask: Tensor, sents: Tensor, sent_mask: Tensor) -> Tensor:
        k = crops.shape[1]
        seq = torch.cat([crops, sents], dim=1)
        valid = torch.cat([crop_mask, sent_mask], dim=1)
        ctx, _ = self.attn(seq, seq, seq, key_padding_mask=~valid, need_weights=False)
        return mean_cosine_logits(ctx[:, :k], crop_mask, ctx[:, k:], sent_mask)


def ranking_loss(logits: Tensor, target: Tensor) -> Tensor:
    """H1/H3 loss (report cell 111): cross-entropy of each ref's logits against its target, mean over refs."""
    return F.cross_entropy(logits, target)


HeadKind = Literal["sf", "flyp", "contex", "zero-shot"]


def make_head(
    kind: HeadKind, dim: int, net: SfNet = "net1", dropout: float = 0.5, normalize: bool = False
) -> RankingHead:
    """The head of `kind` with the research's defaults (§5: net1; FLYP dropout 0.5, "solve overfitting")."""
    if kind == "sf":
        return ClipSf(net, dim)
    if kind == "flyp":
        return ClipFlyp(dropout, dim, normalize)
    if kind == "contex":
        return ClipContex(dim)
    if kind == "zero-shot":
        return ZeroShot()
    raise ValueError(f"unknown head {kind!r}")
