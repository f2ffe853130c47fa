"""Keeping the libraries' own output (warnings, log lines, progress bars) off a run's screen."""

from __future__ import annotations

from contextlib import contextmanager
from typing import Iterator


def quiet_libraries() -> None:
    """For the whole process: no warnings, download bars or log lines from the ML libraries
    (the CLI calls it unless --verbose)."""
    import logging
    import os
    import warnings

    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    warnings.filterwarnings("ignore", module=r"(transformers|torch|sentence_transformers|sklearn|huggingface_hub)\.")
    for name in ("transformers", "sentence_transformers", "huggingface_hub", "torch"):
        logging.getLogger(name).setLevel(logging.ERROR)


@contextmanager
def quiet_transformers() -> Iterator[None]:
    """For one block of a model plugin: transformers logs settings it chose itself and draws progress
    bars while loading weights; silence both, then restore them (for plugins used from Python too)."""
    from transformers.utils import logging

    level, bars = logging.get_verbosity(), logging.is_progress_bar_enabled()
    logging.set_verbosity_error()
    logging.disable_progress_bar()
    try:
        yield
    finally:
        logging.set_verbosity(level)
        if bars:
            logging.enable_progress_bar()
