"""The streaming input pipeline (`python -m train --pipeline stream`, train/input_pipeline.py): the
device's cepstra, fresh augmentation at every read, seeded batches, disjoint worker shards, and the
training loop on it (a run, and a resumed run that repeats no epoch)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from device.audio import load_audio
from device.embedder import fit_window
from device.features import FeatureConfig, log_mel_cepstra, normalize
from tests.helpers import REPO, TINY_TRAIN, TRAIN_PY, corpus_speakers, log_rows, run
from train.augment import speed
from train.data import Item, SpecMask, crop_window
from train.input_pipeline import _CROP, ItemStream

FEATURES = FeatureConfig()


def corpus_items(corpus) -> list[Item]:
    """Every utterance of the tiny corpus, one class per speaker, at the recipe's warps in turn."""
    speakers = corpus_speakers(corpus)
    warps = (1.0, 0.9, 1.1)
    return [Item(path, label, warps[n % 3]) for label, spk in enumerate(sorted(speakers))
            for n, path in enumerate(speakers[spk])]


def stream(corpus, **kw) -> ItemStream:
    items = corpus_items(corpus)
    kw = {"copies": 1, "babble_pool": [it.path for it in items if it.speed == 1.0], **kw}
    return ItemStream(items, FEATURES, seed=kw.pop("seed", 0), **kw)


def first_batches(s: ItemStream, count: int, size: int = 8, shard=(0, 1)) -> list[tuple[np.ndarray, ...]]:
    batches = iter(s.dataset(size, shard))
    return [tuple(t.numpy() for t in next(batches)) for _ in range(count)]


def test_the_pipelines_cepstra_are_the_devices(tiny_corpus):
    s = stream(tiny_corpus, copies=0)  # every read clean
    for index in (0, 1, 2):  # warps 1.0, 0.9, 1.1
        item = s.items[index]
        device = log_mel_cepstra(speed(load_audio(item.path), item.speed), FEATURES)
        assert np.array_equal(log_mel_cepstra(s.audio(index, read=0), FEATURES), device)
    # and the batches are crops of them, normalised as the device normalises
    crops, labels, idx = first_batches(s, 1)[0]
    for crop, label, i in zip(crops, labels, idx):
        item = s.items[i]
        assert label == item.label
        device = log_mel_cepstra(speed(load_audio(item.path), item.speed), FEATURES).astype(np.float32)
        n = crop.shape[0]
        windows = [fit_window(normalize(device[k:k + n], FEATURES), n) for k in range(max(1, len(device) - n + 1))]
        assert any(np.allclose(w, crop, atol=1e-5) for w in windows)


