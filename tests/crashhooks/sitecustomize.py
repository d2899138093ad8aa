"""Test-only crash and interrupt timing, injected from the test side (never installed, never imported by albench).

A crash test puts this folder on ``PYTHONPATH`` of an ``albench`` subprocess; Python imports ``sitecustomize``
at start-up. Each hook stays off unless its environment variable is set:

``ALBENCH_TEST_SLOW_WRITE="<seconds>:<glob>"`` (or ``"<seconds>"`` for every file)
    :func:`albench.api.atomic.atomic_write`, the one function every durable file goes through, writes and
    flushes the temp file of a target matching the glob, then sleeps before the rename: the test kills the
    process inside that window and checks that only a stale temp file, never a partial target, is left.
``ALBENCH_TEST_HOLD_WRITE="<seconds>:<glob>"``
    ``atomic_write`` sleeps *before* it starts on a matching target, and says so on stderr (``crashhooks:
    holding <path>``). The run has computed its result but nothing of it is on disk yet, so a signal sent
    once that line appears lands while the grid is still running, by construction, however fast the runs
    are or however loaded the machine is (the 0.1 s runs of the crash grid otherwise race the signal).
``ALBENCH_TEST_SIGINT=default``
    SIGINT raises ``KeyboardInterrupt`` as at a terminal, even where the process inherited it ignored or
    blocked. A POSIX shell without job control starts a background command (``pytest ... &`` in a script)
    with SIGINT ignored, ``exec`` keeps that, and Python then leaves SIGINT ignored: the SIGINT tests would
    see the grid run to its end (exit 0) instead of testing albench's Ctrl-C path.

The ``atomic_write`` wrapper is installed lazily, by a ``sys.meta_path`` finder that patches
``albench.api.atomic`` the moment the program itself imports it (before any importer can bind the
function). Importing albench here instead would load it before the interpreter puts the working directory
on ``sys.path`` (``sitecustomize`` runs first), so a victim could run another albench than the one it would
import itself, and the hook would change what is imported when; the lazy hook changes neither.
"""

import os
import signal
import sys

_TARGET = "albench.api.atomic"
_SLOW = os.environ.get("ALBENCH_TEST_SLOW_WRITE")
_HOLD = os.environ.get("ALBENCH_TEST_HOLD_WRITE")

if os.environ.get("ALBENCH_TEST_SIGINT") == "default":
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})


def _parse(spec):
    """``"<seconds>:<glob>"`` -> (seconds, glob); an empty glob matches every file."""
    seconds, _, pattern = spec.partition(":")
    return float(seconds), pattern


def _wrap(write):
    """``atomic_write`` (``write``) with the pauses asked for in the environment."""
    import time
    from pathlib import Path

    slow = _parse(_SLOW) if _SLOW else None
    hold = _parse(_HOLD) if _HOLD else None

    def matches(path, pause):
        return pause is not None and (not pause[1] or Path(path).match(pause[1]))

    def atomic_write(path, content, **kwargs):
        """``atomic_write`` that waits before starting and/or between writing and renaming, for matching paths."""
        if matches(path, hold):
            print(f"crashhooks: holding {path}", file=sys.stderr, flush=True)
            time.sleep(hold[0])
        if not matches(path, slow):
            return write(path, content, **kwargs)

        def fill_then_wait(f):
            if callable(content):
                content(f)
            else:
                f.write(content.encode("utf-8") if isinstance(content, str) else content)
            f.flush()
            time.sleep(slow[0])

        return write(path, fill_then_wait, **kwargs)

    atomic_write.__wrapped__ = write
    return atomic_write


class _PatchingLoader:
    """Delegates to the module's own loader, then swaps in the wrapped ``atomic_write``."""

    def __init__(self, loader):
        self._loader = loader

    def create_module(self, spec):
        return self._loader.create_module(spec)

    def exec_module(self, module):
        self._loader.exec_module(module)
        module.atomic_write = _wrap(module.atomic_write)

    def __getattr__(self, name):  # get_source, is_package, ...: the real loader's
        return getattr(self._loader, name)


class _PatchOnImport:
    """A meta-path finder that finds ``albench.api.atomic`` as the other finders would, with a patching loader."""

    def find_spec(self, fullname, path=None, target=None):
        if fullname != _TARGET:
            return None
        for finder in sys.meta_path:
            if finder is self or not hasattr(finder, "find_spec"):
                continue
            spec = finder.find_spec(fullname, path, target)
            if spec is not None:
                if spec.loader is not None:
                    spec.loader = _PatchingLoader(spec.loader)
                return spec
        return None


if _SLOW or _HOLD:
    if _TARGET in sys.modules:  # something imported albench before us (another start-up hook): patch it now
        sys.modules[_TARGET].atomic_write = _wrap(sys.modules[_TARGET].atomic_write)
    else:
        sys.meta_path.insert(0, _PatchOnImport())
