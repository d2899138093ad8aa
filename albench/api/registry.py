"""Plugin registries over Python entry points: the one name -> thing mechanism.

Strategies, adapters and datasets are found through the entry-point groups
``albench.strategies``, ``albench.adapters`` and ``albench.datasets``; albench's
own built-ins are declared there in ``pyproject.toml`` exactly as a third-party
package would declare its own. Bench sections and launchers use the same class
with in-process registrations. Listing reads metadata only (no import), loading happens on
first use and checks the loaded object against the base class. Modelled on
lm-evaluation-harness's lazy registry and submitit's tolerant plugin loading.
"""

from __future__ import annotations

import functools
import warnings
from dataclasses import dataclass
from importlib.metadata import EntryPoint, entry_points
from typing import Generic, TypeVar

from albench.api.errors import PluginLoadError, UnknownNameError

T = TypeVar("T")
FIRST_PARTY = "albench"


@dataclass(frozen=True)
class PluginInfo:
    """What the registry knows about a plugin without importing it."""

    name: str
    target: str  # "module:attr"
    distribution: str
    version: str


class Registry(Generic[T]):
    """Name -> class registry backed by one entry-point group."""

    def __init__(self, kind: str, group: str, base: type | str | None):
        """``base``: the class every plugin subclasses (or "module:Class", imported on first use); None for
        registries of callables (dataset loaders, bench sections, launchers)."""
        self.kind, self.group, self._base = kind, group, base
        self._loaded: dict[str, type] = {}

    @property
    def base(self) -> type | None:
        """The base class (given as "module:Class" so that listing imports nothing heavy)."""
        if isinstance(self._base, str):
            import importlib

            mod, attr = self._base.split(":")
            self._base = getattr(importlib.import_module(mod), attr)
        return self._base

    @functools.cached_property
    def _entries(self) -> dict[str, tuple[EntryPoint, PluginInfo]]:
        found: dict[str, tuple[EntryPoint, PluginInfo]] = {}
        for ep in entry_points(group=self.group):
            dist = getattr(ep, "dist", None)
            info = PluginInfo(ep.name, ep.value, dist.metadata["Name"] if dist else "?", dist.version if dist else "?")
            if ep.name in found:
                keep = found[ep.name][1]
                if keep.target == info.target:
                    continue  # the same distribution seen twice on sys.path
                winner = info if info.distribution == FIRST_PARTY else keep
                warnings.warn(
                    f"{self.kind} '{ep.name}' is registered by both {keep.distribution} and "
                    f"{info.distribution}; using {winner.distribution}'s.",
                    stacklevel=2,
                )
                if winner is keep:
                    continue
            found[ep.name] = (ep, info)
        return found

    def refresh(self) -> None:
        """Forget what was discovered (after installing a plugin in-process)."""
        self.__dict__.pop("_entries", None)
        self._loaded.clear()

    def names(self) -> list[str]:
        return sorted(self._entries)

    def __contains__(self, name: object) -> bool:
        return name in self._entries

    def info(self, name: str) -> PluginInfo:
        self._check_known(name)
        return self._entries[name][1]

    def describe(self) -> list[PluginInfo]:
        return [self._entries[n][1] for n in self.names()]

    def _check_known(self, name: str) -> None:
        if name not in self._entries:
            raise UnknownNameError(self.kind, name, self.names())

    def get(self, name: str) -> type[T]:
        """Import (once) and return the class registered as ``name``."""
        if name in self._loaded:
            return self._loaded[name]
        self._check_known(name)
        ep, info = self._entries[name]
        try:
            obj = ep.load()
        except Exception as exc:  # a broken plugin must not take the others down
            raise PluginLoadError(
                f"{self.kind} '{name}' from distribution {info.distribution} {info.version} failed to import "
                f"({info.target}): {type(exc).__name__}: {exc}"
            ) from exc
        wrong = self._wrong_kind(obj)
        if wrong:
            raise PluginLoadError(
                f"{self.kind} '{name}' from distribution {info.distribution} {info.version} points to {info.target}, "
                f"which is {wrong}."
            )
        if self.base is not None and getattr(obj, "name", None) != name:
            obj.name = name  # the registered name is the name records use
        self._loaded[name] = obj
        return obj

    def register(self, name: str, cls: type, distribution: str = "<runtime>") -> None:
        """Register a class in-process (notebooks, tests); entry points remain the way to ship a plugin."""
        wrong = self._wrong_kind(cls)
        if wrong:
            raise PluginLoadError(f"{cls!r} is {wrong}.")
        target = f"{getattr(cls, '__module__', '?')}:{getattr(cls, '__qualname__', repr(cls))}"
        self._entries[name] = (EntryPoint(name, target, self.group), PluginInfo(name, target, distribution, "-"))
        if self.base is not None:
            cls.name = name
        self._loaded[name] = cls

    def _wrong_kind(self, obj: object) -> str | None:
        """Why ``obj`` cannot be a plugin of this registry, or None."""
        base = self.base
        if base is None:
            return None if callable(obj) else "not callable"
        if not (isinstance(obj, type) and issubclass(obj, base)):
            return f"not a subclass of {base.__module__}.{base.__name__}"
        return None

    def unregister(self, name: str) -> None:
        self._entries.pop(name, None)
        self._loaded.pop(name, None)
