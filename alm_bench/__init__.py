"""alm-bench: a HEAR-style benchmark suite for audio-language models."""

from importlib.metadata import PackageNotFoundError, version

from ._hookimpl import hookimpl
from .errors import ModelOutputError, PluginError, SpecError, UsageError
from .protocol import (
    AudioFormat,
    Capabilities,
    Clip,
    GenerateRequest,
    Generated,
    GenerationConfig,
    Model,
    ScoreRequest,
)

try:
    __version__ = version("alm-bench")
except PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0+unknown"


def check_model(model, **kwargs):
    """Run the conformance checks on a model instance; see :mod:`alm_bench.checks`."""
    from .checks import check_model as _check_model

    return _check_model(model, **kwargs)


__all__ = [
    "AudioFormat", "Capabilities", "Clip", "GenerateRequest", "Generated", "GenerationConfig", "Model", "ScoreRequest",
    "hookimpl", "check_model", "UsageError", "SpecError", "PluginError", "ModelOutputError", "__version__",
]
