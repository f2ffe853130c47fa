"""Scaling of a distributed run: the same pengi-tiny run with 1 and 2 processes on this machine.

Each configuration runs ``alm-bench run`` from a cold output cache (``--no-cache``) on synthetic
tasks whose model calls dominate (beam-search captioning, candidate scoring), with the synthetic data
already generated.  Every process keeps the runner's default CPU threads (the CPUs it may use less
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

ARGS = ["--model", "pengi-tiny", "--task", "synth-caption,synth-events", "--method", "captioning,log_likelihood",
        "--no-cache"]


def _command(processes: int) -> list[str]:
    if processes == 1:
        return [sys.executable, "-m", "alm_bench", "run", *ARGS]
    return [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", str(processes),
            "-m", "alm_bench", "run", *ARGS]


def _timed(processes: int, output: Path) -> float:
    start = time.perf_counter()
    subprocess.run(_command(processes) + ["--output-dir", str(output)], check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - start


def _results(output: Path) -> list[dict]:
    return [json.loads(p.read_text()) for p in sorted(output.rglob("*.json"))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--processes", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()
    cpus = len(os.sched_getaffinity(0))
    # generate the synthetic data once, outside the timed runs
    subprocess.run([sys.executable, "-m", "alm_bench", "run", "--model", "chance", "--task", "synth-caption,synth-events",
                    "--output-dir", tempfile.mkdtemp()], check=True, stdout=subprocess.DEVNULL)
    load_before = os.getloadavg()[0]
    rows, reference = [], None
    for processes in args.processes:
        times = []
        for _ in range(args.repeats):
            output = Path(tempfile.mkdtemp())
            times.append(_timed(processes, output))
            results = _results(output)
            metrics = [r["metrics"] for r in results]
            reference = reference or metrics
            assert metrics == reference, "results differ between process counts"
            assert {r["provenance"]["world_size"] for r in results} == {processes}
        threads = results[0]["provenance"]["threads"]
        rows.append((processes, threads, min(times), times))
    base = rows[0][2]
    print(f"Command: `python bench/distributed_scaling.py --repeats {args.repeats}`  ")
    print(f"Machine: {cpus} CPUs, {platform.platform()}; load average {load_before:.1f} before and "
          f"{os.getloadavg()[0]:.1f} after  ")
    print(f"Run: `alm-bench run {' '.join(ARGS)}`, best of {args.repeats}, wall time of the whole command\n")
    print("| processes | torch threads each | wall time | speed-up | all runs | results |")
    print("|---:|---:|---:|---:|---|---|")
    for processes, threads, seconds, times in rows:
        runs = ", ".join(f"{t:.1f}" for t in times)
        print(f"| {processes} | {threads} | {seconds:.1f} s | {base / seconds:.2f}x | {runs} s | identical metrics |")


if __name__ == "__main__":
    main()
