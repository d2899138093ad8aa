"""Shared-prefix text encoding: both suffix-attention formulations agree, and no host read per call."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from albench.clip import text_prefix


def _reference_attention(qs, ks, vs, kp, vp):
    """Plain per-prompt causal attention over the full [prefix; own] sequence (the definition)."""
    c, s, h, d = qs.shape
    p = kp.shape[0]
    out = []
    for i in range(c):
        q = torch.cat([kp.new_zeros(p, h, d), qs[i]])  # prefix queries are not compared
        k, v = torch.cat([kp, ks[i]]), torch.cat([vp, vs[i]])
        o = F.scaled_dot_product_attention(q.transpose(0, 1), k.transpose(0, 1), v.transpose(0, 1), is_causal=True)
        out.append(o.transpose(0, 1)[p:])
    return torch.stack(out)


@pytest.mark.parametrize("fn", ["_suffix_attention_bmm", "_suffix_attention_sdpa"])
def test_suffix_attention_equals_full_causal_attention(fn):
    """Two learners (R = 2), each with its own prefix: every suffix sees its own learner's prefix only."""
    g = torch.Generator().manual_seed(0)
    r, c, s, p, h, d = 2, 5, 4, 7, 3, 8
    qs, ks, vs = (torch.randn(r, c, s, h, d, generator=g) for _ in range(3))
    kp, vp = (torch.randn(r, p, h, d, generator=g) for _ in range(2))
    mask = torch.zeros(s, p + s)
    mask[:, p:] = torch.full((s, s), float("-inf")).triu_(1)
    got = getattr(text_prefix, fn)(qs, ks, vs, kp, vp, mask)
    assert got.shape == (r, c, s, h, d)
    for j in range(r):
        assert torch.allclose(got[j], _reference_attention(qs[j], ks[j], vs[j], kp[j], vp[j]), atol=1e-5)


def test_suffix_length_is_read_on_the_host_once_per_eot_buffer(monkeypatch):
    eot = torch.tensor([20, 22, 19])
    assert text_prefix._suffix_length(eot, 17) == 6
    monkeypatch.setattr(torch.Tensor, "item", lambda self: (_ for _ in ()).throw(AssertionError("host read")))
    assert text_prefix._suffix_length(eot, 17) == 6  # remembered: no .item()
    monkeypatch.undo()
    eot[1] = 25  # an in-place change invalidates the remembered value
    assert text_prefix._suffix_length(eot, 17) == 9
    with pytest.raises(ValueError, match="after the shared prefix"):
        text_prefix._suffix_length(torch.tensor([3, 30]), 17)
