"""What every evaluation method shares: its declaration, its context and its result."""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, field
from typing import Any, Callable, ClassVar, Optional

import numpy as np

from ..calls import Call, ClipRef
from ..data import Item
from ..executor import Executor, Outcome
from ..specs import TaskSpec
from ..uncertainty import Interval, Statistic, bootstrap, ones


@dataclass
class MethodResult:
    """Metrics (name -> number, or None with a reason in ``unavailable``) and item-level records."""

    metrics: dict[str, float | None]
    records: list[dict]
    n_items: int
    n_failed: int
    unavailable: dict[str, str] = field(default_factory=dict)
    details: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Metric:
    """What a method declares about a metric it reports; the runner, the results, the spec checker
    and the leaderboard read these declarations instead of keeping their own tables."""

    #: the name in the results; ``{ways}`` in it stands for a number (``5-way accuracy``)
    name: str
    higher_is_better: bool = True
    #: the best value a perfect model reaches, None when unbounded (CIDEr-D)
    best: Optional[float] = 1.0
    #: the analytic chance level on a task (a uniform guess, a random ranking), None where there is none
    chance: Optional[Callable[["EvalContext"], Optional[float]]] = None
    #: the metric a table shows first for this method
    headline: bool = False
    #: task types it is reported on (empty: every type the method applies to)
    task_types: tuple[str, ...] = ()

    def matches(self, name: str) -> bool:
        pattern = re.escape(self.name).replace(re.escape("{ways}"), r"\d+")
        return re.fullmatch(pattern, name) is not None


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
    #: a section title for reports ("Zero-shot: text matching")
    title: ClassVar[str] = ""
    #: every metric the method may report
    metrics: ClassVar[tuple[Metric, ...]] = ()
    #: what its confidence intervals resample ("items", "episodes")
    resample_over: ClassVar[str] = "items"

    def evaluate(self, ctx: EvalContext) -> MethodResult:
        raise NotImplementedError

    def with_defaults(self, options: dict[str, Any]) -> dict[str, Any]:
        return {**self.options, **options}

    # -- declarations ------------------------------------------------------------------------
    def metric(self, name: str) -> Metric | None:
        """The declaration of a reported metric name, or None."""
        return next((m for m in self.metrics if m.matches(name)), None)

    def produces(self, spec: TaskSpec, options: dict[str, Any]) -> tuple[str, ...]:
        """The metric names this method reports on a task (what a spec's ``metric:`` may name)."""
        return tuple(m.name for m in self.metrics if not m.task_types or spec.type in m.task_types)

    def chance_levels(self, ctx: EvalContext, names) -> dict[str, float]:
        """Analytic chance level of each reported metric that has one."""
        levels = {}
        for name in names:
            declared = self.metric(name)
            value = declared.chance(ctx) if declared and declared.chance else None
            if value is not None and np.isfinite(value):
                levels[name] = float(value)
        return levels

    # -- scoring from item records (intervals, compare) -----------------------------------
    def unit(self, record: dict) -> str:
        """The resampling unit a record belongs to (its item; an episode for few-shot)."""
        return str(record["id"])

    def statistic(self, records: list[dict], details: dict[str, Any]) -> Statistic | None:
        """The metrics recomputed from records under unit weights ``[b, units]`` (units in sorted
        order of :meth:`unit`), or None when the records cannot reproduce them."""
        return None

    def intervals(self, result: MethodResult, seed: int) -> dict[str, Interval]:
        """95% interval of every metric: a seeded bootstrap over the resampling units."""
        statistic = self.statistic(result.records, result.details)
        if statistic is None or not result.records:
            return {}
        units = len({self.unit(r) for r in result.records})
        found = bootstrap(statistic, units, seed, over=self.resample_over)
        return {name: found[name] for name in result.metrics if name in found and result.metrics[name] is not None}


def record_units(method: Method, records: list[dict]) -> np.ndarray:
    """For each record, the column of its unit in the weight matrix (units in sorted order)."""
    keys = [method.unit(r) for r in records]
    position = {key: i for i, key in enumerate(sorted(set(keys)))}
    return np.array([position[k] for k in keys], dtype=int)


def reproduce(method: Method, records: list[dict], details: dict[str, Any]) -> dict[str, float]:
    """The metrics as the records give them (all weights one): they must equal the reported ones."""
    statistic = method.statistic(records, details)
    if statistic is None:
        return {}
    units = len({method.unit(r) for r in records})
    return {name: float(values[0]) for name, values in statistic(ones(units)).items()}


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


def cosine(rows: list, cols: list) -> np.ndarray:
    """Cosine similarity of vectors (None for a failed one) with NaN for any failed row or column."""
    def unit(vectors):
        dim = next((len(v) for v in vectors if v is not None), 1)
        m = np.stack([np.asarray(v, np.float64) if v is not None else np.full(dim, np.nan) for v in vectors])
        return m / np.linalg.norm(m, axis=1, keepdims=True).clip(min=1e-12)
    return unit(rows) @ unit(cols).T
