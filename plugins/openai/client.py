"""A small HTTP client for OpenAI-compatible endpoints: concurrent requests, retries with back-off,
a timeout per request.  The standard library only (``urllib``), so the plugin adds no dependency.

A request is retried on what may pass (429, 408, 409 and 5xx answers, timeouts, dropped connections,
a body that is not the JSON expected) and fails at once on what will not (other 4xx: a bad request,
a wrong key).  Errors never carry the request's headers, so the API key reaches no log or result.
"""

from __future__ import annotations

import json
import random
import socket
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Callable, Sequence

RETRIED_STATUSES = frozenset({408, 409, 425, 429, 500, 502, 503, 504})
#: the longest wait between two attempts, whatever Retry-After or the back-off says
MAX_WAIT_S = 60.0


class RequestFailed(Exception):
    """A request that did not succeed: one line saying why (status, or the transport error)."""


class Malformed(ValueError):
    """A response that is not what the protocol promises (retried: proxies truncate bodies)."""


class ChatClient:
    def __init__(self, base_url: str, api_key: str | None = None, timeout: float = 120.0, retries: int = 4,
                 backoff: float = 1.0, concurrency: int = 8) -> None:
        self.base_url = base_url.rstrip("/")
        self.timeout, self.retries, self.backoff = float(timeout), int(retries), float(backoff)
        self.headers = {"Content-Type": "application/json"}
        if api_key:
            self.headers["Authorization"] = f"Bearer {api_key}"
        self.pool = ThreadPoolExecutor(max(1, int(concurrency)), thread_name_prefix="alm-bench-openai")

    def post(self, path: str, body: dict, parse: Callable[[dict], Any] = lambda r: r) -> Any:
        """``parse(response_json)`` with retries; ``parse`` raises ``Malformed`` (or KeyError,
        TypeError, ValueError) on a response that does not hold what it needs."""
        import http.client  # here, not at import: every alm-bench command imports the plugin
        import urllib.error
        import urllib.request

        data = json.dumps(body).encode("utf-8")
        problem = ""
        for attempt in range(self.retries + 1):
            if attempt:
                time.sleep(wait)
            wait = self.backoff * 2 ** attempt * (1 + 0.25 * random.random())
            try:
                request = urllib.request.Request(self.base_url + path, data=data, headers=self.headers, method="POST")
                with urllib.request.urlopen(request, timeout=self.timeout) as response:
                    raw = response.read()
                return parse(json.loads(raw))
            except urllib.error.HTTPError as exc:
                detail = _error_detail(exc)
                if exc.code not in RETRIED_STATUSES:
                    raise RequestFailed(f"HTTP {exc.code} from {self.base_url}{path}{detail}") from None
                problem = f"HTTP {exc.code}{detail}"
                wait = max(wait, _retry_after(exc))
            except (TimeoutError, socket.timeout):
                problem = f"no answer within {self.timeout:g} s"
            except (urllib.error.URLError, ConnectionError, http.client.HTTPException) as exc:
                problem = f"connection failed ({getattr(exc, 'reason', exc)})"
            except (json.JSONDecodeError, UnicodeDecodeError, KeyError, TypeError, ValueError) as exc:
                problem = f"malformed response ({type(exc).__name__}: {str(exc)[:120]})"
            wait = min(wait, MAX_WAIT_S)
        raise RequestFailed(f"{self.base_url}{path} failed {self.retries + 1} times; last: {problem}")

    def post_all(self, path: str, bodies: Sequence[dict], parse: Callable[[dict], Any]) -> list[Any]:
        """Every body concurrently (at most ``concurrency`` at once); each result is the parsed value
        or the ``RequestFailed`` it ended with, in order."""
        def one(body):
            try:
                return self.post(path, body, parse)
            except RequestFailed as exc:
                return exc

        return list(self.pool.map(one, bodies))

    def close(self) -> None:
        self.pool.shutdown(wait=False)


def _error_detail(exc) -> str:
    """The server's own message, if it sent a JSON error body (``{"error": {"message": ...}}``)."""
    try:
        message = json.loads(exc.read() or b"{}").get("error", {})
        message = message.get("message", "") if isinstance(message, dict) else str(message)
    except (ValueError, AttributeError, OSError):
        return ""
    return f": {message[:200]}" if message else ""


def _retry_after(exc) -> float:
    try:
        return min(MAX_WAIT_S, max(0.0, float(exc.headers.get("Retry-After", 0))))
    except (TypeError, ValueError):
        return 0.0
