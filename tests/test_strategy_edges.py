"""ALFA-Mix, BADGE, CEC and PCB at their edges: thresholds, boundaries, fills, options and fallbacks.

Each test pins one rule on a constructed input whose right answer is known by hand or by a naive
re-computation written here from the papers' definitions (see docs/testing.md); none calls the code under
test to get its expected value.
"""

import copy
import warnings

import numpy as np
import pytest

from albench.api.errors import AlbenchError
from albench.api.plugins import STRATEGIES
from albench.api.strategy import check_selection
from helpers import ctx_from, direct_alfamix_candidates


def naive_entropy(logits):
    z = np.asarray(logits, dtype=np.float64)
    p = np.exp(z - z.max(1, keepdims=True))
    p /= p.sum(1, keepdims=True)
    return -np.array([sum(x * np.log(x) for x in row if x > 0) for row in p])


def fallback_total(ctx):
    """Picks counted as fallbacks; every reason must be a non-empty text."""
    assert all(isinstance(k, str) and k for k in ctx.fallbacks), ctx.fallbacks
    return sum(ctx.fallbacks.values())


# ----------------------------------------------------------------------------- alfa-mix: flip thresholds


def naive_prediction_along_gradient(z, p, w, t):
    """argmax of (z + t ĝ)Wᵀ, ĝ the normalised ∇_z CE(zWᵀ, ŷ) ∝ (p − e_ŷ)W (the paper's mixing direction)."""
    yhat = int(np.argmax(z @ w.T))
    g = (p - np.eye(len(w))[yhat]) @ w
    return int(np.argmax((z + t * g / np.linalg.norm(g)) @ w.T))


def test_flip_threshold_is_the_first_step_that_changes_the_prediction():
    """t* is where argmax (z + t ĝ)Wᵀ first leaves ŷ: ŷ just below t*, another class just above, and ŷ for
    every step when t* = ∞. Classes close to ŷ (b < 1) and a duplicate of a class row are included."""
    from albench_strategies.alfamix import flip_thresholds

    rng = np.random.default_rng(0)
    w = rng.normal(size=(6, 3))
    w[5] = w[2]  # class 5 ties class 2 for every z: it can never beat it (argmax takes the lower index)
    w /= np.linalg.norm(w, axis=1, keepdims=True)
    z = rng.normal(size=(80, 3))
    z /= np.linalg.norm(z, axis=1, keepdims=True)
    logits = 5 * z @ w.T
    p = np.exp(logits - logits.max(1, keepdims=True))
    p /= p.sum(1, keepdims=True)
    tstar, yhat = flip_thresholds(z, p, w)
    assert yhat.tolist() == (z @ w.T).argmax(1).tolist()
    assert np.isfinite(tstar).sum() > 10 and (2 in yhat.tolist())
    for i in range(len(z)):
        y = yhat[i]
        if np.isfinite(tstar[i]):
            assert naive_prediction_along_gradient(z[i], p[i], w, tstar[i] * (1 - 1e-7)) == y, i
            assert naive_prediction_along_gradient(z[i], p[i], w, tstar[i] * (1 + 1e-7)) != y, i
        else:
            for t in (1.0, 1e3, 1e6):
                assert naive_prediction_along_gradient(z[i], p[i], w, t) == y, i


def test_flip_threshold_ignores_a_class_tied_with_the_prediction():
    """W rows 0 and 1 equal: class 1 never wins, so t* comes from class 2 alone. By hand, ĝ = (−1, 1)/√2
    and class 2 overtakes class 0 at t* = (z₀ − z₁)/√2."""
    from albench_strategies.alfamix import flip_thresholds

    w = np.array([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0]])
    z = np.array([[0.8, 0.6]])
    p = np.array([[0.5, 0.3, 0.2]])
    tstar, yhat = flip_thresholds(z, p, w)
    assert yhat.tolist() == [0]
    assert tstar[0] == pytest.approx(0.2 / np.sqrt(2), rel=1e-12)


