"""export verify refuses an ONNX model whose embedding table is smaller than the vocabulary."""
from __future__ import annotations

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from export.verify import Result, check_vocab_fits


def _gather_model(path, rows: int) -> None:
    """ids [batch, 4] int32 -> Gather of a [rows, 3] table -> y."""
    table = numpy_helper.from_array(np.zeros((rows, 3), np.float32), "table")
    node = helper.make_node("Gather", ["table", "ids"], ["y"], axis=0)
    graph = helper.make_graph([node], "g", [helper.make_tensor_value_info("ids", TensorProto.INT32, [None, 4])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [None, 4, 3])], [table])
    onnx.save(helper.make_model(graph), str(path))


def test_a_vocabulary_larger_than_the_table_fails_verification(tmp_path):
    _gather_model(tmp_path / "model.onnx", 50)
    fits, too_big, other = Result("model.onnx", {}), Result("model.onnx", {}), Result("model.tflite", {})
    check_vocab_fits([fits], str(tmp_path), 50)
    check_vocab_fits([too_big, other], str(tmp_path), 60)
    assert fits.passed and other.passed
    assert too_big.failures == ["the embedding table has 50 rows, fewer than the 60 words of vocab.txt"]
