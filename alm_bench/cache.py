"""On-disk cache of model outputs (generations, embeddings, scores).

One SQLite database per cache directory, in WAL mode: each batch of outputs is committed in one
transaction, so a run killed at any point loses at most the batch in flight, and several runs may
share one directory (SQLite serialises the writers; readers never see half a batch).  A cache that
cannot be written (a read-only mount of a lab's populated cache, a folder of someone else's) is used
read-only: hits are served, misses are computed and not stored.  A write that fails (disk full) rolls
its batch back and raises a one-line ``StorageError``.
"""

from __future__ import annotations

import io
import json
import sqlite3
import time
import urllib.parse
from pathlib import Path
from typing import Any, Iterable

import numpy as np

from .protocol import Generated
from .storage import fault, is_storage_fault, reason, write_problem

_ELSEWHERE = "pass --cache-dir DIR elsewhere, or --no-cache"
_SCHEMA = "CREATE TABLE IF NOT EXISTS outputs (key TEXT PRIMARY KEY, value BLOB NOT NULL)"


def encode(value: Any) -> bytes:
    """Exact, pickle-free encoding: text as UTF-8, a text with details as JSON, arrays as .npy bytes."""
    if isinstance(value, Generated) and value.details:
        return b"g" + json.dumps({"text": str(value), "details": value.details}, ensure_ascii=False).encode("utf-8")
    if isinstance(value, str):
        return b"t" + value.encode("utf-8")
    buffer = io.BytesIO()
    np.save(buffer, np.asarray(value), allow_pickle=False)
    return b"a" + buffer.getvalue()


def decode(blob: bytes) -> Any:
    if blob[:1] == b"t":
        return blob[1:].decode("utf-8")
    if blob[:1] == b"g":
        record = json.loads(blob[1:].decode("utf-8"))
        return Generated(record["text"], record["details"])
    return np.load(io.BytesIO(blob[1:]), allow_pickle=False)


class OutputCache:
    """``get_many``/``put_many`` over hashed request keys; ``OutputCache(None)`` caches nothing.

    ``read_only`` holds why the cache is used read-only ("" when it is writable)."""

    def __init__(self, directory: Path | str | None) -> None:
        self.directory = Path(directory) if directory else None
        self.read_only = ""
        self._db: sqlite3.Connection | None = None
        if self.directory is None:
            return
        self.path = self.directory / "outputs.sqlite"
        problem = write_problem(self.directory) or self._file_problem()
        if problem is not None:
            self.read_only = reason(problem)
            self._db = self._open_read_only()
            return
        try:
            self._db = sqlite3.connect(self.path, timeout=120, isolation_level=None)
            self._retry(lambda: self._db.execute("PRAGMA journal_mode=WAL"))
            self._db.execute("PRAGMA busy_timeout=120000")
            # WAL + NORMAL: no fsync per commit (it cost 4-7 ms per batch); a killed run still keeps
            # every committed batch, only an OS crash or power loss may drop the last few.
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._retry(lambda: self._db.execute(_SCHEMA))
        except sqlite3.OperationalError as exc:
            if not is_storage_fault(exc):
                raise
            raise fault(exc, "open the output cache", self.path, _ELSEWHERE) from exc

    def _file_problem(self) -> OSError | None:
        try:
            with open(self.path, "ab"):  # opened for writing, nothing written
                pass
        except OSError as exc:
            return exc
        return None

    def _open_read_only(self) -> sqlite3.Connection | None:
        if not self.path.is_file():
            return None  # nothing cached: every call is a miss
        uri = "file:" + urllib.parse.quote(str(self.path.resolve()))
        # mode=ro sees other writers' commits but needs the -shm file or the right to create it; on a
        # read-only mount nobody can change the file, so it is read as immutable (no -shm needed)
        for mode in ("mode=ro", "immutable=1"):
            try:
                db = sqlite3.connect(f"{uri}?{mode}", uri=True)
                db.execute("SELECT 1 FROM outputs LIMIT 1")
                return db
            except sqlite3.OperationalError:
                continue
        return None

    @staticmethod
    def _retry(action, attempts: int = 50):
        # busy_timeout does not cover every lock (e.g. switching to WAL), so retry briefly.
        for attempt in range(attempts):
            try:
                return action()
            except sqlite3.OperationalError as exc:
                if "locked" not in str(exc) or attempt == attempts - 1:
                    raise
                time.sleep(0.1)

    def get_many(self, keys: Iterable[str]) -> dict[str, Any]:
        if self._db is None:
            return {}
        keys = list(dict.fromkeys(keys))
        found: dict[str, Any] = {}
        for start in range(0, len(keys), 500):
            chunk = keys[start : start + 500]
            marks = ",".join("?" * len(chunk))
            rows = self._db.execute(f"SELECT key, value FROM outputs WHERE key IN ({marks})", chunk)
            found.update((key, decode(blob)) for key, blob in rows)
        return found

    def put_many(self, values: dict[str, Any]) -> None:
        if self._db is None or self.read_only or not values:
            return
        rows = [(key, encode(value)) for key, value in values.items()]

        def write():
            with self._db:  # one transaction: rolled back whole if the disk fills
                self._db.execute("BEGIN IMMEDIATE")
                self._db.executemany("INSERT OR IGNORE INTO outputs (key, value) VALUES (?, ?)", rows)

        try:
            self._retry(write)
        except sqlite3.OperationalError as exc:
            if not is_storage_fault(exc):
                raise
            raise fault(exc, "store model outputs in", self.path, _ELSEWHERE) from exc

    def __len__(self) -> int:
        if self._db is None:
            return 0
        return self._db.execute("SELECT COUNT(*) FROM outputs").fetchone()[0]

    def close(self) -> None:
        if self._db is not None:
            self._db.close()
            self._db = None
