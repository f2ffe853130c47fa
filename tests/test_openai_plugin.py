"""The ``openai`` model against a real HTTP server on 127.0.0.1 (``alm_bench_plugins.openai.serve``)
serving the shipped ``pengi-tiny`` through the chat-completions protocol, with faults injected:
every item succeeds or fails alone, counted; a re-run sends only the failed items; the metrics are
those of running ``pengi-tiny`` directly; the API key reaches no file."""

import base64
import hashlib
import json
import os
import subprocess
import sys
import threading

import pytest

from alm_bench import check_model
from alm_bench.errors import UsageError
from alm_bench.runner import RunConfig, run
from alm_bench_plugins.openai.client import ChatClient, RequestFailed
from alm_bench_plugins.openai.serve import ChatServer

KEY_ENV, KEY = "ALM_BENCH_TEST_OPENAI_KEY", "sk-test-0123456789-secret"
TASKS, METHODS, LIMIT = "synth-count,synth-events", ("qa", "log_likelihood"), 8


class Faults:
    """Clips get a fault in the order they first arrive: 429, 500, a stall past the client's timeout,
    a truncated JSON body (each on the clip's first request only, so retries succeed), a 500 on every
    request (the item fails for good), none."""

    KINDS = (429, 500, "timeout", "malformed", "always", None)

    def __init__(self) -> None:
        self.kinds: dict[str, object] = {}
        self.lock = threading.Lock()
        self.on = True
        #: (clip, body digest) of each request received while off
        self.quiet: list[tuple[str, str]] = []

    def __call__(self, body: dict):
        audio = [p["input_audio"]["data"] for m in body["messages"] if isinstance(m["content"], list)
                 for p in m["content"] if p["type"] == "input_audio"]
        clip = hashlib.sha1(audio[0].encode()).hexdigest()
        with self.lock:
            if not self.on:
                self.quiet.append((clip, hashlib.sha1(json.dumps(body, sort_keys=True).encode()).hexdigest()))
                return None
            if clip not in self.kinds:
                self.kinds[clip] = kind = self.KINDS[len(self.kinds) % len(self.KINDS)]
                return 500 if kind == "always" else kind
            return 500 if self.kinds[clip] == "always" else None


@pytest.fixture(scope="module")
def pengi(registry, one_torch_thread):
    return registry.load_model("pengi-tiny")


@pytest.fixture(scope="module")
def server(pengi):
    os.environ[KEY_ENV] = KEY
    faults = Faults()
    with ChatServer(pengi, "pengi-tiny", api_key=KEY, faults=faults, stall_s=2.5) as server:
        yield server, faults
    del os.environ[KEY_ENV]


def _args(server, **more):
    # pengi-tiny's own audio format, sent as float samples: the server hears exactly what pengi-tiny hears directly
    return {"base_url": server.url, "model": "pengi-tiny", "api_key_env": KEY_ENV, "sample_rate": 16_000,
            "max_seconds": 2.0, "audio_subtype": "FLOAT", "interleaved": False, "timeout": 2.0, "retries": 2,
            "backoff": 0.01, "concurrency": 2, **more}


def _metrics(summary):
    return {(r.task, r.method): (r.metrics, r.n_items, r.n_failed) for r in summary.results}


@pytest.fixture(scope="module")
def runs(server, registry, cache_dir, tmp_path_factory):
    """pengi-tiny directly; then through the faulty endpoint; then again with the faults gone."""
    http, faults = server
    faults.on = True
    config = dict(tasks=TASKS, methods=METHODS, limit=LIMIT, cache_dir=cache_dir, batch_size=8)
    direct = run(RunConfig(model="pengi-tiny", output_dir=tmp_path_factory.mktemp("direct"), **config), registry)
    out = tmp_path_factory.mktemp("openai")
    remote = RunConfig(model="openai", model_args=_args(http, prompt_logprobs=True), output_dir=out, **config)
    faulty = run(remote, registry)
    faults.on, faults.quiet = False, []
    rerun = _cli_run(http, cache_dir, tmp_path_factory.mktemp("rerun"))
    failing = {clip for clip, kind in faults.kinds.items() if kind == "always"}
    return direct, faulty, rerun, (list(faults.quiet), failing), out


