"""Harness-overhead benchmark: how much of a run is the harness, and how much is the model.

Measures, on the synthetic suite, with a real compute model whose calls are timed:

1. overhead: wall time of a cold-cache run beyond the model's own compute (loading, hashing,
   decoding and resampling not hidden behind the model, caching, scoring, results files);
   target at most 10% of the run;
2. cache: a repeated run of the same configuration served from the output cache; target at least
   50x faster than the cold run;
3. parallel decoding: how much of the audio decoding + resampling time (worker threads) is hidden
   behind the model's compute, from the time the main thread actually waits for decoded audio.

The model (``bench-cnn``) is defined here: a seeded random-weight network over a log-mel
spectrogram computed in torch, wanting 22.05 kHz audio so that the runner must resample the
16 kHz synthetic clips.  Synthetic data generation and Python imports are done before the timed
region (model construction is timed, as harness); each cold run starts from a fresh temporary output
cache.

    /work/venv/bin/python bench/harness_overhead.py                 # default subset, updates BENCHMARKS.md
    /work/venv/bin/python bench/harness_overhead.py --tasks all --methods all --section full
    /work/venv/bin/python bench/harness_overhead.py --tasks synth-events --no-write
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as _dt
import math
import os
import platform
import re
import sys
import tempfile
import time
import zlib
from collections import defaultdict
from concurrent.futures import Future
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

_IMPORT_START = time.perf_counter()
import numpy as np  # noqa: E402
import torch  # noqa: E402

import alm_bench  # noqa: E402
import alm_bench.audio  # noqa: E402
import alm_bench.cache  # noqa: E402
import alm_bench.executor  # noqa: E402
import alm_bench.runner  # noqa: E402
from alm_bench import AudioFormat, Capabilities, Model, hookimpl  # noqa: E402
from alm_bench.plugins import build_registry  # noqa: E402
from alm_bench.runner import RunConfig, default_cache_dir, run, select_tasks  # noqa: E402
from alm_bench.synth import DATASET_VERSION  # noqa: E402

_IMPORT_SECONDS = time.perf_counter() - _IMPORT_START

REPO = Path(__file__).resolve().parents[1]
DEFAULT_TASKS = "synth-events,synth-tagging,synth-count,synth-compare,synth-fewshot"
#: every method of those tasks except the linear probe (its training is scoring, not per-call harness work)
DEFAULT_METHODS = "text_matching,log_likelihood,qa,two_clip,fewshot,fewshot_prototype"
SECTIONS = {
    "default": "Harness overhead: per-call machinery (default subset)",
    "full": "Harness overhead: every synthetic task and method (scoring-heavy)",
}


def markers(section: str) -> tuple[str, str]:
    return f"<!-- harness-overhead:{section}:start -->", f"<!-- harness-overhead:{section}:end -->"


# ---------------------------------------------------------------------------------------------
# The benchmark model
# ---------------------------------------------------------------------------------------------

#: process-wide tally of the model's own compute, measured inside the model's methods
MODEL_CLOCK = {"compute": 0.0, "init": 0.0, "clips": 0}

VOCABULARY = tuple(
    "a the sound of tone sweep click noise pluck bell chirp buzz hum beep siren whistle drum knock "
    "rain wind engine voice music dog bird water loud quiet soft high low short long once twice "
    "repeated rising falling steady first second both neither yes no 1 2 3 4 5 beginning middle end "
    "then and".split()
)


def _mel_filterbank(sample_rate: int, n_fft: int, n_mels: int) -> torch.Tensor:
    freqs = np.linspace(0.0, sample_rate / 2, n_fft // 2 + 1)
    to_mel = lambda hz: 2595.0 * np.log10(1.0 + hz / 700.0)  # noqa: E731
    to_hz = lambda mel: 700.0 * (10.0 ** (mel / 2595.0) - 1.0)  # noqa: E731
    edges = to_hz(np.linspace(to_mel(0.0), to_mel(sample_rate / 2), n_mels + 2))
    bank = np.zeros((n_mels, len(freqs)), np.float32)
    for i in range(n_mels):
        low, centre, high = edges[i : i + 3]
        bank[i] = np.clip(np.minimum((freqs - low) / (centre - low), (high - freqs) / (high - centre)), 0, None)
    return torch.from_numpy(bank)


class BenchModel(Model):
    """Seeded random-weight conv net over log-mel spectrograms (harness-overhead benchmark model)."""

    name = "bench-cnn"
    capabilities = Capabilities(generate=True, embed=True, score=True, interleaved=True)
    # deliberately not 16 kHz: every synthetic clip is resampled by the runner
    audio_format = AudioFormat(sample_rate=22_050, max_seconds=10.0)

    def __init__(self, seed: int = 0, width: int = 512, layers: int = 4, dim: int = 256, n_mels: int = 64) -> None:
        start = time.perf_counter()
        self.seed, self.width, self.layers, self.dim, self.n_mels = seed, width, layers, dim, n_mels
        self.n_fft, self.hop = 1024, 256
        generator = torch.Generator().manual_seed(seed)
        torch.manual_seed(seed)
        blocks: list[torch.nn.Module] = [torch.nn.Conv1d(n_mels, width, 5, padding=2), torch.nn.GELU()]
        for _ in range(layers - 1):
            blocks += [torch.nn.Conv1d(width, width, 3, padding=1), torch.nn.GELU()]
        self.encoder = torch.nn.Sequential(*blocks).eval()
        self.project = torch.nn.Linear(2 * width, dim).eval()
        self.window = torch.hann_window(self.n_fft)
        self.mel = _mel_filterbank(self.audio_format.sample_rate, self.n_fft, n_mels)
        self.text_table = torch.randn(4096, dim, generator=generator) / math.sqrt(dim)
        self.vocab = torch.randn(len(VOCABULARY), dim, generator=generator)
        self._text: dict[str, torch.Tensor] = {}
        MODEL_CLOCK["init"] += time.perf_counter() - start

    def config(self) -> dict[str, Any]:
        return {"seed": self.seed, "width": self.width, "layers": self.layers, "dim": self.dim, "n_mels": self.n_mels}

    # -- internals --------------------------------------------------------------------------
    def _audio(self, waveforms: list[np.ndarray]) -> torch.Tensor:
        """[len(waveforms), dim] unit embeddings; one padded batch through the network."""
        MODEL_CLOCK["clips"] += len(waveforms)
        length = max(max(len(w) for w in waveforms), self.n_fft)
        batch = torch.zeros(len(waveforms), length)
        for row, wave in enumerate(waveforms):
            batch[row, : len(wave)] = torch.from_numpy(wave)
        power = torch.stft(batch, self.n_fft, self.hop, window=self.window, return_complex=True).abs() ** 2
        logmel = torch.log(self.mel @ power + 1e-6)
        logmel = (logmel - logmel.mean(dim=(1, 2), keepdim=True)) / (logmel.std(dim=(1, 2), keepdim=True) + 1e-5)
        hidden = self.encoder(logmel)
        pooled = torch.cat([hidden.mean(-1), hidden.amax(-1)], dim=1)
        return torch.nn.functional.normalize(self.project(pooled), dim=1)

    def _text_vector(self, text: str) -> torch.Tensor:
        """Hashed character trigrams (crc32, so stable across processes) into a seeded table."""
        if text not in self._text:
            padded = f"  {text.lower()} "
            rows = [zlib.crc32(padded[i : i + 3].encode()) % len(self.text_table) for i in range(len(padded) - 2)]
            vector = self.text_table[rows].sum(0) if rows else torch.zeros(self.dim)
            self._text[text] = torch.nn.functional.normalize(vector, dim=0)
        return self._text[text]

    def _contexts(self, contents: list[tuple]) -> torch.Tensor:
        """One vector per interleaved request: mean of its clips' embeddings plus its texts."""
        clips = [c for content in contents for c in content if not isinstance(c, str)]
        audio = self._audio([c.waveform for c in clips])
        out, row = [], 0
        for content in contents:
            vector = torch.zeros(self.dim)
            n_clips = sum(1 for c in content if not isinstance(c, str))
            if n_clips:
                vector = vector + audio[row : row + n_clips].mean(0)
                row += n_clips
            for text in (c for c in content if isinstance(c, str)):
                vector = vector + 0.5 * self._text_vector(text)
            out.append(vector)
        return torch.stack(out)

    @contextlib.contextmanager
    def _clock(self):
        start = time.perf_counter()
        try:
            with torch.inference_mode():
                yield
        finally:
            MODEL_CLOCK["compute"] += time.perf_counter() - start

    # -- protocol ---------------------------------------------------------------------------
    def embed(self, clips):
        with self._clock():
            return self._audio([c.waveform for c in clips]).numpy().astype(np.float32)

    def generate(self, requests, config):
        with self._clock():
            context = torch.tanh(self._contexts([r.content for r in requests]) * 4.0)
            top = (context @ self.vocab.T).topk(2, dim=1).indices.tolist()
            return [" ".join(VOCABULARY[i] for i in pair) for pair in top]

    def score(self, requests):
        with self._clock():
            context = self._contexts([(r.clip, r.prompt) for r in requests])
            out = []
            for request, vector in zip(requests, context):
                candidates = torch.stack([self._text_vector(c) for c in request.candidates])
                out.append(-torch.nn.functional.softplus(-(candidates @ vector) * 4.0).double().numpy())
            return out


