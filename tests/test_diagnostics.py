"""Per-round diagnostics: AUROCs against scikit-learn, pseudo-label precision by hand, fallbacks, records."""

import numpy as np
import pytest
import torch
from sklearn.metrics import roc_auc_score

from albench.api.strategy import RoundContext, Strategy
from albench.engine.diagnostics import (
    detection_auroc,
    pseudo_label_stats,
    round_diagnostics,
    evaluation_stats,
    uncertainty_scores,
)

POOL_LABELS = np.array([0, 1, 2, 0, 1, 2, 0, 1])


class _Fixed:
    """A predictor with hand-set pool logits."""

    def __init__(self, logits):
        self.logits = torch.as_tensor(logits, dtype=torch.float32)

    def predict_logits(self, split, indices=None):
        return self.logits if indices is None else self.logits[torch.as_tensor(indices)]


class _FixedDual(_Fixed):
    fitted = True

    def __init__(self, pos, neg):
        super().__init__(pos)
        self.neg = torch.as_tensor(neg, dtype=torch.float32)

    def dual_logits(self, split, indices=None):
        i = torch.as_tensor(indices)
        return self.logits[i], self.neg[i]


def _ctx(model, labeled=(7,), budget=2):
    labeled = np.asarray(labeled)
    return RoundContext(
        round=2,
        budget=budget,
        pool_size=8,
        num_classes=3,
        labeled=labeled,
        labels=POOL_LABELS[labeled],
        rng=np.random.default_rng(0),
        model=model,
    )


def _pool_logits():
    # rows 0..7; predicted classes 0,1,1,2,1,0,0,(labelled) -> wrong at rows 2, 3, 5
    return np.array([[4.0, 0, 0], [0, 3, 0], [0, 1, 0.9], [0, 0, 2], [0, 5, 0], [0.5, 0, 0.4], [2, 1, 0], [0, 9, 0]])


def test_uncertainty_scores_by_hand():
    p = np.array([[0.7, 0.2, 0.1], [0.4, 0.4, 0.2]])
    s = uncertainty_scores(p)
    assert np.allclose(s["max_softmax"], [0.3, 0.6])
    assert np.allclose(s["margin"], [-0.5, 0.0])
    assert np.allclose(
        s["entropy"],
        [-(0.7 * np.log(0.7) + 0.2 * np.log(0.2) + 0.1 * np.log(0.1)), -(2 * 0.4 * np.log(0.4) + 0.2 * np.log(0.2))],
    )


def test_detection_auroc_hand_case_and_degenerate():
    # wrong = [1, 0, 1, 0]; scores rank the wrong ones 1st and 3rd of 4 -> 3 of 4 pairs ordered -> 0.75
    assert detection_auroc(np.array([1, 0, 1, 0]), np.array([0.9, 0.8, 0.3, 0.1])) == 0.75
    assert detection_auroc(np.zeros(4), np.arange(4)) is None  # no errors: undefined
    assert detection_auroc(np.ones(4), np.arange(4)) is None


def test_round_aurocs_equal_sklearn_on_constructed_pool():
    logits = _pool_logits()
    ctx = _ctx(_Fixed(logits))
    cand = ctx.unlabeled
    d = round_diagnostics(
        ctx,
        cand,
        np.array([2, 3]),
        POOL_LABELS,
        torch.zeros(3, 3),
        np.array([0, 1, 2]),
        pseudo_used=False,
        protocol_random=False,
    )
    z = logits[cand] - logits[cand].max(1, keepdims=True)
    p = np.exp(z) / np.exp(z).sum(1, keepdims=True)
    wrong = p.argmax(1) != POOL_LABELS[cand]
    assert wrong.tolist() == [False, False, True, True, False, True, False]
    srt = np.sort(p, 1)
    assert d["auroc"]["max_softmax"] == pytest.approx(roc_auc_score(wrong, -p.max(1)))
    assert d["auroc"]["margin"] == pytest.approx(roc_auc_score(wrong, srt[:, -2] - srt[:, -1]))
    assert d["auroc"]["entropy"] == pytest.approx(roc_auc_score(wrong, -(p * np.log(p)).sum(1)))
    assert d["auroc"]["p_clean"] is None and d["selection"]["model_has_dual_prompts"] is False
    assert d["pool_accuracy"] == pytest.approx(100 * 4 / 7, abs=1e-3) and d["pool_errors"] == 3
    # picks 2 and 3 are predicted as classes 1 and 2
    assert d["selection"]["predicted_class_hist"] == [0, 1, 1]
    assert d["selection"]["model"] == "the adapter trained last round"


