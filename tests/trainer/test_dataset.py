"""trainer.dataset: the user's own labelled data in every form (CSV, TSV, JSONL, Parquet file and
directory, label folders), the label rules, the seeded stratified splits, each refusal's exact line,
and N-class training with every architecture."""
from __future__ import annotations

import csv
import json
import os
import random
import subprocess
import sys

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from runtime.errors import UserError
from trainer.dataset import IMDB, Request, calibration_rows, load_dataset, source_kind, stratified_split
from trainer.train import TrainConfig, split_validation, train, validation_size

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
# Each class has words of its own, so that a tiny model learns it in a few epochs.
WORDS = [["apple", "pear", "plum"], ["car", "bus", "tram"], ["red", "blue", "green"], ["cat", "dog", "cow"],
         ["rain", "snow", "wind"], ["one", "two", "six"], ["oak", "elm", "ash"]]


def table(n_classes: int, per_class: int, seed: int = 0) -> list[tuple[str, str]]:
    """(text, label) rows: class k is labelled ``c{k}`` and written with WORDS[k] (seeded)."""
    rng = random.Random(seed)
    rows = [(" ".join(rng.choice(WORDS[k]) for _ in range(6)) + " the", f"c{k}")
            for _ in range(per_class) for k in range(n_classes)]
    rng.shuffle(rows)
    return rows


