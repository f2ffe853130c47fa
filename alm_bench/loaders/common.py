"""What every dataset loader shares: where the data lives, reading metadata, checking audio.

A dataset module writes one ``parse(spec, root) -> list[Item]`` that reads the official metadata
under ``root`` (raising :class:`DataMissing` when it is absent) and wraps it with
:func:`dataset_loader`.  The wrapper resolves ``root`` (``--data-dir``, else the download cache),
finds the official layout inside it (archives often add a top folder such as ``ESC-50-master/``),
checks that every audio file exists and that every label is one the spec declares, and gives the
loader ``status`` (for ``alm-bench list tasks``) and ``check`` (for ``alm-bench data check``).
Loaders never touch the network; ``alm-bench data download`` is the only thing that does.
"""

from __future__ import annotations

import csv
import os
import re
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable

from ..audio import inspect
from ..data import AudioMissing, DataMissing, Item
from ..specs import TaskSpec

Parse = Callable[[TaskSpec, Path], list[Item]]


def cache_root(spec: TaskSpec, cache_dir: Path) -> Path:
    """Where ``alm-bench data download`` puts a dataset: shared by all tasks using its loader."""
    return Path(cache_dir) / "data" / spec.dataset.loader


def _laid_out(spec: TaskSpec) -> str:
    return f" laid out as {spec.dataset.layout}" if spec.dataset.layout else ""


def how_to_get(spec: TaskSpec) -> str:
    """The one-line fix for absent data."""
    layout = _laid_out(spec)
    if spec.dataset.downloads or spec.dataset.hf_repo:
        return f"run `alm-bench data download {spec.id}`, or pass --data-dir DIR with a copy{layout}"
    return f"get it from {spec.dataset.source} and pass --data-dir DIR{layout}"


def locate(root: Path, marker: str) -> Path:
    """The directory under ``root`` (itself, or up to two levels down) that holds ``marker``."""
    if (root / marker).exists():
        return root
    for depth in ("*", "*/*"):
        for candidate in sorted(root.glob(depth)):
            if candidate.is_dir() and (candidate / marker).exists():
                return candidate
    return root


def require(spec: TaskSpec, path: Path, what: str = "metadata file") -> Path:
    if not path.exists():
        raise DataMissing(f"task {spec.id}: {what} {path} not found; {how_to_get(spec)}")
    return path


def read_csv(spec: TaskSpec, path: Path, delimiter: str = ",", fieldnames: list[str] | None = None) -> list[dict]:
    """Rows of a metadata table as dicts (header row unless ``fieldnames`` is given)."""
    with open(require(spec, path), newline="", encoding="utf-8-sig") as fh:
        return [dict(row) for row in csv.DictReader(fh, fieldnames=fieldnames, delimiter=delimiter)]


def normalise_label(text: str) -> str:
    """A dataset label as the papers prompt it: ``Vacuum_cleaner`` -> ``vacuum cleaner``."""
    return re.sub(r"\s+", " ", re.sub(r"[_]+", " ", text)).strip().lower()


def prompt_label(spec: TaskSpec, original: str) -> str:
    """The spec's ``dataset.args.label_map`` wins; otherwise :func:`normalise_label`."""
    mapping = spec.dataset.args.get("label_map", {})
    return mapping.get(original, normalise_label(original))


def labelled(spec: TaskSpec, originals: Iterable[str]) -> dict:
    """``labels`` and ``original_labels`` fields of an :class:`Item`."""
    originals = tuple(originals)
    return {"labels": tuple(prompt_label(spec, o) for o in originals), "original_labels": originals}


@dataclass
class DataReport:
    """What ``alm-bench data check`` says about one task's data."""

    task: str
    root: Path
    items: int = 0
    audio_files: int = 0
    missing: list[str] = field(default_factory=list)
    #: audio files that do not decode whole (truncated, padded, empty, wrong length): path -> why
    bad: dict[str, str] = field(default_factory=dict)
    #: the copy holds fewer items than the official set (``dataset.size``)
    expected: int = 0
    problem: str = ""

    @property
    def ok(self) -> bool:
        return not self.problem and not self.missing and not self.bad

    @property
    def status(self) -> str:
        if self.missing:
            return f"incomplete: {len(self.missing)} of {self.audio_files} audio files missing"
        if self.bad:
            return f"damaged: {len(self.bad)} of {self.audio_files} audio files do not decode as their headers say"
        if self.problem:
            return "missing"
        if self.expected and self.items < self.expected:
            return f"ok, partial copy ({self.items} of {self.expected} items)"
        return f"ok ({self.items} items)"


def missing_audio(items: list[Item]) -> tuple[int, list[str]]:
    paths = sorted({p for item in items for p in item.audio})
    return len(paths), [p for p in paths if not Path(p).is_file()]


