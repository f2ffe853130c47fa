"""One run over many processes and machines (``torchrun``, ``accelerate launch``, ``srun``).

Rank 0 runs the tasks exactly as a single process does: it loads the data, plans the calls,
scores and writes the results.  Its executor is a :class:`DistributedExecutor`: each list of
planned calls is split by content key, each rank is sent only its own share (audio included), runs
it through its own :class:`~alm_bench.executor.LocalExecutor` (its device, its cache), and the
outcomes are gathered on rank 0 in the calls' order.  The share of a call depends only on its
content and the number of ranks, and cache keys do not depend on either, so a run with another
number of processes reuses the same cache.  Other ranks load no task: they serve calls until
rank 0 says stop.  Progress of every rank is summed in the process group's store and shown once.
"""

from __future__ import annotations

import os
import signal
import threading
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, Callable, Mapping

from .calls import Call, content_key
from .errors import DistributedError, ModelOutputError, UsageError
from .executor import Advance, LocalExecutor, Outcome, Stats

#: how long a rank waits for the others in one collective (rank 0 may score a large task meanwhile)
TIMEOUT = timedelta(hours=2)
_STOP = "stop"


@dataclass(frozen=True)
class World:
    """This process's place in the run, from the launcher's environment."""

    rank: int = 0
    size: int = 1
    local_rank: int = 0

    @classmethod
    def from_env(cls, env: Mapping[str, str] = os.environ) -> "World":
        # torchrun and accelerate set RANK/WORLD_SIZE/LOCAL_RANK; srun sets the SLURM_* equivalents
        if "WORLD_SIZE" in env:
            return cls(int(env.get("RANK", 0)), int(env["WORLD_SIZE"]), int(env.get("LOCAL_RANK", 0)))
        if int(env.get("SLURM_NTASKS", 1)) > 1 and "SLURM_PROCID" in env and "MASTER_ADDR" in env:
            return cls(int(env["SLURM_PROCID"]), int(env["SLURM_NTASKS"]), int(env.get("SLURM_LOCALID", 0)))
        return cls()

    @property
    def distributed(self) -> bool:
        return self.size > 1

    def device(self, requested: str) -> str:
        """``cuda`` means this rank's own GPU, ``cuda:LOCAL_RANK``."""
        return f"cuda:{self.local_rank}" if self.distributed and requested == "cuda" else requested

    def owner(self, call: Call) -> int:
        """The rank that runs this call: fixed by its content, so every rank count shares one cache."""
        return int(content_key(call.kind, call.request)[:15], 16) % self.size


def start(world: World, device: str) -> None:
    """Join the process group (NCCL between GPUs, gloo on CPUs); SIGTERM from the launcher, which
    it sends when another rank failed, ends this rank with one clear line."""
    import torch
    import torch.distributed as dist

    for name in ("MASTER_ADDR", "MASTER_PORT"):
        if name not in os.environ:
            raise UsageError(f"{name} is not set: launch with torchrun or accelerate launch, or set MASTER_ADDR "
                             "and MASTER_PORT for srun")
    backend = "gloo"
    if device.startswith("cuda"):
        torch.cuda.set_device(torch.device(device))
        backend = "nccl"
    dist.init_process_group(backend, rank=world.rank, world_size=world.size, timeout=TIMEOUT)
    signal.signal(signal.SIGTERM, _terminated)


def stop() -> None:
    import torch.distributed as dist

    if dist.is_initialized():
        dist.destroy_process_group()


def _terminated(signum, frame) -> None:
    raise DistributedError("this process was stopped by its launcher (SIGTERM), most likely because another rank "
                           "failed; completed results are saved and re-running the same command resumes from "
                           "the cache")


def _collective(action: Callable[[], Any], what: str) -> Any:
    try:
        return action()
    except RuntimeError as exc:  # DistBackendError and gloo's "Connection closed by peer" among them
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise DistributedError(f"a rank stopped during the run ({what}: {first}); completed results are saved "
                               "and re-running the same command resumes from the cache") from exc


def _scatter(messages: list | None = None) -> Any:
    """Rank 0 sends ``messages[r]`` to rank r; every rank returns its own."""
    import torch.distributed as dist

    box = [None]
    _collective(lambda: dist.scatter_object_list(box, messages, src=0), "receiving calls")
    return box[0]


def _gather(payload: Any, world: World) -> list | None:
    import torch.distributed as dist

    gathered = [None] * world.size if world.rank == 0 else None
    _collective(lambda: dist.gather_object(payload, gathered, dst=0), "gathering outputs")
    return gathered


def _store():
    from torch.distributed import distributed_c10d

    return distributed_c10d._get_default_store()


def _run_share(local: LocalExecutor, round_: int, calls: list[Call]) -> list[Outcome] | str:
    """Run this rank's calls; a protocol violation travels to rank 0 as its message."""
    store, key = _store(), f"alm-bench/done/{round_}"
    try:
        return local.run(calls, lambda n: store.add(key, n))
    except ModelOutputError as exc:
        return str(exc)


@dataclass
class DistributedExecutor:
    """Rank 0's executor: the :class:`~alm_bench.executor.Executor` interface over every rank."""

    local: LocalExecutor
    world: World
    _round: int = 0
    stats: Stats = field(init=False)

    def __post_init__(self) -> None:
        self.stats = self.local.stats

    def run(self, calls: list[Call], advance: Advance = lambda n: None) -> list[Outcome]:
        self._round += 1
        owners = [[] for _ in range(self.world.size)]
        for i, call in enumerate(calls):
            owners[self.world.owner(call)].append(i)
        mine = _scatter([(self._round, [calls[i] for i in indices]) for indices in owners])
        with _Progress(f"alm-bench/done/{self._round}", advance):
            shares = _gather(_run_share(self.local, *mine), self.world)
        outcomes: list[Outcome | None] = [None] * len(calls)
        for indices, values in zip(owners, shares):
            if isinstance(values, str):
                raise ModelOutputError(values)
            for i, outcome in zip(indices, values):
                outcomes[i] = outcome
        return outcomes

    def recall(self, keys: list[str]) -> dict[str, Any]:
        return self.local.recall(keys)

    def remember(self, values: dict[str, Any]) -> None:
        self.local.remember(values)

    def close(self) -> None:
        """Tell the other ranks the run is over (also after an error on rank 0)."""
        _scatter([_STOP] * self.world.size)


def serve(local: LocalExecutor, world: World) -> None:
    """The loop of ranks other than 0: run each share rank 0 sends until told to stop."""
    while True:
        message = _scatter()
        if message == _STOP:
            return
        _gather(_run_share(local, *message), world)


class _Progress:
    """Shows the calls finished on every rank: polls the store's counter while rank 0 works or waits."""

    def __init__(self, key: str, advance: Advance, interval: float = 0.5) -> None:
        self.key, self.advance, self.interval = key, advance, interval
        self.shown = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._poll, name="alm-bench-progress", daemon=True)

    def _update(self) -> None:
        total = _store().add(self.key, 0)
        if total > self.shown:
            self.advance(total - self.shown)
            self.shown = total

    def _poll(self) -> None:
        while not self._stop.wait(self.interval):
            self._update()

    def __enter__(self) -> "_Progress":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()
        if exc[0] is None:
            self._update()
