"""On-disk cache of model outputs (generations, embeddings, scores).

One SQLite database per cache directory, in WAL mode: each batch of outputs is committed in one
transaction, so a run killed at any point loses at most the batch in flight, and several runs may
share one directory (SQLite serialises the writers; readers never see half a batch).
"""

from __future__ import annotations

import io
import sqlite3
import time
from pathlib import Path
from typing import Any, Iterable

import numpy as np

_SCHEMA = "CREATE TABLE IF NOT EXISTS outputs (key TEXT PRIMARY KEY, value BLOB NOT NULL)"


def encode(value: Any) -> bytes:
    """Exact, pickle-free encoding: text as UTF-8, arrays as .npy bytes."""
    if isinstance(value, str):
        return b"t" + value.encode("utf-8")
    buffer = io.BytesIO()
    np.save(buffer, np.asarray(value), allow_pickle=False)
    return b"a" + buffer.getvalue()


def decode(blob: bytes) -> Any:
    if blob[:1] == b"t":
        return blob[1:].decode("utf-8")
    return np.load(io.BytesIO(blob[1:]), allow_pickle=False)


class OutputCache:
    """``get_many``/``put_many`` over hashed request keys; ``OutputCache(None)`` caches nothing."""

    def __init__(self, directory: Path | str | None) -> None:
        self.directory = Path(directory) if directory else None
        self._db: sqlite3.Connection | None = None
        if self.directory is not None:
            self.directory.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(self.directory / "outputs.sqlite", timeout=120, isolation_level=None)
            self._retry(lambda: self._db.execute("PRAGMA journal_mode=WAL"))
            self._db.execute("PRAGMA busy_timeout=120000")
            # WAL + NORMAL: no fsync per commit (it cost 4-7 ms per batch); a killed run still keeps
            # every committed batch, only an OS crash or power loss may drop the last few.
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._retry(lambda: self._db.execute(_SCHEMA))

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
        if self._db is None or not values:
            return
        rows = [(key, encode(value)) for key, value in values.items()]

        def write():
            with self._db:  # one transaction
                self._db.execute("BEGIN IMMEDIATE")
                self._db.executemany("INSERT OR IGNORE INTO outputs (key, value) VALUES (?, ?)", rows)

        self._retry(write)

    def __len__(self) -> int:
        if self._db is None:
            return 0
        return self._db.execute("SELECT COUNT(*) FROM outputs").fetchone()[0]

    def close(self) -> None:
        if self._db is not None:
            self._db.close()
            self._db = None
