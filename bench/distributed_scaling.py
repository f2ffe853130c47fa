"""Scaling of a distributed run: the same pengi-tiny run with 1 and 2 processes on this machine.

Each configuration runs ``alm-bench run`` from a cold output cache (``--no-cache``) on synthetic
tasks whose model calls dominate (beam-search captioning, candidate scoring), with the synthetic data
already generated.  The single process gets every CPU thread; under ``torchrun`` each of the N
processes gets CPUs / N threads, so both use the whole machine.  Wall time is measured around the
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


def _timed(processes: int, threads: int, output: Path) -> float:
    env = {**os.environ, "OMP_NUM_THREADS": str(threads)}
    start = time.perf_counter()
    subprocess.run(_command(processes) + ["--output-dir", str(output)], env=env, check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - start


def _metrics(output: Path) -> dict:
    return {str(p.relative_to(output)): json.loads(p.read_text())["metrics"] for p in sorted(output.rglob("*.json"))}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--processes", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()
    cpus = len(os.sched_getaffinity(0))
    # generate the synthetic data once, outside the timed runs
    subprocess.run([sys.executable, "-m", "alm_bench", "run", "--model", "chance", "--task", "synth-caption,synth-events",
                    "--output-dir", tempfile.mkdtemp()], check=True, stdout=subprocess.DEVNULL)
    rows, reference = [], None
    for processes in args.processes:
        threads = max(1, cpus // processes)
        times = []
        for _ in range(args.repeats):
            output = Path(tempfile.mkdtemp())
            times.append(_timed(processes, threads, output))
            metrics = _metrics(output)
            reference = reference or metrics
            assert metrics == reference, "results differ between process counts"
        rows.append((processes, threads, min(times)))
    base = rows[0][2]
    print(f"`python bench/distributed_scaling.py` on {platform.processor() or platform.machine()}, {cpus} CPUs; "
          f"best of {args.repeats}; `{' '.join(ARGS)}`\n")
    print("| processes | threads each | wall time | speed-up | results |")
    print("|---:|---:|---:|---:|---|")
    for processes, threads, seconds in rows:
        print(f"| {processes} | {threads} | {seconds:.1f} s | {base / seconds:.2f}x | identical |")


if __name__ == "__main__":
    main()