def damaged_audio(items: list[Item], seconds: float = 0.0,
                  progress: Callable[[int, int], None] | None = None) -> dict[str, str]:
    """Every audio file decoded whole, in parallel (decoding releases the GIL): path -> what is wrong."""
    paths = sorted({p for item in items for p in item.audio})
    bad = {}
    with ThreadPoolExecutor(max_workers=min(8, os.cpu_count() or 1)) as pool:
        for done, (path, problem) in enumerate(zip(paths, pool.map(lambda p: inspect(p, seconds), paths)), 1):
            if problem:
                bad[path] = problem
            if progress:
                progress(done, len(paths))
    return bad


def _check_labels(spec: TaskSpec, items: list[Item]) -> None:
    if not spec.labels:
        return
    known = set(spec.labels)
    stray = sorted({label for item in items for label in item.labels} - known)
    if stray:
        raise DataMissing(f"task {spec.id}: the data has labels the spec does not declare ({', '.join(stray[:5])}); "
                          f"the copy is not the official {spec.dataset.loader} data, or the spec's label_map is wrong")


def _describe_missing(spec: TaskSpec, root: Path, total: int, missing: list[str]) -> str:
    examples = ", ".join(str(Path(p).relative_to(root)) if Path(p).is_relative_to(root) else p for p in missing[:3])
    return (f"task {spec.id}: {len(missing)} of {total} audio files are missing under {root} "
            f"(e.g. {examples}); {how_to_get(spec)}")


def dataset_loader(parse: Parse, marker: str) -> Callable:
    """Wrap ``parse`` into a registered loader; ``marker`` is a path that identifies the layout."""

    def root_of(spec: TaskSpec, data_dir: Path | None, cache_dir: Path) -> Path:
        if data_dir is not None and not Path(data_dir).is_dir():
            raise DataMissing(f"task {spec.id}: data directory {data_dir} does not exist; "
                              f"pass --data-dir with the folder that holds a copy{_laid_out(spec)}")
        base = Path(data_dir) if data_dir is not None else cache_root(spec, cache_dir)
        return locate(base, marker)

    def loader(spec: TaskSpec, data_dir: Path | None, cache_dir: Path) -> list[Item]:
        root = root_of(spec, data_dir, cache_dir)
        items = parse(spec, root)
        total, missing = missing_audio(items)
        if missing:
            _check_labels(spec, items)
            raise AudioMissing(_describe_missing(spec, root, total, missing), items)
        _check_labels(spec, items)
        return items

    def check(spec: TaskSpec, data_dir: Path | None, cache_dir: Path, decode: bool = False,
              progress: Callable[[int, int], None] | None = None) -> DataReport:
        """What is there; with ``decode``, every audio file is also decoded whole (``progress(done, total)``)."""
        report = DataReport(spec.id, Path(data_dir) if data_dir is not None else cache_root(spec, cache_dir),
                            expected=spec.dataset.size)
        try:
            root = report.root = root_of(spec, data_dir, cache_dir)
            items = parse(spec, root)
        except DataMissing as exc:
            report.problem = str(exc)
            return report
        report.items = len(items)
        report.audio_files, report.missing = missing_audio(items)
        if report.missing:
            report.problem = _describe_missing(spec, root, report.audio_files, report.missing)
        elif decode:
            report.bad = damaged_audio(items, spec.dataset.seconds, progress)
        return report

    loader.check = check
    loader.status = lambda spec, data_dir, cache_dir: check(spec, data_dir, cache_dir).status
    loader.marker = marker
    loader.__name__ = loader.__qualname__ = f"load_{parse.__module__.rsplit('.', 1)[-1]}"
    loader.__doc__ = parse.__doc__
    return loader


def folds_by(values: Iterable[str]) -> dict[str, int]:
    """Fold numbers 1..K for the distinct values (e.g. speakers), in sorted order."""
    return {value: i + 1 for i, value in enumerate(sorted(set(values)))}


def dealt_folds(values: Iterable[str], k: int) -> dict[str, int]:
    """Fold 1..k per distinct value (e.g. actor): sorted and dealt round-robin, so a value never spans
    two folds and folds differ by at most one value."""
    return {value: i % k + 1 for i, value in enumerate(sorted(set(values)))}


def contiguous_folds(n: int, k: int) -> list[int]:
    """Folds 1..k for n sorted items, in k contiguous blocks of (nearly) equal size."""
    return [i * k // n + 1 for i in range(n)]


def named_files(spec: TaskSpec, folder: Path, fields: int, pattern: str, dataset: str) -> list[tuple[Path, list[str]]]:
    """The ``.wav`` files of ``folder`` with their ``_``-separated name fields, which the dataset's
    naming convention (``pattern``) fixes at ``fields`` with a numeric first field."""
    files = sorted(p for p in folder.glob("*.wav") if not p.name.startswith("."))  # skip macOS "._" files
    if not files:
        raise DataMissing(f"task {spec.id}: no {folder.name}/*.wav under {folder.parent}; {how_to_get(spec)}")
    named = [(f, f.stem.split("_")) for f in files]
    bad = [f.name for f, parts in named if len(parts) != fields or not parts[0].isdigit()]
    if bad:
        raise DataMissing(f"task {spec.id}: {bad[0]} is not named {pattern}; is {folder.parent} a copy of {dataset}?")
    return named
