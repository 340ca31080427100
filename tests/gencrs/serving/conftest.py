"""One real vLLM server per test session (about 75 s to start on 2 cores), started with `gencrs serve` on an
exported tiny model that was trained just long enough to write the turn format.

The model's code table is sparse on purpose: 300 items spread over 16^3 code sequences, so a model that has learned
only which codes are common writes sequences that are no item when the constraint is off (the constrained tests
could not fail otherwise)."""

import json
import random

import pytest

API_KEY = "gencrs-test-key"


@pytest.fixture(scope="session")
def served_export(tiny_base, synthetic, tmp_path_factory):
    from gencrs.serving.export import export_model
    from gencrs.training.sft import SFTRunConfig, train_sft
    from tokenizer_ext import CodeBook

    root = tmp_path_factory.mktemp("served")
    rng = random.Random(0)
    triples = rng.sample([(a, b, c) for a in range(16) for b in range(16) for c in range(16)], len(synthetic.catalog))
    codebook = CodeBook(3, 16, dict(zip(sorted(synthetic.catalog), triples)))
    (root / "codes").mkdir()
    (root / "codes" / "codes.json").write_text(json.dumps(codebook.to_json()))
    train_sft(SFTRunConfig(
        dataset="synthetic", base_model=str(tiny_base), semantic_ids=str(root / "codes"), out=str(root / "run"),
        finetune="full", max_length=256, batch_size=8, max_steps=120, lr=1e-3, train_limit=960, valid_limit=8,
        save_steps=1000, logging_steps=20))
    return export_model(root / "run" / "model", root / "export")


@pytest.fixture(scope="session")
def server(served_export, tmp_path_factory):
    """`gencrs serve` on 127.0.0.1 with an API key; yields the base URL, model name, export directory and process."""
    from gencrs.errors import GencrsError
    from gencrs.serving.server import Server, free_port

    log_path = tmp_path_factory.mktemp("server") / "server.log"
    running = Server(served_export, port=free_port(), api_key=API_KEY, served_model_name="tiny", log_path=log_path,
                     extra=["--max-model-len", "512"], env={"VLLM_CPU_KVCACHE_SPACE": "1"})
    try:
        running.__enter__()
    except GencrsError as e:
        pytest.fail(str(e))
    try:
        yield {"api_key": API_KEY, "base_url": running.base_url, "model": running.model, "export": served_export,
               "process": running.process}
    finally:
        running.__exit__(None, None, None)