def test_flip_threshold_of_a_sample_without_gradient_is_infinite():
    """p exactly one-hot at ŷ: the CE gradient is zero, the sample never moves (t* = ∞, not NaN), and
    that is handled without numerical warnings."""
    from albench_strategies.alfamix import flip_thresholds

    w = np.eye(3)
    z = np.array([[0.9, 0.3, 0.1], [0.1, 0.2, 0.9], [0.6, 0.7, 0.1]])
    p = np.array([[1.0, 0.0, 0.0], [0.0, 0.0, 1.0], [0.3, 0.5, 0.2]])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        tstar, _ = flip_thresholds(z, p, w)
    assert tstar[0] == np.inf and tstar[1] == np.inf and np.isfinite(tstar[2])


def test_anchor_reach_is_the_largest_anchor_distance():
    """reach = max_c ‖z*_c − z‖ (naive distances, all below 1 here)."""
    from albench_strategies.alfamix import anchor_reach

    z = np.array([[0.1, 0.2], [0.3, -0.1], [0.0, 0.0]])
    anchors = np.array([[0.2, 0.2], [0.1, 0.5], [-0.2, 0.1]])
    naive = [max(np.sqrt(((a - x) ** 2).sum()) for a in anchors) for x in z]
    assert np.allclose(anchor_reach(z, anchors), naive, rtol=1e-12, atol=0)


def test_anchor_reach_of_a_sample_on_every_anchor_is_zero():
    """A sample equal to every anchor cannot move: reach 0 (never NaN from rounding below zero)."""
    from albench_strategies.alfamix import anchor_reach

    rng = np.random.default_rng(0)
    z = rng.normal(size=(60, 5))
    z /= np.linalg.norm(z, axis=1, keepdims=True)
    for i in range(len(z)):
        r = anchor_reach(z[i : i + 1], np.repeat(z[i : i + 1], 3, axis=0))
        assert np.isfinite(r[0]) and r[0] < 1e-6, (i, r)


def test_flips_at_needs_a_step_strictly_beyond_the_threshold():
    """Flip iff ε·reach > t*, ε = cap/√D: a step that only reaches the tie point (or a zero step) keeps ŷ."""
    from albench_strategies.alfamix import flips_at

    # D = 4, cap 1: ε = 1/2
    tstar = np.array([0.5, 0.0, 0.49, np.inf])
    reach = np.array([1.0, 0.0, 1.0, 1.0])
    assert flips_at(tstar, reach, 1.0, 4).tolist() == [False, False, True, False]


# ----------------------------------------------------------------------------- alfa-mix: strategy


def naive_anchors(feats, labels, c):
    return np.array([feats[labels == k].mean(0) if (labels == k).any() else feats.mean(0) for k in range(c)])


def alfamix_small_pool(budget):
    """40 samples, 4 classes, every 5th labelled (true label = its prediction). Reference candidate counts
    per cap step: 6 (cap 0.2), 15 (0.4), 23, 28, 29 (cap 1.0)."""
    rng = np.random.default_rng(0)
    w = rng.normal(size=(4, 8))
    w /= np.linalg.norm(w, axis=1, keepdims=True)
    z = rng.normal(size=(40, 8))
    z /= np.linalg.norm(z, axis=1, keepdims=True)
    lab = np.arange(0, 40, 5)
    return ctx_from(
        20 * z @ w.T, z, classifier=w.astype(np.float32), labeled=lab, labels=(z[lab] @ w.T).argmax(1), budget=budget
    )


def reference_candidate_counts(ctx):
    u = ctx.unlabeled
    w = ctx.classifier.astype(np.float64)
    anchors = naive_anchors(ctx.features[ctx.labeled].astype(np.float64), ctx.labels, ctx.num_classes)
    masks = [direct_alfamix_candidates(ctx.features[u], ctx.probs[u], w, anchors, cap) for cap in (0.2, 0.4, 0.6)]
    return masks


