"""Training on several workers (tf.distribute.MultiWorkerMirroredStrategy) with local workers on
loopback ports: scripts/train_distributed.sh trains, the chief's run folder exports to a bundle the
device loads, a killed worker's run continues with --resume, and TF_CONFIG mistakes are named."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time

import numpy as np

from device.features import FeatureConfig
from tests.helpers import DEVICE_PY, REPO, TINY_TRAIN, TRAIN_PY, corpus_speakers, log_rows, run
from train.cluster import free_ports
from train.data import Item, build_bank

LAUNCHER = REPO / "scripts" / "train_distributed.sh"



def test_two_local_workers_train_and_the_chief_run_exports_to_a_bundle_the_device_loads(tiny_corpus, tmp_path):
    out, bundle = tmp_path / "run", tmp_path / "bundle"
    proc = run(["bash", LAUNCHER, "--workers", "2", "--data", tiny_corpus, "--out", out, "--epochs", "3", *TINY_TRAIN])
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    assert "2 workers, 8 crops each per step" in proc.stdout  # global batch 16 split over the workers
    rows = log_rows(out)
    assert [r["epoch"] for r in rows] == ["1", "2", "3"]
    assert float(rows[-1]["loss"]) < float(rows[0]["loss"])
    assert all(float(r["examples_per_s"]) > 0 for r in rows)
    # the chief owns the run folder; the other worker wrote only its log
    assert sorted(p.name for p in out.iterdir()) == ["best.weights.h5", "ckpt", "classes.json", "config.json",
                                                     "log.csv", "metrics.json", "workers"]
    assert "epoch 1:" not in (out / "workers" / "worker-1.log").read_text()

    exported = run([TRAIN_PY, "-m", "export", "--run", out, "--out", bundle, "--quant", "dynamic"])
    assert exported.returncode == 0, exported.stderr[-3000:]
    clip = corpus_speakers(tiny_corpus)[sorted(corpus_speakers(tiny_corpus))[0]][0]
    embedded = run([DEVICE_PY, "-c", "import sys; import numpy as np; from device.audio import load_audio; "
                    "from device.embedder import Embedder; e = Embedder(sys.argv[1]).embed(load_audio(sys.argv[2])); "
                    "print(e.shape[0], round(float(np.linalg.norm(e)), 4))", bundle, clip])
    assert embedded.returncode == 0, embedded.stderr[-2000:]
    assert embedded.stdout.split() == ["32", "1.0"]


def test_a_killed_worker_stops_the_run_and_resume_continues_from_the_last_checkpoint(tiny_corpus, tmp_path):
    out = tmp_path / "run"
    flags = ["--data", tiny_corpus, "--out", out, "--epochs", "4", *TINY_TRAIN, "--steps", "40"]
    launcher = subprocess.Popen(["bash", str(LAUNCHER), "--workers", "2", *map(str, flags)], cwd=REPO,
                                env={**os.environ, "PYTHONPATH": str(REPO)}, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 300
    while not (out / "ckpt" / "checkpoint").exists():
        assert launcher.poll() is None and time.time() < deadline, "no checkpoint before the run ended"
        time.sleep(0.2)
    os.kill(int((out / "workers" / "worker-1.pid").read_text()), signal.SIGKILL)
    _, stderr = launcher.communicate(timeout=120)
    assert launcher.returncode != 0
    assert "a worker failed or was killed" in stderr
    done = len(log_rows(out))
    assert 1 <= done < 4, f"the kill came after epoch {done}: not mid-run"

    resumed = run(["bash", LAUNCHER, "--workers", "2", *flags, "--resume"])
    assert resumed.returncode == 0, resumed.stdout[-2000:] + resumed.stderr[-3000:]
    assert "resumed from" in resumed.stdout and f"(epoch {done})" in resumed.stdout
    assert [r["epoch"] for r in log_rows(out)] == ["1", "2", "3", "4"]
    assert json.loads((out / "metrics.json").read_text())["epochs"] == 4


def test_an_item_gets_the_same_augmented_copies_whatever_the_number_of_workers(tiny_corpus):
    paths = [p for ps in corpus_speakers(tiny_corpus).values() for p in ps[:2]][:6]
    items = [Item(p, i, 1.0) for i, p in enumerate(paths)]
    whole = build_bank(items, FeatureConfig(), copies=1, seed=3, workers=1, babble_pool=paths)
    second = build_bank(items, FeatureConfig(), copies=1, seed=3, workers=1, babble_pool=paths, shard=(1, 2))
    assert len(second) == 3
    for mine, reference in zip(second, whole[1::2]):
        assert all(np.array_equal(a, b) for a, b in zip(mine, reference))


def test_tf_config_mistakes_are_named(tiny_corpus, tmp_path):
    base = [TRAIN_PY, "-m", "train", "--data", tiny_corpus, "--out", tmp_path / "run", *TINY_TRAIN]
    for tf_config, message in (("{not json", "TF_CONFIG is not valid JSON"),
                               ('{"cluster": {}, "task": {"type": "worker", "index": 0}}', "TF_CONFIG has no cluster"),
                               ('{"cluster": {"worker": ["127.0.0.1:1"]}, "task": {"type": "worker", "index": 3}}',
                                "task worker 3 is not in the cluster")):
        proc = run(base, env={"TF_CONFIG": tf_config})
        assert proc.returncode != 0 and message in proc.stderr, (tf_config, proc.stderr[-1500:])


def test_without_the_launcher_a_worker_whose_peer_dies_stops_and_says_to_resume(tiny_corpus, tmp_path):
    """A real cluster has no launcher to stop the others: TensorFlow's heartbeats must."""
    out, ports = tmp_path / "run", free_ports(2)
    cluster = [f"127.0.0.1:{p}" for p in ports]
    workers = [subprocess.Popen(
        [str(TRAIN_PY), "-m", "train", "--data", str(tiny_corpus), "--out", str(out), "--epochs", "50",
         *TINY_TRAIN, "--steps", "40"], cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
        env={**os.environ, "PYTHONPATH": str(REPO),
             "TF_CONFIG": json.dumps({"cluster": {"worker": cluster}, "task": {"type": "worker", "index": i}})})
        for i in range(2)]
    try:
        deadline = time.time() + 300
        while not (out / "ckpt" / "checkpoint").exists():
            assert workers[0].poll() is None and time.time() < deadline, "no checkpoint before the run ended"
            time.sleep(0.2)
        workers[1].kill()
        _, stderr = workers[0].communicate(timeout=120)
    finally:
        for w in workers:
            w.kill()
    assert workers[0].returncode != 0
    assert f"another worker of the cluster stopped; restart every worker with --resume to continue from {out / 'ckpt'}" \
        in stderr


def test_training_scale_benchmark_compares_one_and_two_workers(tiny_corpus, tmp_path):
    out = tmp_path / "scale.json"
    proc = run([TRAIN_PY, "-m", "scripts.bench.training_scale", "--data", tiny_corpus, "--voices", "4", "--epochs", "2",
                "--steps", "4", "--batch", "8", "--out", out])
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads(out.read_text())
    assert [r["workers"] for r in result["runs"]] == [1, 2]
    assert all(r["examples_per_s"] > 0 and r["bank_seconds"] >= 0 and r["epochs"] == 2 for r in result["runs"])
