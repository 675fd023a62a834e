"""``python -m trainer.stars [--data ARCHIVE] --out DIR``: IMDB as a four-class table by star rating.

Each review's rating is in its file name (``<id>_<rating>.txt``); the classes are the star
ranges 1-2, 3-4, 7-8 and 9-10 (IMDB has no 5 or 6). Writes ``DIR/stars_train.csv`` and
``DIR/stars_test.csv`` (header ``text,label``, one row per review, in ``trainer.data``'s order)
and prints each file's class counts on stderr. The archive is read by ``trainer.data``, with
its safety rules; a review without a rating in its name, or outside every class, is an error
and nothing is written.
"""
from __future__ import annotations

import csv
import os
import sys
from collections import Counter

from runtime.errors import ArgumentParser, UserError, run_cli
from runtime.files import temp_output

from .data import SPLITS, add_data_argument, load_imdb, rating, resolve_source

CLASSES = {"1-2": (1, 2), "3-4": (3, 4), "7-8": (7, 8), "9-10": (9, 10)}  # label: star ratings
_CLASS_OF = {stars: label for label, ratings in CLASSES.items() for stars in ratings}
FILE_NAMES = {split: f"stars_{split}.csv" for split in SPLITS}


def star_label(file_name: str, where: str) -> str:
    """The class of the review ``file_name`` (``split/label/<id>_<rating>.txt``) of ``where``."""
    stars = rating(file_name)
    if stars is None:
        raise UserError(f"{where}: {file_name}: no star rating in the file name (expected <id>_<rating>.txt)")
    if stars not in _CLASS_OF:
        raise UserError(f"{where}: {file_name}: rating {stars} is in no class ({', '.join(CLASSES)})")
    return _CLASS_OF[stars]


def output_paths(out: str, source: str) -> dict[str, str]:
    """``{split: path}`` under ``out``, created if need be; an output that is the input is refused."""
    paths = {split: os.path.join(out, name) for split, name in FILE_NAMES.items()}
    for path in paths.values():
        if os.path.exists(path) and os.path.exists(source) and os.path.samefile(path, source):
            raise UserError(f"{path} is the input archive: choose another --out")
    try:
        os.makedirs(out, exist_ok=True)
    except OSError as e:
        raise UserError(f"cannot create --out {out}: {e.strerror}") from None
    return paths


def write_table(path: str, texts: list[str], labels: list[str]) -> None:
    """A ``text,label`` CSV, whole or not at all (``runtime.files.temp_output``)."""
    with temp_output(path) as tmp, open(tmp, "w", encoding="utf-8", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["text", "label"])
        writer.writerows(zip(texts, labels))


def counts_line(path: str, labels: list[str]) -> str:
    counts = Counter(labels)
    return f"{path}: {len(labels)} rows: " + ", ".join(f"{label} {counts[label]}" for label in CLASSES)


def _main(argv: list[str] | None) -> int:
    parser = ArgumentParser(prog="python -m trainer.stars", description=__doc__.split("\n\n")[0].split(": ", 1)[1])
    add_data_argument(parser)
    parser.add_argument("--out", required=True, metavar="DIR", help="folder for stars_train.csv and stars_test.csv")
    args = parser.parse_args(argv)
    source = resolve_source(args.data)
    paths = output_paths(args.out, os.path.expanduser(source))
    imdb = load_imdb(source)
    tables = {"train": (imdb.train_texts, imdb.train_files), "test": (imdb.test_texts, imdb.test_files)}
    labels = {split: [star_label(name, source) for name in files] for split, (_, files) in tables.items()}
    for split, (texts, _) in tables.items():  # every label checked before anything is written
        write_table(paths[split], texts, labels[split])
        print(counts_line(paths[split], labels[split]), file=sys.stderr)
    return 0


def main(argv: list[str] | None = None) -> int:
    return run_cli(_main, argv)


if __name__ == "__main__":
    sys.exit(main())
