"""Selection rules at their edges: the run's device, fallback fills, ties and boundaries.

Each test here pins one rule of a strategy or of the shared selection numerics on a constructed input
whose right answer is known by hand (see docs/testing.md). Together with ``test_strategies.py`` these
are the tests ``mutmut`` runs against each mutant (``reports/mutation.md``).
"""

from types import SimpleNamespace

import numpy as np
import pytest
import torch

from albench.api.plugins import STRATEGIES
from albench.api.strategy import RoundContext
from albench.bench.selection import SyntheticPredictor, synthetic_context
from albench.components.selection import device_of

# ----------------------------------------------------------------------------- the run's device

DEVICE_STRATEGIES = {
    "coreset": {},
    "badge": {},
    "alfamix": {},
    "cec": {},
    "typiclust": {},
    "gcnal": {"steps": 2, "subset": 60},
    "gcnal-core": {"steps": 2, "subset": 60, "method": "core"},
}


def test_device_of_is_the_run_device_else_the_cpu():
    assert device_of(SimpleNamespace()) == torch.device("cpu")
    assert device_of(SimpleNamespace(env=None)) == torch.device("cpu")
    assert device_of(SimpleNamespace(env=SimpleNamespace())) == torch.device("cpu")
    assert device_of(SimpleNamespace(env=SimpleNamespace(device=None))) == torch.device("cpu")
    assert device_of(SimpleNamespace(env=SimpleNamespace(device="meta"))) == torch.device("meta")


@pytest.mark.parametrize("name", sorted(DEVICE_STRATEGIES))
def test_selection_computes_on_the_run_device(name):
    """On the run's device, not silently on the CPU: a device that cannot hand values back (``meta``)
    makes the selection fail, and the same context on the CPU selects."""
    opts = dict(DEVICE_STRATEGIES[name])
    cls = STRATEGIES.get(name.split("-")[0])
    ctx = synthetic_context(300, seed=0, labeled_fraction=0.05, budget_fraction=0.02, d=16, c=4)
    ctx.env = SimpleNamespace(device="cpu")
    assert len(cls(**opts).select(ctx)) == ctx.budget
    ctx = synthetic_context(300, seed=0, labeled_fraction=0.05, budget_fraction=0.02, d=16, c=4)
    ctx.env = SimpleNamespace(device="meta")
    with pytest.raises((NotImplementedError, RuntimeError)):
        cls(**opts).select(ctx)


# ----------------------------------------------------------------------------- helpers


def circle_ctx(angles, labeled=(), budget=2, seed=0, c=2):
    """A context whose (already unit-norm) image features are points on the unit circle at ``angles``."""
    angles = np.asarray(angles, dtype=np.float64)
    feats = np.stack([np.cos(angles), np.sin(angles)], 1).astype(np.float32)
    n = len(angles)
    logits = np.zeros((n, c), dtype=np.float32)
    return RoundContext(
        round=2,
        budget=budget,
        pool_size=n,
        num_classes=c,
        labeled=np.asarray(labeled, int),
        labels=np.zeros(len(labeled), int),
        rng=np.random.default_rng(seed),
        model=SyntheticPredictor(logits, feats, np.eye(c, 2, dtype=np.float32)),
    )


def fill_frequencies(make_ctx, strategy, fixed, seeds=400):
    """How often each index was picked after the ``fixed`` leading picks, over ``seeds`` seeds."""
    counts: dict[int, int] = {}
    for seed in range(seeds):
        ctx = make_ctx(seed)
        out = strategy.select(ctx)
        assert len(out) == ctx.budget and len(set(out.tolist())) == ctx.budget
        assert out[: len(fixed)].tolist() == list(fixed)
        for i in out[len(fixed) :].tolist():
            counts[i] = counts.get(i, 0) + 1
    return counts


# ----------------------------------------------------------------------------- ProbCover

TWO_CLUSTERS = [0.0, 0.05, 0.1, np.pi / 2, np.pi / 2 + 0.05, np.pi / 2 + 0.1]  # within δ = 0.6 inside, 1.41 across