def test_p_clean_auroc_equals_sklearn_and_uses_predicted_class():
    pos = _pool_logits()
    # p_clean(c) = sigmoid(pos_c - neg_c); margins of the predicted classes of rows 0..6 (rows 2, 3, 5 are wrong)
    margin = np.array([2.0, 1.0, -1.0, 0.5, 3.0, -2.0, -0.5])
    neg = pos.copy()
    neg[np.arange(7), pos[:7].argmax(1)] -= margin
    model = _FixedDual(pos, neg)
    ctx = _ctx(None)
    ctx.selected_with(model, "a model the strategy trained")
    cand = ctx.unlabeled
    d = round_diagnostics(
        ctx,
        cand,
        np.array([0, 1]),
        POOL_LABELS,
        torch.zeros(3, 3),
        np.array([0, 1, 2]),
        pseudo_used=True,
        protocol_random=False,
    )
    pred = pos[cand].argmax(1)
    pc = 1 / (1 + np.exp(-(pos[cand, pred] - neg[cand, pred])))
    wrong = pred != POOL_LABELS[cand]
    assert d["auroc"]["p_clean"] == pytest.approx(roc_auc_score(wrong, -pc))
    assert d["auroc"]["p_clean"] == pytest.approx(11 / 12)  # 11 of the 12 (wrong, right) pairs ranked right
    assert d["mean_p_clean"]["wrong"] == pytest.approx(pc[wrong].mean())
    assert d["selection"]["model"] == "a model the strategy trained" and d["selection"]["model_has_dual_prompts"]


def test_pseudo_label_precision_by_hand():
    true = np.array([0, 1, 2, 0, 1, 2, 0, 1])
    # pool rows 0, 2, 4, 6 labelled 0, 2, 1, 1: rows 0, 2, 4 right, 6 (true 0) wrong -> 3/4
    s = pseudo_label_stats(np.array([0, 2, 4, 6]), np.array([0, 2, 1, 1]), true, 3, used=True)
    assert s == {"size": 4, "precision": 0.75, "correct": 3, "class_counts": [1, 2, 1], "used_by_adapter": True}
    assert pseudo_label_stats(np.zeros(0), np.zeros(0), true, 3, used=False)["precision"] is None


def test_offered_pseudo_labels_reach_the_diagnostics():
    ctx = _ctx(_Fixed(_pool_logits()))
    ctx.offer_pseudo_labels(np.array([0, 1, 2]), np.array([0, 1, 0]))  # row 2 (true 2) is wrong
    d = round_diagnostics(
        ctx,
        ctx.unlabeled,
        np.array([3, 4]),
        POOL_LABELS,
        torch.zeros(3, 3),
        np.array([0, 1, 2]),
        pseudo_used=False,
        protocol_random=False,
    )
    assert d["pseudo_labels"]["precision"] == pytest.approx(2 / 3) and d["pseudo_labels"]["used_by_adapter"] is False


def test_test_stats_per_class_and_balanced_by_hand():
    labels = np.array([0, 0, 0, 0, 1, 1, 2, 2])
    pred = np.array([0, 0, 0, 1, 1, 0, 2, 2])  # class 0: 3/4, class 1: 1/2, class 2: 2/2
    s = evaluation_stats(torch.nn.functional.one_hot(torch.as_tensor(pred), 4).float(), labels, 4)
    assert s["per_class_accuracy"] == [75.0, 50.0, 100.0, None]  # class 3 has no test sample
    assert s["balanced_accuracy"] == pytest.approx(100 * (0.75 + 0.5 + 1.0) / 3, abs=1e-3)


def test_fallbacks_counted_and_protocol_random_round():
    ctx = _ctx(_Fixed(_pool_logits()))
    ctx.note_fallback(1, "random fill")
    ctx.note_fallback(0, "nothing")  # zero picks: not listed
    d = round_diagnostics(
        ctx,
        ctx.unlabeled,
        np.array([0, 1]),
        POOL_LABELS,
        torch.zeros(3, 3),
        np.array([0, 1, 2]),
        pseudo_used=False,
        protocol_random=True,
    )
    assert d["selection"]["fallbacks"] == {"random fill": 1, "random first round (strategy needs labels)": 2}
    assert d["selection"]["fallback_picks"] == 3


