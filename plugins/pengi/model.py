"""The alm-bench ``pengi`` model: the network, its tokenizers and the fast decoding behind the protocol."""

from __future__ import annotations

import math
from typing import Sequence

from typing import TYPE_CHECKING

import numpy as np

from alm_bench import AudioFormat, Capabilities, Clip, GenerateRequest, GenerationConfig, Model, ScoreRequest
from alm_bench.errors import UsageError

from .config import CONFIGS, PengiConfig

# torch, the network and the tokenizers load when a model is built, not when the plugin is listed
# (`alm-bench list models` imports every plugin)
if TYPE_CHECKING:
    import torch

    from .network import PengiNetwork

CROPS = ("start", "center")
CHANNELS = ("mean", "concat")
EMBEDDINGS = ("projection", "latent")
AUDIO_BATCH = 16  # clips per audio-encoder pass (bounds memory; outputs do not depend on it)


def fit_to_clip(wave: np.ndarray, samples: int, crop: str = "start", channels: str = "mean") -> np.ndarray:
    """One waveform -> exactly ``samples`` samples, as the reference prepares audio but deterministic.

    A 2-D input is [channels, samples]: averaged (``mean``) or flattened channel after channel
    (``concat``, the reference's ``reshape(-1)``).  A clip of ``samples`` or fewer is tiled and cut;
    a longer one is cropped at its start or centre (the reference crops at random)."""
    wave = np.asarray(wave, dtype=np.float32)
    if wave.ndim == 2:
        wave = wave.reshape(-1) if channels == "concat" else wave.mean(axis=0)
    if wave.size == 0:
        raise ValueError("empty waveform")
    if len(wave) <= samples:
        return np.tile(wave, math.ceil(samples / len(wave)))[:samples]
    start = 0 if crop == "start" else (len(wave) - samples) // 2
    return wave[start : start + samples]


def build_network(cfg: PengiConfig, seed: int = 0) -> PengiNetwork:
    """A seeded random-weight network (tests, benchmarks, the start of training)."""
    import torch

    from .network import PengiNetwork

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return PengiNetwork(cfg).eval()


def _choice(value, allowed: Sequence[str], arg: str) -> str:
    if value not in allowed:
        raise UsageError(f"pengi: {arg}={value!r} is not one of {', '.join(allowed)}")
    return value


