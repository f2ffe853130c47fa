"""Whisper (Radford et al., 2022) behind the alm-bench protocol.

- ``generate``: Whisper's transcription of the clip.  The request's prompt is Whisper's *previous
  text*: ``<|startofprev|> prompt <|startoftranscript|> ... <|notimestamps|>``, the way OpenAI's
  ``transcribe(initial_prompt=...)`` conditions the decoder.  An empty prompt gives no previous text.
- ``score``: the log-likelihood of each candidate continuing that same decoder prefix, i.e. of the
  candidate being the start of the transcript: the sum of its tokens' log-probabilities.
- ``embed``: the encoder's last hidden states, mean-pooled over the frames that hold the clip
  (Whisper pads every clip to 30 s; the frames of that padding are left out).

torch and transformers are imported when a model is built, so ``alm-bench list models`` stays fast.
"""

from __future__ import annotations

import copy
import hashlib
import math
from collections import OrderedDict
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from alm_bench import AudioFormat, Capabilities, Clip, GenerateRequest, GenerationConfig, Model, ScoreRequest
from alm_bench.errors import UsageError
from alm_bench.quiet import quiet_transformers

SAMPLE_RATE = 16_000
#: audio samples per encoder frame: the 10 ms hop of the log-mel frames, then the encoder's stride-2 convolution
SAMPLES_PER_FRAME = 320
#: clips per encoder call
ENCODER_BATCH = 16
#: bytes of decoder cache per scoring call: candidates are scored in chunks of rows that fit
SCORE_ROWS_BYTES = 256 << 20
VERSION = "0.1.0"


def audio_frames(num_samples: int, max_frames: int = 1500) -> int:
    """How many encoder frames hold audio for a clip of ``num_samples`` samples at 16 kHz: the
    frames from there to ``max_frames`` (30 s) encode only Whisper's zero padding."""
    return min(max(1, math.ceil(num_samples / SAMPLES_PER_FRAME)), max_frames)


def candidate_text(candidate: str) -> str:
    """A candidate as Whisper writes it at the start of a transcript: after the leading space its
    tokenizer puts before every word (``"seven"`` -> ``" seven"``; a candidate that already starts
    with whitespace, or the empty one, is kept as given).  Nothing else is changed: no casing, no
    punctuation."""
    return candidate if not candidate or candidate[0].isspace() else " " + candidate


