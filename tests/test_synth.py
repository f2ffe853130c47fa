"""The synthetic suite: deterministic, leak-free, truthful ground truth, safe to build, learnable."""

from __future__ import annotations

import hashlib
import json
import os
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from functools import cache

import numpy as np
import pytest
import soundfile as sf
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from alm_bench import synth

SR = synth.SAMPLE_RATE


@cache
def rendered(name: str, split: str, n: int | None = None) -> tuple[tuple[list[np.ndarray], dict], ...]:
    """The first ``n`` items of a split (all by default), rendered once per test session."""
    return tuple(synth.render_item(name, split, i) for i in range(n or synth.DATASETS[name][split]))


def clip_hash(wave: np.ndarray) -> str:
    return hashlib.sha256(wave.tobytes()).hexdigest()


def window_power(x: np.ndarray) -> np.ndarray:
    """Mean power in 20 ms windows every 5 ms."""
    return np.lib.stride_tricks.sliding_window_view(x.astype(np.float64) ** 2, 320)[::80].mean(axis=1)


def count_bursts(x: np.ndarray) -> int:
    """Sound bursts 15 dB over the floor; dips under 20 ms (a bell's wobbling tail) do not split one."""
    active = np.flatnonzero(window_power(x) > 10 ** ((synth._FLOOR_DB + 15) / 10))
    return 1 + int(np.sum(np.diff(active) > 4)) if active.size else 0


def spectral_centroid(x: np.ndarray) -> float:
    power = np.abs(np.fft.rfft(x.astype(np.float64))) ** 2
    return float(np.sum(np.fft.rfftfreq(len(x), 1 / SR) * power) / power.sum())


def test_labels_and_sizes_match_the_documented_suite() -> None:
    assert len(set(synth.EVENT_LABELS)) == len(synth.EVENT_LABELS) == 10
    assert set(synth.DATASETS) == {"events", "tagging", "count", "captions", "compare", "order"}
    for splits in synth.DATASETS.values():
        assert set(splits) == {"train", "valid", "test"}
    assert synth.DATASETS["events"]["test"] % (synth.FOLDS * len(synth.EVENT_LABELS)) == 0


@pytest.mark.parametrize("name", list(synth.DATASETS))
def test_rendering_is_deterministic(name: str) -> None:
    for split, index in (("test", 0), ("train", 17)):
        waves_a, meta_a = synth.render_item(name, split, index)
        waves_b, meta_b = synth.render_item(name, split, index)
        assert json.dumps(meta_a) == json.dumps(meta_b)
        assert [clip_hash(w) for w in waves_a] == [clip_hash(w) for w in waves_b]


def test_out_of_range_items_are_refused() -> None:
    with pytest.raises(ValueError):
        synth.render_item("events", "test", synth.DATASETS["events"]["test"])
    with pytest.raises(ValueError):
        synth.render_item("nope", "test", 0)


@pytest.mark.parametrize("name", list(synth.DATASETS))
def test_splits_never_share_a_clip(name: str) -> None:
    hashes = {
        split: {clip_hash(w) for waves, _ in rendered(name, split, 150 if split == "train" else None) for w in waves}
        for split in ("train", "valid", "test")
    }
    assert not hashes["train"] & hashes["test"]
    assert not hashes["train"] & hashes["valid"]
    assert not hashes["valid"] & hashes["test"]
    # and within a split every clip is its own draw (an order pair shows its two clips twice)
    shown = 2 if name == "order" else 1
    assert len(hashes["test"]) * shown == sum(len(waves) for waves, _ in rendered(name, "test"))


@pytest.mark.parametrize("name", list(synth.DATASETS))
def test_waveforms_are_finite_bounded_and_never_silent(name: str) -> None:
    for waves, _ in rendered(name, "test", 40):
        for w in waves:
            assert w.dtype == np.float32 and w.shape == (int(SR * synth.CLIP_SECONDS),)
            assert np.isfinite(w).all() and np.abs(w).max() <= 1.0
            assert window_power(w).min() > 0  # the noise floor: no digital silence anywhere
            assert window_power(w).max() > 10 ** ((synth._LEVEL_DB["quiet"] - 6) / 10)  # an event is there


def test_loudness_attribute_is_the_level_of_each_occurrence() -> None:
    for (wave,), meta in rendered("events", "test"):
        event = meta["events"][0]
        start = round(event["onset"] * SR)
        x = wave[start : start + round(event["duration"] * SR)].astype(np.float64)
        level = 10 * np.log10(np.mean(x**2))
        assert abs(level - synth._LEVEL_DB[event["loudness"]]) < 1.5, (meta["id"], level)


