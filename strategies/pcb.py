"""PCB: class-balancing wrapper around any base strategy.

Paper: Bang, Ahn & Lee, "Active Prompt Learning in Vision Language Models"
(CVPR 2024). Reference code:
kaist-dmlab/pcb ``trainers/alvlm.py`` (the AL loop) and
``trainers/active_learning/pcb.py`` (``PCB.select``).

The base strategy (``base``, default ``entropy``; its options in ``base_options``
as ``"key=value,key=value"``) first proposes ``candidate_fraction`` (10 %) of the
unlabelled pool (at least B); PCB then pseudo-labels the candidates with the
current model and fills the budget one pick at a time: take the class with the
fewest labels so far (true labels of the labelled set plus this round's picks;
ties to the lowest class id) and pick a random candidate predicted as that class.

Quirks of the reference, documented:

* the reference applies PCB *always* after round 0 (there is no switch, so its
  "entropy" is entropy+PCB); here it is opt-in as its own strategy name;
* when no candidate is predicted as the neediest class, the reference appends a
  random candidate without updating the counts, so every later pick is random
  too. Ours (``fallback=skip``, default) marks that class exhausted and moves to
  the next neediest; ``fallback=reference`` reproduces the reference.

A base strategy that needs labels gets random candidates while nothing is
labelled (as the harness would do for it).
"""

from __future__ import annotations

import dataclasses
from typing import Callable

import numpy as np

from albench.api.errors import AlbenchError
from albench.api.options import Opt, parse_option_strings
from albench.api.strategy import RoundContext, Strategy, check_selection

_CACHED = ("unlabeled", "logits", "probs", "features", "classifier")
FALLBACKS = ("skip", "reference")


def sub_context(ctx: RoundContext, budget: int, rng: np.random.Generator) -> RoundContext:
    """A copy of ``ctx`` with another budget and rng, sharing the already-computed arrays."""
    sub = dataclasses.replace(ctx, budget=budget, rng=rng)
    for key in _CACHED:
        if key in ctx.__dict__:
            sub.__dict__[key] = ctx.__dict__[key]
    return sub


def balance(
    candidates: np.ndarray,
    predicted: np.ndarray,
    counts: np.ndarray,
    budget: int,
    rng: np.random.Generator,
    fallback: str = "skip",
    on_fallback: Callable[[int], None] | None = None,
) -> np.ndarray:
    """PCB's balancing loop over ``candidates`` with predicted classes ``predicted``.

    Each pick drawn from any free candidate rather than the neediest class is
    reported to ``on_fallback`` (one call per such pick)."""
    if fallback not in FALLBACKS:
        raise AlbenchError(f"pcb: fallback='{fallback}' is not one of {', '.join(FALLBACKS)}.")
    counts = counts.astype(np.int64).copy()
    free = np.ones(len(candidates), dtype=bool)
    exhausted = np.zeros(len(counts), dtype=bool)
    out: list[int] = []
    while len(out) < budget:
        masked = np.where(exhausted, np.iinfo(np.int64).max, counts)
        c = int(np.argmin(masked))
        pool = np.flatnonzero(free & (predicted == c))
        if pool.size and not exhausted[c]:
            j = int(rng.choice(pool))
            counts[c] += 1
        elif fallback == "reference" or exhausted.all():
            j = int(rng.choice(np.flatnonzero(free)))
            if on_fallback is not None:
                on_fallback(1)
        else:
            exhausted[c] = True
            continue
        free[j] = False
        out.append(j)
    return candidates[np.asarray(out, dtype=np.int64)]


class PCB(Strategy):
    """Base strategy proposes 10 % of the pool; PCB keeps B of them, class-balanced by prediction."""

    name = "pcb"
    defaults = {"base": "entropy", "base_options": "", "candidate_fraction": 0.1, "fallback": "skip"}
    schema = {"candidate_fraction": Opt(float, 0, 1, low_open=True), "fallback": Opt(str, choices=FALLBACKS)}

    def __init__(self, **options):
        super().__init__(**options)
        from albench.api.plugins import STRATEGIES

        o = self.options
        if o["base"] == "pcb":
            raise AlbenchError("pcb: base='pcb' would wrap itself; choose another base strategy.")
        self.base_cls = STRATEGIES.get(o["base"])
        items = [s for s in str(o["base_options"]).split(",") if s.strip()]
        self.base = self.base_cls(**parse_option_strings(items))

    def select(self, ctx: RoundContext) -> np.ndarray:
        u, B = ctx.unlabeled, ctx.budget
        n_cand = min(len(u), max(B, int(np.ceil(self.options["candidate_fraction"] * len(u)))))
        sub = sub_context(ctx, n_cand, np.random.default_rng(ctx.rng.integers(2**63 - 1)))
        if self.base_cls.needs_labels and ctx.labeled.size == 0:
            cand = sub.rng.choice(u, size=n_cand, replace=False)
        else:
            cand = check_selection(self.options["base"], self.base.select(sub), sub)
        predicted = ctx.probs[cand].argmax(axis=1)
        counts = np.bincount(ctx.labels, minlength=ctx.num_classes)
        return balance(
            cand,
            predicted,
            counts,
            B,
            ctx.rng,
            self.options["fallback"],
            on_fallback=lambda n: ctx.note_fallback(n, "random pick: neediest class has no candidate"),
        )
