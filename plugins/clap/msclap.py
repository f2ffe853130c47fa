"""``msclap``: Microsoft CLAP (Elizalde et al., 2022 and 2023), the CLAP of the Pengi paper's tables,
loaded from its released checkpoints (``microsoft/msclap`` on the Hub: ``CLAP_weights_2022.pth``,
``CLAP_weights_2023.pth``) key for key, each with its own audio settings (msclap's config files).

- **2023** (``version=2023``): HTS-AT + GPT-2.  The audio side is exactly Pengi's audio encoder (Pengi
  reuses it), so the ``pengi`` plugin's implementation serves; 44.1 kHz, 7 s.  The text side is
  transformers' ``GPT2Model`` whose hidden state at the last non-``!`` token (msclap pads with ``!``,
  id 0, and appends `` <|endoftext|>`` to every text) is projected into the 1024-d space.
- **2022** (``version=2022``): PANNs' Cnn14 (``cnn14``) at 44.1 kHz, 5 s + BERT-base-uncased's [CLS].

Checkpoints hold ``{"model": state_dict}`` in msclap's layout (``audio_encoder.base.*``,
``audio_encoder.projection.*``, ``caption_encoder.base.*``, ``caption_encoder.projection.*``,
``logit_scale``); DDP's ``module.`` prefix and transformers 4's non-learned buffers (GPT-2's causal
masks, BERT's ``position_ids``) are dropped by name, and every other key must fit.

Audio as msclap prepares it (a shorter clip is repeated and cut, a longer one cropped), except that
the crop keeps the clip's first window rather than a random one, so runs repeat.  No fusion.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from alm_bench import AudioFormat, Capabilities, Model
from alm_bench.errors import UsageError
from alm_bench_plugins.pengi.config import AudioConfig, GPT2Sizes
from alm_bench_plugins.pengi.model import fit_to_clip

from alm_bench_plugins.weights import hub_file, read_state_dict, sha256_file

REPO = "microsoft/msclap"
RELEASED = {"2022": "CLAP_weights_2022.pth", "2023": "CLAP_weights_2023.pth"}
PAD_TOKEN = "!"  # msclap's pad token for GPT-2: id 0, and the pooled position is the last non-zero id


@dataclass(frozen=True)
class MsClapConfig:
    audio: AudioConfig = field(default_factory=AudioConfig)
    #: "HTSAT" (2023) or "Cnn14" (2022), as msclap's ``audioenc_name``
    audio_encoder: str = "HTSAT"
    #: "gpt2" (2023: last token) or "bert" (2022: [CLS]), as msclap's ``text_model``
    text_model: str = "gpt2"
    gpt2: GPT2Sizes = field(default_factory=GPT2Sizes)
    #: BertConfig fields of the 2022 text encoder (bert-base-uncased)
    bert: dict = field(default_factory=dict)
    cnn14_widths: tuple[int, ...] = (64, 128, 256, 512, 1024, 2048)
    out_emb: int = 2048  # Cnn14's embedding width
    d_proj: int = 1024
    text_len: int = 77
    tokenizer: str = "gpt2"


CONFIGS: dict[str, MsClapConfig] = {
    "2023": MsClapConfig(),
    # msclap's config_2022.yml: Cnn14 at 44.1 kHz (its mel filters too), 5 s, fmax 14 kHz; BERT, 100 tokens
    "2022": MsClapConfig(audio=AudioConfig(clip_samples=220_500, mel_sample_rate=44_100, n_fft=1024, hop_length=320,
                                           n_mels=64, fmin=50.0, fmax=14_000.0),
                         audio_encoder="Cnn14", text_model="bert", text_len=100, tokenizer="bert-base-uncased"),
}


def register_config(name: str, config: MsClapConfig) -> None:
    """Add a named configuration (tests register tiny ones); ``--model-args config=NAME`` picks it."""
    CONFIGS[name] = config


class MsClap(Model):
    """Microsoft CLAP 2022 or 2023 from its released checkpoint."""

    name = "msclap"
    capabilities = Capabilities(embed=True, text_encoder=True, shared_space=True)
    description = "Microsoft CLAP from its released msclap checkpoints (version=2023: HTS-AT + GPT-2; 2022: Cnn14 + BERT)"

    def __init__(self, version: str = "2023", checkpoint: str | None = None, config: str | None = None,
                 tokenizer: str | None = None) -> None:
        from transformers import AutoTokenizer

        from .msclap_network import MsClapNetwork, load_released

        name = config or version
        if name not in CONFIGS:
            raise UsageError(f"unknown msclap version {name!r}; known: {', '.join(CONFIGS)}")
        self.version, self.cfg = name, CONFIGS[name]
        if checkpoint is None and name not in RELEASED:
            raise UsageError(f"msclap configuration {name!r} has no released checkpoint; pass checkpoint=PATH")
        path = Path(checkpoint).expanduser() if checkpoint else Path(hub_file(REPO, RELEASED[name], "msclap weights"))
        if not path.is_file():
            raise UsageError(f"msclap checkpoint {checkpoint} not found; download {REPO}/{RELEASED.get(name, RELEASED['2023'])} "
                             "from the Hugging Face Hub or omit checkpoint= to fetch it")
        self.checkpoint, self.sha256 = checkpoint or f"hf://{REPO}/{RELEASED[name]}", sha256_file(path)
        self.network = MsClapNetwork(self.cfg).eval()
        load_released(self.network, read_state_dict(path, trusted=checkpoint is None, what="msclap"))
        self.tokenizer_name = tokenizer or self.cfg.tokenizer
        try:
            self.tokenizer = AutoTokenizer.from_pretrained(self.tokenizer_name)
        except (OSError, ValueError) as exc:
            raise UsageError(f"cannot load the msclap tokenizer {self.tokenizer_name!r} ({str(exc).splitlines()[0]}); "
                             "pass --model-args tokenizer=DIR with a local copy of GPT-2's tokenizer") from None
        if self.cfg.text_model == "gpt2":
            self.tokenizer.add_special_tokens({"pad_token": PAD_TOKEN})
        audio = self.cfg.audio
        self.audio_format = AudioFormat(sample_rate=audio.sample_rate, max_seconds=audio.clip_samples / audio.sample_rate)
        self.device = "cpu"

    def config(self):
        audio = self.cfg.audio
        return {"version": self.version, "checkpoint": self.checkpoint, "sha256": self.sha256,
                "tokenizer": self.tokenizer_name, "d_proj": self.cfg.d_proj, "text_len": self.cfg.text_len,
                "audio": {"sample_rate": audio.sample_rate, "seconds": audio.clip_samples / audio.sample_rate,
                          "short_clips": "repeated and cut", "long_clips": "first window", "fusion": False,
                          "encoder": self.cfg.audio_encoder},
                "sizes": dataclasses.asdict(self.cfg)}

    def to(self, device: str) -> "MsClap":
        self.network.to(device)
        self.device = device
        return self

    def embed(self, clips):
        import torch

        samples = self.cfg.audio.clip_samples
        wave = torch.from_numpy(np.stack([fit_to_clip(c.waveform, samples) for c in clips])).to(self.device)
        with torch.inference_mode():
            return self.network.audio_encoder(wave)[1].float().cpu().numpy()

    def embed_text(self, texts):
        if self.cfg.text_model == "gpt2":  # msclap appends the end-of-text token to every GPT-2 text
            texts = [f"{t} <|endoftext|>" for t in texts]
        import torch

        tokens = self.tokenizer(list(texts), max_length=self.cfg.text_len, padding="max_length", truncation=True,
                                return_tensors="pt").to(self.device)
        with torch.inference_mode():
            return self.network.caption_encoder(dict(tokens)).float().cpu().numpy()
