"""``clap``: LAION-CLAP through transformers' ``ClapModel`` (``laion/clap-htsat-unfused``,
``laion/clap-htsat-fused``, ``laion/larger_clap_general``, ... or a local ``save_pretrained`` folder).

The checkpoint's feature extractor decides the audio: its sample rate (48 kHz for LAION's), its
length (``max_length_s``, 10 s) and its fusion (``truncation: fusion`` for the fused models,
``rand_trunc`` for the others).  The runner cuts every clip to that length, so neither random
truncation nor fusion's random chunks ever fire: a clip longer than 10 s is its first 10 s, and a
shorter one is repeated and padded as the checkpoint's extractor does (``padding``).  All of it is
recorded in the results (``config()``).
"""

from __future__ import annotations

from functools import cached_property

import numpy as np

from alm_bench import AudioFormat, Capabilities, Model

from alm_bench_plugins.weights import hub_snapshot

DEFAULT = "laion/clap-htsat-unfused"


def _features(output):
    """transformers 5 returns a model output whose pooler_output holds the (normalised) projection."""
    import torch

    return output if isinstance(output, torch.Tensor) else output.pooler_output


class LaionClap(Model):
    """LAION-CLAP (HTS-AT + RoBERTa) through transformers' ClapModel."""

    name = "clap"
    capabilities = Capabilities(embed=True, text_encoder=True, shared_space=True)
    description = "LAION-CLAP via transformers ClapModel (checkpoint=laion/clap-htsat-unfused or a folder)"

    def __init__(self, checkpoint: str = DEFAULT, revision: str | None = None) -> None:
        from transformers import AutoTokenizer, ClapFeatureExtractor, ClapModel

        self.checkpoint, self.revision = checkpoint, revision
        self.path = hub_snapshot(checkpoint, revision, what="CLAP checkpoint")
        self.extractor = ClapFeatureExtractor.from_pretrained(self.path)
        self.tokenizer = AutoTokenizer.from_pretrained(self.path)
        self.network = ClapModel.from_pretrained(self.path).eval()
        self.audio_format = AudioFormat(sample_rate=self.extractor.sampling_rate,
                                        max_seconds=float(self.extractor.max_length_s))
        self.device = "cpu"

    def config(self):
        e = self.extractor
        return {"checkpoint": self.checkpoint, "revision": self.revision, "fusion": self.fusion,
                "audio": {"sample_rate": e.sampling_rate, "max_length_s": e.max_length_s, "truncation": e.truncation,
                          "padding": e.padding, "mel_bins": e.feature_size, "hop_length": e.hop_length},
                "projection_dim": self.network.config.projection_dim}

    @cached_property
    def fusion(self) -> bool:
        return bool(getattr(self.network.config.audio_config, "enable_fusion", False))

    def to(self, device: str) -> "LaionClap":
        self.network.to(device)
        self.device = device
        return self

    def embed(self, clips):
        import torch

        inputs = self.extractor([c.waveform for c in clips], sampling_rate=self.extractor.sampling_rate,
                                return_tensors="pt")
        with torch.inference_mode():
            out = self.network.get_audio_features(input_features=inputs["input_features"].to(self.device),
                                                  is_longer=inputs.get("is_longer"))
        return _features(out).float().cpu().numpy()

    def embed_text(self, texts):
        import torch

        inputs = self.tokenizer(list(texts), padding=True, truncation=True, return_tensors="pt").to(self.device)
        with torch.inference_mode():
            out = self.network.get_text_features(input_ids=inputs["input_ids"],
                                                 attention_mask=inputs["attention_mask"])
        return np.asarray(_features(out).float().cpu().numpy())
