import os
from pathlib import Path

import pytest

SHARED = Path(__file__).resolve().parents[2] / "shared"


@pytest.fixture(scope="session")
def cache_dir(tmp_path_factory) -> Path:
    """One cache for the session: the synthetic data is generated once and shared by every test."""
    path = tmp_path_factory.mktemp("alm-bench-cache")
    os.environ["ALM_BENCH_CACHE"] = str(path)
    return path


@pytest.fixture(scope="session")
def registry():
    from alm_bench.plugins import build_registry

    return build_registry()
