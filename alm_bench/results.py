"""Results files: one JSON of metrics and provenance and one JSONL of item records per
(model, task, method, prompt[, control]), written atomically so a crash or a full disk never leaves a
truncated file.

This module is the one owner of the results schema: the runner writes through it, and the
leaderboard and ``compare`` read through it (older files without intervals or chance levels read too).
"""

from __future__ import annotations

import json
import math
import os
import re
import tempfile
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from .storage import fault, file_mode, is_storage_fault
from .errors import UsageError


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
    #: metric -> 95% interval {"low", "high", "method", "resamples"}
    intervals: dict[str, dict[str, Any]] = field(default_factory=dict)
    #: metric -> analytic chance level on this task (the methods' declarations)
    chance: dict[str, float] = field(default_factory=dict)
    #: metric -> whether a higher value is better (the methods' declarations)
    higher_is_better: dict[str, bool] = field(default_factory=dict)
    #: an audio control ("silence", "shuffle"), or "" for the model's real inputs
    control: str = ""
    #: with a control: the uncontrolled run's metrics and how far the model fell from them
    control_effect: dict[str, Any] = field(default_factory=dict)
    #: where it was read from, relative to the results directory (not written)
    path: str = field(default="", compare=False)
    #: ``finished_at`` of older runs of the same key that this one supersedes (not written)
    superseded: tuple[str, ...] = field(default=(), compare=False)

    def stem(self) -> str:
        stem = f"{self.method}--{slug(self.prompt)}" if self.prompt else self.method
        return f"{stem}--control-{self.control}" if self.control else stem

    @property
    def key(self) -> tuple[str, str, str, str, str]:
        return self.model, self.task, self.method, self.prompt, self.control

    @property
    def finished_at(self) -> str:
        return str(self.provenance.get("finished_at") or "")

    def to_json(self) -> dict[str, Any]:
        return {
            "model": self.model, "task": self.task, "method": self.method, "prompt": self.prompt,
            "control": self.control,
            "metrics": {k: _finite_or_none(v) for k, v in self.metrics.items()},
            "intervals": {k: {**v, "low": _finite_or_none(v["low"]), "high": _finite_or_none(v["high"])}
                          for k, v in self.intervals.items()},
            "chance": self.chance, "higher_is_better": self.higher_is_better, "unavailable": self.unavailable,
            "primary_metric": self.primary_metric,
            "n_items": self.n_items, "n_failed": self.n_failed, "partial": self.partial,
            "dataset_items": self.dataset_items, "expected_items": self.expected_items,
            "control_effect": self.control_effect, "details": self.details, "provenance": self.provenance,
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


def portable_name(name: str) -> str:
    """A model name as a folder name every file system accepts (``hear:module`` -> ``hear--module``)."""
    return re.sub(r'[<>:"/\\|?*]', "--", name)


def result_path(output_dir: Path, result: Result) -> Path:
    return (Path(output_dir) / portable_name(result.model) / result.task / result.stem()).with_suffix(".json")


def write_result(output_dir: Path, result: Result, records: list[dict]) -> Path:
    """Write ``<output_dir>/<model>/<task>/<method>[--<prompt>][--control-<c>].json`` and its ``.jsonl``,
    both or neither."""
    base = result_path(output_dir, result).with_suffix("")
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


def records_path(path: Path) -> Path:
    return Path(path).with_suffix(".jsonl")


def read_records(path: Path) -> list[dict]:
    """The item records written next to a results file."""
    source = records_path(path)
    try:
        with open(source, encoding="utf-8") as fh:
            return [json.loads(line) for line in fh if line.strip()]
    except (OSError, ValueError) as exc:
        raise UsageError(f"cannot read the item records {source} ({exc}); re-run the evaluation") from None


# ---------------------------------------------------------------------------------------------- reading

def load_results(results_dir: Path | str) -> list[Result]:
    """Every ``*.json`` under ``results_dir`` (recursively); per key only the newest run is kept."""
    root = Path(results_dir)
    if not root.is_dir():
        raise UsageError(f"results directory {root} does not exist; pass --results-dir DIR "
                         "(a directory written by `alm-bench run --output-dir DIR`)")
    paths = sorted(p for p in root.rglob("*.json") if p.is_file())  # sorted: file-system order never matters
    if not paths:
        raise UsageError(f"no results files (*.json) under {root}; run `alm-bench run --output-dir {root}` "
                         "first or pass --results-dir DIR")
    return newest([read_result(path, root) for path in paths])


def read_result(path: Path, root: Path | None = None) -> Result:
    path = Path(path)
    rel = path.relative_to(root).as_posix() if root else path.name
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise _malformed(path, f"not valid JSON ({exc.msg} at line {exc.lineno})") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise _malformed(path, f"unreadable ({exc})") from None
    return parse_result(data, path, rel)


def _malformed(path: Path, what: str) -> UsageError:
    return UsageError(f"malformed results file {path}: {what}; re-run the evaluation or remove the file")


def parse_result(data: Any, path: Path, rel: str = "") -> Result:
    if not isinstance(data, dict):
        raise _malformed(path, "not a JSON object")
    for name, kind in (("model", str), ("task", str), ("method", str), ("metrics", dict)):
        if not isinstance(data.get(name), kind):
            raise _malformed(path, f"field '{name}' is missing or not a {'mapping' if kind is dict else 'string'}")
    metrics = {}
    for name, value in data["metrics"].items():
        if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float))):
            raise _malformed(path, f"metric '{name}' is {value!r}, not a number or null")
        metrics[name] = None if value is None or not math.isfinite(value) else float(value)
    dataset_items, expected = _count(data, "dataset_items", path), _count(data, "expected_items", path)
    # a smaller copy than the official evaluation set is partial even when every item of the copy was used
    partial = bool(data.get("partial")) or bool(expected and dataset_items is not None and dataset_items < expected)
    return Result(
        model=data["model"], task=data["task"], method=data["method"], prompt=str(data.get("prompt") or ""),
        metrics=metrics, primary_metric=str(data.get("primary_metric") or next(iter(metrics), "")),
        n_items=_count(data, "n_items", path) or 0, n_failed=_count(data, "n_failed", path) or 0,
        partial=partial, dataset_items=dataset_items, provenance=_mapping(data, "provenance"),
        expected_items=expected,
        unavailable={str(k): str(v) for k, v in (data.get("unavailable") or {}).items()},
        details=_mapping(data, "details"), intervals=_intervals(data, path),
        chance={str(k): float(v) for k, v in _mapping(data, "chance").items() if _number(v)},
        higher_is_better={str(k): v for k, v in _mapping(data, "higher_is_better").items() if isinstance(v, bool)},
        control=str(data.get("control") or ""), control_effect=_mapping(data, "control_effect"), path=rel)


