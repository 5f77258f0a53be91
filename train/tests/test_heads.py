"""Each head's forward and loss against values computed by hand on small tensors (§4)."""

import math

import pytest
import torch
from torch import nn

from refaug_train.heads import (
    LN_100,
    ClipContex,
    ClipFlyp,
    ClipSf,
    ZeroShot,
    clip_loss,
    mean_cosine_logits,
    ranking_loss,
)

T = torch.tensor


def one(x):  # [K, D] -> a batch of one with an all-true mask
    return x.unsqueeze(0), torch.ones(1, x.shape[0], dtype=torch.bool)


def test_mean_cosine_hand_computed():
    # crops (1,0) and (1,1); sentences (1,0) and (0,2)
    # cos: s0.c0 = 1, s0.c1 = 1/sqrt2, s1.c0 = 0, s1.c1 = 1/sqrt2 -> mean over sentences: [0.5, 1/sqrt2]
    crops, cm = one(T([[1.0, 0.0], [1.0, 1.0]]))
    sents, sm = one(T([[1.0, 0.0], [0.0, 2.0]]))
    logits = ZeroShot()(crops, cm, sents, sm)
    torch.testing.assert_close(logits, T([[0.5, 1 / math.sqrt(2)]]))


def test_padding_changes_nothing():
    # ref 0: 2 crops, 1 sentence; ref 1: 3 crops, 2 sentences; padded rows are garbage
    crops = T([[[1.0, 0.0], [0.0, 1.0], [9.0, 9.0]], [[1.0, 1.0], [2.0, 0.0], [0.0, 3.0]]])
    cm = T([[True, True, False], [True, True, True]])
    sents = T([[[3.0, 4.0], [7.0, 7.0]], [[1.0, 0.0], [0.0, 1.0]]])
    sm = T([[True, False], [True, True]])
    logits = mean_cosine_logits(crops, cm, sents, sm)
    # ref 0: sentence (0.6, 0.8) -> [0.6, 0.8, -inf]; ref 1: mean of cos with (1,0) and (0,1)
    # crop (1,1): (1/sqrt2 + 1/sqrt2)/2; crop (2,0): (1 + 0)/2; crop (0,3): (0 + 1)/2
    r = 1 / math.sqrt(2)
    torch.testing.assert_close(logits, T([[0.6, 0.8, float("-inf")], [r, 0.5, 0.5]]))


def set_linear(lin: nn.Linear, w, b):
    with torch.no_grad():
        lin.weight.copy_(T(w))
        lin.bias.copy_(T(b))


def test_sf_net1_forward_and_loss():
    m = ClipSf("net1", dim=2)
    # image branch: ReLU then Linear with W = [[0,1],[1,0]] (swap), b = 0; text branch: identity
    set_linear(m.img_head[1], [[0.0, 1.0], [1.0, 0.0]], [0.0, 0.0])
    crops, cm = one(T([[-1.0, 2.0], [3.0, 0.0]]))  # ReLU -> (0,2), (3,0); swap -> (2,0), (0,3)
    sents, sm = one(T([[1.0, 0.0]]))
    logits = m(crops, cm, sents, sm)
    torch.testing.assert_close(logits, T([[1.0, 0.0]]))
    # CE against target 1: -log(e^0 / (e^1 + e^0)) = log(1 + e)
    loss = ranking_loss(logits, T([1]))
    assert loss.item() == pytest.approx(math.log(1 + math.e), rel=1e-6)


@pytest.mark.parametrize(
    ("net", "params"), [("net1", 1_049_600), ("net2", 1_838_592), ("net3", 1_838_592), ("net4", 1_049_600)]
)
def test_sf_parameter_counts_match_the_research(net, params):
    assert sum(p.numel() for p in ClipSf(net).parameters()) == params


def test_flyp_loss_hand_computed():
    # img = I, txt = I (2x2), scale 1: logits = I; CE row-wise = log(e + 1) - 1 for each row, both directions
    loss = clip_loss(torch.eye(2), torch.eye(2), T(1.0))
    assert float(loss) == pytest.approx(math.log(math.e + 1) - 1, rel=1e-6)
    # not normalised: img (2,0),(0,1), txt I, scale 2: logits_i = [[4,0],[0,2]], logits_t = its transpose
    # CE_i = mean(log(e^4+1)-4, log(1+e^2)-2) = CE_t
    loss = clip_loss(T([[2.0, 0.0], [0.0, 1.0]]), torch.eye(2), T(2.0))
    want = (math.log(math.exp(4) + 1) - 4 + math.log(1 + math.exp(2)) - 2) / 2
    assert float(loss) == pytest.approx(want, rel=1e-6)


def test_flyp_embed_pairs_and_scale():
    m = ClipFlyp(p=0.5, dim=2)
    assert sum(p.numel() for p in ClipFlyp().parameters()) == 2_099_201
    assert m.logit_scale.item() == pytest.approx(math.log(1 / 0.07))
    set_linear(m.img_head[2], [[2.0, 0.0], [0.0, 2.0]], [0.0, 1.0])
    set_linear(m.txt_head[2], [[1.0, 0.0], [0.0, 1.0]], [0.0, 0.0])
    m.eval()  # dropout inactive
    img, txt, s = m.embed_pairs(T([[1.0, -1.0]]), T([[-2.0, 3.0]]))
    torch.testing.assert_close(img, T([[2.0, 1.0]]))
    torch.testing.assert_close(txt, T([[0.0, 3.0]]))
    assert s.item() == pytest.approx(1 / 0.07, rel=1e-6)
    m.normalize = True
    img, txt, _ = m.embed_pairs(T([[1.0, -1.0]]), T([[-2.0, 3.0]]))
    torch.testing.assert_close(img, T([[2.0, 1.0]]) / math.sqrt(5))
    torch.testing.assert_close(txt, T([[0.0, 1.0]]))
    with torch.no_grad():
        m.logit_scale.fill_(7.0)
    m.clamp_()
    assert m.logit_scale.item() == pytest.approx(LN_100)
    with torch.no_grad():
        m.logit_scale.fill_(-1.0)
    m.clamp_()
    assert m.logit_scale.item() == 0.0


