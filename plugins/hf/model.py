"""transformers' audio chat models behind the alm-bench protocol: the ``hf`` model.

- ``generate``: a user turn holding the request's clips (as audio content parts) and texts, in
  order, through the processor's chat template with the generation prompt; the model's own
  ``generate`` continues it, and the new tokens are decoded without special tokens.
- ``score``: the log-likelihood of each candidate as the assistant's whole answer after that same
  prompt: the sum of the log-probabilities of its tokens followed by the model's first stop token
  (so a label is not also rewarded for starting a longer answer).  The prompt (audio included) runs
  once per request; every candidate continues from its KV cache.
- ``embed``: the audio as the language model receives it (encoder and projector), averaged over the
  frames that hold the clip (the frames of the processor's padding are left out).

torch and transformers are imported when a model is built, so ``alm-bench list models`` stays fast.
"""

from __future__ import annotations

import copy
import hashlib
import inspect
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from alm_bench import AudioFormat, Capabilities, Clip, GenerateRequest, GenerationConfig, Model, ScoreRequest
from alm_bench.errors import UsageError
from alm_bench.quiet import quiet_transformers

from .adapters import adapter

VERSION = "0.1.0"
DTYPES = ("auto", "float32", "bfloat16", "float16")
#: bytes of KV cache and logits per scoring pass: candidates continue the prompt in chunks of rows that fit
SCORE_ROWS_BYTES = 1 << 30


