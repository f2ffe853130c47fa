"""The embedded synthetic sound suite: procedural, deterministic, offline.

Ten easily told-apart sound kinds (tones, sweeps, noises, plucks, bells...) are placed in 2 s clips
with known pitch, loudness, position and repetition count, which gives exact ground truth for
classification, tagging, counting, captioning and two-clip questions without downloading anything.
Every item is rendered from its own PCG64 stream seeded by (dataset, split, index): any item can be
regenerated alone, and train, valid and test never share a seed.
"""

from __future__ import annotations

import json
import math
import os
import re
import shutil
import socket
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence, TypeVar

import numpy as np
import soundfile as sf

SAMPLE_RATE = 16000
CLIP_SECONDS = 2.0
#: bump whenever generation changes: callers put it in cache directory names
DATASET_VERSION = "1"

DATASETS: dict[str, dict[str, int]] = {
    "events": {"train": 2000, "valid": 200, "test": 250},
    "tagging": {"train": 1000, "valid": 200, "test": 200},
    "count": {"train": 1000, "valid": 100, "test": 200},
    "captions": {"train": 2000, "valid": 100, "test": 200},
    "compare": {"train": 1000, "valid": 100, "test": 200},
    # items 2k and 2k+1 hold the same two clips in both orders: the answer flips when they are swapped
    "order": {"train": 1000, "valid": 100, "test": 200},
}
SPLITS = ("train", "valid", "test")
POSITIONS = ("beginning", "middle", "end")
FOLDS = 5

_N = int(SAMPLE_RATE * CLIP_SECONDS)
_EDGE_MS = 20  # keeps events off the clip's first and last samples
_MIN_GAP_MS = 50  # silence between repetitions: wide enough to hear (and count) them apart
_MAX_MS = 450
# RMS over an occurrence, 18 dB apart, with headroom for the peakiest kinds (crest factor up to ~17 dB)
_LEVEL_DB = {"loud": -20.0, "quiet": -38.0}
_FLOOR_DB = -70.0  # background noise, so no clip is digital silence
_PEAK = 10 ** (-1 / 20)

T = TypeVar("T")
Synth = Callable[[np.random.Generator, int, float], np.ndarray]


def _time(n: int) -> np.ndarray:
    return np.arange(n) / SAMPLE_RATE


def _partials(
    rng: np.random.Generator, n: int, freqs: np.ndarray, amps: np.ndarray, taus: np.ndarray | None = None
) -> np.ndarray:
    """Sum of sines, each optionally decaying exponentially with its own time constant.  Random phases
    sound the same but avoid the tall peaks of aligned ones."""
    t = _time(n)[:, None]
    waves = np.sin(2 * np.pi * t * freqs + rng.uniform(0, 2 * np.pi, len(freqs)))
    if taus is not None:
        waves *= np.exp(-t / taus)
    return waves @ amps


def _beep(rng: np.random.Generator, n: int, f0: float) -> np.ndarray:
    return np.sin(2 * np.pi * f0 * _time(n) + rng.uniform(0, 2 * np.pi))


def _sweep(n: int, f_start: float, f_end: float) -> np.ndarray:
    # exponential sweep: equal time per octave, which is how a glide is heard
    rate = np.log(f_end / f_start) / (n / SAMPLE_RATE)
    return np.sin(2 * np.pi * f_start * np.expm1(rate * _time(n)) / rate)


def _rising(rng: np.random.Generator, n: int, f0: float) -> np.ndarray:
    return _sweep(n, f0 / 2, f0 * 2)


def _falling(rng: np.random.Generator, n: int, f0: float) -> np.ndarray:
    return _sweep(n, f0 * 2, f0 / 2)