def test_probcover_fills_uniformly_from_the_unpicked_once_coverage_is_exhausted():
    """One ball covers each cluster: picks 0 then 3 (ties to the lowest index), then coverage is exhausted and
    the other two picks are uniform over the four unpicked samples, counted as fallbacks."""
    strategy = STRATEGIES.get("probcover")()
    ctx = circle_ctx(TWO_CLUSTERS, budget=4)
    strategy.select(ctx)
    assert ctx.fallbacks == {"random fill: coverage exhausted before the budget": 2}
    counts = fill_frequencies(lambda s: circle_ctx(TWO_CLUSTERS, budget=4, seed=s), strategy, fixed=[0, 3])
    assert sorted(counts) == [1, 2, 4, 5]
    assert all(150 < v < 250 for v in counts.values()), counts  # each has probability 1/2 over 400 seeds


def test_probcover_with_every_sample_covered_by_labels_fills_at_random():
    strategy = STRATEGIES.get("probcover")()
    counts = fill_frequencies(lambda s: circle_ctx(TWO_CLUSTERS, labeled=[0, 3], budget=2, seed=s), strategy, fixed=[])
    assert sorted(counts) == [1, 2, 4, 5]
    assert all(150 < v < 250 for v in counts.values()), counts


def test_probcover_records_no_fallback_while_coverage_lasts():
    ctx = circle_ctx(TWO_CLUSTERS, budget=2)
    assert STRATEGIES.get("probcover")().select(ctx).tolist() == [0, 3]
    assert ctx.fallbacks == {}


def delta_graph_dense(x, delta):
    """The reference's ball graph, written out: edge i->j iff ||x_i - x_j|| < delta."""
    d = np.sqrt(((x[:, None, :].astype(np.float64) - x[None, :, :]) ** 2).sum(-1))
    return d < delta


def test_delta_graph_ball_is_open_at_delta():
    """Exactly δ apart is not an edge (the reference's strict ``<``); values exactly representable."""
    from albench_strategies.probcover import delta_graph

    x = np.array([[0.0, 0.0], [0.5, 0.0], [0.0, 0.25]], dtype=np.float32)
    indptr, nbr = delta_graph(x, 0.5, max_edges=100)
    rows = [sorted(nbr[indptr[i] : indptr[i + 1]].tolist()) for i in range(3)]
    assert rows == [[0, 2], [1], [0, 2]]


def test_delta_graph_edge_limit_counts_directed_edges_and_self_loops_once():
    """3 mutual neighbours + 1 isolated sample: 3·3 + 1 = 10 directed edges (self-loops once each)."""
    from albench.api.errors import AlbenchError
    from albench_strategies.probcover import delta_graph

    x = np.array([[0.0, 0.0], [0.1, 0.0], [0.0, 0.1], [5.0, 5.0]], dtype=np.float32)
    indptr, _ = delta_graph(x, 0.5, max_edges=10)
    assert indptr[-1] == 10
    with pytest.raises(AlbenchError, match="more than 9 edges on 4 samples"):
        delta_graph(x, 0.5, max_edges=9)


def test_delta_graph_edge_limit_adds_up_over_row_blocks(monkeypatch):
    """Built in row blocks, the edge count is the sum over all blocks (here 1-row blocks)."""
    from albench.api.errors import AlbenchError
    from albench.components.selection import distances
    from albench_strategies.probcover import delta_graph

    monkeypatch.setattr(distances, "CHUNK_ELEMS", 4)
    x = np.array([[0.0, 0.0], [0.1, 0.0], [0.0, 0.1], [5.0, 5.0]], dtype=np.float32)
    indptr, nbr = delta_graph(x, 0.5, max_edges=10)
    dense = delta_graph_dense(x, 0.5)
    assert [sorted(nbr[indptr[i] : indptr[i + 1]].tolist()) for i in range(4)] == [
        np.flatnonzero(dense[i]).tolist() for i in range(4)
    ]
    with pytest.raises(AlbenchError, match="more than 9 edges"):
        delta_graph(x, 0.5, max_edges=9)


def test_delta_graph_of_no_samples_is_empty():
    from albench_strategies.probcover import delta_graph

    indptr, nbr = delta_graph(np.zeros((0, 3), dtype=np.float32), 0.5, max_edges=10)
    assert indptr.tolist() == [0] and nbr.size == 0


# ----------------------------------------------------------------------------- TypiClust


