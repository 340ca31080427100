import numpy as np

from tokenizer_ext.embed import embed_texts


def test_no_texts_give_an_empty_matrix_of_the_encoders_width(tmp_path):
    one = embed_texts(["A heist movie with a twist"], cache_dir=tmp_path)
    none = embed_texts([], cache_dir=tmp_path)
    assert one.shape == (1, 384) and none.shape == (0, 384) and none.dtype == np.float32
    assert np.concatenate([none, one]).shape == (1, 384)  # stacks with real rows: callers need no case of their own
