import os
import sys
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass
from pathlib import Path

import pytest

SHARED = Path(__file__).resolve().parents[2] / "shared"


@pytest.fixture(scope="session")
def cache_dir(tmp_path_factory) -> Path:
    """One cache for the session: the synthetic data is generated once and shared by every test."""
    path = tmp_path_factory.mktemp("alm-bench-cache")
    os.environ["ALM_BENCH_CACHE"] = str(path)
    return path


@pytest.fixture(scope="module")
def one_torch_thread():
    """Tiny models are thousands of small operations: on a shared CPU one torch thread is fastest."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="session")
def registry():
    from alm_bench.plugins import build_registry

    return build_registry()


@dataclass(frozen=True)
class SuiteRun:
    """A model's run over the whole synthetic suite: results by (task, method), and where they were written."""

    results: dict
    output_dir: Path


@contextmanager
def no_system_java():
    """PATH holding only the virtual environment's scripts: no system java, as on a bare machine."""
    saved = os.environ["PATH"]
    os.environ["PATH"] = os.path.dirname(sys.executable)
    try:
        yield
    finally:
        os.environ["PATH"] = saved


@pytest.fixture(scope="session")
def synth_suite(registry, cache_dir, tmp_path_factory):
    """``synth_suite(model, text_encoder=None)``: the model run once per session on every synthetic task,
    shared by every test that needs it (oracle, chance, pengi-tiny). pengi-tiny's is the README's main
    command and runs with no system java on PATH, as a new user's machine may have none."""
    from alm_bench.runner import RunConfig, run

    done: dict[tuple, SuiteRun] = {}

    def get(model: str, text_encoder: str | None = None) -> SuiteRun:
        if (model, text_encoder) not in done:
            out = tmp_path_factory.mktemp(f"suite-{model}")
            with no_system_java() if model == "pengi-tiny" else nullcontext():
                summary = run(RunConfig(model=model, tasks="synth-*", output_dir=out, cache_dir=cache_dir,
                                        text_encoder=text_encoder), registry)
            done[(model, text_encoder)] = SuiteRun({(r.task, r.method): r for r in summary.results}, out)
        return done[(model, text_encoder)]

    return get
