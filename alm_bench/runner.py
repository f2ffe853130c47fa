"""The runner: model x tasks x methods (x prompts), with caching, progress and results files."""

from __future__ import annotations

import dataclasses
import fnmatch
import math
import os
import platform
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable

import numpy as np

from . import __version__
from .audio import file_sha
from .cache import OutputCache
from .calls import Call, config_hash, content_key
from .controls import apply_control, check_control, control_effect
from .data import AudioMissing, DataMissing, Item, fingerprint
from .distributed import DistributedExecutor, World, serve
from .errors import Interrupted, ItemError, StorageError, UsageError
from .evaluators import EvalContext, Method
from .executor import Executor, LocalExecutor, Stats
from .plugins import Registry, default_registry
from .protocol import ITEM_PREFIX, GenerationConfig, ModelInfo, RunEnvironment
from .results import Result, read_result, result_path, write_result
from .specs import TaskSpec
from .storage import fault, is_storage_fault, require_writable
from .devices import check_device
from .provenance import package_versions, spec_hash, suite_commit
from .text_encoders import DEFAULT_SENTENCE_MODEL, normalize_rows
from .threads import apply as apply_threads
from .threads import default_threads
from .validation import ValidatedModel


def default_cache_dir() -> Path:
    if os.environ.get("ALM_BENCH_CACHE"):
        return Path(os.environ["ALM_BENCH_CACHE"])
    return Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "alm-bench"


@dataclass(frozen=True)
class RunConfig:
    model: str
    tasks: str = "all"
    methods: tuple[str, ...] = ()
    #: None: each task's first prompt; "all": every prompt of the spec; otherwise this prompt
    prompt: str | None = None
    model_args: dict = field(default_factory=dict)
    #: ``--method-args``: options of the chosen methods, over the spec's ``methods:`` options
    method_args: dict = field(default_factory=dict)
    data_dir: Path | None = None
    output_dir: Path = Path("results")
    cache_dir: Path = field(default_factory=default_cache_dir)
    use_cache: bool = True
    limit: int | None = None
    batch_size: int = 8
    device: str = "cpu"
    seed: int = 0
    text_encoder: str | None = None
    generation: GenerationConfig = field(default_factory=GenerationConfig)
    workers: int = 2
    #: CPU threads for the model; None: the CPUs the process may use, less the decode workers
    threads: int | None = None
    #: an audio control (alm_bench.controls): "silence", "shuffle", or None for the real audio
    control: str | None = None
    #: the command line that started the run (recorded in provenance), when it came from one
    command: str | None = None


@dataclass(frozen=True)
class Skipped:
    task: str
    method: str
    reason: str


@dataclass
class RunSummary:
    results: list[Result] = field(default_factory=list)
    skipped: list[Skipped] = field(default_factory=list)
    stats: Stats = field(default_factory=Stats)
    seconds: float = 0.0


Progress = Callable[[str, int], Callable[[int], None]]
#: one line for the user (e.g. that the cache is used read-only)
Notify = Callable[[str], None]


def select_tasks(registry: Registry, pattern: str) -> tuple[list[TaskSpec], bool]:
    """Tasks matching ``all``, an id, a glob or a comma-separated list; and whether it named one task."""
    if pattern == "all":
        return [registry.tasks[t] for t in sorted(registry.tasks)], False
    chosen: list[str] = []
    for part in (p.strip() for p in pattern.split(",") if p.strip()):
        matches = sorted(t for t in registry.tasks if fnmatch.fnmatchcase(t, part))
        if not matches:
            registry.task(part)  # raises the "unknown task" error
        chosen += [m for m in matches if m not in chosen]
    explicit = len(chosen) == 1 and not any(ch in pattern for ch in "*?[,")
    return [registry.tasks[t] for t in chosen], explicit


def limit_items(items: list[Item], limit: int | None, spec: TaskSpec) -> list[Item]:
    """A sample of at most ``limit`` items, balanced over folds and labels: with predefined folds,
    ``limit`` in all, dealt round-robin over the (fold, label) groups; otherwise ``limit`` per split,
    dealt round-robin over labels.  Items keep their dataset order within a group, so the sample is
    deterministic.  A limit below the number of (fold, label) groups takes one item of a different
    label from each fold in turn, so every fold stays represented."""
    if not limit:
        return items
    if spec.folds:
        cells = {(item.fold, item.labels[:1]) for item in items}
        if limit < len(cells):
            return _round_robin(items, _diagonal(cells))[:limit]
        return _round_robin(items, lambda item: (item.fold, item.labels[:1]))[:limit]
    splits: dict[str, list[Item]] = {}
    for item in items:
        splits.setdefault(item.split, []).append(item)
    return [item for group in splits.values() for item in _round_robin(group, lambda i: i.labels[:1])[:limit]]


