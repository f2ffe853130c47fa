"""``predictions``: outputs made elsewhere (a cluster, an API), scored by the suite's evaluators.

``--model-args file=OUTPUTS.jsonl`` names a file of JSON records, one per line, each with ``id`` (the
item id as the suite's own item records name it, e.g. ``evaluation/<file name>`` for Clotho),
``prompt`` and ``output`` (the text).  The suite's own item records are such a file, so any earlier
run re-scores.  The model reads no audio (``needs_audio = False``): the runner neither reads nor
decodes audio files, so it runs on a copy of the data that holds only the metadata.  A record missing
for an item fails that item, counted, and the run goes on.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from alm_bench import AudioFormat, Capabilities, Model, hookimpl
from alm_bench.errors import ItemError, UsageError
from alm_bench.protocol import ITEM_PREFIX

_USAGE = "pass --model-args file=OUTPUTS.jsonl (one JSON record per line with id, prompt and output)"


def read_predictions(path: Path) -> dict[tuple[str, str], str]:
    """(item id, prompt) -> output; records without an output (failed items of a suite run) are left out."""
    outputs: dict[tuple[str, str], str] = {}
    with open(path, encoding="utf-8") as fh:
        for number, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
                key, output = (str(record["id"]), str(record.get("prompt") or "")), record["output"]
            except (json.JSONDecodeError, KeyError, TypeError) as exc:
                raise UsageError(f"{path} line {number}: not a record with id and output ({exc}); {_USAGE}") from None
            if isinstance(output, str):
                outputs[key] = output
    return outputs


class Predictions(Model):
    """Generated texts read from a JSONL file instead of a model."""

    name = "predictions"
    capabilities = Capabilities(generate=True)
    needs_audio = False
    description = "outputs made elsewhere, from --model-args file=OUTPUTS.jsonl (id, prompt, output); no audio read"
    audio_format = AudioFormat(sample_rate=16_000)

    def __init__(self, file: str = "") -> None:
        self.path = Path(str(file))
        if not file or not self.path.is_file():
            raise UsageError(f"model predictions: no file {str(file)!r}; {_USAGE}")
        self.sha256 = hashlib.sha256(self.path.read_bytes()).hexdigest()
        self.outputs = read_predictions(self.path)
        self.prompts: dict[str, list[str]] = {}
        for item, prompt in self.outputs:
            self.prompts.setdefault(item, []).append(prompt)

    def config(self):
        return {"file_sha256": self.sha256}  # what changes the outputs: the file's content, not its path

    def generate(self, requests, config):
        return [self._output(r.clip.sha.removeprefix(ITEM_PREFIX), r.prompt) for r in requests]

    def _output(self, item: str, prompt: str) -> str:
        if (item, prompt) in self.outputs:
            return self.outputs[(item, prompt)]
        others = self.prompts.get(item)
        hint = f"it has outputs for prompts {others} only (pick one with --prompt)" if others else "no record has it"
        raise ItemError(f"{self.path}: no output for item {item!r} with prompt {prompt!r}; {hint}")


@hookimpl
def alm_bench_models():
    return [Predictions]
