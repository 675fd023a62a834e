"""TFLite model metadata so MediaPipe Tasks ``TextClassifier`` can run our models on raw text.

What MediaPipe needs (and what ``add_metadata`` writes, following ``metadata_schema.fbs``):

* input tensor 0 (int32 ``[1, maxlen]``): a ``RegexTokenizerOptions`` process unit with our
  ``DELIM_PATTERN`` and ``vocab.txt`` (``token id`` lines) as its vocabulary file;
* output tensor 0 (``[batch, n]`` scores): ``labels.txt`` as a ``TENSOR_AXIS_LABELS`` file
  with exactly ``n`` lines (a two-class sigmoid head has n = 1, IMDB's ``positive``; an
  N-class softmax head n = N, one label per column).

Layout of the written file (the same as the official ``MetadataPopulator``):
``[ .tflite flatbuffer | uncompressed zip of vocab.txt, labels.txt ]``. The metadata
flatbuffer (identifier ``M001``) lives in one of the model's buffers, referenced from
``Model.metadata`` under the name ``TFLITE_METADATA``. The zip is appended after the
flatbuffer and its directory records absolute offsets, so the file is at the same time a
valid model and a valid zip.

The metadata is built with the ``flatbuffers`` Builder API, no generated code: only the
tables we write. The tests read it back with an independent small reader
(``tests/export/metadata_reader.py``) that needs neither TensorFlow nor MediaPipe.
"""
from __future__ import annotations

import io
import re
import zipfile
from typing import Sequence

import flatbuffers

from runtime.tokenizer import DELIM_PATTERN, Tokenizer, TokenizerError

from .errors import ExportError

METADATA_NAME = "TFLITE_METADATA"
METADATA_IDENTIFIER = b"M001"
TFLITE_IDENTIFIER = b"TFL3"
# The largest "Added in" version among the schema members we write:
# RegexTokenizerOptions 1.2.1 > VOCABULARY file type 1.0.1 > everything else 1.0.0.
# (AssociatedFile.version, 1.4.1, is deliberately left unset.)
MIN_PARSER_VERSION = "1.2.1"
VOCAB_FILE = "vocab.txt"
LABELS_FILE = "labels.txt"

# Enum values of metadata_schema.fbs (a union's NONE is 0, its members count from 1).
_FILE_TENSOR_AXIS_LABELS = 2   # AssociatedFileType
_FILE_VOCABULARY = 5           # AssociatedFileType
_FEATURE_PROPERTIES = 1        # ContentProperties
_REGEX_TOKENIZER = 6           # ProcessUnitOptions
_TFLITE_INT32 = 2  # tflite TensorType
# MediaPipe's classifier accepts FLOAT32 and UINT8 scores; INT8 (--int8-io) is written for other
# LiteRT users and the runtime, and the verify step reports that MediaPipe cannot run it.
_TFLITE_SCORE_TYPES = {0: "FLOAT32", 3: "UINT8", 9: "INT8"}
# Field slots (declaration order in the schemas; a union field takes two slots: type, value).
_AF_NAME, _AF_DESCRIPTION, _AF_TYPE = 0, 1, 2
_REGEX_DELIM, _REGEX_VOCAB = 0, 1
_PU_TYPE, _PU_OPTIONS = 0, 1
_CONTENT_TYPE, _CONTENT_PROPS = 0, 1
_TM_NAME, _TM_DESCRIPTION, _TM_CONTENT, _TM_PROCESS_UNITS, _TM_FILES = 0, 1, 3, 4, 6
_SG_NAME, _SG_DESCRIPTION, _SG_INPUTS, _SG_OUTPUTS = 0, 1, 2, 3
_MM_NAME, _MM_DESCRIPTION, _MM_VERSION, _MM_SUBGRAPHS, _MM_AUTHOR, _MM_MIN_PARSER = 0, 1, 2, 3, 4, 7
_MODEL_BUFFERS, _MODEL_METADATA = 4, 6          # tflite Model
_META_NAME, _META_BUFFER = 0, 1                 # tflite Metadata
_BUF_DATA, _BUF_OFFSET, _BUF_SIZE = 0, 1, 2     # tflite Buffer
_ZIP_DATE = (1980, 1, 1, 0, 0, 0)  # fixed timestamp: the same inputs give the same bytes

class MetadataError(ExportError, ValueError):
    """A model, vocabulary or label list cannot carry, or does not carry, valid metadata."""


# -- writing ------------------------------------------------------------------------------
SCORES_DESCRIPTION = "Probability that the review is positive."  # the output tensor's, two classes


