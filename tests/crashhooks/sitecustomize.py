"""Test-only crash timing, injected from the test side (never installed, never imported by albench).

A crash test puts this folder on ``PYTHONPATH`` of a subprocess and sets
``ALBENCH_TEST_SLOW_WRITE="<seconds>:<glob>"`` (or ``"<seconds>"`` for every file). Python imports
``sitecustomize`` at start-up; this one wraps :func:`albench.api.atomic.atomic_write`, the one
function every durable file goes through, so that for a target matching the glob the temp file is
written and flushed, then the writer sleeps before the rename: the test kills the process inside
that window and checks that only a stale temp file, never a partial target, is left.
"""

import os

_SPEC = os.environ.get("ALBENCH_TEST_SLOW_WRITE")

if _SPEC:
    import time
    from pathlib import Path

    import albench.api.atomic as _atomic

    _seconds, _, _pattern = _SPEC.partition(":")
    _write = _atomic.atomic_write

    def atomic_write(path, content, **kwargs):
        """``atomic_write`` whose content callback pauses after writing when ``path`` matches."""
        if _pattern and not Path(path).match(_pattern):
            return _write(path, content, **kwargs)

        def fill_then_wait(f):
            if callable(content):
                content(f)
            else:
                f.write(content.encode("utf-8") if isinstance(content, str) else content)
            f.flush()
            time.sleep(float(_seconds))

        return _write(path, fill_then_wait, **kwargs)

    atomic_write.__wrapped__ = _write
    _atomic.atomic_write = atomic_write
