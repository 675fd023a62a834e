"""Export and verification of a three-class model (softmax [batch, 3]): labels.txt and metadata
with the 3 labels, verify's checks over every output column, the int8 figures, MediaPipe's 3
categories, the report's per-class table and a manifest the runtime accepts."""
from __future__ import annotations

import json
import os
from types import SimpleNamespace

import numpy as np
import pytest

from export import verify as V
from export.archs import int8_figures
from export.manifest import build_manifest, labels_file_lines, metadata_texts, write_manifest
from runtime.tokenizer import Tokenizer
from tests.conftest import THREE_LABELS, three_class_corpus as corpus, write_three_class_files
from tests.export.metadata_reader import read_metadata

LABELS = THREE_LABELS  # column i = P(LABELS[i])
MAXLEN = 64


@pytest.fixture(scope="module")
def three(tmp_path_factory):
    """A bundle directory of a trained 3-class tutorial model (vocab of 50, maxlen 64) and its test
    rows: SimpleNamespace(out, model, tok, texts, ids [n, 64], labels [n], reference [n, 3])."""
    import keras

    from trainer.model import build_model

    texts, labels = corpus(300, seed=0)
    tok = Tokenizer.build(texts, num_words=50, maxlen=MAXLEN)
    keras.utils.set_random_seed(0)
    model = build_model(num_words=50, maxlen=MAXLEN, num_classes=3)
    model.compile(optimizer=keras.optimizers.Adam(0.02), loss="sparse_categorical_crossentropy")
    model.fit(tok.encode_batch(texts), labels, epochs=8, batch_size=32, verbose=0)
    out = str(tmp_path_factory.mktemp("three"))
    write_three_class_files(out, model, tok, tok.encode_batch(texts[:100]))
    test_texts, test_labels = corpus(120, seed=1)
    ids = tok.encode_batch(test_texts)
    reference = V.probabilities(model.predict(ids, verbose=0))
    return SimpleNamespace(out=out, model=model, tok=tok, texts=test_texts, ids=ids, labels=test_labels,
                           reference=reference)


def test_the_fixture_model_learnt_its_three_classes(three):
    assert three.reference.shape == (120, 3)
    assert V.accuracy(three.reference, three.labels) > 0.9
    assert set(V.predicted(three.reference)) == {0, 1, 2}


# --- verify's figures and checks over [n, 3] ------------------------------------------------

@pytest.mark.parametrize("name", ["model.onnx", "model.tflite"])
def test_float_formats_score_n_by_3_and_pass(three, name):
    probs = V.score_file(os.path.join(three.out, name), three.ids)
    assert probs.shape == (120, 3) and probs.dtype == np.float32
    result = V.compare(name, probs, three.reference, three.labels, quantized=False)
    assert result.passed, result.failures
    assert result.figures["agreement"] == 1.0 and result.figures["max_abs_diff"] <= V.FLOAT_MAX_ABS_DIFF
    assert result.figures["accuracy"] == V.accuracy(three.reference, three.labels)


@pytest.mark.parametrize("name", ["model.int8.onnx", "model.int8.tflite"])
def test_quantized_formats_score_n_by_3_and_pass(three, name):
    probs = V.score_file(os.path.join(three.out, name), three.ids)
    assert probs.shape == (120, 3)
    result = V.compare(name, probs, three.reference, three.labels, quantized=True,
                       reference_accuracy=V.accuracy(three.reference, three.labels))
    assert result.passed, result.failures


def test_two_class_score_file_still_gives_one_probability_per_row(tiny_model, tiny_ids, tmp_path):
    from export.onnx_export import to_onnx

    to_onnx(tiny_model, str(tmp_path / "model.onnx"))
    ids = tiny_ids(5, seed=3)[0]
    probs = V.score_file(str(tmp_path / "model.onnx"), ids)
    assert probs.shape == (5,)
    np.testing.assert_allclose(probs, tiny_model.predict(ids, verbose=0)[:, 0], atol=1e-5, rtol=0)


def test_the_predicted_class_is_the_arg_max_with_ties_to_the_lowest_index():
    probs = np.array([[0.2, 0.5, 0.3], [0.4, 0.4, 0.2], [0.1, 0.3, 0.3]], np.float32)
    assert V.predicted(probs).tolist() == [1, 0, 1]
    assert V.accuracy(probs, np.array([1, 0, 2])) == 2 / 3
    assert V.predicted(np.array([0.5, 0.49], np.float32)).tolist() == [1, 0]  # two classes: the threshold


