"""Declarative task specs: one YAML file per task, parsed strictly into typed objects.

Unknown keys, wrong types and missing fields are errors naming the file and the field; a spec never
imports code.  Which evaluation methods exist, and which options each takes, comes from the method
registry, so a spec is checked against the methods really installed.
"""

from __future__ import annotations

import dataclasses
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from .errors import SpecError

#: libyaml's loader where PyYAML was built with it: every command parses every spec at start, and the
#: pure-Python parser alone takes seconds
_SAFE_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

TASK_TYPES = ("multiclass", "multilabel", "captioning", "qa", "retrieval", "fewshot", "two_clip")

DOMAINS = (
    "captioning", "question answering", "sound events", "acoustic scenes", "music", "instruments",
    "music notes", "emotion", "vocal sounds", "surveillance", "retrieval", "few-shot", "reasoning",
    "speech",
)


@dataclass(frozen=True)
class Download:
    """One file of the official source: fetched into the data cache and checked."""

    url: str
    sha256: str = ""
    md5: str = ""
    extract: bool = True


@dataclass(frozen=True)
class DatasetSpec:
    loader: str
    source: str
    licence: str
    #: the expected local layout under ``--data-dir`` (shown when data is missing)
    layout: str = ""
    args: dict = field(default_factory=dict)
    downloads: tuple[Download, ...] = ()
    hf_repo: str = ""
    hf_revision: str = ""
    citation: str = ""
    #: items the loader yields from a complete official copy (0: unknown); a smaller copy is partial
    size: int = 0
    #: the length every clip of the official set has, in seconds (0: clips vary); `data check` checks it
    seconds: float = 0.0


@dataclass(frozen=True)
class Splits:
    test: str = "test"
    train: str = ""
    valid: str = ""


@dataclass(frozen=True)
class Reference:
    """A published number: ``Pengi (paper)`` on this task with this method and metric."""

    model: str
    metric: str
    value: float
    source: str
    method: str = ""
    prompt: str = ""


@dataclass(frozen=True)
class TaskSpec:
    id: str
    domain: str
    type: str
    description: str
    dataset: DatasetSpec
    metric: str
    methods: dict = field(default_factory=dict)  # method name -> options
    prompts: tuple[str, ...] = ()
    labels: tuple[str, ...] = ()
    splits: Splits = field(default_factory=Splits)
    #: number of predefined folds (HEAR-style: test fold i, validation fold i+1, train the rest)
    folds: int = 0
    references: tuple[Reference, ...] = ()
    path: str = ""

    @property
    def multilabel(self) -> bool:
        return self.type == "multilabel"


def _fail(path: Path | str, where: str, what: str) -> SpecError:
    return SpecError(f"invalid task spec {path}: field '{where}': {what}")


def _coerce(value: Any, hint: Any, path: Path | str, where: str) -> Any:
    """Check ``value`` against a type hint and convert lists to tuples and mappings to dataclasses."""
    origin = typing.get_origin(hint)
    if dataclasses.is_dataclass(hint):
        if not isinstance(value, dict):
            raise _fail(path, where, f"expected a mapping, got {type(value).__name__}")
        return _build(hint, value, path, where + ".")
    if origin is tuple:
        if not isinstance(value, list):
            raise _fail(path, where, f"expected a list, got {type(value).__name__}")
        inner = typing.get_args(hint)[0]
        return tuple(_coerce(v, inner, path, f"{where}[{i}]") for i, v in enumerate(value))
    if hint is dict or origin is dict:
        if not isinstance(value, dict):
            raise _fail(path, where, f"expected a mapping, got {type(value).__name__}")
        return value
    if hint is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise _fail(path, where, f"expected a number, got {value!r}")
        return float(value)
    if hint in (str, int, bool) and (type(value) is not hint):
        raise _fail(path, where, f"expected {hint.__name__}, got {value!r}")
    return value


def _build(cls: type, data: dict, path: Path | str, prefix: str = "") -> Any:
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls) if f.name != "path"}
    unknown = sorted(set(data) - set(fields))
    if unknown:
        raise _fail(path, prefix + unknown[0], f"unknown key; allowed keys are {', '.join(fields)}")
    kwargs = {}
    for name, f in fields.items():
        if name not in data:
            if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
                raise _fail(path, prefix + name, "required but missing")
            continue
        kwargs[name] = _coerce(data[name], hints[name], path, prefix + name)
    return cls(**kwargs)


def parse_spec(data: Any, path: Path | str, methods: dict | None = None) -> TaskSpec:
    """Build and check a :class:`TaskSpec` from parsed YAML; ``methods`` is the method registry."""
    if not isinstance(data, dict):
        raise _fail(path, "<top>", "a task spec is a mapping of fields")
    spec: TaskSpec = _build(TaskSpec, data, path)
    spec = dataclasses.replace(spec, path=str(path))
    if spec.type not in TASK_TYPES:
        raise _fail(path, "type", f"{spec.type!r} is not one of {', '.join(TASK_TYPES)}")
    if spec.domain not in DOMAINS:
        raise _fail(path, "domain", f"{spec.domain!r} is not one of {', '.join(DOMAINS)}")
    if not spec.methods:
        raise _fail(path, "methods", "name at least one evaluation method")
    if len(set(spec.labels)) != len(spec.labels):
        raise _fail(path, "labels", "labels repeat")
    if methods is not None:
        _check_methods(spec, methods, path)
    return spec


def _check_methods(spec: TaskSpec, methods: dict, path: Path | str) -> None:
    for name, options in spec.methods.items():
        where = f"methods.{name}"
        if name not in methods:
            raise _fail(path, where, f"unknown method; known methods are {', '.join(sorted(methods))}")
        if not isinstance(options, dict):
            raise _fail(path, where, "options must be a mapping (use {} for none)")
        method = methods[name]
        if spec.type not in method.task_types:
            raise _fail(path, where, f"does not apply to {spec.type} tasks (only {', '.join(method.task_types)})")
        for key, value in options.items():
            if key not in method.options:
                raise _fail(path, f"{where}.{key}", f"unknown option; allowed: {', '.join(method.options) or 'none'}")
            expected = type(method.options[key])
            if method.options[key] is not None and not isinstance(value, expected):
                raise _fail(path, f"{where}.{key}", f"expected {expected.__name__}, got {value!r}")
        if method.needs_prompt and not spec.prompts:
            raise _fail(path, "prompts", f"method {name} generates text: give at least one prompt")
    produced = [m for name, options in spec.methods.items() for m in methods[name].produces(spec, options)]
    if spec.metric not in produced:
        raise _fail(path, "metric", f"{spec.metric!r} is produced by none of the task's methods; "
                    f"they report {', '.join(dict.fromkeys(produced))}")


def load_spec(path: Path | str, methods: dict | None = None) -> TaskSpec:
    path = Path(path)
    try:
        data = yaml.load(path.read_text(encoding="utf-8"), Loader=_SAFE_LOADER)
    except yaml.YAMLError as exc:
        raise SpecError(f"invalid task spec {path}: not valid YAML ({str(exc).splitlines()[0]})") from None
    except OSError as exc:
        raise SpecError(f"cannot read task spec {path}: {exc.strerror}") from None
    return parse_spec(data, path, methods)


def spec_files(location: Path | str) -> list[Path]:
    location = Path(location)
    if location.is_dir():
        return sorted(p for p in location.iterdir() if p.suffix in (".yaml", ".yml"))
    return [location]
