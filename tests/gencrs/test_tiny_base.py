import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from gencrs.tiny_base import TinyBaseConfig, build_tiny_base


def test_tiny_base_loads_offline_renders_chat_and_pretraining_lowers_loss(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    cfg = TinyBaseConfig(out=str(tmp_path / "base"), pretrain_minutes=10.0, pretrain_max_steps=60, seq_len=64, batch_size=4, layers=2)
    out = build_tiny_base(cfg)
    tokenizer = AutoTokenizer.from_pretrained(out)
    model = AutoModelForCausalLM.from_pretrained(out)
    assert model.config.model_type == "llama" and model.config.head_dim == 64
    assert not model.config.tie_word_embeddings  # untied like the 8B models: lm_head rows are separate
    assert model.get_input_embeddings().weight.shape[0] == len(tokenizer)

    chat = [{"role": "user", "content": "I love comedy movies."}, {"role": "assistant", "content": "Try this one."}]
    text = tokenizer.apply_chat_template(chat, tokenize=False)
    assert text == "<|begin_of_text|><|start|>user\nI love comedy movies.<|end|>\n<|start|>assistant\nTry this one.<|end|>\n"
    prompt = tokenizer.apply_chat_template(chat[:1], tokenize=False, add_generation_prompt=True)
    assert prompt.endswith("<|start|>assistant\n")
    ids = tokenizer(prompt, add_special_tokens=False, return_tensors="pt")
    assert tokenizer.decode(ids["input_ids"][0]) == prompt  # byte-level BPE round-trips
    with torch.no_grad():
        out_ids = model.generate(**ids, max_new_tokens=5, do_sample=False)
    assert out_ids.shape[1] > ids["input_ids"].shape[1]

    import json
    report = json.loads((out / "gencrs_tiny_base.json").read_text())
    assert report["pretrain"]["steps"] == 60
    assert report["pretrain"]["final_loss"] < report["pretrain"]["first_loss"] - 1.0


def test_head_dim_other_than_64_is_refused(tmp_path):
    import pytest
    with pytest.raises(ValueError, match="must be 64"):
        build_tiny_base(TinyBaseConfig(out=str(tmp_path / "b"), hidden_size=256, heads=8, pretrain_minutes=0))
