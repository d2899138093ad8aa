"""Clustering numerics of the selection package: greedy k-means++ seeding, weighted Lloyd k-means, the
incremental Lloyd reassignment, and the exact / inverted-file k nearest neighbours.

Each test pins one rule on a constructed input whose right answer is known by hand, or compares with a
naive transcription of the documented algorithm written here (dense float64 distances, plain loops) on
identical inputs and identical random draws (see docs/testing.md). The code under test is never used as
its own reference.
"""

import sys

import numpy as np
import pytest
import torch

from albench.components.selection import (
    greedy_kmeanspp,
    kmeans,
    knn,
    knn_exact,
    knn_ivf,
    knn_rows_exact,
    nearest_two,
    reassign_moved,
)

# ----------------------------------------------------------------------------- naive references


def dense_sq(a, b):
    """Squared Euclidean distances (len(a), len(b)) in float64, no Gram trick."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    return ((a[:, None, :] - b[None, :, :]) ** 2).sum(-1)


def ref_seeds(x, k, rng, w=None, n_trials=None):
    """Greedy k-means++ as documented: first centre ∝ w, then n_trials (default 2 + ⌊ln k⌋) candidates
    ∝ w·D², keep the one with the lowest potential Σ w·D²; uniform without replacement once no mass is left."""
    n = len(x)
    k = min(k, n)
    w = np.ones(n) if w is None else np.asarray(w, np.float64)
    if w.sum() <= 0:
        w = np.ones(n)
    trials = 2 + int(np.log(k)) if n_trials is None else n_trials
    d = dense_sq(x, x)
    chosen = [int(rng.choice(n, p=w / w.sum()))]
    closest = d[:, chosen[0]].copy()
    while len(chosen) < k:
        mass = w * closest
        if mass.sum() <= 0:
            rest = [i for i in range(n) if i not in chosen]
            chosen += [int(i) for i in rng.choice(rest, size=k - len(chosen), replace=False)]
            break
        cdf = np.cumsum(mass)
        cand = np.searchsorted(cdf, rng.random(trials) * cdf[-1], side="right")
        potentials = [(w * np.minimum(closest, d[:, c])).sum() for c in cand]
        best = int(cand[int(np.argmin(potentials))])
        chosen.append(best)
        closest = np.minimum(closest, d[:, best])
    return chosen


def ref_kmeans(x, k, rng, w=None, max_iter=10, tol=1e-4):
    """Plain weighted Lloyd from the reference seeding: full nearest-centre assignment every step, empty
    clusters keep their centre, stop after max_iter steps or once no centre moves more than
    tol · mean ||x||² (squared)."""
    x = np.asarray(x, np.float32)
    n = len(x)
    w = np.ones(n) if w is None or np.sum(w) <= 0 else np.asarray(w, np.float64)
    c = torch.from_numpy(x[ref_seeds(x, k, rng, w)].copy())
    xt, wt = torch.from_numpy(x), torch.as_tensor(w, dtype=torch.float32)
    scale = float((xt * xt).sum(1).mean()) or 1.0
    for _ in range(max_iter):
        lab = torch.from_numpy(dense_sq(x, c.numpy()).argmin(1))
        s = torch.zeros_like(c).index_add_(0, lab, xt * wt[:, None])
        m = torch.zeros(len(c)).index_add_(0, lab, wt)
        new = c.clone()
        new[m > 0] = s[m > 0] / m[m > 0, None]
        shift, c = float(((new - c) ** 2).sum(1).max()), new
        if shift <= tol * scale:
            break
    return c.numpy(), dense_sq(x, c.numpy()).argmin(1)


def ref_knn(x, k, rows=None):
    """Exact k nearest other rows: (sorted squared distances, index sets) per row."""
    d = dense_sq(x, x)
    np.fill_diagonal(d, np.inf)
    rows = np.arange(len(x)) if rows is None else np.asarray(rows)
    idx = np.argsort(d[rows], axis=1, kind="stable")[:, : min(k, len(x) - 1)]
    return np.take_along_axis(d[rows], idx, 1), idx


def ref_ivf(x, k, seed, n_cells, n_probe):
    """Inverted file as documented: cells are k-means (10 steps) of a sample of 64 rows per cell drawn first
    from the same rng; each row searches the rows whose own (nearest) cell is among its n_probe nearest
    cells. Returns per row the sorted squared distances of its k best (inf where missing)."""
    n = len(x)
    k = min(k, n - 1)
    rng = np.random.default_rng(seed)
    sample = rng.choice(n, size=min(n, 64 * n_cells), replace=False)
    cent, _ = ref_kmeans(x[np.sort(sample)], n_cells, rng, max_iter=10)
    probe = np.argsort(dense_sq(x, cent), axis=1, kind="stable")[:, :n_probe]
    own = probe[:, 0]
    d = dense_sq(x, x)
    out = np.full((n, k), np.inf)
    for r in range(n):
        members = np.flatnonzero(np.isin(own, probe[r]) & (np.arange(n) != r))
        best = np.sort(d[r, members])[:k]
        out[r, : best.size] = best
    return out


def same_knn(dist, idx, ref_d, atol=1e-4):
    """dist/idx agree with reference distances: same sorted distances, and idx's distances are its own."""
    assert dist.shape == ref_d.shape
    missing = np.isinf(ref_d)
    assert np.array_equal(idx < 0, missing) and (idx[missing] == -1).all()
    assert np.allclose(np.sort(dist, 1)[~missing], ref_d[~missing], atol=atol)


