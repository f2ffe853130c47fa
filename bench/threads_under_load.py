"""CPU threads on a busy machine: the runner's default thread count against one thread, idle and under load.

Runs ``alm-bench run`` (a fresh process each time, ``--no-cache``, a fresh output folder) on an otherwise
idle machine and under a competing CPU load of the same size (one busy process per CPU this process may
use), each with the default threads (the usable CPUs less the decode workers, see
``alm_bench/threads.py``), with ``--threads 1``, and with one thread per core (``--threads`` = the
machine's core count: torch's own default, what every run got before the runner set the threads).

The time reported is the run's own (the ``results in DIR/ (N s)`` line: data loading, audio and model,
not start-up or model construction); the synthetic data is built before the timed runs.  The median of
``--repeats`` runs of each setting is reported, the settings interleaved so that a change in the
machine's background load hits them alike.

    python bench/threads_under_load.py                       # measures and updates BENCHMARKS.md
    python bench/threads_under_load.py --limit 50 --repeats 1 --no-write
"""

from __future__ import annotations

import argparse
import datetime as _dt
import multiprocessing
import os
import platform
import re
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from alm_bench.threads import default_threads, usable_cpus  # noqa: E402

START, END = "<!-- threads-under-load:start -->", "<!-- threads-under-load:end -->"


def _spin(stop) -> None:
    while not stop.is_set():
        for _ in range(100_000):
            pass


def settings() -> list[tuple[str, int | None]]:
    return [("default", None), ("1 thread", 1), ("1 per core", os.cpu_count() or 1)]


def run_once(args, cache: Path, threads: int | None) -> float:
    out = tempfile.mkdtemp(prefix="alm-bench-threads-")
    command = [sys.executable, "-m", "alm_bench.cli", "run", "--model", args.model, "--task", args.task,
               "--method", args.method, "--no-cache", "--output-dir", out, "--cache-dir", str(cache)]
    command += ["--limit", str(args.limit)] if args.limit else []
    command += ["--threads", str(threads)] if threads else []
    done = subprocess.run(command, check=True, capture_output=True, text=True)
    return float(re.search(r"results in .*\(([0-9.]+) s\)", done.stdout)[1])


def measure(args, cache: Path) -> dict[tuple[str, str], list[float]]:
    times: dict[tuple[str, str], list[float]] = {}
    for load in ("idle", "loaded"):
        stop = multiprocessing.Event()
        busy = [multiprocessing.Process(target=_spin, args=(stop,)) for _ in range(usable_cpus() if load == "loaded" else 0)]
        for p in busy:
            p.start()
        try:
            for _ in range(args.repeats):
                for setting, threads in settings():
                    seconds = run_once(args, cache, threads)
                    times.setdefault((load, setting), []).append(seconds)
                    print(f"{load:6} {setting:10} {seconds:6.1f} s", flush=True)
        finally:
            stop.set()
            for p in busy:
                p.join()
    return times


def report(args, times, load_before: float, load_after: float) -> str:
    import torch

    median = {k: statistics.median(v) for k, v in times.items()}
    rows = []
    for load in ("idle", "loaded"):
        default, one, many = (median[(load, s)] for s in ("default", "1 thread", "1 per core"))
        name = "idle machine" if load == "idle" else f"under a competing load ({usable_cpus()} busy processes)"
        rows.append(f"| {name} | {default:.1f} s | {one:.1f} s | {many:.1f} s |")
    limit = f" --limit {args.limit}" if args.limit else ""
    verdict = "met" if median[("loaded", "default")] <= median[("loaded", "1 thread")] * 1.10 else "NOT met"
    if default_threads(2) == 1:
        verdict += (" (the default is one thread on this machine, so those two columns are one setting and their "
                    "difference is the background's noise)")
    return "\n".join([
        START,
        "## CPU threads under a competing load",
        "",
        "Target (issue 21): under a competing CPU load the default settings are no slower than one thread.",
        "",
        f"Command: `python bench/threads_under_load.py{' --limit ' + str(args.limit) if args.limit else ''} "
        f"--repeats {args.repeats}` (each run: `alm-bench run --model {args.model} --task {args.task} "
        f"--method {args.method}{limit} --no-cache`, a fresh process)  ",
        f"Machine: {os.cpu_count()} CPU cores, {usable_cpus()} usable by the process; default threads "
        f"{default_threads(2)} (usable CPUs less 2 decode workers); {platform.platform()}  ",
        f"Date: {_dt.date.today()}; Python {platform.python_version()}, torch {torch.__version__}; load average "
        f"{load_before:.1f} before and {load_after:.1f} after. The 'idle' machine is not idle: other processes "
        f"(other users' jobs) shared its CPUs during the measurement, so read the idle row as the background.  ",
        f"Median of {args.repeats} runs per setting, settings interleaved; the run's own time (no start-up). "
        "The last column is what every run got before the runner set the threads."
        + (" On this machine the default is one thread, so this measurement does not cover a default of more "
           "than one (a many-core machine, or a node whose cgroup share is smaller than the node)."
           if default_threads(2) == 1 else ""),
        "",
        f"| machine | default ({default_threads(2)} thread{'s' * (default_threads(2) > 1)}) | `--threads 1` | "
        f"`--threads {os.cpu_count()}` "
        f"(one per core, as before) |",
        "|---|---:|---:|---:|",
        *rows,
        "",
        f"Target: **{verdict}** (default within 10% of one thread, or faster, under load). All runs: "
        + "; ".join(f"{load} {setting} " + ", ".join(f"{t:.1f}" for t in v) + " s"
                    for (load, setting), v in times.items()) + ".",
        END,
    ])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="pengi-tiny")
    parser.add_argument("--task", default="synth-events")
    parser.add_argument("--method", default="text_matching")
    parser.add_argument("--limit", type=int, default=None)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args()
    cache = Path(tempfile.mkdtemp(prefix="alm-bench-threads-cache-"))
    subprocess.run([sys.executable, "-m", "alm_bench.cli", "run", "--model", "oracle", "--task", args.task,
                    "--no-cache", "--output-dir", str(cache / "warm"), "--cache-dir", str(cache)],
                   check=True, capture_output=True)  # builds the data and warms the file cache
    load_before = os.getloadavg()[0]
    times = measure(args, cache)
    text = report(args, times, load_before, os.getloadavg()[0])
    print(text)
    if not args.no_write:
        path = ROOT / "BENCHMARKS.md"
        old = path.read_text()
        if START in old:
            new = re.sub(re.escape(START) + ".*?" + re.escape(END), lambda m: text, old, flags=re.S)
        else:
            new = old.rstrip("\n") + "\n\n" + text + "\n"
        path.write_text(new)


if __name__ == "__main__":
    main()
