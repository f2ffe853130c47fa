"""Every hook alm-bench calls, in one place.

A plugin is a module (or object) with functions named like these, decorated with
``alm_bench.hookimpl``, registered through the ``alm_bench`` entry-point group::

    [project.entry-points.alm_bench]
    my-model = "my_package.alm_plugin"

Each hook is called on every plugin (none stops at the first result); the registry attributes
each result to the plugin that returned it, so a broken plugin never hides the others.
"""

from __future__ import annotations

import pluggy

hookspec = pluggy.HookspecMarker("alm_bench")


@hookspec
def alm_bench_models() -> list[type]:
    """Model classes (subclasses of :class:`alm_bench.Model`) this plugin provides.

    ``alm-bench list models`` reads their ``name``, ``capabilities`` and ``description`` without
    instantiating them; ``alm-bench run --model NAME --model-args k=v`` calls ``cls(**args)``.
    """


@hookspec
def alm_bench_model_prefixes() -> dict:
    """``{prefix: resolver}`` for families of models named ``prefix:rest`` (``hear:hearbaseline``).

    ``resolver(rest)`` returns a model class (as :func:`alm_bench_models` would) for a name no plugin
    registers under its own name, or raises :class:`alm_bench.errors.UsageError` with one line saying
    what is wrong with ``rest``.  It is called only when a run or a check names such a model.
    """


@hookspec
def alm_bench_tasks() -> list[str]:
    """Paths of task spec files (YAML), or of directories holding them, this plugin provides."""


@hookspec
def alm_bench_text_encoders() -> dict:
    """``{name: factory}``; ``factory(argument)`` returns an object with
    ``encode(texts: list[str]) -> np.ndarray [len(texts), D]``.  Selected with
    ``--text-encoder name`` or ``--text-encoder name:argument``."""


@hookspec
def alm_bench_dataset_loaders() -> dict:
    """``{name: loader}``; a task spec's ``dataset.loader`` names one.  See :mod:`alm_bench.data`."""


@hookspec
def alm_bench_methods() -> list:
    """Evaluation methods (:class:`alm_bench.evaluators.Method` instances) this plugin provides."""
