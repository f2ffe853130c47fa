"""Dataset loaders (GTZAN, Beijing Opera, NSynth, CREMA-D, RAVDESS, VocalSound, SESA, NLAR, ESC-50
few-shot) on fixture trees in each dataset's official layout: real file names and metadata formats,
a few short generated clips (sample rates, channels and formats varied), and oracle runs end to end."""

import dataclasses
import json
import zlib
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from alm_bench.data import DataMissing
from alm_bench.runner import RunConfig, run

TASKS = ("gtzan-genres", "gtzan-music-speech", "beijing-opera", "nsynth-instrument", "nsynth-pitch",
         "nsynth-velocity", "nsynth-qualities", "crema-d", "ravdess", "vocalsound", "sesa", "esc50-fewshot", "nlar")


def clip(path: Path, sr: int = 16000, channels: int = 1, seconds: float = 0.1, subtype: str | None = None) -> Path:
    """A short clip of seeded noise, unique per path: identical audio would alias items in the answer key."""
    path.parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(zlib.crc32(str(path).encode()))
    data = (0.1 * rng.standard_normal((int(sr * seconds), channels))).astype(np.float32)
    sf.write(path, data if channels > 1 else data[:, 0], sr, subtype=subtype)
    return path


def load(registry, task, root, tmp_path):
    spec = registry.tasks[task]
    return registry.loaders[spec.dataset.loader](spec, root, tmp_path / "empty-cache")


def _empty(folder: Path) -> Path:
    """An existing folder without the dataset's layout (a folder that does not exist is the runner's
    one-line error, tested in test_first_hour)."""
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def status(registry, task, root, tmp_path):
    spec = registry.tasks[task]
    return registry.loaders[spec.dataset.loader].status(spec, root, tmp_path / "empty-cache")


def assert_labels_declared(registry, task, items):
    assert {label for item in items for label in item.labels} <= set(registry.tasks[task].labels)


def assert_groups_within_one_part(items, key, part):
    """No speaker/actor is in two folds or splits."""
    parts = {}
    for item in items:
        parts.setdefault(item.meta[key], set()).add(getattr(item, part))
    assert all(len(p) == 1 for p in parts.values()), parts


def oracle(registry, task, root, tmp_path, **kwargs):
    summary = run(RunConfig(model="oracle", tasks=task, data_dir=root, output_dir=tmp_path / "out",
                            cache_dir=tmp_path / "cache", **kwargs), registry)
    assert not summary.skipped, summary.skipped
    return {r.method: r.metrics for r in summary.results}


def test_every_spec_loads_with_its_loader(registry):
    assert not registry.errors
    for task in TASKS:
        spec = registry.tasks[task]
        assert spec.dataset.loader in registry.loaders and spec.dataset.source and spec.dataset.licence
        assert all(r.source and r.model.endswith("(paper)") for r in spec.references)


# -- GTZAN ---------------------------------------------------------------------------------------

GENRE_FILES = [("blues", 0), ("blues", 9), ("blues", 10), ("hiphop", 55), ("hiphop", 99), ("classical", 3)]


def write_gtzan_genres(root: Path, folder="genres", ext=".au") -> Path:
    for genre, index in GENRE_FILES:
        clip(root / folder / genre / f"{genre}.{index:05d}{ext}", sr=22050)
    return root


def test_gtzan_genres_official_au_layout(registry, tmp_path):
    root = write_gtzan_genres(tmp_path / "gtzan")
    (root / "genres" / "input.mf").write_text("not audio\n")  # stray files beside the genre folders
    items = load(registry, "gtzan-genres", root, tmp_path)
    assert [i.id for i in items] == ["blues.00000", "blues.00009", "blues.00010", "classical.00003",
                                     "hiphop.00055", "hiphop.00099"]
    assert [i.fold for i in items] == [1, 1, 2, 1, 6, 10]  # blocks of ten file indices
    hiphop = items[4]
    assert hiphop.labels == ("hip hop",) and hiphop.original_labels == ("hiphop",)
    assert hiphop.audio == (str(root / "genres" / "hiphop" / "hiphop.00055.au"),)
    assert sf.info(hiphop.audio[0]).format == "AU"
    assert_labels_declared(registry, "gtzan-genres", items)
    assert status(registry, "gtzan-genres", root, tmp_path) == "ok, partial copy (6 of 1000 items)"


