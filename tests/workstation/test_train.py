"""The training loop on a tiny corpus: loss goes down, checkpoints resume, the run folder is complete;
the single-process loop is unchanged by multi-worker support; distillation from a teacher."""

from __future__ import annotations

import json

import pytest

from tests.helpers import PEERS_PY, TRAIN_PY, log_rows, require_tool, run
from tests.helpers import TINY_TRAIN as TINY


def losses(out) -> list[float]:
    return [float(r["loss"]) for r in log_rows(out)]


def test_loss_goes_down_and_resume_continues(tiny_corpus, tmp_path):
    out = tmp_path / "run"
    first = run([TRAIN_PY, "-m", "train", "--data", tiny_corpus, "--out", out, "--epochs", "2", *TINY],
                env={"TF_CONFIG": ""})  # empty = not set: one process
    assert first.returncode == 0, first.stderr[-2000:]
    assert [r["epoch"] for r in log_rows(out)] == ["1", "2"]
    # a seed fixes the run: the same seed again gives the same losses, another seed other ones
    again, other = tmp_path / "again", tmp_path / "other"
    for folder, seed in ((again, "0"), (other, "1")):
        proc = run([TRAIN_PY, "-m", "train", "--data", tiny_corpus, "--out", folder, "--epochs", "2", *TINY,
                    "--seed", seed], env={"TF_CONFIG": ""})
        assert proc.returncode == 0, proc.stderr[-2000:]
    assert losses(again) == losses(out) and losses(other) != losses(out)
    for name in ("config.json", "classes.json", "best.weights.h5", "metrics.json", "ckpt/checkpoint"):
        assert (out / name).exists(), name
    metrics = json.loads((out / "metrics.json").read_text())
    assert {"best_val_eer", "closed_set_accuracy", "closed_set_macro_f1", "train_seconds"} <= set(metrics)

    resumed = run([TRAIN_PY, "-m", "train", "--data", tiny_corpus, "--out", out, "--resume", "--epochs", "4", *TINY])
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert "resumed from" in resumed.stdout and "(epoch 2)" in resumed.stdout
    rows = log_rows(out)
    assert [r["epoch"] for r in rows] == ["1", "2", "3", "4"]
    assert float(rows[-1]["loss"]) < float(rows[0]["loss"])


def test_a_time_budget_counts_training_steps_only(tiny_corpus, tmp_path):
    """Without --max-minutes the epochs run out; with a budget the run stops after the epoch that
    spends it, however long the augmentation bank took before the first step."""
    out = tmp_path / "budget"
    proc = run([TRAIN_PY, "-m", "train", "--data", tiny_corpus, "--out", out, "--epochs", "3", *TINY,
                "--max-minutes", "0.0001"])
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "time budget of 0.0001 min of training reached" in proc.stdout
    assert [r["epoch"] for r in log_rows(out)] == ["1"]


def test_help_describes_the_cli():
    proc = run([TRAIN_PY, "-m", "train", "--help"])
    assert proc.returncode == 0
    for flag in ("--data", "--out", "--resume", "--head", "--seed", "--patience", "--max-minutes"):
        assert flag in proc.stdout


def test_distillation_from_a_teacher_trains_and_its_projection_is_never_exported(tiny_corpus, tmp_path):
    """A stand-in teacher (one unit vector per speaker) through the real loop: `python -m train.teacher`
    writes the same npz from Resemblyzer in .venv-peers."""
    import h5py
    import numpy as np

    from train.teacher import items

    todo = items(str(tiny_corpus), str(tiny_corpus / "splits"), (1.0, 0.9, 1.1), (1.0,), heldout=1)
    rng = np.random.default_rng(0)
    voice = {spk: rng.normal(size=16) for spk in {p.parent.name for p, _ in todo}}
    teacher = tmp_path / "teacher.npz"
    np.savez(teacher, paths=np.array([str(p.relative_to(tiny_corpus)) for p, _ in todo]),
             speeds=np.array([s for _, s in todo]), vectors=np.stack([voice[p.parent.name] for p, _ in todo]))
    out = tmp_path / "run"
    proc = run([TRAIN_PY, "-m", "train", "--data", tiny_corpus, "--out", out, "--epochs", "3", *TINY,
                "--teacher", teacher, "--distill-weight", "1.0"])
    assert proc.returncode == 0, proc.stderr[-2000:]
    rows = log_rows(out)
    assert float(rows[-1]["loss"]) < float(rows[0]["loss"])
    plain = tmp_path / "plain"
    assert run([TRAIN_PY, "-m", "train", "--data", tiny_corpus, "--out", plain, "--epochs", "3", *TINY]).returncode == 0
    assert losses(plain)[0] < float(rows[0]["loss"])  # the same run plus a positive term
    with h5py.File(out / "best.weights.h5") as f:
        names = []
        f.visit(names.append)
    assert any("lstm" in n for n in names) and not any("distill" in n for n in names)

    np.savez(teacher, paths=np.array([str(p.relative_to(tiny_corpus)) for p, _ in todo[1:]]),
             speeds=np.array([s for _, s in todo[1:]]), vectors=np.stack([voice[p.parent.name] for p, _ in todo[1:]]))
    missing = run([TRAIN_PY, "-m", "train", "--data", tiny_corpus, "--out", tmp_path / "run2", "--epochs", "1", *TINY,
                   "--teacher", teacher])
    assert missing.returncode != 0 and "no teacher vector for 1 training items" in missing.stderr


@pytest.mark.parametrize("encoder", ["resemblyzer", "voicefilter"])
def test_the_teacher_writes_a_vector_per_training_item(tiny_corpus, tmp_path, encoder):
    import numpy as np

    out = tmp_path / "teacher.npz"
    proc = run([require_tool(str(PEERS_PY)), "-m", "train.teacher", "--data", tiny_corpus, "--splits",
                tiny_corpus / "splits", "--speeds", "1.0,0.9", "--heldout", "1", "--limit", "3", "--out", out,
                "--encoder", encoder])
    assert proc.returncode == 0, proc.stderr[-2000:]
    data = np.load(out)
    assert data["vectors"].shape == (3, 256)
    assert np.allclose(np.linalg.norm(data["vectors"], axis=1), 1.0, atol=1e-3)
    assert list(data["speeds"]) == [1.0, 1.0, 1.0]  # items come speaker by speaker, speed by speed
    assert all((tiny_corpus / p).is_file() for p in data["paths"])
    assert len({str(tiny_corpus / p).rsplit("/", 2)[1] for p in data["paths"]}) == 1  # one person's three
    same = data["vectors"] @ data["vectors"].T
    assert same[np.triu_indices(3, 1)].min() > 0.5  # a speaker encoder: one person's utterances agree
