"""Selection numerics: distances, greedy k-center, D²-sampling and the uncertainty ranking rule.

Each test pins one documented rule of ``albench.components.selection`` on a small input whose answer is known
by hand or by a naive re-computation written here (direct differences, never the Gram trick under test).
"""

import numpy as np
import pytest
import torch

from albench.components.selection import (
    as_tensor,
    d2_sample,
    kcenter_greedy,
    lowest_k,
    min_sq_dist_to,
    nearest_two,
    rows_per_chunk,
    sq_dists,
)

CHUNK = "albench.components.selection.distances.CHUNK_ELEMS"


def direct_sq(x, c):
    """(len(x), len(c)) squared Euclidean distances by explicit differences."""
    x, c = np.asarray(x, dtype=np.float64), np.asarray(c, dtype=np.float64)
    return ((x[:, None, :] - c[None, :, :]) ** 2).sum(-1)


def naive_kcenter(x, initial, budget, candidates=None):
    """Greedy k-center by the definition: argmax over candidates of the min distance to the centres,
    ties to the lowest candidate position; +inf when there are no centres."""
    x = np.asarray(x, dtype=np.float64)
    cand = [i for i in range(len(x)) if i not in set(initial)] if candidates is None else list(candidates)
    centres, picks = list(initial), []
    for _ in range(budget):
        best, best_d = None, -1.0
        for i in cand:
            if i in picks:
                continue
            d = min((((x[i] - x[c]) ** 2).sum() for c in centres), default=np.inf)
            if d > best_d:
                best, best_d = i, d
        picks.append(best)
        centres.append(best)
    return picks


# ----------------------------------------------------------------------------- uncertainty ranking


def test_lowest_k_breaks_ties_by_lowest_position():
    """Many ties (only 3 distinct scores) in a pool long enough for an unstable sort to reorder them."""
    scores = np.random.default_rng(0).integers(0, 3, 500).astype(np.float64)
    expected = sorted(range(len(scores)), key=lambda i: (scores[i], i))[:200]
    assert lowest_k(scores, 200).tolist() == expected


# ----------------------------------------------------------------------------- distances


def test_as_tensor_is_float32_unless_asked_otherwise():
    x = np.array([[0.1, 2.0], [3.0, -4.5]])  # float64
    t = as_tensor(x)
    assert t.dtype == torch.float32 and np.array_equal(t.numpy(), x.astype(np.float32))
    assert as_tensor(x, torch.float64).dtype == torch.float64


def test_rows_per_chunk_is_as_many_rows_as_fit_and_at_least_one(monkeypatch):
    monkeypatch.setattr(CHUNK, 12)
    assert [rows_per_chunk(c) for c in (0, 1, 2, 5, 12, 13, 100)] == [12, 12, 6, 2, 1, 1, 1]


def test_sq_dists_equal_direct_squared_distances_with_or_without_cached_norms():
    rng = np.random.default_rng(0)
    x, c = rng.normal(size=(9, 4)), rng.normal(size=(5, 4))
    c[2] = x[3]  # an exact duplicate: distance 0, never negative
    xt, ct = torch.from_numpy(x), torch.from_numpy(c)
    want = direct_sq(x, c)
    for got in (sq_dists(xt, ct), sq_dists(xt, ct, (xt * xt).sum(1), (ct * ct).sum(1))):
        assert got.dtype == torch.float64 and np.allclose(got.numpy(), want, rtol=1e-12, atol=1e-12)
        assert (got >= 0).all()


def test_min_sq_dist_to_is_the_min_and_argmin_of_direct_distances(monkeypatch):
    """float64 in, float64 out (no float32 rounding), integer argmin, also across many chunks."""
    rng = np.random.default_rng(1)
    x, c = rng.normal(size=(50, 3)), rng.normal(size=(4, 3))
    want = direct_sq(x, c)
    for chunk in (1 << 24, 8):
        monkeypatch.setattr(CHUNK, chunk)
        d, arg = min_sq_dist_to(torch.from_numpy(x), torch.from_numpy(c))
        assert d.dtype == torch.float64 and arg.dtype == torch.long
        assert np.allclose(d.numpy(), want.min(1), rtol=1e-12, atol=1e-12)
        assert np.array_equal(arg.numpy(), want.argmin(1))


def test_distance_outputs_live_on_the_inputs_device():
    """Module rule: given tensors on a device, the outputs are on that device (checked on 'meta')."""
    x, c = torch.empty(6, 3, device="meta"), torch.empty(3, 3, device="meta")
    for out in (*min_sq_dist_to(x, c), *nearest_two(x, c)):
        assert out.device == x.device