def _mapping(data: dict, name: str) -> dict:
    return data.get(name) if isinstance(data.get(name), dict) else {}


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _intervals(data: dict, path: Path) -> dict[str, dict[str, Any]]:
    found = {}
    for name, interval in _mapping(data, "intervals").items():
        if not (isinstance(interval, dict) and all(k in interval for k in ("low", "high"))):
            raise _malformed(path, f"interval of '{name}' is {interval!r}, not a mapping with low and high")
        if _number(interval["low"]) and _number(interval["high"]):
            found[name] = interval
    return found


def _count(data: dict, name: str, path: Path) -> int | None:
    value = data.get(name)
    if value is not None and (isinstance(value, bool) or not isinstance(value, int)):
        raise _malformed(path, f"field '{name}' is {value!r}, not an integer")
    return value


def _when(result: Result) -> datetime:
    """``finished_at`` as an aware datetime; a missing or unreadable one counts as oldest."""
    try:
        when = datetime.fromisoformat(result.finished_at.replace("Z", "+00:00"))
    except ValueError:
        return datetime.min.replace(tzinfo=timezone.utc)
    return when if when.tzinfo else when.replace(tzinfo=timezone.utc)


def newest(results: list[Result]) -> list[Result]:
    """Per (model, task, method, prompt, control), the newest result; it lists the ones it supersedes."""
    groups: dict[tuple, list[Result]] = {}
    for result in results:
        groups.setdefault(result.key, []).append(result)
    kept = []
    for key in sorted(groups):
        ordered = sorted(groups[key], key=lambda r: (_when(r), r.path))
        kept.append(replace(ordered[-1], superseded=tuple(r.finished_at or "unknown time" for r in ordered[:-1])))
    return kept
