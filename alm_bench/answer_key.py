"""Ground truth for reference models (``oracle``, ``chance``), delivered per call and to them alone.

Evaluators attach to each planned call the output a perfect model would give (``ideal``) and, where
the answer is one of a closed set, the set (``choices``).  The executor keeps these beside the
calls; only a model whose capabilities declare ``reference`` receives them, as an :class:`AnswerKey`
of the batch it is called with (keyword ``answers=``).  Requests themselves never carry an answer,
and nothing is process-global, so the same holds in one process or across distributed ranks.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .calls import content_key


@dataclass(frozen=True)
class Answer:
    ideal: Any
    choices: tuple = ()


class AnswerKey:
    """Answers of one batch of requests, looked up by the request itself."""

    def __init__(self, answers: dict[str, Answer] | None = None) -> None:
        self._answers = dict(answers or {})

    def get(self, kind: str, request: Any) -> Answer | None:
        return self._answers.get(content_key(kind, request))

    def __len__(self) -> int:
        return len(self._answers)