def test_events_are_class_balanced_within_every_fold() -> None:
    records = [meta for _, meta in rendered("events", "test")]
    per_fold = Counter((r["fold"], r["labels"][0]) for r in records)
    assert set(r["fold"] for r in records) == set(range(1, synth.FOLDS + 1))
    assert set(per_fold.values()) == {len(records) // (synth.FOLDS * len(synth.EVENT_LABELS))}
    assert all(len(r["labels"]) == 1 and r["events"][0]["kind"] == r["labels"][0] for r in records)


def test_event_scenes_respect_positions_and_do_not_overlap() -> None:
    third = synth.CLIP_SECONDS / 3
    for _, meta in rendered("tagging", "test"):
        assert 2 <= len(meta["labels"]) <= 3 and meta["labels"] == sorted(meta["labels"])
        assert len({e["position"] for e in meta["events"]}) == len(meta["events"])
        for e in meta["events"]:
            zone = synth.POSITIONS.index(e["position"]) * third
            assert len(e["onsets"]) == e["count"]
            assert zone <= e["onsets"][0] and e["onsets"][-1] + e["duration"] <= zone + third + 1e-9
            ends = np.array(e["onsets"]) + e["duration"]
            assert np.all(np.array(e["onsets"][1:]) - ends[:-1] >= synth._MIN_GAP_MS / 1000 - 1e-9)


def test_count_answers_match_the_bursts_in_the_audio() -> None:
    records = rendered("count", "test")
    assert Counter(meta["answer"] for _, meta in records) == {a: len(records) // 4 for a in "1234"}
    for (wave,), meta in records:
        assert meta["answer"] == str(meta["events"][0]["count"]) == str(count_bursts(wave)), meta["id"]
        assert "how many" in meta["question"]


def test_captions_are_five_distinct_truthful_sentences() -> None:
    words = {1: ("once", "one", "a "), 2: ("twice", "two"), 3: ("three",), 4: ("four",)}
    for _, meta in rendered("captions", "test"):
        captions = meta["captions"]
        assert len(captions) == len(set(captions)) == 5
        for caption in captions:
            for e in meta["events"]:
                assert e["kind"] in caption, (caption, e)
            if len(meta["events"]) == 1:  # one event: every caption states all its attributes
                e = meta["events"][0]
                assert any(w in caption for w in words[e["count"]]), caption
                assert (e["pitch"] or "") in caption and ("loud" in caption) == (e["loudness"] == "loud")


def test_compare_answers_are_balanced_and_true_of_the_audio() -> None:
    records = rendered("compare", "test")
    tally = Counter((meta["question_type"], meta["answer"]) for _, meta in records)
    assert len(tally) == 8 and len(set(tally.values())) == 1
    for (a, b), meta in records:
        first, second = (clip[0] for clip in meta["clips"])
        winner = 0 if meta["answer"] == "first" else 1
        if meta["question_type"] == "loudness":
            rms = [np.sqrt(np.mean(w.astype(np.float64) ** 2)) for w in (a, b)]
            assert rms[winner] > rms[1 - winner]
            assert (first, second)[winner]["loudness"] == "loud"
        elif meta["question_type"] == "pitch":
            assert first["kind"] == second["kind"]
            assert (first, second)[winner]["pitch"] == "high"
            centroids = [spectral_centroid(w) for w in (a, b)]
            assert centroids[winner] > centroids[1 - winner]
        elif meta["question_type"] == "count":
            assert first["kind"] == second["kind"]
            counts = [count_bursts(w) for w in (a, b)]
            assert counts == [first["count"], second["count"]] and counts[winner] > counts[1 - winner]
        else:
            assert (first["kind"] == second["kind"]) == (meta["answer"] == "yes")


def test_order_pairs_hold_the_same_clips_swapped_and_their_answers_flip() -> None:
    records = rendered("order", "test")
    assert Counter(meta["answer"] for _, meta in records) == {"first": 100, "second": 100}
    for (a, b), meta in records:
        rms = [np.sqrt(np.mean(w.astype(np.float64) ** 2)) for w in (a, b)]
        assert rms[0 if meta["answer"] == "first" else 1] > 3 * rms[1 if meta["answer"] == "first" else 0]
    for ((a, b), first), ((c, d), second) in zip(records[::2], records[1::2]):
        assert first["pair"] == second["pair"] and not first["swapped"] and second["swapped"]
        assert clip_hash(a) == clip_hash(d) and clip_hash(b) == clip_hash(c)
        assert {first["answer"], second["answer"]} == {"first", "second"} and first["question"] == second["question"]


def test_nonce_words_are_distinct_seeded_non_labels() -> None:
    words = synth.nonce_words(np.random.default_rng(3), 12)
    assert len(set(words)) == 12 and words == synth.nonce_words(np.random.default_rng(3), 12)
    assert not set(words) & set(synth.EVENT_LABELS) and all(w.isalpha() and len(w) >= 4 for w in words)


def test_build_writes_a_complete_split_once(tmp_path, monkeypatch) -> None:
    split_dir = synth.build_dataset("compare", "valid", tmp_path)
    assert split_dir == tmp_path / "compare" / "valid"
    lines = (split_dir / "metadata.jsonl").read_text(encoding="utf-8").splitlines()
    assert len(lines) == synth.DATASETS["compare"]["valid"]
    first = json.loads(lines[0])
    waves, meta = synth.render_item("compare", "valid", 0)
    assert first == meta
    for wave, rel in zip(waves, first["audio"]):
        audio, sr = sf.read(split_dir / rel, dtype="float32")
        assert sr == SR and np.abs(audio - wave).max() <= 1 / 16384  # only PCM_16 rounding
    assert len(list((split_dir / "audio").iterdir())) == 2 * len(lines)
    assert [p.name for p in split_dir.parent.iterdir()] == ["valid"]  # no temporary left behind

    before = (split_dir / "metadata.jsonl").stat().st_mtime_ns
    monkeypatch.setattr(synth, "render_item", lambda *a: pytest.fail("a complete split was rebuilt"))
    assert synth.build_dataset("compare", "valid", tmp_path) == split_dir
    assert (split_dir / "metadata.jsonl").stat().st_mtime_ns == before


def test_build_survives_leftovers_of_a_killed_build(tmp_path) -> None:
    fresh = tmp_path / "count" / ".valid.tmp-123-fresh"
    stale = tmp_path / "count" / ".valid.tmp-456-stale"
    for leftover in (fresh, stale):
        (leftover / "audio").mkdir(parents=True)
        (leftover / "audio" / "count-valid-0000.wav").write_bytes(b"half a wav")
    old = time.time() - 2 * synth._STALE_SECONDS
    os.utime(stale, (old, old))
    (tmp_path / "count" / "valid").mkdir()  # an empty final directory is simply replaced

    split_dir = synth.build_dataset("count", "valid", tmp_path)
    assert len((split_dir / "metadata.jsonl").read_text().splitlines()) == synth.DATASETS["count"]["valid"]
    assert sf.read(split_dir / "audio" / "count-valid-0000.wav")[0].size
    assert fresh.exists() and not stale.exists()  # a recent one may be a live concurrent build


def test_build_refuses_a_foreign_directory_and_cleans_up_after_a_failure(tmp_path, monkeypatch) -> None:
    foreign = tmp_path / "count" / "valid"
    foreign.mkdir(parents=True)
    (foreign / "notes.txt").write_text("mine")
    with pytest.raises(FileExistsError, match="metadata.jsonl"):
        synth.build_dataset("count", "valid", tmp_path)
    assert (foreign / "notes.txt").read_text() == "mine"

    def fail(*args):
        raise KeyboardInterrupt
    monkeypatch.setattr(synth, "render_item", fail)
    with pytest.raises(KeyboardInterrupt):
        synth.build_dataset("count", "test", tmp_path)
    assert sorted(p.name for p in (tmp_path / "count").iterdir()) == ["valid"]


def test_concurrent_builds_both_return_the_same_valid_split(tmp_path) -> None:
    with ThreadPoolExecutor(2) as pool:
        dirs = list(pool.map(lambda _: synth.build_dataset("count", "valid", tmp_path), range(2)))
    assert dirs[0] == dirs[1]
    assert len((dirs[0] / "metadata.jsonl").read_text().splitlines()) == synth.DATASETS["count"]["valid"]
    assert [p.name for p in dirs[0].parent.iterdir()] == ["valid"]


def _mel_filterbank(n_fft: int = 512, n_mels: int = 32) -> np.ndarray:
    mel = lambda f: 2595 * np.log10(1 + f / 700)  # noqa: E731
    edges = 700 * (10 ** (np.linspace(0, mel(SR / 2), n_mels + 2) / 2595) - 1)
    freqs = np.fft.rfftfreq(n_fft, 1 / SR)
    lo, mid, hi = edges[:-2, None], edges[1:-1, None], edges[2:, None]
    return np.maximum(0, np.minimum((freqs - lo) / (mid - lo), (hi - freqs) / (hi - mid)))


MEL = _mel_filterbank()


def log_mel_stats(x: np.ndarray) -> np.ndarray:
    """Mean, std and max of 32 log-mel bands, plus one number for upward vs downward spectral motion:
    rising and falling chirps are time mirrors, identical to any order-free statistic."""
    frames = np.lib.stride_tricks.sliding_window_view(x, 400)[::160] * np.hanning(400)
    power = np.abs(np.fft.rfft(frames, 512)) ** 2 @ MEL.T
    log_power = np.log(power + 1e-10)
    e = power / power.max()
    upward = np.log((e[:-1, :-1] * e[1:, 1:]).sum() / (e[:-1, 1:] * e[1:, :-1]).sum())
    return np.concatenate([log_power.mean(0), log_power.std(0), log_power.max(0), [upward]])


def test_event_kinds_are_learnable_from_log_mel_statistics() -> None:
    def xy(split: str, n: int | None = None) -> tuple[np.ndarray, list[str]]:
        items = rendered("events", split, n)
        return np.array([log_mel_stats(w[0]) for w, _ in items]), [m["labels"][0] for _, m in items]

    classifier = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000)).fit(*xy("train", 400))
    assert classifier.score(*xy("test")) >= 0.8
