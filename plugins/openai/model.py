"""A model served behind an OpenAI-compatible chat-completions endpoint: the ``openai`` model.

- ``generate``: one chat completion per request: an optional system message, then one user message
  holding the request's clips (``input_audio`` parts, base64 WAV) and texts (``text`` parts) in
  order.  The run's ``max_new_tokens`` and ``temperature`` are sent where it sets them (the server's
  defaults otherwise), with a seed drawn from the request so sampling servers repeat themselves.
- ``score`` (``prompt_logprobs=true``, for servers that return prompt log-probabilities, as vLLM
  does): the candidate as the assistant's message, continued (``continue_final_message``), with
  ``prompt_logprobs``; its score is the sum of the log-probabilities of the tokens after the prompt,
  whose length a request for the prompt alone gives.  Endpoints without them (hosted APIs) do not
  declare ``score``.

Requests run concurrently (``concurrency``, within each batch the runner hands over: raise
``--batch-size`` with it), each retried with back-off and bounded by ``timeout``.  A request that
fails for good fails only its item; the runner caches every other output, so a re-run sends only
the failed ones.  The API key is read from the environment variable ``api_key_env`` names and is
never part of ``config()``, results or error messages.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import struct
from typing import Any, Sequence

import numpy as np

from alm_bench import AudioFormat, Capabilities, Clip, GenerateRequest, GenerationConfig, Model, ScoreRequest
from alm_bench.errors import UsageError

from .client import ChatClient, Malformed, RequestFailed

VERSION = "0.1.0"
PATH = "/chat/completions"
SUBTYPES = ("PCM_16", "FLOAT")
#: outcomes kept between a failed batch and the runner's item-by-item retry of it
MEMO_LIMIT = 10_000


class OpenAIChat(Model):
    """Any OpenAI-compatible chat-completions endpoint that takes audio (vLLM, SGLang, hosted APIs)."""

    name = "openai"
    #: the most an endpoint offers; ``score`` only where it returns prompt log-probabilities
    capabilities = Capabilities(generate=True, interleaved=True, score=True)
    description = "an OpenAI-compatible chat endpoint with audio input: --model-args base_url=URL,model=NAME"

    def __init__(self, base_url: str | None = None, model: str | None = None, api_key_env: str | None = None,
                 prompt_logprobs: bool = False, interleaved: bool = True, system_prompt: str | None = None, sample_rate: int = 16_000,
                 max_seconds: float | None = 30.0, audio_subtype: str = "PCM_16", concurrency: int = 8,
                 retries: int = 4, timeout: float = 120.0, backoff: float = 1.0) -> None:
        """``base_url``: up to ``/v1`` (e.g. ``http://localhost:8000/v1``).  ``model``: the served
        model's name.  ``api_key_env``: the environment variable holding the API key (none: no key).
        ``prompt_logprobs``: the endpoint returns prompt log-probabilities (vLLM): offer ``score``.
        ``interleaved``: the served model takes several clips in one message (false: one clip).
        ``sample_rate``, ``max_seconds``: the audio sent; ``audio_subtype``: its WAV samples
        (``PCM_16``, or ``FLOAT`` to send the decoded samples exactly).  ``concurrency``: requests
        at once; ``retries``, ``timeout`` (s per request), ``backoff`` (s before the first retry,
        doubling after each)."""
        if not base_url or not model:
            raise UsageError("openai: pass --model-args base_url=URL,model=NAME (e.g. base_url=http://localhost:8000/v1,"
                             "model=Qwen/Qwen2-Audio-7B-Instruct)")
        if audio_subtype not in SUBTYPES:
            raise UsageError(f"openai: audio_subtype={audio_subtype!r} is not one of {', '.join(SUBTYPES)}")
        key = None
        if api_key_env:
            key = os.environ.get(str(api_key_env))
            if not key:
                raise UsageError(f"openai: the environment variable {api_key_env} is empty or not set; "
                                 f"export {api_key_env}=<your key>, or drop api_key_env for a server without keys")
        self.base_url, self.model, self.system_prompt = str(base_url).rstrip("/"), str(model), system_prompt
        self.prompt_logprobs, self.subtype = bool(prompt_logprobs), audio_subtype
        self.audio_format = AudioFormat(sample_rate=int(sample_rate), max_seconds=max_seconds)
        self.capabilities = Capabilities(generate=True, interleaved=bool(interleaved), score=self.prompt_logprobs)
        self.client = ChatClient(self.base_url, key, timeout, retries, backoff, concurrency)
        self._memo: dict[str, Any] = {}

    def config(self) -> dict[str, Any]:
        return {"base_url": self.base_url, "model": self.model, "system_prompt": self.system_prompt,
                "sample_rate": self.audio_format.sample_rate, "max_seconds": self.audio_format.max_seconds,
                "audio_subtype": self.subtype, "alm_bench_openai": VERSION}

    # -- request bodies -------------------------------------------------------------------------------
    def messages(self, content: Sequence[Clip | str]) -> list[dict]:
        parts = [{"type": "input_audio", "input_audio": {"data": self._wav(c), "format": "wav"}}
                 if isinstance(c, Clip) else {"type": "text", "text": c}
                 for c in content if not (isinstance(c, str) and not c)]
        system = [{"role": "system", "content": self.system_prompt}] if self.system_prompt else []
        return system + [{"role": "user", "content": parts}]

    def _wav(self, clip: Clip) -> str:
        return base64.b64encode(wav_bytes(clip.waveform, self.audio_format.sample_rate, self.subtype)).decode("ascii")

    def _generation_body(self, request: GenerateRequest, config: GenerationConfig) -> dict:
        if config.num_beams not in (None, 1):
            raise UsageError(f"openai: chat completions have no beam search; run without --num-beams "
                             f"(asked for {config.num_beams})")
        body: dict[str, Any] = {"model": self.model, "messages": self.messages(request.content)}
        if config.max_new_tokens is not None:
            body["max_tokens"] = config.max_new_tokens
        if config.temperature is not None:
            body["temperature"] = config.temperature
        body["seed"] = int(hashlib.sha256(json.dumps(body["messages"]).encode()).hexdigest()[:7], 16)
        return body

    def _logprob_body(self, request: ScoreRequest, candidate: str | None) -> dict:
        """The prompt alone (``candidate`` None), or the prompt with the candidate as the answer."""
        messages = self.messages((request.clip, request.prompt))
        body: dict[str, Any] = {"model": self.model, "max_tokens": 1, "temperature": 0.0, "prompt_logprobs": 1}
        if candidate is None:
            return {**body, "messages": messages}
        return {**body, "messages": messages + [{"role": "assistant", "content": candidate}],
                "add_generation_prompt": False, "continue_final_message": True}

    # -- the calls --------------------------------------------------------------------------------------
    def _post_all(self, bodies: list[dict], parse) -> list[Any]:
        """Parsed responses in order.  When some fail, every outcome is kept and the first failure
        raised: the runner then retries the batch item by item, and each item gets its own outcome
        back (successes are not requested twice, failures fail alone) without a new request."""
        keys = [hashlib.sha256(json.dumps(b, sort_keys=True).encode()).hexdigest() for b in bodies]
        known = {k: self._memo.pop(k) for k in keys if k in self._memo}
        todo = {k: b for k, b in zip(keys, bodies) if k not in known}
        known.update(zip(todo, self.client.post_all(PATH, list(todo.values()), parse)))
        failures = [v for v in known.values() if isinstance(v, RequestFailed)]
        if failures:
            if len(keys) > 1 and len(self._memo) < MEMO_LIMIT:
                self._memo.update(known)
            raise failures[0]
        return [known[k] for k in keys]

    def generate(self, requests: Sequence[GenerateRequest], config: GenerationConfig) -> list[str]:
        return self._post_all([self._generation_body(r, config) for r in requests], _text)

    def score(self, requests: Sequence[ScoreRequest]) -> list[np.ndarray]:
        if not self.prompt_logprobs:
            raise UsageError("openai: score needs prompt log-probabilities; pass --model-args prompt_logprobs=true "
                             "for a server that returns them (vLLM)")
        bodies = []
        for request in requests:
            bodies += [self._logprob_body(request, None)] + [self._logprob_body(request, c) for c in request.candidates]
        logprobs = iter(self._post_all(bodies, _prompt_logprobs))
        out = []
        for request in requests:
            prompt = len(next(logprobs))
            scores = []
            for candidate in request.candidates:
                values = next(logprobs)
                if len(values) < prompt + (1 if candidate else 0):
                    raise Malformed(f"the prompt with candidate {candidate!r} has no tokens after the prompt's "
                                    f"{prompt}; does the server apply continue_final_message?")
                scores.append(float(sum(values[prompt:])))
            out.append(np.array(scores))
        return out


def wav_bytes(samples: np.ndarray, rate: int, subtype: str = "PCM_16") -> bytes:
    """A mono WAV file, byte for byte the same for the same samples (libsndfile stamps float files
    with the time, which would make every request body, cache key and seed differ)."""
    samples = np.asarray(samples, np.float32)
    if subtype == "FLOAT":
        data, fmt_tag, width, extra = samples.astype("<f4").tobytes(), 3, 4, struct.pack("<H", 0)
    else:  # as libsndfile converts (scaled by 32767), but clipped, not wrapped
        scaled = np.clip(np.round(samples.astype(np.float64) * 32767), -32768, 32767)
        data, fmt_tag, width, extra = scaled.astype("<i2").tobytes(), 1, 2, b""
    fmt = struct.pack("<HHIIHH", fmt_tag, 1, rate, rate * width, width, 8 * width) + extra
    chunks = b"fmt " + struct.pack("<I", len(fmt)) + fmt
    if fmt_tag == 3:  # non-PCM data carries its length in frames
        chunks += b"fact" + struct.pack("<II", 4, len(samples))
    chunks += b"data" + struct.pack("<I", len(data)) + data
    return b"RIFF" + struct.pack("<I", 4 + len(chunks)) + b"WAVE" + chunks


def _text(response: dict) -> str:
    content = response["choices"][0]["message"]["content"]
    if content is None:
        return ""
    if not isinstance(content, str):
        raise Malformed("choices[0].message.content is not a string")
    return content.strip()


def _prompt_logprobs(response: dict) -> list[float]:
    """vLLM's ``prompt_logprobs``: per prompt token, ``None`` for the first, then ``{token_id:
    {"logprob", "rank", ...}}`` holding the prompt's own token and, asked for one alternative, the
    most likely token when that is another (rank 1): the prompt's token is the one of highest rank."""
    entries = response.get("prompt_logprobs")
    if not isinstance(entries, list) or not entries:
        raise Malformed("the response has no prompt_logprobs; this endpoint does not return them, so run "
                        "without prompt_logprobs=true (no score)")
    values = [0.0]
    for entry in entries[1:]:
        if not isinstance(entry, dict) or not entry or (len(entry) > 1 and
                                                         any("rank" not in v for v in entry.values())):
            raise Malformed("a prompt_logprobs entry does not say which token is the prompt's")
        values.append(float(max(entry.values(), key=lambda v: v.get("rank") or 0)["logprob"]))
    return values
