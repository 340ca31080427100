import os
from pathlib import Path

import pytest

# Tests never reach a model or dataset hub.
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"
os.environ["HF_DATASETS_OFFLINE"] = "1"
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("GENCRS_DATA_DIR") or REPO.parent / "shared" / "data")


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The real ReDial/INSPIRED files (the layout of shared/data); tests that need them skip, saying why, when absent."""
    if not (SHARED_DATA / "redial").is_dir():
        pytest.skip(f"real benchmark data not found at {SHARED_DATA} (set GENCRS_DATA_DIR)")
    return SHARED_DATA


@pytest.fixture(scope="session")
def redial(shared_data):
    from gencrs.data import load_dataset
    return load_dataset("redial", data_dir=shared_data)


@pytest.fixture(scope="session")
def synthetic():
    from gencrs.data import load_dataset
    return load_dataset("synthetic")


@pytest.fixture(scope="session")
def tiny_base(tmp_path_factory):
    """A real tiny Llama base (tokenizer trained on the synthetic corpus), pre-trained for 80 steps (the time budget
    is generous so that the step count, not the machine's load, decides)."""
    from gencrs.tiny_base import TinyBaseConfig, build_tiny_base
    out = tmp_path_factory.mktemp("tiny_base") / "base"
    return build_tiny_base(TinyBaseConfig(out=str(out), layers=2, pretrain_minutes=10.0, pretrain_max_steps=80, seq_len=128, batch_size=8))


@pytest.fixture(scope="session")
def synthetic_generative(tiny_base, synthetic, tmp_path_factory) -> dict:
    """The tiny base extended with a hand-made 3x8 code table over the synthetic catalog and saved as a full model
    directory (codes.json and catalog beside it): a real, untrained generative recommender."""
    import json

    from transformers import AutoModelForCausalLM, AutoTokenizer

    from gencrs.training.model import ensure_extended, save_model_meta
    from tokenizer_ext import CodeBook

    root = tmp_path_factory.mktemp("synthetic_generative")
    items = list(synthetic.catalog)
    codebook = CodeBook(3, 8, {item: (n // 64, (n // 8) % 8, n % 8) for n, item in enumerate(items)})
    (root / "codes").mkdir()
    (root / "codes" / "codes.json").write_text(json.dumps(codebook.to_json()))
    titles = {i: synthetic.title(i) for i in items}
    tokenizer = AutoTokenizer.from_pretrained(tiny_base)
    model = AutoModelForCausalLM.from_pretrained(tiny_base)
    ensure_extended(model, tokenizer, codebook, titles)
    model.save_pretrained(root / "model")
    tokenizer.save_pretrained(root / "model")
    save_model_meta(root / "model", codebook, titles, None)
    return {"codes": str(root / "codes"), "model": str(root / "model")}


@pytest.fixture(scope="session")
def embedding_cache(tmp_path_factory):
    return tmp_path_factory.mktemp("embedding_cache")


@pytest.fixture(scope="session")
def redial_codes(redial, tmp_path_factory, embedding_cache):
    """Semantic IDs of all 6,924 ReDial items with the real MiniLM encoder (about 100 s on 2 cores)."""
    from tokenizer_ext.build import SemanticIdConfig, build_semantic_ids
    out = tmp_path_factory.mktemp("sid") / "redial"
    codebook, stats = build_semantic_ids(list(redial.catalog.values()), SemanticIdConfig(
        dataset="redial", out=str(out), levels=3, codes=256, cache_dir=str(embedding_cache)))
    return codebook, stats, out