def add_metadata(tflite: bytes, *, vocab_path, labels: list[str], name: str, description: str,
                 version: str, delim_pattern: str = DELIM_PATTERN, author: str = "reviewkit",
                 scores_description: str = SCORES_DESCRIPTION) -> bytes:
    """Return ``tflite`` with TextClassifier metadata, ``vocab.txt`` and ``labels.txt`` packed in.

    Existing ``TFLITE_METADATA`` and packed files are replaced.
    """
    labels = _check_labels(labels)
    _check_pattern(delim_pattern)
    vocab = _read_vocab_bytes(vocab_path)
    model = _read_model(tflite)
    input_name, output_name = _check_io(model.subgraphs[0], len(labels))
    metadata = build_metadata(name=name, description=description, version=version, author=author,
                              delim_pattern=delim_pattern, input_name=input_name,
                              output_name=output_name, scores_description=scores_description)
    _set_metadata_buffer(model, metadata)
    files = {VOCAB_FILE: vocab, LABELS_FILE: "".join(f"{label}\n" for label in labels).encode("utf-8")}
    return _append_zip(_write_model(model), files)


def build_metadata(*, name: str, description: str, version: str, author: str, delim_pattern: str,
                   input_name: str, output_name: str, scores_description: str) -> bytes:
    """The ``ModelMetadata`` flatbuffer (identifier ``M001``) for one text input, one score output."""
    b = flatbuffers.Builder(1024)
    vocab = _associated_file(b, VOCAB_FILE, "Vocabulary: 'token id' lines.", _FILE_VOCABULARY)
    regex = _table(b, 2, {_REGEX_DELIM: b.CreateString(delim_pattern),
                          _REGEX_VOCAB: _vector(b, [vocab])})
    tokenizer = _table(b, 2, {_PU_OPTIONS: regex}, {_PU_TYPE: _REGEX_TOKENIZER})
    text_in = _tensor_metadata(b, input_name, "Token ids of the lowercased review text.",
                               process_units=[tokenizer])
    labels = _associated_file(b, LABELS_FILE, "One label per output score.", _FILE_TENSOR_AXIS_LABELS)
    score_out = _tensor_metadata(b, output_name, scores_description, files=[labels])
    subgraph = _table(b, 4, {_SG_NAME: b.CreateString(name),
                             _SG_DESCRIPTION: b.CreateString(description),
                             _SG_INPUTS: _vector(b, [text_in]),
                             _SG_OUTPUTS: _vector(b, [score_out])})
    root = _table(b, 8, {_MM_NAME: b.CreateString(name),
                         _MM_DESCRIPTION: b.CreateString(description),
                         _MM_VERSION: b.CreateString(version),
                         _MM_SUBGRAPHS: _vector(b, [subgraph]),
                         _MM_AUTHOR: b.CreateString(author),
                         _MM_MIN_PARSER: b.CreateString(MIN_PARSER_VERSION)})
    b.Finish(root, METADATA_IDENTIFIER)
    return bytes(b.Output())


def _table(b: flatbuffers.Builder, n_slots: int, refs: dict[int, int],
           enums: dict[int, int] | None = None) -> int:
    """One table. ``refs``: slot -> offset of an already built string/vector/table;
    ``enums``: slot -> one-byte enum or union-type value. Children must be built first."""
    b.StartObject(n_slots)
    for slot, ref in refs.items():
        b.PrependUOffsetTRelativeSlot(slot, ref, 0)
    for slot, value in (enums or {}).items():
        b.PrependUint8Slot(slot, value, 0)
    return b.EndObject()


def _vector(b: flatbuffers.Builder, refs: list[int]) -> int:
    """A vector of tables (4-byte offsets, written back to front)."""
    b.StartVector(4, len(refs), 4)
    for ref in reversed(refs):
        b.PrependUOffsetTRelative(ref)
    return b.EndVector()


def _associated_file(b: flatbuffers.Builder, name: str, description: str, file_type: int) -> int:
    return _table(b, 5, {_AF_NAME: b.CreateString(name), _AF_DESCRIPTION: b.CreateString(description)},
                  {_AF_TYPE: file_type})


def _tensor_metadata(b: flatbuffers.Builder, name: str, description: str, *,
                     process_units: Sequence[int] = (), files: Sequence[int] = ()) -> int:
    # Content = FeatureProperties (an empty table), as the official writer sets for text/scores.
    b.StartObject(0)
    feature = b.EndObject()
    content = _table(b, 3, {_CONTENT_PROPS: feature}, {_CONTENT_TYPE: _FEATURE_PROPERTIES})
    refs = {_TM_NAME: b.CreateString(name), _TM_DESCRIPTION: b.CreateString(description),
            _TM_CONTENT: content}
    if process_units:
        refs[_TM_PROCESS_UNITS] = _vector(b, list(process_units))
    if files:
        refs[_TM_FILES] = _vector(b, list(files))
    return _table(b, 7, refs)


