"""``python -m benchmarks.tfidf --data TRAIN.csv --test-data TEST.csv [--text-column text] [--label-column label]``

The plain baseline beside the kit's models: TF-IDF over word uni- and bigrams and a multinomial
logistic regression (scikit-learn, the [train] extra), fitted on the training table and scored
on the test table. Prints its accuracy and macro-F1 as a Markdown table.

The words are the kit's own (``runtime.tokenizer.split_words``: the same lowercasing and
delimiters as every bundle), so the comparison is of models, not of tokenizers. The settings are
fixed, not tuned on the test set: terms in at least 2 training texts, sublinear tf, lbfgs with a
fixed seed, C = 10 (on star ratings, 5,000 reviews held out of stars_train.csv gave C = 1, 3, 10,
30 an accuracy of 66.7, 67.1, 67.1, 66.7 % and a macro-F1 of 64.1, 65.0, 65.1, 64.9 %).
The tables are read as the trainer reads them (``trainer.dataset``: every format, the same
checks and messages).
"""
from __future__ import annotations

import sys
import time

from runtime.errors import ArgumentParser, require, run_cli
from runtime.tokenizer import split_words
from trainer.dataset import Request, load_dataset

C = 10.0
MIN_DF = 2
SEED = 0


def fit_and_score(train: tuple, test: tuple) -> dict:
    """Fit on ``train`` (texts, class indices), score on ``test``: accuracy, macro-F1 and the fit time."""
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
    p.add_argument("--data", required=True, metavar="TRAIN", help="training table (csv, tsv, jsonl, parquet)")
    p.add_argument("--test-data", required=True, metavar="TEST", help="test table, with the same columns")
    p.add_argument("--text-column", default="text", help="column of the texts (default: %(default)s)")
    p.add_argument("--label-column", default="label", help="column of the labels (default: %(default)s)")
    args = p.parse_args(argv)
    data = load_dataset(Request(data=args.data, test_data=args.test_data, text_column=args.text_column,
                                label_column=args.label_column))
    train = (data.train_texts, data.train_labels)
    result = fit_and_score(train, (data.test_texts, data.test_labels))
    print(table(result, len(data.train_texts), len(data.test_texts), data.labels))
    return 0


def main(argv: list[str] | None = None) -> int:
    return run_cli(_main, argv)


if __name__ == "__main__":
    sys.exit(main())
