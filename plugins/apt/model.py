"""The alm-bench ``apt`` model: APT's network around a frozen causal language model."""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING, Sequence

import numpy as np

from alm_bench import AudioFormat, Capabilities, Clip, GenerateRequest, GenerationConfig, Model, ScoreRequest
from alm_bench.errors import UsageError

from .config import CONFIGS, AptConfig

# torch, transformers and the network load when a model is built, not when the plugin is listed
# (`alm-bench list models` imports every plugin)
if TYPE_CHECKING:
    import torch

    from .network import AptNetwork

#: the public code's decoding (``LAMVicunaInstruct.generate``); from embeddings its max_length=256
#: counts generated tokens only
DECODING = {"num_beams": 5, "max_new_tokens": 256, "min_length": 1, "top_p": 0.9, "repetition_penalty": 1.5,
            "length_penalty": 1.0, "temperature": 1.0}
GENERATE_BATCH = 8


def _no_grad(method):
    @functools.wraps(method)
    def wrapper(*args, **kwargs):
        import torch

        with torch.no_grad():
            return method(*args, **kwargs)
    return wrapper


def build_network(cfg: AptConfig, llm_width: int, seed: int = 0) -> AptNetwork:
    """A seeded random-weight network (tests, the start of training)."""
    import torch

    from .network import AptNetwork

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return AptNetwork(cfg, llm_width).eval()