def _check_labels(labels) -> list[str]:
    labels = list(labels)
    if not labels:
        raise MetadataError("labels must not be empty")
    for label in labels:
        if not isinstance(label, str) or not label or label != label.strip() or "\n" in label:
            raise MetadataError(f"invalid label {label!r}: need a non-empty single-line string")
    if len(set(labels)) != len(labels):
        raise MetadataError(f"labels must be unique, got {labels}")
    return labels


def _check_pattern(pattern: str) -> None:
    if not pattern:
        raise MetadataError("delim_pattern must not be empty")
    try:
        re.compile(pattern)
    except re.error as e:
        raise MetadataError(f"delim_pattern {pattern!r} is not a valid regex: {e}") from None


def _read_vocab_bytes(vocab_path) -> bytes:
    """The vocab file as is, after checking MediaPipe's RegexTokenizer can use it."""
    try:
        Tokenizer.load(vocab_path)  # 'token id' lines, ids 0..n-1, <PAD> <START> <UNKNOWN> present
    except TokenizerError as e:
        raise MetadataError(f"invalid vocabulary: {e}") from None
    with open(vocab_path, "rb") as f:
        return f.read()


def _read_model(tflite: bytes):
    """tflite bytes -> schema object tree (TF's generated object API; export/ may import TF)."""
    from tensorflow.lite.tools import flatbuffer_utils

    if bytes(tflite[4:8]) != TFLITE_IDENTIFIER:
        raise MetadataError("not a TFLite flatbuffer (file identifier is not TFL3)")
    model = flatbuffer_utils.read_model_from_bytearray(bytearray(tflite))
    if len(model.subgraphs) != 1:
        raise MetadataError(f"expected 1 subgraph, got {len(model.subgraphs)}")
    return model


def _write_model(model) -> bytes:
    from tensorflow.lite.tools import flatbuffer_utils

    return bytes(flatbuffer_utils.convert_object_to_bytearray(model))


def _check_io(graph, n_labels: int) -> tuple[str, str]:
    """Check the shapes MediaPipe relies on; return the input and output tensor names."""
    if len(graph.inputs) != 1 or len(graph.outputs) != 1:
        raise MetadataError(f"expected 1 input and 1 output, got {len(graph.inputs)} and {len(graph.outputs)}")
    text_in, score_out = graph.tensors[graph.inputs[0]], graph.tensors[graph.outputs[0]]
    in_shape = [int(d) for d in text_in.shape]
    if text_in.type != _TFLITE_INT32 or len(in_shape) != 2 or in_shape[0] != 1:
        # MediaPipe reads maxlen from the stored shape [1, maxlen].
        raise MetadataError(f"input must be int32 [1, maxlen], got type {text_in.type} shape {in_shape}")
    if score_out.type not in _TFLITE_SCORE_TYPES:
        raise MetadataError(f"output type {score_out.type} is not FLOAT32, UINT8 or INT8")
    out_shape = [int(d) for d in score_out.shape]
    if not out_shape or out_shape[-1] != n_labels:
        raise MetadataError(f"output has {out_shape[-1] if out_shape else 0} scores per row "
                            f"({out_shape}) but {n_labels} labels were given")
    return _name(text_in), _name(score_out)


def _name(tensor) -> str:
    return tensor.name.decode("utf-8") if isinstance(tensor.name, bytes) else str(tensor.name)


def _set_metadata_buffer(model, metadata: bytes) -> None:
    """Put ``metadata`` in a buffer referenced as ``TFLITE_METADATA`` (replacing an old one)."""
    import numpy as np
    from tensorflow.lite.python import schema_py_generated as schema

    buffer = schema.BufferT()
    buffer.data = np.frombuffer(metadata, dtype=np.uint8)
    for entry in model.metadata or []:
        if _name(entry) == METADATA_NAME:
            model.buffers[entry.buffer] = buffer
            return
    model.buffers.append(buffer)
    entry = schema.MetadataT()
    entry.name = METADATA_NAME
    entry.buffer = len(model.buffers) - 1
    model.metadata = (model.metadata or []) + [entry]


def _append_zip(model_bytes: bytes, files: dict[str, bytes]) -> bytes:
    """Append an uncompressed zip (MediaPipe reads the files in place, it does not inflate)."""
    out = io.BytesIO(model_bytes)
    with zipfile.ZipFile(out, "a") as zf:  # "a" on a non-zip: a new archive after the bytes
        for file_name, data in files.items():
            info = zipfile.ZipInfo(file_name, date_time=_ZIP_DATE)
            info.compress_type = zipfile.ZIP_STORED
            zf.writestr(info, data)
    return out.getvalue()


# -- reading ------------------------------------------------------------------------------
