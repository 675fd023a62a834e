"""trainer.stars: the IMDB archive as a four-class star-rating table (rows, labels, counts, errors)."""
from __future__ import annotations

import csv
import os

import pytest

from tests.conftest import tiny_corpus, write_imdb_tar
from trainer.data import load_imdb, rating
from trainer.stars import main

NEG, POS = (1, 2, 3, 4), (7, 8, 9, 10)
CLASS = {1: "1-2", 2: "1-2", 3: "3-4", 4: "3-4", 7: "7-8", 8: "7-8", 9: "9-10", 10: "9-10"}


def expected_rows(n: int, seed: int) -> list[list[str]]:
    """What write_imdb_tar(n, ratings=(NEG, POS)) holds for one split, in trainer.data's order
    (neg then pos, then file name as a string)."""
    texts, labels = tiny_corpus(n, seed)
    seen, named = [0, 0], []
    for i, (text, label) in enumerate(zip(texts, labels)):
        stars = (NEG, POS)[label][seen[label] % 4]
        seen[label] += 1
        named.append((label, f"{i}_{stars}.txt", text, CLASS[stars]))
    return [[text, cls] for _, _, text, cls in sorted(named)]


def read_csv(path) -> list[list[str]]:
    with open(path, encoding="utf-8", newline="") as f:
        return list(csv.reader(f))


def run(capsys, *argv: str) -> tuple[int, str]:
    code = main(list(argv))
    return code, capsys.readouterr().err


def test_rating_is_the_number_after_the_id():
    assert [rating(n) for n in ("train/pos/12_10.txt", "3_1.txt", "3_x.txt", "x_3.txt", "3.txt", "3_4.txt.bak")] \
        == [10, 1, None, None, None, None]


def test_imdb_names_each_review_file_in_the_order_of_its_texts(tmp_path):
    imdb = load_imdb(write_imdb_tar(tmp_path / "a.tar.gz", n_per_split=4))
    assert imdb.train_files == ["train/neg/0_2.txt", "train/neg/2_2.txt", "train/pos/1_8.txt", "train/pos/3_8.txt"]
    assert len(imdb.test_files) == len(imdb.test_texts) == 4


def test_writes_the_train_and_test_tables_with_star_classes_and_prints_the_counts(tmp_path, capsys):
    archive = write_imdb_tar(tmp_path / "a.tar.gz", n_per_split=16, ratings=(NEG, POS))
    out = tmp_path / "tables"
    code, err = run(capsys, "--data", archive, "--out", str(out))
    assert code == 0, err
    assert sorted(os.listdir(out)) == ["stars_test.csv", "stars_train.csv"]
    for split, seed in (("train", 0), ("test", 1)):
        assert read_csv(out / f"stars_{split}.csv") == [["text", "label"]] + expected_rows(16, seed)
    assert err.splitlines() == [f"{out}/stars_train.csv: 16 rows: 1-2 4, 3-4 4, 7-8 4, 9-10 4",
                                f"{out}/stars_test.csv: 16 rows: 1-2 4, 3-4 4, 7-8 4, 9-10 4"]


def test_a_text_with_quotes_commas_and_newlines_reads_back_as_written(tmp_path, capsys):
    import io
    import tarfile

    text = 'He said "no", then\nleft, <br />twice'
    archive = tmp_path / "a.tar"
    with tarfile.open(archive, "w") as tar:
        for name in ("train/neg/0_1.txt", "train/pos/1_9.txt", "test/neg/2_4.txt", "test/pos/3_7.txt"):
            info = tarfile.TarInfo(name)
            info.size = len(text.encode())
            tar.addfile(info, io.BytesIO(text.encode()))
    assert run(capsys, "--data", str(archive), "--out", str(tmp_path))[0] == 0
    assert read_csv(tmp_path / "stars_train.csv") == [["text", "label"], [text, "1-2"], [text, "9-10"]]
    assert read_csv(tmp_path / "stars_test.csv") == [["text", "label"], [text, "3-4"], [text, "7-8"]]


@pytest.mark.parametrize("ratings, message", [
    (((2,), (8, 5)), "{a}: train/pos/3_5.txt: rating 5 is in no class (1-2, 3-4, 7-8, 9-10)"),
    (((2, "x"), (8,)), "{a}: train/neg/2_x.txt: no star rating in the file name (expected <id>_<rating>.txt)"),
])
def test_a_review_outside_every_class_is_one_error_line_and_nothing_is_written(tmp_path, capsys, ratings, message):
    archive = write_imdb_tar(tmp_path / "a.tar.gz", n_per_split=4, ratings=ratings)
    out = tmp_path / "tables"
    code, err = run(capsys, "--data", archive, "--out", str(out))
    assert (code, err) == (2, "Error: " + message.format(a=archive) + "\n")
    assert os.listdir(out) == []


def test_missing_data_and_an_output_that_is_the_input_are_refused(tmp_path, capsys):
    assert run(capsys, "--data", str(tmp_path / "none.tar.gz"), "--out", str(tmp_path)) \
        == (2, f"Error: IMDB data path does not exist: {tmp_path}/none.tar.gz\n")
    archive = write_imdb_tar(tmp_path / "stars_test.csv", n_per_split=4)
    assert run(capsys, "--data", archive, "--out", str(tmp_path)) \
        == (2, f"Error: {tmp_path}/stars_test.csv is the input archive: choose another --out\n")
    assert open(archive, "rb").read(2) == b"\x1f\x8b"  # still the archive
    (tmp_path / "file").write_text("")
    assert run(capsys, "--data", archive, "--out", str(tmp_path / "file")) \
        == (2, f"Error: cannot create --out {tmp_path}/file: File exists\n")
