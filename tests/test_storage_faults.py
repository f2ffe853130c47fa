"""Storage faults made for real (a small filesystem that fills up, read-only mounts, a file-size limit):
each ends the run with one line and exit code 74, keeps what was saved whole, and leaves nothing
half-written; a read-only cache is used read-only.  Also: umask, stale build folders, CPU threads."""

import json
import os
import resource
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest

from alm_bench import cli, synth, threads
from alm_bench.cache import decode
from alm_bench.errors import StorageError
from alm_bench.runner import RunConfig, run

ROOT = os.geteuid() == 0


def _mount(*args: str) -> None:
    subprocess.run(["mount", *args], check=True, capture_output=True)


def _unmount(path: Path) -> None:
    subprocess.run(["umount", "-l", str(path)], capture_output=True)


@contextmanager
def small_disk(path: Path, kilobytes: int):
    """A tmpfs of ``kilobytes`` at ``path``: a disk that really fills up (root only)."""
    path.mkdir(parents=True, exist_ok=True)
    try:
        _mount("-t", "tmpfs", "-o", f"size={kilobytes}k", "tmpfs", str(path))
    except (OSError, subprocess.CalledProcessError) as exc:
        pytest.skip(f"a small filesystem needs root and mount (tmpfs): {getattr(exc, 'stderr', exc)!r}")
    try:
        yield path
    finally:
        _unmount(path)


@contextmanager
def read_only(source: Path, view: Path):
    """``view`` shows ``source`` read-only: a read-only bind mount as root (root ignores permissions),
    the write bits removed otherwise."""
    view.mkdir(parents=True, exist_ok=True)
    if not ROOT:
        view.rmdir()
        view.symlink_to(source)
        modes = {p: p.stat().st_mode for p in [source, *source.rglob("*")] if not p.is_symlink()}
        for p, mode in modes.items():
            p.chmod(mode & ~0o222)
        try:
            yield view
        finally:
            for p, mode in modes.items():
                p.chmod(mode)
        return
    try:
        _mount("--bind", str(source), str(view))
        _mount("-o", "remount,bind,ro", str(view))
    except (OSError, subprocess.CalledProcessError) as exc:
        _unmount(view)
        pytest.skip(f"a read-only folder as root needs a read-only bind mount: {getattr(exc, 'stderr', exc)!r}")
    try:
        yield view
    finally:
        _unmount(view)


def main(capsys, *args: str) -> tuple[int, str, str]:
    """The real command line, in this process: its exit code, stdout and stderr."""
    argv = sys.argv
    sys.argv = ["alm-bench", *args]
    try:
        cli.main()
        code = 0
    except SystemExit as exc:
        code = exc.code or 0
    finally:
        sys.argv = argv
    out, err = capsys.readouterr()
    return code, out, err


def error_line(err: str) -> str:
    lines = [line for line in err.splitlines() if line.strip() and "━" not in line and not line.startswith("note:")]
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    assert "Traceback" not in err
    return lines[0]


def assert_whole(output: Path) -> list[str]:
    """Every results file parses, each .json has its .jsonl with every item; no temporary file is left."""
    assert not [p for p in output.rglob("*") if p.name.endswith(".tmp")]
    saved = []
    for path in sorted(output.rglob("*.json")):
        result = json.loads(path.read_text())
        records = path.with_suffix(".jsonl").read_text().splitlines()
        assert len(records) == result["n_items"] and all(json.loads(r) for r in records)
        saved.append(result["task"])
    assert len(list(output.rglob("*.jsonl"))) == len(saved)
    return saved


@pytest.fixture()
def data_cache(cache_dir, tmp_path) -> Path:
    """A fresh, empty output cache whose data folder is the session's (the synthetic data is built once)."""
    path = tmp_path / "cache"
    path.mkdir()
    (cache_dir / "data").mkdir(exist_ok=True)
    (path / "data").symlink_to(cache_dir / "data")
    return path


TASKS = "synth-count,synth-events"  # their records: 30 kB, then 39 kB


