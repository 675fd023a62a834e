"""The Keras peer's in-graph tokenizer gives the runtime tokenizer's ids."""
import numpy as np
import pytest

from runtime.tokenizer import Tokenizer

TEXTS = ["A wonderful, MOVING film.<br /><br />Loved it!", "", "   ", "don't   stop---believin'",
         "word " * 40, "Ünïcödé café naïve ÉCOLE", "x<br />y<BR />z", "tabs\tand\nnewlines 123 4x4"]


@pytest.mark.parametrize("maxlen", [1, 8, 64])
def test_in_graph_tokenizer_matches_runtime_tokenizer(tmp_path, maxlen):
    from benchmarks.keras_peer import in_graph_tokenizer

    tok = Tokenizer.build(TEXTS[:1] + ["film it word stop don't x z and 123"], num_words=12, maxlen=maxlen)
    tok.save(tmp_path / "vocab.txt")
    ids = in_graph_tokenizer(str(tmp_path / "vocab.txt"), maxlen)(np.array(TEXTS, dtype=object))
    np.testing.assert_array_equal(np.asarray(ids), tok.encode_batch(TEXTS))