@pytest.mark.parametrize("mask", [None, SpecMask()])
def test_an_element_is_a_crop_of_the_whole_clips_cepstra_exactly(tiny_corpus, mask):
    """The stream computes only the cepstra its crop takes: the crop is `crop_window`'s of the whole."""
    s = stream(tiny_corpus, mask=mask)
    size = 4
    for k, (index, read) in enumerate([(i, r) for r in (0, 1) for i in range(len(s.items))]):
        crop, label, idx = s.element(k, index, read, size)
        rng = np.random.default_rng((s.seed, s.epoch, read, index, _CROP))
        whole = crop_window(log_mel_cepstra(s.audio(index, read, k), FEATURES), s.crop_length(k // size), FEATURES, rng)
        if mask is not None:
            whole = mask(whole, rng)
        assert (label, idx) == (s.items[index].label, index)
        assert crop.dtype == whole.dtype and np.array_equal(crop, whole)


def test_every_read_is_augmented_afresh_and_the_clean_path_is_fixed(tiny_corpus):
    noisy = stream(tiny_corpus, copies=10**6)  # a clean read has a chance of one in a million
    clean = stream(tiny_corpus, copies=0)
    first, second = noisy.audio(0, read=0), noisy.audio(0, read=1)
    assert first.shape == second.shape and not np.allclose(first, second)
    assert not np.allclose(first, clean.audio(0, read=0))
    assert np.array_equal(noisy.audio(0, read=0), first)  # a read is seeded: reading it again repeats it
    assert np.array_equal(clean.audio(0, read=0), clean.audio(0, read=1))
    assert np.array_equal(clean.audio(0, read=0), load_audio(clean.items[0].path))


def test_the_same_seed_gives_the_same_batches(tiny_corpus):
    one, again = first_batches(stream(tiny_corpus), 3), first_batches(stream(tiny_corpus), 3)
    other = first_batches(stream(tiny_corpus, seed=1), 3)
    for a, b in zip(one, again):
        assert all(np.array_equal(x, y) for x, y in zip(a, b))
    assert not all(np.array_equal(a[0], b[0]) for a, b in zip(one, other))
    resumed = first_batches(stream(tiny_corpus, epoch=2), 3)  # a resumed run draws anew
    assert not all(np.array_equal(a[0], b[0]) for a, b in zip(one, resumed))


def test_two_workers_read_disjoint_shards_that_cover_the_items(tiny_corpus):
    s = stream(tiny_corpus)
    n = len(s.items)
    firsts = []
    for shard in ((0, 2), (1, 2)):
        order = [tuple(int(v) for v in e) for e in s.order(shard).take(3 * n).as_numpy_iterator()]
        assert [k for k, _, _ in order] == list(range(3 * n))
        assert {i for _, i, _ in order} == set(range(shard[0], n, 2))  # only its own items
        firsts.append([i for _, i, read in order if read == 0])
        assert sorted(firsts[-1]) == list(range(shard[0], n, 2))  # every one of them once per pass
    assert not set(firsts[0]) & set(firsts[1]) and set(firsts[0]) | set(firsts[1]) == set(range(n))
    # the batches too, with one crop length per batch and the same lengths on both workers
    batches = [first_batches(s, 2, size=4, shard=shard) for shard in ((0, 2), (1, 2))]
    for shard, worker in enumerate(batches):
        assert all(i % 2 == shard for _, _, idx in worker for i in idx)
    assert [b[0].shape for b in batches[0]] == [b[0].shape for b in batches[1]]


@pytest.fixture(scope="module")
def stream_run(tiny_corpus, tmp_path_factory):
    out = tmp_path_factory.mktemp("stream") / "run"
    proc = run([TRAIN_PY, "-m", "train", "--data", tiny_corpus, "--out", out, "--epochs", "2", *TINY_TRAIN,
                "--pipeline", "stream"], env={"TF_CONFIG": ""}, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return out, proc.stdout


def test_a_stream_run_trains_and_writes_its_best_weights(stream_run):
    out, stdout = stream_run
    assert [r["epoch"] for r in log_rows(out)] == ["1", "2"]
    assert (out / "best.weights.h5").is_file() and (out / "metrics.json").is_file()
    assert '"pipeline": "stream"' in (out / "config.json").read_text()
    assert "crops/s, ETA" in stdout


def test_resuming_a_stream_run_repeats_no_epoch(stream_run, tiny_corpus):
    out, _ = stream_run
    resumed = run([TRAIN_PY, "-m", "train", "--data", tiny_corpus, "--out", out, "--resume", "--epochs", "3",
                   *TINY_TRAIN], timeout=600)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert "(epoch 2)" in resumed.stdout and "epoch 3:" in resumed.stdout
    assert "epoch 1:" not in resumed.stdout and "epoch 2:" not in resumed.stdout
    assert [r["epoch"] for r in log_rows(out)] == ["1", "2", "3"]


def test_the_stream_cost_benchmark_times_every_stage_and_the_step(tiny_corpus, tmp_path):
    out = tmp_path / "stream_cost.json"
    proc = run([TRAIN_PY, "-m", "scripts.bench.stream_cost", "--data", tiny_corpus, "--splits", tiny_corpus / "splits",
                "--items", "12", "--batch", "8", "--step-repeats", "1", "--out", out], cwd=REPO, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    result = json.loads(out.read_text())
    stages = result["stages"]
    for stage in ("element (whole, as the pipeline calls it)", "decode", "warp", "cepstra", "crop + normalise"):
        assert stages[stage]["ms_per_crop"] > 0, stage
    assert stages["decode"]["calls"] == stages["cepstra"]["calls"] == result["items"] == 12
    assert set(result["step"]["per_length"]) == {"100", "150", "200", "250", "300", "400"}
    assert 0 < result["ceiling"]["stream_crops_per_s"] < result["ceiling"]["input_only_crops_per_s"]
