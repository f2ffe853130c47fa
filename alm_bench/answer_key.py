"""Ground truth that the reference models (``oracle``, ``chance``) may consult.

Evaluators attach to each request the output a perfect model would give (``ideal``) and, where the
answer is one of a closed set, the set (``choices``).  The executor files them here under the
request's content key (clip hashes + texts, no model), so the oracle answers by looking its request
up and the chance model guesses uniformly among the choices.  Real models never see this.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Answer:
    ideal: Any
    choices: tuple = ()


class AnswerKey:
    def __init__(self) -> None:
        self._answers: dict[str, Answer] = {}
        #: reference caption -> hashes of the clips it describes (ground truth of the loaded task)
        self.caption_owners: dict[str, set[str]] = {}

    def file(self, key: str, answer: Answer) -> None:
        self._answers[key] = answer

    def get(self, key: str) -> Answer | None:
        return self._answers.get(key)

    def file_captions(self, captions_by_clip: dict[str, tuple[str, ...]]) -> None:
        for sha, captions in captions_by_clip.items():
            for caption in captions:
                self.caption_owners.setdefault(caption, set()).add(sha)

    def clear(self) -> None:
        self._answers.clear()
        self.caption_owners.clear()


ANSWERS = AnswerKey()
