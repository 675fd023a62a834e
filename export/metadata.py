"""TFLite model metadata so MediaPipe Tasks ``TextClassifier`` can run our models on raw text.

What MediaPipe needs (and what ``add_metadata`` writes, following ``metadata_schema.fbs``):

* input tensor 0 (int32 ``[1, maxlen]``): a ``RegexTokenizerOptions`` process unit with our
  ``DELIM_PATTERN`` and ``vocab.txt`` (``token id`` lines) as its vocabulary file;
* output tensor 0 (``[batch, n]`` scores): ``labels.txt`` as a ``TENSOR_AXIS_LABELS`` file
  with exactly ``n`` lines (our sigmoid head has n = 1: ``positive``).

Layout of the written file (the same as the official ``MetadataPopulator``):
``[ .tflite flatbuffer | uncompressed zip of vocab.txt, labels.txt ]``. The metadata
flatbuffer (identifier ``M001``) lives in one of the model's buffers, referenced from
``Model.metadata`` under the name ``TFLITE_METADATA``. The zip is appended after the
flatbuffer and its directory records absolute offsets, so the file is at the same time a
valid model and a valid zip.

The metadata is built with the ``flatbuffers`` Builder API, no generated code: only the
tables we write. ``read_metadata`` is an independent small reader that needs neither
TensorFlow nor MediaPipe.
"""
from __future__ import annotations

import io
import os
import re
import zipfile
from typing import Sequence

import flatbuffers
from flatbuffers import number_types
from flatbuffers.table import Table

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
_PROCESS_UNIT_NAMES = {1: "NormalizationOptions", 2: "ScoreCalibrationOptions",
                       3: "ScoreThresholdingOptions", 4: "BertTokenizerOptions",
                       5: "SentencePieceTokenizerOptions", 6: "RegexTokenizerOptions"}
_FILE_TYPE_NAMES = {0: "UNKNOWN", 1: "DESCRIPTIONS", 2: "TENSOR_AXIS_LABELS", 3: "TENSOR_VALUE_LABELS",
                    4: "TENSOR_AXIS_SCORE_CALIBRATION", 5: "VOCABULARY", 6: "SCANN_INDEX_FILE"}
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
def add_metadata(tflite: bytes, *, vocab_path, labels: list[str], name: str, description: str,
                 version: str, delim_pattern: str = DELIM_PATTERN, author: str = "reviewkit") -> bytes:
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
                              output_name=output_name)
    _set_metadata_buffer(model, metadata)
    files = {VOCAB_FILE: vocab, LABELS_FILE: "".join(f"{label}\n" for label in labels).encode("utf-8")}
    return _append_zip(_write_model(model), files)


def build_metadata(*, name: str, description: str, version: str, author: str, delim_pattern: str,
                   input_name: str, output_name: str) -> bytes:
    """The ``ModelMetadata`` flatbuffer (identifier ``M001``) for one text input, one score output."""
    b = flatbuffers.Builder(1024)
    vocab = _associated_file(b, VOCAB_FILE, "Vocabulary: 'token id' lines.", _FILE_VOCABULARY)
    regex = _table(b, 2, {_REGEX_DELIM: b.CreateString(delim_pattern),
                          _REGEX_VOCAB: _vector(b, [vocab])})
    tokenizer = _table(b, 2, {_PU_OPTIONS: regex}, {_PU_TYPE: _REGEX_TOKENIZER})
    text_in = _tensor_metadata(b, input_name, "Token ids of the lowercased review text.",
                               process_units=[tokenizer])
    labels = _associated_file(b, LABELS_FILE, "One label per output score.", _FILE_TENSOR_AXIS_LABELS)
    score_out = _tensor_metadata(b, output_name, "Probability that the review is positive.",
                                 files=[labels])
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
def read_metadata(path_or_bytes) -> dict:
    """Parse the metadata and packed files of a model (TensorFlow-free).

    Returns ``name, description, version, author, min_parser_version, input_tensor,
    output_tensor, input_process_units`` (option type names on input tensor 0),
    ``delim_pattern`` and ``vocab_file`` (from its RegexTokenizer, else None), ``label_file``
    and ``labels`` (its TENSOR_AXIS_LABELS file on output tensor 0, else None / []),
    ``associated_files`` ({name: bytes} from the packed zip).
    """
    data = _load_bytes(path_or_bytes)
    metadata = _metadata_buffer(data)
    root = _Reader(metadata, _root_offset(metadata, METADATA_IDENTIFIER))
    subgraphs = root.tables(_MM_SUBGRAPHS)
    if len(subgraphs) != 1:
        raise MetadataError(f"expected metadata for 1 subgraph, got {len(subgraphs)}")
    inputs, outputs = subgraphs[0].tables(_SG_INPUTS), subgraphs[0].tables(_SG_OUTPUTS)
    if not inputs or not outputs:
        raise MetadataError("metadata has no input or no output tensor metadata")
    units = inputs[0].tables(_TM_PROCESS_UNITS)
    regex = next((u.table(_PU_OPTIONS) for u in units if u.byte(_PU_TYPE) == _REGEX_TOKENIZER), None)
    vocab_files = regex.tables(_REGEX_VOCAB) if regex else []
    label_files = [f for f in outputs[0].tables(_TM_FILES) if f.byte(_AF_TYPE) == _FILE_TENSOR_AXIS_LABELS]
    packed = _packed_files(data)
    result = {
        "name": root.string(_MM_NAME),
        "description": root.string(_MM_DESCRIPTION),
        "version": root.string(_MM_VERSION),
        "author": root.string(_MM_AUTHOR),
        "min_parser_version": root.string(_MM_MIN_PARSER),
        "input_tensor": inputs[0].string(_TM_NAME),
        "output_tensor": outputs[0].string(_TM_NAME),
        "input_process_units": [_PROCESS_UNIT_NAMES.get(u.byte(_PU_TYPE), "UNKNOWN") for u in units],
        "delim_pattern": regex.string(_REGEX_DELIM) if regex else None,
        "vocab_file": vocab_files[0].string(_AF_NAME) if vocab_files else None,
        "label_file": label_files[0].string(_AF_NAME) if label_files else None,
        "output_files": {f.string(_AF_NAME): _FILE_TYPE_NAMES.get(f.byte(_AF_TYPE), "UNKNOWN")
                         for f in outputs[0].tables(_TM_FILES)},
        "associated_files": packed,
        "labels": [],
    }
    for key in ("vocab_file", "label_file"):
        if result[key] is not None and result[key] not in packed:
            raise MetadataError(f"metadata names {result[key]!r} but the model does not pack it")
    if result["label_file"] is not None:
        result["labels"] = packed[result["label_file"]].decode("utf-8").splitlines()
    return result


