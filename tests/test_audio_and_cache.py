"""Audio decoding to a model's format, and the exactness of the output cache."""

import numpy as np
import pytest
import soundfile as sf

from alm_bench.audio import decode, file_sha
from alm_bench.cache import OutputCache
from alm_bench.errors import ItemError
from alm_bench.protocol import AudioFormat

from .conftest import SHARED


def test_any_rate_and_channel_count_becomes_mono_at_the_model_rate(tmp_path):
    rate = 44_100
    t = np.arange(rate * 2) / rate
    stereo = np.stack([np.sin(2 * np.pi * 440 * t), np.zeros_like(t)], axis=1) * 0.5
    path = tmp_path / "stereo.wav"
    sf.write(path, stereo, rate)
    out = decode(path, AudioFormat(sample_rate=16_000))
    assert out.dtype == np.float32 and out.ndim == 1 and len(out) == 32_000
    spectrum = np.abs(np.fft.rfft(out))
    assert abs(np.argmax(spectrum) * 16_000 / len(out) - 440) < 2  # the tone survives resampling
    assert np.max(np.abs(out)) == pytest.approx(0.25, abs=0.01)  # channels averaged


def test_clips_are_cut_and_padded_as_the_model_declares(tmp_path):
    path = tmp_path / "short.wav"
    sf.write(path, np.ones(8000, np.float32) * 0.1, 8000)  # 1 s at 8 kHz
    assert len(decode(path, AudioFormat(16_000, max_seconds=0.5))) == 8000
    padded = decode(path, AudioFormat(16_000, min_seconds=3.0))
    assert len(padded) == 48_000 and np.all(padded[-1000:] == 0)


def test_real_esc50_recording_decodes(tmp_path):
    wav = next((SHARED / "data" / "esc50-mini" / "audio").glob("*.wav"))
    out = decode(wav, AudioFormat(16_000))
    assert len(out) == 80_000 and np.isfinite(out).all()  # 5 s at 44.1 kHz -> 16 kHz


@pytest.mark.parametrize("content, phrase", [(b"", "cannot decode"), (b"RIFF\x00garbage", "cannot decode")])
def test_unreadable_files_raise_item_errors(tmp_path, content, phrase):
    path = tmp_path / "bad.wav"
    path.write_bytes(content)
    with pytest.raises(ItemError, match=phrase):
        decode(path, AudioFormat(16_000))


def test_empty_audio_is_an_item_error(tmp_path):
    path = tmp_path / "empty.wav"
    sf.write(path, np.zeros(0, np.float32), 16_000)
    with pytest.raises(ItemError, match="empty"):
        decode(path, AudioFormat(16_000))


def test_file_hash_follows_content(tmp_path):
    path = tmp_path / "a.wav"
    sf.write(path, np.zeros(100, np.float32), 16_000)
    first = file_sha(path)
    sf.write(path, np.ones(200, np.float32) * 0.5, 16_000)
    assert file_sha(path) != first


def test_cache_returns_exactly_what_was_stored(tmp_path):
    cache = OutputCache(tmp_path)
    values = {"text": "a dog barks ünïcode", "vector": np.random.default_rng(0).standard_normal(7).astype(np.float32),
              "scores": np.array([-1e-300, -3.3, 1 / 3])}
    cache.put_many(values)
    cache.close()
    found = OutputCache(tmp_path).get_many(["text", "vector", "scores", "absent"])
    assert found["text"] == values["text"] and "absent" not in found
    assert found["vector"].dtype == np.float32 and np.array_equal(found["vector"], values["vector"])
    assert np.array_equal(found["scores"], values["scores"])
