"""Plugin discovery and the registry of models, tasks, text encoders, dataset loaders and methods.

Everything, built-ins included, arrives through pluggy hooks.  The core's own methods, loaders and
text encoders are registered directly (like pytest's default plugins); models and tasks come from
the ``alm_bench`` entry-point group, which built-in models and tasks use exactly as third parties
do.  A plugin that fails to import or registers something invalid is reported by name and skipped;
the others still load.  Set ``ALM_BENCH_DISABLE_PLUGIN_AUTOLOAD=1`` to load no entry points.
"""

from __future__ import annotations

import importlib.metadata
import inspect
import os
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

import pluggy

from . import hookspecs
from .errors import PluginError, SpecError, UsageError
from .protocol import REQUIRED_METHODS, Capabilities, Model, ModelInfo
from .specs import TaskSpec, load_spec, spec_files

ENTRY_POINT_GROUP = "alm_bench"
CORE_PLUGINS = ("alm_bench.builtins",)


@dataclass
class Registry:
    models: dict[str, ModelInfo] = field(default_factory=dict)
    tasks: dict[str, TaskSpec] = field(default_factory=dict)
    text_encoders: dict[str, Any] = field(default_factory=dict)
    loaders: dict[str, Any] = field(default_factory=dict)
    methods: dict[str, Any] = field(default_factory=dict)
    #: model-name prefix -> (plugin, resolver): ``hear:MODULE`` and the like
    prefixes: dict[str, tuple[str, Any]] = field(default_factory=dict)
    #: one line per plugin that failed, e.g. 'Error importing plugin "x": ...'
    errors: list[str] = field(default_factory=list)
    manager: pluggy.PluginManager | None = None

    # -- lookups with user-facing errors -------------------------------------------------
    def model_info(self, name: str) -> ModelInfo:
        prefix, _, rest = name.partition(":")
        if name not in self.models and rest and prefix in self.prefixes:
            self.models[name] = self._resolve(prefix, rest)
        if name not in self.models:
            known = ", ".join(sorted(self.models)) or "none"
            raise UsageError(f"unknown model {name!r}; known models: {known} (see `alm-bench list models`)")
        return self.models[name]

    def _resolve(self, prefix: str, rest: str) -> ModelInfo:
        """The model class a prefix plugin builds for ``prefix:rest``, checked like a registered one."""
        plugin, resolver = self.prefixes[prefix]
        cls = resolver(rest)  # raises UsageError naming what is wrong with rest
        try:
            check_model_class(cls)
        except PluginError as exc:
            raise UsageError(f"model {prefix}:{rest}: {exc}") from None
        return model_info_of(f"{prefix}:{rest}", cls, plugin)

    def task(self, task_id: str) -> TaskSpec:
        if task_id not in self.tasks:
            raise UsageError(f"unknown task {task_id!r}; see `alm-bench list tasks` for the task ids")
        return self.tasks[task_id]

    def load_model(self, name: str, args: dict[str, Any] | None = None) -> Model:
        """Instantiate a registered model; wrapper models call this to build the model they wrap."""
        info = self.model_info(name)
        args = dict(args or {})
        accepted = _accepted_args(info.cls)
        unknown = [k for k in args if accepted is not None and k not in accepted]
        if unknown:
            allowed = ", ".join(accepted) or "none"
            raise UsageError(f"model {name!r} takes no argument {unknown[0]!r}; its arguments are: {allowed}")
        return info.cls(**args)


def _accepted_args(cls: type) -> list[str] | None:
    """The keyword arguments a model class takes, or None when any is (``**kwargs`` all the way up).

    A constructor with ``**kwargs`` is taken to pass them to its parent's, whose names are added."""
    accepted: list[str] = []
    for klass in cls.__mro__:
        if "__init__" not in vars(klass):
            continue
        if klass is object:
            return None
        params = inspect.signature(klass.__init__).parameters.values()
        accepted += [p.name for p in params
                     if p.name != "self" and p.kind in (p.KEYWORD_ONLY, p.POSITIONAL_OR_KEYWORD) and p.name not in accepted]
        if not any(p.kind is p.VAR_KEYWORD for p in params):
            return accepted
    return None


def _plugin_name(manager: pluggy.PluginManager, impl: pluggy.HookImpl) -> str:
    return manager.get_name(impl.plugin) or repr(impl.plugin)


def _collect(manager: pluggy.PluginManager, hook_name: str, errors: list[str]) -> list[tuple[str, Any]]:
    """Call one hook on each plugin separately, so one plugin's exception cannot hide the rest."""
    results = []
    for impl in getattr(manager.hook, hook_name).get_hookimpls():
        plugin = _plugin_name(manager, impl)
        try:
            value = impl.function()
        except Exception as exc:  # a third-party bug: report it and go on
            errors.append(f'Error in plugin "{plugin}" hook {hook_name}: {type(exc).__name__}: {exc}')
            continue
        if value is not None:
            results.append((plugin, value))
    return results