def write_csv(path, rows, header=("text", "label"), delimiter=","):
    with open(path, "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f, delimiter=delimiter)
        writer.writerow(header)
        writer.writerows(rows)
    return str(path)


def write_jsonl(path, objects):
    with open(path, "w", encoding="utf-8") as f:
        f.writelines(json.dumps(o) + "\n" for o in objects)
    return str(path)


def write_folders(path, rows):
    for i, (text, label) in enumerate(rows):
        os.makedirs(os.path.join(path, label), exist_ok=True)
        with open(os.path.join(path, label, f"{i:04d}.txt"), "w", encoding="utf-8") as f:
            f.write(text)
    return str(path)


def write_form(form: str, tmp_path, rows) -> str:
    """``rows`` written in one of the forms --data takes."""
    texts, labels = [t for t, _ in rows], [label for _, label in rows]
    if form == "csv":
        return write_csv(tmp_path / "d.csv", rows)
    if form == "tsv":
        return write_csv(tmp_path / "d.tsv", rows, delimiter="\t")
    if form == "jsonl":
        return write_jsonl(tmp_path / "d.jsonl", [{"text": t, "label": label} for t, label in rows])
    if form == "parquet":
        pq.write_table(pa.table({"text": texts, "label": labels}), tmp_path / "d.parquet", row_group_size=7)
        return str(tmp_path / "d.parquet")
    if form == "parquet-dir":
        os.makedirs(tmp_path / "dir")
        half = len(rows) // 2
        pq.write_table(pa.table({"text": texts[:half], "label": labels[:half]}), tmp_path / "dir" / "part-0.parquet")
        pq.write_table(pa.table({"text": texts[half:], "label": labels[half:]}), tmp_path / "dir" / "part-1.parquet")
        return str(tmp_path / "dir")
    return write_folders(tmp_path / "folders", sorted(rows, key=lambda r: r[1]))  # folders: files in name order


FORMS = ["csv", "tsv", "jsonl", "parquet", "parquet-dir", "folders"]


def _rows(texts, labels, names):
    return sorted(zip(texts, (names[i] for i in labels)))


@pytest.mark.parametrize("form", FORMS)
def test_every_form_gives_the_same_rows_and_a_stratified_held_out_test_split(form, tmp_path):
    rows = table(3, 20)
    data = load_dataset(Request(write_form(form, tmp_path, rows)))
    assert data.labels == ["c0", "c1", "c2"] and not data.imdb
    assert sorted(_rows(data.train_texts, data.train_labels, data.labels) +
                  _rows(data.test_texts, data.test_labels, data.labels)) == sorted(rows)
    assert np.bincount(data.test_labels).tolist() == [4, 4, 4]  # 0.2 of each class of 20
    assert data.train_labels.dtype == np.int32


def test_the_forms_give_identical_splits(tmp_path):
    rows = table(3, 20)
    splits = []
    for form in ("csv", "jsonl", "parquet"):
        os.makedirs(tmp_path / form)
        data = load_dataset(Request(write_form(form, tmp_path / form, rows), seed=7))
        splits.append((data.train_texts, data.train_labels.tolist(), data.test_texts, data.test_labels.tolist()))
    assert splits[0] == splits[1] == splits[2]


def test_five_and_the_string_five_are_one_label_sorted_as_text(tmp_path):
    objects = [{"text": f"w{i} x", "label": [5, "5", 10, "10", 5.0][i % 5]} for i in range(30)]
    data = load_dataset(Request(write_jsonl(tmp_path / "d.jsonl", objects)))
    assert data.labels == ["10", "5"]
    assert np.bincount(np.concatenate([data.train_labels, data.test_labels])).tolist() == [12, 18]


def test_an_integer_parquet_label_column_and_named_columns(tmp_path):
    pq.write_table(pa.table({"body": [f"t{i} x" for i in range(30)], "stars": [1 + i % 3 for i in range(30)]}),
                   tmp_path / "d.parquet")
    data = load_dataset(Request(str(tmp_path / "d.parquet"), text_column="body", label_column="stars"))
    assert data.labels == ["1", "2", "3"]


def test_labels_give_the_order(tmp_path):
    path = write_form("csv", tmp_path, table(3, 10))
    data = load_dataset(Request(path, labels=("c2", "c0", "c1")))
    assert data.labels == ["c2", "c0", "c1"]
    assert all(text.split()[0] in WORDS[int(data.labels[k][1])]
               for text, k in zip(data.train_texts, data.train_labels))


def test_test_size_is_a_fraction_or_a_count_and_the_split_is_seeded(tmp_path):
    path = write_form("csv", tmp_path, table(7, 10))
    assert len(load_dataset(Request(path, test_size=0.3)).test_texts) == 21
    assert len(load_dataset(Request(path, test_size=14)).test_texts) == 14
    a, b, c = (load_dataset(Request(path, seed=s)) for s in (1, 1, 2))
    assert a.test_texts == b.test_texts != c.test_texts
    assert np.bincount(a.test_labels).tolist() == [2] * 7


def test_a_separate_test_set(tmp_path):
    train_path = write_csv(tmp_path / "train.csv", table(3, 10, seed=0))
    test_path = write_jsonl(tmp_path / "test.jsonl", [{"text": t, "label": label} for t, label in table(3, 4, seed=1)])
    data = load_dataset(Request(train_path, test_data=test_path))
    assert len(data.train_texts) == 30 and len(data.test_texts) == 12


def test_validation_is_stratified_a_tenth_by_default_and_imdb_keeps_its_split(tmp_path):
    data = load_dataset(Request(write_form("csv", tmp_path, table(7, 20))))  # 112 training rows
    size = validation_size(data, None)
    assert size == 11
    (tr, ytr), (va, yva) = split_validation(data, size, seed=42)
    assert set(yva.tolist()) == set(ytr.tolist()) == set(range(7))
    assert sorted(tr + va) == sorted(data.train_texts)
    assert validation_size(data, 30) == 30


def test_calibration_rows_hold_every_class(tmp_path):
    labels = np.array([0] * 95 + [1] * 3 + [2] * 2, dtype=np.int32)
    texts = [str(i) for i in range(100)]
    picked = calibration_rows(texts, labels, 10, imdb=False, seed=0)
    assert {labels[int(t)] for t in picked} == {0, 1, 2}
    assert len(picked) == 12  # 9.5 rounded, and at least one row of each small class
    assert calibration_rows(texts, labels, 10, imdb=True, seed=0) == texts[:10]  # IMDB: as always


def test_stratified_split_keeps_a_row_of_each_class():
    kept, held = stratified_split(np.array([0, 0, 1, 1, 1, 1], dtype=np.int32), 0.9, seed=0)
    assert sorted(kept.tolist() + held.tolist()) == list(range(6)) and len(kept) == 2


def test_the_aclimdb_root_is_imdb_and_label_folders_are_not(tmp_path):
    os.makedirs(tmp_path / "acl" / "aclImdb" / "train" / "pos")
    assert source_kind(str(tmp_path / "acl")) == IMDB
    write_folders(tmp_path / "own", [("a b", "pos"), ("c d", "neg")])
    assert source_kind(str(tmp_path / "own")) == "folders"
    assert source_kind(str(tmp_path / "x.tar.gz")) == IMDB and source_kind("https://h/x.csv") == IMDB


# --- refusals: one line each ---------------------------------------------------------------------

def _refused(req: Request) -> str:
    with pytest.raises(UserError) as e:  # DataError, or the runtime readers' InputError
        load_dataset(req)
    return str(e.value)


def test_a_missing_text_or_label_column_is_named(tmp_path):
    csv_path = write_form("csv", tmp_path, table(3, 5))
    assert _refused(Request(csv_path, text_column="body")) == \
        f"{csv_path}: no column 'body' (--text-column); columns: text, label"
    jsonl = write_form("jsonl", tmp_path, table(3, 5))
    assert _refused(Request(jsonl, label_column="topic")) == \
        f"{jsonl}:1: no field 'topic' (--label-column); fields: text, label"
    parquet = write_form("parquet", tmp_path, table(3, 5))
    assert _refused(Request(parquet, label_column="topic")) == \
        f"{parquet}: no column 'topic' (--label-column); columns: text, label"


def test_an_empty_or_null_label_is_refused_with_its_row(tmp_path):
    rows = table(3, 5)
    rows[2] = (rows[2][0], "")
    path = write_csv(tmp_path / "d.csv", rows)
    assert _refused(Request(path)) == f"{path}:3: empty or null label (--label-column 'label')"
    jsonl = write_jsonl(tmp_path / "d.jsonl", [{"text": "a b", "label": "x"}, {"text": "c d", "label": None}])
    assert _refused(Request(jsonl)) == f"{jsonl}:2: empty or null label (--label-column 'label')"
    jsonl = write_jsonl(tmp_path / "e.jsonl", [{"text": "a b", "label": [1]}])
    assert _refused(Request(jsonl)) == \
        f"{jsonl}:1: label [1] is neither text nor a whole number (--label-column 'label')"


def test_a_row_with_empty_text_is_refused_with_its_row(tmp_path):
    rows = table(3, 5)
    rows[1] = ("  ", rows[1][1])
    path = write_csv(tmp_path / "d.csv", rows)
    assert _refused(Request(path)) == f"{path}:2: empty text; every labelled row needs a text"
    folders = write_folders(tmp_path / "f", [("a b", "x"), ("", "y")])
    assert _refused(Request(folders)) == f"{folders}/y/0001.txt: empty text; every labelled row needs a text"


def test_a_single_class_is_refused(tmp_path):
    path = write_csv(tmp_path / "d.csv", [("a b", "only")] * 5)
    assert _refused(Request(path)) == f"{path}: only one class ('only'); training needs at least 2"


def test_a_class_too_small_to_split_is_named_with_its_count(tmp_path):
    path = write_csv(tmp_path / "d.csv", table(2, 5) + [("x y", "rare"), ("y z", "rare")])
    assert _refused(Request(path)) == (f"{path}: class 'rare' has 2 examples; each class needs at least 3 "
                                       "(one each for training, validation and test)")
    test_path = write_csv(tmp_path / "t.csv", table(2, 2))
    path = write_csv(tmp_path / "e.csv", table(2, 5) + [("x y", "rare")])
    assert _refused(Request(path, test_data=test_path)) == (
        f"{path}: class 'rare' has 1 example; each class needs at least 2 (one each for training and validation)")


def test_more_than_the_manifest_limit_of_classes_is_refused(tmp_path):
    from runtime.bundle import MAX_LABELS

    path = write_csv(tmp_path / "d.csv", [(f"w{i} x", f"k{i % (MAX_LABELS + 1)}") for i in range(3 * MAX_LABELS + 3)])
    assert _refused(Request(path)) == f"{path}: 1001 classes, over the limit of 1000"


def test_a_test_label_never_seen_in_training_is_refused(tmp_path):
    train_path = write_csv(tmp_path / "train.csv", table(2, 5))
    test_path = write_csv(tmp_path / "test.csv", table(2, 2) + [("x y", "c9")])
    assert _refused(Request(train_path, test_data=test_path)) == \
        f"{test_path}:5: label 'c9' never occurs in the training data {train_path}"


def test_the_same_file_as_training_and_test_data_is_refused(tmp_path):
    path = write_csv(tmp_path / "d.csv", table(2, 5))
    assert _refused(Request(path, test_data=os.path.join(str(tmp_path), ".", "d.csv"))) == (
        f"{tmp_path}/./d.csv: the same data as --data; give a separate test set, or leave --test-data out "
        "to hold out --test-size rows")


def test_labels_must_match_the_data(tmp_path):
    rows = table(3, 5)
    path = write_csv(tmp_path / "d.csv", rows)
    first = 1 + [label for _, label in rows].index("c2")
    assert _refused(Request(path, labels=("c0", "c1"))) == f"{path}:{first}: label 'c2' is not one of --labels"
    assert _refused(Request(path, labels=("c0", "c1", "c2", "c3"))) == f"{path}: --labels names 'c3', which no row has"


def _cli(cli: str, argv: list[str], out) -> subprocess.CompletedProcess:
    code = (f"import sys; from {cli}.__main__ import main; rc = main({[*argv, '--out', str(out)]!r}); "
            "print(rc, 'tensorflow' in sys.modules)")
    return subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120,
                          env={**os.environ, "PYTHONPATH": ROOT})


