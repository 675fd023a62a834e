import json
import os
import subprocess
import sys

import numpy as np
import pytest

from trainer.model import build_model
from trainer.train import TrainConfig, TrainError, split_train_validation, train

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def test_model_is_the_tutorial_architecture():
    model = build_model()
    assert [type(layer).__name__ for layer in model.layers] == [
        "InputLayer", "Embedding", "GlobalAveragePooling1D", "Dense", "Dense"]
    assert model.input_shape == (None, 256) and model.output_shape == (None, 1)
    assert model.count_params() == 10000 * 16 + (16 * 16 + 16) + (16 + 1)
    assert model.layers[-2].activation.__name__ == "relu" and model.layers[-1].activation.__name__ == "sigmoid"


def test_split_holds_out_the_first_shuffled_reviews():
    texts = [str(i) for i in range(10)]
    (tr, ytr), (va, yva) = split_train_validation(texts, np.arange(10), 3, seed=1)
    assert len(va) == 3 and len(tr) == 7 and sorted(tr + va) == sorted(texts)
    assert [int(t) for t in va] == yva.tolist()  # labels follow their texts
    assert split_train_validation(texts, np.arange(10), 3, seed=1)[1][0] == va


def _config(data, out, **kw):
    return TrainConfig(data=data, out=str(out), epochs=3, batch_size=32, num_words=40, validation_size=100, **kw)


def test_train_writes_every_output(tiny_imdb_tar, tmp_path):
    metrics = train(_config(tiny_imdb_tar, tmp_path))
    for name in ("model.keras", "vocab.txt", "history.json", "metrics.json", "loss.png", "accuracy.png"):
        assert (tmp_path / name).stat().st_size > 0, name
    assert (tmp_path / "loss.png").read_bytes()[:8] == PNG_MAGIC
    history = json.loads((tmp_path / "history.json").read_text())
    assert set(history) == {"loss", "accuracy", "val_loss", "val_accuracy"} and len(history["loss"]) == 3
    assert json.loads((tmp_path / "metrics.json").read_text()) == metrics
    assert 0.0 <= metrics["test_accuracy"] <= 1.0 and 1 <= metrics["best_epoch"] <= 3
    # 4 special tokens + the 27 distinct words of the tiny corpus (fewer than --num-words 40)
    assert len((tmp_path / "vocab.txt").read_text().splitlines()) == 31
    assert not [n for n in os.listdir(tmp_path) if n.endswith(".tmp")]


def test_training_is_deterministic(tiny_imdb_tar, tmp_path):
    import keras

    weights = []
    for run in ("a", "b"):
        train(_config(tiny_imdb_tar, tmp_path / run))
        model = keras.models.load_model(tmp_path / run / "model.keras", safe_mode=True)
        weights.append(model.get_weights())
    for w1, w2 in zip(*weights):
        np.testing.assert_array_equal(w1, w2)


def test_early_stopping_restores_best_epoch(tiny_imdb_tar, tmp_path):
    cfg = _config(tiny_imdb_tar, tmp_path)
    cfg.epochs, cfg.early_stopping = 60, 1
    metrics = train(cfg)
    assert metrics["epochs_run"] < 60  # patience 1 on a tiny set stops early
    assert metrics["epochs_run"] <= metrics["best_epoch"] + 1


def test_progress_is_one_line_per_epoch(tiny_imdb_tar, tmp_path, progress_lines):
    lines = progress_lines
    train(_config(tiny_imdb_tar, tmp_path))
    epochs = [line for line in lines if line.startswith("epoch")]
    assert len(epochs) == 3 and epochs[0].startswith("epoch   1/3  loss ")
    assert lines[-1].startswith("test accuracy ")


# Bad options and data for the CLI: the error table in tests/test_errors.py.

def test_metrics_record_the_data_source_as_an_absolute_path(tiny_imdb_tar, tmp_path, monkeypatch):
    monkeypatch.chdir(os.path.dirname(tiny_imdb_tar))
    metrics = train(_config(os.path.basename(tiny_imdb_tar), tmp_path / "m"))
    assert metrics["data"] == tiny_imdb_tar
    assert json.loads((tmp_path / "m" / "metrics.json").read_text())["data"] == tiny_imdb_tar


def test_training_into_a_verified_bundle_needs_force(tiny_imdb_tar, tmp_path, progress_lines):
    out = tmp_path / "bundle"
    out.mkdir()
    (out / "manifest.json").write_text("{}")
    (out / "model.keras").write_bytes(b"the bundle's model")
    with pytest.raises(TrainError) as e:
        train(_config(tiny_imdb_tar, out))
    assert str(e.value) == (f"{out} holds a verified bundle (manifest.json); training there would replace "
                            "its model and break it: choose another --out, or pass --force")
    assert (out / "model.keras").read_bytes() == b"the bundle's model"  # untouched
    lines = progress_lines
    train(_config(tiny_imdb_tar, out, force=True))
    assert lines[0] == f"removed {out / 'manifest.json'}: it would no longer match the new model"
    assert not (out / "manifest.json").exists()  # never a manifest that does not match the files


def test_validation_size_must_leave_training_reviews(tiny_imdb_tar, tmp_path):
    with pytest.raises(TrainError, match="--validation-size 400 leaves no training reviews"):
        train(TrainConfig(data=tiny_imdb_tar, out=str(tmp_path), validation_size=400))


REFUSED = [("trainer", ["--data", "/nonexistent"], "Error: IMDB data path does not exist: /nonexistent"),
           ("trainer", ["--epochs", "0"], "Error: --epochs must be at least 1, got 0"),
           ("export", ["all", "--data", "/nonexistent"], "Error: IMDB data path does not exist: /nonexistent"),
           ("export", ["train", "--maxlen", "0"], "Error: --maxlen must be at least 1, got 0")]


@pytest.mark.parametrize("cli, argv, line", REFUSED, ids=[" ".join([c, *a]) for c, a, _ in REFUSED])
def test_a_refused_option_or_path_imports_no_tensorflow_and_creates_no_folder(cli, argv, line, tmp_path):
    """Options and paths are checked before TensorFlow is imported (seconds) and before OUTPUT exists."""
    out = tmp_path / "out"
    code = (f"import sys; from {cli}.__main__ import main; rc = main({[*argv, '--out', str(out)]!r}); "
            "print(rc, 'tensorflow' in sys.modules, 'keras' in sys.modules)")
    repo = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    proc = subprocess.run([sys.executable, "-c", code], cwd=repo, capture_output=True, text=True, timeout=120,
                          env={**os.environ, "PYTHONPATH": repo})
    assert proc.stdout.split() == ["2", "False", "False"], proc.stdout + proc.stderr
    assert proc.stderr.strip().splitlines()[-1] == line
    assert not out.exists()
