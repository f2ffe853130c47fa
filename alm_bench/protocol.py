"""The model protocol: what alm-bench may ask of an audio-language model.

A model implements any subset of three capabilities and declares which in ``capabilities``:

- ``generate``: audio + text prompt -> text (captioning, QA, zero-shot text matching);
- ``embed``: audio -> fixed-size vector (linear probes, embedding retrieval);
- ``score``: audio + prompt + N candidate texts -> N log-likelihoods (the Pengi paper's log-likelihood method).

Audio reaches a model as :class:`Clip` objects already decoded, mixed to mono, resampled to
``audio_format.sample_rate`` and cut to ``audio_format.max_seconds``; models never read files.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Sequence, Union

import numpy as np


@dataclass(frozen=True)
class Capabilities:
    """What a model can do; the runner reads this and never probes with ``hasattr``."""

    generate: bool = False
    embed: bool = False
    score: bool = False
    #: ``generate`` accepts several clips interleaved with texts (few-shot, two-clip questions).
    interleaved: bool = False
    #: the model exposes ``embed_text`` (its own text encoder, e.g. Pengi's CLIP tower).
    text_encoder: bool = False
    #: ``embed`` and ``embed_text`` share one audio-text space (retrieval by embeddings).
    shared_space: bool = False
    #: a reference model (``oracle``, ``chance``): every call also receives ``answers=``, the ground truth
    #: of its requests (:class:`alm_bench.answer_key.AnswerKey`); no other model ever sees it.
    reference: bool = False

    def names(self) -> list[str]:
        return [f.name for f in dataclasses.fields(self) if getattr(self, f.name)]


@dataclass(frozen=True)
class AudioFormat:
    """How a model wants its audio: the runner resamples, mixes to mono and cuts or pads to this."""

    sample_rate: int
    #: longer clips are cut to their first ``max_seconds`` (``None``: no limit).
    max_seconds: float | None = None
    #: shorter clips are zero-padded to ``min_seconds`` (0: no padding).
    min_seconds: float = 0.0

    def describe(self) -> dict[str, Any]:
        return {
            "sample_rate": self.sample_rate,
            "max_seconds": self.max_seconds,
            "min_seconds": self.min_seconds,
            "channels": "mean of channels",
            "long_clips": "first max_seconds kept" if self.max_seconds else "kept whole",
            "short_clips": "zero-padded at the end" if self.min_seconds else "kept as is",
        }


@dataclass(frozen=True, eq=False)
class Clip:
    """One decoded clip: float32 mono samples at the model's rate, and the hash of its source content."""

    waveform: np.ndarray
    sha: str


Content = Union[Clip, str]

#: for a model that reads no audio (``needs_audio = False``), ``Clip.sha`` is this prefix + the item id
ITEM_PREFIX = "item:"


@dataclass(frozen=True)
class GenerateRequest:
    """Interleaved clips and texts, e.g. ``(clip, "this is a sound of")`` or
    ``(clip_a, "this is a dog.", clip_b, "this is a")``.  Models without ``interleaved``
    only ever receive one clip followed by one prompt."""

    content: tuple[Content, ...]

    @classmethod
    def single(cls, clip: Clip, prompt: str) -> "GenerateRequest":
        return cls((clip, prompt))

    @property
    def clips(self) -> list[Clip]:
        return [c for c in self.content if isinstance(c, Clip)]

    @property
    def clip(self) -> Clip:
        """The first clip (the only one for single-clip requests)."""
        return self.clips[0]

    @property
    def prompt(self) -> str:
        """The text after the last clip: the prompt of a single-clip request."""
        texts = [c for c in self.content if isinstance(c, str)]
        return texts[-1] if texts else ""


@dataclass(frozen=True)
class ScoreRequest:
    """Log-likelihood of each candidate continuing ``clip`` + ``prompt``."""

    clip: Clip
    prompt: str
    candidates: tuple[str, ...]


@dataclass(frozen=True)
class GenerationConfig:
    """Decoding settings the runner passes to ``generate``; models map them to their decoder.

    ``None`` leaves the setting to the model (e.g. Pengi decodes with beam 5 as its paper evaluates);
    a model reads ``config.num_beams if config.num_beams is not None else its_default``."""

    num_beams: int | None = None
    max_new_tokens: int | None = None
    temperature: float | None = None

    def as_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