def blobs(spec):
    """Angles of tight blobs on the unit circle: ``spec`` = [(centre angle, count), ...], 0.01 rad apart."""
    return np.concatenate([c + 0.01 * np.arange(m) for c, m in spec])


def test_typicality_is_inverse_mean_squared_distance_to_the_k_nearest_others():
    from albench_strategies.typiclust import typicality

    x = np.array([[0.0], [1.0], [1.5], [4.0]], dtype=np.float32)
    # squared distances to the others: row 0: 1, 2.25, 16; row 1: 1, .25, 9; row 2: 2.25, .25, 6.25; row 3: 16, 9, 6.25
    np.testing.assert_allclose(typicality(x, 1), 1 / (np.array([1.0, 0.25, 0.25, 6.25]) + 1e-5), rtol=1e-9)
    np.testing.assert_allclose(typicality(x, 2), 1 / (np.array([1.625, 0.625, 1.25, 7.625]) + 1e-5), rtol=1e-9)
    np.testing.assert_allclose(typicality(x, 3), 1 / (np.array([19.25, 10.25, 8.75, 31.25]) / 3 + 1e-5), rtol=1e-9)
    np.testing.assert_allclose(typicality(x, 9), typicality(x, 3), rtol=1e-12)  # k is at most n - 1
    np.testing.assert_allclose(typicality(x[:2], 5), 1 / (np.array([1.0, 1.0]) + 1e-5), rtol=1e-9)
    assert typicality(x[:1], 5).tolist() == [1.0]  # a lone sample: one value, no neighbour to measure


def test_typiclust_goes_round_robin_past_exhausted_clusters_then_fills_from_dropped_ones():
    """Clusters of 10 and 8 samples are kept, one of 3 is dropped (min_cluster_size=5); a budget of 20 takes
    all 18 kept samples (the 8-cluster is exhausted first and the round-robin goes on with the other),
    then 2 uniformly from the dropped cluster, counted as fallbacks."""
    angles = blobs([(0.0, 10), (2.0, 8), (4.0, 3)])
    strategy = STRATEGIES.get("typiclust")(max_clusters=3)
    counts: dict[int, int] = {}
    for seed in range(60):
        ctx = circle_ctx(angles, budget=20, seed=seed)
        out = strategy.select(ctx)
        assert sorted(out[:18].tolist()) == list(range(18))
        assert len(set(out.tolist())) == 20
        assert ctx.fallbacks == {"random fill: fewer usable clusters than the budget": 2}
        for i in out[18:].tolist():
            counts[i] = counts.get(i, 0) + 1
    assert sorted(counts) == [18, 19, 20] and all(25 < v < 55 for v in counts.values()), counts


def test_typiclust_alternates_clusters_and_never_picks_a_labelled_sample():
    """Labelled samples sit in the 8-cluster: it is visited after the unlabelled-only 10-cluster, and
    the budget of 18 takes exactly the unlabelled samples of the two kept clusters."""
    angles = blobs([(0.0, 10), (2.0, 8), (4.0, 3)])
    strategy = STRATEGIES.get("typiclust")(max_clusters=3)
    for seed in range(6):
        ctx = circle_ctx(angles, labeled=[10, 11], budget=16, seed=seed)
        out = strategy.select(ctx)
        assert sorted(out.tolist()) == list(range(10)) + list(range(12, 18))
        assert all((i < 10) == (k % 2 == 0) for k, i in enumerate(out[:12].tolist()))  # 10-cluster first
        assert ctx.fallbacks == {}


def test_typiclust_with_every_cluster_dropped_is_a_uniform_fill():
    angles = blobs([(0.0, 10), (2.0, 8)])
    strategy = STRATEGIES.get("typiclust")(min_cluster_size=100)
    counts: dict[int, int] = {}
    for seed in range(90):
        ctx = circle_ctx(angles, budget=3, seed=seed)
        out = strategy.select(ctx)
        assert len(set(out.tolist())) == 3
        assert ctx.fallbacks == {"random fill: fewer usable clusters than the budget": 3}
        for i in out.tolist():
            counts[i] = counts.get(i, 0) + 1
    assert sorted(counts) == list(range(18)) and all(3 < v < 30 for v in counts.values()), counts