def _siren(rng: np.random.Generator, n: int, f0: float) -> np.ndarray:
    # a fast warble, so even a 0.1 s occurrence holds a full cycle of the modulation
    lfo = np.sin(2 * np.pi * rng.uniform(7, 11) * _time(n) + rng.uniform(0, 2 * np.pi))
    return np.sin(2 * np.pi * np.cumsum(f0 * (1 + 0.25 * lfo)) / SAMPLE_RATE)


def _buzz(rng: np.random.Generator, n: int, f0: float) -> np.ndarray:
    k = np.arange(1, int(7000 // f0) + 1)  # band-limited sawtooth: no aliasing
    return _partials(rng, n, k * f0, 1 / k)


def _pluck(rng: np.random.Generator, n: int, f0: float) -> np.ndarray:
    # upper harmonics die faster, as on a plucked string
    k = np.arange(1, min(20, int(6000 // f0)) + 1)
    return _partials(rng, n, k * f0, 1 / k, n / SAMPLE_RATE / 3 / k**0.7)


# Risset's bell: inharmonic partial ratios, relative amplitudes and relative decay times
_BELL = np.array([
    [0.56, 0.92, 1.19, 1.71, 2.00, 2.74, 3.00, 3.76, 4.07],
    [1.00, 0.67, 1.00, 1.80, 2.67, 1.67, 1.46, 1.33, 1.33],
    [1.00, 0.90, 0.65, 0.55, 0.33, 0.35, 0.25, 0.20, 0.15],
])


def _bell(rng: np.random.Generator, n: int, f0: float) -> np.ndarray:
    # still ringing when cut off, unlike the pluck: that long tail is what says 'bell'
    return _partials(rng, n, _BELL[0] * f0, _BELL[1], _BELL[2] * n / SAMPLE_RATE)


def _clicks(rng: np.random.Generator, n: int, f0: float) -> np.ndarray:
    # at 50-80 clicks/s any 20 ms window holds a click, so one train never looks like several
    pulses = np.zeros(n)
    pulses[np.arange(0, n, SAMPLE_RATE / rng.uniform(50, 80)).astype(int)] = 1.0
    # each click a 2 ms ringing tick: as sharp to the ear as an impulse, but far less peaky
    t = _time(int(0.01 * SAMPLE_RATE))
    tick = np.exp(-t / 0.002) * np.sin(2 * np.pi * rng.uniform(2000, 4000) * t)
    return np.convolve(pulses, tick)[:n]


def _noise(rng: np.random.Generator, n: int, f0: float) -> np.ndarray:
    return rng.standard_normal(n)


def _rumble(rng: np.random.Generator, n: int, f0: float) -> np.ndarray:
    freqs = np.fft.rfftfreq(n, 1 / SAMPLE_RATE)
    lowpass = 1 / np.sqrt(1 + (freqs / rng.uniform(60, 150)) ** 8)
    return np.fft.irfft(np.fft.rfft(rng.standard_normal(n)) * lowpass, n)


@dataclass(frozen=True)
class Kind:
    label: str
    plural: str
    synth: Synth
    #: the band of the reference frequency for each pitch; None where the kind has no pitch
    pitch_hz: dict[str, tuple[float, float]] | None
    verbs: tuple[str, ...] = ("sounds", "is heard", "occurs")


KINDS: tuple[Kind, ...] = (
    Kind("beep", "beeps", _beep, {"low": (300, 500), "high": (1500, 2500)}),
    Kind("rising chirp", "rising chirps", _rising, {"low": (500, 800), "high": (1600, 2400)}),
    Kind("falling chirp", "falling chirps", _falling, {"low": (500, 800), "high": (1600, 2400)}),
    Kind("click train", "click trains", _clicks, None, ("sounds", "is heard", "plays")),
    Kind("noise burst", "noise bursts", _noise, None),
    Kind("rumble", "rumbles", _rumble, None, ("sounds", "is heard", "rumbles")),
    Kind("siren", "sirens", _siren, {"low": (400, 600), "high": (1300, 2000)}, ("sounds", "is heard", "wails")),
    Kind("pluck", "plucks", _pluck, {"low": (150, 250), "high": (600, 1000)}),
    Kind("bell", "bells", _bell, {"low": (300, 450), "high": (1000, 1500)}, ("sounds", "is heard", "rings")),
    Kind("buzz", "buzzes", _buzz, {"low": (90, 140), "high": (300, 450)}),
)
EVENT_LABELS: tuple[str, ...] = tuple(k.label for k in KINDS)
_KIND = {k.label: k for k in KINDS}
TONAL_LABELS: tuple[str, ...] = tuple(k.label for k in KINDS if k.pitch_hz)


@dataclass(frozen=True)
class Event:
    """One event kind repeated ``count`` times, all within one third of the clip."""

    kind: str
    pitch: str | None
    loudness: str
    position: str
    count: int
    onsets: tuple[float, ...]
    duration: float
    f0: float
    level_db: float

    def record(self) -> dict:
        return {
            "kind": self.kind, "onset": self.onsets[0], "duration": self.duration, "pitch": self.pitch,
            "loudness": self.loudness, "position": self.position, "count": self.count, "onsets": list(self.onsets),
        }


def _pick(rng: np.random.Generator, options: Sequence[T]) -> T:
    return options[int(rng.integers(len(options)))]


def _place(rng: np.random.Generator, position: str, count: int) -> tuple[tuple[float, ...], float]:
    """Onsets and duration (s) of ``count`` repetitions inside the position's third, in whole ms
    so that the metadata states the rendered times exactly."""
    third = CLIP_SECONDS * 1000 / 3
    zone = POSITIONS.index(position)
    start = max(math.ceil(zone * third), _EDGE_MS)
    span = min(math.floor((zone + 1) * third), int(CLIP_SECONDS * 1000) - _EDGE_MS) - start
    fit = (span - (count - 1) * _MIN_GAP_MS) / count
    duration = int(rng.uniform(0.7, 1.0) * min(fit, _MAX_MS))
    # spread the spare time randomly before, between and after the repetitions
    spare = rng.random(count + 1)
    spare *= (span - count * duration - (count - 1) * _MIN_GAP_MS) / spare.sum()
    onsets = start + np.floor(np.cumsum(spare[:count])) + np.arange(count) * (duration + _MIN_GAP_MS)
    return tuple(int(o) / 1000 for o in onsets), duration / 1000


def sample_event(
    rng: np.random.Generator,
    kind: str,
    *,
    pitch: str | None = None,
    loudness: str | None = None,
    position: str | None = None,
    count: int | None = None,
) -> Event:
    """An event of ``kind``; attributes not given are drawn at random."""
    bands = _KIND[kind].pitch_hz
    pitch = (pitch or _pick(rng, ("low", "high"))) if bands else None
    loudness = loudness or _pick(rng, ("quiet", "loud"))
    position = position or _pick(rng, POSITIONS)
    count = count or int(rng.integers(1, 5))
    onsets, duration = _place(rng, position, count)
    # log-uniform within the band: equal chance per musical interval
    f0 = float(np.exp(rng.uniform(*np.log(bands[pitch])))) if bands else 0.0
    level = _LEVEL_DB[loudness] + rng.uniform(-1, 1)
    return Event(kind, pitch, loudness, position, count, onsets, duration, f0, level)


def _fade(x: np.ndarray, fade_in: float = 0.004, fade_out: float = 0.01) -> np.ndarray:
    """Raised-cosine ramps: no clicks at the edges, and a clean silence between repetitions."""
    n_in, n_out = (min(int(s * SAMPLE_RATE), len(x) // 2) for s in (fade_in, fade_out))
    x[:n_in] *= 0.5 - 0.5 * np.cos(np.pi * np.arange(n_in) / n_in)
    x[len(x) - n_out :] *= 0.5 + 0.5 * np.cos(np.pi * np.arange(1, n_out + 1) / n_out)
    return x


def _occurrence(rng: np.random.Generator, event: Event) -> np.ndarray:
    x = _fade(_KIND[event.kind].synth(rng, round(event.duration * SAMPLE_RATE), event.f0))
    x *= 10 ** (event.level_db / 20) / np.sqrt(np.mean(x**2))
    peak = np.abs(x).max()
    return x * min(1.0, _PEAK / peak)  # a safety net: the levels leave headroom for every kind


def render_clip(rng: np.random.Generator, events: Sequence[Event]) -> np.ndarray:
    """The clip's float32 waveform: background floor plus every repetition of every event."""
    x = rng.standard_normal(_N) * 10 ** (_FLOOR_DB / 20)
    for event in events:
        wave = _occurrence(rng, event)  # a repeated sound is the same sound each time
        for onset in event.onsets:
            i = round(onset * SAMPLE_RATE)
            x[i : i + len(wave)] += wave[: _N - i]
    return np.clip(x, -1.0, 1.0).astype(np.float32)


# ---- captions and questions: small seeded grammars ----

_COUNT_ADV = {1: ("once", "one time"), 2: ("twice", "two times"), 3: ("three times",), 4: ("four times",)}
_COUNT_NUM = {1: ("a", "a single", "one"), 2: ("two",), 3: ("three",), 4: ("four",)}
_WHERE = {
    "beginning": ("at the beginning", "at the start", "early in the clip"),
    "middle": ("in the middle", "midway through", "in the middle of the clip"),
    "end": ("at the end", "near the end", "late in the clip"),
}
_LOUD = {"loud": ("loud",), "quiet": ("quiet", "soft", "faint")}
_PITCH = {"low": ("low", "low-pitched"), "high": ("high", "high-pitched"), None: ("",)}


def _words(*parts: str) -> str:
    return " ".join(p for p in parts if p)


def _noun_phrase(rng: np.random.Generator, e: Event, loudness: bool = True) -> str:
    """e.g. 'three loud high-pitched beeps' or 'a single quiet rumble'."""
    noun = _KIND[e.kind].label if e.count == 1 else _KIND[e.kind].plural
    loud = _pick(rng, _LOUD[e.loudness]) if loudness else ""
    return _words(_pick(rng, _COUNT_NUM[e.count]), loud, _pick(rng, _PITCH[e.pitch]), noun)


def _clause(rng: np.random.Generator, e: Event, where: bool = True) -> str:
    """e.g. 'a loud high beep sounds three times at the beginning'."""
    kind = _KIND[e.kind]
    subject = _words("a", _pick(rng, _LOUD[e.loudness]), _pick(rng, _PITCH[e.pitch]), kind.label)
    place = _pick(rng, _WHERE[e.position]) if where else ""
    return _words(subject, _pick(rng, kind.verbs), _pick(rng, _COUNT_ADV[e.count]), place)


def _single_caption(rng: np.random.Generator, e: Event) -> str:
    where = _pick(rng, _WHERE[e.position])
    template = int(rng.integers(5))
    if template == 0:
        return _clause(rng, e)
    if template == 1:
        return f"{_noun_phrase(rng, e, loudness=False)}, {_pick(rng, _LOUD[e.loudness])}, {where}"
    if template == 2:
        return f"{where}, {_clause(rng, e, where=False)}"
    if template == 3:
        return _words("there", "is" if e.count == 1 else "are", _noun_phrase(rng, e), where)
    return _words(_pick(rng, ("the clip contains", "you can hear", "one hears")), _noun_phrase(rng, e), where)


def _pair_caption(rng: np.random.Generator, a: Event, b: Event) -> str:
    """Two events in time order; every template states which comes first."""
    wa, wb = _pick(rng, _WHERE[a.position]), _pick(rng, _WHERE[b.position])
    template = int(rng.integers(5))
    if template == 0:
        return f"{_clause(rng, a)}, {_pick(rng, ('followed by', 'then'))} {_noun_phrase(rng, b)} {wb}"
    if template == 1:
        return f"{_clause(rng, a)} and then {_clause(rng, b)}"
    if template == 2:
        return f"first {_noun_phrase(rng, a)} {wa}, then {_noun_phrase(rng, b)} {wb}"
    if template == 3:
        return f"{_clause(rng, b)} after {_noun_phrase(rng, a)} {wa}"
    verb = _pick(rng, ("precedes", "comes before") if a.count == 1 else ("precede", "come before"))
    return f"{_noun_phrase(rng, a)} {wa} {verb} {_noun_phrase(rng, b)} {wb}"


def make_captions(rng: np.random.Generator, events: Sequence[Event], n: int = 5) -> list[str]:
    """``n`` distinct captions, all true of the scene (events given in time order)."""
    captions: list[str] = []
    while len(captions) < n:
        c = _single_caption(rng, events[0]) if len(events) == 1 else _pair_caption(rng, *events)
        if c not in captions:
            captions.append(c)
    return captions


_COUNT_QUESTIONS = (
    "how many times does the {label} sound?",
    "how many times do you hear the {label}?",
    "how many times can the {label} be heard?",
    "how many {plural} are there in the clip?",
    "count the {plural}: how many are there?",
)


def count_question(rng: np.random.Generator, kind: str) -> str:
    """e.g. 'how many times does the beep sound?'"""
    return _pick(rng, _COUNT_QUESTIONS).format(label=kind, plural=_KIND[kind].plural)


_COMPARE_QUESTIONS = {
    "loudness": (
        "which clip is louder, the first or the second?",
        "which of the two clips is louder: the first or the second?",
        "is the sound louder in the first clip or in the second?",
    ),
    "pitch": (
        "which clip has the higher pitch, the first or the second?",
        "which clip sounds higher-pitched: the first or the second?",
        "in which clip is the {label} higher, the first or the second?",
    ),
    "same_kind": (
        "do both clips contain the same kind of sound?",
        "is the same type of sound heard in both clips?",
        "are the sounds in the two clips of the same kind?",
    ),
    "count": (
        "which clip has more events, the first or the second?",
        "which clip contains more sound events: the first or the second?",
        "in which clip does the sound occur more often, the first or the second?",
    ),
}


# ---- nonce label words: in-context few-shot labels no model can have memorised ----

_ONSETS = ("b", "d", "f", "g", "k", "l", "m", "n", "p", "r", "s", "t", "v", "z", "bl", "gr", "st", "tr")
_VOWELS = ("a", "e", "i", "o", "u")
_CODAS = ("", "n", "p", "x", "k", "t", "m")


def nonce_words(rng: np.random.Generator, n: int) -> list[str]:
    """``n`` distinct pronounceable two-syllable non-words such as 'zugam' or 'begri' (never a label of
    the suite)."""
    words: list[str] = []
    while len(words) < n:
        syllables = [_pick(rng, _ONSETS) + _pick(rng, _VOWELS) for _ in range(2)]
        word = "".join(syllables) + _pick(rng, _CODAS)
        if word not in words and word not in _KIND and len(word) >= 3:
            words.append(word)
    return words


# ---- items ----

def _rng(name: str, split: str, index: int) -> np.random.Generator:
    # fixed-length entropy: distinct (dataset, split, index) triples never share a stream
    seed = np.random.SeedSequence([list(DATASETS).index(name), SPLITS.index(split), index])
    return np.random.Generator(np.random.PCG64(seed))


def _distinct_kinds(rng: np.random.Generator, k: int) -> list[str]:
    return [EVENT_LABELS[i] for i in rng.choice(len(EVENT_LABELS), size=k, replace=False)]


def _scene(rng: np.random.Generator, kinds: Sequence[str]) -> list[Event]:
    """Each kind in its own third of the clip, returned in time order."""
    positions = [POSITIONS[i] for i in rng.choice(len(POSITIONS), size=len(kinds), replace=False)]
    events = [sample_event(rng, k, position=p) for k, p in zip(kinds, positions)]
    return sorted(events, key=lambda e: e.onsets[0])


def _compare_pair(rng: np.random.Generator, index: int) -> tuple[list[Event], list[Event], str, str]:
    """Two one-event clips, the question type and the answer; both cycle with the index so every
    split is balanced over types and answers."""
    qtype = tuple(_COMPARE_QUESTIONS)[index % 4]
    flip = (index // 4) % 2 == 1
    answer = ("no" if flip else "yes") if qtype == "same_kind" else ("second" if flip else "first")
    if qtype == "loudness":
        a = sample_event(rng, _pick(rng, EVENT_LABELS), loudness="loud")
        b = sample_event(rng, _pick(rng, EVENT_LABELS), loudness="quiet")
    elif qtype == "pitch":
        kind = _pick(rng, TONAL_LABELS)  # same kind: pitch bands of different kinds overlap
        a, b = sample_event(rng, kind, pitch="high"), sample_event(rng, kind, pitch="low")
    elif qtype == "count":
        kind = _pick(rng, EVENT_LABELS)
        low, high = sorted(int(c) for c in rng.choice(np.arange(1, 5), size=2, replace=False))
        a, b = sample_event(rng, kind, count=high), sample_event(rng, kind, count=low)
    else:
        kinds = _distinct_kinds(rng, 2)
        a, b = sample_event(rng, kinds[0]), sample_event(rng, kinds[1] if flip else kinds[0])
        return [a], [b], qtype, answer
    return ([b], [a], qtype, answer) if flip else ([a], [b], qtype, answer)


def _order_item(split: str, index: int, item_id: str) -> tuple[list[np.ndarray], dict]:
    """Which of two clips is louder; item 2k holds pair k in one order and item 2k+1 in the other."""
    pair, swapped = divmod(index, 2)
    rng = _rng("order", split, 2 * pair)  # both orders of a pair from one stream: the very same clips
    loud = sample_event(rng, _pick(rng, EVENT_LABELS), loudness="loud")
    quiet = sample_event(rng, _pick(rng, EVENT_LABELS), loudness="quiet")
    question = _pick(rng, _COMPARE_QUESTIONS["loudness"])
    clips = [[loud], [quiet]] if (pair % 2 == 0) != bool(swapped) else [[quiet], [loud]]
    rendered = {"loud": render_clip(rng, [loud]), "quiet": render_clip(rng, [quiet])}  # a fixed order
    order = [c[0].loudness for c in clips]
    return [rendered[o] for o in order], {
        "id": item_id, "audio": [f"audio/{item_id}-a.wav", f"audio/{item_id}-b.wav"], "question": question,
        "answer": "first" if order[0] == "loud" else "second", "question_type": "loudness", "pair": pair,
        "swapped": bool(swapped), "clips": [[e.record() for e in c] for c in clips],
    }


def render_item(name: str, split: str, index: int) -> tuple[list[np.ndarray], dict]:
    """The waveform(s) and metadata record of one item; no I/O, identical on every call."""
    if name not in DATASETS or split not in DATASETS[name] or not 0 <= index < DATASETS[name][split]:
        raise ValueError(f"no synthetic item {name}/{split}/{index}")
    rng = _rng(name, split, index)
    item_id = f"{name}-{split}-{index:04d}"
    if name == "order":
        return _order_item(split, index, item_id)
    if name == "compare":
        first, second, qtype, answer = _compare_pair(rng, index)
        question = _pick(rng, _COMPARE_QUESTIONS[qtype]).format(label=first[0].kind)
        waves = [render_clip(rng, first), render_clip(rng, second)]
        return waves, {
            "id": item_id, "audio": [f"audio/{item_id}-a.wav", f"audio/{item_id}-b.wav"],
            "question": question, "answer": answer, "question_type": qtype,
            "clips": [[e.record() for e in first], [e.record() for e in second]],
        }

    extra: dict = {}
    if name == "events":
        label = EVENT_LABELS[(index // FOLDS) % len(EVENT_LABELS)]  # each block of 50 fills every (fold, class)
        events = [sample_event(rng, label)]
        extra["fold"] = index % FOLDS + 1
    elif name == "tagging":
        events = _scene(rng, _distinct_kinds(rng, int(rng.integers(2, 4))))
    elif name == "count":
        events = [sample_event(rng, _pick(rng, EVENT_LABELS), count=index % 4 + 1)]
        extra["question"] = count_question(rng, events[0].kind)
        extra["answer"] = str(events[0].count)
    else:
        events = _scene(rng, _distinct_kinds(rng, int(rng.integers(1, 3))))
        extra["captions"] = make_captions(rng, events)
    record = {
        "id": item_id, "audio": [f"audio/{item_id}.wav"], "labels": sorted({e.kind for e in events}),
        **extra, "events": [e.record() for e in events],
    }
    return [render_clip(rng, events)], record


# ---- files ----

_STALE_SECONDS = 3600  # a builder on another host (shared storage) is presumed dead after this long
_OWNER = re.compile(r"\.tmp-(\d+)@(.*)-[0-9a-f]{8}$")  # .<split>.tmp-<pid>@<host>-<random>


def build_dataset(name: str, split: str, root: Path) -> Path:
    """Write ``root/<name>/<split>/`` (audio/*.wav and metadata.jsonl) unless already complete.

    The split is built in a temporary sibling and renamed into place, so a killed build never leaves a
    directory that looks complete, and concurrent builders all end up with the same valid one."""
    final = Path(root) / name / split
    _remove_stale(final)
    if (final / "metadata.jsonl").is_file():
        return final
    if split not in DATASETS.get(name, {}):
        raise ValueError(f"no synthetic dataset split {name}/{split}")
    if final.exists() and any(final.iterdir()):
        # never written by a build (those appear whole); root may be the user's own data directory
        raise FileExistsError(f"{final} exists without metadata.jsonl: not a synthetic split; move it away")
    tmp = final.parent / f".{split}.tmp-{os.getpid()}@{socket.gethostname()}-{uuid.uuid4().hex[:8]}"
    (tmp / "audio").mkdir(parents=True)
    try:
        _write_split(name, split, tmp)
        tmp.rename(final)  # atomic; replaces an empty directory, fails on a complete one
    except OSError:
        shutil.rmtree(tmp, ignore_errors=True)
        if not (final / "metadata.jsonl").is_file():
            raise
        # another builder won the race; its split is identical to ours
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return final


def _write_split(name: str, split: str, directory: Path) -> None:
    lines = []
    for index in range(DATASETS[name][split]):
        waves, record = render_item(name, split, index)
        for wave, rel in zip(waves, record["audio"]):
            sf.write(directory / rel, wave, SAMPLE_RATE, subtype="PCM_16")
        lines.append(json.dumps(record) + "\n")
    (directory / "metadata.jsonl").write_text("".join(lines), encoding="utf-8")  # last: marks it complete


def _remove_stale(final: Path) -> None:
    """Remove the temporary splits of builds that were killed: on this host, those whose process is gone,
    whatever their age; from another host, those untouched for an hour."""
    for leftover in final.parent.glob(f".{final.name}.tmp-*"):
        if _abandoned(leftover):
            shutil.rmtree(leftover, ignore_errors=True)


def _abandoned(leftover: Path) -> bool:
    owner = _OWNER.search(leftover.name)
    if owner and owner[2] == socket.gethostname():
        return not _alive(int(owner[1]))
    try:
        return time.time() - leftover.stat().st_mtime > _STALE_SECONDS
    except FileNotFoundError:  # its builder just finished or discarded it
        return False


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        return True
    return True
