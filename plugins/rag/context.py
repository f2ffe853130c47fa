"""How retrieved pairs enter the base model's input.

- Interleaved models (``Capabilities.interleaved``): the authors' layout, ``intro``, then each
  retrieved clip followed by its caption, then ``instruction`` and the query clip.
- Single-clip models: the query clip, and the retrieved captions in the text prompt (``template``
  with ``{captions}`` and ``{prompt}``, the request's own prompt).

``{prompt}`` in ``instruction`` stands for the request's own prompt (e.g. a question).
"""

from __future__ import annotations

from dataclasses import dataclass

from alm_bench.protocol import Clip, GenerateRequest

INTRO = "These are similar audio and caption pairs."
INSTRUCTION = "Describe this Audio briefly."
TEMPLATE = "{captions} {prompt}"


@dataclass(frozen=True)
class Layout:
    interleaved: bool
    intro: str = INTRO
    instruction: str = INSTRUCTION
    template: str = TEMPLATE

    def describe(self) -> dict:
        if self.interleaved:
            return {"layout": "interleaved", "intro": self.intro, "instruction": self.instruction}
        return {"layout": "captions in the prompt", "template": self.template}

    def request(self, query: Clip, prompt: str, pairs: list[tuple[Clip | None, str]]) -> GenerateRequest:
        """The base model's request for ``query`` given retrieved (clip, caption) pairs (clips only
        needed for the interleaved layout)."""
        if self.interleaved:
            content: list = [self.intro] if self.intro else []
            for clip, caption in pairs:
                content += [clip, caption]
            content += [self.instruction.format(prompt=prompt), query]
            return GenerateRequest(tuple(content))
        captions = " ".join(_sentence(caption) for _, caption in pairs)
        return GenerateRequest.single(query, self.template.format(captions=captions, prompt=prompt).strip())


def _sentence(caption: str) -> str:
    caption = caption.strip()
    return caption if caption.endswith((".", "!", "?")) else caption + "."
