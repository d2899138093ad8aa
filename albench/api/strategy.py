"""The acquisition-strategy contract.

A strategy is asked once per AL round for ``ctx.budget`` new pool indices.
Contract (checked by the harness every round and by ``albench.api.conformance``):

* return a 1-D integer array of exactly ``ctx.budget`` distinct indices, all in
  ``ctx.unlabeled`` (never a labelled one, never out of range);
* be deterministic given ``ctx.rng`` (draw all randomness from it);
* do not mutate the context's arrays.

What a strategy may use (computed lazily, so Random costs nothing):
``ctx.probs`` (N, C) class probabilities of the *current* model on the whole
pool (zero-shot CLIP in round 1, the adapter trained last round afterwards),
``ctx.logits``, ``ctx.features`` (N, D) L2-normalised image features from the
current model's image encoder, ``ctx.classifier`` (C, D) its normalised
class weights, ``ctx.labeled`` / ``ctx.labels``, ``ctx.env`` (backbone, task,
data bank, device, for strategies that train their own model) and
``ctx.state``, a dict that persists across the rounds of one run. A strategy
may hand pseudo-labels to the next adapter with ``ctx.offer_pseudo_labels``.

What a strategy tells the harness (read by the per-round diagnostics): a
strategy that selects with a model it trained itself says so with
``ctx.selected_with(model, how)`` (otherwise ``ctx.model`` made the selection),
and every pick that came from a fallback or a random fill rather than the
strategy's criterion is counted with ``ctx.note_fallback(count, reason)``.

Strategies with ``needs_labels = True`` are not called while nothing is
labelled; the harness selects uniformly at random instead (the paper's "—").
"""

from __future__ import annotations

import functools
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar, Protocol

import numpy as np
import torch

from albench.api.options import resolve_options

if TYPE_CHECKING:
    from albench.api.adapter import AdapterEnv


class Predictor(Protocol):
    """What a trained adapter (or zero-shot CLIP) offers to strategies."""

    def predict_logits(self, split: str, indices: np.ndarray | None = None) -> torch.Tensor: ...

    def image_features(self, split: str, indices: np.ndarray | None = None) -> torch.Tensor: ...

    def classifier(self) -> torch.Tensor: ...


@dataclass
class RoundContext:
    """Everything a strategy receives for one round."""

    round: int  # 1-based index of the round being selected
    budget: int  # how many indices to return
    pool_size: int
    num_classes: int
    labeled: np.ndarray  # pool indices labelled so far, in labelling order
    labels: np.ndarray  # their labels
    rng: np.random.Generator
    model: Predictor | None = None  # the current model (zero-shot in round 1)
    env: AdapterEnv | None = None  # backbone, dataset, data bank, device, seed
    state: dict[str, Any] = field(default_factory=dict)
    pseudo_labels: tuple[np.ndarray, np.ndarray] | None = None
    selection_model: Any = None  # set by ``selected_with``: the model that selected, when not ``model``
    selection_model_note: str | None = None
    fallbacks: dict[str, int] = field(default_factory=dict)  # reason -> picks not chosen by the strategy's criterion

    def __post_init__(self) -> None:
        from albench.api.errors import AlbenchError

        self.labeled = np.asarray(self.labeled, dtype=np.int64)
        self.labels = np.asarray(self.labels, dtype=np.int64)
        if self.budget <= 0:
            raise AlbenchError(f"Round budget must be positive, got {self.budget}.")
        n_unlabeled = self.pool_size - np.unique(self.labeled).size
        if self.budget > n_unlabeled:
            raise AlbenchError(
                f"Round {self.round} asks for {self.budget} labels but only {n_unlabeled} pool samples are unlabelled."
            )

    @functools.cached_property
    def unlabeled(self) -> np.ndarray:
        """Sorted pool indices that are not labelled yet."""
        mask = np.ones(self.pool_size, dtype=bool)
        mask[self.labeled] = False
        return np.flatnonzero(mask)

    def _need_model(self, what: str) -> Predictor:
        if self.model is None:
            raise RuntimeError(f"this round context has no model, so {what} is unavailable")
        return self.model

    @functools.cached_property
    def logits(self) -> np.ndarray:
        return self._need_model("logits").predict_logits("pool").float().cpu().numpy()

    @functools.cached_property
    def probs(self) -> np.ndarray:
        """Softmax of ``logits`` in float64 (no underflow surprises downstream)."""
        z = self.logits.astype(np.float64)
        z = z - z.max(axis=1, keepdims=True)
        e = np.exp(z)
        return e / e.sum(axis=1, keepdims=True)

    @functools.cached_property
    def features(self) -> np.ndarray:
        f = self._need_model("features").image_features("pool").float()
        return torch.nn.functional.normalize(f, dim=-1).cpu().numpy()

    @functools.cached_property
    def classifier(self) -> np.ndarray:
        w = self._need_model("classifier").classifier().float()
        return torch.nn.functional.normalize(w, dim=-1).cpu().numpy()

    def offer_pseudo_labels(self, indices: np.ndarray, labels: np.ndarray) -> None:
        """Pseudo-labelled pool samples for adapters that accept them (DualPrompt)."""
        self.pseudo_labels = (np.asarray(indices, dtype=np.int64), np.asarray(labels, dtype=np.int64))

    def selected_with(self, model: Any, how: str) -> None:
        """Record that the selection came from ``model`` (one the strategy trained), described by ``how``."""
        self.selection_model, self.selection_model_note = model, how

    def note_fallback(self, count: int, reason: str) -> None:
        """Count ``count`` picks that came from a fallback or random fill (``reason`` names which)."""
        if count > 0:
            self.fallbacks[reason] = self.fallbacks.get(reason, 0) + int(count)


