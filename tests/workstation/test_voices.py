"""Speaker augmentation: drawn espeak-ng voices and fixed per-voice warps make new classes."""

from __future__ import annotations

from pathlib import Path

from train.espeak_voices import PER_FOLDER, draw_voice, prepare_data
from train.train import TrainConfig, prepare


def test_drawn_voices_are_seeded_and_distinct() -> None:
    assert draw_voice(7, 0) == draw_voice(7, 0)
    variants = {draw_voice(i, 0).variant.split("\n", 2)[2] for i in range(200)}  # without the name line
    assert len(variants) == 200
    assert draw_voice(7, 0).variant != draw_voice(7, 1).variant
    genders = {draw_voice(i, 0).gender for i in range(50)}
    assert genders == {"male", "female"}


def test_variants_are_spread_over_data_folders_espeak_can_list(tmp_path: Path) -> None:
    voices = [draw_voice(i, 0) for i in range(PER_FOLDER + 3)]
    paths = prepare_data(tmp_path, voices)
    assert len(set(paths.values())) == 2
    first = paths[voices[0].name] / "espeak-ng-data" / "voices" / "!v"
    assert sorted(p.name for p in first.iterdir()) == sorted(v.name for v in voices[:PER_FOLDER])


def _fake_corpus(root: Path) -> None:
    for spk in ("mb-aa1", "mb-bb1", "es-sv0001", "es-sv0002", "rh-val1", "rh-val2"):
        (root / spk).mkdir(parents=True)
        for i in range(4):
            (root / spk / f"{i:03d}.wav").write_bytes(b"")
    (root / "splits").mkdir()
    (root / "splits/train.txt").write_text("mb-aa1\nmb-bb1\nes-sv0001\nes-sv0002\n")
    (root / "splits/val.txt").write_text("rh-val1\nrh-val2\n")


def test_each_warp_of_a_recorded_voice_is_a_new_class_and_drawn_voices_are_not_warped(tmp_path: Path) -> None:
    _fake_corpus(tmp_path)
    cfg = TrainConfig(data=str(tmp_path), splits=str(tmp_path / "splits"), out=str(tmp_path / "run"),
                      speeds=(1.0, 0.9, 1.1), heldout=1)
    items, classes, heldout, val = prepare(cfg)
    assert sorted(classes) == sorted([(s, v) for s in ("mb-aa1", "mb-bb1") for v in (1.0, 0.9, 1.1)]
                                     + [("es-sv0001", 1.0), ("es-sv0002", 1.0)])
    for label, (spk, spd) in enumerate(classes):  # one fixed transform for every clip of a class
        mine = [it for it in items if it.label == label]
        assert mine and all(it.speed == spd and it.path.parent.name == spk for it in mine)
    assert len({(c, it.speed) for it in items for c in [classes[it.label][0]]}) == len(classes)
    assert set(val) == {"rh-val1", "rh-val2"} and len(heldout) == 4