def test_gtzan_genres_rerelease_and_a_deleted_clip(registry, tmp_path):
    root = write_gtzan_genres(tmp_path / "Data", folder="genres_original", ext=".wav")
    items = load(registry, "gtzan-genres", tmp_path, tmp_path)  # found one level down
    assert len(items) == 6 and items[0].audio[0].endswith("genres_original/blues/blues.00000.wav")
    (root / "genres_original" / "blues" / "blues.00009.wav").unlink()
    # no file list ships with GTZAN: a lost clip shows as a partial copy
    assert status(registry, "gtzan-genres", tmp_path, tmp_path) == "ok, partial copy (5 of 1000 items)"


def test_gtzan_missing_or_misnamed(registry, tmp_path):
    with pytest.raises(DataMissing, match=r"no genres/ or genres_original/ folder .*alm-bench data download "
                                          r"gtzan-genres"):
        load(registry, "gtzan-genres", tmp_path, tmp_path)
    assert status(registry, "gtzan-genres", tmp_path, tmp_path) == "missing"
    clip(tmp_path / "genres" / "blues" / "track1.au")
    with pytest.raises(DataMissing, match=r"blues/track1.au is not named <genre>/<genre>.000NN"):
        load(registry, "gtzan-genres", tmp_path, tmp_path)


def test_gtzan_music_speech(registry, tmp_path):
    root = tmp_path / "gtzan"
    for name in ("bagpipe", "ballad", "blues"):
        clip(root / "music_speech" / "music_wav" / f"{name}.wav", sr=22050)
    for name in ("acomic", "allison", "amal"):
        clip(root / "music_speech" / "speech_wav" / f"{name}.wav", sr=22050)
    items = load(registry, "gtzan-music-speech", root, tmp_path)
    assert [i.id for i in items] == ["music/bagpipe", "music/ballad", "music/blues",
                                     "speech/acomic", "speech/allison", "speech/amal"]
    assert [i.labels[0] for i in items] == ["music"] * 3 + ["speech"] * 3
    assert [i.fold for i in items] == [1, 4, 7, 1, 4, 7]  # contiguous blocks per class
    assert_labels_declared(registry, "gtzan-music-speech", items)
    assert status(registry, "gtzan-music-speech", root, tmp_path) == "ok, partial copy (6 of 128 items)"
    with pytest.raises(DataMissing, match=r"no music_speech/ folder"):
        load(registry, "gtzan-music-speech", _empty(tmp_path / "elsewhere"), tmp_path)


# -- Beijing Opera -------------------------------------------------------------------------------

INSTRUMENTS = ("bangu", "daluo", "naobo", "xiaoluo")


def write_beijing(root: Path, per_instrument: int = 5) -> Path:
    folder = root / "beijing_opera_percussion_instrument_1.0"
    for k, instrument in enumerate(INSTRUMENTS):
        for n in range(per_instrument):
            clip(folder / f"{222100 + 10 * k + n}__ajaysm__{instrument}-{n + 1:02d}.wav", sr=44100, channels=2)
    return root


def test_beijing_opera_official_layout(registry, tmp_path):
    root = write_beijing(tmp_path / "bo")
    items = load(registry, "beijing-opera", root, tmp_path)
    assert len(items) == 20 and items[0].id == "222100__ajaysm__bangu-01"
    assert items[0].labels == items[0].original_labels == ("bangu",)
    folds = {}
    for item in items:
        folds.setdefault(item.fold, []).append(item.labels[0])
    assert sorted(folds) == [1, 2, 3, 4, 5] and all(sorted(f) == list(INSTRUMENTS) for f in folds.values())
    assert_labels_declared(registry, "beijing-opera", items)
    assert status(registry, "beijing-opera", root, tmp_path) == "ok, partial copy (20 of 236 items)"


def test_beijing_opera_folder_per_instrument_and_errors(registry, tmp_path):
    clip(tmp_path / "copy" / "naobo" / "stroke-1.wav")
    items = load(registry, "beijing-opera", tmp_path / "copy", tmp_path)
    assert [i.labels for i in items] == [("naobo",)]
    clip(tmp_path / "copy" / "other" / "mystery.wav")
    with pytest.raises(DataMissing, match=r"cannot tell the instrument of other/mystery.wav"):
        load(registry, "beijing-opera", tmp_path / "copy", tmp_path)
    with pytest.raises(DataMissing, match=r"no .wav strokes under .*alm-bench data download beijing-opera"):
        load(registry, "beijing-opera", _empty(tmp_path / "none"), tmp_path)