@pytest.mark.timeout(30)
def test_alfamix_cap_grows_until_more_than_the_budget():
    """B = |candidates at cap 0.2| = 6 is not *more* than B, so the cap grows to 0.4 (15 candidates)."""
    ctx = alfamix_small_pool(budget=6)
    masks = reference_candidate_counts(ctx)
    assert [int(m.sum()) for m in masks[:2]] == [6, 15]
    got = STRATEGIES.get("alfamix")().candidates(ctx)
    assert got.tolist() == np.flatnonzero(masks[0] | masks[1]).tolist()


@pytest.mark.timeout(30)
def test_alfamix_takes_all_few_candidates_and_counts_the_random_fill():
    """29 candidates at cap 1.0 < B = 31: every candidate is picked, 2 random fills are counted."""
    ctx = alfamix_small_pool(budget=31)
    u = ctx.unlabeled
    anchors = naive_anchors(ctx.features[ctx.labeled].astype(np.float64), ctx.labels, ctx.num_classes)
    w = ctx.classifier.astype(np.float64)
    cand = u[direct_alfamix_candidates(ctx.features[u], ctx.probs[u], w, anchors, 1.0)]
    assert cand.size == 29
    out = check_selection("alfamix", STRATEGIES.get("alfamix")().select(ctx), ctx)
    assert set(cand.tolist()) <= set(out.tolist())
    assert fallback_total(ctx) == 2


def no_flip_pool(labeled, budget):
    """12 samples whose probabilities are exactly one-hot at the classifier's prediction: no gradient, so no
    ALFA-Mix candidate at any cap."""
    y = np.arange(12) % 3
    feats = np.eye(3, 4)[y] + 0.1 * np.eye(4)[3]
    logits = 1000.0 * np.eye(3)[y]
    return ctx_from(logits, feats, labeled=labeled, labels=y[list(labeled)], budget=budget, seed=1)


def test_alfamix_without_candidates_fills_every_pick_at_random_without_replacement():
    """No candidate: all B picks are random unlabelled samples, distinct (B = |U| forces every one)."""
    for seed in range(3):
        ctx = no_flip_pool(labeled=[0, 1, 2], budget=9)
        ctx.rng = np.random.default_rng(seed)
        assert STRATEGIES.get("alfamix")().candidates(ctx).size == 0
        out = STRATEGIES.get("alfamix")().select(ctx)
        assert np.issubdtype(out.dtype, np.integer)
        assert sorted(out.tolist()) == list(range(3, 12))
        assert fallback_total(ctx) == 9


def test_alfamix_needs_at_least_one_labelled_sample():
    """Anchors come from labelled samples: none is a clear error, a single one is enough."""
    with pytest.raises(AlbenchError, match="alfamix needs labelled samples"):
        STRATEGIES.get("alfamix")().select(no_flip_pool(labeled=[], budget=2))
    ctx = no_flip_pool(labeled=[4], budget=2)
    out = check_selection("alfamix", STRATEGIES.get("alfamix")().select(ctx), ctx)
    assert len(out) == 2


# ----------------------------------------------------------------------------- badge


def test_badge_factorised_distance_holds_for_features_of_any_norm():
    """‖g_r − g_c‖² and ‖g‖² with g = (e_ŷ − p) ⊗ f, f not unit-norm: equal to the explicit embedding's."""
    from albench_strategies.badge import badge_distance, badge_factors

    rng = np.random.default_rng(0)
    p = rng.dirichlet(np.ones(4), size=20)
    f = rng.normal(size=(20, 6)) * rng.uniform(0.2, 3.0, size=(20, 1))
    g = ((np.eye(4)[p.argmax(1)] - p)[:, :, None] * f[:, None, :]).reshape(20, -1)
    qn, sq_to = badge_distance(*badge_factors(p, f))
    assert np.allclose(qn.numpy(), (g**2).sum(1), rtol=1e-6, atol=0)
    explicit = ((g[:, None, :] - g[None, :, :]) ** 2).sum(-1)
    assert np.abs(sq_to(np.arange(20), np.arange(20)) - explicit).max() < 1e-4 * explicit.max()