@pytest.mark.parametrize("k, d", [(2, 3), (3, 1)])
def test_nearest_two_gives_the_runner_up_for_any_number_of_centres_and_features(k, d):
    """Two centres (the smallest k with a runner-up) and 1-D features (d < k)."""
    rng = np.random.default_rng(k)
    x, c = rng.normal(size=(20, d)), rng.normal(size=(k, d))
    shifted = direct_sq(x, c) - (x * x).sum(1)[:, None]  # nearest_two's units: ||c||² − 2 x·c
    arg, second = nearest_two(torch.from_numpy(x), torch.from_numpy(c))
    assert np.array_equal(arg.numpy(), shifted.argmin(1))
    assert np.allclose(second.numpy(), np.sort(shifted, 1)[:, 1], atol=1e-5)


# ----------------------------------------------------------------------------- greedy k-center


def test_kcenter_float64_features_keep_float64_resolution():
    """Offsets of 1e-6 around 1.0: squared distances ~1e-12 are resolved only in float64."""
    x = 1.0 + np.array([[0.0], [3e-6], [10e-6], [1e-6], [6e-6]])
    assert naive_kcenter(x, [0], 4) == [2, 4, 1, 3]
    assert kcenter_greedy(x, np.array([0]), 4).tolist() == [2, 4, 1, 3]


def test_kcenter_computes_on_the_given_device():
    """The distance products run on ``device``: one that cannot hand values back (``meta``) fails, where the
    CPU selects."""
    x = np.array([[0.0], [1.0], [3.0]])
    assert kcenter_greedy(x, np.array([0]), 1, device="cpu").tolist() == [2]
    with pytest.raises((NotImplementedError, RuntimeError)):
        kcenter_greedy(x, np.array([0]), 1, device="meta")


def test_kcenter_half_precision_features_are_measured_in_float32():
    """float16 features whose squared norms overflow float16 (> 65504) are still measured exactly."""
    x = np.array([[0.0], [300.0], [100.0], [280.0], [150.0]], dtype=np.float16)
    assert naive_kcenter(x, [0], 4) == [1, 4, 2, 3]
    assert kcenter_greedy(x, np.array([0]), 4).tolist() == [1, 4, 2, 3]


def test_kcenter_picks_only_from_the_given_candidates():
    x = np.array([[0.0], [1.0], [9.0], [3.0], [5.0]])  # row 2 is the farthest but not a candidate
    assert naive_kcenter(x, [0], 2, candidates=[1, 3, 4]) == [4, 3]
    assert kcenter_greedy(x, np.array([0]), 2, candidates=np.array([1, 3, 4])).tolist() == [4, 3]


def test_kcenter_never_picks_an_initial_centre():
    """Row 1 duplicates the centre row 0: after the far row 2 both have distance 0; only row 1 may be picked."""
    x = np.array([[0.0], [0.0], [4.0]])
    assert kcenter_greedy(x, np.array([0]), 2).tolist() == [2, 1]


def test_kcenter_budget_equal_to_the_candidates_picks_all_and_more_is_an_error():
    x = np.array([[0.0], [1.0], [3.0]])
    assert kcenter_greedy(x, np.array([0]), 2).tolist() == [2, 1]
    with pytest.raises(ValueError, match=r"3 picks from 2 candidates"):
        kcenter_greedy(x, np.array([0]), 3)


def test_kcenter_without_initial_centres_starts_at_the_lowest_candidate():
    x = np.array([[2.0], [0.0], [7.0], [3.0]])
    assert naive_kcenter(x, [], 3) == [0, 2, 1]
    assert kcenter_greedy(x, np.array([], dtype=int), 3).tolist() == [0, 2, 1]


@pytest.mark.parametrize("top_m", [256, 1])
def test_kcenter_never_repicks_when_only_duplicates_remain(top_m):
    x = np.array([[0.0], [5.0], [5.0], [5.0]])  # all candidates coincide: distances 0 after the first pick
    assert kcenter_greedy(x, np.array([0]), 3, top_m=top_m).tolist() == [1, 2, 3]


def test_kcenter_deferred_refresh_keeps_ties_on_the_lowest_row():
    """1-D: centre 0; A = -2 (row 1), B = 8 (row 2), P = 10 (row 3). P is picked first; then A and B both
    lie at squared distance 4. With top_m = 1 only B's stale bound (64) is refreshed (to 4, equal to A's
    exact bound): the tie must still go to the lower row A, as in the naive loop."""
    x = np.array([[0.0], [-2.0], [8.0], [10.0]])
    assert naive_kcenter(x, [0], 2) == [3, 1]
    assert kcenter_greedy(x, np.array([0]), 2, top_m=1).tolist() == [3, 1]


# ----------------------------------------------------------------------------- D²-sampling