class Generated(str):
    """A generated text that also says how it was made (e.g. what a retrieval-augmented model retrieved).

    The one channel for such details: ``generate`` may return these instead of plain ``str``; the output
    cache stores the details with the text (a warm run returns them too), and the evaluators copy them
    into the item records under ``details``.  ``details`` must be JSON-serialisable."""

    details: dict

    def __new__(cls, text: str, details: dict | None = None) -> "Generated":
        made = super().__new__(cls, text)
        made.details = dict(details or {})
        return made

    def __reduce__(self):  # pickled between ranks of a distributed run
        return (Generated, (str(self), self.details))


def details_of(output: Any) -> dict | None:
    """The details an output carries (see :class:`Generated`), or None."""
    return getattr(output, "details", None) or None


@dataclass(frozen=True)
class RunEnvironment:
    """Where a run keeps its cache and data, and the registry it loads models from: given to
    :meth:`Model.attach` so a model that builds state from the suite (a retrieval index over a task's
    split, a wrapped model) keeps it where the run keeps everything else."""

    cache_dir: Path | None
    data_dir: Path | None
    registry: Any
    device: str = "cpu"
    #: False under ``--no-cache``: state a model builds (a retrieval index) is neither read from nor
    #: written to ``cache_dir``, which still holds the data a loader generates
    use_cache: bool = True


class Model:
    """Base class for alm-bench models.

    Subclasses set ``name``, ``capabilities`` and ``audio_format`` and implement the methods their
    capabilities declare.  Constructor keyword arguments are the model's ``--model-args``.
    An instance may narrow its class's ``capabilities`` (set ``self.capabilities`` in ``__init__``:
    an endpoint without log-probabilities, a processor that takes one clip); runs read the instance's.
    """

    name: ClassVar[str] = ""
    capabilities: ClassVar[Capabilities] = Capabilities()
    description: ClassVar[str] = ""
    audio_format: AudioFormat = AudioFormat(sample_rate=16_000)
    #: False for a model that never looks at audio (outputs read from a file): the runner then reads and
    #: decodes no audio file, each clip comes with no samples and ``sha`` = ``ITEM_PREFIX + item id``,
    #: and data copies without their audio files run
    needs_audio: ClassVar[bool] = True

    def config(self) -> dict[str, Any]:
        """Everything that changes outputs (checkpoint, sizes, decoding); hashed into cache keys
        and written into results.  Override to add your settings."""
        return {}

    def attach(self, environment: RunEnvironment) -> None:
        """Called by the runner once, after ``to`` and before ``config``; most models ignore it."""

    def to(self, device: str) -> "Model":
        """Move to a torch device string (``cpu``, ``cuda:0``); models without weights ignore it."""
        return self

    def generate(self, requests: Sequence[GenerateRequest], config: GenerationConfig) -> list[str]:
        """One text per request, e.g. ``[GenerateRequest.single(clip, "generate audio caption")]``
        -> ``["a dog barks twice"]``."""
        raise NotImplementedError(f"{type(self).__name__} does not implement generate")

    def embed(self, clips: Sequence[Clip]) -> np.ndarray:
        """A float array of shape ``[len(clips), D]``; ``D`` is the same on every call."""
        raise NotImplementedError(f"{type(self).__name__} does not implement embed")

    def score(self, requests: Sequence[ScoreRequest]) -> list[np.ndarray]:
        """For each request, a float array of ``len(request.candidates)`` log-likelihoods."""
        raise NotImplementedError(f"{type(self).__name__} does not implement score")

    def embed_text(self, texts: Sequence[str]) -> np.ndarray:
        """The model's own text encoder: ``[len(texts), D_text]`` floats."""
        raise NotImplementedError(f"{type(self).__name__} does not implement embed_text")

    def generation_settings(self, config: GenerationConfig) -> dict[str, Any]:
        """The decoding settings ``generate`` really uses under ``config`` (its own defaults filled in),
        recorded in the results' provenance; override it where the model has defaults."""
        return config.as_dict()


#: capability -> the methods it obliges a model to implement
REQUIRED_METHODS: dict[str, tuple[str, ...]] = {
    "generate": ("generate",),
    "embed": ("embed",),
    "score": ("score",),
    "text_encoder": ("embed_text",),
    "shared_space": ("embed", "embed_text"),
}


@dataclass(frozen=True)
class ModelInfo:
    """A registered model as ``alm-bench list models`` shows it."""

    name: str
    cls: type
    plugin: str
    capabilities: Capabilities = field(default_factory=Capabilities)
    description: str = ""