def test_full_output_disk_keeps_earlier_results_and_says_so(capsys, data_cache, tmp_path):
    with small_disk(tmp_path / "out", 64) as out:
        code, stdout, err = main(capsys, "run", "--model", "oracle", "--task", TASKS, "--method", "text_matching,qa",
                                 "--output-dir", str(out), "--cache-dir", str(data_cache))
        assert code == 74, err
        line = error_line(err)
        assert str(out) in line and "no space left on device" in line and "--output-dir" in line
        assert "saved before the error: 1 results" in stdout and "synth-count" in stdout
        assert assert_whole(out) == ["synth-count"]


def test_file_size_limit_ends_the_run_cleanly(registry, capsys, data_cache, tmp_path):
    """The same fault for any user: a file-size limit (Python ignores SIGXFSZ, so the write fails with EFBIG)."""
    for task in TASKS.split(","):  # the data is built before the limit
        spec = registry.tasks[task]
        registry.loaders[spec.dataset.loader](spec, None, data_cache)
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    limit = 34 * 1024  # synth-count's records (30 kB) fit, synth-events' (39 kB) do not
    resource.setrlimit(resource.RLIMIT_FSIZE, (limit, hard))
    try:
        code, _, err = main(capsys, "run", "--model", "oracle", "--task", TASKS, "--method", "text_matching,qa",
                            "--no-cache", "--output-dir", str(tmp_path / "out"), "--cache-dir", str(data_cache))
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
    assert code == 74, err
    assert "file too large" in error_line(err)
    assert assert_whole(tmp_path / "out") == ["synth-count"]


def test_full_cache_disk_rolls_back_the_batch_and_says_so(capsys, cache_dir, tmp_path):
    with small_disk(tmp_path / "cache", 96) as cache:
        (cache_dir / "data").mkdir(exist_ok=True)
        (cache / "data").symlink_to(cache_dir / "data")
        code, _, err = main(capsys, "run", "--model", "chance", "--task", "synth-events", "--method", "linear_probe",
                            "--output-dir", str(tmp_path / "out"), "--cache-dir", str(cache))
        assert code == 74, err
        line = error_line(err)
        assert "outputs.sqlite" in line and "full" in line and "--no-cache" in line
        db = sqlite3.connect(cache / "outputs" / "outputs.sqlite")
        assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        rows = db.execute("SELECT value FROM outputs").fetchall()
        assert rows and all(np.isfinite(decode(blob)).all() for (blob,) in rows)  # every stored row whole
        assert len(rows) % 8 == 0  # whole batches (--batch-size 8): the failing one was rolled back
        db.close()


def test_read_only_output_fails_before_any_model_is_built(capsys, data_cache, tmp_path):
    (tmp_path / "results").mkdir()
    with read_only(tmp_path / "results", tmp_path / "ro") as out:
        # the model argument is wrong (exit 2 when the model is built): the storage check comes first
        code, stdout, err = main(capsys, "run", "--model", "oracle", "--task", "synth-count", "--model-args",
                                 "colour=red", "--output-dir", str(out), "--cache-dir", str(data_cache))
    assert code == 74, err
    line = error_line(err)
    assert str(out) in line and ("read-only file system" in line or "permission denied" in line)
    assert "--output-dir" in line and stdout == ""


def test_read_only_complete_cache_serves_every_answer(registry, capsys, data_cache, tmp_path):
    config = RunConfig(model="chance", tasks="synth-count", output_dir=tmp_path / "first", cache_dir=data_cache)
    first = run(config, registry)
    size = (data_cache / "outputs" / "outputs.sqlite").stat().st_size
    with read_only(data_cache, tmp_path / "lab-cache") as shared:
        notes = []
        again = run(RunConfig(model="chance", tasks="synth-count", output_dir=tmp_path / "again", cache_dir=shared),
                    registry, notify=notes.append)
        assert first.stats.model_calls > 0 and again.stats.model_calls == 0 and again.stats.cache_hits == 200
        assert [r.metrics for r in again.results] == [r.metrics for r in first.results]
        assert len(notes) == 1 and "read-only" in notes[0] and "not stored" in notes[0]
        # a miss (another seed of the chance model) is computed and not stored
        other = run(RunConfig(model="chance", tasks="synth-count", model_args={"seed": 1}, output_dir=tmp_path / "o",
                              cache_dir=shared), registry)
        assert other.stats.model_calls > 0
        code, _, err = main(capsys, "run", "--model", "chance", "--task", "synth-count", "--output-dir",
                            str(tmp_path / "cli"), "--cache-dir", str(shared))
        assert code == 0 and "note: cache" in err and "read-only" in err
    assert (data_cache / "outputs" / "outputs.sqlite").stat().st_size == size