@pytest.mark.parametrize("cli, step", [("trainer", []), ("export", ["all"])])
def test_the_clis_refuse_bad_data_in_one_line_before_tensorflow_and_write_nothing(cli, step, tmp_path):
    rows = table(2, 5) + [("x y", "rare"), ("y z", "rare")]
    path = write_csv(tmp_path / "d.csv", [(t, label) for t, label in rows], header=("body", "topic"))
    proc = _cli(cli, [*step, "--data", path, "--text-column", "body", "--label-column", "topic"], tmp_path / "out")
    assert proc.stdout.split() == ["2", "False"], proc.stdout + proc.stderr
    assert proc.stderr.strip().splitlines()[-1] == (
        f"Error: {path}: class 'rare' has 2 examples; each class needs at least 3 "
        "(one each for training, validation and test)")
    assert not (tmp_path / "out").exists()


def test_the_cli_refuses_a_bad_test_size(tmp_path):
    proc = _cli("trainer", ["--test-size", "1.5"], tmp_path / "out")
    assert proc.stderr.strip().splitlines()[-1] == \
        "Error: --test-size must be a fraction between 0 and 1 or a count of at least 1, got 1.5"


# --- training N classes ----------------------------------------------------------------------------

ARCHS = {"tutorial": dict(arch="tutorial"), "masked": dict(arch="tutorial", mask_padding=True),
         "bigram": dict(arch="bigram", buckets=64), "linear": dict(arch="linear", buckets=64)}