class HFChat(Model):
    """Any transformers audio chat model (Qwen2-Audio, Audio Flamingo 3, GLM-ASR, ...)."""

    name = "hf"
    #: the most an architecture offers; each instance narrows it (``interleaved`` depends on the processor)
    capabilities = Capabilities(generate=True, score=True, embed=True, interleaved=True)
    description = "any transformers audio chat model: --model-args checkpoint=HUB_ID_OR_DIR"

    def __init__(self, checkpoint: str | None = None, dtype: str = "auto", device_map: str | None = None,
                 system_prompt: str | None = None) -> None:
        """``checkpoint``: a Hub id or a local directory in transformers format.  ``dtype``: the
        weights' dtype (``auto``: as stored).  ``device_map``: passed to ``from_pretrained``
        (``auto`` spreads a large model over the GPUs; then ``--device`` is ignored).
        ``system_prompt``: the system turn (default: the architecture's, else none)."""
        import torch

        if not checkpoint:
            raise UsageError("hf: no checkpoint; pass --model-args checkpoint=HUB_ID_OR_DIR, "
                             "e.g. checkpoint=Qwen/Qwen2-Audio-7B-Instruct")
        if dtype not in DTYPES:
            raise UsageError(f"hf: dtype={dtype!r} is not one of {', '.join(DTYPES)}")
        self.torch = torch
        self.checkpoint, self.dtype_name, self.device_map = str(checkpoint), dtype, device_map
        self.processor, self.net = _load(self.checkpoint, dtype, device_map)
        self.model_type = self.net.config.model_type
        self.adapter = adapter(self.model_type)
        self.system_prompt = system_prompt if system_prompt is not None else self.adapter.system_prompt
        self.tokenizer = self.processor.tokenizer
        self.features = self.processor.feature_extractor
        self.sample_rate = int(self.features.sampling_rate)
        self.audio_format = AudioFormat(sample_rate=self.sample_rate, max_seconds=_max_seconds(self.processor))
        self.capabilities = Capabilities(generate=True, score=True, embed=True, interleaved=self.adapter.interleaved)
        self.generation = self.net.generation_config
        stops = self.generation.eos_token_id
        stops = stops if isinstance(stops, list) else [stops] if stops is not None else []
        self.stop = stops[0] if stops else self.tokenizer.eos_token_id
        # transformers 5 renamed forward's ``past_key_values`` to ``cache``
        self._cache_arg = "cache" if "cache" in inspect.signature(self.net.forward).parameters else "past_key_values"

    def config(self) -> dict[str, Any]:
        return {"checkpoint": self.checkpoint, "model_type": self.model_type, "dtype": self.dtype_name,
                "system_prompt": self.system_prompt, "alm_bench_hf": VERSION}

    def to(self, device: str) -> "HFChat":
        if self.device_map is None:  # with a device map, from_pretrained placed the weights
            self.net.to(device)
        return self

    # -- the chat prompt, shared by generate and score ---------------------------------------------
    def messages(self, content: Sequence[Clip | str]) -> list[dict]:
        """The conversation for one request: the system turn, then one user turn with the clips as
        audio content parts and the texts as text parts, in the request's order."""
        parts = [{"type": "audio", "audio": np.asarray(c.waveform, dtype=np.float32)} if isinstance(c, Clip)
                 else {"type": "text", "text": c} for c in content if not (isinstance(c, str) and not c)]
        system = [{"role": "system", "content": self.system_prompt}] if self.system_prompt else []
        return system + [{"role": "user", "content": parts}]

    def inputs(self, conversations: list[list[dict]], generation_prompt: bool = True) -> dict:
        """The processor's tensors for conversations (input ids, attention mask, audio features), on
        the model's device and, for floating point, in its dtype."""
        with quiet_transformers():
            batch = self.processor.apply_chat_template(
                conversations, add_generation_prompt=generation_prompt, tokenize=True, return_dict=True,
                return_tensors="pt", processor_kwargs={"text_kwargs": {"padding": True}})
        dtype = self.net.dtype
        return {k: v.to(self.net.device, dtype=dtype if v.is_floating_point() else None)
                for k, v in batch.items() if k in self._accepted}

    @property
    def _accepted(self) -> set[str]:
        names = set(self.processor.model_input_names)
        return names - set(getattr(self.processor, "unused_input_names", ()) or ())

    # -- generate -----------------------------------------------------------------------------------
    def generation_kwargs(self, config: GenerationConfig) -> dict[str, Any]:
        """The run's settings where it sets them; the checkpoint's ``generation_config`` elsewhere."""
        kwargs: dict[str, Any] = {}
        if config.num_beams is not None:
            kwargs["num_beams"] = config.num_beams
        if config.max_new_tokens is not None:
            kwargs["max_new_tokens"] = config.max_new_tokens
        elif self.generation.max_new_tokens is None and self.generation.max_length in (None, 20):
            kwargs["max_new_tokens"] = 256  # transformers' own default (20 tokens in all) cuts answers short
        if config.temperature is not None and config.temperature > 0:
            kwargs.update(do_sample=True, temperature=config.temperature)
        elif config.temperature is not None:
            kwargs["do_sample"] = False  # temperature 0: greedy (or beam search)
        return kwargs

    def generation_settings(self, config: GenerationConfig) -> dict[str, Any]:
        """What ``generate`` decodes with: the run's settings over the checkpoint's generation_config."""
        kwargs = self.generation_kwargs(config)
        names = ("num_beams", "max_new_tokens", "do_sample", "temperature", "top_p", "top_k", "repetition_penalty")
        settings = {name: kwargs.get(name, getattr(self.generation, name, None)) for name in names}
        if settings["max_new_tokens"] is None:
            settings["max_length"] = self.generation.max_length
        # transformers leaves unset fields None and decodes them as 1 beam, no sampling
        settings["num_beams"], settings["do_sample"] = settings["num_beams"] or 1, bool(settings["do_sample"])
        search = "greedy" if settings["num_beams"] == 1 else "beam search"
        settings["search"] = "sampling" if settings["do_sample"] else search
        return settings

    def generate(self, requests: Sequence[GenerateRequest], config: GenerationConfig) -> list[str]:
        kwargs = self.generation_kwargs(config)
        texts = []
        for request in requests:  # one at a time: no padding, so a text never depends on its batch
            inputs = self.inputs([self.messages(request.content)])
            with self.torch.inference_mode(), self.torch.random.fork_rng(devices=self._rng_devices()), \
                    quiet_transformers():
                self.torch.manual_seed(_seed(request))  # sampling (the run's or the checkpoint's) is repeatable
                tokens = self.net.generate(**inputs, **kwargs)
            texts.append(self.tokenizer.decode(tokens[0, inputs["input_ids"].shape[1]:],
                                               skip_special_tokens=True).strip())
        return texts

    def _rng_devices(self) -> list:
        return [self.net.device] if self.net.device.type == "cuda" else []

    # -- score --------------------------------------------------------------------------------------
    def candidate_tokens(self, candidate: str) -> list[int]:
        """A candidate's tokens as the assistant's answer: its text, then the stop token."""
        return self.tokenizer.encode(candidate, add_special_tokens=False) + [self.stop]

    def score(self, requests: Sequence[ScoreRequest]) -> list[np.ndarray]:
        return [self._score_one(r) for r in requests]

    def _score_one(self, request: ScoreRequest) -> np.ndarray:
        torch = self.torch
        if not request.candidates:
            return np.zeros(0)
        tokens = [self.candidate_tokens(c) for c in request.candidates]
        inputs = self.inputs([self.messages((request.clip, request.prompt))])
        with torch.inference_mode():
            out = self.net(**inputs, use_cache=True)
            first = torch.log_softmax(out.logits[0, -1].float(), dim=-1)
            scores = np.array([float(first[t[0]]) for t in tokens])
            cache = _cache(out)
            longer = [i for i, t in enumerate(tokens) if len(t) > 1]
            # a row's cache, and its logits over the vocabulary (float32, then their log-softmax)
            row_bytes = _cache_bytes(cache) + 8 * max(map(len, tokens)) * out.logits.shape[-1]
            step = max(1, SCORE_ROWS_BYTES // row_bytes)
            for start in range(0, len(longer), step):
                rows = longer[start : start + step]
                scores[rows] += self._continuations(cache, inputs["attention_mask"], [tokens[i] for i in rows],
                                                    last=start + step >= len(longer))
        return scores

    def _continuations(self, cache, mask, tokens: list[list[int]], last: bool) -> np.ndarray:
        """Log-probability of tokens[1:] of each candidate, fed tokens[:-1] after the cached prompt
        (right-padded: the model is causal, so padding never reaches a scored position)."""
        torch = self.torch
        cache = cache if last else copy.deepcopy(cache)  # the last chunk may use up the prompt's cache
        cache.batch_repeat_interleave(len(tokens))
        width = max(len(t) for t in tokens) - 1
        inputs = torch.tensor([t[:-1] + [self.stop] * (width - len(t) + 1) for t in tokens], device=self.net.device)
        attention = torch.cat([mask.expand(len(tokens), -1), torch.ones_like(inputs)], dim=1)
        logits = self.net(input_ids=inputs, attention_mask=attention, use_cache=True, **{self._cache_arg: cache}).logits
        logp = torch.log_softmax(logits.float(), dim=-1)
        out = np.zeros(len(tokens))
        for row, t in enumerate(tokens):
            targets = torch.tensor(t[1:], device=self.net.device)
            out[row] = float(logp[row, : len(t) - 1].gather(1, targets[:, None]).sum())
        return out

    # -- embed --------------------------------------------------------------------------------------
    def embed(self, clips: Sequence[Clip]) -> np.ndarray:
        conversations = [[{"role": "user", "content": [{"type": "audio", "audio": np.asarray(c.waveform, np.float32)}]}]
                         for c in clips]
        inputs = self.inputs(conversations, generation_prompt=False)
        with self.torch.inference_mode():
            frames = self.adapter.audio_embeddings(self.net, inputs)
        return self.torch.stack([f.float().mean(dim=0) for f in frames]).cpu().numpy()


def _max_seconds(processor) -> float | None:
    """The longest audio the processor reads: its window (``chunk_length``, Whisper's 30 s), or the
    longer total some processors split into windows (Audio Flamingo 3: ``max_audio_len``)."""
    windowed = getattr(processor, "max_audio_len", None)
    if windowed:
        return float(windowed)
    chunk = getattr(processor.feature_extractor, "chunk_length", None)
    return float(chunk) if chunk else None


def _cache(out):
    return out.cache if getattr(out, "cache", None) is not None else out.past_key_values


def _cache_bytes(cache) -> int:
    """Bytes of one row of a KV cache."""
    tensors = [t for layer in getattr(cache, "layers", []) for t in (layer.keys, layer.values) if t is not None]
    return sum(t[:1].numel() * t.element_size() for t in tensors)


def _load(checkpoint: str, dtype: str, device_map: str | None):
    """Processor and model from a local directory (never the network) or a Hub id; the model class is
    the one the checkpoint's config names, else transformers' multimodal auto class."""
    import transformers
    from transformers import AutoConfig, AutoModelForMultimodalLM, AutoProcessor

    local = Path(checkpoint).expanduser()
    source, offline = (str(local), True) if local.is_dir() else (checkpoint, False)
    try:
        with quiet_transformers():
            config = AutoConfig.from_pretrained(source, local_files_only=offline)
            named = [getattr(transformers, a, None) for a in (config.architectures or [])]
            cls = next((c for c in named if c is not None), AutoModelForMultimodalLM)
            kwargs = {"dtype": dtype, **({"device_map": device_map} if device_map else {})}
            processor = AutoProcessor.from_pretrained(source, local_files_only=offline)
            net = cls.from_pretrained(source, local_files_only=offline, **kwargs).eval()
    except (OSError, ValueError) as exc:
        reason = (str(exc).strip().splitlines() or [type(exc).__name__])[0].split(". ")[0].rstrip(".")
        if offline:
            problem = f"{local} is not an audio chat model in transformers format ({reason})"
        elif local.is_absolute() or checkpoint.startswith((".", "~")) or checkpoint.count("/") > 1:
            problem = f"there is no directory {checkpoint}"
        else:
            problem = f"cannot get {checkpoint!r} from the Hugging Face Hub (offline, or no such model: {reason})"
        raise UsageError(f"hf: {problem}; pass --model-args checkpoint=DIR with a local copy (config, weights, "
                         "processor and tokenizer files saved with save_pretrained), or a Hub id that is online "
                         "or already in the Hub cache") from None
    if getattr(processor, "feature_extractor", None) is None or not hasattr(processor, "apply_chat_template"):
        raise UsageError(f"hf: {checkpoint} has no audio processor with a chat template; the hf model needs an "
                         "audio chat model (e.g. Qwen/Qwen2-Audio-7B-Instruct)")
    return processor, net


def _seed(request: GenerateRequest) -> int:
    digest = hashlib.sha256()
    for part in request.content:
        digest.update(np.ascontiguousarray(part.waveform, np.float32).tobytes() if isinstance(part, Clip)
                      else part.encode("utf-8"))
        digest.update(b"\x00")
    return int.from_bytes(digest.digest()[:4], "little")