# ----------------------------------------------------------------------------- greedy k-means++ seeding


def int_blobs(seed, n=60, d=3, spread=6):
    """Small-integer points: every distance is exact in float32, so the seeding's draws match a float64
    reference bit for bit."""
    r = np.random.default_rng(seed)
    return r.integers(-spread, spread + 1, size=(n, d)).astype(np.float32)


@pytest.mark.parametrize("n_trials", [None, 1, 3])
def test_greedy_kmeanspp_equals_the_reference_draw_for_draw(n_trials):
    """Same rng, same picks in the same order: first ∝ w, then n_trials (default 2 + ⌊ln k⌋) D²-candidates,
    the lowest-potential one kept."""
    for seed in range(6):
        x = int_blobs(seed)
        w = None if seed % 2 == 0 else np.random.default_rng(seed).integers(1, 5, size=60).astype(np.float64)
        got = greedy_kmeanspp(torch.from_numpy(x), 7, np.random.default_rng(seed), weights=w, n_trials=n_trials)
        assert got.dtype == np.int64
        assert got.tolist() == ref_seeds(x, 7, np.random.default_rng(seed), w, n_trials), seed


def test_greedy_kmeanspp_first_centre_follows_the_weights_even_when_they_sum_below_one():
    """The first centre is drawn ∝ w however small the total: all mass on one row picks that row."""
    x = int_blobs(0, n=10)
    w = np.zeros(10)
    w[7] = 0.25
    for seed in range(10):
        assert greedy_kmeanspp(torch.from_numpy(x), 3, np.random.default_rng(seed), weights=w)[0] == 7


def test_greedy_kmeanspp_zero_weights_mean_uniform_weights():
    """Weights with no mass at all are replaced by uniform weights: same draws as no weights."""
    x = int_blobs(1, n=30)
    for seed in range(5):
        a = greedy_kmeanspp(torch.from_numpy(x), 5, np.random.default_rng(seed), weights=np.zeros(30))
        b = greedy_kmeanspp(torch.from_numpy(x), 5, np.random.default_rng(seed))
        assert a.tolist() == b.tolist() == ref_seeds(x, 5, np.random.default_rng(seed))


def test_greedy_kmeanspp_takes_the_only_row_with_mass_even_when_it_is_tiny():
    """D² mass far below 1 is still mass: with four duplicates and one row 0.01 away, a seeding that starts
    on a duplicate must take the distinct row next."""
    x = np.zeros((5, 2), dtype=np.float32)
    x[4, 0] = 0.01
    for seed in range(20):
        got = greedy_kmeanspp(torch.from_numpy(x), 2, np.random.default_rng(seed)).tolist()
        assert got[0] == 4 or got[1] == 4, got