def _positive_int(value, arg: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise UsageError(f"pengi: {arg} must be a positive integer, not {value!r}")
    return value


class PengiModel(Model):
    """Pengi (Deshmukh et al., 2023) with its released checkpoints; see the package docstring."""

    name = "pengi"
    capabilities = Capabilities(generate=True, embed=True, score=True, text_encoder=True)
    description = "Pengi (Deshmukh et al., 2023): HTS-AT + CLIP/GPT-2 prompt -> frozen GPT-2; released weights"

    def __init__(self, checkpoint: str | None = None, config: str = "base",
                 text_tokenizer: str = "openai/clip-vit-base-patch16", decoder_tokenizer: str = "gpt2",
                 num_beams: int = 5, max_new_tokens: int = 30, temperature: float = 1.0,
                 embedding: str = "projection", text_encoder: str | None = None, crop: str = "start",
                 channels: str = "mean", normalize_prompt: bool = False, seed: int = 0,
                 checkpoint_sha256: str | None = None, trust_checkpoint: bool = False) -> None:
        if config not in CONFIGS:
            raise UsageError(f"pengi: unknown config {config!r}; known: {', '.join(sorted(CONFIGS))}")
        self.config_name, self.cfg = config, CONFIGS[config]
        self.num_beams = _positive_int(num_beams, "num_beams")
        self.max_new_tokens = _positive_int(max_new_tokens, "max_new_tokens")
        self.temperature = float(temperature)
        self.embedding = _choice(embedding, EMBEDDINGS, "embedding")
        self.crop = _choice(crop, CROPS, "crop")
        self.channels = _choice(channels, CHANNELS, "channels")
        self.normalize_prompt = bool(normalize_prompt)
        self.text_encoder_name = self._text_encoder_choice(text_encoder)
        self.seed = seed
        from . import checkpoint as ckpt
        from .decoding import PrefixLM

        # the checkpoint first: without it nothing else matters, and its error says where to get it
        self.checkpoint = ckpt.resolve(checkpoint, config)
        path, self.checkpoint_sha256 = (ckpt.local_file(self.checkpoint, config, checkpoint_sha256)
                                        if self.checkpoint is not None else (None, None))
        self.tokenizer_names = {"text": text_tokenizer, "decoder": decoder_tokenizer}
        self._load_tokenizers()
        self.network = self._build(path, trust_checkpoint).eval()
        self.lm = PrefixLM(self.network.gpt)
        self.device = "cpu"
        self._text_encoder = None
        seconds = self.cfg.audio.clip_samples / self.cfg.audio.sample_rate
        # the runner cuts long clips to their first `seconds`; a centre crop needs them whole
        self.audio_format = AudioFormat(sample_rate=self.cfg.audio.sample_rate,
                                        max_seconds=seconds if self.crop == "start" else None)

    # -- construction -------------------------------------------------------------------------
    def _text_encoder_choice(self, value: str | None) -> str:
        if value is None:
            return "clip" if self.cfg.prompt_encoder == "clip" else "gpt2"
        kind = value.split(":", 1)[0]
        _choice(kind, ("clip", "gpt2", "sentence-transformers"), "text_encoder")
        if kind == "clip" and self.cfg.prompt_encoder != "clip":
            raise UsageError(f"pengi: config {self.config_name} has no CLIP text tower; use text_encoder=gpt2 "
                             "or sentence-transformers[:NAME]")
        return value

    def _load_tokenizers(self) -> None:
        from .text import PromptTokenizer, load_tokenizer, stop_token_id

        self.decoder_tokenizer = load_tokenizer(self.tokenizer_names["decoder"], "GPT-2", "decoder_tokenizer")
        self.stop_token = stop_token_id(self.decoder_tokenizer)
        if self.cfg.prompt_encoder == "clip":
            prompt_tok = load_tokenizer(self.tokenizer_names["text"], "CLIP", "text_tokenizer")
        else:
            prompt_tok = self.decoder_tokenizer
        self.prompt_tokenizer = PromptTokenizer(self.cfg.prompt_encoder, prompt_tok, self.cfg.prompt_tokens)

    def _build(self, path, trust: bool) -> PengiNetwork:
        from . import checkpoint as ckpt
        from .network import PengiNetwork

        if path is None:
            return build_network(self.cfg, self.seed)
        official = self.checkpoint in ckpt.RELEASED_CHECKPOINTS.values()
        state = ckpt.read_state_dict(path, trusted=trust or official)
        network = PengiNetwork(self.cfg)
        ckpt.load_into(network, state)
        return network

    def config(self) -> dict:
        return {
            "config": self.config_name, "architecture": self.cfg.as_dict(),
            "checkpoint": self.checkpoint or "random", "checkpoint_sha256": self.checkpoint_sha256,
            "seed": self.seed if self.checkpoint is None else None,
            "tokenizers": dict(self.tokenizer_names), "num_beams": self.num_beams,
            "max_new_tokens": self.max_new_tokens, "temperature": self.temperature, "embedding": self.embedding,
            "text_encoder": self.text_encoder_name, "crop": self.crop, "channels": self.channels,
            "normalize_prompt": self.normalize_prompt, "score": "sum of log p(text tokens + stop token)",
        }

    def to(self, device: str) -> "PengiModel":
        self.network.to(device)
        self.device = device
        return self

    # -- shared steps -------------------------------------------------------------------------
    def _waves(self, clips: Sequence[Clip]) -> torch.Tensor:
        import torch

        samples = self.cfg.audio.clip_samples
        waves = np.stack([fit_to_clip(c.waveform, samples, self.crop, self.channels) for c in clips])
        dtype = next(self.network.parameters()).dtype  # float32 unless the network was converted
        return torch.from_numpy(waves).to(self.device, dtype)

    def _audio(self, clips: Sequence[Clip]) -> tuple[torch.Tensor, torch.Tensor]:
        """(encoder latents, projections) of the clips, in chunks of AUDIO_BATCH."""
        import torch

        with torch.no_grad():
            parts = [self.network.encode_audio(self._waves(clips[i : i + AUDIO_BATCH]))
                     for i in range(0, len(clips), AUDIO_BATCH)]
            return torch.cat([p[0] for p in parts]), torch.cat([p[1] for p in parts])

    def _prefix(self, clips: Sequence[Clip], prompts: Sequence[str]) -> torch.Tensor:
        """The language model's prefix for each (clip, prompt): [N, 2k, n_embd]."""
        import torch

        with torch.no_grad():
            _, audio = self._audio(clips)
            ids, mask = self.prompt_tokenizer(prompts)
            prompt = self.network.encode_prompt(ids.to(self.device), mask.to(self.device),
                                                self.prompt_tokenizer.eos_token_id)
            return self.network.prefix(audio, prompt, self.normalize_prompt)

    def _text(self, tokens: list[int]) -> str:
        # the stop token is a space: stripping removes it
        return self.decoder_tokenizer.decode(tokens).strip()

    def candidate_tokens(self, text: str) -> list[int]:
        """What beam search would have to emit to output ``text``: its tokens, then the stop token."""
        from .text import target_tokens

        return target_tokens(self.decoder_tokenizer, text, self.stop_token,
                             self.cfg.gpt2.n_positions - self.cfg.prefix_tokens)

    # -- the protocol -------------------------------------------------------------------------
    def generation_settings(self, config: GenerationConfig) -> dict:
        pick = lambda given, own: own if given is None else given  # noqa: E731
        return {"num_beams": pick(config.num_beams, self.num_beams),
                "max_new_tokens": pick(config.max_new_tokens, self.max_new_tokens),
                "temperature": pick(config.temperature, self.temperature), "search": "beam search"}

    def generate(self, requests: Sequence[GenerateRequest], config: GenerationConfig) -> list[str]:
        settings = self.generation_settings(config)
        beams, tokens, temperature = settings["num_beams"], settings["max_new_tokens"], settings["temperature"]
        from .decoding import beam_search

        if not requests:
            return []
        prefix = self._prefix([r.clip for r in requests], [r.prompt for r in requests])
        results = beam_search(self.lm, prefix, beams, tokens, temperature, self.stop_token)
        return [self._text(beams_[0].tokens) for beams_ in results]

    def score(self, requests: Sequence[ScoreRequest]) -> list[np.ndarray]:
        import torch

        from .decoding import shared_prefix_scores

        if not requests:
            return []
        with torch.no_grad():
            cache, last = self.lm.run_prefix(self._prefix([r.clip for r in requests], [r.prompt for r in requests]))
            out = []
            for i, request in enumerate(requests):
                if not request.candidates:
                    out.append(np.zeros(0))
                    continue
                candidates = [self.candidate_tokens(c) for c in request.candidates]
                scores = shared_prefix_scores(self.lm, cache.select(slice(i, i + 1)), last[i], candidates)
                out.append(scores.double().cpu().numpy())
        return out

    def embed(self, clips: Sequence[Clip]) -> np.ndarray:
        if not clips:
            width = self.cfg.audio.num_features if self.embedding == "latent" else self.cfg.d_proj
            return np.zeros((0, width), np.float32)
        latent, projection = self._audio(clips)
        return (latent if self.embedding == "latent" else projection).float().cpu().numpy()

    def embed_text(self, texts: Sequence[str]) -> np.ndarray:
        if self._text_encoder is None:
            self._text_encoder = self._make_text_encoder()
        return self._text_encoder(list(texts))

    def _make_text_encoder(self):
        from .text import clip_text_encoder, gpt2_text_encoder, sentence_transformer_encoder

        kind, _, arg = self.text_encoder_name.partition(":")
        device = lambda: self.device  # noqa: E731 - follows later .to() calls
        if kind == "clip":
            return clip_text_encoder(self.network, self.prompt_tokenizer, device)
        if kind == "gpt2":
            return gpt2_text_encoder(self.network, self.decoder_tokenizer, device)
        return sentence_transformer_encoder(arg or None)