def _rows(n: int = 100) -> tuple[np.ndarray, np.ndarray]:
    """([n, 3] probabilities whose arg-max is the label, labels [n]): a perfect reference."""
    labels = np.arange(n) % 3
    probs = np.full((n, 3), 0.2, np.float32)
    probs[np.arange(n), labels] = 0.6
    return probs, labels


def test_a_float_format_off_by_more_than_the_tolerance_in_any_column_fails():
    reference, labels = _rows()
    probs = reference.copy()
    probs[7, 2] += 3e-5  # a column that is not the arg-max: the label stays
    result = V.compare("model.onnx", probs, reference, labels, quantized=False)
    assert result.figures["agreement"] == 1.0
    assert result.failures == [f"max |dp| {result.figures['max_abs_diff']:.3g} > 1e-05"]
    assert abs(result.figures["max_abs_diff"] - 3e-5) < 1e-7


def test_a_float_format_with_another_arg_max_fails_on_agreement():
    reference, labels = _rows()
    probs = reference.copy()
    probs[4] = probs[4, [2, 0, 1]]  # the same scores, another arg-max
    result = V.compare("model.tflite", probs, reference, labels, quantized=False)
    assert result.failures == [f"max |dp| {result.figures['max_abs_diff']:.3g} > 1e-05",
                               "label agreement 99.0000% < 100%"]


def test_a_float_format_may_label_a_near_tie_otherwise_but_not_a_clear_row():
    reference = np.array([[0.4, 0.4 + 4e-6, 0.2 - 4e-6], [0.1, 0.7, 0.2]], dtype=np.float32)
    tie = reference.copy()
    tie[0, [0, 1]] = tie[0, [1, 0]]  # within 1e-5 of the reference, the other of two near-equal labels
    result = V.compare("model.tflite", tie, reference, None, quantized=False)
    assert (result.figures["agreement"], result.figures["near_ties"], result.failures) == (0.5, 1, [])
    clear = reference.copy()
    clear[1] = [0.1, 0.2, 0.7]
    result = V.compare("model.tflite", clear, reference, None, quantized=False)
    assert result.figures["near_ties"] == 0
    assert result.failures == ["max |dp| 0.5 > 1e-05", "label agreement 50.0000% < 100%"]


def test_two_class_near_ties_are_probabilities_within_the_tolerance_of_one_half():
    reference = np.array([0.5 - 4e-6, 0.5 - 4e-5, 0.9], dtype=np.float32)
    assert V.near_ties(np.array([0.5, 0.5, 0.9], dtype=np.float32), reference, 1e-5) == 1


def test_a_quantized_format_below_99_percent_agreement_fails():
    reference, labels = _rows()
    probs = reference.copy()
    probs[[0, 1]] = probs[[0, 1]][:, [1, 2, 0]]  # 2 of 100 rows: 98% agreement
    result = V.compare("model.int8.tflite", probs, reference, labels, quantized=True)
    assert result.failures == ["label agreement 98.0000% < 99%"]


def test_accuracy_drop_counts_arg_max_hits_and_fails_past_half_a_point():
    reference, labels = _rows(1000)
    probs = reference.copy()
    flipped = np.arange(0, 60, 10)  # 6 of 1,000 rows wrong: 99.4% agreement, 0.6 points lost
    probs[flipped] = probs[flipped][:, [1, 2, 0]]
    result = V.compare("model.int8.onnx", probs, reference, labels, quantized=True,
                       reference_accuracy=V.accuracy(reference, labels))
    assert result.failures == ["accuracy 0.9940 is 0.60 points below Keras (allowed 0.5)"]


def test_a_format_of_another_output_width_fails_on_its_shape():
    reference, labels = _rows(10)
    result = V.compare("model.onnx", reference[:, 1], reference, labels, quantized=False)
    assert result.failures == ["scored shape [10], the reference [10, 3]"]
    assert result.figures["agreement"] is None


@pytest.mark.parametrize("name", ["model.onnx", "model.int8.tflite"])
def test_batch_independence_and_edge_rows_of_n_by_3_outputs(three, name):
    path = os.path.join(three.out, name)
    result = V.Result(name, {})
    V.check_batch_independence(result, path, three.ids, V.score_file(path, three.ids))
    V.check_edge_rows(result, path, *V.edge_rows(three.tok), width=3)
    assert result.passed, result.failures
    for scores in result.figures["edge_rows"].values():
        assert len(scores) == 5
        assert all(len(p) == 3 and abs(sum(p) - 1) < 0.02 for p in scores.values())