class BenchPlugin:
    @hookimpl
    def alm_bench_models(self):
        return [BenchModel]


# ---------------------------------------------------------------------------------------------
# Instrumentation: where the wall time goes (patched in for the measured runs only)
# ---------------------------------------------------------------------------------------------


@dataclass
class Tally:
    seconds: dict[str, float] = field(default_factory=lambda: defaultdict(float))
    per_method: dict[tuple[str, str], dict[str, float]] = field(default_factory=dict)

    def add(self, key: str, seconds: float) -> None:
        self.seconds[key] += seconds


class Instruments:
    """Wraps harness functions with timers; ``timed`` is how long each part took in total."""

    def __init__(self, registry, serial_decoding: bool = False) -> None:
        self.registry = registry
        self.serial_decoding = serial_decoding
        self.tally = Tally()
        self._undo: list[Callable[[], None]] = []

    def _patch(self, owner, name: str, wrapper_factory) -> None:
        original = owner.__dict__[name] if isinstance(owner, type) else getattr(owner, name)
        had_instance_attr = not isinstance(owner, type) and name in getattr(owner, "__dict__", {})
        setattr(owner, name, wrapper_factory(original))
        self._undo.append(lambda: (setattr(owner, name, original) if isinstance(owner, type) or had_instance_attr
                                   else delattr(owner, name)))

    def _timer(self, key: str):
        tally = self.tally

        def factory(original):
            def wrapped(*args, **kwargs):
                start = time.perf_counter()
                try:
                    return original(*args, **kwargs)
                finally:
                    tally.add(key, time.perf_counter() - start)
            return wrapped
        return factory

    def __enter__(self) -> "Instruments":
        tally = self.tally
        self._patch(alm_bench.cache.OutputCache, "get_many", self._timer("cache_get"))
        self._patch(alm_bench.cache.OutputCache, "put_many", self._timer("cache_put"))
        self._patch(alm_bench.runner.Runner, "_load", self._timer("load_items"))
        self._patch(alm_bench.runner, "hash_audio", self._timer("hash_audio"))
        self._patch(alm_bench.runner, "write_result", self._timer("write_results"))

        def wait_for_audio(original):
            def wrapped(self_, batch):
                start = time.perf_counter()
                batch.decoded.result()  # the main thread blocks here only if decoding is behind
                tally.add("decode_wait", time.perf_counter() - start)
                return original(self_, batch)
            return wrapped
        self._patch(alm_bench.executor.LocalExecutor, "_run_batch", wait_for_audio)

        if self.serial_decoding:  # baseline: decode each batch in the main thread, just before its model call
            def serial(original):
                def decoded_batches(self_, pending):
                    for batch in self_._plan(pending):
                        future: Future = Future()
                        future.set_result(self_._decode_batch(batch))
                        batch.decoded = future
                        yield batch
                        batch.decoded = None
                return decoded_batches
            self._patch(alm_bench.executor.LocalExecutor, "_decoded_batches", serial)

        for key, factory in list(self.registry.text_encoders.items()):
            self._patch_encoder(key, factory)
        for method in self.registry.methods.values():
            self._patch_method(method)
        return self

    def _patch_encoder(self, key: str, factory) -> None:
        tally = self.tally

        def timed_factory(argument):
            start = time.perf_counter()
            encoder = factory(argument)
            tally.add("text_encoder_load", time.perf_counter() - start)

            class Timed:
                def encode(self, texts):
                    begin = time.perf_counter()
                    try:
                        return encoder.encode(texts)
                    finally:
                        tally.add("text_encode", time.perf_counter() - begin)
            return Timed()

        self.registry.text_encoders[key] = timed_factory
        self._undo.append(lambda: self.registry.text_encoders.__setitem__(key, factory))

    def _patch_method(self, method) -> None:
        tally = self.tally

        def factory(original):
            def evaluate(ctx):
                keys = ("decode_wait", "cache_get", "cache_put", "text_encoder_load", "text_encode")
                before = {k: tally.seconds[k] for k in keys}
                stats = ctx.executor.stats
                model_before, compute_before, calls_before = stats.model_seconds, MODEL_CLOCK["compute"], stats.model_calls
                clips_before = MODEL_CLOCK["clips"]
                hits_before = stats.cache_hits
                start = time.perf_counter()
                try:
                    return original(ctx)
                finally:
                    entry = {k: tally.seconds[k] - before[k] for k in keys}
                    entry["wall"] = time.perf_counter() - start
                    entry["model_call"] = stats.model_seconds - model_before
                    entry["compute"] = MODEL_CLOCK["compute"] - compute_before
                    entry["model_calls"] = stats.model_calls - calls_before
                    entry["clips"] = MODEL_CLOCK["clips"] - clips_before
                    entry["cache_hits"] = stats.cache_hits - hits_before
                    key = (ctx.spec.id, f"{method.name}" + (f" ({ctx.prompt})" if ctx.prompt else ""))
                    tally.per_method[key] = entry
            return evaluate
        self._patch(method, "evaluate", factory)

    def __exit__(self, *exc) -> None:
        for undo in reversed(self._undo):
            undo()


