"""benchmarks.tfidf: the TF-IDF + logistic regression baseline on tiny tables (figures and refusals)."""
from __future__ import annotations

import csv

import pytest

from benchmarks.tfidf import main
from tests.conftest import THREE_LABELS, three_class_corpus


def write_table(path, rows, header=("text", "label"), delimiter=","):
    with open(path, "w", encoding="utf-8", newline="") as f:
        csv.writer(f, delimiter=delimiter).writerows([header, *rows])
    return str(path)


def corpus_table(path, n: int, seed: int, delimiter: str = ",") -> str:
    texts, labels = three_class_corpus(n, seed)
    return write_table(path, [(t, THREE_LABELS[y]) for t, y in zip(texts, labels)], delimiter=delimiter)


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def table_cells(text: str) -> list[list[str]]:
    return [[c.strip() for c in line.strip("|").split("|")] for line in text.splitlines()]


@pytest.mark.parametrize("suffix, delimiter", [(".csv", ","), (".tsv", "\t")])
def test_fits_on_the_training_table_and_scores_the_test_table(tmp_path, capsys, suffix, delimiter):
    train = corpus_table(tmp_path / f"train{suffix}", 150, seed=0, delimiter=delimiter)
    test = corpus_table(tmp_path / f"test{suffix}", 60, seed=1, delimiter=delimiter)
    code, out, err = run(capsys, "--data", train, "--test-data", test)
    assert (code, err) == (0, "")
    header, rule, row = table_cells(out)
    assert header == ["model", "classes", "train rows", "test rows", "features", "accuracy %", "macro-F1 %", "fit s"]
    assert set("".join(rule)) == {"-"}
    assert row[:7] == ["TF-IDF uni+bigrams + logistic regression (C=10)", "3 (alpha, beta, gamma)", "150", "60",
                       row[4], "100.00", "100.00"]
    assert int(row[4]) > 12 and float(row[7]) >= 0  # the 12 class words and more


def test_the_columns_can_be_named(tmp_path, capsys):
    rows = [("x", f"apple {w}") for w in ("pear", "plum", "fig")] + [("y", f"river {w}") for w in ("lake", "sea")]
    train = write_table(tmp_path / "train.csv", rows, header=("topic", "body"))
    test = write_table(tmp_path / "test.csv", [("x", "apple"), ("y", "river")], header=("topic", "body"))
    code, out, _ = run(capsys, "--data", train, "--test-data", test, "--text-column", "body", "--label-column", "topic")
    assert code == 0 and table_cells(out)[2][1:4] == ["2 (x, y)", "5", "2"]


GOOD = [("a", "x"), ("b", "x"), ("c", "y"), ("d", "y")]  # two rows a class: training and validation
REFUSED = [  # the trainer's own lines (trainer.dataset reads the tables): tests/trainer/test_dataset.py has them all
    ("train.csv", [("a b", "x"), ("c", "x")], "{train}: only one class ('x'); training needs at least 2"),
    ("train.csv", GOOD + [("e", " ")], "{train}:5: empty or null label (--label-column 'label')"),
    ("train.csv", GOOD + [("", "y")], "{train}:5: empty text; every labelled row needs a text"),
    ("test.csv", [("a", "x"), ("b", "z")], "{test}:2: label 'z' never occurs in the training data {train}"),
]


@pytest.mark.parametrize("which, rows, message", REFUSED)
def test_a_bad_table_is_the_trainers_one_error_line(tmp_path, capsys, which, rows, message):
    paths = {name: write_table(tmp_path / name, GOOD) for name in ("train.csv", "test.csv")}
    paths[which] = write_table(tmp_path / which, rows)
    code, out, err = run(capsys, "--data", paths["train.csv"], "--test-data", paths["test.csv"])
    assert (code, out, err) == (2, "", "Error: " + message.format(train=paths["train.csv"], test=paths["test.csv"])
                                + "\n")


def test_the_same_file_as_training_and_test_data_is_refused(tmp_path, capsys):
    good = write_table(tmp_path / "good.csv", GOOD)
    assert run(capsys, "--data", good, "--test-data", good) == (
        2, "", f"Error: {good}: the same data as --data; give a separate test set, or leave --test-data out to "
               "hold out --test-size rows\n")