class _Scores:
    """A scorer giving ``row`` for every review."""

    def __init__(self, row):
        self.row = np.asarray(row, np.float32)

    def run(self, ids):
        return np.tile(self.row, (len(ids), 1)) if self.row.ndim else np.full(len(ids), self.row)


def test_an_edge_row_with_the_wrong_width_or_no_probabilities_fails(three):
    result = V.Result("model.onnx", {})
    V.check_edge_rows(result, "model.onnx", *V.edge_rows(three.tok), width=3,
                      backends=lambda path: [("one column", _Scores(0.5)), ("nan", _Scores([0.5, np.nan, 0.5]))])
    names = V.edge_rows(three.tok)[0]
    assert result.failures == ([f"the edge row {n} (one column) scored [0.5], not 3 probabilities in [0, 1]"
                                for n in names]
                               + [f"the edge row {n} (nan) scored [0.5, nan, 0.5], not 3 probabilities in [0, 1]"
                                  for n in names])


class _Wide:
    def run(self, ids):
        return np.full((len(ids), 3), 0.5, np.float32)


def test_two_class_edge_rows_refuse_a_wide_output(three):
    result = V.Result("model.onnx", {})
    V.check_edge_rows(result, "model.onnx", *V.edge_rows(three.tok), backends=lambda path: [("wide", _Wide())])
    assert result.failures[0] == "the edge row empty (wide) scored [0.5, 0.5, 0.5], not one probability in [0, 1]"


# --- the int8 chooser's figures ---------------------------------------------------------------

def test_int8_figures_for_three_classes():
    reference, labels = _rows(1000)
    assert int8_figures(reference, reference, labels) == {"agreement": 1.0, "accuracy_drop": 0.0,
                                                          "max_abs_diff": 0.0}
    probs = reference.copy()
    probs[:10] = probs[:10][:, [1, 2, 0]]  # 1% of the rows: another class, a wrong one
    figures = int8_figures(probs, reference, labels)
    assert figures["agreement"] == 0.99 and figures["accuracy_drop"] == pytest.approx(0.01)
    assert figures["max_abs_diff"] == pytest.approx(0.4)


def test_int8_figures_for_two_classes_are_todays():
    rng = np.random.default_rng(0)
    reference = rng.uniform(size=500).astype(np.float32)
    probs = np.clip(reference + rng.normal(0, 0.05, size=500), 0, 1).astype(np.float32)
    labels = (rng.uniform(size=500) < 0.5).astype(np.int32)
    before = {"agreement": float(np.mean((probs >= 0.5) == (reference >= 0.5))),  # the two-class formulas
              "accuracy_drop": float(np.mean((reference >= 0.5) == (labels == 1))
                                     - np.mean((probs >= 0.5) == (labels == 1))),
              "max_abs_diff": float(np.max(np.abs(probs.astype(np.float64) - reference), initial=0.0))}
    assert int8_figures(probs, reference, labels) == before


# --- labels.txt, metadata, MediaPipe ------------------------------------------------------------

def test_labels_file_lines():
    assert labels_file_lines(["negative", "positive"]) == ["positive"]
    assert labels_file_lines(["ham", "spam"]) == ["spam"]
    assert labels_file_lines(LABELS) == LABELS


@pytest.mark.parametrize("name", ["model.tflite", "model.int8.tflite"])
def test_metadata_lists_the_three_labels(three, name):
    meta = read_metadata(os.path.join(three.out, name))
    assert meta["labels"] == LABELS
    assert meta["associated_files"]["labels.txt"] == b"alpha\nbeta\ngamma\n"
    mode = "float" if name == "model.tflite" else "int8"
    assert (meta["name"], meta["description"]) == (
        "Text classification", f"One probability per label, in the order of labels.txt ({mode} TFLite). "
                               "Lowercase the text before classifying.")
    with open(os.path.join(three.out, "labels.txt"), "rb") as f:
        assert f.read() == b"alpha\nbeta\ngamma\n"


def test_metadata_refuses_two_class_labels_for_three_outputs(three):
    from export.metadata import MetadataError, add_metadata
    from export.tflite_export import to_tflite

    with pytest.raises(MetadataError, match=r"^output has 3 scores per row \(\[1, 3\]\) but 1 labels were given$"):
        add_metadata(to_tflite(three.model, "float"), vocab_path=os.path.join(three.out, "vocab.txt"),
                     labels=["positive"], version="0.0.1", **metadata_texts(["negative", "positive"], "float"))