def test_typiclust_max_clusters_one_takes_the_densest_region_first():
    """One cluster (max_clusters=1): the two picks are the most typical of all 9 samples, both in the tight
    blob of 6; with two clusters the second pick would come from the looser group of 3."""
    angles = np.concatenate([0.01 * np.arange(6), 1.0 + 0.2 * np.arange(3)])
    out = STRATEGIES.get("typiclust")(max_clusters=1, min_cluster_size=1).select(circle_ctx(angles, budget=2))
    assert set(out.tolist()) <= set(range(6))
    out = STRATEGIES.get("typiclust")(max_clusters=2, min_cluster_size=1).select(circle_ctx(angles, budget=2))
    assert out[0] < 6 and out[1] >= 6


# ----------------------------------------------------------------------------- GCNAL


def gcn_ctx(seed=11, n=120, labeled=12, budget=6):
    """Features with a positive mean, like CLIP's (the graph's column sums are then well away from 0)."""
    rng = np.random.default_rng(3)
    feats = rng.normal(size=(n, 8)).astype(np.float32) + 1.5
    return RoundContext(
        round=2,
        budget=budget,
        pool_size=n,
        num_classes=3,
        labeled=np.arange(labeled) * 7 % n,
        labels=np.arange(labeled) % 3,
        rng=np.random.default_rng(seed),
        model=SyntheticPredictor(np.zeros((n, 3), np.float32), feats, np.eye(3, 8, dtype=np.float32)),
    )


def reference_gcn_train(feats, n_unlab, seed, hidden, dropout, lam, steps, lr, weight_decay):
    """Sequential-GCN's training, transcribed densely (razvancaramalau/Sequential-GCN-for-Active-Learning,
    ``models/gcn.py`` + ``main.py``): Â = (FFᵀ − I)·diag(1/colsum) + I; two GraphConvolution layers
    (pygcn init U(−1/√out, 1/√out): 1/√hidden for the first, 1 for the 1-wide last), ReLU, dropout,
    BCE of the labelled (last) nodes plus λ × BCE of the unlabelled (first) ones, Adam. Parameters and
    dropout masks are drawn from one generator seeded with ``seed``, in albench's order (w1, b1, w3, b3)."""
    f = torch.nn.functional.normalize(torch.as_tensor(feats, dtype=torch.float64), dim=1)
    a = f @ f.T - torch.eye(len(f), dtype=torch.float64)
    adj = a / a.sum(0).clamp_min(1e-6)[None, :] + torch.eye(len(f), dtype=torch.float64)
    gen = torch.Generator().manual_seed(seed)
    s1 = 1.0 / np.sqrt(hidden)

    def uniform(shape, s):
        return torch.nn.Parameter(torch.empty(shape).uniform_(-s, s, generator=gen).double())

    w1, b1, w3, b3 = (
        uniform((f.shape[1], hidden), s1),
        uniform((hidden,), s1),
        uniform((hidden, 1), 1.0),
        uniform((1,), 1.0),
    )
    opt = torch.optim.Adam([w1, b1, w3, b3], lr=lr, weight_decay=weight_decay)

    def forward(train):
        h = torch.relu(adj @ (f @ w1) + b1)
        if train:
            keep = torch.rand(h.shape, generator=gen) >= dropout
            h = h * keep / (1.0 - dropout)
        return (adj @ (h @ w3) + b3)[:, 0], h

    for _ in range(steps):
        opt.zero_grad()
        logit, _ = forward(True)
        s = torch.sigmoid(logit)
        loss = -torch.log(s[n_unlab:]).mean() - lam * torch.log(1 - s[:n_unlab]).mean()
        loss.backward()
        opt.step()
    with torch.no_grad():
        return forward(False)


