"""``python -m benchmarks.tfidf --data TRAIN.csv --test-data TEST.csv [--text-column text] [--label-column label]``

The plain baseline beside the kit's models: TF-IDF over word uni- and bigrams and a multinomial
logistic regression (scikit-learn, the [train] extra), fitted on the training table and scored
on the test table. Prints its accuracy and macro-F1 as a Markdown table.

The words are the kit's own (``runtime.tokenizer.split_words``: the same lowercasing and
delimiters as every bundle), so the comparison is of models, not of tokenizers. The settings are
fixed, not tuned on the test set: terms in at least 2 training texts, sublinear tf, lbfgs with a
fixed seed, C = 10 (on star ratings, 5,000 reviews held out of stars_train.csv gave C = 1, 3, 10,
30 an accuracy of 66.7, 67.1, 67.1, 66.7 % and a macro-F1 of 64.1, 65.0, 65.1, 64.9 %).
The tables are read by ``runtime.records`` (CSV or TSV with a header).
"""
from __future__ import annotations

import os
import sys
import time

from runtime.errors import ArgumentParser, UserError, require, run_cli
from runtime.records import CSV, TSV, Spec, format_of, open_source
from runtime.tokenizer import split_words

BATCH = 4096  # records per piece read
C = 10.0
MIN_DF = 2
SEED = 0


def column(source, what: str) -> list[str]:
    """Every value of ``source``'s text column, in order; an empty one is refused, named by its row."""
    values = []
    for piece in source.pieces():
        for rows in piece.read(source.spec):
            for number, value in zip(rows.numbers, rows.texts):
                if not value.strip():
                    raise UserError(f"{source.path}:{number}: empty {what}")
                values.append(value)
    return values


def read_table(path: str, text_column: str, label_column: str) -> tuple[list[str], list[str]]:
    """``(texts, labels)``: one pass per column, each read as the text column of its pass (the
    readers' Spec keeps no column named ``label``: that name is a scoring output's)."""
    fmt = format_of(path)
    if fmt not in (CSV, TSV):
        raise UserError(f"{path}: a table is a .csv or .tsv file here")
    source = open_source(path, fmt, Spec(text_column=text_column), BATCH)  # checks the header's text column
    texts = column(source, "text")
    if label_column not in source.header:
        raise UserError(f"{path}: no column {label_column!r} (--label-column); columns: {', '.join(source.header)}")
    return texts, column(open_source(path, fmt, Spec(text_column=label_column), BATCH), "label")


def check_labels(train: list[str], test: list[str], test_path: str) -> list[str]:
    """The sorted training labels: at least two, and every test label among them."""
    labels = sorted(set(train))
    if len(labels) < 2:
        raise UserError(f"the training table has one class ({labels[0]!r}): a classifier needs two or more")
    for row, label in enumerate(test, 1):
        if label not in labels:
            raise UserError(f"{test_path}:{row}: label {label!r} is not in the training table")
    return labels


def fit_and_score(train: tuple[list[str], list[str]], test: tuple[list[str], list[str]]) -> dict:
    """Fit on ``train`` (texts, labels), score on ``test``: accuracy, macro-F1 and the fit time."""
    text = require("sklearn.feature_extraction.text", "train")
    linear = require("sklearn.linear_model", "train")
    metrics = require("sklearn.metrics", "train")
    started = time.perf_counter()
    vectorizer = text.TfidfVectorizer(tokenizer=split_words, lowercase=False, token_pattern=None,
                                      ngram_range=(1, 2), min_df=MIN_DF, sublinear_tf=True)
    model = linear.LogisticRegression(C=C, solver="lbfgs", max_iter=1000, random_state=SEED)
    model.fit(vectorizer.fit_transform(train[0]), train[1])
    fit_s = time.perf_counter() - started
    predicted = model.predict(vectorizer.transform(test[0]))
    return {"accuracy": metrics.accuracy_score(test[1], predicted),
            "macro_f1": metrics.f1_score(test[1], predicted, average="macro"),
            "features": len(vectorizer.vocabulary_), "fit_s": fit_s}


def table(result: dict, n_train: int, n_test: int, labels: list[str]) -> str:
    return "\n".join([
        "| model | classes | train rows | test rows | features | accuracy % | macro-F1 % | fit s |",
        "|---|---|---|---|---|---|---|---|",
        f"| TF-IDF uni+bigrams + logistic regression (C={C:g}) | {len(labels)} ({', '.join(labels)}) | "
        f"{n_train:,} | {n_test:,} | {result['features']:,} | {result['accuracy'] * 100:.2f} | "
        f"{result['macro_f1'] * 100:.2f} | {result['fit_s']:.1f} |"])


def _main(argv: list[str] | None) -> int:
    p = ArgumentParser(prog="python -m benchmarks.tfidf", description=__doc__.split("\n\n")[1])
    p.add_argument("--data", required=True, metavar="TRAIN", help="training table (.csv or .tsv with a header)")
    p.add_argument("--test-data", required=True, metavar="TEST", help="test table, with the same columns")
    p.add_argument("--text-column", default="text", help="column of the texts (default: %(default)s)")
    p.add_argument("--label-column", default="label", help="column of the labels (default: %(default)s)")
    args = p.parse_args(argv)
    if os.path.exists(args.data) and os.path.exists(args.test_data) and os.path.samefile(args.data, args.test_data):
        raise UserError(f"--data and --test-data are the same file ({args.data}): the test set must be held out")
    train = read_table(args.data, args.text_column, args.label_column)
    test = read_table(args.test_data, args.text_column, args.label_column)
    labels = check_labels(train[1], test[1], args.test_data)
    result = fit_and_score(train, test)
    print(table(result, len(train[0]), len(test[0]), labels))
    return 0


def main(argv: list[str] | None = None) -> int:
    return run_cli(_main, argv)


if __name__ == "__main__":
    sys.exit(main())
