"""Model plugins shipped with alm-bench (installed as ``alm_bench_plugins``).

Each registers through the ``alm_bench`` entry-point group exactly as a third-party plugin does.
"""
