"""Real, untrained parts for student-training tests: the tiny base, a hand-made code table over the synthetic catalog,
an untrained R-GCN recommendation teacher and the extended tiny base (`synthetic_generative`) as the dialogue teacher.
Training quality is not what these tests check (the synthetic benchmarks are), so untrained teachers are enough and
keep the tests fast."""

import json
import random

import pytest
import torch


@pytest.fixture(scope="session")
def untrained_rec_teacher(synthetic):
    """untrained_rec_teacher(directory, seed, items=None, **config): an untrained R-GCN rec teacher over the synthetic
    catalog (or `items` in that order) saved in `directory` as a trained one is, `config` added to its saved config
    (e.g. holdout_fold, folds); returns the directory. Different seeds give teachers that rank differently."""
    from gencrs.teachers.kg import build_kg
    from gencrs.teachers.rec import RecTeacher, RecTeacherModel

    kg = build_kg(synthetic)

    def make(directory, seed: int, items=None, **config) -> str:
        items = items or list(synthetic.catalog)
        torch.manual_seed(seed)
        RecTeacher(RecTeacherModel(kg, items, dim=32, num_bases=4), kg, items, encoder=None).save(
            directory, {"dim": 32, "num_bases": 4, "layers": 1, "dropout": 0.1, **config})
        return str(directory)

    return make


@pytest.fixture(scope="session")
def student_parts(tiny_base, synthetic_generative, untrained_rec_teacher, tmp_path_factory):
    root = tmp_path_factory.mktemp("student_parts")
    return {"base_model": str(tiny_base), "semantic_ids": synthetic_generative["semantic_ids"],
            "dialogue_teacher": synthetic_generative["model"],
            "rec_teacher": untrained_rec_teacher(root / "rec_teacher" / "teacher", seed=0), "root": root}


@pytest.fixture
def student_values(student_parts):
    """StudentRunConfig fields of a small, fast student run on the synthetic data: student_values(out, **overrides)."""
    return lambda out, **extra: _values(student_parts, out, **extra)


def _values(parts: dict, out, **extra) -> dict:
    return {"dataset": "synthetic", "base_model": parts["base_model"], "semantic_ids": parts["semantic_ids"],
            "dialogue_teacher": parts["dialogue_teacher"], "rec_teacher": parts["rec_teacher"], "out": str(out),
            "teacher_cache": str(parts["root"] / "teacher_cache"), "train_limit": 32, "valid_limit": 8,
            "max_length": 256, "batch_size": 4, "max_steps": 4, "save_steps": 2, "logging_steps": 1, "lr": 1e-3,
            "lora_r": 4, "lora_alpha": 8, "gamma": 0.5, "gate": "hard", "eta": 0.5, "top_k": 8, **extra}


# One real vLLM server per test session (about 75 s to start on 2 cores), started with `gencrs serve` on an exported
# tiny model that was trained just long enough to write the turn format (the serving tests and `gencrs chat`'s).
# The model's code table is sparse on purpose: 300 items spread over 16^3 code sequences, so a model that has learned
# only which codes are common writes sequences that are no item when the constraint is off (the constrained tests
# could not fail otherwise).
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