# -- NSynth --------------------------------------------------------------------------------------

QUALITIES = ["bright", "dark", "distortion", "fast_decay", "long_release", "multiphonic", "nonlinear_env",
             "percussive", "reverb", "tempo-synced"]
FAMILIES = ["bass", "brass", "flute", "guitar", "keyboard", "mallet", "organ", "reed", "string", "synth_lead",
            "vocal"]
SOURCES = ["acoustic", "electronic", "synthetic"]
#: split -> (instrument_str, pitch, velocity, qualities); train instruments are disjoint from valid/test
NOTES = {
    "test": [("bass_synthetic_033", 9, 25, []), ("bass_synthetic_033", 60, 100, ["dark"]),
             ("guitar_acoustic_010", 64, 127, ["bright", "percussive"]),
             ("synth_lead_synthetic_000", 72, 50, ["nonlinear_env", "tempo-synced"])],
    "valid": [("bass_synthetic_033", 62, 75, ["dark"]), ("guitar_acoustic_010", 66, 50, ["bright", "percussive"]),
              ("synth_lead_synthetic_000", 70, 127, ["nonlinear_env", "tempo-synced"])],
    "train": [("bass_electronic_018", 40, 25, ["dark"]), ("bass_electronic_018", 41, 50, ["dark"]),
              ("guitar_electronic_022", 50, 75, ["bright", "percussive"]),
              ("guitar_electronic_022", 52, 100, ["bright", "percussive"]),
              ("synth_lead_synthetic_005", 80, 127, ["nonlinear_env", "tempo-synced"]),
              ("synth_lead_synthetic_005", 81, 100, ["nonlinear_env", "tempo-synced"])],
}


def nsynth_note(instrument: str, pitch: int, velocity: int, qualities: list[str]) -> dict:
    family, source = instrument.rsplit("_", 2)[0], instrument.rsplit("_", 2)[1]
    note_str = f"{instrument}-{pitch:03d}-{velocity:03d}"
    return {"note": zlib.crc32(note_str.encode()) % 300000, "sample_rate": 16000, "pitch": pitch,
            "instrument_source": SOURCES.index(source), "instrument_family_str": family,
            "instrument_str": instrument, "note_str": note_str, "qualities_str": qualities,
            "instrument_source_str": source, "velocity": velocity, "instrument_family": FAMILIES.index(family),
            "instrument": zlib.crc32(instrument.encode()) % 1006, "qualities": [int(q in qualities) for q in QUALITIES]}


def write_nsynth(root: Path) -> Path:
    for split, notes in NOTES.items():
        folder = root / f"nsynth-{split}"
        examples = {n["note_str"]: n for n in (nsynth_note(*note) for note in notes)}
        for note_str in examples:
            clip(folder / "audio" / f"{note_str}.wav")
        (folder / "examples.json").write_text(json.dumps(examples, indent=4))
    return root


def test_nsynth_instrument_family_over_the_three_splits(registry, tmp_path):
    root = write_nsynth(tmp_path / "nsynth")
    items = load(registry, "nsynth-instrument", root, tmp_path)
    assert [i.split for i in items] == ["test"] * 4 + ["train"] * 6 + ["valid"] * 3
    lead = next(i for i in items if i.id == "synth_lead_synthetic_000-072-050")
    assert lead.labels == ("synth lead",) and lead.original_labels == ("synth_lead",)
    assert lead.audio == (str(root / "nsynth-test" / "audio" / "synth_lead_synthetic_000-072-050.wav"),)
    train = {i.meta["instrument_str"] for i in items if i.split == "train"}
    assert not train & {i.meta["instrument_str"] for i in items if i.split != "train"}
    assert_labels_declared(registry, "nsynth-instrument", items)
    assert status(registry, "nsynth-instrument", root, tmp_path) == "ok, partial copy (13 of 8596 items)"


