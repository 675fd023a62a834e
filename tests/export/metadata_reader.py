"""An independent reader of the TFLite metadata ``export/metadata.py`` writes: the tests read
every model back through it (no TensorFlow, no MediaPipe, no generated code)."""
from __future__ import annotations

import io
import os
import zipfile

from flatbuffers import number_types
from flatbuffers.table import Table

from export.metadata import (
    METADATA_IDENTIFIER, METADATA_NAME, TFLITE_IDENTIFIER, _AF_NAME, _AF_TYPE, _BUF_DATA, _BUF_OFFSET,
    _BUF_SIZE, _FILE_TENSOR_AXIS_LABELS, _META_BUFFER, _META_NAME, _MM_AUTHOR, _MM_DESCRIPTION, _MM_MIN_PARSER,
    _MM_NAME, _MM_SUBGRAPHS, _MM_VERSION, _MODEL_BUFFERS, _MODEL_METADATA, _PU_OPTIONS, _PU_TYPE, _REGEX_DELIM,
    _REGEX_TOKENIZER, _REGEX_VOCAB, _SG_INPUTS, _SG_OUTPUTS, _TM_FILES, _TM_NAME, _TM_PROCESS_UNITS,
    MetadataError,
)

_PROCESS_UNIT_NAMES = {1: "NormalizationOptions", 2: "ScoreCalibrationOptions",
                       3: "ScoreThresholdingOptions", 4: "BertTokenizerOptions",
                       5: "SentencePieceTokenizerOptions", 6: "RegexTokenizerOptions"}
_FILE_TYPE_NAMES = {0: "UNKNOWN", 1: "DESCRIPTIONS", 2: "TENSOR_AXIS_LABELS", 3: "TENSOR_VALUE_LABELS",
                    4: "TENSOR_AXIS_SCORE_CALIBRATION", 5: "VOCABULARY", 6: "SCANN_INDEX_FILE"}


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