def check_model_class(cls: Any) -> None:
    """Raise PluginError naming what is wrong with a registered model class."""
    if not (isinstance(cls, type) and issubclass(cls, Model)):
        raise PluginError(f"{cls!r} is not a subclass of alm_bench.Model")
    if not isinstance(cls.name, str) or not cls.name:
        raise PluginError(f"model class {cls.__name__} has no name (set the class attribute `name`)")
    if not isinstance(cls.capabilities, Capabilities):
        raise PluginError(f"model {cls.name!r}: `capabilities` must be an alm_bench.Capabilities instance")
    if not any((cls.capabilities.generate, cls.capabilities.embed, cls.capabilities.score)):
        raise PluginError(f"model {cls.name!r} declares none of generate, embed, score")
    for capability in cls.capabilities.names():
        for method in REQUIRED_METHODS.get(capability, ()):
            if getattr(cls, method) is getattr(Model, method):
                raise PluginError(f"model {cls.name!r} declares {capability!r} but does not implement {method}()")


def _register_models(registry: Registry, manager: pluggy.PluginManager) -> None:
    for plugin, classes in _collect(manager, "alm_bench_models", registry.errors):
        for cls in classes:
            try:
                check_model_class(cls)
                if cls.name in registry.models:
                    other = registry.models[cls.name].plugin
                    raise PluginError(f"model {cls.name!r} is already registered by plugin {other!r}")
            except PluginError as exc:
                registry.errors.append(f'Error in plugin "{plugin}": {exc}')
                continue
            registry.models[cls.name] = model_info_of(cls.name, cls, plugin)


def model_info_of(name: str, cls: type, plugin: str) -> ModelInfo:
    doc = (cls.description or (cls.__doc__ or "")).strip().splitlines()
    return ModelInfo(name, cls, plugin, cls.capabilities, doc[0] if doc else "")


def _register_prefixes(registry: Registry, manager: pluggy.PluginManager) -> None:
    for plugin, mapping in _collect(manager, "alm_bench_model_prefixes", registry.errors):
        entries = {prefix: (plugin, resolver) for prefix, resolver in dict(mapping).items()}
        _merge(registry, plugin, "alm_bench_model_prefixes", entries, registry.prefixes)


def _register_tasks(registry: Registry, manager: pluggy.PluginManager) -> None:
    for plugin, locations in _collect(manager, "alm_bench_tasks", registry.errors):
        for location in locations:
            for path in spec_files(location):
                try:
                    spec = load_spec(path, registry.methods)
                except SpecError as exc:
                    registry.errors.append(f'Error in plugin "{plugin}": {exc}')
                    continue
                if spec.id in registry.tasks:
                    registry.errors.append(f'Error in plugin "{plugin}": task {spec.id!r} in {path} is defined twice')
                    continue
                registry.tasks[spec.id] = spec


def _merge_dicts(registry: Registry, manager: pluggy.PluginManager, hook: str, target: dict) -> None:
    for plugin, mapping in _collect(manager, hook, registry.errors):
        _merge(registry, plugin, hook, dict(mapping), target)


def _merge(registry: Registry, plugin: str, hook: str, entries: dict, target: dict) -> None:
    for name, value in entries.items():
        if name in target:
            registry.errors.append(f'Error in plugin "{plugin}": {hook} name {name!r} is already taken')
        else:
            target[name] = value


def _load_entry_points(manager: pluggy.PluginManager, errors: list[str]) -> None:
    for ep in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP):
        if manager.has_plugin(ep.name):
            continue
        try:
            manager.register(ep.load(), name=ep.name)
        except Exception as exc:
            errors.append(f'Error importing plugin "{ep.name}": {type(exc).__name__}: {exc}')


def build_registry(extra_plugins: tuple = (), autoload: bool | None = None) -> Registry:
    """Discover every plugin and build the registry.  ``extra_plugins`` are (name, module-or-object)."""
    if autoload is None:
        autoload = os.environ.get("ALM_BENCH_DISABLE_PLUGIN_AUTOLOAD", "") in ("", "0")
    manager = pluggy.PluginManager("alm_bench")
    manager.add_hookspecs(hookspecs)
    registry = Registry(manager=manager)
    for module_name in CORE_PLUGINS:
        manager.register(importlib.import_module(module_name), name=module_name)
    for name, plugin in extra_plugins:
        manager.register(plugin, name=name)
    if autoload:
        _load_entry_points(manager, registry.errors)
    _merge_dicts(registry, manager, "alm_bench_text_encoders", registry.text_encoders)
    _merge_dicts(registry, manager, "alm_bench_dataset_loaders", registry.loaders)
    for plugin, methods in _collect(manager, "alm_bench_methods", registry.errors):
        _merge(registry, plugin, "alm_bench_methods", {m.name: m for m in methods}, registry.methods)
    _register_models(registry, manager)
    _register_prefixes(registry, manager)
    _register_tasks(registry, manager)
    return registry


@lru_cache(maxsize=1)
def default_registry() -> Registry:
    return build_registry()
