"""Wall time of the README's main command, as a new user runs it: a fresh cache (the synthetic suite
is generated first), then a second run of the same command (everything cached).

    python bench/readme_times.py [--command "alm-bench run --model pengi-tiny --task all"]
"""

from __future__ import annotations

import argparse
import os
import platform
import shlex
import subprocess
import tempfile
import time

MAIN = "alm-bench run --model pengi-tiny --task all"


def timed(command: str, env: dict, cwd: str) -> float:
    start = time.perf_counter()
    subprocess.run(shlex.split(command), env=env, cwd=cwd, check=True, capture_output=True)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--command", default=MAIN)
    command = parser.parse_args().command
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    print(f"machine: {platform.machine()} {platform.processor()}, {cpus} CPUs usable, Python {platform.python_version()}")
    with tempfile.TemporaryDirectory() as scratch:
        env = {**os.environ, "ALM_BENCH_CACHE": os.path.join(scratch, "cache")}
        print(f"{command}: {timed(command, env, scratch):.0f} s with a fresh cache, "
              f"{timed(command, env, scratch):.0f} s again (cached)")


if __name__ == "__main__":
    main()
