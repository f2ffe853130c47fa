"""Results files: one JSON of metrics and provenance and one JSONL of item records per
(model, task, method, prompt), written atomically so a crash or a full disk never leaves a truncated file."""

from __future__ import annotations

import json
import math
import os
import re
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .storage import fault, file_mode, is_storage_fault


def slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-") or "default"


@dataclass
class Result:
    model: str
    task: str
    method: str
    prompt: str
    metrics: dict[str, float | None]
    primary_metric: str
    n_items: int
    n_failed: int
    #: the evaluation used a subset of the official data (``--limit``, or a partial copy); never shown
    #: as a full-dataset score
    partial: bool
    #: items the data copy holds
    dataset_items: int
    provenance: dict[str, Any]
    #: items of the complete official dataset (the spec's ``dataset.size``), None if unknown
    expected_items: int | None = None
    unavailable: dict[str, str] = field(default_factory=dict)
    details: dict[str, Any] = field(default_factory=dict)

    def stem(self) -> str:
        return f"{self.method}--{slug(self.prompt)}" if self.prompt else self.method

    def to_json(self) -> dict[str, Any]:
        return {
            "model": self.model, "task": self.task, "method": self.method, "prompt": self.prompt,
            "metrics": {k: _finite_or_none(v) for k, v in self.metrics.items()},
            "unavailable": self.unavailable, "primary_metric": self.primary_metric,
            "n_items": self.n_items, "n_failed": self.n_failed, "partial": self.partial,
            "dataset_items": self.dataset_items, "expected_items": self.expected_items, "details": self.details, "provenance": self.provenance,
        }


def _finite_or_none(value: Any) -> Any:
    if value is None:
        return None
    value = float(value)
    return value if math.isfinite(value) else None


def _json_default(value: Any) -> Any:
    if hasattr(value, "tolist"):  # numpy scalars and arrays
        return value.tolist()
    if isinstance(value, (set, tuple)):
        return list(value)
    return str(value)


def write_atomic(path: Path, text: str) -> None:
    write_files({path: text})


def write_files(texts: dict[Path, str]) -> None:
    """Write every file whole or not at all: each goes to a temporary sibling first and all are renamed
    into place only once all are written (a full disk fails while writing, never half-way through the
    renames).  New files get the umask's mode, as ``open()`` would give them."""
    staged: dict[Path, str] = {}
    try:
        for path, text in texts.items():
            path.parent.mkdir(parents=True, exist_ok=True)
            fd, staged[path] = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                os.fchmod(fh.fileno(), file_mode())
                fh.write(text)
        for path, tmp in staged.items():
            os.replace(tmp, path)
    except BaseException:
        for tmp in staged.values():
            Path(tmp).unlink(missing_ok=True)
        raise


def write_result(output_dir: Path, result: Result, records: list[dict]) -> Path:
    """Write ``<output_dir>/<model>/<task>/<method>[--<prompt>].json`` and its ``.jsonl``, both or neither."""
    base = Path(output_dir) / result.model / result.task / result.stem()
    lines = "".join(json.dumps(r, default=_json_default, ensure_ascii=False) + "\n" for r in records)
    path = base.with_suffix(".json")
    summary = json.dumps(result.to_json(), default=_json_default, indent=2, ensure_ascii=False) + "\n"
    try:
        write_files({base.with_suffix(".jsonl"): lines, path: summary})
    except OSError as exc:
        if not is_storage_fault(exc):
            raise
        raise fault(exc, "write results to", exc.filename or base.parent,
                    "pass --output-dir DIR elsewhere") from exc
    return path
