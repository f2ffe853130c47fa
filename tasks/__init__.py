"""The built-in task catalogue: one YAML spec per task in this directory.

Registered through the ``alm_bench`` entry point like any third-party task plugin.
"""

from pathlib import Path

from alm_bench import hookimpl


@hookimpl
def alm_bench_tasks():
    return [str(Path(__file__).resolve().parent)]