def test_greedy_kmeanspp_fills_with_distinct_rows_once_no_mass_is_left():
    """Every row a duplicate: the remaining centres are distinct rows not chosen yet (a permutation for k = n)."""
    x = np.ones((6, 3), dtype=np.float32)
    for seed in range(20):
        got = greedy_kmeanspp(torch.from_numpy(x), 6, np.random.default_rng(seed)).tolist()
        assert sorted(got) == list(range(6)), got
    firsts = {tuple(greedy_kmeanspp(torch.from_numpy(x), 6, np.random.default_rng(s)).tolist()) for s in range(20)}
    assert len(firsts) > 10  # the fill is a random draw, not a fixed order


# ----------------------------------------------------------------------------- weighted Lloyd k-means


def blobs(seed, n=150, d=2, k=6, scale=1.0):
    r = np.random.default_rng(seed)
    centres = r.normal(scale=3.0, size=(k, d))
    return ((centres[r.integers(0, k, n)] + r.normal(size=(n, d))) * scale).astype(np.float32)


def assert_kmeans_equals_reference(x, k, seed, **kw):
    got_c, got_l = kmeans(x, k, np.random.default_rng(seed), **kw)
    ref_kw = {key: kw[key] for key in ("max_iter", "tol") if key in kw}
    ref_c, ref_l = ref_kmeans(x, k, np.random.default_rng(seed), kw.get("weights"), **ref_kw)
    assert np.array_equal(got_l, ref_l)
    assert np.allclose(got_c, ref_c, rtol=1e-6, atol=1e-6 * float(np.abs(x).max()))


@pytest.mark.parametrize("seed", [6, 15, 18])
def test_kmeans_runs_at_most_ten_lloyd_steps_by_default(seed):
    """Default max_iter = 10: on these pools Lloyd is still moving at step 10 (an 11th step would change the
    centres), and the result is the reference after exactly 10 steps."""
    x = blobs(seed, n=200, k=12)
    assert_kmeans_equals_reference(x, 12, seed, tol=0.0)
    assert_kmeans_equals_reference(x, 12, seed)


@pytest.mark.parametrize("max_iter", [0, 1, 3])
def test_kmeans_runs_exactly_max_iter_steps_when_not_converged(max_iter):
    """tol = 0 never stops early: exactly max_iter Lloyd steps (0 = the seeds and their assignment)."""
    x = blobs(5, k=8)
    assert_kmeans_equals_reference(x, 8, 5, max_iter=max_iter, tol=0.0)


@pytest.mark.parametrize("scale", [1e-3, 1.0, 1e3])
@pytest.mark.parametrize("tol", [1e-4, 1e-2])
def test_kmeans_stops_once_no_centre_moves_more_than_tol_relative_to_the_data(scale, tol):
    """The stopping rule is max_j ||c_j' − c_j||² ≤ tol · mean ||x||²: the same clustering at every data scale,
    equal to the reference that applies this rule."""
    for seed in range(3):
        x = blobs(seed, n=120, k=6, scale=scale)
        assert_kmeans_equals_reference(x, 6, seed, tol=tol, max_iter=30)


def test_kmeans_with_weights_summing_below_one_is_weighted_lloyd():
    """Small weights are weights: seeding ∝ w·D², centres are w-weighted means (clusters of mass < 1 move)."""
    for seed in range(3):
        x = blobs(seed, n=100, k=5)
        w = np.random.default_rng(seed).random(100) / 100  # Σw ≈ 0.5, every cluster's mass < 1
        assert_kmeans_equals_reference(x, 5, seed, weights=w, max_iter=20)


def test_kmeans_with_zero_weights_is_unweighted():
    """No weight mass at all falls back to uniform weights (not to centres that never move)."""
    x = blobs(3, n=100, k=5)
    a = kmeans(x, 5, np.random.default_rng(0), weights=np.zeros(100))
    b = ref_kmeans(x, 5, np.random.default_rng(0))
    assert np.array_equal(a[1], b[1]) and np.allclose(a[0], b[0], atol=1e-6)


# ----------------------------------------------------------------------------- incremental reassignment


def full_labels(x, c):
    return dense_sq(x.numpy(), c.numpy()).argmin(1)


