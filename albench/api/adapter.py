"""The adapter contract: a parameter-efficient classifier built on a frozen CLIP.

An adapter is constructed fresh every AL round with an ``AdapterEnv`` (backbone,
task, data bank, device, seeds) and its options, then:

* ``fit(labeled, pseudo=None)`` trains on pool indices with labels
  (``Labeled``); ``pseudo`` is a second, pseudo-labelled set offered by
  strategies such as DualPrompt (only used when ``accepts_pseudo_labels``).
  Returns a dict of training facts (steps, final loss, seconds) for the record.
  Must cope with tiny sets (fewer samples than a batch, classes with no label).
* ``predict_logits(split, indices=None)`` -> float (n, C) on CPU.
* ``image_features(split, indices=None)`` -> (n, D) features of *its* image
  encoder (the frozen cached ones unless it prompts the vision tower).
* ``classifier()`` -> (C, D) class weights it predicts with (for BADGE).

Only the adapter's own parameters may change; the backbone stays frozen
(checked by ``albench.api.conformance``). ``frozen_image_encoder = True`` tells the
harness that the adapter reads cached features only.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from collections.abc import Hashable, Sequence
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np
import torch

from albench.api.dataset import Dataset
from albench.api.options import resolve_options

if TYPE_CHECKING:  # the layers above the contract; imported for type checkers only
    from albench.clip.backbone import Backbone
    from albench.data.features import DataBank


@dataclass
class Labeled:
    """Pool indices with their (human or pseudo) labels."""

    indices: np.ndarray
    labels: np.ndarray

    def __post_init__(self) -> None:
        self.indices = np.asarray(self.indices, dtype=np.int64)
        self.labels = np.asarray(self.labels, dtype=np.int64)
        if self.indices.shape != self.labels.shape:
            raise ValueError(f"{len(self.indices)} indices but {len(self.labels)} labels")

    def __len__(self) -> int:
        return len(self.indices)


@dataclass
class AdapterEnv:
    """What every adapter (and model-training strategy) gets from the harness."""

    backbone: Backbone
    dataset: Dataset
    bank: DataBank
    seed: int = 0  # the run seed; derive streams with albench.api.seeding
    round: int = 0
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def task(self) -> Dataset:
        """Old name of ``dataset``, kept for one release."""
        return self.dataset

    @property
    def device(self) -> torch.device:
        return self.backbone.device

    @property
    def num_classes(self) -> int:
        return self.dataset.num_classes


class Adapter(ABC):
    """Base class for adapters: implement ``fit``, ``predict_logits`` and ``classifier`` (abstract), and
    ``image_features`` / ``trainable_parameters`` when the defaults (frozen cached features, no parameters)
    do not fit."""

    name: ClassVar[str] = "base"
    frozen_image_encoder: ClassVar[bool] = True
    accepts_pseudo_labels: ClassVar[bool] = False
    defaults: ClassVar[dict[str, Any]] = {}
    schema: ClassVar[dict[str, Any]] = {}  # option name -> albench.api.options.Opt (type, range, choices)

    def __init__(self, env: AdapterEnv, **options: Any) -> None:
        self.env = env
        self.options = resolve_options("adapter", self.name, self.defaults, options, self.schema)

    @abstractmethod
    def fit(self, labeled: Labeled, pseudo: Labeled | None = None) -> dict[str, Any]:
        """Train on ``labeled`` (and ``pseudo`` when ``accepts_pseudo_labels``); return training facts."""

    @abstractmethod
    def predict_logits(self, split: str, indices: np.ndarray | None = None) -> torch.Tensor:
        """Float (n, C) logits on the CPU for ``split`` (or its ``indices``)."""

    def image_features(self, split: str, indices: np.ndarray | None = None) -> torch.Tensor:
        feats = self.env.bank.features(split)
        return feats if indices is None else feats[torch.as_tensor(np.asarray(indices), dtype=torch.long)]

    @abstractmethod
    def classifier(self) -> torch.Tensor:
        """(C, D) class weights the adapter predicts with."""

    def trainable_parameters(self) -> list[torch.nn.Parameter]:
        """Parameters ``fit`` optimises (conformance checks that nothing else changes)."""
        return []

    def batch_key(self) -> Hashable | None:
        """What must agree for this adapter to train together with others (``fit_together``); None: never.

        Batched runs (DESIGN.md): the protocol runs several runs in lock step and hands the adapters whose
        keys are equal to one ``fit_together`` call. An adapter that returns a key promises that
        ``fit_together`` gives every adapter the result its own ``fit`` would give (records equal apart
        from timings).
        """
        return None

    @classmethod
    def fit_together(
        cls, adapters: Sequence[Adapter], labeled: Sequence[Labeled], pseudo: Sequence[Labeled | None]
    ) -> list[dict[str, Any] | Exception]:
        """Fit adapters with one ``batch_key``; a run's exception comes back in its place. Default: one by one."""
        out: list[dict[str, Any] | Exception] = []
        for adapter, lab, ps in zip(adapters, labeled, pseudo):
            try:
                out.append(adapter.fit(lab, ps))
            except Exception as exc:  # noqa: BLE001 - handed back to that run alone
                out.append(exc)
        return out


class ZeroShotClassifier:
    """CLIP zero-shot with the task's template (Radford et al. 2021); the round-1 model."""

    def __init__(self, env: AdapterEnv):
        self.env = env
        self._weights: torch.Tensor | None = None

    def classifier(self) -> torch.Tensor:
        if self._weights is None:
            self._weights = self.env.backbone.text_classifier(self.env.dataset.prompts()).cpu()
        return self._weights

    def image_features(self, split: str, indices: np.ndarray | None = None) -> torch.Tensor:
        feats = self.env.bank.features(split)
        return feats if indices is None else feats[torch.as_tensor(np.asarray(indices), dtype=torch.long)]

    @torch.no_grad()
    def predict_logits(self, split: str, indices: np.ndarray | None = None) -> torch.Tensor:
        f = torch.nn.functional.normalize(self.image_features(split, indices).float(), dim=-1)
        return self.env.backbone.logit_scale * f @ self.classifier().T


def accuracy(logits: torch.Tensor, labels: np.ndarray) -> float:
    """Top-1 accuracy in percent."""
    return float((logits.argmax(1).cpu().numpy() == np.asarray(labels)).mean() * 100.0)