def test_nsynth_pitch_velocity_and_qualities_labels(registry, tmp_path):
    root = write_nsynth(tmp_path / "nsynth")
    pitch = load(registry, "nsynth-pitch", root, tmp_path)
    assert len(pitch) == 12  # pitch 9 lies outside the piano range 21-108
    note = next(i for i in pitch if i.id == "bass_synthetic_033-060-100")
    assert note.labels == ("pitch 60",) and note.original_labels == ("60",)
    assert status(registry, "nsynth-pitch", root, tmp_path) == "ok (12 items)"  # size unknown
    velocity = {i.id: i for i in load(registry, "nsynth-velocity", root, tmp_path)}
    assert velocity["bass_synthetic_033-009-025"].labels == ("velocity 25",)
    qualities = {i.id: i for i in load(registry, "nsynth-qualities", root, tmp_path)}
    assert qualities["bass_synthetic_033-009-025"].labels == ()
    lead = qualities["synth_lead_synthetic_000-072-050"]
    assert lead.labels == ("nonlinear envelope", "tempo-synced")
    assert lead.original_labels == ("nonlinear_env", "tempo-synced")
    for task in ("nsynth-pitch", "nsynth-velocity", "nsynth-qualities"):
        assert_labels_declared(registry, task, load(registry, task, root, tmp_path))


def test_nsynth_max_notes_is_a_fixed_sample(registry, tmp_path):
    root = write_nsynth(tmp_path / "nsynth")
    spec = registry.tasks["nsynth-instrument"]
    args = {**spec.dataset.args, "max_notes": {"train": 2}}
    small = dataclasses.replace(spec, dataset=dataclasses.replace(spec.dataset, args=args))
    first = registry.loaders["nsynth"](small, root, tmp_path)
    train = [i.id for i in first if i.split == "train"]
    assert len(train) == 2 and len(first) == 9
    examples = root / "nsynth-train" / "examples.json"  # the sample does not depend on the file's order
    examples.write_text(json.dumps(dict(reversed(json.loads(examples.read_text()).items()))))
    assert [i.id for i in registry.loaders["nsynth"](small, root, tmp_path) if i.split == "train"] == train


def test_nsynth_missing_audio_and_metadata(registry, tmp_path):
    root = write_nsynth(tmp_path / "nsynth")
    (root / "nsynth-test" / "audio" / "guitar_acoustic_010-064-127.wav").unlink()
    with pytest.raises(DataMissing, match=r"1 of 13 audio files are missing under .*\(e\.g\. "
                                          r"nsynth-test/audio/guitar_acoustic_010-064-127\.wav\); "
                                          r"run `alm-bench data download nsynth-instrument`"):
        load(registry, "nsynth-instrument", root, tmp_path)
    assert status(registry, "nsynth-instrument", root, tmp_path) == "incomplete: 1 of 13 audio files missing"
    (root / "nsynth-train" / "examples.json").unlink()
    with pytest.raises(DataMissing, match=r"nsynth-train/examples.json not found"):
        load(registry, "nsynth-instrument", root, tmp_path)


# -- CREMA-D and RAVDESS -------------------------------------------------------------------------

CREMA = [("1001", "DFA", "ANG", "XX"), ("1001", "IEO", "HAP", "HI"), ("1002", "DFA", "NEU", "XX"),
         ("1003", "TIE", "SAD", "LO"), ("1004", "IWW", "FEA", "MD"), ("1005", "ITS", "DIS", "XX"),
         ("1006", "DFA", "ANG", "HI"), ("1006", "MTI", "SAD", "XX"), ("1007", "WSI", "HAP", "LO")]


def write_crema(root: Path) -> Path:
    for fields in CREMA:
        clip(root / "AudioWAV" / f"{'_'.join(fields)}.wav")
    return root


def test_crema_d_folds_are_actors(registry, tmp_path):
    root = write_crema(tmp_path / "CREMA-D")
    items = load(registry, "crema-d", root, tmp_path)
    assert len(items) == 9 and items[0].id == "1001_DFA_ANG_XX"
    assert items[0].labels == ("anger",) and items[0].original_labels == ("ANG",)
    assert items[0].meta == {"actor": "1001", "sentence": "DFA", "level": "XX"}
    assert_groups_within_one_part(items, "actor", "fold")
    assert {i.meta["actor"]: i.fold for i in items} == {"1001": 1, "1002": 2, "1003": 3, "1004": 4, "1005": 5,
                                                        "1006": 1, "1007": 2}
    assert_labels_declared(registry, "crema-d", items)
    assert status(registry, "crema-d", root, tmp_path) == "ok, partial copy (9 of 7442 items)"