class AptModel(Model):
    """APT (Liang et al., 2023): Audio-MAE + Q-Former reading the instruction -> frozen causal LM;
    several clips interleaved with text.  See ``plugins/apt/README.md``."""

    name = "apt"
    capabilities = Capabilities(generate=True, interleaved=True, score=True, embed=True, text_encoder=True)
    description = "APT (Liang et al., 2023): Audio-MAE + Q-Former -> frozen causal LM, interleaved clips; bring weights"

    def __init__(self, checkpoint: str | None = None, llm: str | None = None, config: str = "base",
                 audio_encoder: str | None = None, qformer_tokenizer: str = "bert-base-uncased",
                 num_beams: int = 5, max_new_tokens: int = 256, min_length: int = 1, top_p: float = 0.9,
                 repetition_penalty: float = 1.5, length_penalty: float = 1.0, sample: bool = False,
                 temperature: float = 1.0, seed: int = 0, checkpoint_sha256: str | None = None,
                 trust_checkpoint: bool = False) -> None:
        if config not in CONFIGS:
            raise UsageError(f"apt: unknown config {config!r}; known: {', '.join(sorted(CONFIGS))}")
        from . import checkpoint as ckpt
        from .llm import load_llm, word_start

        if checkpoint is None:
            raise UsageError(f"apt: {ckpt.HOW}")
        if llm is None:
            raise UsageError("apt: pass --model-args llm=HF_ID_OR_PATH, the frozen language model "
                             "(the paper: lmsys/vicuna-7b-v1.1)")
        self.config_name, self.cfg, self.seed = config, CONFIGS[config], seed
        self.decoding = {"num_beams": int(num_beams), "max_new_tokens": int(max_new_tokens),
                         "min_length": int(min_length), "top_p": float(top_p),
                         "repetition_penalty": float(repetition_penalty), "length_penalty": float(length_penalty),
                         "temperature": float(temperature)}
        self.sample = bool(sample)
        self.checkpoint = None if checkpoint == ckpt.RANDOM else str(checkpoint)
        path, self.checkpoint_sha256 = (ckpt.local_file(self.checkpoint, checkpoint_sha256)
                                        if self.checkpoint else (None, None))
        self.llm_name, self.qformer_tokenizer_name = llm, qformer_tokenizer
        self.llm, self.tokenizer = load_llm(llm)
        if self.tokenizer.pad_token is None:  # padding is only ever masked out
            self.tokenizer.pad_token = self.tokenizer.eos_token
        self._word_start = word_start(self.tokenizer)
        self.qformer_tokenizer = self.tokenizer if qformer_tokenizer == "llm" else self._load_qformer_tokenizer()
        if len(self.qformer_tokenizer) > self.cfg.qformer.vocab_size:
            raise UsageError(f"apt: the Q-Former tokenizer has {len(self.qformer_tokenizer)} tokens but config "
                             f"{config} embeds {self.cfg.qformer.vocab_size}; pass the matching config= or qformer_tokenizer=")
        self.network = self._build(path, audio_encoder, trust_checkpoint)
        self.audio_encoder_name = audio_encoder
        self.device = "cpu"
        self.audio_format = AudioFormat(sample_rate=self.cfg.encoder.sample_rate,
                                        min_seconds=self.cfg.encoder.frame_length_ms / 1000)

    # -- construction -------------------------------------------------------------------------
    def _load_qformer_tokenizer(self):
        from transformers import AutoTokenizer

        try:
            tokenizer = AutoTokenizer.from_pretrained(self.qformer_tokenizer_name, truncation_side="left")
        except (OSError, ValueError) as exc:
            raise UsageError(f"apt: cannot load the Q-Former tokenizer {self.qformer_tokenizer_name!r} "
                             f"({str(exc).splitlines()[0]}); pass qformer_tokenizer=PATH or =llm") from None
        tokenizer.add_special_tokens({"bos_token": "[DEC]"})  # as LAVIS's init_tokenizer
        return tokenizer

    def _build(self, path, audio_encoder: str | None, trust: bool) -> AptNetwork:
        from . import checkpoint as ckpt

        network = build_network(self.cfg, self.llm.config.hidden_size, self.seed)
        if path is not None:
            has_encoder = ckpt.load_into(network, ckpt.read_state_dict(path, trust))
            if not has_encoder and audio_encoder is None:
                raise UsageError("apt: the checkpoint holds no Audio-MAE weights (LAVIS saves only the trained "
                                 "parts); pass --model-args audio_encoder=PATH_OR_URL of the Audio-MAE checkpoint")
        if audio_encoder is not None:
            mae_path, _ = ckpt.local_file(audio_encoder)
            ckpt.load_audio_mae(network, ckpt.read_state_dict(mae_path, trust))
        return network.eval()

    def config(self) -> dict:
        return {
            "config": self.config_name, "architecture": self.cfg.as_dict(),
            "checkpoint": self.checkpoint or "random", "checkpoint_sha256": self.checkpoint_sha256,
            "seed": self.seed if self.checkpoint is None else None, "llm": self.llm_name,
            "audio_encoder": self.audio_encoder_name, "qformer_tokenizer": self.qformer_tokenizer_name,
            "decoding": dict(self.decoding), "sample": self.sample,
            "score": "sum of log p(' ' + text tokens + eos) after [BOS] <AUDIO> audio prompt",
        }

    def to(self, device: str) -> "AptModel":
        self.network.to(device)
        self.llm.to(device)
        self.device = device
        return self

    # -- building the language model's input -------------------------------------------------
    def _llm_ids(self, text: str) -> list[int]:
        text = text.strip()
        ids = self.tokenizer(self._word_start + text, add_special_tokens=False)["input_ids"] if text else []
        return ids[-self.cfg.max_text_tokens:]  # LAVIS truncates instructions on the left

    def _qformer_text(self, text: str) -> tuple[torch.Tensor, torch.Tensor]:
        enc = self.qformer_tokenizer(text, truncation=True, max_length=self.cfg.max_text_tokens, return_tensors="pt")
        return enc["input_ids"].to(self.device), enc["attention_mask"].to(self.device)

    @property
    def bos_id(self) -> int:
        return self.tokenizer.bos_token_id if self.tokenizer.bos_token_id is not None else self.tokenizer.eos_token_id

    def _embed_ids(self, ids: list[int]) -> torch.Tensor:
        import torch

        return self.llm.get_input_embeddings()(torch.tensor(ids, dtype=torch.long, device=self.device))

    def _sequence(self, content: Sequence, audio: dict[str, torch.Tensor]) -> torch.Tensor:
        """``[BOS] t0 <AUDIO> a1 t1 ... <AUDIO> aN tN`` as embeddings [L, D] (the paper's eq. 6); each
        clip's queries read the text that follows it, as ``lam_vicuna_instruct`` does.  Differentiable:
        training builds its inputs here too."""
        import torch

        parts = [self._embed_ids([self.bos_id])]
        for i, item in enumerate(content):
            if isinstance(item, Clip):
                following = content[i + 1] if i + 1 < len(content) and isinstance(content[i + 1], str) else ""
                ids, mask = self._qformer_text(following)
                parts.append(self.network.audio_tokens(audio[item.sha], ids, mask))
            elif item:
                parts.append(self._embed_ids(self._llm_ids(item)))
        return torch.cat(parts)

    @_no_grad
    def _encode(self, clips: Sequence[Clip]) -> dict[str, torch.Tensor]:
        """Each distinct clip's ``ln_audio`` patch embeddings, once per call."""
        import torch

        out = {}
        for clip in clips:
            if clip.sha not in out:
                out[clip.sha] = self.network.encode_audio(torch.from_numpy(np.asarray(clip.waveform)))[0]
        return out

    def _left_padded(self, sequences: list[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        import torch

        longest = max(len(s) for s in sequences)
        width = sequences[0].shape[1]
        embeds = torch.zeros(len(sequences), longest, width, dtype=sequences[0].dtype, device=self.device)
        mask = torch.zeros(len(sequences), longest, dtype=torch.long, device=self.device)
        for i, s in enumerate(sequences):
            embeds[i, longest - len(s):], mask[i, longest - len(s):] = s, 1
        return embeds, mask

    # -- the protocol -------------------------------------------------------------------------
    def _generation_kwargs(self, config: GenerationConfig) -> dict:
        d = dict(self.decoding)
        if config.num_beams is not None:
            d["num_beams"] = config.num_beams
        if config.max_new_tokens is not None:
            d["max_new_tokens"] = config.max_new_tokens
        if config.temperature is not None:
            d["temperature"] = config.temperature
        sample = self.sample
        kwargs = {k: d[k] for k in ("num_beams", "max_new_tokens", "min_length", "repetition_penalty", "length_penalty")}
        kwargs["min_new_tokens"] = kwargs.pop("min_length")
        if kwargs["repetition_penalty"] == 1.0:  # none; transformers warns when given one with embeddings
            del kwargs["repetition_penalty"]
        if sample:  # nucleus sampling, as the public code's use_nucleus_sampling=True
            kwargs.update(do_sample=True, top_p=d["top_p"], temperature=d["temperature"])
        else:
            kwargs.update(do_sample=False, top_p=None, top_k=None, temperature=None)
        pad = self.tokenizer.pad_token_id if self.tokenizer.pad_token_id is not None else self.tokenizer.eos_token_id
        return {**kwargs, "pad_token_id": pad, "eos_token_id": self.tokenizer.eos_token_id}

    @_no_grad
    def generate(self, requests: Sequence[GenerateRequest], config: GenerationConfig) -> list[str]:
        kwargs = self._generation_kwargs(config)
        texts: list[str] = []
        for start in range(0, len(requests), GENERATE_BATCH):
            chunk = requests[start : start + GENERATE_BATCH]
            audio = self._encode([c for r in chunk for c in r.clips])
            embeds, mask = self._left_padded([self._sequence(r.content, audio) for r in chunk])
            out = self.llm.generate(inputs_embeds=embeds, attention_mask=mask, **kwargs)
            texts += [t.strip() for t in self.tokenizer.batch_decode(out, skip_special_tokens=True)]
        return texts

    def candidate_tokens(self, text: str) -> list[int]:
        """What generation would emit for ``text`` after the prompt: its tokens (after a space), then eos."""
        return self.tokenizer(" " + text.strip(), add_special_tokens=False)["input_ids"] + [self.tokenizer.eos_token_id]

    @_no_grad
    def score(self, requests: Sequence[ScoreRequest]) -> list[np.ndarray]:
        out = []
        for request in requests:
            if not request.candidates:
                out.append(np.zeros(0))
                continue
            audio = self._encode([request.clip])
            prefix = self._sequence((request.clip, request.prompt), audio)[None]
            candidates = [self.candidate_tokens(c) for c in request.candidates]
            from .llm import shared_prefix_scores

            out.append(shared_prefix_scores(self.llm, prefix, candidates).double().cpu().numpy())
        return out

    @_no_grad
    def embed(self, clips: Sequence[Clip]) -> np.ndarray:
        """Audio-MAE's pooled embedding (``fc_norm`` of the mean patch, its linear-probe feature),
        averaged over a long clip's segments."""
        import torch

        if not clips:
            return np.zeros((0, self.cfg.encoder.hidden), np.float32)
        rows = [self.network.encode_audio(torch.from_numpy(np.asarray(c.waveform)))[1].mean(0) for c in clips]
        return torch.stack(rows).float().cpu().numpy()

    @_no_grad
    def embed_text(self, texts: Sequence[str]) -> np.ndarray:
        """The Q-Former's text side (the paper matches generated answers to class names with it)."""
        if not texts:
            return np.zeros((0, self.cfg.qformer.hidden), np.float32)
        enc = self.qformer_tokenizer(list(texts), padding=True, truncation=True, max_length=self.cfg.max_text_tokens,
                                     return_tensors="pt")
        return self.network.text_embedding(enc["input_ids"].to(self.device),
                                           enc["attention_mask"].to(self.device)).float().cpu().numpy()
