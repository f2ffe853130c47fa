"""Dataset items and the loaders that produce them.

A loader turns a task spec plus a data location into a list of :class:`Item`.  Loaders are
registered by name (hook ``alm_bench_dataset_loaders``) and a spec's ``dataset.loader`` picks one.
A loader signature is ``loader(spec, data_dir, cache_dir) -> list[Item]``; ``data_dir`` is the
user's ``--data-dir`` (a local copy in the official layout, never touching the network) or None.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path

from .errors import UsageError
from .specs import TaskSpec


class DataMissing(UsageError):
    """The task's data is absent or incomplete; the message says how many files and how to fix it."""


class AudioMissing(DataMissing):
    """The metadata is there but audio files are not: fatal, except for a model that reads no audio."""

    def __init__(self, message: str, items: list["Item"]) -> None:
        super().__init__(message)
        self.items = items


@dataclass(frozen=True)
class Item:
    """One evaluation item: its audio file(s) and ground truth."""

    id: str
    audio: tuple[str, ...]
    labels: tuple[str, ...] = ()
    #: the dataset's own label strings, before normalisation for prompting
    original_labels: tuple[str, ...] = ()
    captions: tuple[str, ...] = ()
    question: str = ""
    answer: str = ""
    fold: int = 0
    split: str = ""
    meta: dict = field(default_factory=dict, compare=False)


def fingerprint(items: list[Item], shas: dict[str, str]) -> str:
    """Identifies the exact evaluation data: item ids and the hashes of their audio."""
    digest = hashlib.sha256()
    for item in items:
        digest.update(item.id.encode())
        for path in item.audio:
            digest.update(shas.get(path, "missing").encode())
    return digest.hexdigest()[:16]


def read_manifest(split_dir: Path, split: str) -> list[Item]:
    """Items from a ``metadata.jsonl`` whose audio paths are relative to its directory."""
    items = []
    with open(split_dir / "metadata.jsonl", encoding="utf-8") as fh:
        for line in fh:
            rec = json.loads(line)
            items.append(
                Item(
                    id=rec["id"],
                    audio=tuple(str(split_dir / p) for p in rec["audio"]),
                    labels=tuple(rec.get("labels", ())),
                    original_labels=tuple(rec.get("labels", ())),
                    captions=tuple(rec.get("captions", ())),
                    question=rec.get("question", ""),
                    answer=rec.get("answer", ""),
                    fold=int(rec.get("fold", 0)),
                    split=split,
                    meta={k: v for k, v in rec.items() if k in ("events", "clips", "pair", "swapped")},
                )
            )
    return items


def synth_loader(spec: TaskSpec, data_dir: Path | None, cache_dir: Path) -> list[Item]:
    """The embedded synthetic suite: generated from seeds into the data cache on first use.

    With ``--data-dir`` only an existing copy is read (nothing is generated into a user's folder)."""
    from . import synth

    name = spec.dataset.args.get("dataset", "")
    if name not in synth.DATASETS:
        raise UsageError(f"task {spec.id}: dataset.args.dataset must be one of {', '.join(synth.DATASETS)}")
    splits = [s for s in (spec.splits.train, spec.splits.valid, spec.splits.test) if s]
    items = []
    for split in splits:
        if data_dir is None:
            split_dir = synth.build_dataset(name, split, _synth_root(cache_dir))
        else:
            split_dir = Path(data_dir) / name / split
            if not (split_dir / "metadata.jsonl").is_file():
                raise DataMissing(f"task {spec.id}: no synthetic '{name}/{split}' under {data_dir} "
                                  f"(expected {split_dir}/metadata.jsonl); run without --data-dir to generate it")
        items.extend(read_manifest(split_dir, split))
    return items


def _synth_root(cache_dir: Path) -> Path:
    from . import synth

    return Path(cache_dir) / "data" / f"synth-v{synth.DATASET_VERSION}"


def _synth_status(spec: TaskSpec, data_dir: Path | None, cache_dir: Path) -> str:
    root = Path(data_dir) if data_dir else _synth_root(cache_dir)
    built = (root / spec.dataset.args.get("dataset", "") / spec.splits.test / "metadata.jsonl").is_file()
    return "ok (synthetic)" if built else "generated on first use"


synth_loader.status = _synth_status