class Strategy(ABC):
    """Base class for acquisition strategies; subclass and implement ``select`` (abstract)."""

    name: ClassVar[str] = "base"
    needs_labels: ClassVar[bool] = False  # True: random selection while nothing is labelled
    stochastic: ClassVar[bool] = True  # False: the selection does not depend on the rng
    defaults: ClassVar[dict[str, Any]] = {}
    schema: ClassVar[dict[str, Any]] = {}  # option name -> albench.api.options.Opt (type, range, choices)

    def __init__(self, **options: Any) -> None:
        self.options = resolve_options("strategy", self.name, self.defaults, options, self.schema)

    @abstractmethod
    def select(self, ctx: RoundContext) -> np.ndarray:
        """``ctx.budget`` distinct unlabelled pool indices (see the module docstring for the contract)."""

    def __repr__(self) -> str:
        return f"{type(self).__name__}({', '.join(f'{k}={v!r}' for k, v in self.options.items())})"


def check_selection(name: str, picked: object, ctx: RoundContext) -> np.ndarray:
    """The harness's contract check on a strategy's output; raises ContractError."""
    from albench.api.errors import ContractError

    arr = np.asarray(picked)
    if arr.ndim != 1 or not (arr.size == 0 or np.issubdtype(arr.dtype, np.integer)):
        raise ContractError(
            f"strategy '{name}' returned {arr.dtype} array of shape {arr.shape}; "
            f"expected a 1-D integer array of {ctx.budget} indices."
        )
    arr = arr.astype(np.int64)
    if arr.size != ctx.budget:
        raise ContractError(
            f"strategy '{name}' returned {arr.size} indices in round {ctx.round}; the budget is {ctx.budget}."
        )
    if arr.size and (arr.min() < 0 or arr.max() >= ctx.pool_size):
        bad = arr[(arr < 0) | (arr >= ctx.pool_size)][:5].tolist()
        raise ContractError(f"strategy '{name}' returned out-of-range indices {bad} (pool size {ctx.pool_size}).")
    if np.unique(arr).size != arr.size:
        vals, counts = np.unique(arr, return_counts=True)
        raise ContractError(f"strategy '{name}' returned duplicate indices {vals[counts > 1][:5].tolist()}.")
    already = np.intersect1d(arr, ctx.labeled)
    if already.size:
        raise ContractError(f"strategy '{name}' returned already-labelled indices {already[:5].tolist()}.")
    return arr
