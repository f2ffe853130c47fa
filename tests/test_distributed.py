"""Distributed runs: torchrun over 2 CPU processes (gloo) gives exactly the single-process results, a
killed rank ends the run with one line and a re-launch completes it, and only reference models see
ground truth."""

from __future__ import annotations

import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
import uuid
from pathlib import Path

import numpy as np
import pytest

from alm_bench import AudioFormat, Capabilities, Model, hookimpl
from alm_bench.distributed import World
from alm_bench.plugins import build_registry
from alm_bench.runner import RunConfig, run

TORCHRUN = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2",
            "-m", "alm_bench", "run"]


def _launch(args: list[str], cache_dir: Path, marker: str = "") -> subprocess.Popen:
    env = {**os.environ, "ALM_BENCH_CACHE": str(cache_dir), "OMP_NUM_THREADS": "1", "ALM_BENCH_TEST_RUN": marker}
    return subprocess.Popen(TORCHRUN + args, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _results(directory: Path) -> dict[str, object]:
    """Every results file's content, provenance aside but for what must not differ."""
    found = {}
    for path in sorted(directory.rglob("*.json*")):
        text = path.read_text()
        if path.suffix == ".json":
            data = json.loads(text)
            provenance = data.pop("provenance")
            data["dataset"] = provenance["dataset"]
            found[str(path.relative_to(directory))] = data
        else:
            found[str(path.relative_to(directory))] = text
    return found


def test_world_comes_from_the_launchers_environment():
    assert World.from_env({}) == World()
    assert World.from_env({"RANK": "3", "WORLD_SIZE": "8", "LOCAL_RANK": "1"}) == World(3, 8, 1)
    slurm = {"SLURM_PROCID": "5", "SLURM_NTASKS": "16", "SLURM_LOCALID": "1", "MASTER_ADDR": "node0"}
    assert World.from_env(slurm) == World(5, 16, 1)
    assert World(1, 2, 1).device("cuda") == "cuda:1" and World().device("cuda") == "cuda"


@pytest.mark.slow
def test_two_processes_give_exactly_the_single_process_results(cache_dir, registry, tmp_path):
    """pengi-tiny's generations (text matching), scores (log-likelihood) and embeddings (linear probe)
    computed on 2 ranks with no cache equal a single process's, down to every item record."""
    args = ["--model", "pengi-tiny", "--task", "synth-events", "--limit", "30"]
    single = tmp_path / "single"
    run(RunConfig(model="pengi-tiny", tasks="synth-events", limit=30, output_dir=single, cache_dir=cache_dir),
        registry)
    launched = _launch(args + ["--output-dir", str(tmp_path / "two"), "--no-cache"], cache_dir)
    out, err = launched.communicate(timeout=600)
    assert launched.returncode == 0, err[-3000:]
    expected, got = _results(single), _results(tmp_path / "two")
    assert len(expected) == 6 and got == expected
    provenance = json.loads(next((tmp_path / "two").rglob("*.json")).read_text())["provenance"]
    assert provenance["world_size"] == 2


def _rank_pid(marker: str, rank: int) -> int | None:
    for proc in Path("/proc").iterdir():
        try:
            env = (proc / "environ").read_bytes().split(b"\0")
        except (OSError, ValueError):
            continue
        if f"ALM_BENCH_TEST_RUN={marker}".encode() in env and f"RANK={rank}".encode() in env \
                and b"LOCAL_RANK=%d" % rank in env:
            return int(proc.name)
    return None


def _cached_rows(cache: Path) -> int:
    try:
        with sqlite3.connect(cache / "outputs" / "outputs.sqlite", timeout=5) as db:
            return db.execute("SELECT COUNT(*) FROM outputs").fetchone()[0]
    except sqlite3.Error:
        return 0


@pytest.mark.slow
def test_a_killed_rank_stops_the_run_and_a_relaunch_completes_it(cache_dir, registry, tmp_path):
    cache = tmp_path / "cache"
    cache.mkdir()
    (cache / "data").symlink_to(cache_dir / "data")  # the synthetic data, not its cached outputs
    out = tmp_path / "out"
    args = ["--model", "chance", "--model-args", "latency=0.04", "--task", "synth-events", "--method",
            "log_likelihood", "--batch-size", "4", "--output-dir", str(out)]
    marker = uuid.uuid4().hex
    launched = _launch(args, cache, marker)
    deadline = time.monotonic() + 300
    while _cached_rows(cache) < 8 and time.monotonic() < deadline and launched.poll() is None:
        time.sleep(0.2)
    pid = _rank_pid(marker, 1)
    assert pid is not None and launched.poll() is None, "the run ended before a rank could be killed"
    os.kill(pid, signal.SIGKILL)
    _, err = launched.communicate(timeout=300)
    assert launched.returncode != 0
    lines = [line for line in err.splitlines() if line.startswith("error: ")]
    assert lines and ("a rank stopped during the run" in lines[0] or "stopped by its launcher" in lines[0])
    assert not list(out.rglob("*.json")) and not list(out.rglob("*.tmp*"))  # nothing half-written
    resumed_from = _cached_rows(cache)
    assert resumed_from > 0

    launched = _launch(args, cache, marker)
    _, err = launched.communicate(timeout=300)
    assert launched.returncode == 0, err[-3000:]
    single = tmp_path / "single"
    run(RunConfig(model="chance", tasks="synth-events", methods=("log_likelihood",), output_dir=single,
                  cache_dir=cache_dir), registry)
    assert _results(out) == _results(single)


class _Snoop(Model):
    """A third-party model that looks for the answers of what it is asked."""

    name = "snoop"
    capabilities = Capabilities(generate=True, score=True, embed=True)
    audio_format = AudioFormat(sample_rate=16_000)
    seen: list = []

    def _look(self, requests, extra) -> None:
        import alm_bench.answer_key as answer_key

        leaked = [name for name, value in vars(answer_key).items() if isinstance(value, answer_key.AnswerKey)]
        fields = {f for r in requests for f in getattr(r, "__dataclass_fields__", {})}
        type(self).seen.append((dict(extra), leaked, fields))

    def generate(self, requests, config, **extra):
        self._look(requests, extra)
        return ["a bell"] * len(requests)

    def score(self, requests, **extra):
        self._look(requests, extra)
        return [np.zeros(len(r.candidates)) for r in requests]

    def embed(self, clips, **extra):
        self._look(clips, extra)
        return np.ones((len(clips), 4))


class _SnoopPlugin:
    @hookimpl
    def alm_bench_models(self):
        return [_Snoop]


def test_a_third_party_model_cannot_read_the_answers(cache_dir, tmp_path):
    registry = build_registry(extra_plugins=(("snoop-plugin", _SnoopPlugin()),))
    run(RunConfig(model="snoop", tasks="synth-events", limit=10, output_dir=tmp_path, cache_dir=cache_dir,
                  use_cache=False), registry)
    assert _Snoop.seen
    for extra, leaked, fields in _Snoop.seen:
        assert extra == {} and leaked == []
        assert fields <= {"content", "clip", "prompt", "candidates", "waveform", "sha"}
