"""Old flat import paths (``albench.backbone``, ``albench.toy.model``, ...) kept for one release.

The modules moved into layer packages (``albench.api``, ``albench.clip``, ...). Importing an old
name returns the very module object of its new home, so ``monkeypatch`` and ``isinstance`` see one
module, not a copy. New code imports the new paths; this table is deleted after the next release.
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.util
import sys
from types import ModuleType

MOVED_MODULES: dict[str, str] = {
    "strategy": "api.strategy",
    "adapter": "api.adapter",
    "options": "api.options",
    "errors": "api.errors",
    "seeding": "api.seeding",
    "accounting": "api.accounting",
    "registry": "api.registry",
    "plugins": "api.plugins",
    "conformance": "testing",
    "augment": "components.augment",
    "training": "components.training",
    "backbone": "clip.backbone",
    "text_prefix": "clip.text_prefix",
    "tasks": "data.tasks",
    "features": "data.features",
    "datasets": "data.datasets",
    "toy": "data.toy",
    "protocol": "engine.protocol",
    "records": "engine.records",
    "grid": "engine.grid",
    "launchers": "engine.launchers",
    "environment": "engine.environment",
    "tables": "reporting.tables",
    "report": "reporting.report",
    "paper": "reporting.paper",
    "cli_data": "cli.data",
}


def new_name(fullname: str) -> str | None:
    """The current module name for an old ``albench.<name>[.sub]`` path, or None if it did not move."""
    parts = fullname.split(".")
    if len(parts) < 2 or parts[0] != "albench" or parts[1] not in MOVED_MODULES:
        return None
    return ".".join(["albench", MOVED_MODULES[parts[1]], *parts[2:]])


class _AliasLoader(importlib.abc.Loader):
    def __init__(self, target: str) -> None:
        self.target = target

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> ModuleType:
        return importlib.import_module(self.target)

    def exec_module(self, module: ModuleType) -> None:
        """The target module is already executed by ``import_module``."""


class _AliasFinder(importlib.abc.MetaPathFinder):
    def find_spec(
        self, fullname: str, path: object = None, target: object = None
    ) -> importlib.machinery.ModuleSpec | None:
        moved = new_name(fullname)
        if moved is None:
            return None
        return importlib.util.spec_from_loader(fullname, _AliasLoader(moved))


def install() -> None:
    if not any(isinstance(f, _AliasFinder) for f in sys.meta_path):
        sys.meta_path.insert(0, _AliasFinder())