def test_two_class_metadata_texts_are_todays():
    assert metadata_texts(["negative", "positive"], "int8") == {
        "name": "IMDB review sentiment",
        "description": "Probability that a movie review is positive (int8 TFLite). "
                       "Lowercase the text before classifying."}
    assert metadata_texts(["ham", "spam"], "float")["scores_description"] == "Probability that the text is 'spam'."


@pytest.mark.parametrize("name", ["model.tflite", "model.int8.tflite"])
def test_mediapipe_returns_three_categories_scored_as_litert(three, name):
    from export.mediapipe_check import mediapipe_scores

    path = os.path.join(three.out, name)
    texts = three.texts[:40] + ["", "APPLE Stone river!", "unknown words only"]
    got = mediapipe_scores(path, texts, LABELS)
    want = V.score_file(path, three.tok.encode_batch(texts))
    assert got.shape == want.shape == (43, 3)
    result = V.compare(f"mediapipe:{name}", got, want, None, quantized=False, max_abs_diff=V.MEDIAPIPE_MAX_ABS_DIFF)
    assert result.passed, result.failures
    reordered = mediapipe_scores(path, texts[:5], LABELS[::-1])  # mapped by name, not by rank
    np.testing.assert_array_equal(reordered, got[:5, ::-1])


def test_mediapipe_check_names_categories_it_did_not_expect(three):
    from export.mediapipe_check import MediaPipeCheckError, mediapipe_scores

    with pytest.raises(MediaPipeCheckError) as e:
        mediapipe_scores(os.path.join(three.out, "model.tflite"), ["apple"], ["alpha", "beta", "delta"])
    assert str(e.value) == "MediaPipe returned categories ['alpha', 'beta', 'gamma'], not ['alpha', 'beta', 'delta']"
    with pytest.raises(MediaPipeCheckError) as e:
        mediapipe_scores(os.path.join(three.out, "model.tflite"), ["apple"])  # the two-class default
    assert str(e.value) == "MediaPipe returned categories ['alpha', 'beta', 'gamma'], not 'positive'"


# --- manifest and report -------------------------------------------------------------------------

PER_CLASS = {"alpha": {"precision": 1.0, "recall": 0.95, "f1": 0.974359, "support": 40},
             "beta": {"precision": 0.9, "recall": 1.0, "f1": 0.947368, "support": 36},
             "gamma": {"precision": 0.975, "recall": 0.928571, "f1": 0.95122, "support": 44}}
CONFUSION = [[38, 2, 0], [0, 36, 0], [0, 2, 42]]


def _training(**extra) -> dict:
    return {"test_accuracy": 0.95, "test_loss": 0.2, "best_epoch": 3, "epochs_run": 4, "train_seconds": 1.0, **extra}


def test_three_class_manifest_is_accepted_by_the_runtime(three, tmp_path):
    from runtime.bundle import Bundle

    manifest = build_manifest(three.out, three.tok, _training(labels=LABELS), {"results": {}})
    assert (manifest["labels"], manifest["threshold"], manifest["labels_file"]) == (LABELS, None, "labels.txt")
    assert (manifest["name"], manifest["description"]) == (
        "text_classification", "Text classification into 3 labels: one probability per label.")
    write_manifest(three.out, manifest)
    bundle = Bundle.load(three.out)  # every listed file's sha256 checked
    assert (bundle.labels, bundle.threshold) == (LABELS, None)
    os.unlink(os.path.join(three.out, "manifest.json"))


def test_two_class_manifest_is_todays(three):
    for training in (None, _training(), _training(labels=["negative", "positive"])):
        manifest = build_manifest(three.out, three.tok, training, {"results": {}})
        assert (manifest["name"], manifest["description"], manifest["labels"], manifest["threshold"]) == (
            "imdb_basic_text_classification", "IMDB review sentiment: probability that a review is positive.",
            ["negative", "positive"], 0.5)
    own = build_manifest(three.out, three.tok, _training(labels=["ham", "spam"]), {"results": {}})
    assert (own["name"], own["description"], own["threshold"]) == (
        "text_classification", "Text classification: probability that a text is 'spam'.", 0.5)


def _report(tmp_path, training: dict) -> str:
    from export.report import write_report

    manifest = {"name": "text_classification", "created": "2026-01-01T00:00:00Z", "files": {},
                "training": training,
                "verification": {"dataset": {"name": "test", "n": 120}, "reference": {"accuracy": 0.95},
                                 "tolerances": V.tolerances(), "results": {}}}
    with open(write_report(str(tmp_path), manifest), encoding="utf-8") as f:
        return f.read()


