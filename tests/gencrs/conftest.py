"""Real, untrained parts for student-training tests: the tiny base, a hand-made code table over the synthetic catalog,
an untrained R-GCN recommendation teacher and the extended tiny base (`synthetic_generative`) as the dialogue teacher.
Training quality is not what these tests check (the synthetic benchmarks are), so untrained teachers are enough and
keep the tests fast."""

import pytest
import torch


@pytest.fixture(scope="session")
def student_parts(tiny_base, synthetic, synthetic_generative, tmp_path_factory):
    from gencrs.teachers.kg import build_kg
    from gencrs.teachers.rec import RecTeacher, RecTeacherModel

    root = tmp_path_factory.mktemp("student_parts")
    torch.manual_seed(0)
    kg = build_kg(synthetic)
    items = list(synthetic.catalog)
    rec = RecTeacher(RecTeacherModel(kg, items, dim=32, num_bases=4), kg, items, encoder=None)
    rec.save(root / "rec_teacher" / "teacher", {"dim": 32, "num_bases": 4, "layers": 1, "dropout": 0.1})
    return {"base_model": str(tiny_base), "semantic_ids": synthetic_generative["semantic_ids"],
            "dialogue_teacher": synthetic_generative["model"], "rec_teacher": str(root / "rec_teacher" / "teacher"),
            "root": root}


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