def test_results_files_and_folders_honour_the_umask(registry, data_cache, tmp_path):
    previous = os.umask(0o002)  # a group-shared results folder
    try:
        run(RunConfig(model="oracle", tasks="synth-count", output_dir=tmp_path / "out", cache_dir=data_cache), registry)
    finally:
        os.umask(previous)
    files = [p for p in (tmp_path / "out").rglob("*")]
    assert files and {p.stat().st_mode & 0o777 for p in files if p.is_file()} == {0o664}
    assert {p.stat().st_mode & 0o777 for p in files if p.is_dir()} == {0o775}


def test_a_killed_data_build_is_cleaned_up_at_the_next_start(cache_dir, tmp_path):
    root = tmp_path / "data"
    build = subprocess.Popen([sys.executable, "-c", "import sys; from alm_bench import synth; "
                              "synth.build_dataset('events', 'test', sys.argv[1])", str(root)])
    deadline = time.time() + 60
    while time.time() < deadline and not list(root.glob("events/.test.tmp-*/audio/*.wav")):
        time.sleep(0.05)
    build.send_signal(signal.SIGKILL)
    build.wait()
    leftover = list((root / "events").glob(".test.tmp-*"))
    assert len(leftover) == 1  # fresh: the age rule alone would keep it for an hour
    elsewhere = root / "events" / f".test.tmp-1@not-{socket.gethostname()}-0123abcd"
    elsewhere.mkdir()  # a young build on another host sharing the folder: left alone
    (root / "events" / "test").symlink_to(next(cache_dir.glob("data/synth-v*/events/test")))  # complete now
    synth.build_dataset("events", "test", root)
    assert not leftover[0].exists() and elsewhere.exists()


def test_threads_follow_affinity_and_cgroup_quota(tmp_path):
    one_cpu = subprocess.run([sys.executable, "-c", "from alm_bench.threads import usable_cpus; print(usable_cpus())"],
                             preexec_fn=lambda: os.sched_setaffinity(0, {min(os.sched_getaffinity(0))}),
                             capture_output=True, text=True, check=True)
    assert one_cpu.stdout.strip() == "1"
    v2 = tmp_path / "v2"
    (v2 / "job" / "step").mkdir(parents=True)
    (v2 / "job" / "cpu.max").write_text("150000 100000\n")  # the parent allows 1.5 CPUs
    (v2 / "job" / "step" / "cpu.max").write_text("max 100000\n")
    (tmp_path / "cgroup-v2").write_text("0::/job/step\n")
    assert threads.cgroup_quota(v2, tmp_path / "cgroup-v2") == 1.5
    assert threads.usable_cpus(v2, tmp_path / "cgroup-v2") == min(2, len(os.sched_getaffinity(0)))
    v1 = tmp_path / "v1" / "cpu,cpuacct" / "slurm"
    v1.mkdir(parents=True)
    (v1 / "cpu.cfs_quota_us").write_text("300000\n")
    (v1 / "cpu.cfs_period_us").write_text("100000\n")
    (tmp_path / "cgroup-v1").write_text("4:memory:/slurm\n3:cpu,cpuacct:/slurm\n")
    assert threads.cgroup_quota(tmp_path / "v1", tmp_path / "cgroup-v1") == 3.0
    (tmp_path / "none").write_text("0::/\n")
    assert threads.cgroup_quota(tmp_path, tmp_path / "none") is None


def test_runner_sets_and_records_the_threads(registry, data_cache, tmp_path):
    import torch

    before = torch.get_num_threads()
    try:
        default = run(RunConfig(model="oracle", tasks="synth-count", output_dir=tmp_path / "a", cache_dir=data_cache),
                      registry)
        expected = max(1, threads.usable_cpus() - 2)
        assert default.results[0].provenance["threads"] == expected and torch.get_num_threads() == expected
        chosen = run(RunConfig(model="oracle", tasks="synth-count", output_dir=tmp_path / "b", cache_dir=data_cache,
                               threads=3), registry)
        assert chosen.results[0].provenance["threads"] == 3 and torch.get_num_threads() == 3
    finally:
        torch.set_num_threads(before)