def line_sq(x, noise_self=0.0, noise_dup=0.0):
    """sq_dist_to for 1-D points ``x``: exact squared distances, except that a row's distance to itself reads
    ``noise_self`` and to a distinct duplicate row ``noise_dup`` (Gram-trick rounding, exaggerated)."""
    x = np.asarray(x, dtype=np.float64)

    def sq(rows, cols):
        rows, cols = np.asarray(rows), np.asarray(cols)
        d = (x[rows][:, None] - x[cols][None, :]) ** 2
        same = rows[:, None] == cols[None, :]
        return np.where(same, noise_self, np.where(d == 0, noise_dup, d))

    return sq


def test_d2_second_pick_is_proportional_to_weight_times_squared_distance_at_any_scale():
    """P(second = i) = w_i·D_i² / Σ w·D², also when every D² is tiny (total mass far below 1) and a row with
    weight 0 (row 2) is never drawn."""
    x = 0.01 * np.array([0.0, 1.0, 2.0, 3.0, 4.0])
    w = np.array([1.0, 3.0, 0.0, 1.0, 0.5])
    rng = np.random.default_rng(0)
    second = np.array([d2_sample(5, 2, 0, line_sq(x), rng, weights=w)[1] for _ in range(3000)])
    law = w * (x - x[0]) ** 2
    assert not (second == 2).any()
    assert np.abs(np.bincount(second, minlength=5) / len(second) - law / law.sum()).max() < 0.03


def test_d2_never_redraws_a_chosen_row_despite_a_positive_self_distance():
    """A Gram-trick distance function may report a small positive distance of a row to itself; the picks
    must still be distinct (here budget = n: every run is a permutation)."""
    x = np.arange(5.0)
    for seed in range(40):
        out = d2_sample(5, 5, 2, line_sq(x, noise_self=0.5), np.random.default_rng(seed))
        assert out[0] == 2 and sorted(out.tolist()) == [0, 1, 2, 3, 4], out


@pytest.mark.parametrize("max_pending", [1, 32])
def test_d2_negative_rounded_distances_carry_no_mass(max_pending):
    """1-D pool [5, 0, 5, 0, 1], first = row 1. Duplicates read a negative squared distance (rounding): row 3
    (a copy of the first) and, once one of rows 0 / 2 is picked, the other one have zero mass, so the third
    pick is row 4 (the only row with mass left), never a duplicate."""
    x = np.array([5.0, 0.0, 5.0, 0.0, 1.0])
    sq = line_sq(x, noise_dup=-10.0)
    for seed in range(60):
        out = d2_sample(5, 3, 1, sq, np.random.default_rng(seed), max_pending=max_pending).tolist()
        assert out[0] == 1 and 3 not in out and 4 in out and not {0, 2} <= set(out), out


def test_d2_fills_with_the_unchosen_rows_once_no_mass_is_left():
    """Rows 1-3 coincide: after the first two picks nothing has mass and the last pick is a uniform fill
    from the unchosen rows (reported to on_fill), never a repeat."""
    x = np.array([0.0, 5.0, 5.0, 5.0])
    thirds = []
    for seed in range(60):
        filled = []
        out = d2_sample(4, 4, 0, line_sq(x), np.random.default_rng(seed), on_fill=filled.append).tolist()
        assert out[0] == 0 and sorted(out) == [0, 1, 2, 3] and filled == [2], (out, filled)
        thirds.append(out[2])
    assert set(thirds) == {1, 2, 3}  # every unchosen duplicate can be the fill


def test_d2_fill_works_without_an_on_fill_callback():
    out = d2_sample(3, 3, 1, line_sq(np.zeros(3)), np.random.default_rng(0))
    assert out[0] == 1 and sorted(out.tolist()) == [0, 1, 2]


def test_d2_reports_no_fill_when_every_pick_had_mass():
    filled = []
    out = d2_sample(4, 4, 0, line_sq(np.arange(4.0)), np.random.default_rng(0), on_fill=filled.append)
    assert sorted(out.tolist()) == [0, 1, 2, 3] and filled == []


def test_d2_picks_do_not_depend_on_the_distance_chunking(monkeypatch):
    """Flushes are exact per row, so a tiny CHUNK_ELEMS (one row per block) gives the same seeded picks."""
    x = np.random.default_rng(3).normal(size=40)
    runs = {}
    for chunk in (1 << 24, 8):
        monkeypatch.setattr(CHUNK, chunk)
        runs[chunk] = [d2_sample(40, 12, 7, line_sq(x), np.random.default_rng(s), max_pending=5) for s in range(5)]
    for a, b in zip(runs[1 << 24], runs[8]):
        assert a.tolist() == b.tolist() and len(set(a.tolist())) == 12