def check_lower_bound(x, c, labels, lower):
    """lower (units ||c||² − 2x·c) bounds every centre other than the row's own from below."""
    g = ((c * c).sum(1)[None, :] - 2 * x @ c.T).double()
    g[torch.arange(len(x)), torch.as_tensor(labels)] = float("inf")
    assert (lower.double() <= g.min(1).values + 1e-4).all()


@pytest.mark.parametrize("n_moved", [1, 2, 3])
def test_reassign_moved_equals_a_full_pass_and_keeps_a_valid_lower_bound(n_moved):
    """One, two or three moved centres (the single-moved and two-moved paths included): labels equal a full
    nearest-centre pass and the returned bound still bounds every other centre."""
    r = np.random.default_rng(n_moved)
    x = torch.from_numpy(r.normal(size=(400, 4)).astype(np.float32))
    c = torch.from_numpy(r.normal(size=(12, 4)).astype(np.float32))
    labels, lower = nearest_two(x, c)
    moved = np.zeros(12, dtype=bool)
    moved[r.choice(12, n_moved, replace=False)] = True
    c2 = c.clone()
    c2[torch.as_tensor(moved)] += torch.from_numpy(r.normal(scale=0.8, size=(n_moved, 4)).astype(np.float32))
    if n_moved >= 2:  # two moved centres land next to each other at row 0: its runner-up is then a moved
        # centre nearer than its old runner-up and its old centre, and the bound must take that one
        c2[torch.as_tensor(np.flatnonzero(moved)[:2])] = x[0] + torch.tensor([[0.05], [0.1]])
    out, low2 = reassign_moved(x, c2, labels, lower, moved)
    assert np.array_equal(out.numpy(), full_labels(x, c2))
    assert not np.array_equal(out.numpy(), labels.numpy())
    check_lower_bound(x, c2, out, low2)
    # a second update from the returned state stays exact (the bound is what it relies on)
    moved2 = np.zeros(12, dtype=bool)
    moved2[np.flatnonzero(moved)[0]] = True
    c3 = c2.clone()
    c3[torch.as_tensor(moved2)] = torch.from_numpy(r.normal(size=(1, 4)).astype(np.float32))
    out3, low3 = reassign_moved(x, c3, out, low2, moved2)
    assert np.array_equal(out3.numpy(), full_labels(x, c3))
    check_lower_bound(x, c3, out3, low3)


def test_reassign_moved_updates_the_first_row():
    """Row 0 is reassigned like every other row when a moved centre comes to it."""
    x = torch.tensor([[5.0, 5.0], [0.0, 0.0], [10.0, 0.0], [0.0, 1.0]])
    c = torch.tensor([[0.0, 0.0], [10.0, 0.0], [-9.0, -9.0], [20.0, 20.0]])
    labels, lower = nearest_two(x, c)
    c2 = c.clone()
    c2[2] = torch.tensor([5.0, 4.0])
    out, _ = reassign_moved(x, c2, labels, lower, np.array([False, False, True, False]))
    assert out.tolist() == [2, 0, 1, 0]


def test_reassign_moved_is_exact_across_many_row_chunks(monkeypatch):
    """With tiny row blocks (and rows > dimensions) every block is decided, undecided rows of later blocks
    included."""
    monkeypatch.setattr("albench.components.selection.distances.CHUNK_ELEMS", 50)  # 10 rows per block
    r = np.random.default_rng(9)
    x = torch.from_numpy(r.normal(size=(300, 3)).astype(np.float32))
    c = torch.from_numpy(r.normal(size=(16, 3)).astype(np.float32))
    labels, lower = nearest_two(x, c)
    moved = np.zeros(16, dtype=bool)
    moved[[1, 4, 9]] = True
    c2 = c.clone()
    c2[torch.as_tensor(moved)] = torch.from_numpy(r.normal(size=(3, 3)).astype(np.float32))
    out, low2 = reassign_moved(x, c2, labels, lower, moved)
    assert np.array_equal(out.numpy(), full_labels(x, c2))
    check_lower_bound(x, c2, out, low2)


