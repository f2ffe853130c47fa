"""Audio controls: re-run a model on inputs that carry no information about the items.

``silence`` replaces every clip by digital silence of the same length and rate; ``shuffle`` gives
each item another item's clip (a seeded permutation over all items of the task).  Both change only
which file an item points to, before anything is hashed or decoded, so cache keys, the executor and
the evaluators work unchanged.  A model that really listens falls to chance under both; a model
whose numbers do not move is not using its audio.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import soundfile as sf

from .data import Item
from .errors import UsageError
from .results import Result

CONTROLS = ("silence", "shuffle")


def check_control(control: str | None) -> str:
    if control and control not in CONTROLS:
        raise UsageError(f"unknown control {control!r}; choose one of {', '.join(CONTROLS)}")
    return control or ""


def apply_control(items: list[Item], control: str, seed: int, cache_dir: Path) -> list[Item]:
    """The items with their audio replaced as the control says (unchanged without one)."""
    if control == "silence":
        silent = {path: _silent_copy(path, Path(cache_dir) / "controls" / "silence")
                  for path in sorted({p for item in items for p in item.audio})}
        return [dataclasses.replace(item, audio=tuple(silent[p] for p in item.audio)) for item in items]
    if control == "shuffle":
        paths = [p for item in items for p in item.audio]
        order = np.random.default_rng([seed, len(paths)]).permutation(len(paths))
        shuffled = iter([paths[i] for i in order])
        return [dataclasses.replace(item, audio=tuple(next(shuffled) for _ in item.audio)) for item in items]
    return items


def _silent_copy(path: str, directory: Path) -> str:
    """A silent WAV as long as ``path`` (shared by every clip of that length); an unreadable file is
    kept as it is, so it fails as it would have."""
    try:
        info = sf.info(path)
    except (sf.LibsndfileError, RuntimeError, OSError):
        return path
    target = directory / f"{info.frames}x{info.samplerate}.wav"
    if not target.is_file():
        directory.mkdir(parents=True, exist_ok=True)
        tmp = target.with_suffix(f".{np.random.default_rng().integers(1 << 30)}.tmp")
        sf.write(tmp, np.zeros(max(info.frames, 1), dtype=np.float32), info.samplerate, format="WAV",
                 subtype="PCM_16")
        tmp.replace(target)
    return str(target)


def control_effect(controlled: Result, uncontrolled: Result | None, method) -> dict:
    """How far each metric fell from the run on the real audio (positive: the model got worse)."""
    if uncontrolled is None:
        return {}
    drops = {}
    for name, value in controlled.metrics.items():
        before = uncontrolled.metrics.get(name)
        if value is None or before is None:
            continue
        declared = method.metric(name)
        drops[name] = (before - value) if declared is None or declared.higher_is_better else (value - before)
    return {"uncontrolled": {k: uncontrolled.metrics.get(k) for k in drops}, "fell_by": drops,
            "uncontrolled_finished_at": uncontrolled.finished_at}