# ---------------------------------------------------------------------------------------------
# Measured runs
# ---------------------------------------------------------------------------------------------


@dataclass
class Measurement:
    label: str
    wall: float
    compute: float  # the model's own compute, timed inside its methods
    model_seconds: float  # the executor's timer around each model call (includes output validation)
    decode_seconds: float  # decoding + resampling, summed over worker threads
    model_calls: int
    cache_hits: int
    model_init: float
    tally: Tally
    metrics: dict

    @property
    def overhead(self) -> float:
        return self.wall - self.compute


def measured_run(label: str, config: RunConfig, registry, serial_decoding: bool = False) -> Measurement:
    MODEL_CLOCK.update(compute=0.0, init=0.0, clips=0)
    with Instruments(registry, serial_decoding) as instruments:
        start = time.perf_counter()
        summary = run(config, registry)
        wall = time.perf_counter() - start
    stats = summary.stats
    if summary.skipped:
        print(f"[{label}] skipped: " + "; ".join(f"{s.task} {s.method}: {s.reason}" for s in summary.skipped))
    metrics = {(r.task, r.method, r.prompt): r.metrics for r in summary.results}
    return Measurement(label, wall, MODEL_CLOCK["compute"], stats.model_seconds, stats.decode_seconds,
                       stats.model_calls, stats.cache_hits, MODEL_CLOCK["init"], instruments.tally, metrics)


