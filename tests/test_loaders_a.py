"""Loaders of UrbanSound8K, TUT 2017, DCASE 2017 task 4, FSD50K, AudioSet, AudioCaps and Auto-ACD on
fixture trees in each dataset's official layout: the real file names, metadata formats and header
conventions, with short generated clips at the sample rates and channel counts the datasets use."""

import csv
import re
import zlib
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from alm_bench.data import DataMissing
from alm_bench.runner import RunConfig, run
from alm_bench.specs import Splits

TASK_LOADERS = {
    "urbansound8k": "urbansound8k", "tut2017": "tut2017", "dcase2017-task4": "dcase2017", "fsd50k": "fsd50k",
    "audioset": "audioset", "audiocaps-caption": "audiocaps", "audiocaps-retrieval": "audiocaps",
    "autoacd-caption": "autoacd",
}


def _wav(path: Path, rate: int = 16000, channels: int = 1, seconds: float = 0.1) -> Path:
    """A short noise clip, different for every file name (the oracle tells clips apart by content)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(zlib.crc32(path.name.encode()))
    frames = int(rate * seconds)
    samples = rng.standard_normal((frames, channels) if channels > 1 else frames)
    sf.write(path, (0.1 * samples).astype(np.float32), rate)
    return path


def _write_csv(path: Path, header: list[str] | None, rows: list, delimiter: str = ",") -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh, delimiter=delimiter, lineterminator="\n")
        if header:
            writer.writerow(header)
        writer.writerows(rows)


@dataclass
class Fixture:
    task: str
    data_dir: Path  # what --data-dir names
    root: Path  # where the official layout starts (an archive may add a folder)
    items: int
    audio: Path  # a clip stored under the loader's preferred name
    metadata: Path


def _load(registry, task, data_dir, cache_dir, spec=None):
    spec = spec or registry.tasks[task]
    return registry.loaders[spec.dataset.loader](spec, data_dir, cache_dir)


# -- fixture trees ---------------------------------------------------------------------------------

US8K_CLASSES = ["air_conditioner", "car_horn", "children_playing", "dog_bark", "drilling", "engine_idling",
                "gun_shot", "jackhammer", "siren", "street_music"]
FORMATS = [(44100, 2), (22050, 1), (16000, 1), (48000, 2)]  # Freesound originals vary per file


def build_urbansound8k(base: Path) -> Fixture:
    root = base / "UrbanSound8K"  # as UrbanSound8K.tar.gz unpacks
    rows = []
    for fold in (1, 5, 10):
        for class_id, name in enumerate(US8K_CLASSES):
            for slice_id in range(2):
                fs_id = 100032 if (fold, class_id, slice_id) == (5, 3, 0) else 200000 + 100 * fold + 10 * class_id
                file = f"{fs_id}-{class_id}-0-{slice_id}.wav"  # [fsID]-[classID]-[occurrenceID]-[sliceID].wav
                rows.append([file, fs_id, f"{slice_id * 4.0:.1f}", f"{slice_id * 4.0 + 0.317551:.6f}",
                             1 + slice_id, fold, class_id, name])
                _wav(root / "audio" / f"fold{fold}" / file, *FORMATS[len(rows) % len(FORMATS)])
    metadata = root / "metadata" / "UrbanSound8K.csv"
    _write_csv(metadata, ["slice_file_name", "fsID", "start", "end", "salience", "fold", "classID", "class"], rows)
    return Fixture("urbansound8k", base, root, 60, root / "audio" / "fold5" / "100032-3-0-0.wav", metadata)


TUT_SCENES = ["beach", "bus", "cafe/restaurant", "car", "city_center", "forest_path", "grocery_store", "home",
              "library", "metro_station", "office", "park", "residential_area", "train", "tram"]


def build_tut2017(base: Path) -> Fixture:
    root = base / "TUT-acoustic-scenes-2017-evaluation"  # the meta and audio zips all unpack here
    lines = []
    for n, scene in enumerate(TUT_SCENES, start=1):
        _wav(root / "audio" / f"{n}.wav", 44100, 2)  # binaural recordings
        lines.append(f"audio/{n}.wav\t{scene}")
    lines[0] += "\tb001"  # a third column (recording location), as TUT lists may carry: ignored
    (root / "meta.txt").write_text("\n".join(lines) + "\n")
    return Fixture("tut2017", base, base, 15, root / "audio" / "2.wav", root / "meta.txt")


DCASE_ROWS = [  # groundtruth_weak_label_evaluation_set.csv: rows are grouped by label, a clip recurs per label
    ("-JMT0mK0Dbg_30.000_40.000.wav", "Train horn"), ("P54KKbTA_TE_0.000_7.000.wav", "Train horn"),
    ("YilfKdY7w6Y_60.000_70.000.wav", "Train horn"), ("ePVb5Upev8k_40.000_50.000.wav", "Train horn"),
    ("YilfKdY7w6Y_60.000_70.000.wav", "Air horn, truck horn"),
    ("ePVb5Upev8k_40.000_50.000.wav", "Air horn, truck horn"),
    ("i9VjpIbM3iE_410.000_420.000.wav", "Air horn, truck horn"), ("i9VjpIbM3iE_410.000_420.000.wav", "Car alarm"),
    ("-2sE5CH8Wb8_30.000_40.000.wav", "Reversing beeps"), ("0x82_HySIVU_30.000_40.000.wav", "Bicycle"),
]


def build_dcase2017(base: Path) -> Fixture:
    rows = []
    for name, label in DCASE_ROWS:
        start, end = Path(name).stem.rsplit("_", 2)[1:]
        rows.append([name, start, end, label])
        # the organisers' download script prefixes Y; one clip of this copy was saved without it
        _wav(base / "audio" / "eval" / (name if name.startswith("0x82") else f"Y{name}"), 44100, 1)
    metadata = base / "groundtruth_weak_label_evaluation_set.csv"
    _write_csv(metadata, None, rows, delimiter="\t")
    return Fixture("dcase2017-task4", base, base, 7, base / "audio" / "eval" / "YP54KKbTA_TE_0.000_7.000.wav",
                   metadata)


GUITAR = ("Electric_guitar,Guitar,Plucked_string_instrument,Musical_instrument,Music",
          "/m/02sgy,/m/0342h,/m/0fx80y,/m/04szw,/m/04rlf")
DOG = ("Bark,Dog,Domestic_animals_and_pets,Animal", "/m/05tny_,/m/0bt9lr,/m/068hy,/m/0jbk")
BATH = ("Bathtub_(filling_or_washing),Water", "/m/03dnzn,/m/0838f")
CAR = ("Accelerating_and_revving_and_vroom,Motor_vehicle_(road),Vehicle", "/m/07q2z82,/m/012f08,/m/07yv9")
FSD_VOCABULARY = [(0, "Accelerating_and_revving_and_vroom", "/m/07q2z82"), (5, "Animal", "/m/0jbk"),
                  (7, "Bark", "/m/05tny_"), (10, "Bathtub_(filling_or_washing)", "/m/03dnzn"), (59, "Dog", "/m/0bt9lr"),
                  (60, "Domestic_animals_and_pets", "/m/068hy"), (69, "Electric_guitar", "/m/02sgy"),
                  (90, "Guitar", "/m/0342h"), (118, "Motor_vehicle_(road)", "/m/012f08"), (120, "Music", "/m/04rlf"),
                  (121, "Musical_instrument", "/m/04szw"), (127, "Plucked_string_instrument", "/m/0fx80y"),
                  (184, "Vehicle", "/m/07yv9"), (187, "Water", "/m/0838f")]


def build_fsd50k(base: Path) -> Fixture:
    truth = base / "FSD50K.ground_truth"
    eval_rows = [("37199", *GUITAR), ("175151", *DOG), ("253463", *BATH), ("11872", *CAR)]
    dev_rows = [("64760", *GUITAR, "train"), ("91293", *DOG, "train"), ("5311", *BATH, "val"), ("401", *CAR, "val")]
    _write_csv(truth / "eval.csv", ["fname", "labels", "mids"], eval_rows)
    _write_csv(truth / "dev.csv", ["fname", "labels", "mids", "split"], dev_rows)
    _write_csv(truth / "vocabulary.csv", None, FSD_VOCABULARY)  # no header
    for fname, *_ in eval_rows:
        _wav(base / "FSD50K.eval_audio" / f"{fname}.wav", 22050, 1)
    for fname, *_ in dev_rows:
        _wav(base / "FSD50K.dev_audio" / f"{fname}.wav", 44100, 1)
    return Fixture("fsd50k", base, base, 4, base / "FSD50K.eval_audio" / "175151.wav", truth / "eval.csv")


AUDIOSET_CLASSES = [(54, "/m/03cczk", "Chewing, mastication"), (72, "/m/0jbk", "Animal"),
                    (73, "/m/068hy", "Domestic animals, pets"), (74, "/m/0bt9lr", "Dog"), (0, "/m/09x0r", "Speech"),
                    (307, "/m/0k4j", "Car"), (361, "/m/07q6cd_", "Squeak"), (379, "/m/03v3yw", "Keys jangling"),
                    (451, "/t/dd00088", "Gush")]
AUDIOSET_SEGMENTS = {  # YTID -> (start, end, MIDs, the file name this copy stores it under)
    "--4gqARaEJE": (0.0, 10.0, "/m/068hy,/m/07q6cd_,/m/0bt9lr,/m/0jbk", "--4gqARaEJE.wav"),
    "-0RWZT-miFs": (420.0, 430.0, "/m/03v3yw,/m/0k4j", "Y-0RWZT-miFs.wav"),
    "--PJHxphWEs": (30.0, 40.0, "/m/09x0r,/t/dd00088", "--PJHxphWEs_30.wav"),
    "-1nilez17Dg": (30.0, 40.0, "/m/09x0r", "Y-1nilez17Dg_30.000_40.000.wav"),
    "-2PDE7hUArE": (60.0, 70.0, "/m/0k4j,/m/03cczk", "-2PDE7hUArE.flac"),
}


def build_audioset(base: Path) -> Fixture:
    lines = ["# Segments csv created Sun Mar  5 10:54:25 2017",
             "# num_ytids=5, num_segs=5, num_unique_labels=9, num_positive_labels=12",
             "# YTID, start_seconds, end_seconds, positive_labels"]
    for ytid, (start, end, mids, file) in AUDIOSET_SEGMENTS.items():
        lines.append(f'{ytid}, {start:.3f}, {end:.3f}, "{mids}"')
        _wav(base / "audio" / "eval_segments" / file, 16000, 1)
    (base / "eval_segments.csv").write_text("\n".join(lines) + "\n")
    _write_csv(base / "class_labels_indices.csv", ["index", "mid", "display_name"], sorted(AUDIOSET_CLASSES))
    return Fixture("audioset", base, base, 5, base / "audio" / "eval_segments" / "--4gqARaEJE.wav",
                   base / "eval_segments.csv")


AUDIOCAPS = {  # youtube_id -> (start_time, five captions, the file name this copy stores it under)
    "-DmjkgWa-rw": (10, ["A bell is ringing", "A bell rings loudly several times", "Church bells ring out",
                         "Repeated ringing of a large bell", "A bell tolls as wind blows"], "-DmjkgWa-rw.wav"),
    "y682ml90jGw": (11, ["A machine beeps continuously", "Electronic beeps occur in a short series",
                         "A beep repeats multiple times", "High pitched beeping from a device",
                         "Beeping followed by silence"], "Yy682ml90jGw.wav"),
    "vh30P49Po6s": (30, ["A duck quacks continuously", "A duck quacks loudly and continuously",
                         "Ducks quack near water", "A duck calls over and over", "Quacking of a single duck"],
                    "vh30P49Po6s_30.wav"),
    "zgUgkpk78xU": (70, ["A horn blasts as warning bells ring", "A train horn sounds as a railroad passing bell rings",
                         "The clinking of a train bell with the humming of an engine and a train horn blowing",
                         "A train passes blowing its horn", "Warning bells ring and a train horn honks"],
                    "zgUgkpk78xU.flac"),
}


def build_audiocaps(base: Path) -> Fixture:
    rows = []
    for n in range(5):  # the official csv interleaves clips; rows are regrouped by youtube_id
        for k, (ytid, (start, captions, _)) in enumerate(AUDIOCAPS.items()):
            rows.append([97151 + 10 * n + k, ytid, start, captions[n]])
    _write_csv(base / "test.csv", ["audiocap_id", "youtube_id", "start_time", "caption"], rows)
    for ytid, (_, _, file) in AUDIOCAPS.items():
        _wav(base / "audio" / "test" / file, 32000, 2)
    return Fixture("audiocaps-caption", base, base, 4, base / "audio" / "test" / "-DmjkgWa-rw.wav", base / "test.csv")


AUTOACD = [  # (youtube_id, caption) rows of test.csv; VGGSound-derived ids carry a start-time suffix
    ("---g-f_I2yQ_000001", "A man speaks as a train horn blares, suggesting a busy railway station."),
    ("-0jeONf82dE_000021", "Birds chirp and water trickles, creating a calm atmosphere in a forest."),
    ("--PJHxphWEs", "A woman talks while water gushes from a tap in a small kitchen."),
    ("---g-f_I2yQ_000001", "A train horn sounds repeatedly as a man talks on a platform."),
]


def build_autoacd(base: Path) -> Fixture:
    _write_csv(base / "test.csv", ["youtube_id", "caption"], AUTOACD)
    _wav(base / "audio" / "test" / "---g-f_I2yQ_000001.wav", 16000, 1)
    _wav(base / "audio" / "test" / "Y-0jeONf82dE_000021.wav", 16000, 1)
    _wav(base / "audio" / "test" / "--PJHxphWEs.flac", 16000, 1)
    return Fixture("autoacd-caption", base, base, 3, base / "audio" / "test" / "---g-f_I2yQ_000001.wav",
                   base / "test.csv")


BUILDERS = {f.__name__.removeprefix("build_"): f for f in (
    build_urbansound8k, build_tut2017, build_dcase2017, build_fsd50k, build_audioset, build_audiocaps, build_autoacd)}


# -- every loader: registration, status, missing data --------------------------------------------

def test_specs_register_with_their_loaders(registry):
    assert not registry.errors
    for task, loader in TASK_LOADERS.items():
        spec = registry.tasks[task]
        assert spec.dataset.loader == loader and loader in registry.loaders, task
        assert spec.dataset.downloads, task
        assert all(r.source and r.model.endswith("(paper)") for r in spec.references), task
    sizes = {task: len(registry.tasks[task].labels) for task in TASK_LOADERS}
    assert sizes == {"urbansound8k": 10, "tut2017": 15, "dcase2017-task4": 17, "fsd50k": 200, "audioset": 527,
                     "audiocaps-caption": 0, "audiocaps-retrieval": 0, "autoacd-caption": 0}
    # the Pengi paper's headline TUT 2017 number (Table 3) is its "generate metadata" cell of Table 11
    assert registry.tasks["tut2017"].prompts[0] == "generate metadata"
    assert "this acoustic scene is" in registry.tasks["tut2017"].prompts
    assert registry.tasks["fsd50k"].labels[:2] == ("accelerating and revving and vroom", "accordion")
    assert "male speech, man speaking" in registry.tasks["audioset"].labels


@pytest.mark.parametrize("name", sorted(BUILDERS))
def test_status_and_missing_files_are_reported(name, registry, tmp_path):
    fx = BUILDERS[name](tmp_path / "data")
    spec = registry.tasks[fx.task]
    loader = registry.loaders[spec.dataset.loader]
    items = loader(spec, fx.data_dir, tmp_path)
    assert len(items) == fx.items and all(Path(p).is_file() for i in items for p in i.audio)
    assert set(spec.labels) >= {label for i in items for label in i.labels}
    size = spec.dataset.size
    assert loader.status(spec, fx.data_dir, tmp_path) == (
        f"ok, partial copy ({fx.items} of {size} items)" if size else f"ok ({fx.items} items)")

    fx.audio.unlink()
    example = re.escape(str(fx.audio.relative_to(fx.root)))
    with pytest.raises(DataMissing, match=rf"1 of {fx.items} audio files are missing under .*\(e\.g\. {example}\); "
                                          rf"run `alm-bench data download {fx.task}`"):
        loader(spec, fx.data_dir, tmp_path)
    assert loader.status(spec, fx.data_dir, tmp_path) == f"incomplete: 1 of {fx.items} audio files missing"

    fx.metadata.unlink()
    with pytest.raises(DataMissing, match=rf"{re.escape(fx.metadata.name)} not found; .*data download {fx.task}"):
        loader(spec, fx.data_dir, tmp_path)
    assert loader.status(spec, fx.data_dir, tmp_path) == "missing"


# -- each dataset's own rules ----------------------------------------------------------------------

def test_urbansound8k_folds_paths_and_labels(registry, tmp_path):
    fx = build_urbansound8k(tmp_path)
    items = {i.id: i for i in _load(registry, "urbansound8k", tmp_path, tmp_path)}
    item = items["100032-3-0-0"]
    assert item.audio == (str(fx.root / "audio" / "fold5" / "100032-3-0-0.wav"),)
    assert item.fold == 5 and item.labels == ("dog bark",) and item.original_labels == ("dog_bark",)
    assert item.meta == {"class_id": 3, "fs_id": "100032", "salience": 1}
    assert {i.fold for i in items.values()} == {1, 5, 10}
    assert {i.labels[0] for i in items.values()} == set(registry.tasks["urbansound8k"].labels)
    assert items["200100-0-0-1"].audio[0].endswith("audio/fold1/200100-0-0-1.wav")


def test_tut2017_scenes_from_meta_txt_or_evaluate_txt(registry, tmp_path):
    fx = build_tut2017(tmp_path)
    folder = tmp_path / "TUT-acoustic-scenes-2017-evaluation"
    items = _load(registry, "tut2017", tmp_path, tmp_path)
    assert [i.id for i in items] == [str(n) for n in range(1, 16)]
    assert {i.split for i in items} == {"evaluation"}
    by_scene = {i.original_labels[0]: i for i in items}
    assert by_scene["cafe/restaurant"].labels == ("cafe restaurant",)  # the spec's label_map
    assert by_scene["city_center"].labels == ("city center",)
    assert by_scene["beach"].audio == (str(folder / "audio" / "1.wav"),)
    assert {i.labels[0] for i in items} == set(registry.tasks["tut2017"].labels)
    # --data-dir may name the set's own folder; without meta.txt the evaluation setup list is read
    assert [i.id for i in _load(registry, "tut2017", folder, tmp_path)] == [i.id for i in items]
    (folder / "evaluation_setup").mkdir()
    fx.metadata.rename(folder / "evaluation_setup" / "evaluate.txt")
    again = _load(registry, "tut2017", tmp_path, tmp_path)
    assert [(i.id, i.labels, i.audio) for i in again] == [(i.id, i.labels, i.audio) for i in items]


def test_dcase2017_groups_weak_labels_per_clip(registry, tmp_path):
    build_dcase2017(tmp_path)
    items = {i.id: i for i in _load(registry, "dcase2017-task4", tmp_path, tmp_path)}
    assert list(items) == ["-JMT0mK0Dbg_30.000_40.000", "P54KKbTA_TE_0.000_7.000", "YilfKdY7w6Y_60.000_70.000",
                           "ePVb5Upev8k_40.000_50.000", "i9VjpIbM3iE_410.000_420.000", "-2sE5CH8Wb8_30.000_40.000",
                           "0x82_HySIVU_30.000_40.000"]
    horns = items["YilfKdY7w6Y_60.000_70.000"]
    assert horns.labels == ("train horn", "air horn, truck horn")
    assert horns.original_labels == ("Train horn", "Air horn, truck horn")
    assert horns.meta == {"youtube_id": "YilfKdY7w6Y", "start": 60.0, "end": 70.0}
    assert horns.split == "evaluation"
    assert horns.audio[0].endswith("audio/eval/YYilfKdY7w6Y_60.000_70.000.wav")
    assert items["0x82_HySIVU_30.000_40.000"].audio[0].endswith("audio/eval/0x82_HySIVU_30.000_40.000.wav")
    assert items["i9VjpIbM3iE_410.000_420.000"].labels == ("air horn, truck horn", "car alarm")


def test_fsd50k_eval_and_dev_splits(registry, tmp_path):
    build_fsd50k(tmp_path)
    items = {i.id: i for i in _load(registry, "fsd50k", tmp_path, tmp_path)}
    assert list(items) == ["37199", "175151", "253463", "11872"] and {i.split for i in items.values()} == {"eval"}
    dog = items["175151"]
    assert dog.labels == ("bark", "dog", "domestic animals and pets", "animal")
    assert dog.original_labels == ("Bark", "Dog", "Domestic_animals_and_pets", "Animal")
    assert dog.meta["mids"] == ["/m/05tny_", "/m/0bt9lr", "/m/068hy", "/m/0jbk"]
    assert dog.audio == (str(tmp_path / "FSD50K.eval_audio" / "175151.wav"),)
    assert items["253463"].labels == ("bathtub (filling or washing)", "water")
    # a probe task may add the dev set's own train/val split
    spec = replace(registry.tasks["fsd50k"], splits=Splits(test="eval", train="train", valid="val"))
    split_of = {i.id: i.split for i in _load(registry, "fsd50k", tmp_path, tmp_path, spec)}
    assert split_of == {"64760": "train", "91293": "train", "5311": "val", "401": "val", **{k: "eval" for k in items}}


def test_audioset_segments_mids_and_file_name_conventions(registry, tmp_path):
    build_audioset(tmp_path)
    items = {i.id: i for i in _load(registry, "audioset", tmp_path, tmp_path)}
    assert list(items) == list(AUDIOSET_SEGMENTS)
    folder = tmp_path / "audio" / "eval_segments"
    for ytid, (start, end, mids, file) in AUDIOSET_SEGMENTS.items():
        assert items[ytid].audio == (str(folder / file),)
        assert items[ytid].meta == {"start": start, "end": end, "mids": mids.split(",")}
    dog = items["--4gqARaEJE"]
    assert dog.original_labels == ("Domestic animals, pets", "Squeak", "Dog", "Animal")
    assert dog.labels == ("domestic animals, pets", "squeak", "dog", "animal") and dog.split == "eval"
    # a MID the class list lacks means mismatched metadata, not an unknown label to drop
    (tmp_path / "eval_segments.csv").write_text('abc, 0.000, 10.000, "/m/09x0r,/m/unknown"\n')
    with pytest.raises(DataMissing, match="/m/unknown, which class_labels_indices.csv does not list"):
        _load(registry, "audioset", tmp_path, tmp_path)


def test_audiocaps_groups_five_captions_per_clip(registry, tmp_path):
    build_audiocaps(tmp_path)
    for task in ("audiocaps-caption", "audiocaps-retrieval"):
        items = {i.id: i for i in _load(registry, task, tmp_path, tmp_path)}
        assert list(items) == list(AUDIOCAPS)
        for ytid, (start, captions, file) in AUDIOCAPS.items():
            assert items[ytid].captions == tuple(captions) and items[ytid].split == "test"
            assert items[ytid].audio == (str(tmp_path / "audio" / "test" / file),)
            assert items[ytid].meta["start_time"] == start and len(items[ytid].meta["audiocap_ids"]) == 5


def test_autoacd_pairs_header_and_repeated_clips(registry, tmp_path):
    build_autoacd(tmp_path)
    items = _load(registry, "autoacd-caption", tmp_path, tmp_path)
    assert [i.id for i in items] == ["---g-f_I2yQ_000001", "-0jeONf82dE_000021", "--PJHxphWEs"]
    assert items[0].captions == (AUTOACD[0][1], AUTOACD[3][1])
    assert items[1].audio[0].endswith("audio/test/Y-0jeONf82dE_000021.wav")
    assert items[2].audio[0].endswith("audio/test/--PJHxphWEs.flac") and items[2].split == "test"
    # the release's README spells the header "# YouTube ID, caption"
    (tmp_path / "test.csv").write_text("# YouTube ID, caption\n" + "".join(f'{i},"{c}"\n' for i, c in AUTOACD))
    assert [(i.id, i.captions) for i in _load(registry, "autoacd-caption", tmp_path, tmp_path)] == \
        [(i.id, i.captions) for i in items]


# -- end to end, one per task type: the oracle scores perfectly ------------------------------------

def _run(registry, cache_dir, tmp_path, tasks, data_dir, **kwargs):
    summary = run(RunConfig(model="oracle", tasks=tasks, data_dir=data_dir, output_dir=tmp_path / "out",
                            cache_dir=cache_dir, **kwargs), registry)
    assert not summary.skipped, summary.skipped
    return {(r.task, r.method): r for r in summary.results}


def test_multiclass_end_to_end(registry, cache_dir, tmp_path):
    build_urbansound8k(tmp_path / "data")
    # the probe's fold rotation is the runner's, tested on ESC-50 and the synthetic suite (and slow)
    results = _run(registry, cache_dir, tmp_path, "urbansound8k", tmp_path / "data",
                   methods=("text_matching", "log_likelihood"))
    assert set(results) == {("urbansound8k", m) for m in ("text_matching", "log_likelihood")}
    for result in results.values():
        assert result.metrics["accuracy"] == 1.0 and result.n_failed == 0 and result.n_items == 60
        assert result.partial and result.expected_items == 8732


def test_multilabel_end_to_end(registry, cache_dir, tmp_path):
    build_dcase2017(tmp_path / "data")
    results = _run(registry, cache_dir, tmp_path, "dcase2017-task4", tmp_path / "data")
    assert set(results) == {("dcase2017-task4", m) for m in ("text_matching", "log_likelihood", "zero_shot_embedding")}
    for result in results.values():
        assert result.metrics["mAP"] == 1.0 and result.n_failed == 0 and result.n_items == 7
        # three clips carry two labels; the largest-gap decision rule predicts both, so F1 is perfect
        assert result.metrics["F1"] == 1.0 and result.primary_metric == "F1"


@pytest.fixture(scope="module")
def audiocaps_results(registry, cache_dir, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("audiocaps")
    build_audiocaps(tmp / "data")
    return _run(registry, cache_dir, tmp, "audiocaps-caption,audiocaps-retrieval", tmp / "data")


def test_captioning_end_to_end(audiocaps_results):
    result = audiocaps_results[("audiocaps-caption", "captioning")]
    # the oracle answers with one of the five references, scored against all five
    assert result.metrics["BLEU-1"] == pytest.approx(1.0) and result.metrics["ROUGE-L"] == pytest.approx(1.0)
    assert result.n_items == 4 and result.n_failed == 0 and result.primary_metric == "SPIDEr"
    assert result.metrics["SPIDEr"] is not None or "SPICE" in result.unavailable["SPIDEr"]


def test_retrieval_end_to_end(audiocaps_results):
    embedding = audiocaps_results[("audiocaps-retrieval", "retrieval_embedding")].metrics
    assert embedding["t2a_R@1"] == 1.0 and embedding["a2t_R@1"] == 1.0
    generative = audiocaps_results[("audiocaps-retrieval", "retrieval")].metrics
    assert generative["a2t_R@1"] == 1.0 and generative["t2a_R@5"] == 1.0