def test_crema_d_missing_and_misnamed(registry, tmp_path):
    with pytest.raises(DataMissing, match=r"no AudioWAV/\*\.wav under .*get it from "
                                          r"https://github.com/CheyneyComputerScience/CREMA-D and pass --data-dir"):
        load(registry, "crema-d", tmp_path, tmp_path)
    clip(tmp_path / "AudioWAV" / "1001_DFA.wav")
    with pytest.raises(DataMissing, match=r"1001_DFA.wav is not named <ActorID>_<Sentence>_<Emotion>_<Level>"):
        load(registry, "crema-d", tmp_path, tmp_path)


def write_ravdess(root: Path) -> Path:
    for actor in range(1, 7):
        for emotion in (1, 5, 8):
            clip(root / f"Actor_{actor:02d}" / f"03-01-{emotion:02d}-01-01-01-{actor:02d}.wav", sr=48000)
    clip(root / "Actor_01" / "03-02-03-02-01-01-01.wav", sr=48000)  # song: not in the speech task
    return root


def test_ravdess_speech_folds_are_actors(registry, tmp_path):
    root = write_ravdess(tmp_path / "ravdess")
    items = load(registry, "ravdess", root, tmp_path)
    assert len(items) == 18 and all(i.meta["channel"] == "01" for i in items)
    first = items[0]
    assert first.id == "03-01-01-01-01-01-01" and first.labels == ("neutral",) and first.original_labels == ("01",)
    assert first.audio == (str(root / "Actor_01" / "03-01-01-01-01-01-01.wav"),)
    assert {i.labels[0] for i in items} == {"neutral", "angry", "surprised"}
    assert_groups_within_one_part(items, "actor", "fold")
    assert sorted({i.fold for i in items}) == [1, 2, 3, 4, 5]
    assert_labels_declared(registry, "ravdess", items)
    assert status(registry, "ravdess", root, tmp_path) == "ok, partial copy (18 of 1440 items)"
    with pytest.raises(DataMissing, match=r"no Actor_XX/\*\.wav under .*alm-bench data download ravdess"):
        load(registry, "ravdess", _empty(tmp_path / "none"), tmp_path)


# -- VocalSound ----------------------------------------------------------------------------------

VOCALSOUND = {"te": ["f0003_0_cough", "f0003_0_throatclearing", "m0101_1_laughter"],
              "tr": ["f0004_0_sigh", "f0004_0_sneeze", "m0005_0_sniff", "m0005_0_cough"],
              "val": ["f0010_0_laughter", "f0010_0_sniff"]}
MIDS = {"laughter": "/m/01j3sz", "sigh": "/m/07plz5l", "cough": "/m/01b_21", "throatclearing": "/m/0dl9sf8",
        "sneeze": "/m/01hsr_", "sniff": "/m/07ppn3j"}


def write_vocalsound(root: Path) -> Path:
    (root / "datafiles").mkdir(parents=True)
    rows = ["index,mid,display_name"] + [f"{i},{mid},{name}" for i, (name, mid) in enumerate(MIDS.items())]
    (root / "class_labels_indices_vs.csv").write_text("\n".join(rows) + "\n")
    for split, stems in VOCALSOUND.items():
        data = [{"wav": f"/data/sls/scratch/yuangong/vocalsound/data/audio_16k/{stem}.wav",
                 "labels": MIDS[stem.rsplit("_", 1)[1]]} for stem in stems]
        (root / "datafiles" / f"{split}.json").write_text(json.dumps({"data": data}, indent=1))
        for stem in stems:
            clip(root / "audio_16k" / f"{stem}.wav")
    return root


def test_vocalsound_official_speaker_disjoint_split(registry, tmp_path):
    root = write_vocalsound(tmp_path / "vs")
    items = load(registry, "vocalsound", root, tmp_path)
    assert [(i.id, i.split) for i in items][:3] == [("f0003_0_cough", "te"), ("f0003_0_throatclearing", "te"),
                                                   ("m0101_1_laughter", "te")]
    assert [len([i for i in items if i.split == s]) for s in ("te", "tr", "val")] == [3, 4, 2]
    clearing = items[1]
    assert clearing.labels == ("throat clearing",) and clearing.original_labels == ("throatclearing",)
    assert clearing.audio == (str(root / "audio_16k" / "f0003_0_throatclearing.wav"),)
    assert_groups_within_one_part(items, "speaker", "split")
    assert_labels_declared(registry, "vocalsound", items)
    assert status(registry, "vocalsound", root, tmp_path) == "ok, partial copy (9 of 21024 items)"