def _diagonal(cells: set[tuple]) -> Callable[[Item], Any]:
    """A group key that deals (fold, label) cells diagonal by diagonal: diagonal d gives the i-th fold
    label d + i, so it spans every fold with different labels, and the diagonals come in the order that
    sweeps on round the labels (d = 0, F, 2F, ... for F folds), so the labels stay balanced too: 30
    items of 6 folds x 10 labels take every label 3 times and every fold 5 times."""
    folds = sorted({fold for fold, _ in cells})
    labels = sorted({label for _, label in cells})
    period = len(labels) // math.gcd(len(folds), len(labels))  # diagonals before k * F comes round
    rank = {(k * len(folds) + k // period) % len(labels): k for k in range(len(labels))}
    return lambda item: (rank[(labels.index(item.labels[:1]) - folds.index(item.fold)) % len(labels)],
                         folds.index(item.fold))


def _round_robin(items: list[Item], key: Callable[[Item], Any]) -> list[Item]:
    groups: dict[Any, list[Item]] = {}
    for item in items:
        groups.setdefault(key(item), []).append(item)
    ordered = [groups[k] for k in sorted(groups)]
    return [group[i] for i in range(max(map(len, ordered), default=0)) for group in ordered if i < len(group)]


def method_args(methods: dict[str, Method], chosen: tuple[str, ...], args: dict) -> dict[str, dict]:
    """``--method-args`` split over the chosen methods (every method when none is chosen): each key
    must be an option one of them declares, and its value takes that option's type."""
    names = chosen or tuple(sorted(methods))
    per_method: dict[str, dict] = {}
    for key, value in args.items():
        owners = [name for name in names if key in methods[name].options]
        if not owners:
            known = sorted({option for name in names for option in methods[name].options})
            raise UsageError(f"unknown --method-args key {key!r} for method(s) {', '.join(names)}; "
                             f"their options: {', '.join(known) or 'none'}")
        for name in owners:
            per_method.setdefault(name, {})[key] = _option_value(name, key, value, methods[name].options[key])
    return per_method


def _option_value(method: str, key: str, value: Any, default: Any) -> Any:
    """``value`` as the type of the option's default (a None default takes anything)."""
    if default is None or type(value) is type(default):
        return value
    if isinstance(default, str):
        return str(value)
    if isinstance(default, float) and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    raise UsageError(f"--method-args {key}={value!r}: method {method} expects type {type(default).__name__} "
                     f"(default {default!r})")


def hash_audio(items: list[Item], workers: int) -> dict[str, str]:
    """Content hash of every audio file; an unreadable file gets a marker and fails at decoding."""
    paths = sorted({p for item in items for p in item.audio})

    def one(path: str) -> str:
        try:
            return file_sha(path)
        except ItemError:
            return f"unreadable:{path}"

    with ThreadPoolExecutor(workers) as pool:
        return dict(zip(paths, pool.map(one, paths)))


def item_refs(items: list[Item]) -> dict[str, str]:
    """For a model that reads no audio: each audio path stands for the (first) item that holds it."""
    refs: dict[str, str] = {}
    for item in items:
        for path in item.audio:
            refs.setdefault(path, ITEM_PREFIX + item.id)
    return refs


def caption_owners(items: list[Item], shas: dict[str, str]) -> dict[str, tuple[str, ...]]:
    owners: dict[str, set[str]] = {}
    for item in items:
        for caption in item.captions:
            owners.setdefault(caption, set()).add(shas[item.audio[0]])
    return {caption: tuple(sorted(clips)) for caption, clips in owners.items()}


class Runner:
    def __init__(self, config: RunConfig, registry: Registry | None = None, progress: Progress | None = None,
                 world: World = World(), notify: Notify | None = None) -> None:
        self.config = config
        self.world = world
        self.registry = registry or default_registry()
        self.progress = progress or (lambda description, total: (lambda n: None))
        self.info: ModelInfo = self.registry.model_info(config.model)
        # storage first: a folder that cannot be written fails before any model is built
        if world.rank == 0:  # the rank that writes results
            require_writable(Path(config.output_dir), "results", "pass --output-dir DIR elsewhere")
        self.cache = OutputCache(Path(config.cache_dir) / "outputs" if config.use_cache else None)
        if self.cache.read_only and notify:
            notify(f"cache {self.cache.directory} is read-only ({self.cache.read_only}): cached outputs are used, "
                   f"new ones are computed and not stored")
        check_device(config.device)
        self.model = self.registry.load_model(config.model, config.model_args).to(config.device)
        self.model.attach(RunEnvironment(Path(config.cache_dir), config.data_dir, self.registry, config.device,
                                         config.use_cache))
        self.threads = config.threads or default_threads(config.workers)
        apply_threads(self.threads)
        # what this instance offers: a model may narrow its class's declaration (an endpoint without scores)
        self.capabilities = self.model.capabilities
        self.model_config = {**self.model.config(), "audio": self.model.audio_format.describe()}
        self.model_key = f"{config.model}:{config_hash(self.model_config)}"
        self.local = LocalExecutor(ValidatedModel(self.model, self.info.plugin), self.model_key,
                                   self.model.audio_format, self.cache, config.generation, config.batch_size,
                                   config.workers, needs_audio=self.model.needs_audio)
        #: where every model call goes: this process, or all ranks of a distributed run
        self.executor: Executor = DistributedExecutor(self.local, world) if world.distributed else self.local
        self._encoders: dict[str, Any] = {}
        self._encoded: dict[tuple[str, str], np.ndarray] = {}
        #: reference caption -> hashes of the clips it describes, in the task being run (ground truth
        #: that reference models receive with their ``embed_text`` calls)
        self._caption_owners: dict[str, tuple[str, ...]] = {}

    # -- text encoders ----------------------------------------------------------------------
    def text_encoder_name(self) -> str:
        if self.config.text_encoder:
            return self.config.text_encoder
        return "model" if self.capabilities.text_encoder else "sentence-transformers"

    def text_encoder_used(self) -> str:
        """The encoder that did the work, by its real name (the model's own names its own)."""
        name = self.text_encoder_name()
        if name == "model":
            own = self.model_config.get("text_encoder")
            return f"model: {own}" if isinstance(own, str) and own else f"model: {self.config.model}'s own"
        if name == "sentence-transformers":
            return f"sentence-transformers:{DEFAULT_SENTENCE_MODEL}"
        return name

    def encode_texts(self, texts: list[str]) -> np.ndarray:
        """Encode with the selected encoder; each distinct text is encoded once per run."""
        name = self.text_encoder_name()
        todo = list(dict.fromkeys(t for t in texts if (name, t) not in self._encoded))
        if todo:
            for text, vector in zip(todo, self._encode_new(name, todo)):
                self._encoded[(name, text)] = vector
        return normalize_rows(np.stack([self._encoded[(name, t)] for t in texts]))

    def _encode_new(self, name: str, texts: list[str]) -> list[np.ndarray]:
        if name == "model":
            if not self.capabilities.text_encoder:
                raise UsageError(f"model {self.config.model!r} has no text encoder; pick one with --text-encoder")
            outcomes = self.executor.run([Call("embed_text", t, ideal=self._caption_owners.get(t)) for t in texts])
            failed = next((o.error for o in outcomes if not o.ok), "")
            if failed:
                raise RuntimeError(f"model {self.config.model!r} failed to encode a text: {failed}")
            return [np.asarray(o.value, np.float64) for o in outcomes]
        keys = {t: content_key("embed_text", f"{name}\x00{t}") for t in texts}  # text encodings are cached too
        cached = self.executor.recall(list(keys.values()))
        missing = [t for t in texts if keys[t] not in cached]
        if missing:
            fresh = self._encoder(name).encode(missing)
            self.executor.remember({keys[t]: np.asarray(v, np.float32) for t, v in zip(missing, fresh)})
            cached.update((keys[t], np.asarray(v, np.float32)) for t, v in zip(missing, fresh))
        return [np.asarray(cached[keys[t]], np.float64) for t in texts]

    def _encoder(self, name: str):
        if name not in self._encoders:
            key, _, argument = name.partition(":")
            if key not in self.registry.text_encoders:
                known = ", ".join(["model", *sorted(self.registry.text_encoders)])
                raise UsageError(f"unknown text encoder {key!r}; known: {known} (add :MODEL_ID for an argument)")
            try:
                self._encoders[name] = self.registry.text_encoders[key](argument or None)
            except (OSError, ValueError, ImportError) as exc:  # no such model, not a model folder, offline
                reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
                raise UsageError(f"text encoder {name!r} cannot be loaded ({reason}); give a model id or local "
                                 f"folder it can load, e.g. --text-encoder sentence-transformers") from None
        return self._encoders[name]

    def check_text_encoder(self) -> None:
        """A text encoder the user named loads before any model call (not after an hour of generating)."""
        name = self.config.text_encoder
        if not name:
            return
        if name == "model":
            if not self.capabilities.text_encoder:
                raise UsageError(f"model {self.config.model!r} has no text encoder; pick one with --text-encoder")
            return
        self._encoder(name)

    # -- the run ----------------------------------------------------------------------------
    def run(self) -> RunSummary:
        start = time.perf_counter()
        summary = RunSummary(stats=self.executor.stats)
        check_control(self.config.control)
        if self.config.control and not self.model.needs_audio:
            raise UsageError(f"model {self.config.model!r} reads no audio, so --control changes nothing; drop it")
        tasks, explicit = select_tasks(self.registry, self.config.tasks)
        self.methods = tuple(self._method_name(m) for m in self.config.methods)
        self.method_args = method_args(self.registry.methods, self.methods, self.config.method_args)
        self.check_text_encoder()
        try:
            for spec in tasks:
                self._run_task(spec, explicit, summary)
        except StorageError as exc:
            exc.summary = summary  # what was saved before the failure
            raise
        except KeyboardInterrupt:
            raise Interrupted(len(summary.results), self.config.output_dir) from None
        finally:
            summary.seconds = time.perf_counter() - start
        return summary

    def _method_name(self, name: str) -> str:
        """A registered method name; hyphens and underscores are the same (log-likelihood)."""
        canonical = {m.replace("-", "_"): m for m in self.registry.methods}
        found = canonical.get(name.replace("-", "_"))
        if found is None:
            raise UsageError(f"unknown method {name!r}; known methods: {', '.join(sorted(self.registry.methods))}")
        return found

    def _load(self, spec: TaskSpec) -> list[Item]:
        loader = self.registry.loaders.get(spec.dataset.loader)
        if loader is None:
            raise UsageError(f"task {spec.id}: no dataset loader {spec.dataset.loader!r} is installed")
        try:
            items = loader(spec, self.config.data_dir, Path(self.config.cache_dir))
        except AudioMissing as exc:
            if self.model.needs_audio:
                raise
            items = exc.items  # a model that reads no audio runs on the metadata alone
        except OSError as exc:  # e.g. the synthetic data built into a full or read-only cache
            if not is_storage_fault(exc):
                raise
            raise fault(exc, f"prepare the data of task {spec.id} in", exc.filename or self.config.cache_dir,
                        "pass --cache-dir DIR elsewhere") from exc
        if not items:
            raise DataMissing(f"task {spec.id}: the dataset holds no items; check --data-dir")
        return items

    def _run_task(self, spec: TaskSpec, explicit: bool, summary: RunSummary) -> None:
        try:
            all_items = self._load(spec)
        except DataMissing as exc:
            if explicit:
                raise
            summary.skipped.append(Skipped(spec.id, "*", str(exc)))
            return
        items = limit_items(all_items, self.config.limit, spec)
        items = apply_control(items, self.config.control or "", self.config.seed, Path(self.config.cache_dir))
        shas = hash_audio(items, self.config.workers) if self.model.needs_audio else item_refs(items)
        dataset = {"loader": spec.dataset.loader, "source": spec.dataset.source,
                   "fingerprint": fingerprint(items, shas), "data_dir": str(self.config.data_dir or "")}
        self._caption_owners = caption_owners(items, shas)
        for method_name, options in self._methods(spec, explicit, summary):
            method = self.registry.methods[method_name]
            options = method.with_defaults({**options, **self.method_args.get(method_name, {})})
            for prompt in self._prompts(spec, method):
                ctx = EvalContext(spec, items, options, prompt, self.executor, shas,
                                  self.config.seed, self.encode_texts,
                                  lambda d, n, s=spec.id, m=method_name: self.progress(f"{s} {m}: {d}", n))
                try:
                    outcome = method.evaluate(ctx)
                except ValueError as exc:  # the data cannot support it, e.g. a probe on a one-fold copy
                    if explicit and self.methods:
                        raise UsageError(f"task {spec.id} method {method_name}: {exc}") from exc
                    summary.skipped.append(Skipped(spec.id, method_name, str(exc)))
                    continue
                result = self._result(spec, method, options, prompt, outcome, len(all_items), len(items), dataset)
                result.chance = method.chance_levels(ctx, [k for k, v in outcome.metrics.items() if v is not None])
                result.higher_is_better = {name: declared.higher_is_better for name in outcome.metrics
                                           if (declared := method.metric(name)) is not None}
                result.intervals = {k: v.as_dict() for k, v in method.intervals(outcome, self.config.seed).items()}
                result.control_effect = control_effect(result, self._uncontrolled(result), method)
                write_result(Path(self.config.output_dir), result, outcome.records)
                summary.results.append(result)

    def _uncontrolled(self, result: Result) -> Result | None:
        """The same run on the real audio, when the output directory holds one."""
        if not result.control:
            return None
        path = result_path(Path(self.config.output_dir), dataclasses.replace(result, control=""))
        try:
            return read_result(path) if path.is_file() else None
        except UsageError:  # a malformed file: nothing to compare with
            return None

    def _methods(self, spec: TaskSpec, explicit: bool, summary: RunSummary) -> list[tuple[str, dict]]:
        chosen = []
        for name, options in spec.methods.items():
            if self.methods and name not in self.methods:
                continue
            lacking = [c for c in self.registry.methods[name].needs if not getattr(self.capabilities, c)]
            if lacking:
                reason = f"model {self.config.model} lacks capability {', '.join(lacking)}"
                if explicit and self.methods:
                    raise UsageError(f"task {spec.id} method {name}: {reason}; choose another --method")
                summary.skipped.append(Skipped(spec.id, name, reason))
                continue
            chosen.append((name, options))
        if explicit and self.methods and not chosen and not summary.skipped:
            raise UsageError(f"task {spec.id} has no method {', '.join(self.methods)}; "
                             f"its methods: {', '.join(spec.methods)}")
        return chosen

    def _prompts(self, spec: TaskSpec, method: Method) -> list[str]:
        if not method.needs_prompt:
            return [""]
        if self.config.prompt is None:
            return [spec.prompts[0]]
        if self.config.prompt == "all":
            return list(spec.prompts)
        return [self.config.prompt]

    def _result(self, spec, method, options, prompt, outcome, dataset_items, used_items, dataset) -> Result:
        provenance = {
            "alm_bench_version": __version__,
            "model_plugin": self.info.plugin,
            "model_args": self.config.model_args,
            "model_config": self.model_config,
            "model_config_hash": self.model_key.rsplit(":", 1)[1],  # model names may hold ":" (hear:MODULE)
            "method_options": dict(options),
            "generation": self.model.generation_settings(self.config.generation) if "generate" in method.needs else None,
            "text_encoder": self.text_encoder_used() if method.uses_text_encoder or outcome.details.get("retrieval")
            else None,
            "dataset": dataset,
            "limit": self.config.limit,
            "seed": self.config.seed,
            "control": self.config.control or None,
            "batch_size": self.config.batch_size,
            "device": self.config.device,
            "world_size": self.world.size,
            "threads": self.threads,
            "finished_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "python": sys.version.split()[0],
            "platform": platform.platform(),
            "command": self.config.command,
            "packages": package_versions(),
            "suite_commit": suite_commit(),
            "task_spec_hash": spec_hash(spec),
        }
        expected = spec.dataset.size or None
        partial = used_items < dataset_items or (expected is not None and dataset_items < expected)
        return Result(self.config.model, spec.id, method.name, prompt, outcome.metrics, spec.metric,
                      outcome.n_items, outcome.n_failed, partial, dataset_items, provenance, expected,
                      outcome.unavailable, outcome.details, control=self.config.control or "")


def run(config: RunConfig, registry: Registry | None = None, progress: Progress | None = None,
        notify: Notify | None = None) -> RunSummary:
    """Run in this process, or as one rank of a distributed launch (see :mod:`alm_bench.distributed`):
    rank 0 returns the summary, the other ranks serve model calls and return an empty one."""
    from . import distributed

    world = World.from_env()
    if world.distributed:
        config = replace(config, device=world.device(config.device))
        distributed.start(world, config.device)
    try:
        lead = world.rank == 0
        runner = Runner(config, registry, progress if lead else None, world, notify if lead else None)
        try:
            if world.rank > 0:
                serve(runner.local, world)
                return RunSummary()
            try:
                return runner.run()
            finally:
                if world.distributed:
                    runner.executor.close()
        finally:
            runner.cache.close()
    finally:
        distributed.stop()