def prepare_data(registry, tasks: str, data_dir: Path, cache_dir: Path) -> tuple[float, int, int]:
    """Generate (or find) the synthetic data: the loader's first call, outside every timed region."""
    start = time.perf_counter()
    specs, _ = select_tasks(registry, tasks)
    n_items = n_files = 0
    for spec in specs:
        items = registry.loaders[spec.dataset.loader](spec, data_dir, cache_dir)
        n_items += len(items)
        n_files += len({p for item in items for p in item.audio})
    return time.perf_counter() - start, n_items, n_files


def warm_imports() -> float:
    """Import what the scorers import lazily (sentence-transformers), so run 1 does not pay it."""
    start = time.perf_counter()
    import sentence_transformers  # noqa: F401
    import sklearn.neural_network  # noqa: F401

    return time.perf_counter() - start


# ---------------------------------------------------------------------------------------------
# Report
# ---------------------------------------------------------------------------------------------


def pct(part: float, whole: float) -> str:
    return f"{100 * part / whole:.1f}%" if whole else "n/a"


def verdict(ok: bool) -> str:
    return "**met**" if ok else "**missed**"


def breakdown_rows(m: Measurement) -> list[tuple[str, float]]:
    t = m.tally.seconds
    methods_wall = sum(e["wall"] for e in m.tally.per_method.values())
    inside = sum(t[k] for k in ("decode_wait", "cache_get", "cache_put", "text_encoder_load", "text_encode"))
    scoring = methods_wall - m.model_seconds - inside
    rows = [
        ("model compute (timed inside the model)", m.compute),
        ("model-call wrapper: output validation, dispatch", m.model_seconds - m.compute),
        ("model construction", m.model_init),
        ("dataset manifests (load items)", t["load_items"]),
        ("audio content hashing", t["hash_audio"]),
        ("waiting for decoded audio (decoding not hidden)", t["decode_wait"]),
        ("output cache lookups", t["cache_get"]),
        ("output cache writes (SQLite commits)", t["cache_put"]),
        ("text encoder loading (sentence-transformers)", t["text_encoder_load"]),
        ("text encoding (sentence-transformers)", t["text_encode"]),
        ("scoring + planning (metrics, probes, call lists)", scoring),
        ("results files", t["write_results"]),
    ]
    accounted = sum(v for _, v in rows)
    rows.append(("other (runner bookkeeping)", m.wall - accounted))
    return rows