@pytest.mark.parametrize("offset", [0.0, 1000.0])
def test_reassign_moved_breaks_an_exact_tie_with_a_moved_centre_to_the_lowest_index(offset):
    """A row exactly as far from its own (lower-index) centre as from a moved one gets the lower index, as
    in the full pass, also where the values are large enough for float32 to absorb the margin."""
    x = torch.tensor([[offset + 1.0, 0.0]])
    c = torch.tensor([[offset, 0.0], [offset + 9.0, 0.0]])  # row's own centre 0; centre 1 far
    labels, lower = nearest_two(x, c)
    assert labels.tolist() == [0]
    c2 = c.clone()
    c2[1, 0] = offset + 2.0  # now exactly as far as centre 0 (integers: exact in float32)
    out, _ = reassign_moved(x, c2, labels, lower, np.array([False, True]))
    assert out.tolist() == [0]


@pytest.mark.parametrize("offset", [0.0, 1000.0])
def test_reassign_moved_breaks_an_exact_tie_with_an_unmoved_centre_to_the_lowest_index(offset):
    """The row's own centre moves to exactly the distance of an unmoved lower-index centre (which the row
    only knows through its lower bound): the tie goes to the lower index, as in the full pass."""
    x = torch.tensor([[offset + 1.0, 0.0]])
    c = torch.tensor([[offset, 0.0], [offset + 1.0, 0.0], [offset + 50.0, 0.0]])
    labels, lower = nearest_two(x, c)
    assert labels.tolist() == [1]
    c2 = c.clone()
    c2[1, 0] = offset + 2.0
    out, _ = reassign_moved(x, c2, labels, lower, np.array([False, True, False]))
    assert out.tolist() == [0]


def test_reassign_moved_equals_the_full_pass_on_uncentred_large_norm_features(monkeypatch):
    """The margin that lets a row keep an incremental decision is relative to ||x||² + ||c||²: float32
    rounding of the Gram-trick values grows with the norms, not with the gaps. Uncentred features (offset
    300 in 4 dimensions, ||x||² ≈ 3.6e5, rounding ≈ 0.1) over 40 draws, two successive updates each: the
    labels equal the full nearest_two pass row for row (the contract is equality with the module's own full
    pass, so that pass, not a float64 argmin, is the reference here; an absolute margin of 1e-4 disagrees
    with it on 17 of these draws). Where the float64 gap is far above rounding, the labels are also the
    exact nearest centre; and the case takes both paths (some rows decided incrementally, some not)."""
    kmeans_module = sys.modules["albench.components.selection.kmeans"]
    full_pass_rows = []

    def counted_nearest_two(x, c):
        full_pass_rows.append(len(x))
        return nearest_two(x, c)

    monkeypatch.setattr(kmeans_module, "nearest_two", counted_nearest_two)
    n, d, k = 2000, 4, 12
    for seed in range(40):
        r = np.random.default_rng(seed)
        blob = r.normal(scale=4.0, size=(k, d))
        x = torch.from_numpy((300.0 + blob[r.integers(0, k, n)] + r.normal(size=(n, d))).astype(np.float32))
        c = x[torch.as_tensor(r.choice(n, k, replace=False))].clone()
        labels, lower = nearest_two(x, c)
        for n_moved in (3, 2):
            moved = np.zeros(k, dtype=bool)
            moved[r.choice(k, n_moved, replace=False)] = True
            c2 = c.clone()
            c2[torch.as_tensor(moved)] += torch.from_numpy(r.normal(size=(n_moved, d)).astype(np.float32))
            out, low2 = reassign_moved(x, c2, labels, lower, moved)
            assert np.array_equal(out.numpy(), nearest_two(x, c2)[0].numpy()), (seed, n_moved)
            exact = np.sort(dense_sq(x.numpy(), c2.numpy()), 1)
            scale = (x.double() ** 2).sum(1).numpy() + float((c2.double() ** 2).sum(1).max())
            clear = exact[:, 1] - exact[:, 0] > 1e-5 * scale  # 1e-5 · 7e5 ≈ 7, rounding ≈ 0.1
            assert np.array_equal(out.numpy()[clear], full_labels(x, c2)[clear]), (seed, n_moved)
            c, labels, lower = c2, out, low2
    assert 0 < sum(full_pass_rows) < 40 * 2 * n  # rows decided both ways


