"""What every evaluation method shares: its declaration, its context and its result."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import Any, Callable, ClassVar

import numpy as np

from ..calls import Call, ClipRef
from ..data import Item
from ..executor import Executor, Outcome
from ..specs import TaskSpec


@dataclass
class MethodResult:
    """Metrics (name -> number, or None with a reason in ``unavailable``) and item-level records."""

    metrics: dict[str, float | None]
    records: list[dict]
    n_items: int
    n_failed: int
    unavailable: dict[str, str] = field(default_factory=dict)
    details: dict[str, Any] = field(default_factory=dict)


@dataclass
class EvalContext:
    spec: TaskSpec
    items: list[Item]
    options: dict[str, Any]
    prompt: str
    executor: Executor
    #: path -> content hash of every audio file of ``items``
    shas: dict[str, str]
    seed: int
    #: encodes texts with the selected text encoder (rows L2-normalised)
    encode_texts: Callable[[list[str]], np.ndarray]
    #: opens a progress bar for a phase; returns the executor's advance callback
    progress: Callable[[str, int], Callable[[int], None]] = lambda description, total: (lambda n: None)

    def ref(self, path: str) -> ClipRef:
        return ClipRef(path, self.shas[path])

    @property
    def test_items(self) -> list[Item]:
        """Items scored by zero-shot methods: the test split, or every fold."""
        if self.spec.folds:
            return self.items
        return [item for item in self.items if item.split == self.spec.splits.test]

    @property
    def labels(self) -> tuple[str, ...]:
        if self.spec.labels:
            return self.spec.labels
        return tuple(sorted({label for item in self.items for label in item.labels}))

    def run(self, calls: list[Call], description: str) -> list[Outcome]:
        return self.executor.run(calls, self.progress(description, len(calls)))

    def memo(self, name: str, inputs: list, compute: Callable[[], Any],
             encode: Callable[[Any], Any], decode: Callable[[Any], Any]) -> Any:
        """Scoring that is a pure function of model outputs (probes, caption metrics) is cached like
        the outputs, keyed by its inputs and the package version, so a repeated run recomputes nothing."""
        from .. import __version__

        digest = hashlib.sha256(f"{name}\x00{__version__}".encode())
        for part in inputs:
            if isinstance(part, np.ndarray):
                digest.update(repr((part.dtype.str, part.shape)).encode() + part.tobytes())
            else:
                digest.update(json.dumps(part, sort_keys=True, default=str).encode())
        key = f"scoring:{name}:{digest.hexdigest()}"
        cached = self.executor.recall([key])
        if key in cached:
            return decode(json.loads(cached[key]))
        value = compute()
        self.executor.remember({key: json.dumps(encode(value))})
        return value

    def clip_texts(self, item: Item) -> tuple[str, ...]:
        """Every text true of the item's clip (labels, captions): what a perfect embedding encodes."""
        return tuple(item.labels) + tuple(item.captions)


class Method:
    """An evaluation method: which tasks it applies to, what it needs of a model, its options."""

    name: ClassVar[str]
    task_types: ClassVar[tuple[str, ...]]
    #: model capabilities required (names of Capabilities fields)
    needs: ClassVar[tuple[str, ...]]
    #: whether it generates text from the task prompt (then it runs once per prompt)
    needs_prompt: ClassVar[bool] = False
    #: whether it compares texts with the run's text encoder (recorded in the results)
    uses_text_encoder: ClassVar[bool] = False
    #: option name -> default (the default's type is the option's type)
    options: ClassVar[dict[str, Any]] = {}
    description: ClassVar[str] = ""

    def evaluate(self, ctx: EvalContext) -> MethodResult:
        raise NotImplementedError

    def with_defaults(self, options: dict[str, Any]) -> dict[str, Any]:
        return {**self.options, **options}


def outputs_or_none(outcomes: list[Outcome]) -> list[Any]:
    return [o.value if o.ok else None for o in outcomes]


def count_failed(outcomes: list[Outcome]) -> int:
    return sum(1 for o in outcomes if not o.ok)


def match_to_labels(ctx: EvalContext, outputs: list[str | None], labels: tuple[str, ...]) -> np.ndarray:
    """Cosine similarity of each output to each label under the run's text encoder.

    Failed outputs get NaN rows, so they rank last and count as wrong."""
    texts = [o for o in outputs if o is not None]
    sims = np.full((len(outputs), len(labels)), np.nan)
    if texts:
        encoded = ctx.encode_texts(texts + list(labels))
        out_vecs, label_vecs = encoded[: len(texts)], encoded[len(texts) :]
        rows = [i for i, o in enumerate(outputs) if o is not None]
        sims[rows] = out_vecs @ label_vecs.T
    return sims