def test_d2_sample_reports_its_random_fill():
    from albench.components.selection import d2_sample

    filled = []
    zeros = lambda rows, cols: np.zeros((len(rows), len(cols)))  # noqa: E731 - every row duplicates the first
    picks = d2_sample(6, 4, 0, zeros, np.random.default_rng(0), on_fill=filled.append)
    assert len(set(picks.tolist())) == 4 and filled == [3]


def test_pcb_balance_reports_fallback_picks():
    from albench_strategies.pcb import balance

    calls = []
    # class 1 is the neediest but has no candidate; "reference" draws from any free candidate instead
    out = balance(
        np.arange(4),
        np.array([0, 0, 0, 0]),
        np.array([5, 0]),
        2,
        np.random.default_rng(0),
        fallback="reference",
        on_fallback=calls.append,
    )
    assert out.size == 2 and sum(calls) == 2
    calls.clear()
    balance(
        np.arange(4),
        np.array([0, 0, 0, 0]),
        np.array([5, 0]),
        2,
        np.random.default_rng(0),
        fallback="skip",
        on_fallback=calls.append,
    )
    assert calls == []  # skip: class 1 is marked exhausted, class 0 fills by its own rule


class _HalfRandom(Strategy):
    """Takes the lowest indices for half the budget and fills the rest at random, counting the fill."""

    name = "half_random_test"

    def select(self, ctx):
        half = ctx.budget // 2
        first = ctx.unlabeled[:half]
        rest = ctx.rng.choice(ctx.unlabeled[half:], size=ctx.budget - half, replace=False)
        ctx.note_fallback(rest.size, "random fill")
        return np.concatenate([first, rest])


