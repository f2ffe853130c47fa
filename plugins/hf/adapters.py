"""What differs between transformers' audio chat architectures, one adapter per ``model_type``.

The ``hf`` model follows transformers' own conventions (``AutoProcessor``, its chat template with
audio content parts, the model's ``generate``), so most of an architecture needs nothing here.  An
adapter says only what a processor or model does differently:

- ``interleaved``: the processor takes several clips in one conversation (AF3 and GLM-ASR pair
  one clip with one text, so they are not offered two-clip or in-context few-shot requests);
- ``system_prompt``: the system turn used when the run gives none (``None``: the template's own);
- ``audio_embeddings``: the audio as the language model receives it, one ``[frames, d]`` tensor per
  clip, only the frames that hold audio (the positions the processor gave placeholder tokens).

An architecture not listed gets ``Adapter()``: the generic path, which works for models whose
``get_audio_features`` returns the valid frames as ``pooler_output`` (transformers' convention).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable


def _projected_frames(net, inputs: dict) -> list:
    """transformers' convention: ``get_audio_features(input_features, <mask>)`` returns the projected
    audio frames that fill placeholder tokens, padding left out, flattened over clips; the processor
    put as many placeholders in each clip's text as the clip has such frames."""
    audio = {k: v for k, v in inputs.items() if k.startswith("input_features")}
    frames = net.get_audio_features(**audio).pooler_output
    counts = (inputs["input_ids"] == net.config.audio_token_id).sum(dim=1).tolist()
    return list(frames.split(counts))


def _qwen2_audio_frames(net, inputs: dict) -> list:
    """Qwen2-Audio has no ``get_audio_features``: its forward pass's audio branch (encoder with the
    padding masked, then the projector), keeping each clip's frames that hold audio."""
    import torch
    from transformers.masking_utils import create_bidirectional_mask

    model = net.model
    features, mask = inputs["input_features"], inputs["feature_attention_mask"]
    feature_lengths, lengths = model.audio_tower._get_feat_extract_output_lengths(mask.sum(-1))
    frames = (features.shape[-1] - 2) // 2 + 1  # after the encoder's stride-2 convolution
    valid = (torch.arange(frames, device=features.device)[None, :] < feature_lengths[:, None]).long()
    dummy = torch.zeros((features.shape[0], frames, 1), dtype=features.dtype, device=features.device)
    attention = create_bidirectional_mask(config=model.audio_tower.config, inputs_embeds=dummy, attention_mask=valid)
    states = model.audio_tower(features, attention_mask=attention).last_hidden_state
    projected = model.multi_modal_projector(states)
    return [projected[i, : int(n)] for i, n in enumerate(lengths)]


@dataclass(frozen=True)
class Adapter:
    interleaved: bool = True
    system_prompt: str | None = None
    audio_embeddings: Callable[[Any, dict], list] = field(default=_projected_frames)


ADAPTERS: dict[str, Adapter] = {
    "qwen2_audio": Adapter(audio_embeddings=_qwen2_audio_frames),
    # their processors check one clip per text (``len(text) == len(audio)``)
    "audioflamingo3": Adapter(interleaved=False),
    "musicflamingo": Adapter(interleaved=False),
    "glmasr": Adapter(interleaved=False),
}


def adapter(model_type: str) -> Adapter:
    return ADAPTERS.get(model_type, Adapter())
