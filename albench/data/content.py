"""Identity by content: a streamed SHA-256 of each image file, cached by path + size + mtime + ctime + inode.

Two image folders with the same file names and sizes but different pixels must never share a
task fingerprint (and with it a run's config hash and a feature-cache entry). Hashing every
file's bytes is the only sure way; to keep it cheap, each file's digest is stored in a small
SQLite table keyed by its absolute path and validated by its size, modification time, change
time and inode. An unchanged tree is therefore never re-read: a second fingerprint of a large
dataset costs one ``stat`` per file. ``ctime`` cannot be set by a user, so a file rewritten with
the same size whose ``mtime`` was restored (``touch -d``, ``cp -p``) is still re-hashed.

The table lives in the albench cache folder (``$ALBENCH_CACHE``); when it cannot be written, the
digests are computed anyway and simply not remembered.
"""

from __future__ import annotations

import hashlib
import os
import sqlite3
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Sequence

from albench.api.errors import DataError

CHUNK = 1 << 20
DB_NAME = "file-digests.sqlite"
_QUERY_CHUNK = 500  # SQLite's default limit on host parameters is 999


def hash_file(path: str | os.PathLike) -> str:
    """Hex SHA-256 of a file's bytes, read in 1 MiB chunks (hashlib releases the GIL on large updates)."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(CHUNK):
            h.update(chunk)
    return h.hexdigest()


def _db_path() -> Path:
    from albench.data.features import default_cache_dir

    return default_cache_dir() / DB_NAME


def _connect() -> sqlite3.Connection | None:
    try:
        path = _db_path()
        path.parent.mkdir(parents=True, exist_ok=True)
        con = sqlite3.connect(str(path), timeout=60)
        con.execute("PRAGMA journal_mode=WAL")
        con.execute(
            "CREATE TABLE IF NOT EXISTS digests (path TEXT PRIMARY KEY, size INTEGER, mtime_ns INTEGER, "
            "ctime_ns INTEGER, ino INTEGER, sha256 TEXT)"
        )
        return con
    except (OSError, sqlite3.Error):
        return None  # an unwritable cache only costs re-hashing


def file_digests(paths: Sequence[str | os.PathLike], workers: int | None = None) -> list[str]:
    """SHA-256 of every file in ``paths`` (in order), re-reading only files that changed since last time."""
    abspaths = [os.path.abspath(p) for p in paths]
    stats = []
    for p in abspaths:
        try:
            st = os.stat(p)
        except OSError as exc:
            raise DataError(f"Cannot read image {p}: {exc.strerror}.") from exc
        stats.append((st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino))
    known: dict[str, tuple] = {}
    con = _connect()
    if con is not None:
        try:
            for i in range(0, len(abspaths), _QUERY_CHUNK):
                part = abspaths[i : i + _QUERY_CHUNK]
                rows = con.execute(
                    f"SELECT path, size, mtime_ns, ctime_ns, ino, sha256 FROM digests WHERE path IN "
                    f"({','.join('?' * len(part))})",
                    part,
                ).fetchall()
                known.update((r[0], (tuple(r[1:5]), r[5])) for r in rows)
        except sqlite3.Error:
            known = {}
    out: list[str | None] = [None] * len(abspaths)
    todo = []
    for i, (p, st) in enumerate(zip(abspaths, stats)):
        hit = known.get(p)
        if hit is not None and hit[0] == st:
            out[i] = hit[1]
        else:
            todo.append(i)
    if todo:

        def work(i: int) -> str:
            try:
                return hash_file(abspaths[i])
            except OSError as exc:
                raise DataError(f"Cannot read image {abspaths[i]}: {exc.strerror}.") from exc

        from albench.data.datasets.source import decode_workers

        n = max(1, min(workers or decode_workers(), len(todo)))
        with ThreadPoolExecutor(n) as pool:
            for i, digest in zip(todo, pool.map(work, todo)):
                out[i] = digest
        if con is not None:
            try:
                with con:
                    con.executemany(
                        "INSERT OR REPLACE INTO digests VALUES (?, ?, ?, ?, ?, ?)",
                        [(abspaths[i], *stats[i], out[i]) for i in todo],
                    )
            except sqlite3.Error:
                pass
    if con is not None:
        con.close()
    return [str(d) for d in out]
