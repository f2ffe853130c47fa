"""Finding, downloading, verifying and loading Pengi checkpoints.

``checkpoint`` is a path, an http(s) URL (downloaded once into ``$ALM_BENCH_CACHE/weights`` or
``~/.cache/alm-bench/weights``, with a progress bar), ``None`` (the released checkpoint of the chosen
configuration) or ``"random"`` (seeded random weights: tests and benchmarks).

Integrity: the SHA-256 of every download is computed while it streams and recorded in
``NAME.sha256`` beside the file; a later load re-hashes the file and refuses one that no longer
matches.  No published checksum of the Zenodo files was available when this was written, so
nothing is pinned; pass ``checkpoint_sha256=HEX`` to pin one.

The released files hold ``{"model": state_dict}``, saved with transformers 4.28: keys may carry
DataParallel's ``module.`` prefix, and up to 25 legacy entries hold no learned weights (GPT-2's causal
``attn.bias`` / ``attn.masked_bias`` buffers, CLIP's ``position_ids``).  Those are dropped by name; every
other key must match the network exactly.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Mapping

import torch

from alm_bench.errors import UsageError

from .. import weights
from ..weights import is_url, sha256_file, weights_dir  # noqa: F401 - part of this module's interface
from .config import RELEASED_CHECKPOINTS

RANDOM = "random"
LEGACY_KEY = re.compile(r"^caption_decoder\.gpt\.transformer\.h\.\d+\.attn\.(bias|masked_bias)$"
                        r"|^caption_encoder\.base\.embeddings\.position_ids$")


def how_to_get(config: str) -> str:
    url = RELEASED_CHECKPOINTS.get(config, RELEASED_CHECKPOINTS["base"])
    return (f"download {url} and pass --model-args checkpoint=/path/to/{url.rsplit('/', 1)[-1]},config={config} "
            "(or checkpoint=random for random weights)")


def resolve(checkpoint: str | None, config: str) -> str | None:
    """The path or URL to load, or None for random weights."""
    if checkpoint == RANDOM:
        return None
    if checkpoint is None:
        if config not in RELEASED_CHECKPOINTS:
            raise UsageError(f"Pengi configuration {config!r} has no released checkpoint; "
                             "pass --model-args checkpoint=PATH_OR_URL (or checkpoint=random)")
        return RELEASED_CHECKPOINTS[config]
    return str(checkpoint)


def local_file(spec: str, config: str, expected_sha: str | None = None) -> tuple[Path, str]:
    """(path, sha256) of a checkpoint given as a path or URL; URLs are downloaded once."""
    return weights.local_file(spec, "Pengi", how_to_get(config), expected_sha, RELEASED_CHECKPOINTS.values())


def read_state_dict(path: Path, trusted: bool) -> dict[str, torch.Tensor]:
    """The state dict of a checkpoint file (``file["model"]`` when the file wraps it)."""
    return weights.read_state_dict(path, trusted, "Pengi")


def to_current_layout(state: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Strip ``module.`` prefixes and drop the legacy non-learned keys of transformers 4.x."""
    out = {}
    for key, value in state.items():
        key = key[len("module."):] if key.startswith("module.") else key
        if not LEGACY_KEY.match(key):
            out[key] = value
    return out


def load_into(network: torch.nn.Module, state: Mapping[str, torch.Tensor]) -> None:
    """Load a released-layout state dict; any key that is missing or unexpected is an error."""
    state = to_current_layout(state)
    try:
        result = network.load_state_dict(state, strict=False)
    except RuntimeError as exc:  # shapes that differ
        detail = next((line.strip() for line in str(exc).splitlines() if "size mismatch" in line), str(exc))
        raise UsageError(f"the checkpoint does not fit this Pengi configuration: {detail}; "
                         "pass the matching config= (base or base_no_text_enc)") from None
    if result.missing_keys or result.unexpected_keys:
        problems = []
        if result.missing_keys:
            problems.append(f"{len(result.missing_keys)} missing (e.g. {result.missing_keys[0]})")
        if result.unexpected_keys:
            problems.append(f"{len(result.unexpected_keys)} unexpected (e.g. {result.unexpected_keys[0]})")
        raise UsageError("the checkpoint does not fit this Pengi configuration: " + ", ".join(problems) +
                         "; pass the matching config= (base or base_no_text_enc)")