def test_flyp_dropout_is_active_in_training():
    torch.manual_seed(0)
    m = ClipFlyp(p=0.5, dim=64)
    x = torch.ones(4, 64)
    m.train()
    assert not torch.equal(m.img_head[:2](x), x)
    m.eval()
    assert torch.equal(m.img_head[:2](x), x)


def test_contex_forward_hand_computed():
    # single head, D=2: identity q/k/v/out projections, zero biases -> ctx = softmax(S Sᵀ/sqrt(2)) S
    m = ClipContex(dim=2)
    assert sum(p.numel() for p in ClipContex().parameters()) == 4_198_400
    with torch.no_grad():
        m.attn.in_proj_weight.copy_(torch.cat([torch.eye(2)] * 3))
        m.attn.in_proj_bias.zero_()
        m.attn.out_proj.weight.copy_(torch.eye(2))
        m.attn.out_proj.bias.zero_()
    crops, cm = one(T([[1.0, 0.0], [0.0, 1.0]]))
    sents, sm = one(T([[1.0, 0.0]]))
    # sequence x0=(1,0), x1=(0,1), x2=(1,0); scores/sqrt2: row for (1,0): [a, 0, a], a = 1/sqrt2
    a = 1 / math.sqrt(2)
    e = math.exp(a)
    # ctx(1,0) = (2e*(1,0) + 1*(0,1)) / (2e + 1); ctx(0,1) = (2*(1,0) + e*(0,1)) / (2 + e)
    c0 = T([2 * e, 1.0]) / (2 * e + 1)
    c1 = T([2.0, e]) / (2 + e)
    s0 = c0  # the sentence equals crop 0
    cos = torch.nn.functional.cosine_similarity
    want = T([[float(cos(s0, c0, dim=0)), float(cos(s0, c1, dim=0))]])
    # the same numbers by hand: cos(c0, c0) = 1; cos(c0, c1) = (4e + e)/(|c0'| |c1'|) with unscaled vectors
    assert want[0, 1] == pytest.approx((4 * e + e) / (math.hypot(2 * e, 1) * math.hypot(2, e)), rel=1e-6)
    m.eval()
    torch.testing.assert_close(m(crops, cm, sents, sm), want)
    # padding a second ref's worth of garbage does not change ref 0
    crops2 = torch.cat([crops, T([[[5.0, 5.0], [1.0, 2.0]]])])
    cm2 = T([[True, True], [True, False]])
    sents2 = torch.cat([sents, T([[[3.0, 1.0]]])])
    out = m(crops2, cm2, sents2, torch.ones(2, 1, dtype=torch.bool))
    torch.testing.assert_close(out[:1], want)
    assert out[1, 1] == float("-inf")


@pytest.mark.parametrize("net", ["net1", "net2", "net3", "net4"])
def test_sf_padded_batch_equals_one_ref_at_a_time_with_gradients(net):
    """The branches run on real rows only (`on_rows`): a padded batch gives each ref's unbatched logits and
    the same weight gradient as the sum of the per-ref ones."""
    torch.manual_seed(0)
    m = ClipSf(net, dim=8)
    refs = [(torch.randn(k, 8), torch.randn(s, 8), t) for k, s, t in ((3, 1, 2), (1, 2, 0), (2, 3, 1))]
    crops = torch.full((3, 3, 8), 7.0)  # garbage in the padding
    sents = torch.full((3, 3, 8), -5.0)
    cm, sm = torch.zeros(3, 3, dtype=torch.bool), torch.zeros(3, 3, dtype=torch.bool)
    for i, (c, s, _) in enumerate(refs):
        crops[i, : len(c)], cm[i, : len(c)] = c, True
        sents[i, : len(s)], sm[i, : len(s)] = s, True
    logits = m(crops, cm, sents, sm)
    ranking_loss(logits, torch.tensor([t for *_, t in refs])).backward()
    batched = {k: p.grad.clone() for k, p in m.named_parameters()}
    m.zero_grad()
    for i, (c, s, t) in enumerate(refs):
        one_logits = m(*one(c), *one(s))
        torch.testing.assert_close(logits[i, : len(c)], one_logits[0])
        assert torch.isinf(logits[i, len(c) :]).all()
        (ranking_loss(one_logits, torch.tensor([t])) / len(refs)).backward()
    for k, p in m.named_parameters():
        torch.testing.assert_close(batched[k], p.grad, msg=k)


def test_flyp_loss_takes_the_transpose_for_the_text_side():
    """CE over s·T·Iᵀ computed as the research did (a second product) equals the transposed form."""
    torch.manual_seed(1)
    img, txt, s = torch.randn(5, 4), torch.randn(5, 4), torch.tensor(3.0)
    labels = torch.arange(5)
    research = (
        torch.nn.functional.cross_entropy(s * img @ txt.T, labels)
        + torch.nn.functional.cross_entropy(s * txt @ img.T, labels)
    ) / 2
    torch.testing.assert_close(clip_loss(img, txt, s), research)