def test_reassign_moved_margin_grows_with_the_row_norm_for_rows_far_beyond_the_centres():
    """The row's own ||x||² is part of the margin's scale, not only the centres' norms: rows 1e5 away from
    centres of norm ≈ 6, on the bisector of an unmoved centre and a moved one up to a few thousandths (a
    near-tie that float32 rounding of ||c||² − 2x·c, ≈ 1e-7 · 2||x||·||c||, decides), get the full
    nearest_two pass's labels. A margin scaled by the centres' norms alone (or the absolute 1e-4) disagrees
    with it on 15 of these 20 draws."""
    d, k, n = 4, 6, 500
    for seed in range(20):
        r = np.random.default_rng(seed)
        c = torch.from_numpy(r.normal(scale=3.0, size=(k, d)).astype(np.float32))
        c2 = c.clone()
        c2[1] += torch.from_numpy(r.normal(size=d).astype(np.float32))
        moved = np.zeros(k, dtype=bool)
        moved[1] = True
        a, b = c2[0].double().numpy(), c2[1].double().numpy()
        v = (b - a) / np.linalg.norm(b - a)
        u = r.normal(size=(n, d))
        u -= (u @ v)[:, None] * v
        u /= np.linalg.norm(u, axis=1, keepdims=True)  # directions within the bisecting hyperplane
        x = (a + b) / 2 + 1e5 * u + r.normal(scale=3e-3, size=(n, 1)) * v
        x = torch.from_numpy(x.astype(np.float32))
        labels, lower = nearest_two(x, c)
        out, _ = reassign_moved(x, c2, labels, lower, moved)
        assert np.array_equal(out.numpy(), nearest_two(x, c2)[0].numpy()), seed


# ----------------------------------------------------------------------------- exact kNN


def test_knn_exact_equals_a_dense_search_in_many_row_blocks(monkeypatch):
    """Each row's k nearest other rows (never itself), float32 distances / int64 indices, also when the pool is
    searched in blocks of a few rows."""
    x = np.random.default_rng(4).normal(size=(40, 3)).astype(np.float32)
    ref_d, ref_i = ref_knn(x, 6)
    for chunk in (1 << 24, 120, 40):  # one block, blocks of 3 rows, blocks of 1 row
        monkeypatch.setattr("albench.components.selection.distances.CHUNK_ELEMS", chunk)
        d, i = knn_exact(x, 6)
        assert d.dtype == np.float32 and i.dtype == np.int64
        assert np.array_equal(i, ref_i) and np.allclose(d, ref_d, atol=1e-5)


def test_knn_exact_caps_k_at_the_other_rows():
    """k ≥ n asks for every other row: n − 1 neighbours."""
    x = np.random.default_rng(5).normal(size=(7, 2)).astype(np.float32)
    d, i = knn_exact(x, 50)
    assert d.shape == i.shape == (7, 6)
    assert all(sorted(i[r].tolist()) == [j for j in range(7) if j != r] for r in range(7))


def test_knn_rows_exact_equals_a_dense_search_of_those_rows():
    """The exact search for chosen rows, in the given order, k capped at n − 1."""
    x = np.random.default_rng(6).normal(size=(30, 3)).astype(np.float32)
    rows = np.array([29, 0, 13])
    d, i = knn_rows_exact(x, rows, 100)
    ref_d, ref_i = ref_knn(x, 100, rows)
    assert d.shape == (3, 29) and d.dtype == np.float32
    assert np.array_equal(i, ref_i) and np.allclose(d, ref_d, atol=1e-5)


# ----------------------------------------------------------------------------- inverted-file kNN

IVF_CASES = {  # (n, k, n_cells, n_probe); n_probe None = the default (8)
    "default-probe": (400, 30, 20, None),
    "tiny-cells-one-probe": (300, 5, 40, 1),  # singleton cells, rows short of k
    "two-probes": (240, 4, 12, 2),
    "sample-smaller-than-pool": (300, 6, 2, 1),  # cells trained on 128 of the 300 rows
    "one-cell": (60, 5, 1, 1),
    "k-above-n": (20, 50, 3, 2),
    "k-is-n-1": (20, 19, 3, 3),
}