RUNS = [("tutorial", 2), ("tutorial", 3), ("masked", 3), ("bigram", 3), ("linear", 3), ("linear", 7), ("bigram", 7)]


@pytest.mark.parametrize("arch, n_classes", RUNS, ids=[f"{a}-{n}" for a, n in RUNS])
def test_every_arch_trains_n_classes_and_writes_per_class_figures(arch, n_classes, tmp_path):
    path = write_csv(tmp_path / "d.csv", table(n_classes, 20), header=("body", "topic"))
    metrics = train(TrainConfig(data=path, out=str(tmp_path / "out"), epochs=20, batch_size=8, num_words=30,
                                maxlen=8, text_column="body", label_column="topic", **ARCHS[arch]))
    labels = [f"c{k}" for k in range(n_classes)]
    assert metrics["labels"] == labels and list(metrics["per_class"]) == labels
    assert np.array(metrics["confusion"]).sum(axis=1).tolist() == [4] * n_classes  # rows: the true class
    assert metrics["per_class"]["c0"]["support"] == 4
    assert metrics["test_accuracy"] >= 0.8, metrics
    assert metrics["config"]["validation_size"] == round(1.6 * n_classes)  # a tenth of the 16 per class left
    import keras

    import trainer.ngrams  # noqa: F401  the n-gram layers

    model = keras.models.load_model(tmp_path / "out" / "model.keras", safe_mode=True, compile=False)
    assert model.output_shape == (None, 1 if n_classes == 2 else n_classes)


def test_imdb_training_records_its_two_labels_and_per_class_figures(tiny_imdb_tar, tmp_path):
    metrics = train(TrainConfig(data=tiny_imdb_tar, out=str(tmp_path), epochs=1, batch_size=32, num_words=40,
                                validation_size=100))
    assert metrics["labels"] == ["negative", "positive"]
    assert sum(c["support"] for c in metrics["per_class"].values()) == 200 == np.sum(metrics["confusion"])
    assert metrics["config"]["validation_size"] == 100 and "test_data" not in metrics
