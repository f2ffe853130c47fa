"""Model calls as the runner plans them: requests whose clips are still references to files.

A :class:`Call` is one unit of work for one model method.  Its content key (clip hashes and
texts, no model) identifies the request; the cache key adds the model and its settings.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any, Union

from .protocol import Clip, GenerateRequest, GenerationConfig, ScoreRequest

KINDS = ("generate", "embed", "score", "embed_text")


@dataclass(frozen=True)
class ClipRef:
    """A clip not decoded yet: the file and the hash of its bytes."""

    path: str
    sha: str


AnyClip = Union[Clip, ClipRef]


@dataclass(frozen=True)
class Call:
    kind: str
    #: GenerateRequest | ScoreRequest (with ClipRef or Clip inside) | ClipRef/Clip (embed) | str (embed_text)
    request: Any
    #: what a perfect model returns, and the closed set of answers if there is one (reference models only)
    ideal: Any = None
    choices: tuple = ()


def _describe(kind: str, request: Any) -> list:
    if kind == "generate":
        return [["clip", c.sha] if not isinstance(c, str) else ["text", c] for c in request.content]
    if kind == "score":
        return [request.clip.sha, request.prompt, list(request.candidates)]
    if kind == "embed":
        return [request.sha]
    if kind == "embed_text":
        return [request]
    raise ValueError(f"unknown call kind {kind!r}")


def _digest(payload: Any) -> str:
    text = json.dumps(payload, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def content_key(kind: str, request: Any) -> str:
    """Identifies a request by its content alone; the same for ClipRef and decoded Clip."""
    return _digest([kind, _describe(kind, request)])


def cache_key(model_key: str, call: Call, generation: GenerationConfig) -> str:
    settings = generation.as_dict() if call.kind == "generate" else None
    return _digest([model_key, content_key(call.kind, call.request), settings])


def config_hash(config: dict) -> str:
    return _digest(config)[:16]


def materialize(kind: str, request: Any, clips: dict[str, Clip]) -> Any:
    """Replace every ClipRef in ``request`` by its decoded Clip (looked up by sha)."""
    if kind == "generate":
        return GenerateRequest(tuple(c if isinstance(c, str) else clips[c.sha] for c in request.content))
    if kind == "score":
        return ScoreRequest(clips[request.clip.sha], request.prompt, request.candidates)
    if kind == "embed":
        return clips[request.sha]
    return request


def clip_refs(kind: str, request: Any) -> list[AnyClip]:
    if kind == "generate":
        return [c for c in request.content if not isinstance(c, str)]
    if kind == "score":
        return [request.clip]
    if kind == "embed":
        return [request]
    return []