def test_badge_distance_runs_on_the_given_device():
    """Both factors go to ``device``: on ``meta`` the norms come back as meta tensors (no CPU mix-up)."""
    from albench_strategies.badge import badge_distance, badge_factors

    p = np.array([[0.7, 0.3], [0.4, 0.6]])
    qn, _ = badge_distance(*badge_factors(p, np.eye(2)), device="meta")
    assert qn.device.type == "meta"


def test_badge_fills_duplicate_gradients_at_random_and_counts_them():
    """Every gradient embedding identical (p = (½, ½), same f, exact in float32): after the first pick all
    D² are 0, so the remaining B − 1 picks are distinct random fills, counted as fallbacks."""
    logits = np.zeros((6, 2))
    feats = np.tile([[1.0, 0, 0]], (6, 1))
    seen = set()
    for seed in range(4):
        ctx = ctx_from(logits, feats, labeled=[0], labels=[0], budget=3, seed=seed)
        out = check_selection("badge", STRATEGIES.get("badge")().select(ctx), ctx)
        assert out[0] == 1  # argmax ‖g‖ over ties: the first unlabelled sample
        assert fallback_total(ctx) == 2
        seen.update(out[1:].tolist())
    assert seen <= {2, 3, 4, 5} and len(seen) > 2


# ----------------------------------------------------------------------------- cec


def test_cec_class_mean_calibration_edges():
    """H̃ = H / mean H of the predicted class: a class mean below 1 scales up; a class whose entropies are
    all zero (mean 0) stays 0 rather than 0/0."""
    from albench_strategies.cec import calibrate

    h = np.array([0.25, 0.75, 0.0, 0.0, 0.1])
    yhat = np.array([0, 0, 1, 1, 2])
    out = calibrate(h, yhat, "class-mean")
    assert np.allclose(out, [0.5, 1.5, 0.0, 0.0, 1.0], rtol=1e-12, atol=0)


def test_cec_class_rank_breaks_ties_by_pool_order():
    """Tied entropies within a class get consecutive ranks in pool order (deterministic, like lowest_k)."""
    from albench_strategies.cec import calibrate

    h = np.array([1.0, 0.0, 1.0, 0.0, 1.0, 0.0, 1.0, 0.0, 1.0, 0.0, 0.5, 1.0, 0.0, 1.0, 0.0, 1.0, 0.0])
    yhat = np.zeros(len(h), dtype=int)
    order = sorted(range(len(h)), key=lambda i: (h[i], i))
    naive = np.empty(len(h))
    naive[order] = np.arange(1, len(h) + 1) / len(h)
    assert calibrate(h, yhat, "class-rank").tolist() == naive.tolist()


def test_cec_unknown_calibration_names_the_choices():
    from albench_strategies.cec import calibrate

    with pytest.raises(AlbenchError, match="calibration='platt' is not one of class-mean, class-rank, none"):
        calibrate(np.ones(3), np.zeros(3, int), "platt")


def naive_cec_uncertainty(logits, feats, k, beta, combination):
    """U = H + β·H_NN (sum) or H·H_NN (product), calibration none; H_NN the mean H of the k nearest others
    (L2-normalised features, brute force)."""
    h = naive_entropy(logits)
    f = np.asarray(feats, dtype=np.float64)
    f = f / np.linalg.norm(f, axis=1, keepdims=True)
    d = ((f[:, None, :] - f[None, :, :]) ** 2).sum(-1)
    np.fill_diagonal(d, np.inf)
    h_nn = np.array([h[np.argsort(row)[:k]].mean() for row in d])
    return h + beta * h_nn if combination == "sum" else h * h_nn


def test_cec_product_combination_multiplies():
    f = np.array([[1, 0, 0], [1, 0.01, 0], [1, -0.02, 0], [0, 1, 0], [0.01, 1, 0], [-0.02, 1, 0]])
    logits = np.array([[0, 0], [5, 0], [2, 0], [0, 5], [1, 0], [0, 3]], dtype=float)
    ctx = ctx_from(logits, f, budget=2)
    u = STRATEGIES.get("cec")(k=2, calibration="none", combination="product").uncertainty(ctx)
    assert np.allclose(u, naive_cec_uncertainty(logits, f, 2, 1.0, "product"), rtol=1e-5, atol=1e-7)


