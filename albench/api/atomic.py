"""The one atomic file writer: a reader sees the old file or the new one, never a partial one.

Every file albench writes for later reading — run records, failure records, feature-cache
entries, toy caches, tables, extras, report pages and figures, benchmark results — goes
through :func:`atomic_write`. It writes into a temp file in the target's own folder (a rename
is atomic only within one file system), flushes and fsyncs it, gives it ordinary permissions,
renames it over the target, and fsyncs the folder so the rename survives a power loss.

A process killed between the temp write and the rename leaves one ``.<name>.<random>.tmp``
file next to the target and the target itself untouched; :func:`stale_temps` finds such files
and :func:`remove_stale_temps` deletes them (call it only while no other process can be writing
the same target, e.g. under the run's lock).

It lives in the lowest layer (``albench.api``) because the data layer's caches use it too, and
plugins that save artifacts may as well.

``atomic_write`` is deliberately a single module-level function that takes the content as
bytes, text or a callable filling a binary file: crash tests wrap this one function from a
test-only ``sitecustomize`` (tests/crashhooks/) and replace ``content`` with a callable that
writes it and then waits, to kill a process while its temp file exists and the rename has not
happened. Nothing in albench reads a test hook.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any, Union

from albench.api.errors import AlbenchError

Content = Union[bytes, str, Callable[[IO[bytes]], Any]]


class AtomicWriteError(AlbenchError):
    """Writing a file failed; the target is unchanged and no temp file was left.

    ``stage`` is ``"open"`` when the folder could not be created or written (permissions, a file
    in the way, no space for the temp file) and ``"write"`` when writing, syncing or renaming failed.
    """

    def __init__(self, path: Path, stage: str, strerror: str, message: str | None = None):
        self.path, self.stage, self.strerror = Path(path), stage, strerror
        if message is None:
            message = (
                f"Cannot write to {self.path.parent}: {strerror}."
                if stage == "open"
                else f"Writing {self.path} failed: {strerror}; the old file (if any) is unchanged."
            )
        super().__init__(message)


def temp_prefix(path: Path) -> str:
    """The name prefix of ``path``'s temp files (they end in ``.tmp``)."""
    return f".{Path(path).name}."


def atomic_write(path: str | os.PathLike[str], content: Content, *, mode: int | None = None) -> Path:
    """Write ``content`` to ``path`` atomically and durably; return the path.

    ``content`` is bytes, text (written as UTF-8) or a callable ``fill(f)`` that writes into a
    binary file object (``np.savez``, ``fig.savefig(f, format=...)``). ``mode`` defaults to
    ``0o666`` less the umask, as for an ordinary ``open(path, "w")``. Raises
    :class:`AtomicWriteError` on any OS error (after removing its temp file).
    """
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=temp_prefix(path), suffix=".tmp")
    except OSError as exc:
        raise AtomicWriteError(path, "open", exc.strerror or str(exc)) from exc
    try:
        try:
            with os.fdopen(fd, "wb") as f:
                if callable(content):
                    content(f)
                else:
                    f.write(content.encode("utf-8") if isinstance(content, str) else content)
                f.flush()
                os.fsync(f.fileno())
            os.chmod(tmp, (0o666 & ~_umask()) if mode is None else mode)  # mkstemp makes 0600
            os.replace(tmp, path)
        except OSError as exc:
            raise AtomicWriteError(path, "write", exc.strerror or str(exc)) from exc
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    _fsync_dir(path.parent)
    return path


def atomic_write_json(path: str | os.PathLike[str], data: Any, *, indent: int | None = 1) -> Path:
    """Strict JSON (non-finite floats refused) through :func:`atomic_write`, with a final newline."""
    text = json.dumps(data, indent=indent, allow_nan=False) + "\n"
    return atomic_write(path, text)


def stale_temps(path: str | os.PathLike[str]) -> list[Path]:
    """Temp files of ``path`` left by writers that were killed mid-write."""
    path = Path(path)
    if not path.parent.is_dir():
        return []
    return sorted(path.parent.glob(f"{_glob_escape(temp_prefix(path))}*.tmp"))


def remove_stale_temps(path: str | os.PathLike[str]) -> int:
    """Delete ``path``'s stale temp files; call only while no other process writes ``path``."""
    n = 0
    for t in stale_temps(path):
        t.unlink(missing_ok=True)
        n += 1
    return n


def _glob_escape(s: str) -> str:
    return "".join(f"[{c}]" if c in "*?[" else c for c in s)


def _fsync_dir(directory: Path) -> None:
    try:
        dfd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(dfd)
    except OSError:
        pass  # some file systems cannot sync a directory; the rename itself is still atomic
    finally:
        os.close(dfd)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask
