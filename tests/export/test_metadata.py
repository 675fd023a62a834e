"""TFLite metadata: our writer/reader, mediapipe's generated reader, LiteRT and MediaPipe TextClassifier."""
from __future__ import annotations

import sys
import zipfile

import numpy as np
import pytest
from ai_edge_litert.interpreter import Interpreter

from export.mediapipe_check import MediaPipeCheckError, MediaPipeUnavailable, mediapipe_scores
from export.metadata import MIN_PARSER_VERSION, MetadataError, add_metadata
from tests.export.metadata_reader import read_metadata
from export.tflite_export import to_tflite
from runtime.tokenizer import DELIM_PATTERN, Tokenizer

# Words the vocabulary knows, unknown words, case, apostrophes, <br />, digits, unicode,
# punctuation runs, empty text and a text longer than maxlen (truncation).
TEXTS = [
    "A great movie, I loved it!",
    "Terrible film. I hated every minute.",
    "great acting<br />bad plot<br /><br />boring",
    "It's not bad, it's GREAT",
    "don't watch this; worst movie ever...",
    "Wonderful!!! 10/10 would watch again",
    "awful awful awful",
    "The plot was boring and the acting was bad",
    "Café, naïve façade — ÜBER good",
    "ǅungla, İstanbul, straße",
    "",
    "   \t\n  ",
    "!!!???...",
    "movie",
    "great " * 300,
    "bad " * 255 + "great",
    "loved it<br/>hated it",
    "the the the the film film",
    "123 456 2001: a space odyssey",
    "one-liner: superb, fun, moving; but too long",
]
CORPUS = TEXTS[:9] * 3 + ["the film was fun and the story was moving", "a boring waste of time"]


@pytest.fixture(scope="module")
def vocab_path(tmp_path_factory):
    path = tmp_path_factory.mktemp("metadata") / "vocab.txt"
    Tokenizer.build(CORPUS, num_words=50).save(path)  # ids < 50 fit tiny_model's embedding
    return path


@pytest.fixture(scope="module")
def ids(vocab_path) -> np.ndarray:
    return Tokenizer.load(vocab_path).encode_batch(TEXTS)  # [20, 256] int32


@pytest.fixture(scope="module")
def plain(tiny_model) -> bytes:
    return to_tflite(tiny_model, "float")


@pytest.fixture(scope="module")
def int8_plain(tiny_model, ids) -> bytes:
    return to_tflite(tiny_model, "int8", calibration_ids=ids)


def _with_metadata(tflite: bytes, vocab_path) -> bytes:
    return add_metadata(tflite, vocab_path=vocab_path, labels=["positive"], name="reviewkit-imdb",
                        description="IMDB review sentiment.", version="1.2.3")


@pytest.fixture(scope="module")
def model_file(plain, vocab_path, tmp_path_factory):
    path = tmp_path_factory.mktemp("models") / "float.tflite"
    path.write_bytes(_with_metadata(plain, vocab_path))
    return path


def _litert_scores(tflite: bytes, ids: np.ndarray) -> np.ndarray:
    interpreter = Interpreter(model_content=tflite)
    interpreter.allocate_tensors()
    inp, out = interpreter.get_input_details()[0], interpreter.get_output_details()[0]
    scores = []
    for row in ids:  # one row at a time, as MediaPipe runs it: stored input shape [1, 256]
        interpreter.set_tensor(inp["index"], row[None, :])
        interpreter.invoke()
        scores.append(interpreter.get_tensor(out["index"])[0, 0])
    return np.array(scores, dtype=np.float32)


# -- our reader -----------------------------------------------------------------------------
def test_round_trip(model_file, vocab_path):
    md = read_metadata(model_file)
    assert (md["name"], md["description"], md["version"], md["author"]) == (
        "reviewkit-imdb", "IMDB review sentiment.", "1.2.3", "reviewkit")
    assert md["delim_pattern"] == DELIM_PATTERN
    assert md["input_process_units"] == ["RegexTokenizerOptions"]
    assert md["vocab_file"] == "vocab.txt" and md["label_file"] == "labels.txt"
    assert md["associated_files"]["vocab.txt"] == vocab_path.read_bytes()
    assert md["associated_files"]["labels.txt"] == b"positive\n"
    assert md["labels"] == ["positive"]
    assert md["min_parser_version"] == MIN_PARSER_VERSION == "1.2.1"
    assert (md["input_tensor"], md["output_tensor"]) == ("input_ids", "probability")
    assert read_metadata(model_file.read_bytes()) == md  # path and bytes read the same


def _metadata_entries(data: bytes) -> tuple[list[bytes], int]:
    """Names in Model.metadata and the number of buffers, via mediapipe's generated schema."""
    from mediapipe.tasks.metadata import schema_py_generated as tfb

    model = tfb.Model.GetRootAs(data, 0)
    return [model.Metadata(i).Name() for i in range(model.MetadataLength())], model.BuffersLength()


def test_deterministic_and_rewritable(plain, model_file, vocab_path):
    data = model_file.read_bytes()
    assert _with_metadata(plain, vocab_path) == data  # fixed zip timestamps: same bytes
    again = add_metadata(data, vocab_path=vocab_path, labels=["positive"], name="renamed",
                         description="d", version="2")
    md = read_metadata(again)
    assert (md["name"], md["version"]) == ("renamed", "2")
    assert sorted(md["associated_files"]) == ["labels.txt", "vocab.txt"]  # old zip dropped
    names, n_buffers = _metadata_entries(again)
    assert names.count(b"TFLITE_METADATA") == 1  # replaced, not added twice
    assert n_buffers == _metadata_entries(data)[1] == _metadata_entries(plain)[1] + 1


def test_zip_appended_after_flatbuffer(model_file, vocab_path):
    data = model_file.read_bytes()
    assert data[4:8] == b"TFL3"
    with zipfile.ZipFile(model_file) as zf:
        assert zf.testzip() is None
        infos = zf.infolist()
        assert sorted(i.filename for i in infos) == ["labels.txt", "vocab.txt"]
        assert all(i.compress_type == zipfile.ZIP_STORED for i in infos)
        assert zf.read("vocab.txt") == vocab_path.read_bytes()
        first = min(i.header_offset for i in infos)
    assert first > 1000 and data[first:first + 4] == b"PK\x03\x04"  # flatbuffer first, then zip


def test_litert_outputs_unchanged(plain, model_file, ids):
    interpreter = Interpreter(model_path=str(model_file))
    assert list(interpreter.get_input_details()[0]["shape"]) == [1, 256]
    np.testing.assert_array_equal(_litert_scores(model_file.read_bytes(), ids), _litert_scores(plain, ids))


# -- mediapipe's generated reader (an independent implementation) -----------------------------
def test_mediapipe_generated_reader_agrees(model_file):
    from mediapipe.tasks.metadata import metadata_schema_py_generated as mfb
    from mediapipe.tasks.metadata import schema_py_generated as tfb

    data = model_file.read_bytes()
    model = tfb.Model.GetRootAs(data, 0)
    entries = [model.Metadata(i) for i in range(model.MetadataLength())]
    assert [e.Name() for e in entries].count(b"TFLITE_METADATA") == 1
    buf = model.Buffers(next(e for e in entries if e.Name() == b"TFLITE_METADATA").Buffer())
    meta_buf = buf.DataAsNumpy().tobytes()
    assert mfb.ModelMetadata.ModelMetadataBufferHasIdentifier(meta_buf, 0)
    meta = mfb.ModelMetadataT.InitFromObj(mfb.ModelMetadata.GetRootAs(meta_buf, 0))

    ours = read_metadata(data)
    assert meta.name.decode() == ours["name"] and meta.version.decode() == ours["version"]
    assert meta.author.decode() == ours["author"]
    assert meta.minParserVersion.decode() == ours["min_parser_version"]
    (graph,) = meta.subgraphMetadata
    (text_in,), (score_out,) = graph.inputTensorMetadata, graph.outputTensorMetadata
    assert text_in.name.decode() == ours["input_tensor"]
    (unit,) = text_in.processUnits
    assert unit.optionsType == mfb.ProcessUnitOptions.RegexTokenizerOptions
    assert unit.options.delimRegexPattern.decode() == ours["delim_pattern"]
    (vocab,) = unit.options.vocabFile
    assert (vocab.name.decode(), vocab.type) == ("vocab.txt", mfb.AssociatedFileType.VOCABULARY)
    (labels,) = score_out.associatedFiles
    assert (labels.name.decode(), labels.type) == ("labels.txt", mfb.AssociatedFileType.TENSOR_AXIS_LABELS)
    assert text_in.content.contentPropertiesType == mfb.ContentProperties.FeatureProperties


# -- errors ---------------------------------------------------------------------------------
def test_label_count_must_match_output(plain, vocab_path):
    with pytest.raises(MetadataError, match="1 scores per row"):
        add_metadata(plain, vocab_path=vocab_path, labels=["negative", "positive"], name="n",
                     description="d", version="1")


def test_int8_output_gets_metadata_but_mediapipe_refuses_it(tiny_model, ids, vocab_path, tmp_path):
    # --int8-io models carry the same metadata for LiteRT users; MediaPipe's classifier only takes
    # FLOAT32/UINT8 scores, which is why the default int8 model keeps a float output.
    path = tmp_path / "int8_io.tflite"
    path.write_bytes(_with_metadata(to_tflite(tiny_model, "int8", calibration_ids=ids, int8_io=True), vocab_path))
    assert read_metadata(path)["labels"] == ["positive"]
    with pytest.raises(MediaPipeCheckError, match="UINT8 or FLOAT32"):
        mediapipe_scores(str(path), ["a film"])


def test_rejects_bad_inputs(plain, vocab_path, tmp_path):
    bad_vocab = tmp_path / "vocab.txt"
    bad_vocab.write_text("hello 0\n")
    with pytest.raises(MetadataError, match="invalid vocabulary"):
        add_metadata(plain, vocab_path=bad_vocab, labels=["positive"], name="n", description="d", version="1")
    with pytest.raises(MetadataError, match="not a valid regex"):
        add_metadata(plain, vocab_path=vocab_path, labels=["positive"], name="n", description="d",
                     version="1", delim_pattern="(")
    with pytest.raises(MetadataError, match="TFL3"):
        add_metadata(b"\0" * 64, vocab_path=vocab_path, labels=["positive"], name="n", description="d",
                     version="1")
    with pytest.raises(MetadataError, match="no TFLITE_METADATA"):
        read_metadata(plain)


# -- MediaPipe TextClassifier conformance ----------------------------------------------------
def test_mediapipe_matches_litert_float(model_file, ids):
    expected = _litert_scores(model_file.read_bytes(), ids)
    got = mediapipe_scores(model_file, TEXTS)
    assert got.shape == (len(TEXTS),) and got.dtype == np.float32
    assert np.max(np.abs(got - expected)) <= 1e-5
    # The tolerance can see a tokenization slip: one known word turned <UNKNOWN> (or dropped
    # by truncation) moves this model's score by more than 1e-5.
    slipped = ids.copy()
    slipped[:, 1] = np.where(slipped[:, 1] > 2, 2, 3)  # 2 = <UNKNOWN>, 3 = <UNUSED>
    assert np.max(np.abs(_litert_scores(model_file.read_bytes(), slipped) - got)) > 1e-5


def test_mediapipe_matches_litert_int8(int8_plain, vocab_path, ids, tmp_path):
    path = tmp_path / "int8.tflite"
    path.write_bytes(_with_metadata(int8_plain, vocab_path))
    expected = _litert_scores(path.read_bytes(), ids)
    got = mediapipe_scores(path, TEXTS)
    # Same int8 kernels on both sides; allow at most one output quantization step (1/256).
    assert np.max(np.abs(got - expected)) <= 1 / 256 + 1e-6


def test_mediapipe_refuses_model_without_metadata(plain, tmp_path):
    path = tmp_path / "plain.tflite"
    path.write_bytes(plain)
    with pytest.raises(MediaPipeCheckError, match="cannot load"):
        mediapipe_scores(path, ["text"])


def test_mediapipe_unavailable(monkeypatch, model_file):
    monkeypatch.setitem(sys.modules, "mediapipe.tasks.python.core.base_options", None)
    with pytest.raises(MediaPipeUnavailable, match="not installed"):
        mediapipe_scores(model_file, ["text"])
