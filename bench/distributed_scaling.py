"""Scaling of a distributed run: the same run with 1 and 2 processes on this machine.

Each configuration runs ``alm-bench run`` from a cold output cache (``--no-cache``).  Two presets:

- ``whisper`` (default): the real Whisper tiny.en (``../shared/assets``) scoring the ten digit words
  on 120 real FSDD recordings, a CPU model of realistic cost (its encoder runs a 30 s window per
  clip, about 0.3 s of CPU), so the model's calls dominate the run;
- ``pengi-tiny``: the shipped pengi-tiny on two synthetic tasks (beam-search captioning, candidate
  scoring), a model so fast that start-up and rank 0's scoring dominate.

Every process keeps the runner's default CPU threads (the CPUs it may use less
the audio decode workers), as a user's command would; the threads each process used are read back
from the results' provenance.  Wall time is measured around the
whole command (start-up, loading the model in every rank, the run, writing results), and the
results files are checked to be identical.

    python bench/distributed_scaling.py            # prints a markdown table for BENCHMARKS.md
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

SHARED = Path(__file__).resolve().parents[2] / "shared"
PRESETS = {
    "whisper": ["--model", "whisper", "--model-args", f"checkpoint={SHARED / 'assets' / 'whisper-tiny.en'}",
                "--task", "fsdd-digits", "--data-dir", str(SHARED / "data" / "fsdd"), "--method", "log_likelihood",
                "--limit", "120", "--no-cache"],
    "pengi-tiny": ["--model", "pengi-tiny", "--task", "synth-caption,synth-events", "--method",
                   "captioning,log_likelihood", "--no-cache"],
}


def _command(processes: int, args: list[str]) -> list[str]:
    if processes == 1:
        return [sys.executable, "-m", "alm_bench", "run", *args]
    return [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", str(processes),
            "-m", "alm_bench", "run", *args]


def _timed(processes: int, args: list[str], output: Path) -> float:
    start = time.perf_counter()
    subprocess.run(_command(processes, args) + ["--output-dir", str(output)], check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - start


def _results(output: Path) -> list[dict]:
    return [json.loads(p.read_text()) for p in sorted(output.rglob("*.json"))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--processes", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--preset", choices=sorted(PRESETS), default="whisper")
    args = parser.parse_args()
    run_args = PRESETS[args.preset]
    cpus = len(os.sched_getaffinity(0))
    # data and file hashes ready before the timed runs (generated synthetic data, hashed recordings)
    task_args = run_args[run_args.index("--task"):]
    subprocess.run([sys.executable, "-m", "alm_bench", "run", "--model", "chance", *task_args,
                    "--output-dir", tempfile.mkdtemp()], check=True, stdout=subprocess.DEVNULL)
    load_before = os.getloadavg()[0]
    rows, reference = [], None
    for processes in args.processes:
        times = []
        for _ in range(args.repeats):
            output = Path(tempfile.mkdtemp())
            times.append(_timed(processes, run_args, output))
            results = _results(output)
            metrics = [r["metrics"] for r in results]
            reference = reference or metrics
            assert metrics == reference, "results differ between process counts"
            assert {r["provenance"]["world_size"] for r in results} == {processes}
        threads = results[0]["provenance"]["threads"]
        rows.append((processes, threads, min(times), times))
    base = rows[0][2]
    print(f"Command: `python bench/distributed_scaling.py --preset {args.preset} --repeats {args.repeats}`  ")
    print(f"Machine: {cpus} CPUs, {platform.platform()}; load average {load_before:.1f} before and "
          f"{os.getloadavg()[0]:.1f} after  ")
    shown = " ".join(a.replace(str(SHARED), "../shared") for a in run_args)
    print(f"Run: `alm-bench run {shown}`, best of {args.repeats}, wall time of the whole command\n")
    print("| processes | torch threads each | wall time | speed-up | all runs | results |")
    print("|---:|---:|---:|---:|---|---|")
    for processes, threads, seconds, times in rows:
        runs = ", ".join(f"{t:.1f}" for t in times)
        print(f"| {processes} | {threads} | {seconds:.1f} s | {base / seconds:.2f}x | {runs} s | identical metrics |")


if __name__ == "__main__":
    main()