@pytest.mark.parametrize("dropout", [0.0, 0.3])
def test_gcnal_training_equals_a_transcription_of_the_reference(dropout):
    """Same nodes, same seed: after 6 Adam steps the GCN's output logits and hidden layer equal the dense
    reference's (init ranges, dropout mask and scaling, loss weighting, learning rate and weight decay)."""
    opts = {"steps": 6, "subset": 0, "hidden": 16, "dropout": dropout, "lr": 0.05, "weight_decay": 0.01}
    ctx = gcn_ctx()
    fit = STRATEGIES.get("gcnal")(**opts).fit(ctx)
    replay = np.random.default_rng(11)  # the fit's draws from ctx.rng: the subset, then the GCN's seed
    sub = replay.choice(ctx.unlabeled, size=len(ctx.unlabeled), replace=False)
    seed = int(replay.integers(2**63 - 1))
    assert np.array_equal(fit.sub, sub)
    nodes = np.concatenate([sub, np.unique(ctx.labeled)])
    logit, hidden = reference_gcn_train(
        ctx.features[nodes], len(sub), seed, 16, dropout, 1.2, steps=6, lr=0.05, weight_decay=0.01
    )
    np.testing.assert_allclose(fit.logit, logit.numpy(), rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(fit.hidden, hidden.numpy(), rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(
        fit.feats, torch.nn.functional.normalize(torch.as_tensor(ctx.features[nodes])), atol=1e-6
    )


def test_gcnal_subset_is_at_least_the_budget_and_zero_means_the_whole_pool():
    ctx = gcn_ctx()
    assert len(STRATEGIES.get("gcnal")(steps=1, subset=0).fit(ctx).sub) == len(ctx.unlabeled)
    assert len(STRATEGIES.get("gcnal")(steps=1, subset=1).fit(ctx).sub) == ctx.budget
    assert len(STRATEGIES.get("gcnal")(steps=1, subset=50).fit(ctx).sub) == 50
    ctx = gcn_ctx()
    sub = STRATEGIES.get("gcnal")(steps=1, subset=50).fit(ctx).sub
    assert len(set(sub.tolist())) == 50 and not set(sub.tolist()) & set(ctx.labeled.tolist())


def test_gcnal_needs_labels():
    from albench.api.errors import AlbenchError

    ctx = circle_ctx(TWO_CLUSTERS, budget=2)
    with pytest.raises(AlbenchError, match=r"^gcnal needs labelled samples; the harness selects round 1 at random\.$"):
        STRATEGIES.get("gcnal")(steps=1).select(ctx)
    ctx = circle_ctx(TWO_CLUSTERS, labeled=[0], budget=2)  # one label is enough
    assert len(STRATEGIES.get("gcnal")(steps=1).select(ctx)) == 2


def test_gcn_adjacency_normalises_columns_and_clamps_empty_ones():
    """Â = (FFᵀ − I)·diag(1/colsum) + I; a column summing to 0 (a node orthogonal to all) is clamped, not 0/0."""
    from albench_strategies.gcnal import LowRankAdjacency, gcn_adjacency

    f = np.array([[1.0, 0, 0], [0, 1.0, 0], [0.6, 0.8, 0], [0, 0, 1.0]])  # column sums .6, .8, 1.4, 0
    expected = np.array(
        [[1, 0, 0.6 / 1.4, 0], [0, 1, 0.8 / 1.4, 0], [1, 1, 1, 0], [0, 0, 0, 1]],
    )
    np.testing.assert_allclose(gcn_adjacency(f), expected, atol=1e-12)
    low_rank = LowRankAdjacency(torch.as_tensor(f)) @ torch.eye(4, dtype=torch.float64)
    np.testing.assert_allclose(low_rank.numpy(), expected, atol=1e-12)


def naive_kcenter(x, centres, candidates, budget):
    """Greedy k-center written out: repeatedly the candidate farthest from every centre (ties: lowest)."""
    centres, picks = list(centres), []
    for _ in range(budget):
        d = [min(float(((x[i] - x[c]) ** 2).sum()) for c in centres) for i in candidates]
        best = candidates[int(np.argmax(d))]
        picks.append(best)
        centres.append(best)
    return picks


def test_coregcn_input_space_runs_kcenter_on_the_nodes_normalised_features():
    ctx = gcn_ctx(budget=4)
    strategy = STRATEGIES.get("gcnal")(method="core", coregcn_space="input", steps=2, subset=30)
    out = strategy.select(ctx)
    fit = strategy.fit(gcn_ctx(budget=4))  # same seed: the same subset and the same nodes
    m = len(fit.sub)
    picks = naive_kcenter(fit.feats.astype(np.float64), range(m, len(fit.feats)), list(range(m)), 4)
    assert out.tolist() == fit.sub[picks].tolist()