def _cli_run(http, cache_dir, out):
    """``alm-bench run --model openai ...`` in a subprocess, as a user types it; its results files."""
    args = ",".join(f"{k}={v}" for k, v in _args(http, prompt_logprobs=True).items())
    command = [sys.executable, "-m", "alm_bench.cli", "run", "--model", "openai", "--task", TASKS, "--method",
               ",".join(METHODS), "--limit", str(LIMIT), "--model-args", args, "--cache-dir", str(cache_dir),
               "--output-dir", str(out)]
    done = subprocess.run(command, capture_output=True, text=True, env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert done.returncode == 0, done.stderr
    return {(d["task"], d["method"]): (d["metrics"], d["n_items"], d["n_failed"])
            for d in (json.loads(p.read_text()) for p in out.rglob("*.json"))}


def test_every_item_succeeds_or_fails_alone_counted(runs):
    _, faulty, _, _, out = runs
    got = _metrics(faulty)
    # 8 clips per task; in order of arrival the 5th of each task's clips always fails (the 11th overall)
    assert {key: failed for key, (_, _, failed) in got.items()} == {("synth-count", "qa"): 1,
                                                                   ("synth-events", "log_likelihood"): 1}
    records = [json.loads(line) for line in (out / "openai" / "synth-count").glob("*.jsonl").__next__().open()]
    errors = [r["error"] for r in records if r.get("error")]
    assert len(records) == LIMIT and len(errors) == 1
    assert "failed 3 times" in errors[0] and "HTTP 500" in errors[0]


def test_a_cli_rerun_sends_only_the_failed_items_and_matches_the_model_run_directly(runs):
    direct, faulty, rerun, (requests, failing), _ = runs
    # `alm-bench run` sends requests for the two failed clips only (a question; a prompt and its
    # candidates), each once, and gets the metrics of pengi-tiny run directly
    assert {clip for clip, _ in requests} == failing and len(failing) == 2
    assert len({body for _, body in requests}) == len(requests) > 2
    assert rerun == _metrics(direct)
    assert all(failed == 0 for _, _, failed in rerun.values())


def test_the_api_key_reaches_no_result_nor_log(runs, cache_dir):
    out = runs[4]
    for path in out.rglob("*"):
        if path.is_file():
            assert KEY not in path.read_text(errors="replace")
    assert all(KEY not in str(e) for r in runs[1].results for e in [r.provenance])


def test_check_model_passes_and_score_is_declared_only_with_prompt_logprobs(server, registry, cache_dir, tmp_path):
    http, faults = server
    faults.on = False
    model = registry.load_model("openai", _args(http, prompt_logprobs=True))
    assert [r.line() for r in check_model(model) if not r.passed] == []
    plain = registry.load_model("openai", _args(http))
    assert not plain.capabilities.score
    with pytest.raises(UsageError, match="lacks capability score"):
        run(RunConfig(model="openai", model_args=_args(http), tasks="synth-events", methods=("log_likelihood",),
                      limit=4, cache_dir=cache_dir, output_dir=tmp_path), registry)


def test_a_wrong_key_fails_at_once_and_a_missing_one_is_a_usage_error(server, registry):
    http, _ = server
    before = http.received
    client = ChatClient(http.url, api_key="wrong", retries=3, backoff=0.01)
    with pytest.raises(RequestFailed, match="HTTP 401"):
        client.post("/chat/completions", {"model": "pengi-tiny", "messages": [{"role": "user", "content": "hi"}]})
    assert http.received - before == 1  # not retried: it would not pass
    with pytest.raises(UsageError, match="NO_SUCH_VARIABLE_FOR_ALM_BENCH is empty or not set"):
        registry.load_model("openai", _args(http, api_key_env="NO_SUCH_VARIABLE_FOR_ALM_BENCH"))


def test_clips_and_texts_travel_in_order_as_wav_parts(registry):
    import io

    import numpy as np
    import soundfile as sf

    from alm_bench import Clip

    model = registry.load_model("openai", {"base_url": "http://127.0.0.1:9/v1", "model": "m", "system_prompt": "be brief",
                                           "audio_subtype": "FLOAT"})
    a, b = (Clip(np.linspace(-1, 1, n, dtype=np.float32), str(n)) for n in (800, 1600))
    messages = model.messages((a, "this is a dog.", b, "this is a"))
    assert messages[0] == {"role": "system", "content": "be brief"}
    parts = messages[1]["content"]
    assert [p["type"] for p in parts] == ["input_audio", "text", "input_audio", "text"]
    assert [p["text"] for p in parts[1::2]] == ["this is a dog.", "this is a"]
    decoded, rate = sf.read(io.BytesIO(base64.b64decode(parts[2]["input_audio"]["data"])), dtype="float32")
    assert rate == 16_000 and np.array_equal(decoded, b.waveform)
    assert model.messages((a, "x")) == model.messages((a, "x"))  # byte for byte: cache keys and seeds repeat