class _Reader:
    """Field access on one flatbuffer table by slot number (vtable entry = 4 + 2 * slot)."""

    def __init__(self, buf: bytes, pos: int):
        self._t = Table(buf, pos)

    def _field(self, slot: int) -> int:
        return self._t.Offset(4 + 2 * slot)

    def string(self, slot: int) -> str | None:
        o = self._field(slot)
        return self._t.String(o + self._t.Pos).decode("utf-8") if o else None

    def byte(self, slot: int) -> int:
        o = self._field(slot)
        return self._t.Get(number_types.Uint8Flags, o + self._t.Pos) if o else 0

    def uint(self, slot: int, flags=number_types.Uint32Flags) -> int:
        o = self._field(slot)
        return self._t.Get(flags, o + self._t.Pos) if o else 0

    def table(self, slot: int) -> "_Reader | None":
        o = self._field(slot)
        return _Reader(self._t.Bytes, self._t.Indirect(o + self._t.Pos)) if o else None

    def tables(self, slot: int) -> list["_Reader"]:
        o = self._field(slot)
        if not o:
            return []
        start = self._t.Vector(o)
        return [_Reader(self._t.Bytes, self._t.Indirect(start + 4 * i)) for i in range(self._t.VectorLen(o))]

    def ubytes(self, slot: int) -> bytes | None:
        o = self._field(slot)
        if not o:
            return None
        start = self._t.Vector(o)
        return bytes(self._t.Bytes[start:start + self._t.VectorLen(o)])


def _load_bytes(path_or_bytes) -> bytes:
    if isinstance(path_or_bytes, (bytes, bytearray, memoryview)):
        return bytes(path_or_bytes)
    try:
        with open(os.fspath(path_or_bytes), "rb") as f:
            return f.read()
    except OSError as e:
        raise MetadataError(f"cannot read model {path_or_bytes}: {e}") from None


def _root_offset(buf: bytes, identifier: bytes) -> int:
    if len(buf) < 8 or buf[4:8] != identifier:
        raise MetadataError(f"flatbuffer identifier is {bytes(buf[4:8])!r}, expected {identifier!r}")
    return int.from_bytes(buf[0:4], "little")


def _metadata_buffer(model: bytes) -> bytes:
    """The bytes of the model buffer named ``TFLITE_METADATA``."""
    root = _Reader(model, _root_offset(model, TFLITE_IDENTIFIER))
    buffers = root.tables(_MODEL_BUFFERS)
    for entry in root.tables(_MODEL_METADATA):
        if entry.string(_META_NAME) != METADATA_NAME:
            continue
        index = entry.uint(_META_BUFFER)
        if index >= len(buffers):
            raise MetadataError(f"{METADATA_NAME} points at buffer {index} of {len(buffers)}")
        buffer = buffers[index]
        data = buffer.ubytes(_BUF_DATA)
        if data is None:  # models > 2 GB keep buffers after the flatbuffer, by offset
            offset = buffer.uint(_BUF_OFFSET, number_types.Uint64Flags)
            data = model[offset:offset + buffer.uint(_BUF_SIZE, number_types.Uint64Flags)]
        return data
    raise MetadataError(f"model has no {METADATA_NAME} entry")


def _packed_files(model: bytes) -> dict[str, bytes]:
    if not zipfile.is_zipfile(io.BytesIO(model)):
        return {}
    with zipfile.ZipFile(io.BytesIO(model)) as zf:
        return {name: zf.read(name) for name in zf.namelist()}
