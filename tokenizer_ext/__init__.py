"""Semantic IDs: item text -> embedding -> residual quantization -> collision-free code tokens in a tokenizer and model."""

from tokenizer_ext.codebook import CodeBook, code_token
from tokenizer_ext.trie import Trie

__all__ = ["CodeBook", "Trie", "code_token"]