def test_vocalsound_missing_audio_and_datafile(registry, tmp_path):
    root = write_vocalsound(tmp_path / "vs")
    (root / "audio_16k" / "m0005_0_sniff.wav").unlink()
    with pytest.raises(DataMissing, match=r"1 of 9 audio files are missing under .*\(e\.g\. audio_16k/m0005_0_sniff"
                                          r"\.wav\); run `alm-bench data download vocalsound`"):
        load(registry, "vocalsound", root, tmp_path)
    (root / "datafiles" / "tr.json").unlink()
    with pytest.raises(DataMissing, match=r"metadata file .*datafiles/tr.json not found"):
        load(registry, "vocalsound", root, tmp_path)
    assert status(registry, "vocalsound", root, tmp_path) == "missing"


# -- SESA ----------------------------------------------------------------------------------------

SESA = {"train": ["casual_000", "casual_001", "explosion_000", "gunshot_000", "siren_000"],
        "test": ["casual_000", "explosion_000", "gunshot_000", "siren_000"]}


def write_sesa(root: Path) -> Path:
    for split, stems in SESA.items():
        for stem in stems:
            clip(root / "SESA" / split / f"{stem}.wav", subtype="PCM_U8" if split == "test" else "PCM_16")
    return root


def test_sesa_official_split(registry, tmp_path):
    root = write_sesa(tmp_path / "sesa")
    items = load(registry, "sesa", root, tmp_path)  # found inside SESA/
    assert [(i.id, i.split, i.labels[0]) for i in items[:4]] == [
        ("test/casual_000", "test", "casual"), ("test/explosion_000", "test", "explosion"),
        ("test/gunshot_000", "test", "gunshot"), ("test/siren_000", "test", "siren")]
    assert len(items) == 9 and items[0].audio == (str(root / "SESA" / "test" / "casual_000.wav"),)
    assert items[0].original_labels == ("casual",)
    assert_labels_declared(registry, "sesa", items)
    assert status(registry, "sesa", root, tmp_path) == "ok, partial copy (9 of 585 items)"
    with pytest.raises(DataMissing, match=r"no test/\*\.wav under .*alm-bench data download sesa"):
        load(registry, "sesa", _empty(tmp_path / "none"), tmp_path)


@pytest.mark.parametrize("task, write, lost, left", [
    ("beijing-opera", write_beijing, "beijing_opera_percussion_instrument_1.0/222110__ajaysm__daluo-01.wav",
     "19 of 236"),
    ("crema-d", write_crema, "AudioWAV/1003_TIE_SAD_LO.wav", "8 of 7442"),
    ("ravdess", write_ravdess, "Actor_02/03-01-05-01-01-01-02.wav", "17 of 1440"),
    ("sesa", write_sesa, "SESA/test/siren_000.wav", "8 of 585"),
])
def test_without_a_file_list_a_lost_clip_shows_as_a_partial_copy(registry, tmp_path, task, write, lost, left):
    root = write(tmp_path / "copy")
    (root / lost).unlink()
    assert status(registry, task, root, tmp_path) == f"ok, partial copy ({left} items)"


# -- NLAR ----------------------------------------------------------------------------------------

NLAR = [{"audio1": "audio/AmbianceBackyard_Quiet_bip.wav", "audio2": "audio/Rain hitting window.wav",
         "question": "Which recording has a more sudden and startling sound event?", "answer": "first"},
        {"audio1": "audio/Rain hitting window.wav", "audio2": "audio/AmbianceBackyard_Quiet_bip.wav",
         "question": "Does the first recording create a continuous sound throughout?", "answer": "yes"},
        {"id": "pair-3", "audio1": "audio/wood creaking.wav", "audio2": "audio/thunder.wav",
         "question": "How many wood creaking or thunder sounds are there in total?", "answer": 7}]


def write_nlar(root: Path) -> Path:
    root.mkdir(parents=True)
    (root / "nlar_test.jsonl").write_text("".join(json.dumps(r) + "\n" for r in NLAR))
    for name in ("AmbianceBackyard_Quiet_bip", "Rain hitting window", "wood creaking", "thunder"):
        clip(root / "audio" / f"{name}.wav", sr=44100)
    return root


