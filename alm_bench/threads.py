"""CPU threads for the model: as many as the process may actually use (its CPU affinity and its cgroup's
CPU quota, not the machine's core count), less the audio decode workers.

Left alone, torch and the BLAS/OpenMP pools start one thread per core of the machine; on a busy machine,
or a cluster node whose CPU share is smaller than the node, those threads wait on each other and a run
slows down many times over (BENCHMARKS.md).
"""

from __future__ import annotations

import math
import os
import sys
from pathlib import Path

CGROUP_ROOT = Path("/sys/fs/cgroup")


def usable_cpus(cgroup_root: Path = CGROUP_ROOT, proc_cgroup: Path = Path("/proc/self/cgroup")) -> int:
    """CPUs this process may use: its affinity, capped by the CPU quota of its cgroup and every parent."""
    try:
        cpus = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # not Linux
        cpus = os.cpu_count() or 1
    quota = cgroup_quota(cgroup_root, proc_cgroup)
    return max(1, min(cpus, math.ceil(quota))) if quota else cpus


def cgroup_quota(cgroup_root: Path = CGROUP_ROOT, proc_cgroup: Path = Path("/proc/self/cgroup")) -> float | None:
    """The tightest CPU quota (in CPUs) over the process's cgroup and its parents; None if unlimited."""
    try:
        lines = proc_cgroup.read_text().splitlines()
    except OSError:
        return None
    limits = []
    for line in lines:
        _, controllers, path = line.split(":", 2)
        if controllers == "":  # cgroup v2: cpu.max holds "QUOTA PERIOD" or "max PERIOD"
            limits += _walk(cgroup_root, path, lambda d: _v2(d / "cpu.max"))
        elif "cpu" in controllers.split(","):  # cgroup v1: cpu.cfs_quota_us is -1 when unlimited
            base = next((cgroup_root / n for n in ("cpu,cpuacct", "cpu") if (cgroup_root / n).is_dir()), None)
            if base is not None:
                limits += _walk(base, path, _v1)
    return min(limits) if limits else None


def _walk(base: Path, path: str, read) -> list[float]:
    parts = [p for p in path.split("/") if p]
    found = []
    for depth in range(len(parts) + 1):
        value = read(base.joinpath(*parts[:depth]))
        if value:
            found.append(value)
    return found


def _v2(path: Path) -> float | None:
    try:
        quota, period = path.read_text().split()[:2]
    except (OSError, ValueError):
        return None
    return None if quota == "max" else int(quota) / int(period)


def _v1(directory: Path) -> float | None:
    try:
        quota = int((directory / "cpu.cfs_quota_us").read_text())
        period = int((directory / "cpu.cfs_period_us").read_text())
    except (OSError, ValueError):
        return None
    return None if quota <= 0 or period <= 0 else quota / period


def default_threads(workers: int) -> int:
    """Threads for the model's computation: the usable CPUs less the decode workers, at least one."""
    return max(1, usable_cpus() - workers)


def apply(threads: int) -> None:
    """Size torch's intra-op pool and every BLAS/OpenMP pool to ``threads``; libraries loaded later
    read the environment variables."""
    for name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        os.environ[name] = str(threads)
    if "torch" in sys.modules:
        sys.modules["torch"].set_num_threads(threads)
    from threadpoolctl import threadpool_limits

    threadpool_limits(limits=threads)
