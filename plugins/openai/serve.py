"""Serve any alm-bench model through the chat-completions protocol, the way vLLM serves a checkpoint.

    python -m alm_bench_plugins.openai.serve --model pengi-tiny [--model-args k=v,...] [--port 8000]

``POST /v1/chat/completions`` takes the messages the ``openai`` model sends (``text`` and
``input_audio`` parts, base64 WAV) and answers with the served model's ``generate``.  A request with
``prompt_logprobs`` is answered as vLLM answers it, with one log-probability per prompt "token",
from the model's ``score``: here a token is a message part (the system message, each part of the
user's, the generation prompt) and the assistant's continued answer is one token scored as a whole,
so the sum after the prompt is the model's own score of the candidate.  Such a request gets no new
text.  It is what the ``openai`` plugin's tests run against; it also puts a suite model behind an
endpoint for any OpenAI client.

``faults`` (tests) is called with each request body and may answer 429 or 500, stall past the
client's timeout (``"timeout"``) or send a truncated JSON body (``"malformed"``).
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import io
import json
import math
import os
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable

from alm_bench.audio import conform
from alm_bench.protocol import Clip, GenerateRequest, GenerationConfig, Model, ScoreRequest

Fault = Callable[[dict], "int | str | None"]


class BadRequest(ValueError):
    pass


class ChatServer:
    """A threaded HTTP server on ``host:port`` (0: any free port) serving ``model`` as ``name``."""

    def __init__(self, model: Model, name: str = "alm-bench", host: str = "127.0.0.1", port: int = 0,
                 api_key: str | None = None, faults: Fault | None = None, stall_s: float = 2.0) -> None:
        self.model, self.name, self.api_key, self.faults, self.stall_s = model, name, api_key, faults, stall_s
        self.lock = threading.Lock()  # one model call at a time
        self.counting = threading.Lock()
        #: requests received, faulty ones included
        self.received = 0
        self.httpd = ThreadingHTTPServer((host, port), _handler(self))
        self.httpd.daemon_threads = True
        self.thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        host, port = self.httpd.server_address[:2]
        return f"http://{host}:{port}/v1"

    def start(self) -> "ChatServer":
        self.thread = threading.Thread(target=self.httpd.serve_forever, name="alm-bench-serve", daemon=True)
        self.thread.start()
        return self

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

    def __enter__(self) -> "ChatServer":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    # -- the protocol -----------------------------------------------------------------------------------
    def complete(self, body: dict) -> dict:
        system, content = self._conversation(body.get("messages"))
        answer = body["messages"][-1] if body["messages"][-1].get("role") == "assistant" else None
        prefix = len(system) + len(content) + 1  # the parts, then the generation prompt
        if body.get("prompt_logprobs") is not None:
            entries = [None] + [{"0": {"logprob": 0.0, "rank": 1}}] * (prefix - 1)
            if answer is not None:
                if not body.get("continue_final_message"):
                    raise BadRequest("score an answer with continue_final_message=true")
                entries.append(_answer_entry(self._score(content, str(answer.get("content") or ""))))
            return self._response("", entries, len(entries))
        if answer is not None:
            raise BadRequest("this server does not continue an assistant message without prompt_logprobs")
        config = GenerationConfig(max_new_tokens=body.get("max_completion_tokens") or body.get("max_tokens"),
                                  temperature=body.get("temperature"))
        with self.lock:
            text = self.model.generate([GenerateRequest(tuple(content))], config)[0]
        return self._response(text, None, prefix)

    def _score(self, content: list, candidate: str) -> float:
        clips = [c for c in content if isinstance(c, Clip)]
        if len(clips) != 1 or not isinstance(content[0], Clip):
            raise BadRequest("scoring takes one clip followed by its prompt")
        prompt = "".join(c for c in content[1:] if isinstance(c, str))
        with self.lock:
            return float(self.model.score([ScoreRequest(clips[0], prompt, (candidate,))])[0][0])

    def _conversation(self, messages: Any) -> tuple[list[str], list]:
        if not isinstance(messages, list) or not messages:
            raise BadRequest("messages must be a non-empty list")
        system = [m.get("content") for m in messages if m.get("role") == "system"]
        users = [m for m in messages if m.get("role") == "user"]
        if len(users) != 1:
            raise BadRequest("this server takes one user message")
        parts = users[0].get("content")
        parts = [{"type": "text", "text": parts}] if isinstance(parts, str) else parts
        content = [self._clip(p["input_audio"]) if p.get("type") == "input_audio" else str(p.get("text", ""))
                   for p in parts]
        if sum(isinstance(c, Clip) for c in content) > 1 and not self.model.capabilities.interleaved:
            raise BadRequest(f"model {self.model.name} takes one clip per request")
        return system, content

    def _clip(self, audio: dict) -> Clip:
        import soundfile

        data = base64.b64decode(audio["data"])
        wave, rate = soundfile.read(io.BytesIO(data), dtype="float32", always_2d=True)
        return Clip(conform(wave.mean(axis=1), rate, self.model.audio_format), hashlib.sha256(data).hexdigest())

    def _response(self, text: str, prompt_logprobs: list | None, prompt_tokens: int) -> dict:
        response = {"id": f"chatcmpl-{self.received}", "object": "chat.completion", "created": int(time.time()),
                    "model": self.name,
                    "choices": [{"index": 0, "message": {"role": "assistant", "content": text},
                                 "finish_reason": "stop"}],
                    "usage": {"prompt_tokens": prompt_tokens, "completion_tokens": 0, "total_tokens": prompt_tokens}}
        if prompt_logprobs is not None:
            response["prompt_logprobs"] = prompt_logprobs
        return response


def _answer_entry(logprob: float) -> dict:
    """The answer's "token" as vLLM reports a prompt token asked with one alternative: alone when it
    is the most likely, else beside the most likely (rank 1), here "anything else"."""
    if logprob >= math.log(0.5):
        return {"1": {"logprob": logprob, "rank": 1}}
    return {"1": {"logprob": logprob, "rank": 2}, "2": {"logprob": math.log1p(-math.exp(logprob)), "rank": 1}}


def _handler(server: ChatServer) -> type:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args) -> None:  # quiet: a run's output stays readable
            pass

        def do_POST(self) -> None:  # noqa: N802 - the http.server API
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            with server.counting:
                server.received += 1
            if self.path.rstrip("/") not in ("/v1/chat/completions", "/chat/completions"):
                return self._send(404, {"error": {"message": f"no route {self.path}"}})
            if server.api_key and self.headers.get("Authorization") != f"Bearer {server.api_key}":
                return self._send(401, {"error": {"message": "invalid API key"}})
            try:
                request = json.loads(body)
            except ValueError:
                return self._send(400, {"error": {"message": "the body is not JSON"}})
            fault = server.faults(request) if server.faults else None
            if fault in (429, 500, 503):
                return self._send(fault, {"error": {"message": f"injected {fault}"}})
            if fault == "timeout":  # answer nothing until the client has given up
                time.sleep(server.stall_s)
                self.close_connection = True
                return None
            if fault == "malformed":
                return self._send(200, b'{"id": "chatcmpl", "choices": [{"message": ')
            try:
                self._send(200, server.complete(request))
            except (BadRequest, KeyError, TypeError, ValueError) as exc:
                self._send(400, {"error": {"message": f"{type(exc).__name__}: {exc}"}})

        def _send(self, status: int, payload: dict | bytes) -> None:
            data = payload if isinstance(payload, bytes) else json.dumps(payload).encode("utf-8")
            try:
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)
            except (BrokenPipeError, ConnectionResetError):  # the client gave up (its timeout)
                pass

    return Handler


def main(argv: list[str] | None = None) -> None:
    from alm_bench.cli import parse_model_args
    from alm_bench.plugins import default_registry

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", required=True)
    parser.add_argument("--model-args", default="")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--api-key-env", default=None, help="require the key this environment variable holds")
    args = parser.parse_args(argv)
    model = default_registry().load_model(args.model, parse_model_args(args.model_args)).to(args.device)
    key = os.environ.get(args.api_key_env, "") if args.api_key_env else None
    server = ChatServer(model, args.model, args.host, args.port, api_key=key)
    print(f"serving {args.model} at {server.url}/chat/completions (model name {args.model!r}); Ctrl-C stops")
    try:
        server.httpd.serve_forever()
    except KeyboardInterrupt:
        server.stop()


if __name__ == "__main__":
    main()