def test_report_has_the_per_class_table_and_the_confusion_matrix(tmp_path):
    text = _report(tmp_path, _training(labels=LABELS, per_class=PER_CLASS, confusion=CONFUSION))
    assert ("### Per class (test split)\n\n"
            "| label | precision | recall | F1     | support |\n"
            "|-------|-----------|--------|--------|---------|\n"
            "| alpha | 1.0000    | 0.9500 | 0.9744 | 40      |\n"
            "| beta  | 0.9000    | 1.0000 | 0.9474 | 36      |\n"
            "| gamma | 0.9750    | 0.9286 | 0.9512 | 44      |\n\n"
            "Confusion matrix: rows are the true class, columns the predicted class.\n\n"
            "| true \\ predicted | alpha | beta | gamma |\n"
            "|------------------|-------|------|-------|\n"
            "| alpha            | 38    | 2    | 0     |\n"
            "| beta             | 0     | 36   | 0     |\n"
            "| gamma            | 0     | 2    | 42    |\n") in text


def test_report_without_per_class_figures_has_no_per_class_section(tmp_path):
    text = _report(tmp_path, _training())
    assert "Per class" not in text and "Confusion" not in text
    assert text.endswith("Test accuracy 0.9500, loss 0.2000; best validation epoch 3 of 4; 1.0 s.\n")


# --- the pipeline's steps on a three-class model -------------------------------------------------

def test_tflite_and_verify_steps_export_and_verify_a_three_class_model(three, tmp_path, monkeypatch):
    """step_tflite (no int8: no training data read) and step_verify on the fixture's test rows;
    the data loading is the trainer's (``_load_data``), replaced here by the test split."""
    import shutil

    from export import pipeline
    from runtime.bundle import Bundle

    out = str(tmp_path / "bundle")
    os.makedirs(out)
    for name in ("model.keras", "vocab.txt", "model.onnx", "model.int8.onnx"):
        shutil.copyfile(os.path.join(three.out, name), os.path.join(out, name))
    with open(os.path.join(out, "metrics.json"), "w", encoding="utf-8") as f:
        json.dump(_training(labels=LABELS, per_class=PER_CLASS, confusion=CONFUSION, data=str(tmp_path)), f)
    with open(os.path.join(out, "tokenizer.json"), "w", encoding="utf-8") as f:
        json.dump({"vocab_file": "vocab.txt", "maxlen": MAXLEN, "num_words": 50}, f)
    cfg = pipeline.ExportConfig(out=out, int8=False, mediapipe_samples=20)
    pipeline.step_tflite(cfg)
    with open(os.path.join(out, "labels.txt"), "rb") as f:
        assert f.read() == b"alpha\nbeta\ngamma\n"
    monkeypatch.setattr(pipeline, "_load_data", lambda cfg: SimpleNamespace(test_texts=three.texts,
                                                                             test_labels=three.labels))
    results = pipeline.step_verify(cfg)
    assert [r.name for r in results] == ["model.onnx", "model.int8.onnx", "model.tflite", "mediapipe:model.tflite"]
    assert all(r.passed for r in results), [r.failures for r in results]
    manifest = Bundle.load(out).manifest
    assert (manifest["labels"], manifest["threshold"]) == (LABELS, None)
    assert manifest["verification"]["dataset"]["name"] == "test"
    assert manifest["verification"]["reference"]["accuracy"] == V.accuracy(three.reference, three.labels)
    with open(os.path.join(out, "report.md"), encoding="utf-8") as f:
        assert "| gamma | 0.9750    | 0.9286 | 0.9512 | 44      |" in f.read()


def test_labels_that_do_not_fit_the_model_are_refused(three, tmp_path):
    import shutil

    from export import pipeline
    from export.errors import ExportError

    out = str(tmp_path)
    for name in ("model.keras", "vocab.txt"):
        shutil.copyfile(os.path.join(three.out, name), os.path.join(out, name))
    with open(os.path.join(out, "metrics.json"), "w", encoding="utf-8") as f:
        json.dump({"labels": ["ham", "spam"]}, f)
    with pytest.raises(ExportError) as e:
        pipeline.step_tflite(pipeline.ExportConfig(out=out, int8=False))
    assert str(e.value) == (f"{out}: model.keras has 3 outputs, but metrics.json names 2 labels ['ham', 'spam'] "
                            "(needing 1)")
    assert not os.path.exists(os.path.join(out, "labels.txt"))
