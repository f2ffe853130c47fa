"""Runner behaviour: results files, failures, resuming after SIGKILL, shared caches, batch invariance."""

import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from alm_bench import synth
from alm_bench.runner import RunConfig, run


def _copy_events(cache_dir: Path, target: Path) -> Path:
    """A private copy of the synthetic events test split (so tests may damage its files)."""
    root = cache_dir / "data" / f"synth-v{synth.DATASET_VERSION}"
    synth.build_dataset("events", "test", root)
    shutil.copytree(root / "events" / "test", target / "events" / "test")
    return target


def _results(summary):
    return {(r.task, r.method): r for r in summary.results}


def test_results_json_and_records_say_how_they_were_produced(registry, cache_dir, tmp_path):
    out = tmp_path / "out"
    run(RunConfig(model="oracle", tasks="synth-count", output_dir=out, cache_dir=cache_dir), registry)
    data = json.loads((out / "oracle" / "synth-count" / "qa--question-question.json").read_text())
    for field in ("model", "task", "method", "metrics", "n_items", "n_failed", "provenance", "partial"):
        assert field in data
    prov = data["provenance"]
    for field in ("alm_bench_version", "model_config", "model_config_hash", "dataset", "seed", "finished_at"):
        assert field in prov
    assert prov["dataset"]["fingerprint"] and prov["model_config"]["audio"]["sample_rate"] == 16000
    records = [json.loads(line) for line in (out / "oracle" / "synth-count" / "qa--question-question.jsonl").open()]
    assert len(records) == data["n_items"] == 200
    assert {"id", "prompt", "output", "target", "correct"} <= set(records[0])
    assert "how many" in records[0]["prompt"]
    # item-level records are enough to re-score without the model
    assert sum(r["correct"] for r in records) / len(records) == data["metrics"]["accuracy"]


def test_limit_marks_the_result_partial(registry, cache_dir, tmp_path):
    summary = run(RunConfig(model="oracle", tasks="synth-events", methods=("text_matching",), limit=20,
                            output_dir=tmp_path, cache_dir=cache_dir), registry)
    result = summary.results[0]
    assert result.partial and result.n_items == 20 and result.dataset_items == 250


def test_every_progress_bar_ends_exactly_full(registry, cache_dir, tmp_path):
    """Text encodings through the model's own encoder used to advance the last bar past its total."""
    bars: dict[str, list[int]] = {}

    def progress(description, total):
        bars[description] = [total, 0]

        def advance(n):
            bars[description][1] += n

        return advance

    run(RunConfig(model="oracle", tasks="synth-retrieval", methods=("retrieval",), text_encoder="model",
                  output_dir=tmp_path, cache_dir=cache_dir), registry, progress)
    assert bars and all(done == total for total, done in bars.values()), bars


def test_broken_audio_fails_only_its_item_and_counts_as_wrong(registry, cache_dir, tmp_path):
    data = _copy_events(cache_dir, tmp_path / "data")
    audio = sorted((data / "events" / "test" / "audio").glob("*.wav"))
    audio[0].write_bytes(b"RIFF not really a wav file")  # corrupt
    audio[1].write_bytes(b"")  # empty
    sf.write(audio[2], np.zeros((0,), np.float32), 16000)  # a valid header with no samples
    audio[3].unlink()  # unreadable
    config = RunConfig(model="oracle", tasks="synth-events", methods=("text_matching", "log_likelihood"),
                       data_dir=data, output_dir=tmp_path / "out", cache_dir=tmp_path / "cache")
    for result in run(config, registry).results:
        assert result.n_failed == 4 and result.n_items == 250
        assert result.metrics["accuracy"] == pytest.approx(246 / 250)
    records = [json.loads(l) for l in (tmp_path / "out/oracle/synth-events/log_likelihood--this-is-a-sound-of.jsonl").open()]
    failed = {r["id"]: r["error"] for r in records if r["error"]}
    assert len(failed) == 4 and all(not r["correct"] for r in records if r["error"])
    assert any("empty" in e for e in failed.values()) and any("cannot" in e for e in failed.values())


def _metrics(summary):
    return {(r.task, r.method): r.metrics for r in summary.results}


def test_batch_size_does_not_change_metrics(registry, cache_dir, tmp_path):
    def at(batch_size):
        return _metrics(run(RunConfig(model="chance", tasks="synth-events,synth-count", batch_size=batch_size,
                                      methods=("text_matching", "log_likelihood", "qa"), limit=60,
                                      output_dir=tmp_path / str(batch_size), cache_dir=tmp_path / f"c{batch_size}",
                                      text_encoder="model"), registry))
    assert at(1) == at(8)


