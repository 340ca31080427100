"""The exported (merged) model computes the same logits as the adapter model it came from."""

import torch
from transformers import AutoTokenizer

from gencrs.serving.export import export_model
from gencrs.training.student import StudentRunConfig, train_student


def test_export_merges_the_adapter_with_equal_logits(student_values, tmp_path, export_and_adapter_logits):
    # two steps at a high learning rate so the adapter (LoRA and the new token rows) differs from the base
    train_student(StudentRunConfig(**student_values(tmp_path / "run", max_steps=2, gamma=0.0, lr=5e-2)))
    adapter_tokenizer = AutoTokenizer.from_pretrained(tmp_path / "run" / "adapter")
    out = export_model(tmp_path / "run" / "adapter", tmp_path / "export")
    assert not (out / "adapter_config.json").exists()
    assert {"codes.json", "catalog.json", "config.json", "tokenizer.json"} <= {p.name for p in out.iterdir()}
    got, expected, base, merged = export_and_adapter_logits(tmp_path / "run" / "adapter", out)
    assert len(AutoTokenizer.from_pretrained(out)) == len(adapter_tokenizer) == merged.get_input_embeddings().weight.shape[0]
    torch.testing.assert_close(got, expected, atol=1e-4, rtol=1e-4)
    assert (expected - base).abs().max() > 1e-2  # the adapter changed the model, so equality is not trivial
