"""Start-up cost of the commands a new user types first: CPU seconds (user + system, the process and
its children) of `alm-bench --help`, `list models` and `list tasks`, the median of a few runs.

    python bench/startup.py [--runs 5]
"""

from __future__ import annotations

import argparse
import platform
import resource
import shutil
import statistics
import subprocess
import sys

COMMANDS = (["--help"], ["list", "models"], ["list", "tasks"])


def cpu_seconds(args: list[str]) -> float:
    """CPU time of one run of the installed `alm-bench` script."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    subprocess.run([shutil.which("alm-bench") or "alm-bench", *args], check=True, capture_output=True)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    runs = parser.parse_args().runs
    print(f"machine: {platform.processor() or platform.machine()}, Python {sys.version.split()[0]}, {runs} runs each")
    for args in COMMANDS:
        times = [cpu_seconds(args) for _ in range(runs)]
        print(f"alm-bench {' '.join(args):<12} median {statistics.median(times):.2f} s CPU "
              f"(min {min(times):.2f}, max {max(times):.2f})")


if __name__ == "__main__":
    main()