def render(args, cold: Measurement, warm: Measurement, serial: Measurement | None, setup: dict) -> str:
    te = cold.tally.seconds["text_encoder_load"]
    clips = max(setup["clips"], 1)
    overhead_frac = cold.overhead / cold.wall
    speedup = cold.wall / warm.wall
    wait = cold.tally.seconds["decode_wait"]
    hidden = 1 - wait / cold.decode_seconds if cold.decode_seconds else float("nan")
    # The harness's costs do not depend on the model's speed, so each target has a break-even model cost.
    need_overhead = 1000 * 9 * cold.overhead / clips
    need_cache = 1000 * max(50 * warm.wall - cold.overhead, 0.0) / clips
    lines = [
        f"Command: `{setup['command']}`  ",
        f"Machine: {setup['machine']}  ",
        f"Date: {setup['date']}; alm-bench {alm_bench.__version__}, Python {platform.python_version()}, "
        f"torch {torch.__version__} ({torch.get_num_threads()} intra-op threads); load average "
        f"{setup['load_before']:.1f} before and {setup['load_after']:.1f} after the runs (other processes share the CPUs).  ",
        f"Configuration: tasks `{args.tasks}`, methods `{args.methods or 'all'}`; batch size {args.batch_size}; "
        f"{args.workers} decode workers; model `bench-cnn` (width {args.width}, {args.layers} conv layers, "
        f"22.05 kHz input, so every 16 kHz clip is resampled). {setup['n_items']} items, {setup['n_files']} audio "
        f"files; the cold run made {cold.model_calls} model calls over {setup['clips']} clip encodings, "
        f"**{1000 * cold.compute / clips:.1f} ms of model compute per clip**.",
        "",
        f"Untimed setup: synthetic data generation or lookup {setup['data_seconds']:.1f} s; imports "
        f"{setup['import_seconds']:.1f} s (alm-bench, torch, sentence-transformers).",
        "",
        "| target | measured | result |",
        "|---|---|---|",
        f"| harness overhead <= 10% of a cold run | {pct(cold.overhead, cold.wall)} ({cold.overhead:.2f} s of "
        f"{cold.wall:.2f} s; {pct(cold.overhead - te, cold.wall - te)} without the text-encoder load of {te:.2f} s) "
        f"| {verdict(overhead_frac <= 0.10)} |",
        f"| repeated run from the cache >= 50x faster | {speedup:.0f}x ({cold.wall:.2f} s -> {warm.wall:.3f} s; "
        f"{warm.model_calls} model calls, {warm.cache_hits} cache hits) "
        f"| {verdict(speedup >= 50 and warm.model_calls == 0)} |",
        f"| decoding + resampling in parallel with the model (>= 90% of it off the critical path) | "
        f"{pct(cold.decode_seconds - wait, cold.decode_seconds)} of {cold.decode_seconds:.2f} s decode time hidden "
        f"behind the model; the main thread waited {wait:.3f} s | {verdict(hidden >= 0.9)} |",
        "",
        f"Break-even model cost (the harness's time does not depend on the model): the overhead target holds for "
        f"models computing at least **{need_overhead:.1f} ms per clip** (9 x overhead / clips), the cache target for "
        f"at least **{need_cache:.1f} ms per clip** ((50 x warm wall - overhead) / clips); `bench-cnn` took "
        f"{1000 * cold.compute / clips:.1f} ms.",
        "",
        "Where the wall time goes:",
        "",
        "| part | cold run (s) | share | warm run (s) | share |",
        "|---|---:|---:|---:|---:|",
    ]
    for (name, c), (_, w) in zip(breakdown_rows(cold), breakdown_rows(warm)):
        lines.append(f"| {name} | {c:.3f} | {pct(c, cold.wall)} | {w:.3f} | {pct(w, warm.wall)} |")
    lines.append(f"| **wall time of `run()`** | **{cold.wall:.3f}** | 100% | **{warm.wall:.3f}** | 100% |")
    lines.append("")
    lines.append(f"Decoding: {cold.decode_seconds:.2f} s of decode + resample work in {args.workers} worker threads, "
                 f"model compute {cold.compute:.2f} s, wall {cold.wall:.2f} s: wall < compute + decode "
                 f"({cold.compute + cold.decode_seconds:.2f} s), the two overlap.")
    if serial is not None:
        delta = serial.wall - cold.wall
        lines.append(f"Serial baseline (same run, fresh cache, each batch decoded in the main thread just before its "
                     f"model call): wall {serial.wall:.2f} s (model compute {serial.compute:.2f} s, decode "
                     f"{serial.decode_seconds:.2f} s) against {cold.wall:.2f} s with parallel decoding, which "
                     f"{'saved' if delta >= 0 else 'cost'} {abs(delta):.2f} s ({pct(abs(delta), serial.wall)}).")
        if delta < 0:
            lines.append(f"With {os.cpu_count()} cores and no idle one (load average above), decode threads running "
                         "beside the model slow its compute by about as much as they hide, and run-to-run noise from "
                         "other processes is of the same size; parallel decoding pays where the model leaves cores "
                         "idle (a GPU model, or more cores than torch threads).")
    costly = sorted(((e["wall"] - e["compute"], task, method) for (task, method), e in cold.tally.per_method.items()),
                    reverse=True)[:3]
    lines.append("")
    lines.append("Largest harness costs by task and method (cold run): " + "; ".join(
        f"{task} {method.split(' (')[0]} {seconds:.2f} s" for seconds, task, method in costly) + ".")
    lines += [
        "",
        "Per task and method (cold run; `other` = scoring, planning, cache and text encoder):",
        "",
        "| task | method | model calls | clips/s | wall (s) | model compute (s) | decode wait (s) | other (s) | overhead |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for (task, method), e in cold.tally.per_method.items():
        other = e["wall"] - e["compute"] - e["decode_wait"]
        lines.append(f"| {task} | {method} | {int(e['model_calls'])} | {e.get('clips', 0) / e['wall']:.0f} | "
                     f"{e['wall']:.2f} | {e['compute']:.2f} | {e['decode_wait']:.3f} | {other:.2f} | "
                     f"{pct(e['wall'] - e['compute'], e['wall'])} |")
    return "\n".join(lines)


INTRO = """# Benchmarks

Performance measurements of the alm-bench harness itself (not of any audio-language model). Each
section is written by a script under `bench/`; rerun its command to refresh it. The numbers were
measured on the machine each section names and are not expected to carry over to another machine.

| benchmark | what it measures | script |
|---|---|---|
| harness overhead | on the synthetic suite, with a timed compute model: the harness's own share of a cold run (loading, hashing, decoding and resampling not hidden behind the model, caching, scoring, results files), the speed-up of a repeated run served from the output cache, and whether audio decoding and resampling overlap the model | `bench/harness_overhead.py` |
"""

ABOUT = f"""## Harness overhead

Targets (issue, section 8): the harness's own time (wall time beyond the model's calls) at most 10%
of a run; a repeated run served from the cache at least 50x faster than the first; audio decoding and
resampling in parallel with the model, not in series.

How `bench/harness_overhead.py` measures them:

- The model is `bench-cnn`, defined in the script: a seeded random-weight 1-D conv net over a log-mel
  spectrogram computed in torch (STFT and mel filterbank), with `generate` (two words of a fixed
  vocabulary, by argmax), `score`, `embed` and interleaved input. It asks for 22.05 kHz audio, so the
  runner resamples every 16 kHz synthetic clip. Its compute is timed inside its own methods ("model
  compute"); the executor's `stats.model_seconds`, the timer around each call, also covers output
  validation, which is counted as harness time here. Torch gets CPU cores minus decode workers
  (at least one) intra-op threads (`--threads`): a CPU model that takes every core leaves the decode
  threads none, and on this 2-core machine, shared with other processes, two torch threads made the
  model several times slower (71 ms instead of 5.5 ms per clip in one measurement).
- Not timed: generating the synthetic data (the loader's first call), importing the heavy modules.
  Each cold run starts from a fresh temporary output cache and results directory.
- Run 1 (cold): wall time of `alm_bench.runner.run(config)`; overhead = wall - model compute. All the
  rest is harness: model construction, reading manifests, hashing audio, the time the main thread
  waits for decoded audio, cache lookups and writes, loading and running the text encoder
  (sentence-transformers, since `bench-cnn` has no text encoder of its own), metrics, probes, results files.
- Run 2 (warm): the same configuration and cache directory, with the in-process file-hash memo cleared
  as a new process would have it. Speed-up = wall(run 1) / wall(run 2); run 2 must make no model call
  (checked, and its metrics must equal run 1's).
- Parallel decoding: `stats.decode_seconds` sums decode and resample time in the worker threads; the
  script also times how long the main thread blocks on each batch's decoded audio (hidden fraction =
  1 - wait / decode time); `--serial-baseline` adds a cold run with decoding in series to compare with.
- The harness's time does not depend on how slow the model is, so each section also gives the
  break-even model cost per clip above which a target holds.

The default subset (`--tasks {DEFAULT_TASKS}`,
`--methods {DEFAULT_METHODS}`) exercises the per-call machinery: every zero-shot, QA, two-clip and
few-shot method, about 3000 clip encodings. It leaves out the scoring that costs seconds whatever the
model in a cold run (a repeated run takes probe and caption-metric results from the cache, keyed by
their inputs, so it pays none of it):

- the linear probes (HEAR-style training: 5 folds or a train/valid/test split, 3 learning rates, up to
  200 epochs of scikit-learn `partial_fit`), about 5 s per task here;
- the captioning metrics of `synth-caption` (PTB tokenizer and METEOR in Java), 7-9 s;
- generative retrieval (`synth-retrieval`), which encodes its 1000 reference captions with
  sentence-transformers, about 6 s in a cold run (text encodings go to the output cache, so a
  repeated run neither loads nor runs the text encoder).

The "full" section runs every task and method (`--tasks all --methods all --section full`) to show
them: with a model this fast they take a fifth of the cold run and most of the warm one. Its break-even
model costs say how slow a model must be for the targets to hold with them included.
"""


def update_benchmarks(path: Path, section: str, body: str) -> None:
    text = path.read_text(encoding="utf-8") if path.is_file() else INTRO
    blocks = [("about", ABOUT), (section, f"### {SECTIONS[section]}\n\n{body}\n")]
    for name, content in blocks:
        start, end = markers(name)
        block = f"{start}\n{content.rstrip()}\n{end}\n"
        if start in text and end in text:
            pattern = re.compile(re.escape(start) + r".*?" + re.escape(end) + r"\n?", re.S)
            text = pattern.sub(lambda _: block, text, count=1)
        else:
            text = text.rstrip("\n") + "\n\n" + block
    path.write_text(text, encoding="utf-8")


def machine_description() -> str:
    cpu = platform.processor() or ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    memory = ""
    try:
        kib = int(next(l for l in Path("/proc/meminfo").read_text().splitlines() if l.startswith("MemTotal")).split()[1])
        memory = f", {kib / 2**20:.0f} GiB RAM"
    except (OSError, StopIteration, ValueError):
        pass
    return f"{os.cpu_count()} CPU cores ({cpu}){memory}, {platform.platform()}"


# ---------------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tasks", default=DEFAULT_TASKS, help=f"task ids, globs or a comma list (default: {DEFAULT_TASKS})")
    parser.add_argument("--methods", default=DEFAULT_METHODS,
                        help=f"comma-separated methods, or 'all' (default: {DEFAULT_METHODS})")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--workers", type=int, default=2, help="decode worker threads (RunConfig.workers)")
    parser.add_argument("--width", type=int, default=1024, help="conv channels of bench-cnn (its cost per clip)")
    parser.add_argument("--layers", type=int, default=4, help="conv layers of bench-cnn")
    parser.add_argument("--threads", type=int, default=None,
                        help="torch intra-op threads for the model (default: CPU cores - decode workers, at least 1, "
                             "so that the decode threads do not oversubscribe the cores)")
    parser.add_argument("--data-dir", type=Path, default=None,
                        help="an existing copy of the synthetic data (default: generated on first use into "
                             "alm-bench's own cache directory, data/synth-vN, and read from there)")
    parser.add_argument("--serial-baseline", action="store_true",
                        help="add a third run (cold, each batch decoded in series in the main thread) to compare with")
    parser.add_argument("--section", choices=sorted(SECTIONS), default="default",
                        help="which section of the markdown file to replace")
    parser.add_argument("--out", type=Path, default=REPO / "BENCHMARKS.md", help="markdown file to update")
    parser.add_argument("--no-write", action="store_true", help="print the results only")
    args = parser.parse_args(argv)
    if args.methods.strip().lower() == "all":
        args.methods = ""
    if args.threads is None:
        args.threads = max(1, (os.cpu_count() or 1) - args.workers)
    torch.set_num_threads(args.threads)

    registry = build_registry(extra_plugins=(("bench", BenchPlugin()),))
    if "bench-cnn" not in registry.models:
        raise SystemExit("bench-cnn did not register: " + "; ".join(registry.errors))
    import_seconds = _IMPORT_SECONDS + warm_imports()
    # The runs get fresh output caches, so they read the data from where it was generated, via data_dir.
    data_dir = args.data_dir or default_cache_dir() / "data" / f"synth-v{DATASET_VERSION}"
    print(f"preparing synthetic data under {data_dir} (untimed) ...", flush=True)
    data_seconds, n_items, n_files = prepare_data(registry, args.tasks, args.data_dir, default_cache_dir())

    methods = tuple(m.strip() for m in args.methods.split(",") if m.strip())
    model_args = {"width": args.width, "layers": args.layers}

    def config(cache: Path) -> RunConfig:
        return RunConfig(model="bench-cnn", tasks=args.tasks, methods=methods, model_args=model_args,
                         data_dir=data_dir, output_dir=cache / "results", cache_dir=cache,
                         batch_size=args.batch_size, workers=args.workers)

    load_before = os.getloadavg()[0]
    with tempfile.TemporaryDirectory(prefix="alm-bench-overhead-") as tmp:
        cache = Path(tmp)
        print("run 1: cold cache ...", flush=True)
        cold = measured_run("cold", config(cache), registry)
        clips = MODEL_CLOCK["clips"]
        print(f"  wall {cold.wall:.2f} s, model compute {cold.compute:.2f} s", flush=True)
        alm_bench.audio._SHA_MEMO.clear()  # as a new process would: hash the files again
        print("run 2: warm cache ...", flush=True)
        warm = measured_run("warm", config(cache), registry)
        print(f"  wall {warm.wall:.3f} s, {warm.model_calls} model calls", flush=True)
    if repr(warm.metrics) != repr(cold.metrics):  # repr: NaN equals NaN
        print("WARNING: the cached run's metrics differ from the cold run's", file=sys.stderr)
    serial = None
    if args.serial_baseline:
        with tempfile.TemporaryDirectory(prefix="alm-bench-overhead-serial-") as tmp:
            alm_bench.audio._SHA_MEMO.clear()
            print("run 3: cold cache, decoding in series ...", flush=True)
            serial = measured_run("serial", config(Path(tmp)), registry, serial_decoding=True)
            print(f"  wall {serial.wall:.2f} s", flush=True)
    load_after = os.getloadavg()[0]

    argv_text = " ".join(sys.argv[1:] if argv is None else argv)
    setup = {
        "command": f"python bench/harness_overhead.py{(' ' + argv_text) if argv_text else ''}",
        "machine": machine_description(),
        "date": _dt.date.today().isoformat(),
        "n_items": n_items, "n_files": n_files, "clips": clips,
        "data_seconds": data_seconds, "import_seconds": import_seconds,
        "load_before": load_before, "load_after": load_after,
    }
    body = render(args, cold, warm, serial, setup)
    print()
    print(body)
    if not args.no_write:
        update_benchmarks(args.out, args.section, body)
        print(f"\nupdated {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
