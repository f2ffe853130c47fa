"""APT checkpoints in the LAVIS layout: finding, translating and loading them.

No APT checkpoint has been published, so nothing is downloaded by default: ``checkpoint=PATH_OR_URL``
names one (URLs go through the shared weights cache, :mod:`alm_bench_plugins.weights`).  A LAVIS
checkpoint is ``{"model": state_dict}`` with the keys of ``lam_vicuna_instruct``; LAVIS saves only
the parameters that train, so it holds ``ln_audio``, ``Qformer.bert.*``, ``query_tokens``,
``llm_proj`` and ``audio_indicator_token``.  Every one of those must be present and fit.  The frozen
parts travel separately: ``audio_encoder.model.*`` (Audio-MAE) is loaded when the checkpoint holds it
(or from ``audio_encoder=PATH``, an Audio-MAE checkpoint), and ``llm_model.*`` is ignored (the
language model comes from ``llm=``).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Mapping

import torch

from alm_bench.errors import UsageError

from .. import weights
from .network import AptNetwork

RANDOM = "random"
HOW = ("no APT checkpoint has been published; pass --model-args checkpoint=PATH_OR_URL of a LAVIS "
       "lam_vicuna_instruct checkpoint (or checkpoint=random for random weights)")
#: LAVIS's Q-Former key pieces -> transformers' InstructBLIP Q-Former ones
_QFORMER_RENAMES = ((".attention.self.", ".attention.attention."), (".crossattention.self.", ".crossattention.attention."),
                    ("embeddings.LayerNorm.", "embeddings.layernorm."))
_NOT_LEARNED = re.compile(r"(^|\.)position_ids$|^llm_model\.|^Qformer\.cls\.")
ENCODER = "audio_encoder.model."


def local_file(spec: str, expected_sha: str | None = None) -> tuple[Path, str]:
    return weights.local_file(spec, "APT", HOW, expected_sha)


def read_state_dict(path: Path, trusted: bool) -> dict[str, torch.Tensor]:
    return weights.read_state_dict(path, trusted, "APT")


def from_lavis(state: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """A LAVIS state dict in this network's key names (non-learned and language-model keys dropped)."""
    out = {}
    for key, value in state.items():
        key = key[len("module."):] if key.startswith("module.") else key
        if _NOT_LEARNED.search(key):
            continue
        if key.startswith("Qformer.bert."):
            key = "qformer." + key[len("Qformer.bert."):]
            for old, new in _QFORMER_RENAMES:
                key = key.replace(old, new)
        out[key] = value
    return out


def to_lavis(network: AptNetwork, with_encoder: bool = False) -> dict[str, torch.Tensor]:
    """The network's learned weights under LAVIS's keys (what LAVIS's ``save_checkpoint`` writes)."""
    out = {}
    for key, value in network.state_dict().items():
        if key.startswith(ENCODER) and not with_encoder:
            continue
        if key.startswith("qformer."):
            key = "Qformer.bert." + key[len("qformer."):]
            for old, new in _QFORMER_RENAMES:
                key = key.replace(new, old)
        out[key] = value
    return out


def load_into(network: AptNetwork, state: Mapping[str, torch.Tensor], encoder_required: bool = False) -> bool:
    """Load a LAVIS-layout state dict; a learned key that is missing, unexpected or misshapen is an
    error.  Returns whether the frozen audio encoder came with it."""
    state = from_lavis(state)
    has_encoder = any(k.startswith(ENCODER) for k in state)
    expected = set(network.state_dict())
    if not has_encoder:
        expected = {k for k in expected if not k.startswith(ENCODER)}
    missing, unexpected = sorted(expected - set(state)), sorted(set(state) - expected)
    if missing or unexpected or (encoder_required and not has_encoder):
        problems = [f"{len(missing)} missing (e.g. {missing[0]})"] if missing else []
        problems += [f"{len(unexpected)} unexpected (e.g. {unexpected[0]})"] if unexpected else []
        problems += [] if has_encoder or not encoder_required else ["no audio encoder (pass audio_encoder=PATH)"]
        raise UsageError("the checkpoint does not fit this APT configuration: " + ", ".join(problems) +
                         "; pass the matching config=")
    try:
        network.load_state_dict(state, strict=False)
    except RuntimeError as exc:
        detail = next((line.strip() for line in str(exc).splitlines() if "size mismatch" in line), str(exc))
        raise UsageError(f"the checkpoint does not fit this APT configuration: {detail}; pass the matching config=") from None
    return has_encoder


def load_audio_mae(network: AptNetwork, state: Mapping[str, torch.Tensor]) -> None:
    """An Audio-MAE checkpoint (``{"model": ViT state}``, the decoder of a pre-training one ignored)."""
    vit = network.audio_encoder.model
    wanted = set(vit.state_dict())
    state = {k[len(ENCODER):] if k.startswith(ENCODER) else k: v for k, v in state.items()}
    missing = sorted(k for k in wanted if k not in state and not k.startswith("head."))
    if missing:
        raise UsageError(f"the Audio-MAE checkpoint lacks {len(missing)} encoder weights (e.g. {missing[0]}); "
                         "pass an Audio-MAE ViT-B/16 checkpoint as audio_encoder=")
    vit.load_state_dict({k: v for k, v in state.items() if k in wanted}, strict=False)
