"""``clap-tiny``: a contrastive audio-text model small enough to train offline in minutes and ship.

Audio: a 64-band log-mel spectrogram (16 kHz, 25 ms windows, 20 ms hop) through three 1-D
convolutions over time (two strided), pooled into mean, max and the mean of each third of the clip (the suite's
captions say where a sound is), then projected.  Text: all-MiniLM-L6-v2's sentence embedding (it ships
offline with the package's dependencies), frozen, through a two-layer projection.  Both land in one
L2-normalised 128-d space trained with CLAP's symmetric contrastive loss (``training``).  It knows only
the synthetic suite's sounds and words.
"""

from __future__ import annotations

import json
from functools import cached_property
from pathlib import Path

from alm_bench import AudioFormat, Capabilities, Model

WEIGHTS = Path(__file__).resolve().parent / "weights" / "tiny"
TEXT_MODEL = "all-MiniLM-L6-v2"
SAMPLE_RATE, N_FFT, HOP, N_MELS = 16_000, 400, 320, 64


def training_record() -> dict:
    path = WEIGHTS / "training.json"
    return json.loads(path.read_text()) if path.is_file() else {}


class ClapTinyModel(Model):
    """A 128-d shared audio-text space trained by alm-bench on its synthetic suite (shipped, offline)."""

    name = "clap-tiny"
    capabilities = Capabilities(embed=True, text_encoder=True, shared_space=True)
    description = "contrastive audio-text model trained by alm-bench on its synthetic suite (shipped, offline)"
    audio_format = AudioFormat(sample_rate=SAMPLE_RATE, max_seconds=10.0, min_seconds=N_FFT / SAMPLE_RATE)

    def __init__(self, checkpoint: str | None = None) -> None:
        import torch

        from .tiny_network import TinyClap, front_end

        self.shipped = checkpoint is None
        self.checkpoint = Path(checkpoint or WEIGHTS / "model.pt")
        self.network = TinyClap()
        self.network.load_state_dict(torch.load(self.checkpoint, map_location="cpu", weights_only=True))
        self.network.eval()
        self.front_end = front_end()
        self.device = "cpu"

    def config(self):
        record = training_record() if self.shipped else {}
        return {"checkpoint": "shipped: alm_bench_plugins/clap/weights/tiny/model.pt" if self.shipped
                else str(self.checkpoint), "text_model": TEXT_MODEL,
                "front_end": {"sample_rate": SAMPLE_RATE, "n_fft": N_FFT, "hop": HOP, "n_mels": N_MELS},
                "training": {k: record.get(k) for k in ("command", "recipe", "sha256")} if record else None}

    def to(self, device: str) -> "ClapTinyModel":
        self.network.to(device)
        self.device = device
        return self

    @cached_property
    def _text_encoder(self):
        from .tiny_network import sentence_encoder

        return sentence_encoder()

    def embed(self, clips):
        import torch

        with torch.inference_mode():
            out = [self.network.encode_audio(self.front_end.log_mel(c.waveform)[None].to(self.device)) for c in clips]
            return torch.cat(out).cpu().numpy()

    def embed_text(self, texts):
        import torch

        from .tiny_network import text_features

        with torch.inference_mode():
            features = text_features(self._text_encoder, texts).to(self.device)
            return self.network.encode_text(features).cpu().numpy()