def test_nlar_pairs(registry, tmp_path):
    root = write_nlar(tmp_path / "nlar")
    items = load(registry, "nlar", root, tmp_path)
    assert [i.id for i in items] == ["test-1", "test-2", "pair-3"]
    assert items[0].audio == (str(root / "audio/AmbianceBackyard_Quiet_bip.wav"),
                              str(root / "audio/Rain hitting window.wav"))
    assert items[1].audio == items[0].audio[::-1]  # order is kept: it can change the answer
    assert items[2].answer == "7" and items[0].question.startswith("Which recording")
    assert status(registry, "nlar", root, tmp_path) == "ok, partial copy (3 of 1640 items)"


def test_nlar_missing_clip_metadata_and_bad_lines(registry, tmp_path):
    root = write_nlar(tmp_path / "nlar")
    (root / "audio" / "thunder.wav").unlink()
    with pytest.raises(DataMissing, match=r"1 of 4 audio files are missing under .*\(e\.g\. audio/thunder\.wav\); "
                                          r"get it from https://github.com/JinhuaLiang/APT"):
        load(registry, "nlar", root, tmp_path)
    (root / "nlar_test.jsonl").write_text('{"audio1": "audio/thunder.wav", "question": "?"}\n')
    with pytest.raises(DataMissing, match=r"nlar_test.jsonl line 1 lacks audio2, answer"):
        load(registry, "nlar", root, tmp_path)
    with pytest.raises(DataMissing, match=r"nlar_test.jsonl not found; get it from .* laid out as nlar_test.jsonl"):
        load(registry, "nlar", _empty(tmp_path / "none"), tmp_path)


# -- end to end: the oracle is perfect on every task type ----------------------------------------

def test_oracle_multiclass_with_folds(registry, tmp_path):
    metrics = oracle(registry, "beijing-opera", write_beijing(tmp_path / "bo"), tmp_path)
    assert set(metrics) == {"text_matching", "log_likelihood", "zero_shot_embedding", "linear_probe"}
    assert all(m["accuracy"] == 1.0 for m in metrics.values()), metrics


def test_oracle_multiclass_with_splits(registry, tmp_path):
    metrics = oracle(registry, "vocalsound", write_vocalsound(tmp_path / "vs"), tmp_path,
                     methods=("text_matching", "log_likelihood"))
    assert all(m["accuracy"] == 1.0 for m in metrics.values()), metrics


def test_oracle_multilabel(registry, tmp_path):
    metrics = oracle(registry, "nsynth-qualities", write_nsynth(tmp_path / "nsynth"), tmp_path)
    assert set(metrics) == {"text_matching", "log_likelihood", "zero_shot_embedding", "linear_probe"}
    assert all(m["mAP"] == 1.0 for m in metrics.values()), metrics


def write_esc50(root: Path, labels, classes: int = 12, per_class: int = 8) -> Path:
    """meta/esc50.csv (official columns) and 8 clips of each of 12 classes over the five folds."""
    rows = ["filename,fold,target,category,esc10,src_file,take"]
    for target in range(classes):
        for n in range(per_class):
            fold, src = n % 5 + 1, 100000 + 100 * target + n
            name = f"{fold}-{src}-A-{target}.wav"
            category = labels[target].replace(" ", "_")  # as ESC-50 writes it: sea_waves
            rows.append(f"{name},{fold},{target},{category},False,{src},A")
            clip(root / "audio" / name, sr=44100)
    (root / "meta").mkdir(parents=True)
    (root / "meta" / "esc50.csv").write_text("\n".join(rows) + "\n")
    return root


def test_oracle_fewshot(registry, tmp_path):
    # the spec's ways, shots and queries; 10 of its 100 episodes (a prefix of them) keep the test quick
    spec = registry.tasks["esc50-fewshot"]
    quick = dataclasses.replace(spec, methods={m: {**o, "episodes": 10} for m, o in spec.methods.items()})
    registry = dataclasses.replace(registry, tasks={**registry.tasks, spec.id: quick})
    metrics = oracle(registry, spec.id, write_esc50(tmp_path / "ESC-50-master", registry.tasks["esc50"].labels),
                     tmp_path)
    assert set(metrics) == {"fewshot", "fewshot_prototype"}
    for m in metrics.values():
        assert m["5-way accuracy"] == 1.0 and m["12-way accuracy"] == 1.0, metrics


def test_oracle_two_clip(registry, tmp_path):
    metrics = oracle(registry, "nlar", write_nlar(tmp_path / "nlar"), tmp_path)
    assert metrics == {"two_clip": {"accuracy": 1.0}}
