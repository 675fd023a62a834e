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


REFUSED = [
    ("train.csv", [("a b", "x")], "the training table has one class ('x'): a classifier needs two or more"),
    ("train.csv", [("a", "x"), ("b", " ")], "{train}:2: empty label"),
    ("train.csv", [("a", "x"), ("", "y")], "{train}:2: empty text"),
    ("test.csv", [("a", "x"), ("b", "z")], "{test}:2: label 'z' is not in the training table"),
    ("test.csv", [("a", "x", "1")], "{test}:2: 3 fields, the header has 2"),  # records: the line
]


@pytest.mark.parametrize("which, rows, message", REFUSED)
def test_a_bad_table_is_one_error_line(tmp_path, capsys, which, rows, message):
    paths = {name: write_table(tmp_path / name, [("a", "x"), ("b", "y")]) for name in ("train.csv", "test.csv")}
    paths[which] = write_table(tmp_path / which, rows)
    code, out, err = run(capsys, "--data", paths["train.csv"], "--test-data", paths["test.csv"])
    assert (code, out, err) == (2, "", "Error: " + message.format(train=paths["train.csv"], test=paths["test.csv"])
                                + "\n")


def test_missing_columns_a_shared_file_and_other_formats_are_refused(tmp_path, capsys):
    good = write_table(tmp_path / "good.csv", [("a", "x"), ("b", "y")])
    no_label = write_table(tmp_path / "no_label.csv", [("a", "x")], header=("text", "topic"))
    no_text = write_table(tmp_path / "no_text.csv", [("a", "x")], header=("body", "label"))
    (tmp_path / "t.jsonl").write_text('{"text": "a", "label": "x"}\n')
    cases = [
        ([good, no_label], f"{no_label}: no column 'label' (--label-column); columns: text, topic"),
        ([no_text, good], f"{no_text}: no column 'text' (--text-column); columns: body, label"),
        ([good, good], f"--data and --test-data are the same file ({good}): the test set must be held out"),
        ([good, str(tmp_path / "t.jsonl")], f"{tmp_path}/t.jsonl: a table is a .csv or .tsv file here"),
        ([good, str(tmp_path / "none.csv")], f"{tmp_path}/none.csv: cannot read: No such file or directory"),
    ]
    for (train, test), message in cases:
        assert run(capsys, "--data", train, "--test-data", test) == (2, "", f"Error: {message}\n")