class Whisper(Model):
    """OpenAI Whisper (any Hugging Face checkpoint): transcribes, scores texts, embeds the audio."""

    name = "whisper"
    capabilities = Capabilities(generate=True, embed=True, score=True)
    audio_format = AudioFormat(sample_rate=SAMPLE_RATE, max_seconds=30.0)

    def __init__(self, checkpoint: str = "openai/whisper-tiny.en", language: str = "en",
                 encoder_cache_mb: int = 1024) -> None:
        """``checkpoint``: a Hub id or a local directory in transformers format.  ``language``: the
        language token of multilingual checkpoints (English-only ones have none).
        ``encoder_cache_mb``: encoder states kept in memory, so a run that generates, scores and
        embeds the same clips encodes each once (0: keep none); it does not change any output."""
        import torch
        from transformers import AutoProcessor, WhisperForConditionalGeneration

        self.checkpoint = str(checkpoint)
        self.processor, self.net = _load(self.checkpoint, AutoProcessor, WhisperForConditionalGeneration)
        self.net = self.net.float().eval()  # fp32: fp16 weights are widened exactly
        self.torch = torch
        self.device = "cpu"
        self.tokenizer = self.processor.tokenizer
        config, generation = self.net.config, self.net.generation_config
        multilingual = getattr(generation, "is_multilingual", None)
        self.multilingual = bool(config.vocab_size >= 51865 if multilingual is None else multilingual)
        self.language = language if self.multilingual else None
        self.max_positions = config.max_target_positions
        self.max_frames = config.max_source_positions
        ids = self.tokenizer.convert_tokens_to_ids
        self.startofprev = ids("<|startofprev|>")
        self.prefix = [config.decoder_start_token_id]  # <|startoftranscript|>
        if self.multilingual:
            language_id = ids(f"<|{self.language}|>")
            if language_id in (None, self.tokenizer.unk_token_id):
                raise UsageError(f"whisper: {self.checkpoint} has no language {self.language!r}; pass a language "
                                 "code it knows, e.g. --model-args language=en")
            self.prefix += [language_id, ids("<|transcribe|>")]
        self.prefix += [ids("<|notimestamps|>")]
        self.default_beams = getattr(generation, "num_beams", None) or 1
        self.default_max_new_tokens = getattr(generation, "max_new_tokens", None) or 100
        self.cache_budget = max(0, int(encoder_cache_mb)) << 20
        self._states: OrderedDict[str, Any] = OrderedDict()
        self._cached_bytes = 0

    def config(self):
        return {"checkpoint": self.checkpoint, "language": self.language, "alm_bench_whisper": VERSION}

    def to(self, device: str) -> "Whisper":
        self.net.to(device)
        self.device = device
        self._states.clear()
        self._cached_bytes = 0
        return self

    # -- the encoder, run once per clip -----------------------------------------------------------
    def _encode(self, clips: Sequence[Clip]) -> list:
        """Encoder states ``[frames, d]`` for each clip (all 1500 frames, padding included)."""
        keys = [_digest(c.waveform) for c in clips]
        missing = list(dict.fromkeys(k for k in keys if k not in self._states))
        fresh: dict[str, Any] = {}
        if missing:
            waves = {k: np.asarray(c.waveform, dtype=np.float32) for k, c in zip(keys, clips)}
            for start in range(0, len(missing), ENCODER_BATCH):
                chunk = missing[start : start + ENCODER_BATCH]
                features = self.processor.feature_extractor(
                    [waves[k] for k in chunk], sampling_rate=SAMPLE_RATE, return_tensors="pt").input_features
                with self.torch.inference_mode():
                    states = self.net.model.encoder(features.to(self.device)).last_hidden_state
                fresh.update(zip(chunk, states))
        out = [self._states[k] if k in self._states else fresh[k] for k in keys]
        for key, states in fresh.items():
            self._remember(key, states)
        for key in keys:
            if key in self._states:
                self._states.move_to_end(key)
        return out

    def _remember(self, key: str, states) -> None:
        size = states.numel() * states.element_size()
        if size > self.cache_budget:
            return
        self._states[key] = states.clone()  # not a view: keeping it must not keep its whole batch alive
        self._cached_bytes += size
        while self._cached_bytes > self.cache_budget:
            _, old = self._states.popitem(last=False)
            self._cached_bytes -= old.numel() * old.element_size()

    # -- the decoder prefix, shared by generate and score ----------------------------------------
    def _prompt_ids(self, prompt: str) -> list[int]:
        """``<|startofprev|>`` and the prompt's last tokens (at most half the decoder's context,
        as OpenAI's decoding keeps them); nothing for an empty prompt."""
        text = prompt.strip()
        if not text:
            return []
        tokens = self.tokenizer.encode(" " + text, add_special_tokens=False)
        return [self.startofprev] + tokens[-(self.max_positions // 2 - 1):]

    # -- embed ---------------------------------------------------------------------------------------
    def embed(self, clips):
        states = self._encode(clips)
        pooled = [s[: audio_frames(len(c.waveform), self.max_frames)].mean(dim=0) for c, s in zip(clips, states)]
        return self.torch.stack(pooled).float().cpu().numpy()

    # -- generate ------------------------------------------------------------------------------------
    def generation_settings(self, config: GenerationConfig) -> dict[str, Any]:
        """What ``generate`` decodes with: the checkpoint's defaults where the run set nothing."""
        temperature = config.temperature or 0.0
        beams = config.num_beams if config.num_beams is not None else self.default_beams
        search = "sampling" if temperature > 0 else "greedy" if beams == 1 else "beam search"
        return {"num_beams": beams, "temperature": temperature, "search": search,
                "max_new_tokens": (config.max_new_tokens if config.max_new_tokens is not None
                                   else self.default_max_new_tokens)}

    def generate(self, requests: Sequence[GenerateRequest], config: GenerationConfig) -> list[str]:
        from transformers.modeling_outputs import BaseModelOutput

        states = self._encode([r.clip for r in requests])
        beams = config.num_beams if config.num_beams is not None else self.default_beams
        temperature = config.temperature or 0.0
        prompts = [self._prompt_ids(r.prompt) for r in requests]
        # sampling draws from one seeded stream per request, so a text never depends on its batch
        groups: dict[Any, list[int]] = {}
        for i, prompt in enumerate(prompts):
            groups.setdefault((tuple(prompt), i if temperature > 0 else None), []).append(i)
        texts: list[str] = [""] * len(requests)
        for (prompt, _), rows in groups.items():
            room = self.max_positions - len(prompt) - len(self.prefix)
            wanted = config.max_new_tokens if config.max_new_tokens is not None else self.default_max_new_tokens
            kwargs: dict[str, Any] = {"num_beams": beams, "max_new_tokens": max(1, min(wanted, room))}
            if prompt:
                kwargs["prompt_ids"] = self.torch.tensor(prompt, device=self.device)
            if self.multilingual:
                kwargs.update(language=self.language, task="transcribe")
            if temperature > 0:
                kwargs.update(do_sample=True, temperature=temperature)
            encoded = BaseModelOutput(last_hidden_state=self.torch.stack([states[i] for i in rows]))
            with self.torch.inference_mode(), self.torch.random.fork_rng(devices=[]), quiet_transformers(), \
                    _one_thread(self.torch):
                if temperature > 0:
                    self.torch.manual_seed(_seed(requests[rows[0]], prompt))
                sequences = self.net.generate(encoder_outputs=encoded, **kwargs)
            for i, tokens in zip(rows, sequences):
                texts[i] = self._text(tokens.tolist(), prompt)
        return texts

    def _text(self, tokens: list[int], prompt: tuple[int, ...]) -> str:
        if prompt and tokens[: len(prompt)] == list(prompt):  # some transformers versions return the prompt too
            tokens = tokens[len(prompt):]
        return self.tokenizer.decode(tokens, skip_special_tokens=True).strip()

    # -- score ---------------------------------------------------------------------------------------
    def score(self, requests: Sequence[ScoreRequest]) -> list[np.ndarray]:
        states = self._encode([r.clip for r in requests])
        return [self._score_one(s, r) for s, r in zip(states, requests)]

    def _score_one(self, states, request: ScoreRequest) -> np.ndarray:
        """Sum of log p(token) over each candidate's tokens after ``prompt + prefix``.  One decoder
        pass over the shared prefix computes the clip's cross-attention states once; a candidate of
        one token is read off that pass, longer ones continue from its cache."""
        torch = self.torch
        prefix = self._prompt_ids(request.prompt) + self.prefix
        room = self.max_positions - len(prefix)
        tokens = [self.tokenizer.encode(candidate_text(c), add_special_tokens=False)[:room]
                  for c in request.candidates]
        decoder = self.net.model.decoder
        with torch.inference_mode(), _one_thread(torch):
            out = decoder(input_ids=torch.tensor([prefix], device=self.device), encoder_hidden_states=states[None],
                          use_cache=True)
            first = torch.log_softmax(self.net.proj_out(out.last_hidden_state[0, -1]).float(), dim=-1)
            scores = np.array([float(first[t[0]]) if t else 0.0 for t in tokens])
            longer = [i for i, t in enumerate(tokens) if len(t) > 1]
            per_row = _cache_bytes(out.past_key_values) or 1
            step = max(1, SCORE_ROWS_BYTES // per_row)
            for start in range(0, len(longer), step):
                rows = longer[start : start + step]
                scores[rows] += self._continuations(states, out.past_key_values, [tokens[i] for i in rows],
                                                    last=start + step >= len(longer))
        return scores

    def _continuations(self, states, cache, tokens: list[list[int]], last: bool) -> np.ndarray:
        """Log-probability of tokens[1:] of each candidate, fed tokens[:-1] after the cached prefix
        (right-padded: the decoder is causal, so padding never reaches a scored position)."""
        torch = self.torch
        cache = cache if last else copy.deepcopy(cache)
        cache = _repeat_rows(cache, len(tokens))
        width = max(len(t) for t in tokens) - 1
        inputs = torch.tensor([t[:-1] + [t[0]] * (width - len(t) + 1) for t in tokens], device=self.device)
        shared = states[None].expand(len(tokens), -1, -1)  # a view: the cache already holds its keys and values
        hidden = self.net.model.decoder(input_ids=inputs, encoder_hidden_states=shared, past_key_values=cache,
                                        use_cache=True).last_hidden_state
        logp = torch.log_softmax(self.net.proj_out(hidden).float(), dim=-1)
        out = np.zeros(len(tokens))
        for row, t in enumerate(tokens):
            targets = torch.tensor(t[1:], device=self.device)
            out[row] = float(logp[row, : len(t) - 1].gather(1, targets[:, None]).sum())
        return out


def _load(checkpoint: str, processor_cls, model_cls):
    """Processor and model from a local directory (never the network) or a Hub id; a checkpoint that
    cannot be had is one UsageError line saying what to pass instead."""
    local = Path(checkpoint).expanduser()
    source, offline = (str(local), True) if local.is_dir() else (checkpoint, False)
    try:
        with quiet_transformers():
            return (processor_cls.from_pretrained(source, local_files_only=offline),
                    model_cls.from_pretrained(source, local_files_only=offline))
    except (OSError, ValueError) as exc:
        reason = (str(exc).strip().splitlines() or [type(exc).__name__])[0].split(". ")[0].rstrip(".")
        if offline:
            problem = f"{local} is not a Whisper checkpoint in transformers format ({reason})"
        elif local.is_absolute() or checkpoint.startswith((".", "~")) or checkpoint.count("/") > 1:
            problem = f"there is no directory {checkpoint}"
        else:
            problem = f"cannot get {checkpoint!r} from the Hugging Face Hub (offline, or no such model: {reason})"
    raise UsageError(f"whisper: {problem}; pass --model-args checkpoint=DIR with a local copy of a checkpoint "
                     "(config.json, model.safetensors, tokenizer and preprocessor files, e.g. openai/whisper-tiny.en "
                     "saved with save_pretrained), or a Hub id that is online or already in the Hub cache")


@contextmanager
def _one_thread(torch):
    """Decoding is thousands of small operations; on CPU, spreading each over several threads costs
    more in synchronisation than it gains (8 to 20 times slower on a busy 2-core machine), so the
    decoder runs on one thread and the encoder's large matrix products on all of torch's threads."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


def _digest(waveform: np.ndarray) -> str:
    data = np.ascontiguousarray(waveform, dtype=np.float32)
    return hashlib.sha1(data.tobytes()).hexdigest() + f":{data.size}"


def _seed(request: GenerateRequest, prompt: tuple[int, ...]) -> int:
    text = _digest(request.clip.waveform) + repr(prompt)
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:4], "little")


def _cache_bytes(cache) -> int:
    """Bytes of one row of a decoder cache (self- and cross-attention keys and values)."""
    tensors = [t for layer in cache for t in layer if hasattr(t, "numel")]
    return sum(t.numel() * t.element_size() for t in tensors) // max(1, tensors[0].shape[0] if tensors else 1)


def _repeat_rows(cache, n: int):
    if hasattr(cache, "batch_repeat_interleave"):
        cache.batch_repeat_interleave(n)
        return cache
    return tuple(tuple(t.repeat_interleave(n, dim=0) for t in layer) for layer in cache)  # legacy tuple caches