@pytest.mark.slow
def test_every_round_record_holds_diagnostics(tmp_path, workspace):
    from albench.api.plugins import STRATEGIES
    from albench.engine.protocol import RunSpec, execute

    STRATEGIES.register("half_random_test", _HalfRandom)
    try:
        spec = RunSpec(
            strategy="half_random_test",
            adapter="coop",
            dataset="toy_shapes",
            seed=4,
            rounds=2,
            adapter_options={"epochs": 1},
        )
        rec = execute(spec, tmp_path, workspace).record
    finally:
        STRATEGIES.unregister("half_random_test")
    b = rec["round_budget"]
    for r in rec["rounds"]:
        d = r["diagnostics"]
        assert set(d["auroc"]) == {"max_softmax", "entropy", "margin", "p_clean"} and d["auroc"]["p_clean"] is None
        assert all(0 <= d["auroc"][k] <= 1 for k in ("max_softmax", "entropy", "margin"))
        assert d["selection"]["fallbacks"] == {"random fill": b - b // 2}
        assert sum(d["selection"]["predicted_class_hist"]) == b
        assert len(d["test"]["per_class_accuracy"]) == rec["num_classes"]
        assert r["seconds"]["diagnostics"] == d["seconds"] >= 0
    assert rec["rounds"][0]["diagnostics"]["selection"]["model"] == "zero-shot CLIP"
    # round 1 is judged on zero-shot CLIP: its pool accuracy matches the zero-shot predictions of the pool
    first = rec["rounds"][0]["diagnostics"]
    assert 0 < first["pool_accuracy"] <= 100


# ---------------------------------------------------------------- diagnostics in tables and the report
def _rec(seed, label, adapter, pclean, msp, precision):
    diag = {
        "auroc": {"max_softmax": msp, "entropy": 0.6, "margin": 0.7, "p_clean": pclean},
        "pseudo_labels": None if precision is None else {"precision": precision, "size": 10},
        "pool_accuracy": 50.0,
        "test": {"balanced_accuracy": 40.0 + seed},
        "selection": {"fallback_picks": 0},
    }
    return {
        "dataset": "digits",
        "seed": seed,
        "strategy": "dualprompt",
        "adapter": adapter,
        "label": label,
        "config": {"adapter": adapter, "seed": seed},
        "rounds": [{"round": 1, "accuracy": 45.0, "budget_pct": 1.0, "diagnostics": diag}],
    }


def test_metric_values_and_unknown_metric():
    from albench.api.errors import AlbenchError
    from albench.reporting.mechanism import metric_value

    r = _rec(4, "Ours", "dualprompt", 0.55, 0.8, 0.9)["rounds"][0]
    assert metric_value(r, "pclean_auroc") == 0.55 and metric_value(r, "balanced_accuracy") == 44.0
    assert metric_value(r, "pseudo_label_precision") == 0.9 and metric_value(r, "accuracy") == 45.0
    assert metric_value({"accuracy": 1.0}, "pclean_auroc") is None  # a record from before diagnostics
    with pytest.raises(AlbenchError, match="Unknown metric 'pclean_aroc'.*pclean_auroc"):
        metric_value(r, "pclean_aroc")


def test_mechanism_section_means_over_seeds():
    from albench.reporting.mechanism import mechanism_frame, mechanism_markdown

    recs = [
        _rec(4, "Ours", "dualprompt", 0.5, 0.8, 0.9),
        _rec(5, "Ours", "dualprompt", 0.7, 0.6, 0.7),
        _rec(4, "entropy", "coop", None, 0.75, None),
    ]
    df = mechanism_frame(recs).set_index("column")
    assert df.loc["Ours / dualprompt", "pclean_auroc"] == pytest.approx(0.6)
    assert df.loc["Ours / dualprompt", "pseudo_label_precision"] == pytest.approx(0.8)
    assert df.loc["Ours / dualprompt", "seeds"] == 2 and np.isnan(df.loc["entropy / coop", "pclean_auroc"])
    md = mechanism_markdown(recs)
    assert "| Ours / dualprompt | 1 | 2 | 0.700 | 0.600 | 0.700 | 0.600 | 0.800 | 50.0 |" in md
    assert "| entropy / coop | 1 | 1 | 0.750 | 0.600 | 0.700 | — | — | 50.0 |" in md


@pytest.mark.slow
def test_table_metric_cli(tmp_path, workspace):
    from click.testing import CliRunner

    from albench.cli.main import main
    from albench.engine.protocol import RunSpec, execute

    execute(
        RunSpec(
            strategy="entropy", adapter="coop", dataset="toy_shapes", seed=4, rounds=1, adapter_options={"epochs": 1}
        ),
        tmp_path,
        workspace,
    )
    res = CliRunner().invoke(main, ["table", "--results-dir", str(tmp_path), "--metric", "balanced_accuracy"])
    assert res.exit_code == 0, res.output
    assert "Balanced accuracy" in res.output and "| toy_shapes | coop | 1 |" in res.output
    res = CliRunner().invoke(main, ["table", "--results-dir", str(tmp_path), "--metric", "auroc"])
    assert res.exit_code == 2 and "Unknown metric 'auroc'" in res.output


def test_prompted_models_are_scored_on_an_even_sample_unless_already_scored():
    from albench.engine.diagnostics import SAMPLE, needs_encoding, scored_positions

    class _Prompted(_Fixed):
        frozen_image_encoder = False

    assert scored_positions(1000, False).tolist() == list(range(1000))
    pos = scored_positions(1000, True)
    assert pos.size == SAMPLE and pos[0] == 0 and pos[-1] == 999 and np.all(np.diff(pos) > 0)
    assert scored_positions(90, True).size == 90
    ctx = _ctx(_Prompted(_pool_logits()))
    assert needs_encoding(ctx.model, ctx)  # Random with a prompted adapter: the pool was never scored
    _ = ctx.logits
    assert not needs_encoding(ctx.model, ctx)  # the strategy scored it: reuse, full pool
    ctx = _ctx(_Fixed(_pool_logits()))
    assert not needs_encoding(ctx.model, ctx)  # cached frozen features are cheap
    ctx = _ctx(_Prompted(_pool_logits()))
    ctx.selected_with(ctx.model, "own")
    assert not needs_encoding(ctx.model, ctx)


def test_mechanism_section_never_averages_two_configurations():
    from albench.reporting.mechanism import mechanism_frame

    a, b = _rec(4, "Ours", "dualprompt", 0.5, 0.8, 0.9), _rec(5, "Ours", "dualprompt", 0.7, 0.6, 0.7)
    a["config"], b["config"] = {"adapter_options": {"lam": 1.0}}, {"adapter_options": {"lam": 0.0}}
    df = mechanism_frame([a, b])
    assert len(df) == 2 and sorted(df["pclean_auroc"]) == [0.5, 0.7]
    assert all(c.startswith("Ours / dualprompt @") for c in df["column"])


def test_mechanism_section_marks_cec_as_a_reconstruction():
    from albench.reporting.mechanism import mechanism_markdown

    rec = _rec(4, "CEC", "coop", None, 0.7, None)
    rec["strategy"] = "cec"
    md = mechanism_markdown([rec])
    assert "| CEC† / coop | 1 |" in md and "† CEC is a reconstruction" in md