def test_cec_uncertainty_with_one_or_two_unlabelled_samples():
    """One unlabelled sample is its own neighbourhood (U = H + β·H); two are each other's neighbour."""
    logits = np.array([[3, 0], [0, 3], [1, 0], [0.2, 0]])
    feats = np.array([[1, 0], [0, 1], [1, 1], [1, -1]])
    h = naive_entropy(logits)
    one = ctx_from(logits[:3], feats[:3], labeled=[0, 1], labels=[0, 1], budget=1)
    u1 = STRATEGIES.get("cec")(calibration="none", beta=0.5).uncertainty(one)
    assert np.allclose(u1, [1.5 * h[2]], rtol=1e-6)
    two = ctx_from(logits, feats, labeled=[0, 1], labels=[0, 1], budget=1)
    u2 = STRATEGIES.get("cec")(calibration="none", beta=0.5).uncertainty(two)
    assert np.allclose(u2, [h[2] + 0.5 * h[3], h[3] + 0.5 * h[2]], rtol=1e-6)


def test_cec_knn_options_reach_the_neighbour_search(monkeypatch):
    """``exact_knn_max`` and ``knn_probe`` are handed to the kNN search (exact below, inverted file above)."""
    import albench_strategies.cec as cec

    seen = []
    real = cec.knn

    def spy(*a, **kw):
        seen.append((kw.get("exact_max"), kw.get("n_probe")))
        return real(*a, **kw)

    monkeypatch.setattr(cec, "knn", spy)
    rng = np.random.default_rng(0)
    ctx = ctx_from(rng.normal(size=(30, 3)), rng.normal(size=(30, 4)), budget=2)
    STRATEGIES.get("cec")(k=3, exact_knn_max=0, knn_probe=3).uncertainty(ctx)
    assert seen == [(0, 3)]


def test_cec_negative_uncertainty_carries_no_clustering_weight():
    """β < 0 makes U negative for B and D (each is less uncertain than half its neighbour): their weight is
    max(U, 0) = 0. B = 1, so the one centre is the weighted mean of A and C and the pick is the sample
    nearest it (naive computation)."""
    ang = np.deg2rad([0.0, 10.0, 90.0, 100.0])  # A, B, C, D; nearest neighbours: A-B, C-D
    f = np.stack([np.cos(ang), np.sin(ang)], 1)
    logits = np.array([[0.0, 0], [4, 0], [1, 0], [5, 0]])
    u = naive_cec_uncertainty(logits, f, 1, -0.5, "sum")
    assert u[0] > 0 and u[2] > 0 and u[1] < 0 and u[3] < 0
    w = np.clip(u, 0, None)
    centre = (w[:, None] * f).sum(0) / w.sum()
    d = ((f - centre) ** 2).sum(1)
    expected = int(np.argmin(d))
    assert np.sort(d)[1] - np.sort(d)[0] > 1e-3
    for seed in range(3):
        ctx = ctx_from(logits, f, budget=1, seed=seed)
        assert STRATEGIES.get("cec")(k=1, beta=-0.5, calibration="none").select(ctx).tolist() == [expected]


def test_cec_fill_never_repeats_a_clustered_pick():
    """Two distinct feature vectors, B = 3: clustering picks one sample per group (the first of each, 0 and 3,
    also the most uncertain ones); the third pick is the most uncertain sample *not yet picked*."""
    f = np.repeat(np.eye(4)[:2], 3, axis=0)
    logits = np.array([[0.0, 0, 0], [2, 0, 0], [3, 0, 0], [1, 0, 0], [4, 0, 0], [5, 0, 0]])
    u = naive_cec_uncertainty(logits, f, 2, 1.0, "sum")
    assert int(np.argmax(u)) == 0
    for seed in range(3):
        ctx = ctx_from(logits, f, budget=3, seed=seed)
        out = STRATEGIES.get("cec")(k=2, calibration="none").select(ctx).tolist()
        assert len(set(out)) == 3 and set(out[:2]) & {0, 1, 2} and set(out[:2]) & {3, 4, 5}
        rest = [i for i in range(6) if i not in out[:2]]
        assert out[2] == max(rest, key=lambda i: u[i])