def test_repeated_run_is_served_from_cache(registry, cache_dir, tmp_path):
    config = RunConfig(model="chance", tasks="synth-count", output_dir=tmp_path, cache_dir=tmp_path / "cache")
    first = run(config, registry)
    second = run(config, registry)
    assert first.stats.model_calls > 0 and second.stats.model_calls == 0
    assert second.stats.cache_hits == 200
    assert _metrics(first) == _metrics(second)


def _cli(*args, env=None):
    return [sys.executable, "-m", "alm_bench.cli", *args]


def _stable(path: Path) -> dict:
    data = json.loads(path.read_text())
    data["provenance"].pop("finished_at")
    data["provenance"].pop("command")  # the runs differ in their output and cache folders
    return data


@pytest.mark.slow
def test_run_killed_mid_task_resumes_to_identical_results(cache_dir, tmp_path):
    args = ["run", "--model", "chance", "--task", "synth-events", "--method", "log_likelihood", "--limit", "100",
            "--model-args", "latency=0.02", "--batch-size", "4", "--cache-dir", str(tmp_path / "cache")]
    env = {**os.environ, "ALM_BENCH_CACHE": str(cache_dir)}
    process = subprocess.Popen(_cli(*args, "--output-dir", str(tmp_path / "killed")), env=env,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    db = tmp_path / "cache" / "outputs" / "outputs.sqlite"
    deadline = time.time() + 120
    while time.time() < deadline:  # wait until some, not all, outputs are cached
        if db.exists():
            try:
                if sqlite3.connect(db).execute("SELECT COUNT(*) FROM outputs").fetchone()[0] >= 20:
                    break
            except sqlite3.OperationalError:
                pass
        time.sleep(0.05)
    process.send_signal(signal.SIGKILL)
    process.wait()
    cached = sqlite3.connect(db).execute("SELECT COUNT(*) FROM outputs").fetchone()[0]
    assert 0 < cached < 100
    assert not (tmp_path / "killed" / "chance").exists()  # nothing half-written
    resumed = subprocess.run(_cli(*args, "--output-dir", str(tmp_path / "killed")), env=env, capture_output=True)
    assert resumed.returncode == 0, resumed.stderr
    clean = subprocess.run(_cli(*args[:-1], str(tmp_path / "fresh-cache"), "--output-dir", str(tmp_path / "clean")),
                           env=env, capture_output=True)
    assert clean.returncode == 0, clean.stderr
    name = "chance/synth-events/log_likelihood--this-is-a-sound-of"
    assert _stable(tmp_path / "killed" / f"{name}.json") == _stable(tmp_path / "clean" / f"{name}.json")
    assert (tmp_path / "killed" / f"{name}.jsonl").read_text() == (tmp_path / "clean" / f"{name}.jsonl").read_text()


@pytest.mark.slow
def test_two_runs_sharing_a_cache_do_not_corrupt_it(cache_dir, tmp_path):
    env = {**os.environ, "ALM_BENCH_CACHE": str(cache_dir)}
    args = ["run", "--model", "chance", "--task", "synth-events", "--method", "log_likelihood,linear_probe",
            "--limit", "100", "--batch-size", "2", "--cache-dir", str(tmp_path / "shared")]
    procs = [subprocess.Popen(_cli(*args, "--output-dir", str(tmp_path / f"out{i}")), env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE) for i in range(2)]
    for p in procs:
        _, err = p.communicate(timeout=300)
        assert p.returncode == 0, err
    db = sqlite3.connect(tmp_path / "shared" / "outputs" / "outputs.sqlite")
    assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    outputs = db.execute("SELECT COUNT(*) FROM outputs WHERE key NOT LIKE 'scoring:%'").fetchone()[0]
    assert outputs == 200  # 100 scores + 100 embeddings, each written once
    assert db.execute("SELECT COUNT(*) FROM outputs WHERE key LIKE 'scoring:%'").fetchone()[0] == 1  # the probe
    name = "chance/synth-events/log_likelihood--this-is-a-sound-of.json"
    assert _stable(tmp_path / "out0" / name)["metrics"] == _stable(tmp_path / "out1" / name)["metrics"]


def test_repeated_run_recomputes_no_scoring(registry, cache_dir, tmp_path, monkeypatch):
    """Probes and caption metrics are pure functions of cached outputs, so they are cached too."""
    from alm_bench import metrics
    from alm_bench.evaluators import classification

    config = RunConfig(model="chance", tasks="synth-events,synth-caption", methods=("linear_probe", "captioning"),
                       limit=60, output_dir=tmp_path / "out", cache_dir=tmp_path / "cache")
    first = _metrics(run(config, registry))

    def fail(*args, **kwargs):
        raise AssertionError("recomputed")

    monkeypatch.setattr(classification, "run_probe", fail)
    monkeypatch.setattr(metrics, "caption_metrics", fail)
    second = run(config, registry)
    assert second.stats.model_calls == 0 and _metrics(second) == first