@pytest.mark.parametrize("case", sorted(IVF_CASES))
def test_knn_ivf_equals_a_brute_force_search_of_the_probed_cells(case):
    """Inverted file: cells = k-means of 64 sampled rows per cell (same rng draws); a row's candidates are the
    rows whose own cell is among its n_probe nearest cells; missing slots are -1 / inf."""
    n, k, n_cells, n_probe = IVF_CASES[case]
    x = np.random.default_rng(n + k).normal(size=(n, 4)).astype(np.float32)
    kw = {} if n_probe is None else {"n_probe": n_probe}
    d, i = knn_ivf(x, k, np.random.default_rng(3), n_cells=n_cells, **kw)
    same_knn(d, i, ref_ivf(x, k, 3, n_cells, 8 if n_probe is None else n_probe))
    hit = i >= 0
    rows = np.repeat(np.arange(n)[:, None], i.shape[1], 1)
    assert not (i == rows).any()
    assert np.allclose(d[hit], dense_sq(x, x)[rows[hit], i[hit]], atol=1e-4)  # each distance is its row's


@pytest.mark.parametrize("seed", range(5))
@pytest.mark.parametrize("n_probe", [1, 2])
def test_knn_ivf_with_more_cells_than_distinct_points_finds_the_duplicates(seed, n_probe):
    """Three points ten times each, five cells: some cells coincide and own no rows (first, last or probed
    ones); every row still finds its nine copies at distance 0."""
    x = np.repeat(np.array([[0, 0], [5, 0], [0, 7]], np.float32), 10, axis=0)
    d, i = knn_ivf(x, 9, np.random.default_rng(seed), n_cells=5, n_probe=n_probe)
    assert (d == 0).all()
    assert ((i // 10) == (np.arange(30) // 10)[:, None]).all() and (i != np.arange(30)[:, None]).all()


# ----------------------------------------------------------------------------- kNN front end


def test_knn_is_exact_up_to_exact_max_rows():
    """n ≤ exact_max: the exact search (a one-probe inverted file over tiny cells would differ here)."""
    x = np.random.default_rng(11).normal(size=(100, 30)).astype(np.float32)  # rows outnumber dimensions
    ref_d, ref_i = ref_knn(x, 5)
    d, i = knn(x, 5, np.random.default_rng(0), exact_max=100, n_probe=1)
    assert np.array_equal(i, ref_i) and np.allclose(d, ref_d, atol=1e-4)


@pytest.mark.parametrize("k, n_probe", [(30, None), (12, 1)])
def test_knn_above_exact_max_is_the_inverted_file_completed_exactly(k, n_probe):
    """n > exact_max: inverted file with √n cells and n_probe (default 8) probes; exactly the rows it leaves
    short of k neighbours get the exact search, the others keep the approximation."""
    n = 400
    x = np.random.default_rng(n + k).normal(size=(n, 4)).astype(np.float32)
    kw = {} if n_probe is None else {"n_probe": n_probe}
    d, i = knn(x, k, np.random.default_rng(3), exact_max=n - 1, **kw)
    ref = ref_ivf(x, k, 3, 20, 8 if n_probe is None else n_probe)
    short = np.isinf(ref).any(1)
    ref[short] = ref_knn(x, k, np.flatnonzero(short))[0]
    exact = ref_knn(x, k)[0]
    assert short.any() == (n_probe == 1) and (np.abs(ref - exact) > 1e-4).any()  # the case tests both parts
    assert (i >= 0).all() and not (i == np.arange(n)[:, None]).any()
    assert np.allclose(np.sort(d, 1), ref, atol=1e-4)
    assert np.allclose(d, dense_sq(x, x)[np.arange(n)[:, None], i], atol=1e-4)


def test_knn_default_switches_to_the_inverted_file_above_20000_rows():
    """Default exact_max = 20000: 20001 points of a unit grid, one probe. Every grid point has at least two
    others at distance 1, so the exact search never returns a second neighbour farther than 1; the inverted
    file does at the corners of its cells."""
    grid = np.stack(np.meshgrid(np.arange(142), np.arange(141), indexing="ij"), -1).reshape(-1, 2)[:20001]
    x = (grid - 70).astype(np.float32)
    d, i = knn(x, 2, np.random.default_rng(0), n_probe=1)
    assert d.shape == (20001, 2) and (d[:, 0] < 1.01).all()
    assert (d[:, 1] > 1.5).any()