# ----------------------------------------------------------------------------- pcb


def test_pcb_sub_context_has_its_own_budget_and_rng():
    from albench_strategies.pcb import sub_context

    ctx = ctx_from(np.zeros((6, 2)), np.eye(6, 3), budget=2)
    rng = np.random.default_rng(5)
    sub = sub_context(ctx, 4, rng)
    assert sub.budget == 4 and sub.rng is rng
    assert ctx.budget == 2 and ctx.rng is not rng


def test_pcb_balance_with_zero_budget_is_empty():
    from albench_strategies.pcb import balance

    out = balance(np.arange(10, 14), np.array([0, 1, 0, 1]), np.zeros(2, int), 0, np.random.default_rng(0))
    assert out.size == 0 and np.issubdtype(out.dtype, np.integer)


def test_pcb_balance_skip_never_picks_at_random_for_an_absent_class():
    """fallback=skip: class 1 (neediest) has no candidate, so it is passed over, on every seed: 2 + 2 picks
    from classes 0 and 2, none reported as a fallback."""
    from albench_strategies.pcb import balance

    pred = np.array([0, 0, 0, 2, 2, 2])
    for seed in range(20):
        calls = []
        out = balance(np.arange(6), pred, np.array([1, 0, 1]), 4, np.random.default_rng(seed), on_fallback=calls.append)
        assert np.bincount(pred[out], minlength=3).tolist() == [2, 0, 2] and calls == []


def test_pcb_balance_reference_picks_uniformly_once_the_neediest_class_is_absent():
    """fallback=reference: class 1 has no candidate and its count never rises, so all 4 picks are uniform
    without replacement over the 6 candidates: the number from class 0 is hypergeometric (3/15, 9/15, 3/15
    for 1, 2, 3), and each pick is reported once to ``on_fallback``."""
    from albench_strategies.pcb import balance

    pred = np.array([0, 0, 0, 2, 2, 2])
    k0 = []
    for seed in range(600):
        calls = []
        out = balance(
            np.arange(6), pred, np.array([1, 0, 1]), 4, np.random.default_rng(seed), "reference", calls.append
        )
        assert len(set(out.tolist())) == 4 and sum(calls) == 4 and len(calls) == 4
        k0.append(int((pred[out] == 0).sum()))
    freq = np.bincount(k0, minlength=4)[1:] / len(k0)
    assert np.abs(freq - np.array([3, 9, 3]) / 15).max() < 0.06, freq


def pcb_pool(unc_classes=(0, 0, 1, 1, 2, 2), labeled=(0, 1)):
    """14 samples, 3 classes. Confident samples 2..7; uncertain ones (entropy's top 6) 8..13 with the given
    predicted classes. Samples 0 and 1 are class 0 (labelled by default)."""
    conf = [[9, 0, 0], [0, 9, 0], [0, 0, 9], [9, 0, 0], [0, 9, 0], [0, 0, 9]]
    scale = [0.3, 0.2, 0.25, 0.3, 0.2, 0.25]
    unc = [np.eye(3)[c] * s for c, s in zip(unc_classes, scale)]
    logits = np.array([[5, 0, 0], [5, 0, 0], *conf, *unc], dtype=float)
    return ctx_from(logits, np.eye(14, 4), labeled=list(labeled), labels=[0] * len(labeled), budget=3)


