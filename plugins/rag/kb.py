"""Knowledge bases: audio-caption pairs from a task split, a folder or a CSV file.

A source is one of

- ``TASK:SPLIT``: a split of a registered task, read by the suite's own loader (``synth-caption:train``,
  ``clotho-caption:development``, ``audiocaps-caption:train``; ``--data-dir`` as for the run);
- a folder holding ``captions.csv`` (or the suite's ``metadata.jsonl`` manifest) and the audio it names;
- a CSV file with a header and columns ``path,caption`` (optional ``labels``, ``;``-separated; optional
  ``id``); paths relative to the CSV's folder.  A clip with several captions takes several rows.

Every caption of a clip is one pair (one entry), as in the paper's KB of audio-text pairs.  The
content hash covers ids, audio hashes, captions and labels: it keys the index (``index``).
"""

from __future__ import annotations

import csv
import dataclasses
import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

from alm_bench.audio import file_sha
from alm_bench.data import DataMissing, read_manifest
from alm_bench.errors import ItemError, UsageError
from alm_bench.protocol import RunEnvironment

HOW = ("pass kb=TASK:SPLIT (e.g. synth-caption:train), a folder holding captions.csv or metadata.jsonl, "
       "or a CSV file with columns path,caption")
CAPTIONS_FILE = "captions.csv"


@dataclass(frozen=True)
class Entry:
    """One audio-caption pair."""

    id: str
    audio: str
    sha: str
    caption: str
    labels: tuple[str, ...] = ()


@dataclass(frozen=True)
class KnowledgeBase:
    source: str
    entries: tuple[Entry, ...]

    @property
    def content_hash(self) -> str:
        digest = hashlib.sha256()
        for e in self.entries:
            digest.update(json.dumps([e.id, e.sha, e.caption, list(e.labels)]).encode())
        return digest.hexdigest()[:16]

    def distinct_clips(self) -> list[tuple[str, str]]:
        """(hash, path) of every distinct clip, in the order of first appearance."""
        seen: dict[str, str] = {}
        for e in self.entries:
            seen.setdefault(e.sha, e.audio)
        return list(seen.items())


def load_kb(source: str, environment: RunEnvironment, limit: int | None = None) -> KnowledgeBase:
    """The pairs of ``source`` (its first ``limit`` clips when given); one-line UsageError if it
    does not exist, holds no captions or names audio that is not there."""
    rows = _rows(str(source), environment)
    if limit:
        rows = _first_clips(rows, limit)
    if not any(caption.strip() for _, _, caption, _ in rows):
        raise UsageError(f"knowledge base {source!r} holds no captions; {HOW}")
    entries = []
    for entry_id, path, caption, labels in rows:
        if not caption.strip():
            continue
        try:
            sha = file_sha(path)
        except ItemError:
            raise UsageError(f"knowledge base {source!r}: audio file {path} is missing; "
                             f"check the source's paths ({HOW})") from None
        entries.append(Entry(entry_id, str(path), sha, caption.strip(), tuple(labels)))
    return KnowledgeBase(str(source), tuple(entries))


Row = tuple[str, str, str, tuple]


def _rows(source: str, environment: RunEnvironment) -> list[Row]:
    task, sep, split = source.rpartition(":")
    registry = environment.registry
    if sep and task in getattr(registry, "tasks", {}):
        return _task_rows(task, split, environment)
    path = Path(source).expanduser()
    if path.is_dir():
        if (path / "metadata.jsonl").is_file():
            return _manifest_rows(path)
        if (path / CAPTIONS_FILE).is_file():
            return _csv_rows(path / CAPTIONS_FILE)
        raise UsageError(f"knowledge base folder {source} has no {CAPTIONS_FILE} or metadata.jsonl; {HOW}")
    if path.is_file():
        return _csv_rows(path)
    what = f"no task {task!r}" if sep and not path.suffix else "no such task split, folder or file"
    raise UsageError(f"knowledge base {source!r}: {what}; {HOW}")


def _task_rows(task: str, split: str, environment: RunEnvironment) -> list[Row]:
    spec = environment.registry.task(task)
    if spec.type != "captioning":
        raise UsageError(f"knowledge base {task}:{split}: task {task} is a {spec.type} task, not captioning; {HOW}")
    loader = environment.registry.loaders.get(spec.dataset.loader)
    one_split = dataclasses.replace(spec, splits=dataclasses.replace(spec.splits, train=None, valid=None, test=split),
                                    folds=0)
    cache = Path(environment.cache_dir) if environment.cache_dir else Path(".")
    try:
        items = loader(one_split, environment.data_dir, cache)
    except DataMissing as exc:
        raise UsageError(f"knowledge base {task}:{split}: {exc}") from None
    except ValueError as exc:  # e.g. a synthetic dataset without that split
        raise UsageError(f"knowledge base {task}:{split}: {exc}; name one of the task's splits") from None
    items = [item for item in items if item.split == split]
    if not items:
        raise UsageError(f"knowledge base {task}:{split}: the split holds no items; name one of the task's splits")
    return [(item.id, item.audio[0], caption, item.labels) for item in items for caption in item.captions or ("",)]


def _manifest_rows(folder: Path) -> list[Row]:
    return [(item.id, item.audio[0], caption, item.labels)
            for item in read_manifest(folder, "kb") for caption in item.captions or ("",)]


def _csv_rows(path: Path) -> list[Row]:
    try:
        with open(path, newline="", encoding="utf-8") as fh:
            records = list(csv.DictReader(fh))
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise UsageError(f"knowledge base {path}: cannot read it as CSV ({exc}); {HOW}") from None
    if records and not {"path", "caption"} <= set(records[0]):
        raise UsageError(f"knowledge base {path}: the header must name columns path and caption; {HOW}")
    rows = []
    for record in records:
        audio = Path(record["path"] or "")
        audio = audio if audio.is_absolute() else path.parent / audio
        labels = tuple(x for x in (record.get("labels") or "").split(";") if x)
        rows.append((record.get("id") or record["path"], str(audio), record.get("caption") or "", labels))
    return rows


def _first_clips(rows: list[Row], limit: int) -> list[Row]:
    clips: set[str] = set()
    kept = []
    for row in rows:
        if row[1] not in clips:
            if len(clips) == limit:
                continue
            clips.add(row[1])
        kept.append(row)
    return kept


def write_csv(path: Path, entries: list[Entry]) -> None:
    """A KB as a CSV file that ``kb=`` accepts (absolute audio paths)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    with open(tmp, "w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(["id", "path", "caption", "labels"])
        for e in entries:
            writer.writerow([e.id, str(Path(e.audio).resolve()), e.caption, ";".join(e.labels)])
    tmp.replace(path)