def test_pcb_reference_fallback_option_reaches_the_balancing_and_is_counted():
    """Candidates 8..13 are predicted 0, 0, 0, 2, 2, 2 and class 1 (no label yet) has none. With
    fallback=reference every pick is then a random candidate, counted as a fallback; with skip the picks
    follow the class counts (class 2, 2, then 0) and nothing is counted."""
    compositions = set()
    for seed in range(12):
        ctx = pcb_pool(unc_classes=(0, 0, 0, 2, 2, 2))
        ctx.rng = np.random.default_rng(seed)
        out = STRATEGIES.get("pcb")(base="entropy", candidate_fraction=0.5, fallback="reference").select(ctx)
        assert set(out.tolist()) <= set(range(8, 14)) and len(set(out.tolist())) == 3
        assert fallback_total(ctx) == 3
        compositions.add(tuple(np.bincount(ctx.probs[out].argmax(1), minlength=3)))
        ctx = pcb_pool(unc_classes=(0, 0, 0, 2, 2, 2))
        ctx.rng = np.random.default_rng(seed)
        out = STRATEGIES.get("pcb")(base="entropy", candidate_fraction=0.5).select(ctx)
        assert np.bincount(ctx.probs[out].argmax(1), minlength=3).tolist() == [1, 0, 2] and ctx.fallbacks == {}
    assert len(compositions) > 1


def test_pcb_base_without_label_needs_proposes_in_round_one():
    """Nothing labelled, base=entropy (does not need labels): candidates are still entropy's top 6 (8..13),
    never random ones; one pick per predicted class."""
    for seed in range(6):
        ctx = pcb_pool(labeled=())
        ctx.rng = np.random.default_rng(seed)
        out = STRATEGIES.get("pcb")(base="entropy", candidate_fraction=0.4).select(ctx)
        assert set(out.tolist()) <= set(range(8, 14)), out
        assert sorted(ctx.probs[out].argmax(1).tolist()) == [0, 1, 2]


def test_pcb_needs_labels_base_proposes_once_one_sample_is_labelled():
    """base=coreset needs labels; with a single labelled sample it already proposes (its k-center picks)."""
    rng = np.random.default_rng(0)
    logits = rng.normal(size=(40, 3))
    feats = rng.normal(size=(40, 8))
    y0 = int(np.argmax(logits[0]))
    ref = ctx_from(logits, feats, labeled=[0], labels=[y0], budget=4)  # n_cand = max(3, ⌈0.1·39⌉) = 4
    expected = set(STRATEGIES.get("coreset")().select(ref).tolist())
    for seed in range(5):
        ctx = ctx_from(logits, feats, labeled=[0], labels=[y0], budget=3, seed=seed)
        out = STRATEGIES.get("pcb")(base="coreset").select(ctx)
        assert set(out.tolist()) <= expected, (out, expected)


def test_pcb_round_one_random_candidates_are_distinct():
    """needs-labels base with nothing labelled: candidates are drawn without replacement, so with
    candidate_fraction 1 and B = |U| the selection is the whole pool."""
    for seed in range(3):
        ctx = pcb_pool(labeled=())
        ctx.budget = 14
        ctx.rng = np.random.default_rng(seed)
        out = STRATEGIES.get("pcb")(base="coreset", candidate_fraction=1.0).select(ctx)
        assert sorted(out.tolist()) == list(range(14))


def test_pcb_base_streams_differ_across_round_seeds():
    """The base strategy draws from a sub-stream of the round's rng; 300 different rounds never hand it the
    same stream (a narrow seed range would repeat streams)."""
    pcb = STRATEGIES.get("pcb")(base="random", candidate_fraction=0.5)
    real = pcb.base.select
    states = []

    def record(sub):
        states.append(copy.deepcopy(sub.rng).integers(2**62))
        return real(sub)

    pcb.base.select = record
    for seed in range(300):
        ctx = pcb_pool()
        ctx.rng = np.random.default_rng(seed)
        pcb.select(ctx)
    assert len(set(states)) == 300


def test_pcb_names_the_base_strategy_when_its_proposal_breaks_the_contract():
    """A base proposal with duplicates is rejected by the harness's check, naming the base strategy."""
    from albench.api.errors import ContractError

    pcb = STRATEGIES.get("pcb")(base="entropy", candidate_fraction=0.5)
    pcb.base.select = lambda sub: np.full(sub.budget, 8)
    with pytest.raises(ContractError, match="strategy 'entropy' returned duplicate indices"):
        pcb.select(pcb_pool())
